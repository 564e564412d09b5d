"""Pure parser: raw Kraken spot JSON bytes -> typed messages (:mod:`.messages`).

v2 frames are JSON objects told apart by ``channel`` (or ``method`` for request answers)::

    {"channel": "book", "type": "snapshot", "data": [{"symbol": "BTC/USD", "bids": [...], ...}]}

v1 frames are arrays ``[channelID, payload..., channelName, pair]`` or event objects::

    [1664, {"b": [["13.203800", "15.02366304", "1618678133.463424"]], "c": "176333288"}, "book-1000",
     "WAVES/EUR"]
    {"event": "heartbeat"}
"""

from __future__ import annotations

import calendar
import re

import msgspec

from .messages import (
    BookMessage,
    BookPartV1,
    BookUpdateV1,
    EventV1,
    InstrumentMessage,
    MethodResponse,
    TickerMessage,
    TickerV1,
    TradeMessage,
    TradesV1,
    TradeV1,
)

__all__ = ["KrakenMessage", "decode", "epoch_ns", "parse_rfc3339_ns", "v2_symbol"]

KrakenMessage = (BookMessage | TradeMessage | TickerMessage | InstrumentMessage | MethodResponse | BookUpdateV1
                 | TradesV1 | TickerV1 | EventV1)


class _Head(msgspec.Struct):
    channel: str = ""
    method: str = ""


_head = msgspec.json.Decoder(_Head)
_by_channel: dict[str, msgspec.json.Decoder] = {
    "book": msgspec.json.Decoder(BookMessage),
    "trade": msgspec.json.Decoder(TradeMessage),
    "ticker": msgspec.json.Decoder(TickerMessage),
    "instrument": msgspec.json.Decoder(InstrumentMessage),
}
_method = msgspec.json.Decoder(MethodResponse)
_event_v1 = msgspec.json.Decoder(EventV1)
_array_v1 = msgspec.json.Decoder(list[msgspec.Raw])
_str = msgspec.json.Decoder(str)
_book_part = msgspec.json.Decoder(BookPartV1)
_trades_v1 = msgspec.json.Decoder(list[TradeV1])
_ticker_v1 = msgspec.json.Decoder(TickerV1)

# v1 names some assets by their ISO-4217-style codes; v2 uses the common ones
_V1_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9})\d*)?(Z|[+-]\d\d:\d\d)")


def v2_symbol(pair: str) -> str:
    """A v1 pair name as v2 writes it: ``"XBT/USD"`` -> ``"BTC/USD"``, ``"XDG/EUR"`` -> ``"DOGE/EUR"``."""
    base, sep, quote = pair.partition("/")
    if not sep:
        return pair
    return f"{_V1_ASSETS.get(base, base)}/{_V1_ASSETS.get(quote, quote)}"


def parse_rfc3339_ns(text: str) -> int:
    """``"2023-10-06T17:35:55.440295Z"`` -> integer nanoseconds since the epoch (exact)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"bad RFC 3339 time {text[:40]!r}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


def _decode_v1_array(payload: bytes) -> KrakenMessage | None:
    parts = _array_v1.decode(payload)
    if len(parts) < 4:
        raise msgspec.ValidationError(f"v1 array of {len(parts)} elements (expected 4 or 5)")
    channel = _str.decode(parts[-2])
    pair = _str.decode(parts[-1])
    body = parts[1:-2]
    if channel.startswith("book"):
        return BookUpdateV1(channel, pair, [_book_part.decode(p) for p in body])
    if channel == "trade":
        return TradesV1(pair, [t for p in body for t in _trades_v1.decode(p)])
    if channel == "ticker":
        t = _ticker_v1.decode(body[0])
        t.pair = pair
        return t
    return None  # spread, ohlc, ...


def decode(payload: bytes | str) -> KrakenMessage | None:
    """Decode one Kraken spot frame (v2 object, v1 array or v1 event object).

    Returns ``None`` for what flowbook does not use (heartbeats, status, other channels).
    Raises ``msgspec.DecodeError`` / ``ValidationError`` on malformed JSON or missing fields.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    body = payload.lstrip()
    if body.startswith(b"["):
        return _decode_v1_array(body)
    if b'"event"' in body[:200] and b'"channel"' not in body[:40]:
        return _event_v1.decode(body)
    head = _head.decode(body)
    if head.method:
        return _method.decode(body)
    dec = _by_channel.get(head.channel)
    return dec.decode(body) if dec is not None else None


def epoch_ns(text: str) -> int:
    """v1 time text (epoch seconds, ``"1618678133.463424"``) -> integer nanoseconds, exactly (digits
    beyond the nanosecond are cut)."""
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad v1 time {text[:40]!r}")
    return int(whole) * 1_000_000_000 + int(frac[:9].ljust(9, "0"))
