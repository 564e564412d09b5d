"""`BybitRenderer`: Bybit v5 public WebSocket messages for :class:`~.push.PushSimulator`.

Served on ``/v5/public/linear`` and ``/v5/public/spot``.  Requests ``{"op":"subscribe"|"unsubscribe"|
"ping","req_id":...,"args":[topic, ...]}``; answers ``{"success":...,"ret_msg":...,"conn_id":...,
"req_id":...,"op":...}`` (a pong is the ``ping`` answer with ``ret_msg`` ``"pong"``).  Topics:
``orderbook.{1|50|200|1000}.{symbol}`` (snapshot, then deltas with ``u`` + 1 and ``seq``),
``publicTrade.{symbol}``, ``tickers.{symbol}`` (a snapshot-type push of the fields the simulator knows)
and ``allLiquidation.{symbol}`` (accepted; nothing is pushed).  An unknown symbol or depth is refused
with ``error:handler not found,topic:<topic>``, the text Bybit answers for a topic it does not serve.
Bybit books carry no checksum, so the ``checksum`` fault leaves frames unchanged.
"""

from __future__ import annotations

import json
import uuid

from .pushrender import PushRenderer, Request, SimTopic, TickerState

__all__ = ["BybitRenderer"]

_CHANNELS = {"orderbook": "book", "publicTrade": "trade", "tickers": "ticker", "allLiquidation": "other"}


def _levels(levels: list[tuple[str, str]]) -> str:
    return ",".join(f'["{p}","{q}"]' for p, q in levels)


class BybitRenderer(PushRenderer):
    """Bybit v5 public topics; ``market`` is ``linear`` or ``spot`` (spot trades carry no tick direction,
    spot tickers only the 24 h fields)."""

    paths = ("/v5/public/linear", "/v5/public/spot")
    depths = (1, 50, 200, 1000)

    def __init__(self, market: str = "linear") -> None:
        self.market = market
        self.conn_id = uuid.uuid4().hex[:12]

    def parse(self, text: str) -> Request:
        try:
            d = json.loads(text)
            op = str(d["op"])
            rid = d.get("req_id")
            args = [str(a) for a in d.get("args") or []]
        except (ValueError, KeyError, TypeError):
            return Request("bad", None)
        topics = []
        for a in args:
            parts = a.split(".")
            channel = _CHANNELS.get(parts[0], "unknown")
            if channel == "book" and len(parts) == 3 and parts[1].isdigit():
                topics.append(SimTopic(parts[2], channel, int(parts[1]), a))
            elif channel not in ("book", "unknown") and len(parts) == 2:
                topics.append(SimTopic(parts[1], channel, 0, a))
            else:
                topics.append(SimTopic("", "unknown", 0, a))
        return Request(op if op in ("subscribe", "unsubscribe", "ping") else "bad",
                       None if rid is None else str(rid), tuple(topics))

    def answer(self, req: Request, ok: bool, message: str = "") -> str:
        return json.dumps({"success": ok, "ret_msg": message, "conn_id": self.conn_id, "req_id": req.req_id or "",
                           "op": req.op if req.op != "bad" else "subscribe"}, separators=(",", ":"))

    def pong(self, req: Request) -> str:
        return json.dumps({"success": True, "ret_msg": "pong", "conn_id": self.conn_id, "req_id": req.req_id or "",
                           "op": "ping"}, separators=(",", ":"))

    def unknown(self, topic: SimTopic) -> str:
        return f"error:handler not found,topic:{topic.name}"

    def book(self, topic: SimTopic, snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
             u: int, seq: int, ts_ms: int) -> str:
        kind = "snapshot" if snapshot else "delta"
        return (f'{{"topic":"{topic.name}","type":"{kind}","ts":{ts_ms},"data":{{"s":"{topic.symbol}",'
                f'"b":[{_levels(bids)}],"a":[{_levels(asks)}],"u":{u},"seq":{seq}}},"cts":{ts_ms - 2}}}')

    def trade(self, topic: SimTopic, side: int, price: str, qty: str, trade_id: int, ts_ms: int) -> str:
        tick = '"L":"PlusTick",' if self.market != "spot" else ""
        return (f'{{"topic":"{topic.name}","type":"snapshot","ts":{ts_ms},"data":[{{"T":{ts_ms - 1},'
                f'"s":"{topic.symbol}","S":"{"Buy" if side > 0 else "Sell"}","v":"{qty}","p":"{price}",{tick}'
                f'"i":"{trade_id}","BT":false}}]}}')

    def ticker(self, topic: SimTopic, state: TickerState, ts_ms: int) -> str | None:
        if state.last_price is None:
            return None
        data: dict[str, str] = {"symbol": topic.symbol, "lastPrice": state.last_price}
        if self.market != "spot":
            if state.bid is not None:
                data.update({"bid1Price": state.bid[0], "bid1Size": state.bid[1], "markPrice": state.bid[0]})
            if state.ask is not None:
                data.update({"ask1Price": state.ask[0], "ask1Size": state.ask[1]})
            next_funding = (ts_ms // 28_800_000 + 1) * 28_800_000
            data.update({"fundingRate": "0.0001", "nextFundingTime": str(next_funding)})
        body = json.dumps(data, separators=(",", ":"))
        return f'{{"topic":"{topic.name}","type":"snapshot","ts":{ts_ms},"cs":{ts_ms},"data":{body}}}'
