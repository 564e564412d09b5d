"""The simulator's REST endpoints: depth snapshots, exchangeInfo, open interest and recent trades.

Paths under the market's prefix (``/api/v3`` spot, ``/fapi/v1`` USD-M, ``/dapi/v1`` COIN-M).  Errors as
Binance answers them (``{"code": ..., "msg": ...}`` with HTTP 400; faults from the
:class:`~.faults.FaultPlan`: HTTP errors, 429 with ``Retry-After``, delays, stale snapshots).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import TYPE_CHECKING

from aiohttp import web

from .market import contract_size

if TYPE_CHECKING:
    from .faults import FaultPlan, RestFault
    from .market import MarketStats
    from .source import SimSource
    from .truth import Truth

__all__ = ["RestEndpoints", "now_ms"]

_PREFIX = {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class RestEndpoints:
    """Mixin of :class:`~.server.BinanceSimulator`: the REST handlers."""

    source: SimSource
    market: str  # "spot" or "futures"
    venue_market: str  # "spot", "usdm" or "coinm"
    reject: set[str]
    stats: Counter[str]
    faults: FaultPlan
    truth: Truth
    market_stats: MarketStats
    _synced: dict[str, asyncio.Event]

    @property
    def prefix(self) -> str:
        return _PREFIX[self.venue_market]

    def add_rest_routes(self, app: web.Application) -> None:
        app.router.add_get(self.prefix + "/depth", self._depth)
        app.router.add_get(self.prefix + "/exchangeInfo", self._exchange_info)
        app.router.add_get(self.prefix + "/trades", self._trades)
        if self.market == "futures":
            app.router.add_get(self.prefix + "/openInterest", self._open_interest)

    def _bad_request(self, msg: str, code: int = -1100) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=400)

    def _symbol(self, request: web.Request) -> str | None:
        sym = request.query.get("symbol", "").upper()
        return None if sym not in self.source.symbols or sym in self.reject else sym

    async def _fault(self, sym: str) -> tuple[web.Response | None, RestFault | None]:
        fault = self.faults.next_rest(sym)
        if fault is not None and fault.kind == "error":
            return web.json_response({"code": -1001, "msg": "Internal error."}, status=fault.status), fault
        if fault is not None and fault.kind == "rate_limit":
            return web.json_response({"code": -1003, "msg": "Too many requests."}, status=429,
                                     headers={"Retry-After": f"{fault.retry_after:g}"}), fault
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay)
        return None, fault

    async def _depth(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100" if self.market == "spot" else "500"))
        except ValueError:
            return self._bad_request("Illegal characters found in parameter 'limit'.")
        allowed = range(1, 5001) if self.market == "spot" else (5, 10, 20, 50, 100, 500, 1000)
        if limit not in allowed:
            return self._bad_request("Invalid limit.", -1102)
        sym = self._symbol(request)
        if sym is None:
            return self._bad_request("Invalid symbol.", -1121)
        self.stats["rest_requests"] += 1
        answer, fault = await self._fault(sym)
        if answer is not None:
            return answer
        if not self._synced[sym].is_set():  # before the recording's own snapshot the truth is unknown
            try:
                await asyncio.wait_for(self._synced[sym].wait(), 30.0)
            except TimeoutError:
                return web.json_response({"code": -1007, "msg": "Timeout waiting for response."}, status=503)
        stale = fault is not None and fault.kind == "stale"
        body = self.truth.render(sym, limit, self.market == "futures", now_ms(), stale=stale,
                                 symbol_fields=self.venue_market == "coinm")
        self.stats["snapshots_stale" if stale else "snapshots"] += 1
        return web.Response(body=body, content_type="application/json",
                            headers={"X-MBX-USED-WEIGHT-1M": str(self.stats["rest_requests"])})

    async def _trades(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            return self._bad_request("Illegal characters found in parameter 'limit'.")
        if not 1 <= limit <= 1000:
            return self._bad_request("Invalid limit.", -1102)
        sym = self._symbol(request)
        if sym is None:
            return self._bad_request("Invalid symbol.", -1121)
        self.stats["trades_requests"] += 1
        return web.Response(body=self.market_stats.recent_trades(sym, limit), content_type="application/json")

    async def _open_interest(self, request: web.Request) -> web.Response:
        sym = self._symbol(request)
        if sym is None:
            return self._bad_request("Invalid symbol.", -1121)
        self.stats["open_interest_requests"] += 1
        return web.Response(body=self.market_stats.open_interest(sym, now_ms()), content_type="application/json")

    async def _exchange_info(self, request: web.Request) -> web.Response:
        wanted = list(self.source.symbols)
        if self.market == "spot" and ("symbols" in request.query or "symbol" in request.query):
            try:
                wanted = (json.loads(request.query["symbols"]) if "symbols" in request.query
                          else [request.query["symbol"]])
            except ValueError:
                return self._bad_request("Illegal characters found in parameter 'symbols'.")
            if any(s not in self.source.symbols for s in wanted):
                return self._bad_request("Invalid symbol.", -1121)
        if self.venue_market == "coinm":  # COIN-M lists contractStatus and the contract size
            entries = [{"symbol": s, "pair": s.split("_")[0], "contractType": "PERPETUAL",
                        "contractStatus": "TRADING", "contractSize": contract_size(s)} for s in wanted]
        else:
            entries = [{"symbol": s, "status": "TRADING"} for s in wanted]
        return web.json_response({"timezone": "UTC", "serverTime": now_ms(), "symbols": entries})
