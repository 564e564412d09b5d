"""`CoinbaseRenderer`: Coinbase Advanced Trade market-data messages for :class:`~.push.PushSimulator`.

Served on ``/``.  Requests ``{"type":"subscribe"|"unsubscribe","channel":...,"product_ids":[...]}``
(``heartbeats`` names no product).  Channels: ``level2`` (the full book: ``l2_data`` with a
``snapshot`` event, then ``update`` events of absolute sizes, ``"0"`` removes), ``market_trades``
(``side`` is the taker's), ``ticker`` and ``heartbeats`` (one push every ``ticker_every`` steps, with
``heartbeat_counter``).  Every subscribe and unsubscribe is answered by a ``subscriptions`` message
(listing the request's own channel and products).  Each message of a connection carries
``sequence_num``, numbered per connection from 0 by the server (``seq_mark``), so a dropped frame
leaves a hole in the numbering and a duplicated one repeats its number.  Errors are
``{"type":"error","message":...}`` without a number; an unknown product is refused with
``Failed to subscribe: unknown product_id <id>`` (the simulator's wording).  No checksum: the
``checksum`` fault leaves frames unchanged.

Also here: :func:`as_products` (a recording's symbols renamed to Coinbase products).  A live client is
compared with the truth at every level of the full book by :mod:`.pushcheck` (``FULL``).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from .pushcheck import FULL
from .pushrender import PushRenderer, Request, SimTopic, TickerState
from .pushtruth import PushMarket

if TYPE_CHECKING:
    pass

__all__ = ["CoinbaseRenderer", "as_products"]

_CHANNELS = {"level2": "book", "market_trades": "trade", "ticker": "ticker"}
_MARK = "#SEQ#"


def _stamp(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + f".{ts_ms % 1000:03d}000Z"


def _envelope(channel: str, ts_ms: int, events: str) -> str:
    return (f'{{"channel":"{channel}","client_id":"","timestamp":"{_stamp(ts_ms)}","sequence_num":{_MARK},'
            f'"events":{events}}}')


class CoinbaseRenderer(PushRenderer):
    """Advanced Trade public channels."""

    paths = ("/",)
    depths = (FULL,)
    seq_mark = _MARK

    def parse(self, text: str) -> Request:
        try:
            d = json.loads(text)
            op = str(d["type"])
            channel = str(d["channel"])
            products = [str(p) for p in d.get("product_ids") or []]
        except (ValueError, KeyError, TypeError):
            return Request("bad", None)
        if op not in ("subscribe", "unsubscribe"):
            return Request("bad", None)
        if channel == "heartbeats":
            return Request(op, None, (SimTopic("", "heartbeat", 0, channel),))
        kind = _CHANNELS.get(channel, "unknown")
        depth = FULL if kind == "book" else 0
        return Request(op, None, tuple(SimTopic(p if kind != "unknown" else "", kind, depth, f"{channel}:{p}")
                                       for p in products))

    def answer(self, req: Request, ok: bool, message: str = "") -> str:
        if not ok:
            return json.dumps({"type": "error", "message": message or "Failed to subscribe"}, separators=(",", ":"))
        subs: dict[str, list[str]] = {}
        for t in req.topics:
            name = t.name.partition(":")[0]
            subs.setdefault(name, []).append(t.symbol or name)
        body = json.dumps([{"subscriptions": subs}], separators=(",", ":"))
        return _envelope("subscriptions", _now_ms(), body)

    def pong(self, req: Request) -> str:
        return json.dumps({"type": "error", "message": "unknown request"})

    def unknown(self, topic: SimTopic) -> str:
        if topic.channel == "unknown":
            return f"Failed to subscribe: unknown channel {topic.name.partition(':')[0]}"
        return f"Failed to subscribe: unknown product_id {topic.symbol}"

    def book(self, topic: SimTopic, snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
             u: int, seq: int, ts_ms: int) -> str:
        t = _stamp(ts_ms)
        ups = [f'{{"side":"{side}","event_time":"{t}","price_level":"{p}","new_quantity":"{q}"}}'
               for side, levels in (("bid", bids), ("offer", asks)) for p, q in levels]
        kind = "snapshot" if snapshot else "update"
        events = f'[{{"type":"{kind}","product_id":"{topic.symbol}","updates":[{",".join(ups)}]}}]'
        return _envelope("l2_data", ts_ms, events)

    def trade(self, topic: SimTopic, side: int, price: str, qty: str, trade_id: int, ts_ms: int) -> str:
        trade = (f'{{"trade_id":"{trade_id}","product_id":"{topic.symbol}","price":"{price}","size":"{qty}",'
                 f'"side":"{"BUY" if side > 0 else "SELL"}","time":"{_stamp(ts_ms)}"}}')
        return _envelope("market_trades", ts_ms, f'[{{"type":"update","trades":[{trade}]}}]')

    def ticker(self, topic: SimTopic, state: TickerState, ts_ms: int) -> str | None:
        if state.last_price is None:
            return None
        d = {"type": "ticker", "product_id": topic.symbol, "price": state.last_price}
        if state.bid is not None:
            d.update(best_bid=state.bid[0], best_bid_quantity=state.bid[1])
        if state.ask is not None:
            d.update(best_ask=state.ask[0], best_ask_quantity=state.ask[1])
        body = json.dumps([{"type": "update", "tickers": [d]}], separators=(",", ":"))
        return _envelope("ticker", ts_ms, body)

    def heartbeat(self, counter: int, ts_ms: int) -> str:
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_ms // 1000))
        return _envelope("heartbeats", ts_ms,
                         f'[{{"current_time":"{now}.{ts_ms % 1000:03d}000000 +0000 UTC","heartbeat_counter":{counter}}}]')


def as_products(market: PushMarket, names: dict[str, str]) -> PushMarket:
    """The same market with its symbols renamed (``{"BTCUSDT": "BTC-USD"}``), steps cut as before."""
    insts = [replace(i, venue="coinbase", symbol=names.get(s, s)) for s, i in market.instruments.items()]
    out = PushMarket(market.events, insts)
    out.steps = out.steps[:len(market.steps)]
    return out


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
