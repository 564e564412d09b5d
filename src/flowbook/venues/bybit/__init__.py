"""Bybit v5 spot (``bybit``) and USDT perpetuals (``bybit-linear``): messages, parser, sequencer, feed."""

from ..common import SyncError
from .feed import VENUES, BybitFeed, BybitStats, trade_id
from .parser import decode
from .sequencer import Action, BookSequencer, Verdict

__all__ = ["VENUES", "Action", "BookSequencer", "BybitFeed", "BybitStats", "SyncError", "Verdict", "decode",
           "trade_id"]
