"""Live market data: runner (adapter -> books -> features), recorder, and the API for bots."""

from .api import LiveFeed, SnapshotStream
from .recorder import Recorder
from .runner import DEFAULT_EVENT_KINDS, LiveRunner
from .values import BookView, FeatureSnapshot, OpenInterestValue, SymbolStatus, Ticker24h

__all__ = [
    "DEFAULT_EVENT_KINDS",
    "BookView",
    "FeatureSnapshot",
    "LiveFeed",
    "LiveRunner",
    "OpenInterestValue",
    "Recorder",
    "SnapshotStream",
    "SymbolStatus",
    "Ticker24h",
]
