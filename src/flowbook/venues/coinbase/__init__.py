"""Coinbase: Advanced Trade ``level2``/``market_trades`` and the legacy Exchange feed: messages, parser,
sequencer, feed."""

from ..common import SyncError
from .feed import CoinbaseFeed, CoinbaseStats
from .parser import decode, parse_time_ns
from .sequencer import ConnectionSequencer, MatchSequence, RecentIds, Verdict

__all__ = ["CoinbaseFeed", "CoinbaseStats", "ConnectionSequencer", "MatchSequence", "RecentIds", "SyncError",
           "Verdict", "decode", "parse_time_ns"]
