"""Kraken spot WebSocket messages as typed structs named after Kraken's own fields.

v2 (``wss://ws.kraken.com/v2``) sends JSON objects whose prices and quantities are JSON **numbers**; they
are decoded as :class:`~decimal.Decimal` from their text, so nothing passes through a binary float.
v1 (``wss://ws.kraken.com``, the cryptofeed captures) sends arrays of decimal strings.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = [
    "BookData",
    "BookLevel",
    "BookMessage",
    "BookPartV1",
    "BookUpdateV1",
    "EventV1",
    "InstrumentData",
    "InstrumentMessage",
    "InstrumentPair",
    "LevelV1",
    "MethodResponse",
    "SubscribeResult",
    "TickerData",
    "TickerMessage",
    "TickerV1",
    "TradeData",
    "TradeMessage",
    "TradeV1",
    "TradesV1",
]


# -- v2 -------------------------------------------------------------------------------------------------


class BookLevel(msgspec.Struct):
    """``{"price": 45283.5, "qty": 0.10000000}``"""

    price: Decimal
    qty: Decimal


class BookData(msgspec.Struct):
    """One symbol's part of a ``book`` message (see :class:`BookMessage`)."""

    symbol: str
    checksum: int
    bids: list[BookLevel] = []
    asks: list[BookLevel] = []
    timestamp: str = ""  # RFC 3339; absent from snapshots


class BookMessage(msgspec.Struct):
    """Level 2 book, snapshot or update::

        {"channel": "book", "type": "update", "data": [{"symbol": "BTC/USD",
         "bids": [{"price": 45283.5, "qty": 0.0}], "asks": [{"price": 45286.6, "qty": 1.0}],
         "checksum": 2439117997, "timestamp": "2023-10-06T17:35:55.440295Z"}]}
    """

    channel: str
    type: str  # "snapshot" | "update"
    data: list[BookData]


class TradeData(msgspec.Struct):
    """``{"symbol": "BTC/USD", "side": "sell", "price": 45283.5, "qty": 0.005, "ord_type": "market",
    "trade_id": 4665906, "timestamp": "2023-09-25T07:49:37.708706Z"}``; ``side`` is the taker's."""

    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    trade_id: int = -1
    ord_type: str = ""
    timestamp: str = ""


class TradeMessage(msgspec.Struct):
    """``{"channel": "trade", "type": "update", "data": [<TradeData>, ...]}``"""

    channel: str
    type: str
    data: list[TradeData]


class TickerData(msgspec.Struct):
    """``{"symbol": "BTC/USD", "bid": 45283.4, "bid_qty": 0.5, "ask": 45283.5, "ask_qty": 1.2,
    "last": 45283.5, "volume": 1890.5, "vwap": 45102.1, "low": 44800.0, "high": 45900.0,
    "change": 150.3, "change_pct": 0.33}``"""

    symbol: str
    bid: Decimal | None = None
    bid_qty: Decimal | None = None
    ask: Decimal | None = None
    ask_qty: Decimal | None = None
    last: Decimal | None = None
    volume: Decimal | None = None
    vwap: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    change: Decimal | None = None
    change_pct: Decimal | None = None
    timestamp: str = ""


class TickerMessage(msgspec.Struct):
    """``{"channel": "ticker", "type": "update", "data": [<TickerData>]}``"""

    channel: str
    type: str
    data: list[TickerData]


class InstrumentPair(msgspec.Struct):
    """``{"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "status": "online", "price_precision": 1,
    "qty_precision": 8, "price_increment": 0.1, "qty_increment": 0.00000001, "qty_min": 0.0001, ...}``"""

    symbol: str
    price_precision: int
    qty_precision: int
    price_increment: Decimal | None = None
    qty_increment: Decimal | None = None
    status: str = ""


class InstrumentData(msgspec.Struct):
    pairs: list[InstrumentPair] = []


class InstrumentMessage(msgspec.Struct):
    """``{"channel": "instrument", "type": "snapshot", "data": {"assets": [...], "pairs": [<InstrumentPair>]}}``"""

    channel: str
    type: str
    data: InstrumentData


class SubscribeResult(msgspec.Struct):
    """``{"channel": "book", "depth": 10, "snapshot": true, "symbol": "BTC/USD"}``"""

    channel: str = ""
    symbol: str | None = None
    depth: int | None = None
    snapshot: bool | None = None


class MethodResponse(msgspec.Struct):
    """An answer to a request::

        {"method": "subscribe", "result": {"channel": "book", "depth": 10, "snapshot": true,
         "symbol": "BTC/USD"}, "success": true, "time_in": "...", "time_out": "..."}
        {"error": "Currency pair not supported XBT/USD", "method": "subscribe", "success": false,
         "symbol": "XBT/USD", "time_in": "...", "time_out": "..."}
    """

    method: str
    success: bool = True
    error: str | None = None
    symbol: str | None = None
    result: SubscribeResult | None = None


# -- v1 -------------------------------------------------------------------------------------------------


class LevelV1(msgspec.Struct, array_like=True):
    """``["56218.30000", "0.15000000", "1618678117.243818"]``, or with a fourth element ``"r"`` when
    the level is a republished update."""

    price: str
    volume: str
    timestamp: str
    update_type: str = ""


class BookPartV1(msgspec.Struct):
    """One object of a v1 book message: ``{"as": [...], "bs": [...]}`` (snapshot) or
    ``{"a": [...]}`` / ``{"b": [...], "c": "176333288"}`` (update; ``c`` is the checksum)."""

    a: list[LevelV1] = []
    b: list[LevelV1] = []
    as_: list[LevelV1] = msgspec.field(default_factory=list, name="as")
    bs: list[LevelV1] = []
    c: str | None = None


class BookUpdateV1(msgspec.Struct):
    """``[1664, {"b": [["13.203800", "15.02366304", "1618678133.463424"]], "c": "176333288"},
    "book-1000", "WAVES/EUR"]``; an update may carry two objects (asks, then bids with ``c``)."""

    channel_name: str  # "book-<depth>"
    pair: str  # as v1 writes it ("XBT/USD")
    parts: list[BookPartV1]


class TradeV1(msgspec.Struct, array_like=True):
    """``["354.11000000", "0.89594024", "1618678142.557535", "s", "l", ""]``: price, volume, time,
    side of the taker (``b``/``s``), order type (``l``imit/``m``arket), misc."""

    price: str
    volume: str
    time: str
    side: str
    orderType: str = ""
    misc: str = ""


class TradesV1(msgspec.Struct):
    """``[993, [[<TradeV1>], ...], "trade", "XMR/USD"]``"""

    pair: str
    trades: list[TradeV1]


class TickerV1(msgspec.Struct):
    """``[996, {"a": ["355.24000000", 27, "27.19106411"], "b": ["354.32000000", 6, "6.87748868"],
    "c": ["355.23000000", "1.20454360"], "v": [...], "p": [...], "t": [6481, 10283], "l": [...],
    "h": [...], "o": [...]}, "ticker", "XMR/USD"]``: ``a``/``b`` best ask/bid (price, whole lot volume,
    lot volume), ``c`` last trade (price, volume)."""

    pair: str = ""  # from the array's last element
    a: list[str | int] = []
    b: list[str | int] = []
    c: list[str] = []


class EventV1(msgspec.Struct):
    """``{"channelID": 1664, "channelName": "book-1000", "event": "subscriptionStatus",
    "pair": "WAVES/EUR", "status": "subscribed", "subscription": {"depth": 1000, "name": "book"}}``;
    also ``systemStatus``, ``heartbeat``, ``pong``."""

    event: str
    status: str = ""
    pair: str | None = None
    channelName: str = ""
    errorMessage: str = ""
