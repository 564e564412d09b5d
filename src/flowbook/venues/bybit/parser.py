"""Pure parser: raw Bybit v5 JSON bytes -> typed messages (:mod:`.messages`), routed by topic.

``decode(b'{"topic":"orderbook.1.BANDUSDT","type":"snapshot","ts":1749833474773,"data":{"s":"BANDUSDT",
"b":[["0.6131","17.9"]],"a":[["0.6134","35.4"]],"u":24042997,"seq":209972815373},"cts":1749833474768}')``
returns ``OrderBook(topic="orderbook.1.BANDUSDT", type="snapshot", ts=1749833474773,
data=BookData(s="BANDUSDT", b=[("0.6131", "17.9")], a=[("0.6134", "35.4")], u=24042997, seq=209972815373),
cts=1749833474768)``.
"""

from __future__ import annotations

import msgspec

from .messages import (
    Ack,
    AllLiquidation,
    BookData,
    Envelope,
    InstrumentsInfo,
    Liquidation,
    OrderBook,
    PublicTrade,
    Ticker,
    TickerData,
    Trade,
)

__all__ = ["BybitMessage", "decode", "topic_kind"]

BybitMessage = OrderBook | PublicTrade | AllLiquidation | Ticker | Ack | InstrumentsInfo

_envelope = msgspec.json.Decoder(Envelope)
_book = msgspec.json.Decoder(BookData)
_trades = msgspec.json.Decoder(list[Trade])
_liquidations = msgspec.json.Decoder(list[Liquidation])
_ticker = msgspec.json.Decoder(TickerData)
_instruments = msgspec.json.Decoder(InstrumentsInfo)


def topic_kind(topic: str) -> str:
    """``"orderbook"`` of ``orderbook.50.BTCUSDT``; ``"publicTrade"`` of ``publicTrade.BTCUSDT``."""
    return topic.partition(".")[0]


def decode(payload: bytes | str) -> BybitMessage | None:
    """Decode one Bybit v5 frame (a topic push, an operation answer, or an instruments-info answer).

    Returns ``None`` for topics flowbook does not use (``kline``, ``orderbook.rpi``, ``orderbook.full``, ...)
    and for other REST answers.  Raises ``msgspec.DecodeError``/``ValidationError`` on malformed JSON or
    missing fields.
    """
    env = _envelope.decode(payload)
    if env.topic:
        kind = topic_kind(env.topic)
        if bytes(env.data) == b"null":
            raise msgspec.ValidationError(f"{env.topic}: push without data")
        if kind == "orderbook":
            if not env.topic.split(".", 2)[1].isdigit():  # orderbook.rpi / orderbook.full: not read
                return None
            return OrderBook(env.topic, env.type, env.ts, _book.decode(env.data), env.cts)
        if kind == "publicTrade":
            return PublicTrade(env.topic, env.ts, _trades.decode(env.data))
        if kind == "allLiquidation":
            return AllLiquidation(env.topic, env.ts, _liquidations.decode(env.data))
        if kind == "tickers":
            return Ticker(env.topic, env.type, env.ts, _ticker.decode(env.data), env.cs)
        return None
    if env.success is not None:
        return Ack(env.success, env.op, env.ret_msg, env.conn_id, env.req_id)
    if env.retCode is not None and b'"priceFilter"' in bytes(env.result):
        return _instruments.decode(env.result)
    if env.op in ("pong", "ping"):  # private-style pong: {"op":"pong","args":[...],"conn_id":...}
        return Ack(True, env.op, "", env.conn_id, env.req_id)
    return None
