"""Kraken spot market data: WebSocket v2 (and v1 for the recorded captures), checksum-guarded books."""

from .feed import KrakenFeed, SyncError, instrument_of

__all__ = ["KrakenFeed", "SyncError", "instrument_of"]
