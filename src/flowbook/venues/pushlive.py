"""`PushLive`: the live transport of venues that push the book snapshot over the WebSocket.

Bybit, OKX, Kraken and Coinbase send a symbol's book snapshot right after its book topic is subscribed,
then deltas.  There is no REST snapshot to fetch: a lost book is recovered by unsubscribing and
subscribing that symbol's book topic again.  The venue's text (requests, answers, heartbeats, limits) is a
:class:`~.pushstate.PushProtocol`; the venue's parser and sequencer are its feed (a
:class:`~.common.FeedCore` feed), the same one ``flowbook replay`` runs.

Sync and recovery, per symbol:

1. Connect (topics split across connections by the venue's limit), send ``subscribe`` requests batched by
   the venue's per-request limit, wait for every answer at start-up (a refusal raises
   :class:`SubscriptionRejected` with the venue's message).
2. The venue pushes the snapshot; the feed replaces the book and the symbol is synced.
3. Deltas go through the feed in queue order; a gap (or checksum mismatch) makes the feed lose that
   symbol's book and list it in ``pop_resyncs()``.
4. After each batch the adapter resubscribes those symbols only (``unsubscribe`` + ``subscribe`` of the
   book topic), with a per-symbol backoff so a broken symbol cannot loop hot.  A symbol still unsynced
   ``resync_idle`` seconds after its last request (its snapshot was lost) is asked again.
5. A reconnect unsyncs every symbol of that connection, in queue order after the frames it delivered;
   the new subscription brings new snapshots.

Queue policy: readers never wait.  A frame that finds the bounded queue full is dropped and counted
(``dropped``); a dropped book frame also unsyncs its symbol and resubscribes it.  A book frame the feed
cannot read does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np

from .binance.rest import Backoff, ConnectError, LiveConfig, LiveError, SubscriptionRejected
from .binance.state import SymbolStats
from .pushstate import Control, Pacer, PushConn, PushProtocol, PushSockets, Topic, plan_topics
from .registry import Venue

__all__ = ["ConnectError", "LiveConfig", "LiveError", "PushLive", "PushProtocol", "SubscriptionRejected",
           "SymbolStats", "push_depth"]

log = logging.getLogger("flowbook.live.push")
_BATCH = 256  # frames per consumer step before yielding to the readers
_STABLE = 1.0  # a book that held this long before it was lost starts its resubscription backoff over


def push_depth(venue: Venue, config: LiveConfig) -> int:
    """The book depth to subscribe: ``snapshot_limit``, checked against the venue's offered depths."""
    caps = venue.capabilities
    depth = caps.default_snapshot_limit if config.snapshot_limit is None else config.snapshot_limit
    if depth not in caps.snapshot_limits:
        raise LiveError(f"book depth {depth} not offered by {venue.name} "
                        f"({', '.join(map(str, caps.snapshot_limits))})")
    return depth


class PushLive(PushSockets):
    """Live order books of one push venue for a set of symbols.

    ``on_events(events)`` receives each batch of normalized events (``EVENT_DTYPE``);
    ``on_frame(symbol, ts_local, payload)`` every market-data frame in processing order (the recorder).
    Both run on the event loop and must not block.  Subclasses pass their ``protocol`` class and ``feed``.
    """

    def __init__(self, venue: Venue, symbols: list[str], config: LiveConfig | None = None,
                 on_events: Callable[[np.ndarray], None] | None = None,
                 on_frame: Callable[[str, int, bytes], None] | None = None, *,
                 protocol: type[PushProtocol], feed: Any, rng: random.Random | None = None) -> None:
        self.venue = venue
        self.symbols = list(symbols)
        self.config = cfg = config or LiveConfig()
        self.on_events = on_events
        self.on_frame = on_frame
        self.depth = push_depth(venue, cfg)
        self.protocol = protocol(venue, self.depth, cfg)
        self.feed = feed
        self.stats = {s: SymbolStats() for s in self.symbols}
        self.backoff = Backoff(cfg.reconnect_base, cfg.reconnect_cap, rng)
        url = self.protocol.url(cfg.ws_url)
        self.connections = [PushConn(i, url, t, s, lock=asyncio.Lock())
                            for i, (t, s) in enumerate(plan_topics(self.protocol, self.symbols))]
        self._conn_of = {s: c for c in self.connections for s in c.symbols}
        self._feed_kw = [self.protocol.feed_kwargs(c.cid) for c in self.connections]
        self.heartbeat = min(cfg.heartbeat, self.protocol.ping_interval)
        self._pings = self.protocol.ping("0") is not None
        self.unattributed = 0  # frames naming no symbol that are not answers either
        self.dropped_unattributed = 0
        self.pong_timeouts = 0
        self.internal_errors = 0
        self.requests_failed = 0
        self.requests_deferred = 0  # requests that waited for the connection's hourly budget
        pace = cfg.pace
        self._request_pacer = Pacer(self.protocol.requests_per_second if pace else 0.0)
        self._connect_pacer = Pacer(self.protocol.connections_per_second if pace else 0.0)
        self._q: deque[tuple[int, int, bytes | None, str | None, bool]] = deque()
        self._resets: set[str] = set()
        self._due: dict[str, float] = {}  # symbol -> when to resubscribe its book
        self._synced_at: dict[str, float] = {}  # symbol -> when its book was last synced
        self._ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._answered = asyncio.Event()
        self._starting = True
        self._start_error: LiveError | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task] = []
        self._sends: set[asyncio.Task] = set()
        self._consumer: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self._names: list[str] = []
        self._out: list[np.ndarray] = []
        self._seq = 0

    # -- lifecycle
    async def start(self) -> None:
        """Connect, subscribe every topic and wait for the venue's answers (errors raise :class:`LiveError`)."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        try:
            await asyncio.gather(*(self._connect(c, first=True) for c in self.connections))
            self._consumer = asyncio.create_task(self._consume(), name=f"{self.venue.name}-consumer")
            self._tasks = [asyncio.create_task(self._run_conn(c), name=f"{self.venue.name}-ws-{c.cid}")
                           for c in self.connections]
            for c in self.connections:
                await self._subscribe(c, c.topics)
            await self._await_answers(self.config.rest_timeout)
        except LiveError:
            await self._shutdown()
            raise
        self._starting = False

    async def _await_answers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(c.pending for c in self.connections) and self._start_error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectError(f"{self.venue.name}: no answer to the subscription within {timeout:g} s")
            self._answered.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._answered.wait(), left)
        if self._start_error is not None:
            raise self._start_error

    async def stop(self) -> None:
        """Unsubscribe (best effort), close the sockets, process what was received.  Safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        for c in self.connections:
            if c.ws is not None and not c.ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._subscribe(c, c.topics, "unsubscribe"), 1.0)
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        tasks = [*self._tasks, *self._sends]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._consumer is not None:
            self._wake.set()
            await asyncio.gather(self._consumer, return_exceptions=True)
        for c in self.connections:
            if c.ws is not None:
                with contextlib.suppress(Exception):
                    await c.ws.close()
            self._set_connected(c, False)
        if self._session is not None:
            await self._session.close()

    def request_snapshot(self, symbol: str) -> None:
        """Resubscribe the symbol's book now, so the venue pushes a new snapshot."""
        if symbol in self.stats and not self._stopping:
            self._due[symbol] = 0.0
            self._wake.set()

    @property
    def pacing_waits(self) -> int:
        """Requests and connections that waited for the venue's per-IP rate (see :class:`~.pushstate.Pacer`)."""
        return self._request_pacer.delayed + self._connect_pacer.delayed

    def symbol_name(self, sid: int) -> str:
        if sid >= len(self._names):
            self._names = list(self.feed.symbols)
        return self._names[sid]

    def synced(self, symbol: str) -> bool:
        return bool(self.feed.synced(symbol))

    @property
    def queue_depth(self) -> int:
        return len(self._q)

    @property
    def idle(self) -> bool:
        """Nothing queued, no resubscription due, no request waiting for the venue's answer."""
        return not self._q and not self._due and not any(c.pending for c in self.connections)

    def _enqueue(self, c: PushConn, ts: int, data: bytes) -> None:
        key = self.protocol.frame_key(data)
        sym, book = (key if key is not None and key[0] in self.stats else (None, False))
        if sym is None:
            ctl = self.protocol.control(data)
            if ctl is not None:
                self._on_control(c, ctl)
            if self.protocol.whole_connection and len(c.symbols) == 1:
                sym = c.symbols[0]  # the connection's answers and heartbeats are its symbol's frames too
            elif ctl is not None:
                return
            else:
                self.unattributed += 1
        if len(self._q) >= self.config.queue_size:
            if sym is None:
                self.dropped_unattributed += 1
            else:
                st = self.stats[sym]
                st.dropped += 1
                if book:  # the book is no longer provable: unsync and resubscribe it
                    st.dropped_depth += 1
                    self._resets.add(sym)
            self._wake.set()
            return
        self._q.append((ts, c.cid, data, sym, book))
        if sym is not None:
            self.stats[sym].queued += 1
        self._wake.set()

    def _on_control(self, c: PushConn, ctl: Control) -> None:
        if ctl.kind == "pong":
            c.last_pong = time.monotonic()
            return
        if ctl.kind not in ("ack", "error"):
            return
        rid = ctl.req_id if ctl.req_id in c.pending else next(
            (r for r, (op, _) in c.pending.items() if not ctl.op or op == ctl.op), None)
        op, syms = c.pending.pop(rid, ("", [])) if rid is not None else ("", [])
        self._answered.set()
        if ctl.kind == "ack":
            return
        self.requests_failed += 1
        text = f"{self.venue.name}: subscription rejected: {ctl.message or 'no reason given'}"
        if syms:
            text += f" ({', '.join(syms)})"
        if self._starting:
            self._start_error = self._start_error or SubscriptionRejected(text)
            return
        log.warning("event=request_failed venue=%s conn=%d op=%s %s", self.venue.name, c.cid, op, text)
        if op != "unsubscribe":  # an unsubscribe the venue did not know of is harmless
            for s in syms:
                self.stats[s].rest_errors += 1
                self._request_resub(s)

    # -- resubscription
    def _request_resub(self, sym: str) -> None:
        if sym in self._due or self._stopping:
            return
        st = self.stats[sym]
        now = time.monotonic()
        since = self._synced_at.pop(sym, None)
        if since is not None and now - since >= _STABLE:
            st.attempts = 0
        self._due[sym] = now + (self.backoff.delay(st.attempts - 1) if st.attempts else 0.0)
        st.attempts += 1

    def _send_due(self, now: float) -> None:
        for sym in [s for s, t in self._due.items() if t <= now]:
            c = self._conn_of[sym]
            if not c.connected:  # the reconnect subscribes everything anyway
                del self._due[sym]
                continue
            del self._due[sym]
            self.stats[sym].last_fetch = now
            topic = self.protocol.book_topic(sym)
            task = asyncio.create_task(self._resubscribe(c, topic), name=f"resubscribe-{sym}")
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _resubscribe(self, c: PushConn, topic: Topic) -> None:
        try:
            await self._subscribe(c, [topic], "unsubscribe")
            await self._subscribe(c, [topic])
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.warning("event=resubscribe_failed venue=%s symbol=%s error=%r", self.venue.name, topic.symbol, exc)

    def _force_resync(self, sym: str) -> None:
        """Unsync one symbol now (its book is cleared: an event) and resubscribe its book."""
        st = self.stats[sym]
        self._desync(sym)
        st.forced_resyncs += 1
        st.synced = False
        self._request_resub(sym)

    def _desync(self, sym: str) -> None:
        """Forget a symbol's book (:meth:`FeedCore.desync`: an event, and the sequencer's reset)."""
        s = self.feed.symbols.get(sym)
        if s is not None:
            self.feed.desync(s)

    # -- consumer
    async def _consume(self) -> None:
        last_hk = 0.0
        while True:
            if not (self._q or self._resets):
                if self._stopping:
                    break
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.05)
            try:
                self._step()
            except Exception:  # a bug must not stop the feed: count it, distrust every book, go on
                self.internal_errors += 1
                log.exception("event=internal_error venue=%s", self.venue.name)
                self._out = []
                self._resets.update(self.stats)
            now = time.monotonic()
            if self._due and not self._stopping:
                self._send_due(now)
            if now - last_hk >= 0.05:
                last_hk = now
                self._housekeeping(now)
            await asyncio.sleep(0)
        self._step()

    def _step(self) -> None:
        for sym in sorted(self._resets):
            self._force_resync(sym)
        self._resets.clear()
        feed, q, fs = self.feed, self._q, self.feed.stats
        for _ in range(min(len(q), _BATCH)):
            ts, cid, data, sym, book = q.popleft()
            if data is None:  # a connection ended here: its books wait for new snapshots
                self.protocol.connection_closed(feed, cid)
                for s in self.connections[cid].symbols:
                    self._desync(s)
                    self._note_sync(s, self.stats[s])
                continue
            self._seq += 1
            where = f"ws{cid}:{self._seq}"
            if sym is None:
                feed.on_frame(ts, data, where, None, **self._feed_kw[cid])
                continue
            st = self.stats[sym]
            st.queued -= 1
            gaps0, bad0, snap0 = fs.gaps + fs.checksum_failures, fs.bad_messages, fs.snapshots
            dup0 = fs.diffs_duplicate + fs.trades_duplicate
            feed.on_frame(ts, data, where, sym, **self._feed_kw[cid])
            if self.on_frame is not None:
                self.on_frame(sym, ts, data)
            st.messages += 1
            st.duplicates += fs.diffs_duplicate + fs.trades_duplicate - dup0
            if fs.bad_messages != bad0:
                st.bad += fs.bad_messages - bad0
                if book and feed.synced(sym):  # a book frame nobody could read: the chain is broken
                    self._force_resync(sym)
            st.gaps += fs.gaps + fs.checksum_failures - gaps0  # any frame may show a gap (Coinbase)
            if book:
                st.depth += 1
                st.snapshots += fs.snapshots - snap0
                self._note_sync(sym, st)
        for sym in feed.pop_resyncs():
            if sym in self.stats:
                self._note_sync(sym, self.stats[sym])
                self._request_resub(sym)
        self._out.append(feed.take_events())
        feed.depth_msg_end.clear()  # replay's source locations: live has no use for them
        feed.depth_msg_where.clear()
        out = self._out[0] if len(self._out) == 1 else np.concatenate(self._out)
        self._out = []
        if len(out) and self.on_events is not None:
            self.on_events(out)

    def _note_sync(self, sym: str, st: SymbolStats) -> None:
        synced = self.synced(sym)
        if synced and not st.synced:
            self._synced_at[sym] = time.monotonic()
            if st.ever_synced:
                st.resyncs += 1
            log.info("event=%s venue=%s symbol=%s", "resynced" if st.ever_synced else "synced", self.venue.name, sym)
            st.ever_synced = True
        st.synced = synced

    def _housekeeping(self, now: float) -> None:
        """Symbols still unsynced ``resync_idle`` seconds after their last request ask again."""
        idle = self.config.resync_idle
        for sym, st in self.stats.items():
            if st.synced or not st.connected or sym in self._due or now - st.last_fetch < idle:
                continue
            if not any(sym in syms for _, syms in self._conn_of[sym].pending.values()):  # not still waiting
                self._request_resub(sym)
