"""Pure parser: raw Coinbase JSON bytes -> typed messages (:mod:`.messages`).

Advanced Trade envelopes are told apart by their ``channel`` key, Exchange (legacy) messages by ``type``::

    {"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":0,
     "events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"offer",
     "event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.74","new_quantity":"0"}]}]}
      -> L2Data(sequence_num=0, events=[L2Event(type="update", product_id="BTC-USD", updates=[...])])
    {"type":"l2update","product_id":"SKL-GBP","changes":[["sell","0.5767","0.0"]],
     "time":"2021-04-17T16:44:07.859760Z"}
      -> ExchangeL2Update(product_id="SKL-GBP", changes=[("sell", "0.5767", "0.0")], time=...)

Channels and types flowbook does not use (``candles``, ``status``, ``received``, ...) decode to ``None``:
Coinbase asks clients to ignore unknown message types.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from .messages import AdvancedMessage, ExchangeMessage

__all__ = ["ADVANCED_CHANNELS", "EXCHANGE_TYPES", "CoinbaseMessage", "decode", "parse_time_ns"]

CoinbaseMessage = AdvancedMessage | ExchangeMessage

ADVANCED_CHANNELS = frozenset({"l2_data", "market_trades", "ticker", "ticker_batch", "heartbeats", "subscriptions"})
EXCHANGE_TYPES = frozenset({"snapshot", "l2update", "match", "last_match", "ticker", "heartbeat", "subscriptions",
                            "error"})

_advanced = msgspec.json.Decoder(AdvancedMessage)
_exchange = msgspec.json.Decoder(ExchangeMessage)


class _Head(msgspec.Struct):
    channel: str | None = None
    type: str | None = None


_head = msgspec.json.Decoder(_Head)


def decode(payload: bytes | str) -> CoinbaseMessage | None:
    """Decode one Coinbase message (Advanced Trade or Exchange).

    Returns ``None`` for channels and types flowbook does not use.  Raises ``msgspec.DecodeError`` on
    malformed JSON and ``msgspec.ValidationError`` when a known message lacks a field or has a wrong type.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    first = _advanced if b'"channel"' in payload[:64] else _exchange
    try:
        return first.decode(payload)
    except msgspec.ValidationError:
        pass
    head = _head.decode(payload)  # malformed JSON raises here
    if head.channel is not None:
        if head.channel not in ADVANCED_CHANNELS:
            return None
        return _advanced.decode(payload)
    if head.type is None or head.type not in EXCHANGE_TYPES:
        return None
    return _exchange.decode(payload)


_second_cache: dict[str, int] = {}


def parse_time_ns(text: str) -> int:
    """RFC 3339 UTC time -> integer ns since the epoch, exactly (no float).

    ``parse_time_ns("2021-04-17T16:43:37.121358Z") == 1618677817121358000``; up to 9 fraction digits
    (Advanced Trade writes nanoseconds), more are cut.  Raises ``ValueError`` on anything else.
    """
    head, dot, frac = text.partition(".")
    if dot:
        frac, z, rest = frac.partition("Z")
        if not z or rest or not frac.isdigit():
            raise ValueError(f"bad time {text!r}")
    else:
        if not head.endswith("Z"):
            raise ValueError(f"bad time {text!r}")
        head = head[:-1]
    secs = _second_cache.get(head)
    if secs is None:
        if len(head) != 19 or head[10] != "T":
            raise ValueError(f"bad time {text!r}")
        secs = int(datetime.fromisoformat(head + "+00:00").timestamp())
        if len(_second_cache) > 4096:
            _second_cache.clear()
        _second_cache[head] = secs
    return secs * 1_000_000_000 + (int(frac[:9].ljust(9, "0")) if frac else 0)
