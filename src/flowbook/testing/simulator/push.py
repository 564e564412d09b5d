"""`PushSimulator`: a WebSocket market-data server on 127.0.0.1 for venues that push book snapshots.

The venue's text is a :class:`PushRenderer` (``BybitRenderer`` in :mod:`.bybit`); the server owns the
rest: the truth (:class:`~.pushtruth.PushTruth`, the full book per symbol), one ``u`` counter per book
topic (symbol, depth), subscriptions per connection, pacing (``speed`` times the recording's clock,
``math.inf``: as fast as the sockets take it) and faults (:class:`~.pushtruth.PushFaultPlan`).

A subscribed book topic gets a snapshot of the current top-``depth`` window, then one delta per step
that changes the window (``u`` + 1 each).  A topic's ``u`` starts at 1 when it is first subscribed and
again after a ``restart``.  Unknown symbols and depths are refused in the subscription answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from .check import SimulatorThread
from .pushrender import PushRenderer, Request, SimTopic, TickerState
from .pushtruth import PushFaultPlan, PushMarket, PushTruth, Step

__all__ = ["PushRenderer", "PushSimulator", "PushSimulatorThread", "Request", "SimTopic", "TickerState"]


@dataclass
class _Topic:
    u: int = 0
    seq: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    skip: int = 0  # the next delta's u jumps by this much more (the ``unchained`` fault)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    subs: dict[tuple[str, str], SimTopic] = field(default_factory=dict)
    held: dict[tuple[str, str], str] = field(default_factory=dict)
    numbered: int = 0  # messages numbered on this connection (the renderer's ``seq_mark``)


class PushSimulator:
    """A scriptable push-venue server.  Use as ``async with PushSimulator(market, BybitRenderer()) as sim``.

    ``min_books``: the broadcast starts once this many book topics are subscribed.  ``ticker_every``: a
    ticker push per symbol every N book steps.  ``answer_pings``: False makes the server ignore client
    pings (the client's pong timeout then reconnects).
    """

    def __init__(self, market: PushMarket, renderer: PushRenderer, *, speed: float = math.inf,
                 faults: PushFaultPlan | None = None, min_books: int = 1, ticker_every: int = 50,
                 host: str = "127.0.0.1", port: int = 0, chunk: int = 32) -> None:
        self.market = market
        self.renderer = renderer
        self.truth = PushTruth(market)
        self.speed = speed
        self.faults = faults or PushFaultPlan()
        self.min_books = min_books
        self.ticker_every = ticker_every
        self.answer_pings = True
        # optional: ``seq_mark`` (placeholder of the connection's message number), ``heartbeat(counter, ts_ms)``
        # (pushed every ``ticker_every`` steps to sockets subscribed to a ``heartbeat`` topic, symbol "")
        self._mark: str | None = getattr(renderer, "seq_mark", None)
        self._beats = getattr(renderer, "heartbeat", None)
        self.host, self.port, self.chunk = host, port, chunk
        self.stats: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {"connect": [], "request": []}  # monotonic times, as a venue's limiter sees them
        self.done = asyncio.Event()
        self.position = 0
        self._topics: dict[tuple[str, int], _Topic] = {}
        self._conns: set[_Conn] = set()
        self._subscribed = asyncio.Event()
        self._carry: dict[str, list[str]] = {}
        self._last_trade: dict[str, str] = {}
        self._books_seen: Counter[str] = Counter()
        self._refuse = 0
        self._down = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._task: asyncio.Task | None = None
        self._later: set[asyncio.Task] = set()

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, path: str | None = None) -> str:
        return f"ws://{self.host}:{self.port}{path or self.renderer.paths[0]}"

    async def start(self) -> PushSimulator:
        app = web.Application()
        for p in self.renderer.paths:
            app.router.add_get(p, self._ws)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen()
        self._task = asyncio.create_task(self._broadcast(), name="push-sim-broadcast")
        return self

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        for t in [self._task, *self._later]:
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        await self._drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> PushSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _drop_all(self) -> None:
        for c in list(self._conns):
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"going away")
        self._conns.clear()

    def book_u(self, symbol: str, depth: int) -> int | None:
        """The last ``u`` of a book topic (``None`` if never subscribed)."""
        t = self._topics.get((symbol, depth))
        return None if t is None else t.u

    # -- WebSocket
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self._refuse > 0 or self._down > 0:
            self.stats["refused"] += 1
            return web.Response(status=503, text="service unavailable")
        self.arrivals["connect"].append(time.monotonic())
        c = _Conn(web.WebSocketResponse(autoping=True, max_msg_size=1 << 20))
        await c.ws.prepare(request)
        self._conns.add(c)
        self.stats["connections"] += 1
        try:
            async for msg in c.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._request(c, msg.data)
        finally:
            self._conns.discard(c)
        return c.ws

    async def _request(self, c: _Conn, text: str) -> None:
        r = self.renderer
        req = r.parse(text)
        if req.op == "ping":
            self.stats["pings"] += 1
            if self.answer_pings:
                await self._send(c, r.pong(req))
            return
        self.arrivals["request"].append(time.monotonic())
        if req.op == "unsubscribe":
            for t in req.topics:
                c.subs.pop((t.symbol, t.channel), None)
            await self._answer(c, r.answer(req, True))
            return
        if req.op != "subscribe":
            await self._answer(c, r.answer(req, False, "error:unreadable request"))
            return
        for t in req.topics:
            if t.channel == "heartbeat":  # connection-wide: no symbol to check
                continue
            if t.symbol not in self.truth.books or (t.channel == "book" and t.depth not in r.depths):
                self.stats["rejected"] += 1
                await self._answer(c, r.answer(req, False, r.unknown(t)))
                return
        fault = self.faults.next_subscription(t.symbol for t in req.topics)
        if fault is not None and fault.kind == "reject":
            self.stats["rejected"] += 1
            await self._answer(c, r.answer(req, False, fault.message))
            return
        if fault is not None and fault.kind == "slow":
            task = asyncio.create_task(self._activate_later(c, req, fault.delay))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return
        await self._activate(c, req)

    async def _activate_later(self, c: _Conn, req: Request, delay: float) -> None:
        await asyncio.sleep(delay)
        if c in self._conns:
            await self._activate(c, req)

    async def _activate(self, c: _Conn, req: Request) -> None:
        await self._answer(c, self.renderer.answer(req, True))
        for t in req.topics:
            c.subs[(t.symbol, t.channel)] = t
            if t.channel == "book":
                await self._send(c, self._snapshot(t))
        if sum(1 for x in self._conns for k in x.subs if k[1] == "book") >= self.min_books:
            self._subscribed.set()

    def _topic(self, t: SimTopic) -> _Topic:
        key = (t.symbol, t.depth)
        st = self._topics.get(key)
        if st is None:
            bids, asks = self.truth.view(t.symbol, t.depth)
            st = self._topics[key] = _Topic(1, 1, bids, asks)
        self.truth.last_u[t.symbol] = st.u
        self.truth.depth[t.symbol] = t.depth
        return st

    def _snapshot(self, t: SimTopic) -> str:
        st = self._topic(t)
        tx = self.truth.texts
        return self.renderer.book(t, True, tx(t.symbol, st.bids.items()), tx(t.symbol, st.asks.items()), st.u,
                                  st.seq, _now_ms())

    # -- broadcast
    async def _broadcast(self) -> None:
        await self._subscribed.wait()
        steps = self.market.steps
        t0_rec, t0 = (steps[0].ts if steps else 0), time.monotonic()
        i = 0
        while i < len(steps):
            j = i
            if math.isinf(self.speed):
                j = min(len(steps), i + self.chunk)
            else:
                now = time.monotonic()
                while j < len(steps) and j - i < self.chunk and (steps[j].ts - t0_rec) / 1e9 / self.speed <= now - t0:
                    j += 1
                if j == i:
                    await asyncio.sleep((steps[i].ts - t0_rec) / 1e9 / self.speed - (now - t0))
                    continue
            for k in range(i, j):
                await self._step(steps[k])
            i = j
            await asyncio.sleep(0)
        for c in list(self._conns):  # frames still held back by a reorder
            for text in list(c.held.values()):
                await self._send(c, text)
            c.held.clear()
        if self._down > 0:
            self._down = 0
            await self._back_up()
        self.done.set()

    async def _step(self, s: Step) -> None:
        faults = self.faults.take(self.position)
        self.position += 1
        self._refuse = max(0, self._refuse - 1)
        if self._down > 0:
            self._down -= 1
            if self._down == 0:
                await self._back_up()
        self.truth.apply(s)
        if self._beats and self.position % self.ticker_every == 0:
            await self._heartbeat()
        kinds = [k for k in faults if k not in ("disconnect", "restart")]
        if s.kind == "book":
            kinds = self._carry.pop(s.symbol, []) + kinds
            sent = await self._book_step(s.symbol, kinds)
            if not sent and kinds:  # the window did not change: the faults wait for the symbol's next delta
                self._carry[s.symbol] = kinds
            self._books_seen[s.symbol] += 1
            if self._books_seen[s.symbol] % self.ticker_every == 0:
                await self._ticker(s.symbol)
        else:
            await self._trade_step(s, kinds)
        if "disconnect" in faults:
            self.stats["disconnects"] += 1
            self._refuse = self.faults.downtime
            await self._drop_all()
        if "restart" in faults:
            self.stats["restarts"] += 1
            await self._drop_all()
            if self._site is not None:
                await self._site.stop()
            self._down = max(1, self.faults.downtime)

    async def _back_up(self) -> None:
        self._topics.clear()  # the book service restarted: every topic's u starts again at 1
        await self._listen()

    async def _book_step(self, sym: str, kinds: list[str]) -> bool:
        sent = False
        for (s, depth), st in list(self._topics.items()):
            if s != sym:
                continue
            bids, asks = self.truth.view(sym, depth)
            db = self.truth.window_delta(st.bids, bids, 1)
            da = self.truth.window_delta(st.asks, asks, -1)
            st.seq += 1
            if not (db or da):
                continue
            st.bids, st.asks = bids, asks
            st.u += 1 + st.skip
            st.skip = 0
            self.truth.last_u[sym] = st.u
            topic = next((t for c in self._conns for t in c.subs.values()
                          if t.symbol == sym and t.channel == "book" and t.depth == depth), None)
            if topic is None:
                continue
            tx = self.truth.texts
            text = self.renderer.book(topic, False, tx(sym, db), tx(sym, da), st.u, st.seq, _now_ms())
            await self._deliver(sym, "book", text, kinds, depth)
            sent = True
            if "unchained" in kinds:
                self.stats["unchained"] += 1
                st.skip = 1
                for c in list(self._conns):
                    t = c.subs.get((sym, "book"))
                    if t is not None and t.depth == depth:
                        await self._send(c, self._snapshot(t))
        return sent

    async def _trade_step(self, s: Step, kinds: list[str]) -> None:
        ev = self.market.events[s.lo]
        price = self.truth.price_text(s.symbol, int(ev["price"]))
        self._last_trade[s.symbol] = price
        qty = self.truth.texts(s.symbol, [(0, int(ev["qty"]))])[0][1]
        for c in list(self._conns):
            t = c.subs.get((s.symbol, "trade"))
            if t is not None:
                text = self.renderer.trade(t, int(ev["side"]), price, qty, int(ev["id"]), _now_ms())
                await self._deliver_one(c, (s.symbol, "trade"), text, kinds)

    async def _ticker(self, sym: str) -> None:
        bids, asks = self.truth.view(sym, 1)
        tx = self.truth.texts
        b, a = tx(sym, bids.items()), tx(sym, asks.items())
        state = TickerState(b[0] if b else None, a[0] if a else None, self._last_trade.get(sym), 0)
        for c in list(self._conns):
            t = c.subs.get((sym, "ticker"))
            if t is not None:
                text = self.renderer.ticker(t, state, _now_ms())
                if text is not None:
                    await self._send(c, text)

    async def _heartbeat(self) -> None:
        self.stats["heartbeats"] += 1
        for c in list(self._conns):
            if any(k[1] == "heartbeat" for k in c.subs):
                await self._send(c, self._beats(self.stats["heartbeats"], _now_ms()))

    async def _deliver(self, sym: str, channel: str, text: str, kinds: list[str], depth: int) -> None:
        for c in list(self._conns):
            t = c.subs.get((sym, channel))
            if t is not None and t.depth == depth:
                await self._deliver_one(c, (sym, channel), text, kinds)

    async def _deliver_one(self, c: _Conn, key: tuple[str, str], text: str, kinds: list[str]) -> None:
        text = self._number(c, text)  # numbered when sent: a lost or repeated frame keeps its number
        held = c.held.pop(key, None)
        out: list[str] = [text]
        if "drop" in kinds:
            self.stats["dropped"] += 1
            out = []
        elif "corrupt" in kinds:
            self.stats["corrupted"] += 1
            out = [text[: len(text) * 2 // 3]]
        elif "checksum" in kinds:
            bad = self.renderer.bad_checksum(text)
            self.stats["checksum" if bad is not None else "checksum_not_applicable"] += 1
            out = [bad if bad is not None else text]
        elif "reorder" in kinds and held is None:
            self.stats["reordered"] += 1
            c.held[key] = text
            return
        elif "duplicate" in kinds:
            self.stats["duplicated"] += 1
            out = [text, text]
        for x in [*out, *([held] if held else [])]:
            await self._send(c, x, numbered=True)

    def _number(self, c: _Conn, text: str) -> str:
        """Write the connection's next message number into the frame (venues that number every message
        of a connection, e.g. Coinbase ``sequence_num``; the renderer's ``seq_mark`` is the placeholder)."""
        mark = self._mark
        if mark is None or mark not in text[:256]:
            return text
        c.numbered += 1
        return text.replace(mark, str(c.numbered - 1), 1)

    async def _answer(self, c: _Conn, text: str) -> None:
        """A renderer's answer: venues that answer a request once per argument (OKX) return the answers
        joined by newlines (never inside a JSON frame); each goes out as a frame of its own."""
        for part in text.split("\n"):
            await self._send(c, part)

    async def _send(self, c: _Conn, text: str, numbered: bool = False) -> None:
        if not numbered:
            text = self._number(c, text)
        try:
            await c.ws.send_str(text)
            self.stats["sent"] += 1
        except (ConnectionError, RuntimeError):
            self._conns.discard(c)


class PushSimulatorThread(SimulatorThread):
    """A :class:`PushSimulator` on its own event loop thread (for synchronous callers such as CLI tests):
    ``with PushSimulatorThread(market, BybitRenderer()) as sim: sim.ws_url(...)``."""

    simulator = PushSimulator


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
