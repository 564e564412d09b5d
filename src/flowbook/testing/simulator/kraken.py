"""`KrakenRenderer`: Kraken spot WebSocket v2 messages for :class:`~.push.PushSimulator`.

Served on ``/v2``.  Requests ``{"method":"subscribe"|"unsubscribe","params":{"channel":...,
"symbol":[...],"depth":N},"req_id":n}`` and ``{"method":"ping","req_id":n}``.  Kraken answers each symbol
of a request on its own (``{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,
"symbol":"BTC/USD"},"success":true,...,"req_id":n}``), refuses an unknown pair with
``{"error":"Currency pair not supported NOPE/USD","method":"subscribe","success":false,"symbol":...}`` and
answers a ping with ``{"method":"pong","req_id":n,...}``.  :class:`KrakenSimulator` splits multi-symbol
requests so that each symbol gets its answer, serves the ``instrument`` channel (every pair's
``price_precision`` / ``qty_precision``) and sends ``{"channel":"heartbeat"}`` when a second passed
without traffic.

Book messages: ``{"channel":"book","type":"snapshot"|"update","data":[{"symbol":...,"bids":[{"price":P,
"qty":Q}],"asks":[...],"checksum":C,"timestamp":...}]}`` with prices and quantities as JSON numbers written
with the pair's precisions.  As Kraken does, an update sends no delete for a level that only fell out of
the subscribed depth (the client truncates); ``checksum`` is the CRC32 of the top 10 asks then bids of the
book the client holds after the message and its truncation, which the renderer keeps per (pair, depth).
The ``checksum`` fault changes that number.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import math
import re
import time
import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ...events import Instrument
from .push import PushSimulator
from .pushrender import PushRenderer, Request, SimTopic, TickerState
from .pushtruth import PushFaultPlan, PushMarket

__all__ = ["KrakenRenderer", "KrakenSimulator", "crc_of_book", "kraken_market"]

_CHANNELS = ("book", "trade", "ticker", "instrument")
_CHECKSUM = re.compile(r'"checksum":(\d+)')
Side = dict[Decimal, tuple[str, str]]  # price -> (price text, qty text) at the pair's precisions


def _places(step: str) -> int:
    return len(step.partition(".")[2]) if "." in step else 0


def _rfc3339(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + f".{ts_ms % 1000:03d}000Z"


def crc_of_book(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> int:
    """Kraken's checksum of up to 10 levels a side (best first), from the texts at the pair's precisions:
    each price and qty without its ``.`` and leading zeros, asks then bids, unsigned CRC32."""
    text = "".join(p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0")
                   for side in (asks, bids) for p, q in list(side)[:10])
    return zlib.crc32(text.encode()) & 0xFFFFFFFF


def kraken_market(paths: Iterable[Path | str], pairs: dict[str, str], max_steps: int | None = None) -> PushMarket:
    """A real recording's books and trades with its symbols renamed as Kraken pairs
    (``{"BTCUSDT": "BTC/USD"}``); tick and lot stay the recording's."""
    from ...replay.sources import load

    got = load([Path(p) for p in paths], None, False)
    insts = [Instrument("kraken", pairs.get(i.symbol, i.symbol), i.tick_size, i.lot_size) for i in got.instruments]
    market = PushMarket(got.events, insts)
    if max_steps is not None:
        market.steps = market.steps[:max_steps]
    return market


class KrakenRenderer(PushRenderer):
    """Kraken v2 public channels of the pairs ``precisions`` names: ``{pair: (price_precision,
    qty_precision)}`` (:meth:`for_market` takes them from the market's instruments)."""

    paths = ("/v2",)
    depths = (10, 25, 100, 500, 1000)

    def __init__(self, precisions: dict[str, tuple[int, int]]) -> None:
        self.precisions = precisions
        self.views: dict[tuple[str, int], tuple[Side, Side]] = {}  # (pair, depth) -> the client's book
        self._trade_ids: dict[str, int] = {}

    @classmethod
    def for_market(cls, market: PushMarket) -> KrakenRenderer:
        return cls({s: (_places(i.tick_size), _places(i.lot_size)) for s, i in market.instruments.items()})

    # -- requests and answers
    def parse(self, text: str) -> Request:
        try:
            d = json.loads(text)
            op = str(d["method"])
            rid = d.get("req_id")
            params = d.get("params") or {}
            channel = str(params.get("channel", "")) if op != "ping" else ""
            symbols = [str(s) for s in params.get("symbol") or []]
            depth = int(params.get("depth", 10))
        except (ValueError, KeyError, TypeError, AttributeError):
            return Request("bad", None)
        if op not in ("subscribe", "unsubscribe", "ping"):
            return Request("bad", None if rid is None else str(rid))
        rid = None if rid is None else str(rid)
        if op == "ping":
            return Request(op, rid)
        if channel == "instrument":
            return Request(op, rid, (SimTopic("", "instrument", 0, "instrument"),))
        known = channel in _CHANNELS
        topics = tuple(SimTopic(s, channel if known else "unknown", depth if channel == "book" else 0,
                                f"{channel}.{s}") for s in symbols)
        return Request(op, rid, topics or (SimTopic("", "unknown", 0, channel),))

    def request_text(self, req: Request, topic: SimTopic) -> str:
        """A request for one of ``req``'s topics (the server answers each symbol on its own)."""
        params: dict[str, object] = {"channel": topic.channel, "symbol": [topic.symbol]}
        if topic.channel == "book":
            params["depth"] = topic.depth
        body: dict[str, object] = {"method": req.op, "params": params}
        if req.req_id is not None:
            body["req_id"] = int(req.req_id)
        return json.dumps(body, separators=(",", ":"))

    def _stamp(self, body: dict[str, object], req: Request) -> str:
        now = _rfc3339(time.time_ns() // 1_000_000)
        body.update({"time_in": now, "time_out": now})
        if req.req_id is not None:
            body["req_id"] = int(req.req_id)
        return json.dumps(body, separators=(",", ":"))

    def answer(self, req: Request, ok: bool, message: str = "") -> str:
        op = req.op if req.op in ("subscribe", "unsubscribe") else "error"
        t = req.topics[0] if req.topics else SimTopic("", "unknown", 0, "")
        if not ok:
            body: dict[str, object] = {"error": message or "Malformed request", "method": op, "success": False}
            if t.symbol:
                body["symbol"] = t.symbol
            return self._stamp(body, req)
        result: dict[str, object] = {"channel": t.channel}
        if t.channel == "book":
            result["depth"] = t.depth
        if op == "subscribe":
            result["snapshot"] = t.channel != "trade"
        if t.symbol:
            result["symbol"] = t.symbol
        return self._stamp({"method": op, "result": result, "success": True}, req)

    def pong(self, req: Request) -> str:
        return self._stamp({"method": "pong"}, req)

    def unknown(self, topic: SimTopic) -> str:
        if topic.channel == "unknown":
            return "Channel not supported"
        if topic.symbol not in self.precisions:
            return f"Currency pair not supported {topic.symbol}"
        return f"Invalid depth {topic.depth}"

    @staticmethod
    def heartbeat_text() -> str:
        """Kraken's heartbeat (not the simulator's subscribed ``heartbeat`` hook: Kraken's needs no topic)."""
        return '{"channel":"heartbeat"}'

    def instruments(self, symbols: Sequence[str] | None = None) -> str:
        """The ``instrument`` snapshot: every pair with its precisions and increments."""
        pairs = []
        for s in symbols or sorted(self.precisions):
            pp, qp = self.precisions[s]
            base, _, quote = s.partition("/")
            pairs.append(f'{{"symbol":"{s}","base":"{base}","quote":"{quote}","status":"online",'
                         f'"qty_precision":{qp},"qty_increment":{Decimal(1).scaleb(-qp):f},'
                         f'"price_precision":{pp},"price_increment":{Decimal(1).scaleb(-pp):f},'
                         f'"cost_precision":5,"marginable":false,"has_index":true}}')
        assets = sorted({a for s in self.precisions for a in s.split("/")})
        asset_text = ",".join(f'{{"id":"{a}","status":"enabled","precision":8}}' for a in assets)
        return (f'{{"channel":"instrument","type":"snapshot","data":{{"assets":[{asset_text}],'
                f'"pairs":[{",".join(pairs)}]}}}}')

    # -- market data
    def _fmt(self, symbol: str, levels: list[tuple[str, str]]) -> list[tuple[Decimal, str, str]]:
        pp, qp = self.precisions[symbol]
        return [(Decimal(p), f"{Decimal(p):.{pp}f}", f"{Decimal(q):.{qp}f}") for p, q in levels]

    def book(self, topic: SimTopic, snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
             u: int, seq: int, ts_ms: int) -> str:
        key = (topic.symbol, topic.depth)
        fb, fa = self._fmt(topic.symbol, bids), self._fmt(topic.symbol, asks)
        if snapshot or key not in self.views:
            self.views[key] = ({}, {})
        vb, va = self.views[key]
        sent: list[list[tuple[str, str]]] = []
        for view, levels, sign in ((vb, fb, -1), (va, fa, 1)):
            for px, p, q in levels:
                if Decimal(q) == 0:
                    view.pop(px, None)
                else:
                    view[px] = (p, q)
            worst = (max(view) if sign > 0 else min(view)) if len(view) >= topic.depth else None
            # a level that left only because the depth is full gets no delete: the client truncates it
            sent.append([(p, q) for px, p, q in levels
                         if snapshot or Decimal(q) != 0 or worst is None or sign * (px - worst) < 0])
        checksum = crc_of_book([va[k] for k in heapq.nsmallest(10, va)], [vb[k] for k in heapq.nlargest(10, vb)])
        side = [",".join(f'{{"price":{p},"qty":{q}}}' for p, q in lv) for lv in sent]
        stamp = "" if snapshot else f',"timestamp":"{_rfc3339(ts_ms)}"'
        return (f'{{"channel":"book","type":"{"snapshot" if snapshot else "update"}","data":[{{"symbol":'
                f'"{topic.symbol}","bids":[{side[0]}],"asks":[{side[1]}],"checksum":{checksum}{stamp}}}]}}')

    def trade(self, topic: SimTopic, side: int, price: str, qty: str, trade_id: int, ts_ms: int) -> str:
        (_, p, q), = self._fmt(topic.symbol, [(price, qty)])
        if trade_id < 0:
            trade_id = self._trade_ids[topic.symbol] = self._trade_ids.get(topic.symbol, 0) + 1
        return (f'{{"channel":"trade","type":"update","data":[{{"symbol":"{topic.symbol}","side":'
                f'"{"buy" if side > 0 else "sell"}","price":{p},"qty":{q},"ord_type":"market",'
                f'"trade_id":{trade_id},"timestamp":"{_rfc3339(ts_ms)}"}}]}}')

    def ticker(self, topic: SimTopic, state: TickerState, ts_ms: int) -> str | None:
        if state.bid is None or state.ask is None:
            return None
        (_, b, bq), (_, a, aq) = self._fmt(topic.symbol, [state.bid, state.ask])
        last = self._fmt(topic.symbol, [(state.last_price, "0")])[0][1] if state.last_price else b
        return (f'{{"channel":"ticker","type":"update","data":[{{"symbol":"{topic.symbol}","bid":{b},'
                f'"bid_qty":{bq},"ask":{a},"ask_qty":{aq},"last":{last},"volume":0,"vwap":{last},'
                f'"low":{last},"high":{last},"change":0,"change_pct":0}}]}}')

    def bad_checksum(self, text: str) -> str | None:
        m = _CHECKSUM.search(text)
        if m is None:
            return None
        wrong = (int(m.group(1)) + 1) & 0xFFFFFFFF
        return text[:m.start(1)] + str(wrong) + text[m.end(1):]


class KrakenSimulator(PushSimulator):
    """:class:`PushSimulator` speaking Kraken v2: per-symbol answers, the ``instrument`` channel and
    heartbeats (every ``heartbeat`` seconds without other traffic; ``math.inf``: none)."""

    def __init__(self, market: PushMarket, renderer: KrakenRenderer | None = None, *, heartbeat: float = 1.0,
                 faults: PushFaultPlan | None = None, **kw: object) -> None:
        super().__init__(market, renderer or KrakenRenderer.for_market(market), faults=faults, **kw)  # type: ignore[arg-type]
        self.heartbeat = heartbeat

    async def start(self) -> KrakenSimulator:
        await super().start()
        if not math.isinf(self.heartbeat):
            task = asyncio.create_task(self._heartbeats(), name="kraken-sim-heartbeat")
            self._later.add(task)
        return self

    async def _heartbeats(self) -> None:
        r: KrakenRenderer = self.renderer  # type: ignore[assignment]
        st, seen = self.stats, -1
        while True:
            await asyncio.sleep(self.heartbeat)
            traffic = st["sent"] - st["pings"] - st["kraken_heartbeats"]  # channel messages and answers
            if traffic == seen:
                for c in list(self._conns):
                    if c.subs:
                        st["kraken_heartbeats"] += 1
                        await self._send(c, r.heartbeat_text())
            seen = traffic

    async def _request(self, c: Any, text: str) -> None:
        r: KrakenRenderer = self.renderer  # type: ignore[assignment]
        req = r.parse(text)
        if req.op not in ("subscribe", "unsubscribe") or not req.topics:
            await super()._request(c, text)
            return
        if req.topics[0].channel == "instrument":
            await self._send(c, r.answer(req, True))
            if req.op == "subscribe":
                c.subs[("", "instrument")] = req.topics[0]
                self.stats["instrument_snapshots"] += 1
                await self._send(c, r.instruments())
            else:
                c.subs.pop(("", "instrument"), None)
            return
        if len(req.topics) == 1:
            await super()._request(c, text)
            return
        for t in req.topics:  # Kraken answers each symbol of a request on its own
            await super()._request(c, r.request_text(req, t))
