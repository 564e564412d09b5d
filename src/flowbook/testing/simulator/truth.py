"""The simulator's ground truth: the recording's book per symbol, kept by flowbook's own feed and book.

Depth diffs and the recorded snapshot lines go through :class:`~flowbook.venues.binance.BinanceFeed`
and a :class:`~flowbook.features.FeatureEngine` per symbol, exactly as ``flowbook replay`` reads the
recording, so the truth is the recording's book.  REST snapshots are rendered from it at the current
stream position, in the recording's own decimal precision.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import msgspec
import numpy as np

from ...features import FeatureConfig, FeatureEngine
from ...venues.binance import BinanceFeed
from ...venues.binance.messages import DepthSnapshot, DepthUpdate
from .source import SimFrame

__all__ = ["Truth"]

_snap = msgspec.json.Decoder(DepthSnapshot)
_diff = msgspec.json.Decoder(DepthUpdate)
_EOM = 8
Levels = list[tuple[int, int]]


def _decimals(texts: list[str]) -> int:
    return max((len(t.partition(".")[2]) for t in texts), default=0)


class Truth:
    """Books of every symbol of a source, advanced frame by frame by the broadcast."""

    def __init__(self, keep_rows: bool = False, history: int = 4) -> None:
        self.feed = BinanceFeed()
        self.engines: dict[str, FeatureEngine] = {}
        self.last_u: dict[str, int] = {}
        self.keep_rows = keep_rows
        self.rows: dict[str, dict[int, np.ndarray]] = {}
        self.decimals: dict[str, tuple[int, int]] = {}
        self.history: dict[str, deque[tuple[int, Levels, Levels]]] = {}
        self._history_len = history
        self._mult: dict[str, tuple[int, int]] = {}

    def apply(self, frames: list[SimFrame]) -> None:
        """Advance the books by depth diffs and recorded snapshots (other kinds are ignored)."""
        for f in frames:
            if f.symbol not in self.decimals:
                self._learn_decimals(f)
            self.feed.on_frame(f.ts, f.data, "truth", f.symbol)
        ev = self.feed.take_events()
        self.feed.depth_msg_end.clear()  # replay's source locations: not needed, would only grow
        self.feed.depth_msg_where.clear()
        if not len(ev):
            return
        sids = ev["symbol"]
        for sid in np.unique(sids).tolist():
            sub = ev[sids == sid]
            inst = self.feed.instruments[sid]
            if inst is None:
                continue
            eng = self.engines.get(inst.symbol)
            if eng is None:
                eng = self.engines[inst.symbol] = FeatureEngine(inst, FeatureConfig(), out_rows=4096)
            eng.process(sub)
            ends = (sub["kind"] == 1) & ((sub["flags"] & _EOM) != 0)
            if ends.any():
                self.last_u[inst.symbol] = int(sub["id"][ends][-1])
            f, ii = eng.take()
            if self.keep_rows and len(f):
                rows = self.rows.setdefault(inst.symbol, {})
                for j in range(len(f)):
                    rows[int(ii[j, 2])] = f[j]

    def _learn_decimals(self, f: SimFrame) -> None:
        if f.kind == "snapshot":
            m = _snap.decode(f.data)
            lv = m.bids[:50] + m.asks[:50]
        elif f.kind == "depth":
            d = _diff.decode(f.data)
            lv = d.b + d.a
        else:
            return
        if lv:
            self.decimals[f.symbol] = (_decimals([p for p, _ in lv]), _decimals([q for _, q in lv]))

    def synced(self, symbol: str) -> bool:
        s = self.feed.symbols.get(symbol)
        return bool(s is not None and s.seq is not None and s.seq.synced and symbol in self.engines)

    def levels(self, symbol: str, side: int, n: int) -> Levels:
        """Best ``n`` levels of a side as ``(tick, lots)``."""
        book = self.engines[symbol].book
        return [] if book is None else book.levels(side, n)

    def decimal_levels(self, symbol: str, side: int, n: int) -> list[tuple[Decimal, Decimal]]:
        inst = self.engines[symbol].instrument
        px, qty = inst.price_grid(), inst.qty_grid()
        return [(px.to_decimal(t), qty.to_decimal(q)) for t, q in self.levels(symbol, side, n)]

    def remember(self, symbol: str, limit: int = 1000) -> None:
        """Keep the current book (for snapshots "older than the stream")."""
        if self.synced(symbol):
            h = self.history.setdefault(symbol, deque(maxlen=self._history_len))
            h.append((self.last_u.get(symbol, 0), self.levels(symbol, 1, limit), self.levels(symbol, -1, limit)))

    def best_texts(self, symbol: str) -> tuple[str, str, str, str]:
        """Best bid, its quantity, best ask, its quantity, as decimal strings (empty side: zeros)."""
        (pm, pd), (qm, qd) = self._scale(symbol)
        out: list[str] = []
        for side in (1, -1):
            lv = self.levels(symbol, side, 1)
            t, q = lv[0] if lv else (0, 0)
            out += [_text(t * pm, pd), _text(q * qm, qd)]
        return out[0], out[1], out[2], out[3]

    def render(self, symbol: str, limit: int, futures: bool, now_ms: int, stale: bool = False,
               symbol_fields: bool = False) -> bytes:
        """The REST depth response at the current position (or the oldest remembered one).
        ``symbol_fields``: COIN-M's ``symbol`` and ``pair``."""
        if stale and self.history.get(symbol):
            lid, bids, asks = self.history[symbol][0]
            bids, asks = bids[:limit], asks[:limit]
        else:
            lid, bids, asks = self.last_u.get(symbol, 0), self.levels(symbol, 1, limit), self.levels(symbol, -1, limit)
        head = f'{{"lastUpdateId":{lid},' + (f'"E":{now_ms},"T":{now_ms - 3},' if futures else "")
        if symbol_fields:
            head += f'"symbol":"{symbol}","pair":"{symbol.split("_")[0]}",'
        return (head + f'"bids":[{self._fmt(symbol, bids)}],"asks":[{self._fmt(symbol, asks)}]}}').encode()

    def price_text(self, symbol: str, tick: int) -> str:
        pm, pd = self._scale(symbol)[0]
        return _text(tick * pm, pd)

    def _scale(self, symbol: str) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((price units per tick, price decimals), (qty units per lot, qty decimals))``."""
        got = self._mult.get(symbol)
        if got is None:
            inst = self.engines[symbol].instrument
            pd, qd = self.decimals.get(symbol, (8, 8))
            pm, qm = Decimal(inst.tick_size) * 10**pd, Decimal(inst.lot_size) * 10**qd
            if pm != pm.to_integral_value() or qm != qm.to_integral_value():
                raise ValueError(f"{symbol}: steps finer than the recording's decimals")
            got = self._mult[symbol] = ((int(pm), pd), (int(qm), qd))  # type: ignore[assignment]
        return got  # type: ignore[return-value]

    def _fmt(self, symbol: str, levels: Levels) -> str:
        (pm, pd), (qm, qd) = self._scale(symbol)
        return ",".join(f'["{_text(t * pm, pd)}","{_text(q * qm, qd)}"]' for t, q in levels)


def _text(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    s = str(units).rjust(decimals + 1, "0")
    return f"{s[:-decimals]}.{s[-decimals:]}"
