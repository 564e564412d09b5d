"""Coinbase Advanced Trade public market data, as the generic push transport needs it
(:class:`~..pushstate.PushProtocol`).

Requests and answers (Advanced Trade "WebSocket Channels" and "Rate Limits" pages; reference §B.2.2)::

    {"type":"subscribe","channel":"level2","product_ids":["BTC-USD"]}
    {"type":"subscribe","channel":"heartbeats"}
    {"channel":"subscriptions","client_id":"","timestamp":"...","sequence_num":1,
     "events":[{"subscriptions":{"level2":["BTC-USD"]}}]}
    {"type":"error","message":"Failed to subscribe","reason":"..."}

- One request names one channel and any number of products; ``unsubscribe`` has the same shape.
  Answers carry no request id: they are matched to the oldest request waiting.
- Channels per product: ``level2`` (the full book: a ``snapshot`` event, then ``update`` events),
  ``market_trades`` unless ``trades="none"``, ``ticker`` when ``ticker=True``, and ``heartbeats``
  (one a second, no product), because channels close after 60-90 s without updates.
- Every message of a connection, answers and heartbeats included, carries ``sequence_num``, one more
  than the message before it.  So each connection carries **one product** (``topics_per_connection``
  = 1 puts every product on its own socket) and all its frames are that product's
  (``whole_connection``): a gap loses that product only, and the recording of the product is the whole
  connection, which replays with a continuous numbering.
- No client ping: the socket's own WebSocket pings and the ``heartbeats`` channel keep it open.
- Limits: 8 new connections and 8 unauthenticated messages a second per IP address.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..pushstate import Control, PushProtocol, Topic

__all__ = ["CoinbaseProtocol"]

_PRODUCT = b'"product_id":"'
_HEAD = 320  # bytes searched for the channel and the first product id


class CoinbaseProtocol(PushProtocol):
    """Advanced Trade ``level2`` books, one product per connection."""

    topics_per_request = 100  # products per request (one channel each)
    topics_per_connection = 1  # every product on its own socket (``sequence_num`` counts per socket)
    ping_interval = 60.0  # unused: ping() is None
    whole_connection = True
    requests_per_second = 8.0  # unauthenticated messages per IP ("WebSocket Rate Limits")
    connections_per_second = 8.0  # new connections per IP

    def topics(self, symbol: str) -> list[Topic]:
        cfg = self.config
        out = [Topic(symbol, "level2", f"level2.{symbol}", book=True)]
        if cfg.trades != "none":
            out.append(Topic(symbol, "market_trades", f"market_trades.{symbol}"))
        if cfg.ticker:
            out.append(Topic(symbol, "ticker", f"ticker.{symbol}"))
        out.append(Topic(symbol, "heartbeats", "heartbeats"))
        return out

    def requests(self, op: str, topics: list[Topic],
                 next_id: Callable[[], str]) -> list[tuple[str, str, list[Topic]]]:
        """One request per channel (and per ``topics_per_request`` products)."""
        by_channel: dict[str, list[Topic]] = {}
        for t in topics:
            by_channel.setdefault(t.channel, []).append(t)
        out = []
        n = max(1, self.topics_per_request)
        for batch_all in by_channel.values():
            for i in range(0, len(batch_all), n):
                rid, batch = next_id(), batch_all[i:i + n]
                out.append((rid, self.request(op, batch, rid), batch))
        return out

    def request(self, op: str, topics: list[Topic], req_id: str) -> str:
        channel = topics[0].channel
        body: dict[str, Any] = {"type": op, "channel": channel}
        if channel != "heartbeats":
            body["product_ids"] = list(dict.fromkeys(t.symbol for t in topics))
        return json.dumps(body, separators=(",", ":"))

    def ping(self, req_id: str) -> str | None:
        return None

    def frame_key(self, data: bytes) -> tuple[str, bool] | None:
        """``("BTC-USD", True)`` from ``{"channel":"l2_data",...,"events":[{"type":"update","product_id":
        "BTC-USD",...`` (the first ``product_id`` within the first 320 bytes); ``None`` for heartbeats,
        answers and errors, which name no product."""
        at = data.find(_PRODUCT, 0, _HEAD)
        if at < 0:
            return None
        start = at + len(_PRODUCT)
        end = data.find(b'"', start, start + 64)
        if end < 0:
            return None
        return data[start:end].decode(errors="replace"), b'"channel":"l2_data"' in data[:_HEAD]

    def control(self, data: bytes) -> Control | None:
        head = data[:_HEAD]
        if b'"channel":"subscriptions"' in head:
            return Control("ack")
        if b'"channel":"heartbeats"' in head:
            return Control("info", op="heartbeats")
        if b'"type":"error"' not in head and b'"type": "error"' not in head:
            return None
        try:
            d = json.loads(data)
        except ValueError:
            return None
        if not isinstance(d, dict) or d.get("type") != "error":
            return None
        text = ": ".join(str(d[k]) for k in ("message", "reason") if d.get(k))
        return Control("error", message=text)

    # -- the feed numbers messages per connection
    def feed_kwargs(self, cid: int) -> dict[str, Any]:
        return {"connection": f"ws{cid}"}

    def connection_closed(self, feed: Any, cid: int) -> None:
        feed.reset_connection(f"ws{cid}")
