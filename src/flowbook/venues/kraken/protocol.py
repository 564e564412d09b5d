"""Kraken spot WebSocket v2, as the generic push transport needs it (:class:`~..pushstate.PushProtocol`).

Requests and answers (Kraken "Spot WebSocket v2" pages ``book``, ``trade``, ``ticker``, ``instrument``,
``ping``, ``heartbeat``; reference §B.4)::

    {"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"],"depth":10},"req_id":7}
    {"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},
     "success":true,"time_in":"...","time_out":"...","req_id":7}
    {"error":"Currency pair not supported NOPE/USD","method":"subscribe","req_id":7,"success":false,
     "symbol":"NOPE/USD","time_in":"...","time_out":"..."}
    {"method":"ping","req_id":8}
    {"method":"pong","req_id":8,"time_in":"...","time_out":"..."}
    {"channel":"heartbeat"}

- One request names one channel and any number of symbols; Kraken answers **each symbol on its own**,
  all with the request's ``req_id``.  :meth:`KrakenProtocol.control` therefore counts the answers of a
  request and reports it answered (``ack``) at its last success, or failed at its first error.
- Topics per pair: ``book`` (depth 10, 25, 100, 500 or 1000) first, then ``trade`` (``snapshot: false``:
  a resubscription must not replay old trades) and ``ticker`` unless turned off.  Each pair also carries
  the ``instrument`` topic (one request per connection, no symbol): the precisions the checksum needs.
- ``heartbeat`` arrives about once a second when no other channel has traffic; it is not a pong.
  The client sends ``{"method":"ping"}`` every 20 s (Kraken drops silent connections after about a minute).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container

import msgspec

from ..pushstate import Control, PushProtocol, Topic

__all__ = ["INSTRUMENT_HEAD", "KrakenProtocol"]

INSTRUMENT_HEAD = b'{"channel":"instrument"'
_CHANNEL = b'"channel":"'
_SYMBOL = b'"symbol":"'
_DATA = {b"book": True, b"trade": False, b"ticker": False}


class _Pairs(msgspec.Struct):
    pairs: list[msgspec.Raw] = []


class _Instruments(msgspec.Struct):
    type: str = "snapshot"
    data: _Pairs = msgspec.field(default_factory=_Pairs)


class _Pair(msgspec.Struct):
    symbol: str = ""


_instrument = msgspec.json.Decoder(_Instruments)
_pair = msgspec.json.Decoder(_Pair)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


_MAX_EXPECT = 1024


class KrakenProtocol(PushProtocol):
    """Kraken spot v2 public channels."""

    topics_per_request = 50  # symbols per request of one channel
    topics_per_connection = 200
    ping_interval = 20.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._expect: dict[str, int] = {}  # req id -> answers still to come (oldest first, bounded)

    def topics(self, symbol: str) -> list[Topic]:
        cfg = self.config
        out = [Topic(symbol, "book", f"book.{self.depth}.{symbol}", book=True)]
        if cfg.trades != "none":
            out.append(Topic(symbol, "trade", f"trade.{symbol}"))
        if cfg.ticker:
            out.append(Topic(symbol, "ticker", f"ticker.{symbol}"))
        out.append(Topic(symbol, "instrument", "instrument"))
        return out

    def requests(self, op: str, topics: list[Topic],
                 next_id: Callable[[], str]) -> list[tuple[str, str, list[Topic]]]:
        """One request per channel (instrument first, book next), at most ``topics_per_request`` symbols
        each; the instrument channel is asked once, for subscriptions only."""
        by_channel: dict[str, list[Topic]] = {}
        for t in topics:
            by_channel.setdefault(t.channel, []).append(t)
        order = sorted(by_channel, key=lambda ch: ("instrument", "book", "trade", "ticker").index(ch)
                       if ch in ("instrument", "book", "trade", "ticker") else 9)
        out = []
        n = max(1, self.topics_per_request)
        for ch in order:
            group = by_channel[ch]
            if ch == "instrument":
                if op != "subscribe":
                    continue
                rid = next_id()
                self._count(rid, 1)
                out.append((rid, self.request(op, group[:1], rid), group))
                continue
            for i in range(0, len(group), n):
                rid, batch = next_id(), group[i:i + n]
                self._count(rid, len({t.symbol for t in batch}))
                out.append((rid, self.request(op, batch, rid), batch))
        return out

    def _count(self, rid: str, answers: int) -> None:
        """Expect ``answers`` answers to request ``rid``.  Counts of requests whose answers never all
        come (a connection lost mid-request, a failed request's later answers) are dropped oldest first
        beyond ``_MAX_EXPECT`` requests: the table stays bounded, and a late answer without a count is
        taken as it is (see :meth:`control`)."""
        self._expect[rid] = answers
        while len(self._expect) > _MAX_EXPECT:
            del self._expect[next(iter(self._expect))]

    def request(self, op: str, topics: list[Topic], req_id: str) -> str:
        channel = topics[0].channel
        params: dict[str, object] = {"channel": channel}
        if channel != "instrument":
            params["symbol"] = list(dict.fromkeys(t.symbol for t in topics))
        if channel == "book":
            params["depth"] = self.depth
        elif channel == "trade":
            params["snapshot"] = False
        elif channel == "instrument" and op == "subscribe":
            params["snapshot"] = True
        return _dumps({"method": op, "params": params, "req_id": int(req_id)})

    def ping(self, req_id: str) -> str | None:
        return _dumps({"method": "ping", "req_id": int(req_id)})

    # -- what comes back
    def frame_key(self, data: bytes) -> tuple[str, bool] | None:
        """``("BTC/USD", True)`` from ``{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",...``
        (searched within the first 200 bytes); ``None`` for heartbeats, status, instruments and answers."""
        at = data.find(_CHANNEL, 0, 40)
        if at < 0:
            return None
        start = at + len(_CHANNEL)
        end = data.find(b'"', start, start + 24)
        book = _DATA.get(data[start:end])
        if book is None:
            return None
        at = data.find(_SYMBOL, end, 200)
        if at < 0:
            return None
        start = at + len(_SYMBOL)
        end = data.find(b'"', start, start + 64)
        if end < 0:
            return None
        return data[start:end].decode(errors="replace"), book

    def control(self, data: bytes) -> Control | None:
        head = data[:400]
        if b'"method"' not in head:
            if data.startswith(b'{"channel":"') and b'"symbol"' not in head:
                return Control("info", message=data[12:40].partition(b'"')[0].decode(errors="replace"))
            return None
        try:
            d = json.loads(data)
        except ValueError:
            return None
        if not isinstance(d, dict):
            return None
        method = str(d.get("method", ""))
        rid = d.get("req_id")
        rid = str(rid) if rid is not None else None
        if method == "pong":
            return Control("pong", rid, op="ping")
        ok = bool(d.get("success", False))
        message = str(d.get("error") or "")
        if method == "error" or (not ok and rid is None):  # an error that answers no request
            return Control("error", rid, message, "")
        if method not in ("subscribe", "unsubscribe"):
            return Control("info", rid, message, method)
        left = self._expect.get(rid) if rid is not None else None
        if left is None:  # no count kept: take the answer as it is (a late success changes nothing)
            if ok and rid is not None:
                return Control("info", rid, "", method)
            return Control("ack" if ok else "error", rid, message, method)
        if left <= 0:  # the request already failed: its other answers change nothing
            return Control("info", rid, message, method)
        if not ok:
            self._expect[rid] = 0
            return Control("error", rid, message, method)
        if left > 1:
            self._expect[rid] = left - 1
            return Control("info", rid, "", method)
        del self._expect[rid]
        return Control("ack", rid, "", method)

    @staticmethod
    def book_answer(data: bytes) -> str | None:
        """The pair of a successful ``book`` subscribe answer (``None`` for anything else)."""
        if not data.startswith(b'{"method":"subscribe"') or b'"channel":"book"' not in data[:200]:
            return None
        try:
            d = json.loads(data)
        except ValueError:
            return None
        r = d.get("result") if isinstance(d, dict) else None
        if not (isinstance(r, dict) and d.get("success") and r.get("channel") == "book"):
            return None
        sym = r.get("symbol")
        return sym if isinstance(sym, str) else None

    @staticmethod
    def instrument_frames(data: bytes, symbols: Container[str]) -> list[tuple[str, bytes]]:
        """``(pair, frame)`` for each of ``symbols`` in an ``instrument`` message: that pair's entry alone
        (its bytes as received), written as an ``instrument`` message (what a recording of the pair keeps)."""
        try:
            msg = _instrument.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        out = []
        for raw in msg.data.pairs:
            try:
                sym = _pair.decode(raw).symbol
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if sym in symbols:
                head = b'{"channel":"instrument","type":"%s","data":{"pairs":[' % msg.type.encode()
                out.append((sym, head + bytes(raw) + b"]}}"))
        return out
