"""`BybitLive`: Bybit v5 spot (``bybit``) and USDT perpetuals (``bybit-linear``) live order books.

The generic push transport (:class:`~..pushlive.PushLive`) with Bybit's requests and answers
(:class:`.protocol.BybitProtocol`) and the feed ``flowbook replay`` uses for Bybit recordings
(:class:`.feed.BybitFeed`).  The book depth is ``LiveConfig.snapshot_limit`` (1, 50, 200 or 1000; default
50); a resync unsubscribes and subscribes ``orderbook.{depth}.{symbol}`` so Bybit pushes a new snapshot.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from ..binance.rest import LiveConfig
from ..pushlive import PushLive
from ..registry import Venue
from .protocol import BybitProtocol

__all__ = ["BybitLive"]


class BybitLive(PushLive):
    """Live books of Bybit symbols (see :class:`~..pushlive.PushLive` for the callbacks)."""

    def __init__(self, venue: Venue, symbols: list[str], config: LiveConfig | None = None,
                 on_events: Callable[[np.ndarray], None] | None = None,
                 on_frame: Callable[[str, int, bytes], None] | None = None, *,
                 feed: Any = None, rng: random.Random | None = None) -> None:
        if feed is None:
            from .feed import BybitFeed

            feed = BybitFeed(market=venue.market)
        super().__init__(venue, symbols, config, on_events, on_frame, protocol=BybitProtocol, feed=feed, rng=rng)
