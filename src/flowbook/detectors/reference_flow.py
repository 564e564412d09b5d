"""Plain-Python twin of ``detectors.nb`` for the absorption, momentum-trade, HFT-burst and liquidation-cascade
detectors.

Deliberately obvious: one loop over the events per detector, plain lists and dicts, every window and
sum recomputed from the stored history.  It reads the same resolved parameters (``model.resolve``) and
follows the definitions of docs/detectors.md.  The momentum twin takes the trade clock as non-decreasing,
as the venues deliver it; depth events may carry any time.  Tests compare its rows with the kernel's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..book import ReferenceBook
from . import model as m

__all__ = ["ref_absorption", "ref_momentum", "ref_hft_burst", "ref_liquidation_cascade", "ref_detect_flow"]

BOOK_SET, BOOK_CLEAR, TRADE, LIQUIDATION = 1, 2, 3, 5
SNAPSHOT_END, END_OF_MESSAGE = 4, 8
RING = 4096  # recent trades kept for momentum; small trades kept for the HFT-burst window
LQ_CAP = 256  # forced orders kept per side
AB_CAP = 64  # absorption levels waiting for their decision

Row = tuple[int, int, int, int, int, int, float]  # (ts, kind, side, price, lots, count, confidence)


def _records(events: np.ndarray, res: m.Resolved) -> list[tuple[int, int, int, int, int, int]]:
    """``(kind, side, flags, t, price, qty)`` of every event, ``t`` on the configured clock."""
    c = 4 if res.ip[m.P_CLOCK] == 0 else 5
    return [(e[0], e[1], e[2], e[c], e[6], e[7]) for e in events.tolist()]


def _notional(res: m.Resolved, p: int, q: int) -> float:
    return q * (res.fp[m.F_LIN] * p + res.fp[m.F_INV])


def _f(x: float) -> float:
    return min(1.0, 0.5 * x)  # confidence: 0.5 at the threshold, 1 at twice it


def _sign(x: int) -> int:
    return 1 if x > 0 else (-1 if x < 0 else 0)


@dataclass
class _Episode:  # aggressive lots against one passive level
    start: int
    lots: int = 0
    fired: bool = False


def ref_absorption(events: np.ndarray, res: m.Resolved) -> list[Row]:
    """Absorption rows; twin of the absorption part of ``nb._trade`` and of ``nb._absorb_resolve``.

    Episodes per ``(passive side, tick)`` while the book is synced; a level whose episode reaches the
    threshold waits (at most 64 at a time) for the end of the next depth message at or after that
    time, which fires it if the level still holds lots and the passive touch is within the allowed
    move.  Trades without an aggressor side have no passive side and are not counted.  A clear, or a
    trade re-anchoring the tracking window, drops episodes and waiting levels.
    """
    ip = res.ip
    tw, window, need, move = int(ip[m.P_TW]), int(ip[m.P_AB_NS]), int(ip[m.P_AB_LOTS]), int(ip[m.P_AB_MOVE])
    book = ReferenceBook()
    synced, base = False, None
    episodes: dict[tuple[int, int], _Episode] = {}
    waiting: list[tuple[int, int, int, _Episode]] = []  # (passive side, tick, pending since, episode)
    out: list[Row] = []
    for kind, side, flags, t, p, q in _records(events, res):
        if kind == BOOK_SET:
            if side != 0:
                book.set(side, p, q)
            if flags & SNAPSHOT_END:
                synced = True
                bb, ba = book.best_bid, book.best_ask
                if base is None and (bb is not None or ba is not None):
                    if bb is not None and ba is not None:
                        base = (bb + ba) // 2 - tw // 2
                    else:
                        base = (bb if bb is not None else ba) - tw // 2  # type: ignore[operator]
            if flags & END_OF_MESSAGE and synced:
                still = []
                for ps, tick, since, ep in waiting:
                    if t < since:
                        still.append((ps, tick, since, ep))
                        continue
                    best = book.best_bid if ps > 0 else book.best_ask
                    if book.get(ps, tick) > 0 and best is not None and abs(best - tick) <= move:
                        out.append((t, 2, ps, tick, ep.lots, 0, _f(ep.lots / need)))
                waiting = still
        elif kind == BOOK_CLEAR:
            book.clear()
            synced = False
            episodes.clear()
            waiting = []
        elif kind == TRADE:
            if base is None or not tw // 4 <= p - base < tw - tw // 4:
                base = p - tw // 2
                episodes.clear()
                waiting = []
            if not synced or side == 0:
                continue
            ps = -side
            ep = episodes.get((ps, p))
            if ep is None or t - ep.start > window:
                ep = episodes[(ps, p)] = _Episode(t)
            ep.lots += q
            if not ep.fired and ep.lots >= need and len(waiting) < AB_CAP:
                ep.fired = True
                waiting.append((ps, p, t, ep))
    return out


def _taker_orders(recs: list[tuple[int, int, int, int, int, int]]) -> tuple[list, list[list[int]]]:
    """All trades ``(t, side, price, lots)`` and the taker orders as lists of trade indices.

    An order is a run of same-side trades with the same time; any other event later than it ends it.
    """
    trades: list[tuple[int, int, int, int]] = []
    orders: list[list[int]] = []
    order: list[int] = []
    for kind, side, _, t, p, q in recs:
        if order:
            t0, side0 = trades[order[0]][0], trades[order[0]][1]
            if (kind == TRADE and (t != t0 or side != side0)) or (kind != TRADE and t > t0):
                orders.append(order)
                order = []
        if kind == TRADE:
            trades.append((t, side, p, q))
            order.append(len(trades) - 1)
    if order:
        orders.append(order)
    return trades, orders


def ref_momentum(events: np.ndarray, res: m.Resolved) -> list[Row]:
    """Momentum-trade rows; twin of ``nb._close_order`` (its momentum half).

    For each taker order of enough notional: the move runs from the first of the last 4096 trades
    (the order's own fills included) that lies within the window before the order, to the order's last
    price, signed by the order's side.
    """
    ip, fp = res.ip, res.fp
    window, ticks = int(ip[m.P_MO_NS]), int(ip[m.P_MO_TICKS])
    trades, orders = _taker_orders(_records(events, res))
    out: list[Row] = []
    for order in orders:
        ts, side = trades[order[0]][0], trades[order[0]][1]
        last = order[-1]
        price = trades[last][2]
        notional = sum(_notional(res, trades[i][2], trades[i][3]) for i in order)
        if notional < fp[m.F_MO_NOT]:
            continue
        first, oldest = last, max(0, last - RING + 1)
        while first > oldest and trades[first - 1][0] >= ts - window:
            first -= 1
        move = side * (price - trades[first][2])
        if move >= ticks:
            conf = 0.5 * (_f(move / ticks) + _f(notional / fp[m.F_MO_NOT]))
            out.append((ts, 4, side, price, sum(trades[i][3] for i in order), move, conf))
    return out


def ref_hft_burst(events: np.ndarray, res: m.Resolved) -> list[Row]:
    """HFT-burst rows; twin of the HFT-burst part of ``nb._trade``.

    The window is the list of small trades within the last ``hft_window_ms`` (at most the last 4096);
    after a detection the detector is quiet until one window has passed.
    """
    ip = res.ip
    window, small, need = int(ip[m.P_HF_NS]), int(ip[m.P_HF_SMALL]), int(ip[m.P_HF_N])
    recent: list[tuple[int, int, int]] = []  # (t, side, lots) of small trades, oldest first
    quiet_until = 0
    out: list[Row] = []
    for kind, side, _, t, p, q in _records(events, res):
        if kind != TRADE or q > small:
            continue
        recent.append((t, side, q))
        if len(recent) > RING:
            del recent[0]
        while recent[0][0] < t - window:
            del recent[0]
        if len(recent) >= need and t >= quiet_until:
            net = sum(s * x for _, s, x in recent)
            lots = sum(x for _, _, x in recent)
            out.append((t, 6, _sign(net), p, lots, len(recent), _f(len(recent) / need)))
            quiet_until = t + window
    return out


def ref_liquidation_cascade(events: np.ndarray, res: m.Resolved) -> list[Row]:
    """Liquidation-cascade rows; twin of ``nb._liq``.

    Per side (+1 / -1) the list of forced orders within the window (at most the last 256); a cascade
    fires once, and ends when a forced order finds the window empty.
    """
    ip, fp = res.ip, res.fp
    window, need = int(ip[m.P_LQ_NS]), int(ip[m.P_LQ_N])
    recent: dict[int, list[tuple[int, int, float]]] = {1: [], -1: []}  # side -> (t, lots, notional)
    in_cascade = {1: False, -1: False}
    out: list[Row] = []
    for kind, side, _, t, p, q in _records(events, res):
        if kind != LIQUIDATION:
            continue
        key = 1 if side > 0 else -1
        w = recent[key]
        while w and w[0][0] < t - window:
            del w[0]
        if not w:
            in_cascade[key] = False
        w.append((t, q, _notional(res, p, q)))
        if len(w) > LQ_CAP:
            del w[0]
        total = sum(x[2] for x in w)
        if not in_cascade[key] and len(w) >= need and total >= fp[m.F_LQ_NOT] and w[-1][2] >= w[0][2]:
            in_cascade[key] = True
            conf = 0.5 * (_f(len(w) / need) + _f(total / fp[m.F_LQ_NOT]))
            out.append((t, 8, side, p, sum(x[1] for x in w), len(w), conf))
    return out


def ref_detect_flow(events: np.ndarray, resolved: m.Resolved, confidence: bool = False) -> list[tuple]:
    """``(ts, kind, side, price, lots, count)`` rows of the four detectors (with ``confidence`` last when
    asked), in the form of ``reference.ref_detect``."""
    rows: list[Row] = []
    for twin in (ref_absorption, ref_momentum, ref_hft_burst, ref_liquidation_cascade):
        rows += twin(events, resolved)
    return rows if confidence else [r[:6] for r in rows]
