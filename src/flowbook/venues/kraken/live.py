"""`KrakenLive`: Kraken spot (WebSocket v2) live order books.

The generic push transport (:class:`~..pushlive.PushLive`) with Kraken's requests and answers
(:class:`.protocol.KrakenProtocol`) and the feed ``flowbook replay`` uses for Kraken recordings
(:class:`.feed.KrakenFeed`).  The book depth is ``LiveConfig.snapshot_limit`` (10, 25, 100, 500 or 1000;
default 100).  Kraken's ``book`` messages carry no sequence number: the CRC32 checksum of the top 10
levels, checked on every message, is the only loss detector, and a mismatch resubscribes that pair only
(``unsubscribe`` + ``subscribe`` of its ``book``, and Kraken pushes a new snapshot).

The checksum needs each pair's price and quantity precisions.  They come from the ``instrument`` channel,
subscribed first on every connection, or from ``instruments=`` (then that channel is not subscribed).

What goes to the recorder (``on_frame``), so that a pair's files replay on their own through
:func:`flowbook.replay.kraken.load_kraken`: every market-data frame of the pair as received, the pair's
successful ``book`` subscribe answers (they carry the depth the feed truncates to), and the pair's entry
of each ``instrument`` message (the entry's bytes as received, alone in an ``instrument`` message; again
when the recorder starts a new file).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ...events import Instrument
from ..binance.rest import LiveConfig
from ..pushlive import PushConn, PushLive, push_depth
from ..pushstate import Topic
from ..registry import Venue
from .protocol import INSTRUMENT_HEAD, KrakenProtocol

__all__ = ["KrakenLive"]


class _KnownInstruments(KrakenProtocol):
    """The precisions were given: no ``instrument`` channel."""

    def topics(self, symbol: str) -> list[Topic]:
        return [t for t in super().topics(symbol) if t.channel != "instrument"]


def _places(step: str) -> int:
    return len(step.partition(".")[2].rstrip("0")) if "." in step else 0


def _instrument_frame(inst: Instrument) -> bytes:
    return (b'{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"%s",'
            b'"price_precision":%d,"qty_precision":%d}]}}'
            % (inst.symbol.encode(), _places(inst.tick_size), _places(inst.lot_size)))


class KrakenLive(PushLive):
    """Live books of Kraken spot pairs (``BTC/USD``; see :class:`~..pushlive.PushLive` for the callbacks).

    ``instruments``: known pairs by symbol (tick ``10**-price_precision``, lot ``10**-qty_precision``);
    when every subscribed pair is among them the ``instrument`` channel is left out.
    """

    def __init__(self, venue: Venue, symbols: list[str], config: LiveConfig | None = None,
                 on_events: Callable[[np.ndarray], None] | None = None,
                 on_frame: Callable[[str, int, bytes], None] | None = None, *,
                 feed: Any = None, rng: random.Random | None = None,
                 instruments: dict[str, Instrument] | None = None) -> None:
        cfg = config or LiveConfig()
        known = dict(instruments or {})
        if feed is None:
            from .feed import KrakenFeed

            feed = KrakenFeed(instruments=known or None, depth=push_depth(venue, cfg))
        protocol = _KnownInstruments if symbols and all(s in known for s in symbols) else KrakenProtocol
        super().__init__(venue, symbols, cfg, on_events, on_frame, protocol=protocol, feed=feed, rng=rng)
        self._instrument_frames: dict[str, bytes] = {
            s: _instrument_frame(known[s]) for s in self.symbols if s in known}
        for s, frame in self._instrument_frames.items():  # so that a recording holds them too
            self._put(self._conn_of[s], time.time_ns(), frame, s)

    def request_snapshot(self, symbol: str) -> None:
        """Resubscribe the pair's book; a new recording file also gets the pair's instrument first."""
        frame = self._instrument_frames.get(symbol)
        if frame is not None and symbol in self.stats and not self._stopping:
            self._put(self._conn_of[symbol], time.time_ns(), frame, symbol)
        super().request_snapshot(symbol)

    def _put(self, c: PushConn, ts: int, data: bytes, sym: str) -> None:
        """Queue a frame of one pair that is not a book message (the queue policy of
        :meth:`PushLive._enqueue`: a full queue loses it, counted)."""
        st = self.stats[sym]
        if len(self._q) >= self.config.queue_size:
            st.dropped += 1
        else:
            self._q.append((ts, c.cid, data, sym, False))
            st.queued += 1
        self._wake.set()

    def _enqueue(self, c: PushConn, ts: int, data: bytes) -> None:
        if data.startswith(INSTRUMENT_HEAD):
            for sym, frame in self.protocol.instrument_frames(data, self.stats):  # type: ignore[attr-defined]
                self._instrument_frames[sym] = frame
                self._put(c, ts, frame, sym)
            return
        if data.startswith(b'{"method":"subscribe"'):
            ctl = self.protocol.control(data)
            if ctl is not None:
                self._on_control(c, ctl)
            sym = KrakenProtocol.book_answer(data)
            if sym is not None and sym in self.stats:
                self._put(c, ts, data, sym)
            return
        super()._enqueue(c, ts, data)
