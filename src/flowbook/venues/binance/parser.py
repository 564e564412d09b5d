"""Pure parser: raw Binance JSON bytes -> typed messages (:mod:`.messages`)."""

from __future__ import annotations

from typing import Literal

import msgspec

from .messages import (
    AggTrade,
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Envelope,
    ForceOrder,
    MarkPrice,
    OpenInterest,
    RecentTrades,
    RestTrade,
    Ticker,
    Trade,
)

__all__ = ["BinanceMessage", "decode", "Market", "market_of"]

Market = Literal["spot", "usdm", "coinm"]
BinanceMessage = (DepthUpdate | DepthSnapshot | Trade | AggTrade | BookTicker | ForceOrder | MarkPrice | Ticker
                  | OpenInterest | RecentTrades)

_envelope = msgspec.json.Decoder(Envelope)
_by_stream: dict[str, msgspec.json.Decoder] = {
    "depth": msgspec.json.Decoder(DepthUpdate),
    "trade": msgspec.json.Decoder(Trade),
    "aggTrade": msgspec.json.Decoder(AggTrade),
    "bookTicker": msgspec.json.Decoder(BookTicker),
    "forceOrder": msgspec.json.Decoder(ForceOrder),
    "markPrice": msgspec.json.Decoder(MarkPrice),
    "ticker": msgspec.json.Decoder(Ticker),
}
_by_event = {
    "depthUpdate": _by_stream["depth"],
    "trade": _by_stream["trade"],
    "aggTrade": _by_stream["aggTrade"],
    "bookTicker": _by_stream["bookTicker"],
    "forceOrder": _by_stream["forceOrder"],
    "markPriceUpdate": _by_stream["markPrice"],
    "24hrTicker": _by_stream["ticker"],
}
_snapshot = msgspec.json.Decoder(DepthSnapshot)
_open_interest = msgspec.json.Decoder(OpenInterest)
_trades = msgspec.json.Decoder(list[RestTrade])


class _EventType(msgspec.Struct):
    e: str = ""


_event_type = msgspec.json.Decoder(_EventType)


def _stream_kind(stream: str) -> str:
    # "btcusdt@depth@100ms" -> "depth"; "btcusdt@markPrice@1s" -> "markPrice"
    parts = stream.split("@")
    return parts[1] if len(parts) > 1 else ""


def decode(payload: bytes | str) -> BinanceMessage | None:
    """Decode one Binance message (combined-stream envelope, raw stream, or a REST answer: depth snapshot,
    open interest, recent trades).

    Returns ``None`` for message types flowbook does not use (klines, subscription acks, ...).
    Raises ``msgspec.DecodeError``/``ValidationError`` on malformed JSON or missing fields.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    head = payload[:12]
    if head.startswith(b'{"stream"'):
        env = _envelope.decode(payload)
        dec = _by_stream.get(_stream_kind(env.stream))
        return dec.decode(env.data) if dec is not None else None
    if b'"lastUpdateId"' in payload[:40]:
        return _snapshot.decode(payload)
    if head.startswith(b"["):  # REST recent trades
        return RecentTrades(_trades.decode(payload))
    if b'"openInterest"' in payload[:120]:
        return _open_interest.decode(payload)
    kind = _event_type.decode(payload).e
    dec = _by_event.get(kind)
    if dec is None:
        if kind == "" and b'"u"' in payload and b'"B"' in payload:
            return _by_stream["bookTicker"].decode(payload)  # spot bookTicker has no "e"
        return None
    return dec.decode(payload)


def market_of(msg: BinanceMessage) -> Market | None:
    """Market a message belongs to, when its fields tell (diffs and snapshots do)."""
    if isinstance(msg, DepthUpdate):
        if msg.pu is None:
            return "spot"
        # COIN-M diffs carry the pair ("ps"); USD-M quarterlies such as BTCUSDT_210924 do not
        return "coinm" if msg.ps is not None else "usdm"
    if isinstance(msg, DepthSnapshot):
        if msg.pair is not None:
            return "coinm"
        return "usdm" if msg.T is not None else "spot"
    return None
