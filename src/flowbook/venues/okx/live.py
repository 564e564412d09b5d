"""`OkxLive`: OKX v5 live order books (registry name ``okx``), any instrument type.

The generic push transport (:class:`~..pushlive.PushLive`) with OKX's requests and answers
(:class:`.protocol.OkxProtocol`) and the feed ``flowbook replay`` uses for OKX recordings
(:class:`.feed.OkxFeed`).  The book depth is ``LiveConfig.snapshot_limit``: 400 (``books``, default:
seqId/prevSeqId chain and CRC32 checksum) or 5 (``books5``, a 5-level snapshot per push).  A gap or a
checksum mismatch loses that instrument's book only; the transport unsubscribes and subscribes its book
channel so OKX pushes a new snapshot.  Instruments are inferred from the first snapshot (see
:mod:`.feed`); pass ``feed=OkxFeed(instruments=...)`` when tick and lot sizes are known.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from ..binance.rest import LiveConfig
from ..pushlive import PushLive
from ..registry import Venue
from .protocol import OkxProtocol

__all__ = ["OkxLive"]


class OkxLive(PushLive):
    """Live books of OKX instruments (see :class:`~..pushlive.PushLive` for the callbacks)."""

    def __init__(self, venue: Venue, symbols: list[str], config: LiveConfig | None = None,
                 on_events: Callable[[np.ndarray], None] | None = None,
                 on_frame: Callable[[str, int, bytes], None] | None = None, *,
                 feed: Any = None, rng: random.Random | None = None) -> None:
        if feed is None:
            from .feed import OkxFeed

            feed = OkxFeed()
        super().__init__(venue, symbols, config, on_events, on_frame, protocol=OkxProtocol, feed=feed, rng=rng)
