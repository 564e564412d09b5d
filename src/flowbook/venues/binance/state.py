"""Per-symbol and per-connection state of the live adapter (counters the status reports)."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

__all__ = ["SymbolStats"]


@dataclass
class SymbolStats:
    """Per-symbol transport and sync counters."""

    messages: int = 0
    depth: int = 0
    gaps: int = 0
    resyncs: int = 0
    snapshots: int = 0
    stale_snapshots: int = 0
    bad: int = 0
    dropped: int = 0
    dropped_depth: int = 0
    forced_resyncs: int = 0
    rest_errors: int = 0
    duplicates: int = 0  # repeated diffs and trades, dropped
    queued: int = 0
    synced: bool = False
    connected: bool = False
    # resync bookkeeping
    ever_synced: bool = False
    attempts: int = 0
    not_before: float = 0.0
    last_fetch: float = 0.0


@dataclass
class _Conn:
    cid: int
    url: str
    streams: list[str]
    symbols: list[str]
    ws: aiohttp.ClientWebSocketResponse | None = None
    connected: bool = False
    reconnects: int = 0
    names: dict[bytes, str] = field(default_factory=dict)
