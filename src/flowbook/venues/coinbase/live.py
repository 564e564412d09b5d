"""`CoinbaseLive`: Coinbase Advanced Trade live order books (``coinbase`` in the registry).

The generic push transport (:class:`~..pushlive.PushLive`) with Coinbase's requests and answers
(:class:`.protocol.CoinbaseProtocol`) and the feed ``flowbook replay`` uses for Coinbase recordings
(:class:`.feed.CoinbaseFeed`).  ``level2`` is the full book (no depth to choose).  Each product has its own
connection, since ``sequence_num`` counts every message of a connection; the feed checks it per
connection (``connection="ws<id>"``) and a reconnect forgets the old numbering
(:meth:`CoinbaseFeed.reset_connection`).  A resync unsubscribes and subscribes ``level2`` for that
product, and Coinbase pushes a new snapshot.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from ..binance.rest import LiveConfig
from ..pushlive import PushLive
from ..registry import Venue
from .protocol import CoinbaseProtocol

__all__ = ["CoinbaseLive"]


class CoinbaseLive(PushLive):
    """Live books of Coinbase products (see :class:`~..pushlive.PushLive` for the callbacks)."""

    def __init__(self, venue: Venue, symbols: list[str], config: LiveConfig | None = None,
                 on_events: Callable[[np.ndarray], None] | None = None,
                 on_frame: Callable[[str, int, bytes], None] | None = None, *,
                 feed: Any = None, rng: random.Random | None = None) -> None:
        if feed is None:
            from .feed import CoinbaseFeed

            feed = CoinbaseFeed()
        super().__init__(venue, symbols, config, on_events, on_frame, protocol=CoinbaseProtocol, feed=feed,
                         rng=rng)
