"""OKX v5 public WebSocket, as the generic push transport needs it (:class:`~..pushstate.PushProtocol`).

Requests and answers on ``/ws/v5/public`` (OKX v5 docs "WebSocket / Subscribe", "Order book channel";
reference §B.3)::

    {"id":"7","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},
                                       {"channel":"trades","instId":"BTC-USDT"}]}
    {"id":"7","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}
    {"id":"7","event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"a4d3ae55"}
    {"id":"8","event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:NOPE-USDT doesn't
     exist. Please use the correct URL, channel and parameters referring to API document.","connId":"a4d3ae55"}
    ping   ->   pong                        (plain text frames, not JSON)

OKX answers **each argument** of a request with its own event (the 2022 capture ``OKX.ws.1.0`` shows
it: one ``subscribe`` event per channel).  The transport expects one answer per request, so this
protocol counts the arguments of every request it wrote and reports the request acknowledged when the
last of them is; an ``error`` ends the request at once.  The client's ``id`` is echoed by the current
API; answers without it (older versions) are matched by their ``arg``.

- Topics per instrument: the book (``books``: 400 levels with seqId/prevSeqId and a checksum, or
  ``books5``: 5-level snapshots), then ``trades`` and ``tickers`` unless turned off.
- Fewer than 30 deep book channels per connection: 29 instruments per socket.
- 480 ``subscribe``/``unsubscribe`` requests per connection and hour, 3 new connections per second per
  IP: start-up sends one request per connection (up to 100 arguments; a request may not exceed 64 KB).
- The server drops a connection that has been silent for 30 s: the client sends ``ping`` every 25 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..binance.rest import LiveError
from ..pushstate import Control, PushProtocol, Topic

if TYPE_CHECKING:
    from ..binance.rest import LiveConfig
    from ..registry import Venue

__all__ = ["BOOK_CHANNELS", "OkxProtocol"]

BOOK_CHANNELS = {400: "books", 5: "books5"}
_BOOKS_PER_CONNECTION = 29
_KEEP = 1024  # open requests remembered (a socket that died leaves its requests unanswered)
_ARG = b'"arg":{'
_CHANNEL, _INST = b'"channel":"', b'"instId":"'


def _arg_text(channel: str, inst_id: str) -> str:
    return json.dumps({"channel": channel, "instId": inst_id}, separators=(",", ":"))


class OkxProtocol(PushProtocol):
    """OKX v5 public channels of any instrument type (spot, swaps, futures)."""

    topics_per_request = 100
    ping_interval = 25.0
    connections_per_second = 3.0  # new connections per IP
    requests_per_window = 480  # subscribe/unsubscribe requests per connection and hour
    request_window = 3600.0

    def __init__(self, venue: Venue, depth: int, config: LiveConfig) -> None:
        super().__init__(venue, depth, config)
        if depth not in BOOK_CHANNELS:
            raise LiveError(f"okx: book depth {depth} has no incremental book channel (use 400 for `books` "
                            "or 5 for `books5`)")
        self.book_channel = BOOK_CHANNELS[depth]
        self._open: dict[str, tuple[str, set[tuple[str, str]]]] = {}  # req id -> op, args not yet answered

    @property
    def topics_per_connection(self) -> int:  # type: ignore[override]
        return _BOOKS_PER_CONNECTION * len(self.topics("X"))

    def topics(self, symbol: str) -> list[Topic]:
        cfg = self.config
        out = [Topic(symbol, self.book_channel, _arg_text(self.book_channel, symbol), book=True)]
        if cfg.trades != "none":
            out.append(Topic(symbol, "trades", _arg_text("trades", symbol)))
        if cfg.ticker:
            out.append(Topic(symbol, "tickers", _arg_text("tickers", symbol)))
        return out

    def requests(self, op: str, topics: list[Topic],
                 next_id: Callable[[], str]) -> list[tuple[str, str, list[Topic]]]:
        out = super().requests(op, topics, next_id)
        for rid, _, batch in out:
            self._open[rid] = (op, {(t.channel, t.symbol) for t in batch})
        while len(self._open) > _KEEP:
            del self._open[next(iter(self._open))]
        return out

    def request(self, op: str, topics: list[Topic], req_id: str) -> str:
        return f'{{"id":"{req_id}","op":"{op}","args":[{",".join(t.name for t in topics)}]}}'

    def ping(self, req_id: str) -> str | None:
        return "ping"

    # -- what comes back
    def frame_key(self, data: bytes) -> tuple[str, bool] | None:
        """``("BTC-USDT", True)`` from ``{"arg":{"channel":"books","instId":"BTC-USDT"},"action":...``.
        Answers (``{"event":...,"arg":{...}}``) are not market data: ``None``."""
        head = data[:200]
        at = head.find(_ARG)
        if at < 0 or b'"event"' in head[:at]:
            return None
        c = head.find(_CHANNEL, at)
        i = head.find(_INST, at)
        if c < 0 or i < 0:
            return None
        c += len(_CHANNEL)
        i += len(_INST)
        c_end, i_end = head.find(b'"', c), head.find(b'"', i)
        if c_end < 0 or i_end < 0:
            return None
        return head[i:i_end].decode(errors="replace"), head[c:c_end].decode(errors="replace") == self.book_channel

    def control(self, data: bytes) -> Control | None:
        if data.strip() == b"pong":
            return Control("pong")
        if b'"event"' not in data[:200]:
            return None
        try:
            d = json.loads(data)
        except ValueError:
            return None
        if not isinstance(d, dict):
            return None
        event, rid = str(d.get("event", "")), d.get("id")
        rid = str(rid) if rid not in (None, "") else None
        if event == "error":
            text = f"error {d.get('code', '')}: {d.get('msg', '')}"
            if rid not in self._open:
                rid = next(iter(self._open), None)  # no id (older API): the oldest open request
            op = self._open.pop(rid)[0] if rid is not None else ""
            return Control("error", rid, text, op)
        if event not in ("subscribe", "unsubscribe"):
            return Control("info", rid, str(d.get("msg", "")), event)
        arg = d.get("arg") if isinstance(d.get("arg"), dict) else {}
        key = (str(arg.get("channel", "")), str(arg.get("instId", "")))
        if rid not in self._open:  # no id: the oldest open request of that op naming this argument
            rid = next((r for r, (op, left) in self._open.items() if op == event and key in left), None)
        if rid is None:
            return Control("info", None, "", event)
        op, left = self._open[rid]
        if key in left:
            left.discard(key)
        elif left:  # an argument written differently: still one answer fewer to wait for
            left.pop()
        if left:
            return Control("info", rid, "", event)  # more arguments of this request still to be answered
        del self._open[rid]
        return Control("ack", rid, "", op)
