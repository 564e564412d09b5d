"""Immutable values handed to bots: feature snapshots, per-symbol status, book views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

__all__ = ["BookView", "FeatureSnapshot", "LatencyWindow", "SymbolStatus"]


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


class LatencyWindow:
    """The last ``size`` latency samples (ns) of one symbol, for p50/p99 in constant memory."""

    __slots__ = ("buf", "n")

    def __init__(self, size: int = 4096) -> None:
        self.buf = np.zeros(size, np.int64)
        self.n = 0

    def add(self, values: np.ndarray) -> None:
        size = len(self.buf)
        v = values[-size:]
        k = len(v)
        if k == 0:
            return
        i = self.n % size
        first = min(k, size - i)
        self.buf[i:i + first] = v[:first]
        if k > first:
            self.buf[: k - first] = v[first:]
        self.n += k

    def percentiles_ms(self) -> tuple[float, float]:
        m = min(self.n, len(self.buf))
        if m == 0:
            return float("nan"), float("nan")
        p50, p99 = np.percentile(self.buf[:m], [50, 99])
        return float(p50) / 1e6, float(p99) / 1e6
