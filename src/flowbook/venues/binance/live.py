"""Binance live adapter: a thin async transport around :class:`~.feed.BinanceFeed`.

Sockets and REST only move bytes.  Every frame goes through the same feed, parser and sequencer that
``flowbook replay`` uses, in the order the consumer takes it from the queue, and that is also the order
the recorder writes it in: a recording replays through exactly the code that processed it live.

Sync (Binance "How to manage a local order book correctly", reference §B.1; steps in :mod:`.sequencer`):

1. Open the combined streams; the sequencer buffers each symbol's diffs while it has no book.
2. After a symbol's first buffered diff, fetch its REST depth snapshot (within the REST weight budget).
3. The snapshot goes through the feed like any frame: the sequencer drops old diffs, checks the first
   applied one and the chain (``pu`` on futures, ``U == u+1`` on spot).  A snapshot older than the
   buffer is refused; the symbol fetches again after a backoff.
4. A gap unsyncs that symbol only (the feed clears its book); its next diff triggers a new snapshot.

Periodic REST (open interest; the REST-polling mode, which opens no socket) lives in :mod:`.poll`.
24 h tickers (``@ticker``) produce no event; the feed keeps the latest per symbol (:meth:`BinanceLive.ticker`).

Queue policy: readers never wait.  When the bounded queue is full the frame is dropped and counted per
symbol; a dropped depth diff also unsyncs that symbol at once (book cleared, new snapshot).  A depth
frame that is not valid JSON does the same.  A reconnect does not clear books: the chain check on the
first diff after it proves whether anything was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable

import aiohttp
import numpy as np

from ...events import Flag, Kind, empty_events
from ..registry import Venue
from .feed import BinanceFeed
from .messages import OpenInterest, Ticker
from .poll import RestPoller
from .rest import (
    Backoff,
    BinanceRest,
    ConnectError,
    LiveConfig,
    LiveError,
    RestError,
    SubscriptionRejected,
    UnknownSymbol,
    WeightLimiter,
    plan_connections,
    stream_key,
)
from .state import SymbolStats, _Conn

__all__ = ["BinanceLive", "ConnectError", "LiveConfig", "LiveError", "SubscriptionRejected", "SymbolStats",
           "plan_connections"]

log = logging.getLogger("flowbook.live.binance")
_BATCH = 256  # frames per consumer step before yielding to the readers and REST


class BinanceLive:
    """Live order books of one Binance market for a set of symbols.

    ``on_events(events)`` receives each batch of normalized events (all symbols, ``EVENT_DTYPE``);
    ``on_frame(symbol, ts_local, payload)`` every frame and REST snapshot in processing order (for the
    recorder).  Both run on the event loop; they must not block.
    """

    def __init__(self, venue: Venue, symbols: list[str], config: LiveConfig | None = None,
                 on_events: Callable[[np.ndarray], None] | None = None,
                 on_frame: Callable[[str, int, bytes], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self.venue = venue
        self.symbols = list(symbols)
        self.config = cfg = config or LiveConfig()
        self.on_events = on_events
        self.on_frame = on_frame
        self.feed = BinanceFeed(locations=False)
        self.stats = {s: SymbolStats() for s in self.symbols}
        self.unattributed = 0  # frames naming no stream (acks, errors, garbage)
        self.dropped_unattributed = 0
        self.internal_errors = 0
        self.backoff = Backoff(cfg.reconnect_base, cfg.reconnect_cap, rng)
        caps = venue.capabilities
        self.poll_mode = bool(cfg.poll_interval)
        self.snapshot_limit = cfg.snapshot_limit or (20 if self.poll_mode else caps.default_snapshot_limit)
        if self.snapshot_limit not in caps.snapshot_limits:
            raise LiveError(f"snapshot limit {self.snapshot_limit} not offered by {venue.name} "
                            f"({', '.join(map(str, caps.snapshot_limits))})")
        if cfg.poll_interval is not None and cfg.poll_interval <= 0:
            raise LiveError(f"poll interval must be positive, got {cfg.poll_interval}")
        self.connections = [] if self.poll_mode else [
            _Conn(i, url, st, sy) for i, (url, st, sy) in enumerate(plan_connections(venue, self.symbols, cfg))]
        self._conn_of = {s: c for c in self.connections for s in c.symbols if any(
            n.startswith(f"{s.lower()}@depth") for n in c.streams)}
        self._q: deque[tuple[int, int, bytes, str | None, bytes]] = deque()
        self._control: deque[tuple[str, int, bytes, str]] = deque()  # REST answers: symbol, time, body, kind
        self.poller = RestPoller(self)
        self._resets: set[str] = set()
        self._fetching: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._fetch_tasks: dict[str, asyncio.Task] = {}
        self._stopping = False
        self._consumer: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self.rest: BinanceRest | None = None
        self._names: list[str] = []
        self._out: list[np.ndarray] = []
        self._seq = 0

    # -- lifecycle
    async def start(self) -> None:
        """Check the symbols, open every connection once (errors raise :class:`LiveError`), run."""
        cfg = self.config
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        budget = cfg.weight_budget or self.venue.capabilities.rest_weight_per_minute * 0.5
        self.rest = BinanceRest(self.venue, self._session, cfg.rest_url, WeightLimiter(budget), cfg.rest_timeout)
        try:
            if cfg.validate_symbols:
                try:
                    info = await self.rest.exchange_info(self.symbols)
                except RestError as exc:
                    raise ConnectError(f"{self.venue.name}: cannot reach {self.rest.base} ({exc})") from None
                for sym, entry in info.items():  # COIN-M: USD per contract of an inverse contract
                    if "contractSize" in entry:
                        self.feed.contract_sizes[sym] = float(entry["contractSize"])
            await asyncio.gather(*(self._connect(c, first=True) for c in self.connections))
        except (LiveError, UnknownSymbol):
            await self._close_all()
            raise
        now = time.monotonic()
        for st in self.stats.values():
            st.last_fetch = now
        self._consumer = asyncio.create_task(self._consume(), name="binance-consumer")
        self._tasks = [asyncio.create_task(self._run_conn(c), name=f"binance-ws-{c.cid}") for c in self.connections]
        self._tasks += self.poller.tasks()

    async def stop(self) -> None:
        """Close sockets, process what was received, close the session.  Safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        for t in [*self._tasks, *self._fetch_tasks.values()]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._fetch_tasks.values(), return_exceptions=True)
        if self._consumer is not None:
            self._wake.set()
            await asyncio.gather(self._consumer, return_exceptions=True)
        await self._close_all()

    async def _close_all(self) -> None:
        for c in self.connections:
            if c.ws is not None:
                with contextlib.suppress(Exception):
                    await c.ws.close()
            self._set_connected(c, False)
        if self._session is not None:
            await self._session.close()

    def request_snapshot(self, symbol: str) -> None:
        """Fetch and process a snapshot now (e.g. so a new recording file starts with one)."""
        if symbol in self.stats and not self._stopping:
            self._start_fetch(symbol, forced=True)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def deliver(self, sym: str, ts: int, body: bytes, kind: str) -> None:
        """Hand a REST answer to the consumer (``kind``: ``snapshot`` of a resync, ``poll`` for a polled
        snapshot, ``rest`` for anything else); it is processed and recorded in arrival order."""
        self._control.append((sym, ts, body, kind))
        self._wake.set()

    def ticker(self, symbol: str) -> tuple[int, Ticker] | None:
        """``(receive time ns, message)`` of the symbol's latest 24 h ticker."""
        return self.feed.tickers.get(symbol)

    def open_interest(self, symbol: str) -> tuple[int, OpenInterest] | None:
        """``(receive time ns, message)`` of the symbol's latest open interest answer."""
        return self.feed.open_interest.get(symbol)

    def symbol_name(self, sid: int) -> str:
        if sid >= len(self._names):
            self._names = list(self.feed.symbols)
        return self._names[sid]

    def synced(self, symbol: str) -> bool:
        s = self.feed.symbols.get(symbol)
        return bool(s is not None and s.seq is not None and s.seq.synced)

    @property
    def queue_depth(self) -> int:
        return len(self._q)

    @property
    def snapshots_in_flight(self) -> int:
        return len(self._fetching)

    # -- transport
    async def _connect(self, c: _Conn, first: bool = False) -> None:
        assert self._session is not None
        try:
            c.ws = await self._session.ws_connect(c.url, heartbeat=self.config.heartbeat, autoping=True,
                                                  max_msg_size=16 * 2**20)
        except aiohttp.WSServerHandshakeError as exc:
            text = f"{self.venue.name}: subscription rejected by {c.url.split('?')[0]} (HTTP {exc.status} {exc.message})"
            if first and 400 <= exc.status < 500 and exc.status not in (408, 429):
                raise SubscriptionRejected(text) from None
            raise ConnectError(text) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ConnectError(f"{self.venue.name}: cannot connect to {c.url.split('?')[0]} "
                               f"({type(exc).__name__}: {exc})") from None
        self._set_connected(c, True)
        log.info("event=connected venue=%s conn=%d streams=%d", self.venue.name, c.cid, len(c.streams))

    def _set_connected(self, c: _Conn, up: bool) -> None:
        c.connected = up
        for s in c.symbols:
            if self._conn_of.get(s) is c:
                self.stats[s].connected = up

    async def _run_conn(self, c: _Conn) -> None:
        attempt = 0
        while not self._stopping:
            ws = c.ws
            if ws is not None:
                try:
                    await self._read(c, ws)
                    attempt = 0
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    log.warning("event=read_error venue=%s conn=%d error=%r", self.venue.name, c.cid, exc)
                except Exception:  # never let one connection's reader die
                    self.internal_errors += 1
                    log.exception("event=internal_error venue=%s conn=%d", self.venue.name, c.cid)
                finally:
                    self._set_connected(c, False)
                    c.ws = None
                    with contextlib.suppress(Exception):
                        await ws.close()
            if self._stopping:
                break
            delay = self.backoff.delay(attempt)
            attempt += 1
            c.reconnects += 1
            log.info("event=reconnect venue=%s conn=%d attempt=%d delay=%.3f", self.venue.name, c.cid, attempt, delay)
            await asyncio.sleep(delay)
            try:
                await self._connect(c)
            except LiveError as exc:
                log.warning("event=connect_failed venue=%s conn=%d error=%s", self.venue.name, c.cid, exc)

    async def _read(self, c: _Conn, ws: aiohttp.ClientWebSocketResponse) -> None:
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        while True:
            msg = await ws.receive()
            if msg.type is text:
                data = msg.data.encode()
            elif msg.type is binary:
                data = msg.data
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                if msg.type is aiohttp.WSMsgType.ERROR:
                    log.warning("event=ws_error venue=%s conn=%d error=%r", self.venue.name, c.cid, msg.data)
                return
            self._enqueue(c, time.time_ns(), data)

    def _enqueue(self, c: _Conn, ts: int, data: bytes) -> None:
        key = stream_key(data)
        sym: str | None = None
        kind = b""
        if key is not None:
            raw, kind = key
            sym = c.names.get(raw)
            if sym is None:
                sym = c.names[raw] = raw.decode(errors="replace").upper()
            if sym not in self.stats:
                sym = None
        if sym is None:
            self.unattributed += 1
            if data.startswith(b'{"error"') or b'"error":' in data[:16]:
                log.warning("event=venue_error venue=%s conn=%d body=%s", self.venue.name, c.cid, data[:200])
                return
        if len(self._q) >= self.config.queue_size:
            if sym is None:
                self.dropped_unattributed += 1
            else:  # full: drop, count, and unsync the symbol if it was a diff
                st = self.stats[sym]
                st.dropped += 1
                if kind == b"depth":
                    st.dropped_depth += 1
                    self._resets.add(sym)
            self._wake.set()
            return
        self._q.append((ts, c.cid, data, sym, kind))
        if sym is not None:
            self.stats[sym].queued += 1
        self._wake.set()

    # -- snapshots
    def _start_fetch(self, sym: str, forced: bool = False) -> None:
        if sym in self._fetching:
            return
        st = self.stats[sym]
        now = time.monotonic()
        if not forced and now < st.not_before:
            return
        st.last_fetch = now
        self._fetching.add(sym)
        self._fetch_tasks[sym] = asyncio.create_task(self._fetch(sym), name=f"snapshot-{sym}")

    async def _fetch(self, sym: str) -> None:
        assert self.rest is not None
        st = self.stats[sym]
        attempt = 0
        while not self._stopping:
            try:
                ts, body = await self.rest.depth(sym, self.snapshot_limit)
            except RestError as exc:  # 429/418 block the limiter itself; others back off
                st.rest_errors += 1
                log.warning("event=snapshot_failed venue=%s symbol=%s error=%s", self.venue.name, sym, exc)
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            self.deliver(sym, ts, body, "snapshot")
            break
        self._fetch_tasks.pop(sym, None)

    def _on_rest(self, sym: str, ts: int, body: bytes, kind: str) -> None:
        """A REST answer through the feed and into the recording (one line each)."""
        if b"\n" in body or b"\r" in body:
            body = body.replace(b"\r", b" ").replace(b"\n", b" ")
        if kind == "snapshot":
            self._on_snapshot(sym, ts, body)
            return
        st = self.stats[sym]
        self._through_feed(sym, st, ts, body, f"rest:{sym}", sym)
        if kind == "poll":
            st.snapshots += 1
            self._note_sync(sym, st)

    def _on_snapshot(self, sym: str, ts: int, body: bytes) -> None:
        self._fetching.discard(sym)
        st = self.stats[sym]
        self._through_feed(sym, st, ts, body, f"rest:{sym}", sym)
        st.snapshots += 1
        self._note_sync(sym, st)
        if not st.synced:  # stale or unusable: try again after a backoff
            st.attempts += 1
            st.not_before = time.monotonic() + self.backoff.delay(st.attempts)

    def _through_feed(self, sym: str, st: SymbolStats, ts: int, body: bytes, where: str, hint: str | None) -> int:
        """One frame or REST answer through the feed and into the recording; its repeats, bad messages and
        stale snapshots are the symbol's.  Returns the gaps it found."""
        fs = self.feed.stats
        gaps0, bad0, stale0 = fs.gaps, fs.bad_messages, fs.stale_snapshots
        dup0 = fs.diffs_duplicate + fs.trades_duplicate
        self.feed.on_frame(ts, body, where, hint)
        if self.on_frame is not None:
            self.on_frame(sym, ts, body)
        st.duplicates += fs.diffs_duplicate + fs.trades_duplicate - dup0
        st.bad += fs.bad_messages - bad0
        st.stale_snapshots += fs.stale_snapshots - stale0
        return fs.gaps - gaps0

    def _note_sync(self, sym: str, st: SymbolStats) -> None:
        synced = self.synced(sym)
        if synced and not st.synced:
            if st.ever_synced:
                st.resyncs += 1
            log.info("event=%s venue=%s symbol=%s", "resynced" if st.ever_synced else "synced",
                     self.venue.name, sym)
            st.ever_synced = True
            st.attempts = 0
        st.synced = synced

    def _force_resync(self, sym: str) -> None:
        """Unsync one symbol now: its book is cleared (an event) and a new snapshot is fetched."""
        s = self.feed.symbols.get(sym)
        st = self.stats[sym]
        if s is None or s.seq is None or not s.seq.synced:
            return
        # BinanceFeed has no public per-symbol reset: reset its sequencer and emit the clear the feed
        # would emit on a gap, after the events already produced
        s.seq.reset()
        self._out.append(self.feed.take_events())
        clear = empty_events(1)
        clear[0]["kind"], clear[0]["flags"], clear[0]["symbol"] = int(Kind.BOOK_CLEAR), int(Flag.END_OF_MESSAGE), s.sid
        clear[0]["ts_local"] = time.time_ns()
        self._out.append(clear)
        st.forced_resyncs += 1
        st.synced = False
        self._start_fetch(sym, forced=True)

    # -- consumer
    async def _consume(self) -> None:
        last_hk = time.monotonic()
        while True:
            if not (self._q or self._control or self._resets):
                if self._stopping:
                    break
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.25)
            try:
                self._step()
            except Exception:  # a bug must not stop the feed: count it, distrust every book, go on
                self.internal_errors += 1
                log.exception("event=internal_error venue=%s", self.venue.name)
                self._out = []
                self._resets.update(self.stats)
            now = time.monotonic()
            if now - last_hk >= 0.25:
                last_hk = now
                self._housekeeping(now)
            await asyncio.sleep(0)
        self._step()

    def _step(self) -> None:
        for sym in sorted(self._resets):
            self._force_resync(sym)
        self._resets.clear()
        while self._control:
            self._on_rest(*self._control.popleft())
        feed, q = self.feed, self._q
        for _ in range(min(len(q), _BATCH)):
            ts, cid, data, sym, kind = q.popleft()
            self._seq += 1
            if sym is None:
                feed.on_frame(ts, data, f"ws{cid}:{self._seq}", None)
                continue
            st = self.stats[sym]
            st.queued -= 1
            bad0 = st.bad
            gaps = self._through_feed(sym, st, ts, data, f"ws{cid}:{self._seq}", None)
            st.messages += 1
            if kind == b"depth":
                if st.bad != bad0:  # a diff we could not read: the chain is broken
                    self._force_resync(sym)
                st.depth += 1
                st.gaps += gaps
                self._note_sync(sym, st)
                if not st.synced:
                    self._start_fetch(sym)
        self._out.append(feed.take_events())
        out = self._out[0] if len(self._out) == 1 else np.concatenate(self._out)
        self._out = []
        if len(out) and self.on_events is not None:
            self.on_events(out)

    def _housekeeping(self, now: float) -> None:
        if self.poll_mode:  # every poll brings a snapshot
            return
        for sym, st in self.stats.items():
            if st.synced or not st.connected or sym in self._fetching:
                continue
            if now >= st.not_before and now - st.last_fetch >= self.config.resync_idle:
                self._start_fetch(sym)
