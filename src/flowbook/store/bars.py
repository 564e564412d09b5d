"""1-minute trade bars: the aggregate of trades per instrument and UTC minute, computed with NumPy.

A bar holds open, high, low, close (prices), volume, buy volume (``side > 0``, buyer aggressor),
sell volume (``side < 0``) and the number of trades.  ``open``/``close`` are the prices of the first
and last trade in natural-key order (``ts_exchange``, ``trade_id``, ``seq``), and that key is kept
(``open_ts``, ``open_trade_id``, ``open_seq``, ``close_…``) so bars of later trades of the same minute
merge exactly (PostgreSQL: ``fb_trade_bars_merge()`` of migration 0003).  Prices stay integer ticks
and volumes integer lots until they are encoded as exact ``numeric``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..events import Instrument
from .errors import StoreError
from .pgcopy import _step, encode_rows, numeric_digits
from .schema import TABLES, Batch

__all__ = ["BARS", "BARS_COLUMNS", "MINUTE_NS", "TradeBars", "trade_bars", "bars_batch", "parse_interval",
           "floor_to", "bucket_bounds", "BAR_NAMES"]

BARS = "trade_bars_1m"
MINUTE_NS = 60_000_000_000
# the PostgreSQL columns (instrument_id first), as the table registry lists the others
BARS_COLUMNS: tuple[tuple[str, str], ...] = (("instrument_id", "i4"),
                                             *((c.name, c.kind) for c in TABLES[BARS].columns))
_UNITS = {"s": 1_000_000_000, "m": MINUTE_NS, "h": 60 * MINUTE_NS, "d": 1440 * MINUTE_NS}


def parse_interval(interval: str | int) -> int:
    """Nanoseconds of ``"30s"``, ``"1m"``, ``"15m"``, ``"1h"``, ``"1d"`` (or an int of ns), positive."""
    if isinstance(interval, int | np.integer):
        ns = int(interval)
    else:
        text = interval.strip().lower()
        unit = text[-1:]
        if unit not in _UNITS or not text[:-1].isdigit():
            raise ValueError(f"bad interval {interval!r}: use e.g. 30s, 1m, 15m, 1h, 1d")
        ns = int(text[:-1]) * _UNITS[unit]
    if ns <= 0:
        raise ValueError(f"interval must be positive, got {interval!r}")
    return ns


def bucket_bounds(start_ns: int, end_ns: int, step: int) -> tuple[int, int]:
    """``[lo, hi)``: the times of the ``step``-long buckets (aligned to the epoch) that start in
    ``[start_ns, end_ns)``."""
    return -(-int(start_ns) // step) * step, -(-int(end_ns) // step) * step


BAR_NAMES = ("ts", "open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "trades")


def floor_to(ts: np.ndarray, step: int) -> np.ndarray:
    """Start of the ``step``-long bucket holding each time (floor, also before 1970)."""
    return np.floor_divide(ts, step) * step


@dataclass(frozen=True)
class TradeBars:
    """Bars of one instrument, one row per minute with trades, in time order."""

    instrument: Instrument
    instrument_id: int
    columns: dict[str, np.ndarray]  # BARS_COLUMNS but instrument_id; volumes int64, or Python ints if not exact
    exact: bool  # every value fits the int64 / binary numeric encoder

    @property
    def rows_count(self) -> int:
        return len(self.columns["ts"])

    def encode(self) -> bytes:
        """Binary COPY tuples of ``trade_bars_1m`` (without header and trailer)."""
        cols: list[tuple[str, np.ndarray]] = []
        for name, kind in BARS_COLUMNS:
            v = np.full(self.rows_count, self.instrument_id, np.int32) if name == "instrument_id" else self.columns[name]
            if kind in ("price", "qty"):
                v = numeric_digits(v, self.instrument.tick_size if kind == "price" else self.instrument.lot_size)
            cols.append((kind, v))
        return encode_rows(cols)

    def rows(self) -> Iterator[tuple[object, ...]]:
        """The bars as Python tuples (exact ``Decimal`` prices and volumes), for psycopg's COPY."""
        tick, lot = Decimal(self.instrument.tick_size), Decimal(self.instrument.lot_size)
        values = []
        for name, kind in BARS_COLUMNS:
            if name == "instrument_id":
                values.append([self.instrument_id] * self.rows_count)
            elif kind in ("price", "qty"):
                step = tick if kind == "price" else lot
                values.append([Decimal(int(v)) * step for v in self.columns[name].tolist()])
            else:
                values.append([int(v) for v in self.columns[name].tolist()])
        return zip(*values, strict=True)


def _in_key_order(ts: np.ndarray, tid: np.ndarray, seq: np.ndarray) -> bool:
    """True when the rows are sorted by (ts, trade_id, seq)."""
    dt = np.diff(ts)
    if np.any(dt < 0):
        return False
    tie = dt == 0
    if not tie.any():
        return True
    di, ds = np.diff(tid)[tie], np.diff(seq)[tie]
    return bool(np.all((di > 0) | ((di == 0) & (ds >= 0))))


def trade_bars(batches: Sequence[Batch], instrument_id: int) -> TradeBars:
    """The 1-minute bars of the trades in ``batches`` (one instrument)."""
    inst = batches[0].instrument

    def col(name: str) -> np.ndarray:
        return np.concatenate([b.columns[name] for b in batches]) if len(batches) > 1 else batches[0].columns[name]

    ts, tid, seq = col("ts_exchange"), col("trade_id"), col("seq")
    side, price, qty = col("side"), col("price"), col("qty")
    if not _in_key_order(ts, tid, seq):  # trades usually arrive in order: no sort then
        order = np.lexsort((seq, tid, ts))  # natural-key order
        ts, tid, seq = ts[order], tid[order], seq[order]
        side, price, qty = side[order], price[order], qty[order]
    minute = floor_to(ts, MINUTE_NS)
    n = len(ts)
    starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]]) if n else np.zeros(0, np.int64)
    last = np.r_[starts[1:], n] - 1
    count = np.diff(np.r_[starts, n])
    k, _ = _step(inst.lot_size)
    big = int(np.abs(qty).max()) * int(count.max()) if n else 0
    exact = big < (1 << 63) // k  # every sum (and sum * lot step) fits int64
    q = qty if exact else qty.astype(object)
    zero = q.dtype.type(0) if exact else 0
    cols = {
        "ts": minute[starts], "open": price[starts], "high": np.maximum.reduceat(price, starts) if n else price[:0],
        "low": np.minimum.reduceat(price, starts) if n else price[:0], "close": price[last],
        "volume": np.add.reduceat(q, starts) if n else q[:0],
        "buy_volume": np.add.reduceat(np.where(side > 0, q, zero), starts) if n else q[:0],
        "sell_volume": np.add.reduceat(np.where(side < 0, q, zero), starts) if n else q[:0],
        "trades": count.astype(np.int64), "open_ts": ts[starts], "open_trade_id": tid[starts],
        "open_seq": seq[starts].astype(np.int32), "close_ts": ts[last], "close_trade_id": tid[last],
        "close_seq": seq[last].astype(np.int32),
    }
    return TradeBars(inst, instrument_id, cols, exact)


def bars_batch(trades: Batch) -> Batch:
    """The ``trade_bars_1m`` rows of one trades batch (the Parquet store writes them beside it)."""
    bars = trade_bars([trades], 0)
    if not bars.exact:
        raise StoreError(f"{trades.instrument.symbol}: a minute's volume exceeds int64 lots; the Parquet store "
                         "cannot keep its bars")
    return Batch.make(BARS, trades.instrument, bars.columns)
