"""The seed's order-book-imbalance contract, as a thin facade over the feature engine.

    >>> ob = OrderBookImbalance()
    >>> ob.update_orderbook("BTCUSDT", bids=[(100.0, 2.0)], asks=[(100.5, 1.0)])
    >>> round(ob.get_metrics("BTCUSDT")["orderflow_imbalance"], 4)
    0.3333

Each ``update_orderbook`` call is a full snapshot of the visible book (as the seed received it);
trades come in through ``update_trade``.  Empty or one-sided books give defined values.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..events import EVENT_DTYPE, Flag, Instrument, Kind, PriceNotOnGrid
from .engine import FEATURE_COLUMNS, FeatureConfig, FeatureEngine

__all__ = ["OrderBookImbalance", "METRIC_NAMES"]

METRIC_NAMES = (
    "orderflow_imbalance",
    "delta_volume",
    "bid_ask_spread_pct",
    "order_book_depth_ratio",
    "large_order_presence",
    "bid_notional",
    "ask_notional",
    "total_depth",
)
_COL = {name: i for i, name in enumerate(FEATURE_COLUMNS)}
_EOM = int(Flag.END_OF_MESSAGE)


def _text(x: float | str) -> str:
    return x if isinstance(x, str) else repr(float(x))


def _decimals(values: Iterable[str]) -> int:
    return max((len(v.partition(".")[2].rstrip("0")) for v in values), default=0)


@dataclass
class _Sym:
    price_dp: int
    qty_dp: int
    engine: FeatureEngine
    trades: deque = field(default_factory=deque)
    history: deque = field(default_factory=deque)
    metrics: dict[str, float] | None = None


class OrderBookImbalance:
    """Per-symbol order-book metrics (the seed's contract).

    Parameters
    ----------
    depth_levels:
        levels per side used by imbalance, depth, notional and large-order presence.
    delta_volume_window:
        number of most recent trades summed (signed by aggressor) into ``delta_volume``.
    large_order_threshold_pct:
        a level is "large" when it holds at least this share of the visible volume.
    history_size:
        metrics snapshots kept per symbol (:meth:`get_history`).
    """

    def __init__(self, depth_levels: int = 20, delta_volume_window: int = 100,
                 large_order_threshold_pct: float = 0.01, history_size: int = 50) -> None:
        self.config = FeatureConfig(depth_levels=depth_levels, delta_window=delta_volume_window,
                                    large_order_pct=large_order_threshold_pct)
        self.history_size = history_size
        self._syms: dict[str, _Sym] = {}
        self._ts = 0

    def _engine(self, symbol: str, price_dp: int, qty_dp: int) -> FeatureEngine:
        inst = Instrument("facade", symbol, f"{10.0 ** -price_dp:.{price_dp}f}" if price_dp else "1",
                          f"{10.0 ** -qty_dp:.{qty_dp}f}" if qty_dp else "1")
        return FeatureEngine(inst, self.config, out_rows=64)

    def _sym(self, symbol: str, prices: list[str], qtys: list[str]) -> _Sym:
        pdp, qdp = _decimals(prices), _decimals(qtys)
        s = self._syms.get(symbol)
        if s is None:
            s = _Sym(pdp, qdp, self._engine(symbol, pdp, qdp),
                     deque(maxlen=self.config.delta_window), deque(maxlen=self.history_size))
            self._syms[symbol] = s
        elif pdp > s.price_dp or qdp > s.qty_dp:
            # finer prices than seen so far: rebuild on a finer grid, keeping the trade window
            s.price_dp, s.qty_dp = max(pdp, s.price_dp), max(qdp, s.qty_dp)
            s.engine = self._engine(symbol, s.price_dp, s.qty_dp)
            for t in list(s.trades):
                self._feed_trade(s, *t)
        return s

    def _events(self, s: _Sym, rows: list[tuple]) -> np.ndarray:
        self._ts += 1
        out = np.zeros(len(rows), EVENT_DTYPE)
        for i, (kind, side, flags, price, qty) in enumerate(rows):
            out[i] = (kind, side, flags, 0, self._ts, self._ts, price, qty, -1, -1, 0.0)
        return out

    def _feed_trade(self, s: _Sym, price: str, qty: str, side: int) -> None:
        g, q = s.engine.instrument.price_grid(), s.engine.instrument.qty_grid()
        s.engine.process(self._events(s, [(int(Kind.TRADE), side, _EOM, g.to_int(price), q.to_int(qty))]))

    def update_orderbook(self, symbol: str, bids: Sequence[Sequence[float | str]],
                         asks: Sequence[Sequence[float | str]]) -> None:
        """Replace ``symbol``'s book with these ``(price, qty)`` levels (any order)."""
        b = [(_text(p), _text(q)) for p, q in bids if float(q) > 0]
        a = [(_text(p), _text(q)) for p, q in asks if float(q) > 0]
        s = self._sym(symbol, [p for p, _ in b + a], [q for _, q in b + a])
        g, qg = s.engine.instrument.price_grid(), s.engine.instrument.qty_grid()
        rows: list[tuple] = [(int(Kind.BOOK_CLEAR), 0, int(Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN), 0, 0)]
        try:
            rows += [(1, 1, int(Flag.SNAPSHOT), g.to_int(p), qg.to_int(q)) for p, q in b]
            rows += [(1, -1, int(Flag.SNAPSHOT), g.to_int(p), qg.to_int(q)) for p, q in a]
        except PriceNotOnGrid as exc:  # cannot happen with the decimals chosen above
            raise ValueError(f"{symbol}: {exc}") from exc
        if len(rows) == 1:
            rows.append((1, 0, int(Flag.SNAPSHOT), 0, 0))
        kind, side, _, price, qty = rows[-1]
        rows[-1] = (kind, side, int(Flag.SNAPSHOT | Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE), price, qty)
        s.engine.process(self._events(s, rows))
        f, _ = s.engine.take()
        row = f[-1]

        def val(name: str, default: float) -> float:
            v = float(row[_COL[name]])
            return default if math.isnan(v) else v

        bn, an = val("bid_notional_n", 0.0), val("ask_notional_n", 0.0)
        bd, ad = val("bid_depth_n", 0.0), val("ask_depth_n", 0.0)
        ratio = row[_COL["depth_ratio_capped"]]
        s.metrics = {
            "orderflow_imbalance": val("imbalance_n", 0.0),
            "delta_volume": val("delta_volume_k", 0.0),
            "bid_ask_spread_pct": val("spread_pct", 0.0),
            "order_book_depth_ratio": 1.0 if math.isnan(ratio) else float(ratio),
            "large_order_presence": val("large_order_presence", 0.0),
            "bid_notional": bn,
            "ask_notional": an,
            "total_depth": bd + ad,
        }
        s.history.append(dict(s.metrics))

    def update_trade(self, symbol: str, price: float | str, qty: float | str, side: int | str) -> None:
        """Record a trade; ``side`` is the aggressor: +1/"buy" or -1/"sell"."""
        sgn = side if isinstance(side, int) else (1 if str(side).lower() in ("buy", "b", "bid") else -1)
        if sgn not in (1, -1):
            raise ValueError(f"side must be +1/-1 or 'buy'/'sell', not {side!r}")
        p, q = _text(price), _text(qty)
        s = self._sym(symbol, [p], [q])
        s.trades.append((p, q, sgn))
        self._feed_trade(s, p, q, sgn)

    def get_metrics(self, symbol: str) -> dict[str, float]:
        """The latest metrics for ``symbol`` (all zeros/neutral before its first book)."""
        s = self._syms.get(symbol)
        if s is None or s.metrics is None:
            return {name: (1.0 if name == "order_book_depth_ratio" else 0.0) for name in METRIC_NAMES}
        return dict(s.metrics)

    def get_history(self, symbol: str) -> list[dict[str, float]]:
        """Up to ``history_size`` past metrics snapshots, oldest first."""
        s = self._syms.get(symbol)
        return [] if s is None else list(s.history)
