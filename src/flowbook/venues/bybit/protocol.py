"""Bybit v5 public WebSocket, as the generic push transport needs it (:class:`~..pushstate.PushProtocol`).

Requests and answers (Bybit v5 "Connect" and "Orderbook" pages; reference §B.4)::

    {"op":"subscribe","req_id":"7","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]}
    {"success":true,"ret_msg":"","conn_id":"c1","req_id":"7","op":"subscribe"}
    {"success":false,"ret_msg":"error:handler not found,topic:orderbook.40.BTCUSDT","conn_id":"c1",
     "req_id":"7","op":"subscribe"}
    {"op":"ping","req_id":"8"}
    {"success":true,"ret_msg":"pong","conn_id":"c1","req_id":"8","op":"ping"}

Option and private sockets answer a ping with ``{"op":"pong","args":[...]}`` instead; both are pongs here.

- Topics per symbol: ``orderbook.{depth}.{symbol}`` (the book: 1, 50, 200 or 1000 levels), and unless
  turned off ``publicTrade.{symbol}``, ``tickers.{symbol}`` and, on linear, ``allLiquidation.{symbol}``.
- Spot takes at most 10 ``args`` per subscribe request; linear allows more (the documented cap is the
  request's length, 21,000 characters), so 100 per request stays far below it.
- The client must ping every 20 s or the server drops the connection.
- Bybit states no topic limit per connection; connections are kept to 200 topics (about 66 symbols
  with every topic) so one socket's loss costs a bounded set of books.
"""

from __future__ import annotations

import json

from ..pushstate import Control, PushProtocol, Topic

__all__ = ["BybitProtocol"]

_HEAD = b'"topic":"'


class BybitProtocol(PushProtocol):
    """Bybit v5 public topics (spot and linear)."""

    topics_per_connection = 200
    ping_interval = 20.0

    @property
    def topics_per_request(self) -> int:  # type: ignore[override]
        return 10 if self.venue.market == "spot" else 100

    def topics(self, symbol: str) -> list[Topic]:
        cfg = self.config
        out = [Topic(symbol, "orderbook", f"orderbook.{self.depth}.{symbol}", book=True)]
        if cfg.trades != "none":
            out.append(Topic(symbol, "publicTrade", f"publicTrade.{symbol}"))
        if cfg.ticker:
            out.append(Topic(symbol, "tickers", f"tickers.{symbol}"))
        if self.venue.market != "spot" and cfg.force_order:
            out.append(Topic(symbol, "allLiquidation", f"allLiquidation.{symbol}"))
        return out

    def request(self, op: str, topics: list[Topic], req_id: str) -> str:
        return json.dumps({"op": op, "req_id": req_id, "args": [t.name for t in topics]}, separators=(",", ":"))

    def ping(self, req_id: str) -> str | None:
        return f'{{"op":"ping","req_id":"{req_id}"}}'

    def frame_key(self, data: bytes) -> tuple[str, bool] | None:
        """``("BTCUSDT", True)`` from ``{"topic":"orderbook.50.BTCUSDT",...`` (the topic comes first in
        every push; a later position is searched within the first 160 bytes)."""
        at = data.find(_HEAD, 0, 160)
        if at < 0:
            return None
        start = at + len(_HEAD)
        end = data.find(b'"', start, start + 96)
        if end < 0:
            return None
        topic = data[start:end]
        dot = topic.rfind(b".")
        if dot < 0:
            return None
        return topic[dot + 1:].decode(errors="replace"), topic.startswith(b"orderbook.")

    def control(self, data: bytes) -> Control | None:
        if b'"op"' not in data[:400]:
            return None
        try:
            d = json.loads(data)
        except ValueError:
            return None
        if not isinstance(d, dict):
            return None
        op, rid = str(d.get("op", "")), d.get("req_id")
        rid = str(rid) if rid not in (None, "") else None
        if op == "pong" or (op == "ping" and d.get("success", True)):
            return Control("pong", rid, op=op)
        if op in ("subscribe", "unsubscribe"):
            ok = bool(d.get("success", False))
            return Control("ack" if ok else "error", rid, str(d.get("ret_msg", "")), op)
        return Control("info", rid, str(d.get("ret_msg", "")), op)
