"""The venue side of :class:`~flowbook.venues.pushlive.PushLive`: what a venue that pushes its book
snapshot over the WebSocket must tell the generic transport.

Bybit v5, OKX v5, Kraken v2 and Coinbase Advanced Trade all work the same way: open a socket, send
``subscribe`` requests naming topics, receive an acknowledgement, then the book snapshot of each book
topic followed by its deltas.  A resync is an ``unsubscribe`` plus a ``subscribe`` of that symbol's book
topic.  They differ only in the text of these requests and answers, in their limits and in their
heartbeats, which a :class:`PushProtocol` subclass states:

==========  ======================================  ====================  ===============================
venue       subscribe                               per request           client heartbeat
==========  ======================================  ====================  ===============================
Bybit v5    ``{"op":"subscribe","args":[topic]}``   spot 10 topics        ``{"op":"ping"}`` every 20 s
OKX v5      ``{"op":"subscribe","args":[{..}]}``    many; < 30 deep books  text ``ping`` -> ``pong``, < 30 s
Kraken v2   ``{"method":"subscribe","params":{}}``  one channel, symbols   ``{"method":"ping"}``
Coinbase    ``{"type":"subscribe","channel":..}``   one channel, products  ``heartbeats`` channel
==========  ======================================  ====================  ===============================

Everything here is synchronous and does no I/O; the transport calls it for every frame, so
:meth:`PushProtocol.frame_key` must not parse the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from .binance.rest import ConnectError, LiveError, SubscriptionRejected

if TYPE_CHECKING:
    from .binance.rest import Backoff, LiveConfig
    from .binance.state import SymbolStats
    from .registry import Venue

log = logging.getLogger("flowbook.live.push")

__all__ = ["Control", "PushConn", "PushProtocol", "PushSockets", "Topic", "plan_topics"]


@dataclass(frozen=True, slots=True)
class Topic:
    """One subscription of one symbol: ``name`` is the venue's own text for it (Bybit
    ``orderbook.50.BTCUSDT``; OKX the ``{"channel","instId"}`` argument as JSON), ``channel`` the venue's
    channel (``orderbook``, ``books``, ``book``, ``level2``), ``book`` whether it carries the book."""

    symbol: str
    channel: str
    name: str
    book: bool = False


@dataclass(frozen=True, slots=True)
class Control:
    """A frame that is not market data.  ``kind``: ``pong``, ``ack`` (a request succeeded), ``error`` (a
    request failed; ``message`` is the venue's text) or ``info`` (anything else the venue sends
    unasked, e.g. a welcome).  ``req_id`` names the request when the venue echoes it."""

    kind: str
    req_id: str | None = None
    message: str = ""
    op: str = ""


class PushProtocol:
    """What one push venue's transport needs to know (subclass per venue; one instance per adapter).

    Class attributes state the limits: ``topics_per_request`` (Bybit spot: 10 ``args``),
    ``topics_per_connection`` (split across connections beyond it) and ``ping_interval`` (seconds
    between client pings; the venue drops silent connections).  A second ``subscribe`` of a live topic
    is an error on every one of these venues, so a resync always sends ``unsubscribe`` first.
    """

    topics_per_request: int = 10
    topics_per_connection: int = 200
    ping_interval: float = 20.0
    #: per-IP pacing (0: none): subscribe/unsubscribe messages and new connections a second, across the
    #: adapter's connections; sends beyond it wait their turn (:class:`Pacer`)
    requests_per_second: float = 0.0
    connections_per_second: float = 0.0
    #: subscribe/unsubscribe requests one connection may send per ``request_window`` seconds (0: no
    #: budget); a request beyond it waits until the oldest one leaves the window
    requests_per_window: int = 0
    request_window: float = 3600.0
    #: every frame of a one-symbol connection is that symbol's: answers and heartbeats the venue numbers
    #: with the market data (Coinbase ``sequence_num``) go to the feed and the recorder as well
    whole_connection: bool = False

    def __init__(self, venue: Venue, depth: int, config: LiveConfig) -> None:
        self.venue = venue
        self.depth = depth
        self.config = config

    # -- what to open and subscribe
    def url(self, base: str | None) -> str:
        """The socket URL (``base`` is the configured override; a bare ``ws://host:port`` keeps the
        venue's path)."""
        default = self.venue.ws_url
        if not base:
            return default
        scheme, _, rest = base.partition("://")
        if "/" in rest.strip("/"):
            return base
        path = default.partition("://")[2].partition("/")[2]
        return f"{scheme}://{rest.rstrip('/')}/{path}"

    def topics(self, symbol: str) -> list[Topic]:
        """Every topic of one symbol, the book topic first."""
        raise NotImplementedError

    def book_topic(self, symbol: str) -> Topic:
        return next(t for t in self.topics(symbol) if t.book)

    def requests(self, op: str, topics: list[Topic],
                 next_id: Callable[[], str]) -> list[tuple[str, str, list[Topic]]]:
        """``(request id, text, its topics)`` of the requests that ``op`` (``subscribe`` / ``unsubscribe``)
        ``topics``, batched by ``topics_per_request`` (override to group by channel, as Kraken and
        Coinbase need)."""
        n = max(1, self.topics_per_request)
        out = []
        for i in range(0, len(topics), n):
            rid, batch = next_id(), topics[i:i + n]
            out.append((rid, self.request(op, batch, rid), batch))
        return out

    def request(self, op: str, topics: list[Topic], req_id: str) -> str:
        """The text of one request."""
        raise NotImplementedError

    def ping(self, req_id: str) -> str | None:
        """The client heartbeat text (``None``: the venue needs none; WebSocket pings are answered anyway)."""
        return None

    # -- what comes back
    def frame_key(self, data: bytes) -> tuple[str, bool] | None:
        """``(symbol, is a book frame)`` from the head of a market-data frame, without parsing it;
        ``None`` for anything else (answers, heartbeats, garbage)."""
        raise NotImplementedError

    def control(self, data: bytes) -> Control | None:
        """Classify a frame :meth:`frame_key` did not attribute (``None``: not a control frame)."""
        raise NotImplementedError

    # -- what the feed needs to know of connections
    def feed_kwargs(self, cid: int) -> dict[str, Any]:
        """Extra keyword arguments of ``feed.on_frame`` for frames of connection ``cid`` (Coinbase:
        ``connection=``)."""
        return {}

    def connection_closed(self, feed: Any, cid: int) -> None:
        """Connection ``cid`` ended (called in queue order, after its last frame, before the new socket's
        first one); the transport unsyncs its symbols itself."""


class Pacer:
    """Starts spaced ``1 / rate`` seconds apart, in order of arrival (``rate`` 0: no limit).  ``delayed``
    counts the starts that had to wait."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate if rate > 0 else 0.0
        self.next = 0.0
        self.delayed = 0

    async def wait(self) -> None:
        if not self.gap:
            return
        now = time.monotonic()
        start = max(now, self.next)
        self.next = start + self.gap
        if start > now:
            self.delayed += 1
            await asyncio.sleep(start - now)


@dataclass(eq=False)
class PushConn:
    """One socket of the adapter and the topics it carries."""

    cid: int
    url: str
    topics: list[Topic]
    symbols: list[str]
    ws: aiohttp.ClientWebSocketResponse | None = None
    connected: bool = False
    reconnects: int = 0
    last_pong: float = 0.0
    ping_sent: float = 0.0
    lock: Any = None  # asyncio.Lock serialising sends (created on the loop)
    pending: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # req id -> op, symbols
    sent: deque[float] = field(default_factory=deque)  # when its requests of the budget window went out


def plan_topics(protocol: PushProtocol, symbols: list[str]) -> list[tuple[list[Topic], list[str]]]:
    """``(topics, symbols)`` per connection: at most ``topics_per_connection`` topics each, all topics of
    one symbol on one connection."""
    limit = max(1, protocol.topics_per_connection)
    out: list[tuple[list[Topic], list[str]]] = []
    topics: list[Topic] = []
    syms: list[str] = []
    for s in symbols:
        mine = protocol.topics(s)
        if topics and len(topics) + len(mine) > limit:
            out.append((topics, syms))
            topics, syms = [], []
        topics += mine
        syms.append(s)
    if topics:
        out.append((topics, syms))
    return out


class PushSockets:
    """The socket side of :class:`~.pushlive.PushLive`: connect, subscribe, read, ping, reconnect.

    Every received frame goes to ``_enqueue`` (the adapter's queue policy); a socket that ends puts a
    marker in the queue, so its symbols are unsynced in order, after the frames it delivered.
    """

    venue: Venue
    protocol: PushProtocol
    config: LiveConfig
    backoff: Backoff
    stats: dict[str, SymbolStats]
    heartbeat: float
    pong_timeouts: int
    internal_errors: int
    _session: aiohttp.ClientSession | None
    _stopping: bool
    _pings: bool
    _ids: Any
    _q: Any
    _wake: asyncio.Event
    requests_deferred: int
    _request_pacer: Pacer
    _connect_pacer: Pacer

    def _enqueue(self, c: PushConn, ts: int, data: bytes) -> None:
        raise NotImplementedError

    async def _connect(self, c: PushConn, first: bool = False) -> None:
        assert self._session is not None
        await self._connect_pacer.wait()
        try:
            c.ws = await self._session.ws_connect(c.url, autoping=True, max_msg_size=64 * 2**20)
        except aiohttp.WSServerHandshakeError as exc:
            text = f"{self.venue.name}: connection refused by {c.url} (HTTP {exc.status} {exc.message})"
            if first and 400 <= exc.status < 500 and exc.status not in (408, 429):
                raise SubscriptionRejected(text) from None
            raise ConnectError(text) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ConnectError(f"{self.venue.name}: cannot connect to {c.url} ({type(exc).__name__}: {exc})") from None
        c.last_pong = c.ping_sent = time.monotonic()
        self._set_connected(c, True)
        log.info("event=connected venue=%s conn=%d topics=%d", self.venue.name, c.cid, len(c.topics))

    def _set_connected(self, c: PushConn, up: bool) -> None:
        c.connected = up
        for s in c.symbols:
            self.stats[s].connected = up

    async def _send(self, c: PushConn, text: str) -> None:
        ws = c.ws
        if ws is None or ws.closed:
            return
        async with c.lock:
            await ws.send_str(text)

    async def _subscribe(self, c: PushConn, topics: list[Topic], op: str = "subscribe") -> None:
        now = time.monotonic()
        for rid, text, batch in self.protocol.requests(op, topics, lambda: str(next(self._ids))):
            syms = list(dict.fromkeys(t.symbol for t in batch))
            c.pending[rid] = (op, syms)
            if op == "subscribe":
                for s in syms:
                    self.stats[s].last_fetch = now
            await self._within_budget(c)
            await self._request_pacer.wait()
            await self._send(c, text)

    async def _within_budget(self, c: PushConn) -> None:
        """Wait until connection ``c`` may send one more request within ``requests_per_window``."""
        n, window = self.protocol.requests_per_window, self.protocol.request_window
        if n <= 0 or not self.config.pace:
            return
        while True:
            now = time.monotonic()
            while c.sent and c.sent[0] <= now - window:
                c.sent.popleft()
            if len(c.sent) < n:
                c.sent.append(now)
                return
            self.requests_deferred += 1
            log.warning("event=request_budget venue=%s conn=%d wait=%.1f", self.venue.name, c.cid,
                        c.sent[0] + window - now)
            await asyncio.sleep(c.sent[0] + window - now)

    async def _run_conn(self, c: PushConn) -> None:
        attempt = 0
        while not self._stopping:
            ws = c.ws
            if ws is not None:
                pinger = asyncio.create_task(self._pinger(c, ws)) if self._pings else None
                try:
                    if await self._read(c, ws):
                        attempt = 0
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    log.warning("event=read_error venue=%s conn=%d error=%r", self.venue.name, c.cid, exc)
                except Exception:  # never let one connection's reader die
                    self.internal_errors += 1
                    log.exception("event=internal_error venue=%s conn=%d", self.venue.name, c.cid)
                finally:
                    if pinger is not None:
                        pinger.cancel()
                    self._set_connected(c, False)
                    c.ws = None
                    c.pending.clear()
                    with contextlib.suppress(Exception):
                        await ws.close()
                    if not self._stopping:  # in queue order: the frames already received stay valid
                        self._q.append((time.time_ns(), c.cid, None, None, False))
                        self._wake.set()
            if self._stopping:
                break
            delay = self.backoff.delay(attempt)
            attempt += 1
            c.reconnects += 1
            log.info("event=reconnect venue=%s conn=%d attempt=%d delay=%.3f", self.venue.name, c.cid, attempt, delay)
            await asyncio.sleep(delay)
            try:
                await self._connect(c)
                await self._subscribe(c, c.topics)
            except LiveError as exc:
                log.warning("event=connect_failed venue=%s conn=%d error=%s", self.venue.name, c.cid, exc)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                log.warning("event=subscribe_failed venue=%s conn=%d error=%r", self.venue.name, c.cid, exc)

    async def _pinger(self, c: PushConn, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Client heartbeat: no answer within half the interval closes the socket (the reader reconnects)."""
        wait = self.heartbeat / 2
        while not ws.closed:
            await asyncio.sleep(self.heartbeat - wait)
            sent = c.ping_sent = time.monotonic()
            text = self.protocol.ping(str(next(self._ids)))
            with contextlib.suppress(Exception):
                await self._send(c, text or "")
            await asyncio.sleep(wait)
            if c.last_pong < sent and not ws.closed:
                self.pong_timeouts += 1
                log.warning("event=pong_timeout venue=%s conn=%d", self.venue.name, c.cid)
                await ws.close()
                return

    async def _read(self, c: PushConn, ws: aiohttp.ClientWebSocketResponse) -> int:
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        n = 0
        while True:
            msg = await ws.receive()
            if msg.type is text:
                data = msg.data.encode()
            elif msg.type is binary:
                data = msg.data
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                if msg.type is aiohttp.WSMsgType.ERROR:
                    log.warning("event=ws_error venue=%s conn=%d error=%r", self.venue.name, c.cid, msg.data)
                return n
            n += 1
            self._enqueue(c, time.time_ns(), data)

