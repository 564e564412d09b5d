"""What the live adapter asks of Binance, within the venue's limits.

REST: depth snapshots, exchangeInfo, open interest and recent trades, within a weight budget.  Streams: which streams each symbol
subscribes and how they are spread over connections (routes, streams per connection).

Responses are returned as the raw bytes Binance sent (the recorder writes them as they are).  Error
handling follows Binance's "General API Information": HTTP 429 (rate limit) and 418 (IP ban) carry a
``Retry-After`` header in seconds and every request from the IP must wait it out; 5xx are the
exchange's problems and are retried with backoff; other 4xx carry ``{"code": ..., "msg": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..registry import Venue

__all__ = ["Backoff", "BinanceRest", "ConnectError", "LiveConfig", "LiveError", "RateLimited", "RestError",
           "SubscriptionRejected", "UnknownSymbol", "WeightLimiter", "plan_connections", "stream_key"]


class RestError(Exception):
    """A failed REST request.  ``retryable`` tells whether trying again later can help."""

    def __init__(self, text: str, status: int = 0, code: int | None = None, retryable: bool = True) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.retryable = retryable


class RateLimited(RestError):
    """HTTP 429/418: nothing may be requested before ``retry_after`` seconds have passed."""

    def __init__(self, text: str, status: int, retry_after: float) -> None:
        super().__init__(text, status, retryable=True)
        self.retry_after = retry_after


class UnknownSymbol(ValueError):
    """A symbol the venue does not list (or does not trade)."""


class Backoff:
    """Exponential backoff with jitter: attempt ``n`` waits in ``[d/2, d]``, ``d = min(cap, base·2ⁿ)``."""

    def __init__(self, base: float = 0.25, cap: float = 30.0, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        d = min(self.cap, self.base * 2.0 ** min(attempt, 60))
        return d / 2 + self.rng.uniform(0.0, d / 2)


class WeightLimiter:
    """Sliding one-minute window of spent REST weight, shared by every request to one venue.

    ``budget`` is the weight this process allows itself per minute (a share of the venue's limit, so
    other programs on the same IP keep some).  After a 429/418, :meth:`block_until` stops all spending.
    """

    def __init__(self, budget: float, clock: Callable[[], float] = time.monotonic) -> None:
        if budget <= 0:
            raise ValueError("budget must be positive")
        self.budget = budget
        self.clock = clock
        self._spent: deque[tuple[float, int]] = deque()
        self._used = 0
        self._blocked_until = 0.0

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - 60.0:
            self._used -= self._spent.popleft()[1]

    def delay(self, weight: int) -> float:
        """Seconds to wait before ``weight`` may be spent (0 when it may be spent now)."""
        now = self.clock()
        wait = max(0.0, self._blocked_until - now)
        self._expire(now)
        if self._used + weight <= self.budget or not self._spent:
            return wait
        need = self._used + weight - self.budget
        for t, w in self._spent:  # oldest first: when enough weight has left the window
            need -= w
            if need <= 0:
                return max(wait, t + 60.0 - now)
        return max(wait, 60.0)

    def spend(self, weight: int) -> None:
        now = self.clock()
        self._expire(now)
        self._spent.append((now, weight))
        self._used += weight

    def block_until(self, t: float) -> None:
        self._blocked_until = max(self._blocked_until, t)

    @property
    def used(self) -> int:
        self._expire(self.clock())
        return self._used

    async def acquire(self, weight: int) -> None:
        while (d := self.delay(weight)) > 0:
            await asyncio.sleep(d)
        self.spend(weight)


def _retry_after(resp: aiohttp.ClientResponse, default: float) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", default)))
    except ValueError:
        return default


class BinanceRest:
    """Depth snapshots and exchangeInfo of one Binance market."""

    def __init__(self, venue: Venue, session: aiohttp.ClientSession, base_url: str | None = None,
                 limiter: WeightLimiter | None = None, timeout: float = 10.0) -> None:
        self.venue = venue
        self.session = session
        self.base = (base_url or venue.rest_url).rstrip("/") + venue.rest_prefix
        caps = venue.capabilities
        self.limiter = limiter or WeightLimiter(caps.rest_weight_per_minute * 0.5)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.requests = 0
        self.errors = 0

    async def _get(self, path: str, params: dict[str, str], weight: int) -> bytes:
        await self.limiter.acquire(weight)
        self.requests += 1
        url = self.base + path
        try:
            async with self.session.get(url, params=params, timeout=self.timeout) as resp:
                body = await resp.read()
                if resp.status == 200:
                    return body
                self.errors += 1
                if resp.status in (418, 429):
                    wait = _retry_after(resp, 60.0)
                    self.limiter.block_until(self.limiter.clock() + wait)
                    raise RateLimited(f"GET {path}: HTTP {resp.status}, retry after {wait:g} s", resp.status, wait)
                code, msg = _binance_error(body)
                text = f"GET {path}: HTTP {resp.status}" + (f" ({code}: {msg})" if msg else "")
                raise RestError(text, resp.status, code, retryable=resp.status >= 500)
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.errors += 1
            raise RestError(f"GET {url}: {type(exc).__name__}: {exc}".rstrip(": "), retryable=True) from exc

    async def depth(self, symbol: str, limit: int) -> tuple[int, bytes]:
        """``(local receive time ns, raw body)`` of ``GET depth?symbol=&limit=``."""
        body = await self._get("/depth", {"symbol": symbol, "limit": str(limit)},
                               self.venue.capabilities.snapshot_weight(limit))
        return time.time_ns(), body

    async def open_interest(self, symbol: str) -> tuple[int, bytes]:
        """``(local receive time ns, raw body)`` of ``GET openInterest?symbol=`` (futures)."""
        body = await self._get("/openInterest", {"symbol": symbol}, self.venue.capabilities.open_interest_weight)
        return time.time_ns(), body

    async def recent_trades(self, symbol: str, limit: int) -> tuple[int, bytes]:
        """``(local receive time ns, raw body)`` of ``GET trades?symbol=&limit=`` (oldest first)."""
        body = await self._get("/trades", {"symbol": symbol, "limit": str(limit)},
                               self.venue.capabilities.trades_weight)
        return time.time_ns(), body

    async def exchange_info(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """``{symbol: exchangeInfo entry}`` for ``symbols``; raises :class:`UnknownSymbol`."""
        if self.venue.market == "spot":
            params = {"symbols": json.dumps(symbols, separators=(",", ":"))}
            try:
                body = await self._get("/exchangeInfo", params, 20)
            except RestError as exc:
                if exc.code == -1121:  # "Invalid symbol.": name the culprit
                    for s in symbols:
                        try:
                            await self._get("/exchangeInfo", {"symbol": s}, 20)
                        except RestError as one:
                            if one.code == -1121:
                                raise UnknownSymbol(f"unknown symbol {s} on {self.venue.name}") from None
                raise
        else:
            body = await self._get("/exchangeInfo", {}, 1)
        try:
            listed = {e["symbol"]: e for e in json.loads(body).get("symbols", [])}
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise RestError(f"malformed exchangeInfo response ({exc})", retryable=False) from exc
        out: dict[str, dict[str, Any]] = {}
        for s in symbols:
            e = listed.get(s)
            if e is None:
                raise UnknownSymbol(f"unknown symbol {s} on {self.venue.name}")
            status = e.get("status", e.get("contractStatus", "TRADING"))  # COIN-M: contractStatus
            if status != "TRADING":
                raise UnknownSymbol(f"symbol {s} on {self.venue.name} is not trading (status {status})")
            out[s] = e
        return out


def _binance_error(body: bytes) -> tuple[int | None, str]:
    try:
        d = json.loads(body)
    except ValueError:
        return None, body[:120].decode(errors="replace").strip()
    if isinstance(d, dict):
        code = d.get("code")
        return (code if isinstance(code, int) else None), str(d.get("msg", ""))
    return None, ""


class LiveError(Exception):
    """The live feed cannot start (no network, rejected subscription, unknown symbol)."""


class ConnectError(LiveError):
    """No connection (network down, host unreachable, server error at start-up)."""


class SubscriptionRejected(LiveError):
    """The venue refused the streams (HTTP 4xx on the WebSocket handshake)."""


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Options of the live adapter.  ``None`` means the venue's declared default."""

    depth_speed: str | None = None
    trades: str = "trade"  # "trade", "aggTrade" or "none" (both at once would count trades twice)
    book_ticker: bool = True
    force_order: bool = True  # futures only
    mark_price: bool = True  # futures only ("@markPrice@1s")
    ticker: bool = True  # "@ticker": 24 h statistics (no event; latest value per symbol)
    open_interest_interval: float | None = 10.0  # futures: GET openInterest every N s per symbol; None: off
    poll_interval: float | None = None  # REST-polling mode: depth snapshot (and trades) every N s, no sockets
    poll_trades_limit: int = 500  # recent trades per poll (Binance's default and a safe 1000 maximum)
    ws_url: str | None = None
    rest_url: str | None = None
    route_streams: bool | None = None
    snapshot_limit: int | None = None
    max_streams_per_connection: int | None = None
    queue_size: int = 100_000
    weight_budget: float | None = None  # REST weight per minute; default half the venue's limit
    heartbeat: float = 30.0  # client ping interval; no pong within half of it -> reconnect
    reconnect_base: float = 0.25
    reconnect_cap: float = 30.0
    rest_timeout: float = 10.0
    resync_idle: float = 2.0  # an unsynced symbol without diffs still fetches a snapshot this often
    validate_symbols: bool = True
    pace: bool = True  # push venues: keep to the venue's per-IP request and connection rates (off: tests)


def _streams_of(venue: Venue, sym: str, cfg: LiveConfig) -> list[tuple[str, str]]:
    """``(kind, stream name)`` pairs of one symbol."""
    caps = venue.capabilities
    speed = cfg.depth_speed or caps.default_depth_speed
    if speed not in caps.depth_speeds:
        raise LiveError(f"depth speed {speed!r} not offered by {venue.name} ({', '.join(caps.depth_speeds)})")
    s = sym.lower()
    # the undecorated @depth is 1000 ms on spot and 250 ms on futures
    plain = "1000ms" if venue.market == "spot" else "250ms"
    out = [("depth", f"{s}@depth" if speed == plain else f"{s}@depth@{speed}")]
    if cfg.trades != "none":
        if cfg.trades not in ("trade", "aggTrade"):
            raise LiveError(f"trades must be 'trade', 'aggTrade' or 'none', not {cfg.trades!r}")
        out.append((cfg.trades, f"{s}@{cfg.trades}"))
    if cfg.book_ticker:
        out.append(("bookTicker", f"{s}@bookTicker"))
    if cfg.ticker:
        out.append(("ticker", f"{s}@ticker"))
    if venue.market != "spot":
        if cfg.force_order:
            out.append(("forceOrder", f"{s}@forceOrder"))
        if cfg.mark_price:
            out.append(("markPrice", f"{s}@markPrice@1s"))
    return out


def plan_connections(venue: Venue, symbols: list[str], cfg: LiveConfig) -> list[tuple[str, list[str], list[str]]]:
    """``(url, streams, symbols)`` per connection: streams grouped by route, at most the venue's
    streams per connection, a symbol's streams of one route always on one connection."""
    caps = venue.capabilities
    limit = cfg.max_streams_per_connection or caps.max_streams_per_connection
    routed = caps.ws_routes != () if cfg.route_streams is None else cfg.route_streams
    base = (cfg.ws_url or venue.ws_url).rstrip("/")
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for sym in symbols:
        per_route: dict[str, list[str]] = {}
        for kind, name in _streams_of(venue, sym, cfg):
            per_route.setdefault(caps.route_of(kind) if routed else "", []).append(name)
        for route, names in per_route.items():
            groups.setdefault(route, []).append((sym, names))
    out: list[tuple[str, list[str], list[str]]] = []
    for route, items in groups.items():
        path = f"{base}/{route}/stream" if route else f"{base}/stream"
        streams: list[str] = []
        syms: list[str] = []
        for sym, names in items:
            if streams and len(streams) + len(names) > limit:
                out.append((f"{path}?streams={'/'.join(streams)}", streams, syms))
                streams, syms = [], []
            streams += names
            syms.append(sym)
        if streams:
            out.append((f"{path}?streams={'/'.join(streams)}", streams, syms))
    return out


def stream_key(data: bytes) -> tuple[bytes, bytes] | None:
    """``(b"btcusdt", b"depth")`` from a combined-stream frame's head, without parsing the JSON."""
    if not data.startswith(b'{"stream":"'):
        return None
    end = data.find(b'"', 11, 96)
    at = data.find(b"@", 11, end)
    if end < 0 or at < 0:
        return None
    at2 = data.find(b"@", at + 1, end)
    return data[11:at], data[at + 1:at2 if at2 > 0 else end]
