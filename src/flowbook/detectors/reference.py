"""Plain-Python twin of ``detectors.nb`` for the sweep, block-trade, iceberg and wall-pulled detectors.

Deliberately obvious: a :class:`~flowbook.book.ReferenceBook`, lists of trades and dicts keyed by
``(side, tick)``; every decision recomputed from the stored history.  It reads the same resolved
parameters (``model.resolve``) and follows the same rules (docs/detectors.md), including the tracking
window: per-level state exists for ticks within ``track_ticks`` around the price where it was last
re-anchored, and is dropped when a trade re-anchors it.  Tests compare its rows with the kernel's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..book import ReferenceBook
from . import model as m

__all__ = ["ref_detect"]


@dataclass
class _Episode:  # an iceberg episode at one passive level
    start: int
    vis: int
    execs: list[int] = field(default_factory=list)
    refills: int = 0
    pend: int = 0
    gone: int = 0
    fired: bool = False


def ref_detect(events: np.ndarray, res: m.Resolved) -> list[tuple[int, int, int, int, int, int]]:
    """``(ts, kind, side, price, lots, count)`` rows of the four twinned detectors."""
    ip, fp = res.ip, res.fp
    clock = "ts_exchange" if ip[m.P_CLOCK] == 0 else "ts_local"
    tw = int(ip[m.P_TW])
    book = ReferenceBook()
    out: list[tuple[int, int, int, int, int, int]] = []
    synced = False
    base: int | None = None
    last_trade: dict[tuple[int, int], int] = {}
    episodes: dict[tuple[int, int], _Episode] = {}
    order: list[tuple[int, int, int, int]] = []  # (t, side, price, lots) of the open taker order
    burst: list[tuple[int, int, int, int]] = []

    def notional(trades: list[tuple[int, int, int, int]]) -> float:
        return sum(q * (fp[m.F_LIN] * p + fp[m.F_INV]) for _, _, p, q in trades)

    def close_order() -> None:
        if notional(order) >= fp[m.F_BLK_NOT]:
            t, a = order[0][0], order[0][1]
            out.append((t, 3, a, order[-1][2], sum(x[3] for x in order), len(order)))
        order.clear()

    def close_burst() -> None:
        prices = [x[2] for x in burst]
        levels = 1 + sum(1 for a, b in zip(prices, prices[1:], strict=False) if a != b)
        if levels >= ip[m.P_SW_LEVELS] and notional(burst) >= fp[m.F_SW_NOT]:
            out.append((burst[0][0], 1, burst[0][1], prices[-1], sum(x[3] for x in burst), levels))
        burst.clear()

    def live(ep: _Episode | None, t: int) -> bool:
        return (ep is not None and t - ep.start <= ip[m.P_IC_NS]
                and not (ep.gone and t - ep.gone > ip[m.P_IC_GONE_NS]))

    def ice_check(ep: _Episode, t: int, side: int, p: int) -> None:
        ex = sum(ep.execs)
        if (not ep.fired and ep.refills >= ip[m.P_IC_REFILLS] and ex >= ip[m.P_IC_LOTS]
                and ex >= fp[m.F_IC_RATIO] * ep.vis and ex > ep.vis):
            ep.fired = True
            out.append((t, 5, side, p, ex, ep.refills))

    def tracked(p: int) -> bool:
        return base is not None and 0 <= p - base < tw

    for e in events.tolist():
        kind, side, flags, t, p, q = e[0], e[1], e[2], e[4 if clock == "ts_exchange" else 5], e[6], e[7]
        if order and ((kind == 3 and (t != order[0][0] or side != order[0][1])) or (kind != 3 and t > order[0][0])):
            close_order()
        if burst and (t > burst[0][0] + ip[m.P_SW_NS] or (kind == 3 and side != burst[0][1])):
            close_burst()
        if kind == 1:
            if side != 0:
                old = book.get(side, p)
                wall = synced and tracked(p) and old >= ip[m.P_WL_LOTS] and q <= fp[m.F_WL_KEEP] * old
                best = (book.best_bid if side > 0 else book.best_ask) if wall else None  # the touch before
                book.set(side, p, q)
                if synced and tracked(p):
                    dist = (best - p) * side if best is not None else -1
                    lt = last_trade.get((side, p))
                    if wall and 0 <= dist <= ip[m.P_WL_DIST] and (lt is None or t - lt > ip[m.P_WL_NS]):
                        out.append((t, 7, side, p, old - q, dist))
                    ep = episodes.get((side, p))
                    if ep is not None and live(ep, t):
                        ep.gone = (ep.gone or t) if q == 0 else 0
                        if ep.pend > 0 and q > max(old - ep.pend, 0):
                            ep.refills += 1
                        ep.pend = 0
                        ep.vis = max(ep.vis, q)
                        ice_check(ep, t, side, p)
            if flags & 4:
                synced = True
                bb, ba = book.best_bid, book.best_ask
                if base is None and (bb is not None or ba is not None):
                    c = (bb + ba) // 2 if bb is not None and ba is not None else (bb if bb is not None else ba)
                    assert c is not None
                    base = c - tw // 2
        elif kind == 2:
            book.clear()
            synced = False
            episodes.clear()
        elif kind == 3:
            order.append((t, side, p, q))
            burst.append((t, side, p, q))
            if base is None or not tw // 4 <= p - base < tw - tw // 4:
                base = p - tw // 2
                last_trade.clear()
                episodes.clear()
            ps = -side
            last_trade[(ps, p)] = t
            if synced:
                ep = episodes.get((ps, p))
                if not live(ep, t):
                    ep = episodes[(ps, p)] = _Episode(t, 0)
                assert ep is not None
                ep.vis = max(ep.vis, book.get(ps, p))
                ep.execs.append(q)
                ep.pend += q
                ice_check(ep, t, ps, p)
    if order:
        close_order()
    if burst:
        close_burst()
    return out
