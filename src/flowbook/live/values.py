"""Immutable values handed to bots: feature snapshots, per-symbol status, book views, 24 h tickers and
open interest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numba import njit

from ..venues.binance.messages import OpenInterest, Ticker

__all__ = ["BookView", "FeatureSnapshot", "LatencyBook", "OpenInterestValue", "SymbolStatus", "Ticker24h"]


@dataclass(frozen=True, slots=True)
class FeatureSnapshot:
    """The features of one symbol after one applied depth message.

    ``values`` is a read-only mapping of the ``FEATURE_COLUMNS`` (see ``docs/features.md``);
    ``snap["mid"]`` reads one.  Times are integer nanoseconds; ``update_id`` is Binance's ``u``.
    """

    venue: str
    symbol: str
    ts_local: int
    ts_exchange: int
    update_id: int
    values: Mapping[str, float]

    def __getitem__(self, name: str) -> float:
        return self.values[name]


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    """Counters and latencies of one symbol (latencies in milliseconds, NaN before any sample)."""

    venue: str
    symbol: str
    synced: bool
    connected: bool
    messages: int
    depth_messages: int
    gaps: int
    resyncs: int
    forced_resyncs: int
    snapshots: int
    stale_snapshots: int
    bad_frames: int
    dropped: int
    dropped_depth: int
    rest_errors: int
    queue_depth: int
    rows: int
    exchange_to_receive_p50_ms: float
    exchange_to_receive_p99_ms: float
    receive_to_features_p50_ms: float
    receive_to_features_p99_ms: float
    duplicates: int = 0  # repeated diffs and trades, dropped


@dataclass(frozen=True, slots=True)
class BookView:
    """The best levels of one symbol's live book, as exact decimals, best first.

    Levels at prices at or better than ``trusted_bid`` / ``trusted_ask`` (the worst prices of the
    snapshot the book was built from) are complete; beyond them the book only knows levels that changed.
    """

    symbol: str
    synced: bool
    update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    trusted_bid: Decimal | None
    trusted_ask: Decimal | None


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """A symbol's rolling 24 h statistics (Binance ``@ticker``), exact decimals as Binance sent them.

    ``volume`` is in base asset on spot and USD-M and in contracts on COIN-M; ``quote_volume`` is in quote
    asset on spot and USD-M and in base asset on COIN-M (Binance's ``v`` and ``q``).  ``bid``/``ask`` and
    their quantities exist on spot only (``None`` elsewhere).  Times are integer nanoseconds.
    """

    venue: str
    symbol: str
    ts_local: int
    ts_exchange: int
    last_price: Decimal
    last_qty: Decimal
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    price_change: Decimal
    price_change_percent: Decimal
    weighted_avg_price: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time: int
    close_time: int
    first_trade_id: int
    last_trade_id: int
    trades: int
    bid: Decimal | None = None
    bid_qty: Decimal | None = None
    ask: Decimal | None = None
    ask_qty: Decimal | None = None

    @classmethod
    def from_message(cls, venue: str, ts_local: int, m: Ticker) -> Ticker24h:
        opt = lambda x: None if x is None else Decimal(x)  # noqa: E731
        ms = 1_000_000
        return cls(venue, m.s, ts_local, m.E * ms, Decimal(m.c), Decimal(m.Q), Decimal(m.o), Decimal(m.h),
                   Decimal(m.l), Decimal(m.p), Decimal(m.P), Decimal(m.w), Decimal(m.v), Decimal(m.q), m.O * ms,
                   m.C * ms, m.F, m.L, m.n, opt(m.b), opt(m.B), opt(m.a), opt(m.A))


@dataclass(frozen=True, slots=True)
class OpenInterestValue:
    """A symbol's latest open interest (REST ``openInterest``): base asset on USD-M, contracts on COIN-M."""

    venue: str
    symbol: str
    ts_local: int
    ts_exchange: int
    open_interest: Decimal

    @classmethod
    def from_message(cls, venue: str, ts_local: int, m: OpenInterest) -> OpenInterestValue:
        return cls(venue, m.symbol, ts_local, m.time * 1_000_000, Decimal(m.openInterest))


@njit(cache=True, inline="always")
def ring_add(buf, count, s, value):
    """One sample into symbol ``s``'s ring of :class:`LatencyBook` arrays ``buf``/``count``."""
    buf[s, count[s] % buf.shape[1]] = value
    count[s] += 1


@njit(cache=True)
def _ring_add(buf, count, idx, values):
    for j in range(idx.shape[0]):
        ring_add(buf, count, idx[j], values[j])


class LatencyBook:
    """The last ``size`` latency samples (ns) of each of ``n`` symbols, for p50/p99 in constant memory.

    :meth:`add` takes a whole batch (a symbol index per sample) in one compiled call."""

    __slots__ = ("buf", "count")

    def __init__(self, n: int, size: int = 4096) -> None:
        self.buf = np.empty((n, size), np.int64)
        self.buf.fill(0)  # written now: the first samples must not wait for the pages to be mapped
        self.count = np.zeros(n, np.int64)

    def add(self, index: np.ndarray, values: np.ndarray) -> None:
        """Sample ``values[j]`` (ns) for symbol ``index[j]``, in order."""
        if len(index):
            _ring_add(self.buf, self.count, index.astype(np.int64, copy=False), values.astype(np.int64, copy=False))

    def samples(self, i: int) -> np.ndarray:
        """Symbol ``i``'s kept samples (a copy; oldest first once the ring has wrapped)."""
        m = int(self.count[i])
        size = self.buf.shape[1]
        return self.buf[i, :m].copy() if m <= size else np.roll(self.buf[i], -(m % size))

    def percentiles_ms(self, i: int) -> tuple[float, float]:
        m = min(int(self.count[i]), self.buf.shape[1])
        if m == 0:
            return float("nan"), float("nan")
        p50, p99 = np.percentile(self.buf[i, :m], [50, 99])
        return float(p50) / 1e6, float(p99) / 1e6
