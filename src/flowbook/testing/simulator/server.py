"""`BinanceSimulator`: Binance's combined-stream WebSocket and REST depth endpoints on 127.0.0.1.

Serves ``/stream?streams=a/b`` (also under ``/public`` and ``/market``, USD-M's routed paths) and the
``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` methods; REST ``depth``, ``exchangeInfo``,
``trades`` and (futures) ``openInterest`` under ``/api/v3`` (spot), ``/fapi/v1`` (USD-M) or ``/dapi/v1``
(COIN-M), see :mod:`.rest`.  It replays a recording at
``speed`` times real time (``math.inf``: as fast as the sockets take it), keeps the ground truth
(:class:`~.truth.Truth`) and answers snapshots at the current stream position.  Faults:
:class:`~.faults.FaultPlan`.  Event times (``E``, ``T``) are re-stamped to the send time so
exchange -> receive latencies mean something.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from .faults import FaultPlan
from .market import MarketStats
from .rest import RestEndpoints
from .rest import now_ms as _now_ms
from .source import SimFrame, SimSource, load_source
from .synth import aggtrade_from_trade, liquidation_from_trade, mark_price
from .truth import Truth

__all__ = ["BinanceSimulator"]

_TS = re.compile(rb'"([ET])":(\d{13})')
_E = re.compile(rb'"E":(\d{13})')
_KINDS = {"depth", "trade", "aggTrade", "bookTicker", "forceOrder", "markPrice", "ticker"}
_SPEEDS = {"spot": {"", "100ms", "1000ms"}, "futures": {"", "0ms", "100ms", "250ms", "500ms"}}
_PUBLIC = {"depth", "bookTicker"}


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    route: str
    subs: dict[tuple[str, str], str] = field(default_factory=dict)
    held: dict[tuple[str, str], str] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)
    last_pong: float = field(default_factory=time.monotonic)


class BinanceSimulator(RestEndpoints):
    """A scriptable Binance market-data server.  Use as ``async with BinanceSimulator(...) as sim``.

    ``min_streams``: the broadcast starts once this many streams are subscribed (so a test's client sees
    the recording from its first frame).  ``keep_truth_rows``: keep the truth's feature row per update id
    (``sim.truth.rows``).  ``mark_price_every`` / ``liquidation_every``: synthesize ``markPriceUpdate``
    every N depth frames and a ``forceOrder`` every N trades of a futures symbol.  ``ticker_every_ms``: a
    symbol's ``24hrTicker`` at most this often (recording time), derived from the trades sent
    (:mod:`.market`, which also answers ``openInterest`` and ``trades``).  ``min_streams=0`` starts the
    broadcast at once (REST-only clients).
    """

    def __init__(self, source: SimSource | Iterable[Path | str], *, speed: float = 1.0,
                 faults: FaultPlan | None = None, min_streams: int = 1, restamp: bool = True,
                 ping_interval: float | None = None, pong_timeout: float = 60.0, keep_truth_rows: bool = False,
                 mark_price_every: int = 0, liquidation_every: int = 0, history_every: int = 100,
                 enforce_routes: bool = False, reject_symbols: Iterable[str] = (), limit: int | None = None,
                 ticker_every_ms: int = 1000,
                 host: str = "127.0.0.1", port: int = 0, chunk: int = 64) -> None:
        self.source = source if isinstance(source, SimSource) else load_source(source, limit)
        self.market = "futures" if self.source.futures else "spot"
        self.venue_market = self.source.market or ("usdm" if self.source.futures else "spot")
        self.market_stats = MarketStats(self.source.frames, self.venue_market)
        self.ticker_every_ns = ticker_every_ms * 1_000_000
        self._last_ticker: dict[str, int] = {}
        self.speed = speed
        self.faults = faults or FaultPlan()
        self.min_streams = min_streams
        self.restamp = restamp
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.mark_price_every = mark_price_every
        self.liquidation_every = liquidation_every
        self.history_every = history_every
        self.enforce_routes = enforce_routes
        self.reject = {s.upper() for s in reject_symbols}
        self.host, self.port, self.chunk = host, port, chunk
        self.truth = Truth(keep_truth_rows)
        self.stats: Counter[str] = Counter()
        self.done = asyncio.Event()
        self.position = 0  # broadcast frames sent so far
        self._conns: set[_Conn] = set()
        self._subscribed = asyncio.Event()
        self._synced: dict[str, asyncio.Event] = {s: asyncio.Event() for s in self.source.symbols}
        self._refuse = 0
        self._down = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._task: asyncio.Task | None = None
        self._counts: Counter[tuple[str, str]] = Counter()

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> BinanceSimulator:
        app = web.Application()
        for route in ("", "/public", "/market"):
            app.router.add_get(route + "/stream", self._ws)
            app.router.add_get(route + "/ws", self._ws)
        self.add_rest_routes(app)
        if self.min_streams <= 0:
            self._subscribed.set()
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen()
        self._task = asyncio.create_task(self._broadcast(), name="sim-broadcast")
        return self

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])  # the bound ephemeral port

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> BinanceSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _drop_all(self) -> None:
        for c in list(self._conns):
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"going away")
        self._conns.clear()

    def subscriptions(self) -> list[tuple[str, str]]:
        """``(route, stream)`` of every delivered subscription (for tests)."""
        return [(c.route, n) for c in self._conns for n in c.subs.values()]

    # -- WebSocket
    def _valid(self, name: str) -> tuple[str, str] | None:
        parts = name.split("@")
        if len(parts) not in (2, 3) or parts[1] not in _KINDS:
            return None
        sym, kind, speed = parts[0].upper(), parts[1], parts[2] if len(parts) == 3 else ""
        if sym not in self.source.symbols or sym in self.reject or parts[0] != parts[0].lower():
            return None
        if kind == "depth" and speed not in _SPEEDS[self.market]:
            return None
        if (kind == "markPrice" and speed not in ("", "1s")) or (kind not in ("depth", "markPrice") and speed):
            return None
        if self.market == "spot" and kind in ("forceOrder", "markPrice"):
            return None
        return sym, kind

    def _subscribe(self, c: _Conn, names: list[str]) -> str | None:
        bad = [n for n in names if self._valid(n) is None]
        if bad:
            return f"Invalid request: unknown stream {bad[0]}"
        for n in names:
            sym, kind = self._valid(n)  # type: ignore[misc]
            if self.enforce_routes and self.market == "futures" and (c.route == "public") != (kind in _PUBLIC):
                c.silent.append(n)  # Binance accepts it on the wrong path and never delivers it
                continue
            c.subs[(sym, kind)] = n
        self._check_subscribed()
        return None

    def _check_subscribed(self) -> None:
        if sum(len(c.subs) + len(c.silent) for c in self._conns) >= self.min_streams:
            self._subscribed.set()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self._refuse > 0 or self._down > 0:
            self.stats["refused"] += 1
            return web.Response(status=503, text="service unavailable")
        route = request.path.strip("/").split("/")[0] if request.path.count("/") > 1 else ""
        names = [n for n in request.query.get("streams", "").split("/") if n]
        c = _Conn(web.WebSocketResponse(autoping=False, max_msg_size=1 << 20), route)
        if names and any(self._valid(n) is None for n in names):
            self.stats["rejected"] += 1
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        await c.ws.prepare(request)
        self._conns.add(c)
        self.stats["connections"] += 1
        self._subscribe(c, names)
        pinger = asyncio.create_task(self._pinger(c)) if self.ping_interval else None
        try:
            async for msg in c.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._method(c, msg.data)
                elif msg.type == WSMsgType.PING:
                    await c.ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    self.stats["pongs"] += 1
                    c.last_pong = time.monotonic()
        finally:
            self._conns.discard(c)
            if pinger is not None:
                pinger.cancel()
        return c.ws

    async def _pinger(self, c: _Conn) -> None:
        assert self.ping_interval is not None
        while not c.ws.closed:
            await asyncio.sleep(self.ping_interval)
            if time.monotonic() - c.last_pong > self.pong_timeout:
                self.stats["pong_timeouts"] += 1
                await c.ws.close(code=1008, message=b"pong timeout")
                return
            with contextlib.suppress(Exception):
                await c.ws.ping(b"sim")
                self.stats["pings"] += 1

    async def _method(self, c: _Conn, text: str) -> None:
        try:
            req = json.loads(text)
            method, rid = req["method"], req.get("id")
            params = list(req.get("params") or [])
        except (ValueError, KeyError, TypeError):
            await c.ws.send_str(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}))
            return
        if method == "SUBSCRIBE":
            err = self._subscribe(c, params)
            await c.ws.send_str(json.dumps({"error": {"code": 2, "msg": err}, "id": rid} if err else
                                           {"result": None, "id": rid}))
        elif method == "UNSUBSCRIBE":
            for n in params:
                c.subs = {k: v for k, v in c.subs.items() if v != n}
            await c.ws.send_str(json.dumps({"result": None, "id": rid}))
        elif method == "LIST_SUBSCRIPTIONS":
            await c.ws.send_str(json.dumps({"result": sorted(c.subs.values()), "id": rid}))
        else:
            await c.ws.send_str(json.dumps({"error": {"code": 1, "msg": f"Unknown method {method}"}, "id": rid}))

    # -- broadcast
    async def _broadcast(self) -> None:
        await self._subscribed.wait()
        frames = self.source.frames
        t0_rec, t0 = frames[0].ts, time.monotonic()
        i = 0
        while i < len(frames):
            j = i
            if math.isinf(self.speed):
                j = min(len(frames), i + self.chunk)
            else:
                now = time.monotonic()
                while j < len(frames) and j - i < self.chunk and (frames[j].ts - t0_rec) / 1e9 / self.speed <= now - t0:
                    j += 1
                if j == i:
                    await asyncio.sleep((frames[i].ts - t0_rec) / 1e9 / self.speed - (now - t0))
                    continue
            chunk = frames[i:j]
            self.truth.apply([f for f in chunk if f.kind in ("depth", "snapshot")])
            for f in chunk:
                if f.kind == "snapshot":
                    continue
                await self._emit(f)
            for s in {f.symbol for f in chunk}:
                if s in self._synced and not self._synced[s].is_set() and self.truth.synced(s):
                    self._synced[s].set()
            i = j
            await asyncio.sleep(0)
        for c in list(self._conns):  # frames still held back by a reorder at the very end
            for t in list(c.held.values()):
                await self._send(c, t)
            c.held.clear()
        if self._down > 0:
            self._down = 0
            await self._listen()
        self.done.set()

    async def _emit(self, f: SimFrame) -> None:
        faults = self.faults.take(self.position)
        self.position += 1
        self._refuse = max(0, self._refuse - 1)
        if self._down > 0:
            self._down -= 1
            if self._down == 0:
                await self._listen()
                self.stats["restarts"] += 1
        data = self._stamp(f.data) if self.restamp else f.data
        await self._deliver(f.symbol, f.kind, data, faults)
        n = self._counts[(f.symbol, f.kind)] = self._counts[(f.symbol, f.kind)] + 1
        if f.kind == "depth" and n % self.history_every == 0:
            self.truth.remember(f.symbol)
        if self.market == "futures" and f.kind == "depth" and self.mark_price_every and n % self.mark_price_every == 0 \
                and self.truth.synced(f.symbol):
            await self._deliver(f.symbol, "markPrice", mark_price(self.truth, f.symbol, _now_ms()), [])
        if f.kind == "trade":
            self.market_stats.on_trade(f.symbol, data)
            if any((f.symbol, "aggTrade") in c.subs for c in self._conns):
                await self._deliver(f.symbol, "aggTrade", aggtrade_from_trade(data), faults)
            if self.market == "futures" and self.liquidation_every and n % self.liquidation_every == 0:
                await self._deliver(f.symbol, "forceOrder", liquidation_from_trade(data), [])
        if f.ts - self._last_ticker.get(f.symbol, 0) >= self.ticker_every_ns and \
                any((f.symbol, "ticker") in c.subs for c in self._conns):
            self._last_ticker[f.symbol] = f.ts
            best = None
            if self.market == "spot" and self.truth.synced(f.symbol):
                best = self.truth.best_texts(f.symbol)
            tick = self.market_stats.ticker(f.symbol, _now_ms(), best)
            if tick is not None:
                await self._deliver(f.symbol, "ticker", tick, [])
        if "disconnect" in faults:
            self.stats["disconnects"] += 1
            self._refuse = self.faults.downtime
            await self._drop_all()
        if "restart" in faults:
            self.stats["restart_begins"] += 1
            await self._drop_all()
            if self._site is not None:
                await self._site.stop()
            self._down = max(1, self.faults.downtime)

    async def _deliver(self, sym: str, kind: str, data: bytes, faults: list[str]) -> None:
        body = data.decode()
        key = (sym, kind)
        for c in list(self._conns):
            name = c.subs.get(key)
            if name is None:
                continue
            text = f'{{"stream":"{name}","data":{body}}}'
            held = c.held.pop(key, None)
            if "drop" in faults:
                self.stats["dropped"] += 1
                text = ""
            elif "corrupt" in faults:
                self.stats["corrupted"] += 1
                text = text[: len(text) * 2 // 3]
            elif "reorder" in faults and held is None:
                c.held[key] = text
                self.stats["reordered"] += 1
                continue
            for t in (text, text if "duplicate" in faults and text else "", held or ""):
                if t:
                    await self._send(c, t)
            self.stats["duplicated"] += "duplicate" in faults and bool(text)

    async def _send(self, c: _Conn, text: str) -> None:
        try:
            await c.ws.send_str(text)
            self.stats["sent"] += 1
        except (ConnectionError, RuntimeError):
            self._conns.discard(c)

    def _stamp(self, data: bytes) -> bytes:
        m = _E.search(data)
        if m is None:
            return data
        delta = _now_ms() - int(m.group(1))
        return _TS.sub(lambda x: b'"%s":%d' % (x.group(1), int(x.group(2)) + delta), data)

