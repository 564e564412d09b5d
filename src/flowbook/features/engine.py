"""`FeatureEngine`: the Python face of the feature kernel, one instrument per engine."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..book import L2Book, window_for
from ..events import EVENT_DTYPE, Instrument
from . import nb as k

__all__ = ["FEATURE_COLUMNS", "FeatureConfig", "FeatureEngine", "EngineStats"]

FEATURE_COLUMNS: list[str] = [""] * k.NCOLS
for _name, _idx in {
    "best_bid": k.C_BEST_BID,
    "best_bid_qty": k.C_BEST_BID_QTY,
    "best_ask": k.C_BEST_ASK,
    "best_ask_qty": k.C_BEST_ASK_QTY,
    "mid": k.C_MID,
    "spread": k.C_SPREAD,
    "spread_bps": k.C_SPREAD_BPS,
    "spread_pct": k.C_SPREAD_PCT,
    "microprice": k.C_MICROPRICE,
    "imbalance_1": k.C_IMB1,
    "imbalance_n": k.C_IMBN,
    "imbalance_dw": k.C_IMB_DW,
    "bid_depth_n": k.C_BID_DEPTH,
    "ask_depth_n": k.C_ASK_DEPTH,
    "bid_notional_n": k.C_BID_NOTIONAL,
    "ask_notional_n": k.C_ASK_NOTIONAL,
    "total_depth_n": k.C_TOTAL_DEPTH,
    "depth_ratio": k.C_DEPTH_RATIO,
    "depth_ratio_capped": k.C_DEPTH_RATIO_CAP,
    "large_order_presence": k.C_LARGE,
    "bid_depth_bps": k.C_BID_DEPTH_BPS,
    "ask_depth_bps": k.C_ASK_DEPTH_BPS,
    "bid_notional_bps": k.C_BID_NOTIONAL_BPS,
    "ask_notional_bps": k.C_ASK_NOTIONAL_BPS,
    "ofi": k.C_OFI,
    **{f"mlofi_{m + 1}": k.C_MLOFI + m for m in range(k.MLOFI_LEVELS)},
    "cvd": k.C_CVD,
    "delta_volume_k": k.C_DELTA_K,
    "buy_volume": k.C_BUY_VOL,
    "sell_volume": k.C_SELL_VOL,
    "trade_count": k.C_TRADES,
    "vwap": k.C_VWAP,
    "vwap_k": k.C_VWAP_K,
    "last_price": k.C_LAST_PRICE,
}.items():
    FEATURE_COLUMNS[_idx] = _name
assert all(FEATURE_COLUMNS), "every kernel column has a name"


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Parameters of the core features (see docs/features.md).

    ``interval_ns`` 0 means one row per applied depth message; otherwise one row per clock tick.
    """

    interval_ns: int = 0
    clock: str = "local"  # "local" receive time or "exchange" time
    depth_levels: int = 20
    band_bps: float = 10.0
    dw_bps: float = 10.0
    large_order_pct: float = 0.01
    delta_window: int = 100
    ratio_cap: float = 2.0

    def __post_init__(self) -> None:
        if self.clock not in ("local", "exchange"):
            raise ValueError(f"clock must be 'local' or 'exchange', not {self.clock!r}")
        if self.depth_levels < k.MLOFI_LEVELS:
            raise ValueError(f"depth_levels must be at least {k.MLOFI_LEVELS}")
        if self.delta_window < 1 or self.interval_ns < 0:
            raise ValueError("delta_window must be >= 1 and interval_ns >= 0")


@dataclass
class EngineStats:
    book_messages: int = 0
    crossed: int = 0
    first_crossed_event: int = -1
    recenters: int = 0


def _ratio(step: str) -> tuple[float, float]:
    d = Decimal(step)
    exp = d.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    scale = max(0, -exp)
    return float(int(d * 10**scale)), float(10**scale)


class FeatureEngine:
    """Book plus core features for one instrument; feed it event arrays in time order."""

    def __init__(self, instrument: Instrument, config: FeatureConfig | None = None,
                 window: int | None = None, out_rows: int = 1 << 16) -> None:
        self.instrument = instrument
        self.config = cfg = config or FeatureConfig()
        self._window = window
        self.book: L2Book | None = None
        p = np.zeros(k.NPARAMS)
        p[k.P_MODE] = k.MODE_INTERVAL if cfg.interval_ns else k.MODE_EVENT
        p[k.P_INTERVAL] = cfg.interval_ns or 1
        p[k.P_CLOCK] = 1.0 if cfg.clock == "exchange" else 0.0
        p[k.P_NLEVELS] = cfg.depth_levels
        p[k.P_BAND_BPS] = cfg.band_bps
        p[k.P_DW_BPS] = cfg.dw_bps
        p[k.P_LARGE_PCT] = cfg.large_order_pct
        p[k.P_K_TRADES] = cfg.delta_window
        p[k.P_PX_NUM], p[k.P_PX_DEN] = _ratio(instrument.tick_size)
        p[k.P_Q_NUM], p[k.P_Q_DEN] = _ratio(instrument.lot_size)
        p[k.P_MULT] = instrument.multiplier if instrument.inverse else 1.0
        p[k.P_INVERSE] = 1.0 if instrument.inverse else 0.0
        p[k.P_RATIO_CAP] = cfg.ratio_cap
        self.p = p
        self.fs = np.zeros(k.NFSTATE)
        self.fi = np.zeros(k.NSTATE, np.int64)
        self.ring = np.zeros((3, cfg.delta_window))  # signed qty, qty*price, qty of the last K trades
        # Rows are written in place into out_f/out_i, which double when full (the rows written so far move
        # once), so a long run costs no per-chunk copies and no concatenation at the end (see take()).
        self._out_rows = max(int(out_rows), 1)
        self.out_f = np.empty((self._out_rows, k.NCOLS))
        self.out_i = np.empty((self._out_rows, k.NICOLS), np.int64)
        n = cfg.depth_levels
        self._scratch = tuple(np.zeros(n, np.int64) for _ in range(4))
        self.stats = EngineStats()
        self._seen = 0  # events processed before the current call
        self._first_crossed = -1

    def _ensure_book(self, events: np.ndarray) -> L2Book:
        if self.book is None:
            w = self._window
            if w is None:
                w = window_for(events)
            self.book = L2Book(window=w)
        return self.book

    def _grow_out(self, rows_here: int = 0, done: int = 0, todo: int = 0) -> None:
        """The output buffers are full: grow them, keeping the rows written so far.

        They double, or grow to the rows this call is on course to write (``rows_here`` rows from ``done``
        events, ``todo`` events to go) when that is more: a long replay then moves its rows once or twice,
        not at every doubling."""
        r = int(self.fi[k.S_ROWS])
        ahead = rows_here * todo // done if done > 0 else 0
        cap = max(2 * self.out_f.shape[0], r + ahead + ahead // 8 + 1024)
        f = np.empty((cap, k.NCOLS))
        ii = np.empty((cap, k.NICOLS), np.int64)
        f[:r] = self.out_f[:r]
        ii[:r] = self.out_i[:r]
        self.out_f, self.out_i = f, ii

    def process(self, events: np.ndarray) -> None:
        """Apply events (one instrument, time order) and compute feature rows."""
        if events.dtype != EVENT_DTYPE:
            raise TypeError("events must have flowbook's EVENT_DTYPE")
        book = self._ensure_book(events)
        crossed_before = int(self.fi[k.S_CROSSED])
        rows0 = int(self.fi[k.S_ROWS])
        i = 0
        while True:
            status, i = k.run(events, i, *book.arrays, self.p, self.fs, self.fi, self.ring,
                              self.out_f, self.out_i, *self._scratch)
            if status == k.ST_DONE:
                break
            if status == k.ST_NEED_GROW:
                book.grow()
            elif status == k.ST_NEED_OUT:
                self._grow_out(int(self.fi[k.S_ROWS]) - rows0, i, len(events) - i)
        if crossed_before == 0 and self.fi[k.S_CROSSED] > 0:
            self._first_crossed = self._seen + int(self.fi[k.S_FIRST_CROSSED])
        self._seen += len(events)

    def finish(self) -> None:
        """End of input: in interval mode, emit the last sample (at or before the last event)."""
        if self.book is not None and self.p[k.P_MODE] == k.MODE_INTERVAL:
            last = int(self.fi[k.S_LAST_CLOCK])
            while k.flush_interval(self.p, self.fs, self.fi, self.ring, self.out_f, self.out_i,
                                   *self.book.arrays, *self._scratch, last) == k.ST_NEED_OUT:
                self._grow_out()
        self.stats.book_messages = int(self.fi[k.S_BOOK_MSGS])
        self.stats.crossed = int(self.fi[k.S_CROSSED])
        self.stats.first_crossed_event = self._first_crossed
        self.stats.recenters = int(self.book.st[10]) if self.book is not None else 0

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows so far as ``(floats[n, NCOLS], ints[n, 3])`` (ts, ts_exchange, update_id).

        A buffer at least a quarter full is handed over as is (the arrays are views of its first rows) and
        the engine starts a fresh one; fewer rows are copied out and the buffer is kept.
        """
        r = int(self.fi[k.S_ROWS])
        self.fi[k.S_ROWS] = 0
        if 4 * r >= self.out_f.shape[0]:
            f, ii = self.out_f[:r], self.out_i[:r]
            self.out_f = np.empty((self._out_rows, k.NCOLS))
            self.out_i = np.empty((self._out_rows, k.NICOLS), np.int64)
            return f, ii
        return self.out_f[:r].copy(), self.out_i[:r].copy()
