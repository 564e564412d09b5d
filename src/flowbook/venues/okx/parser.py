"""Pure parser: raw OKX v5 frames (bytes) -> typed messages (:mod:`.messages`).

One ``msgspec`` pass reads the envelope (``arg``, ``action``, ``event``) and leaves ``data`` raw; a
second decodes ``data`` with the struct of its channel.  Examples::

    b'pong'                                                          -> PONG
    b'{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}'
                                                                     -> EventMessage(event="subscribe", ...)
    b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"338476308",
      "px":"30243.5","sz":"0.001","side":"buy","ts":"1652459226050"}]}'
                                                                     -> Push("trades", "BTC-USDT", None, [Trade])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

from .messages import (
    BookData,
    Envelope,
    EventMessage,
    FundingRate,
    InstrumentInfo,
    InstrumentsResponse,
    LiquidationOrders,
    MarkPrice,
    OpenInterest,
    Ticker,
    Trade,
)

__all__ = ["BOOK_CHANNELS", "PONG", "Push", "decode", "decode_instruments"]

PONG: Final = "pong"
BOOK_CHANNELS: Final = ("books", "books5", "bbo-tbt")

_envelope = msgspec.json.Decoder(Envelope)
_instruments = msgspec.json.Decoder(InstrumentsResponse)
_by_channel: dict[str, msgspec.json.Decoder] = {
    "books": msgspec.json.Decoder(list[BookData]),
    "books5": msgspec.json.Decoder(list[BookData]),
    "bbo-tbt": msgspec.json.Decoder(list[BookData]),
    "trades": msgspec.json.Decoder(list[Trade]),
    "tickers": msgspec.json.Decoder(list[Ticker]),
    "funding-rate": msgspec.json.Decoder(list[FundingRate]),
    "open-interest": msgspec.json.Decoder(list[OpenInterest]),
    "mark-price": msgspec.json.Decoder(list[MarkPrice]),
    "liquidation-orders": msgspec.json.Decoder(list[LiquidationOrders]),
}


@dataclass(frozen=True, slots=True)
class Push:
    """A channel push: ``data`` holds the structs of the channel (``BookData``, ``Trade``, ...)."""

    channel: str
    inst_id: str | None
    action: str | None
    data: list


def decode(payload: bytes | str) -> Push | EventMessage | str | None:
    """Decode one frame of ``/ws/v5/public``.

    Returns :data:`PONG` for the keep-alive answer, an :class:`EventMessage` for request answers, a
    :class:`Push` for channel data, and ``None`` for channels flowbook does not use (candles, ...).
    Raises ``msgspec.DecodeError``/``ValidationError`` on malformed JSON or missing fields.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    if payload.strip() == b"pong":
        return PONG
    env = _envelope.decode(payload)
    if env.event is not None:
        return EventMessage(env.event, env.arg, env.code, env.msg)
    if env.arg is None:
        raise msgspec.ValidationError("neither `arg` nor `event`: not an OKX v5 message")
    dec = _by_channel.get(env.arg.channel)
    if dec is None:
        return None
    if not env.data:
        raise msgspec.ValidationError(f"`{env.arg.channel}` push without `data`")
    return Push(env.arg.channel, env.arg.instId, env.action, dec.decode(env.data))


def decode_instruments(body: bytes) -> list[InstrumentInfo]:
    """Instruments of a ``GET /api/v5/public/instruments`` answer (empty when ``code`` is not ``"0"``)."""
    resp = _instruments.decode(body)
    return resp.data if resp.code == "0" else []
