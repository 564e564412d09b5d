"""Binance spot, USD-M and COIN-M: messages, parser, sequencer, feed."""

from .feed import BinanceFeed, FeedStats, SyncError
from .parser import decode, market_of
from .sequencer import Action, DepthSequencer, SyncIssue

__all__ = ["Action", "BinanceFeed", "DepthSequencer", "FeedStats", "SyncError", "SyncIssue", "decode", "market_of"]
