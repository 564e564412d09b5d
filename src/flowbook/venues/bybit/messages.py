"""Bybit v5 public market-data messages as typed structs named after Bybit's own fields.

Every push has the same envelope, ``{"topic", "type", "ts", "data", ...}``; :class:`Envelope` reads it with
``data`` left raw, and the parser decodes ``data`` with the struct of the topic.  Raw examples, as recorded
(``orderbook.500`` from Bybit's historical files, ``orderbook.1`` from a linear connection)::

    {"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1733011200693,"data":{"s":"XRPUSDT",
     "b":[["1.9531","6198"], ..., ["1.9328","7208"]],"a":[["1.9535","8415"], ...],"u":20254870,
     "seq":130020239261},"cts":1733011200691}
    {"topic":"orderbook.1.BANDUSDT","type":"snapshot","ts":1749833474773,"data":{"s":"BANDUSDT",
     "b":[["0.6131","17.9"]],"a":[["0.6134","35.4"]],"u":24042997,"seq":209972815373},"cts":1749833474768}

Trades, liquidations and tickers (Bybit's documentation examples)::

    {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,
     "s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",
     "i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}
    {"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,
     "s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}
    {"topic":"tickers.BTCUSDT","type":"delta","ts":1673853746003,"cs":24987956059,"data":{
     "symbol":"BTCUSDT","markPrice":"17217.33","openInterest":"68744.761","fundingRate":"-0.000212"}}

Operation answers (subscribe acks, pongs) carry no topic (the first as recorded, the second the shape of a
refused subscription)::

    {"success":true,"ret_msg":"","conn_id":"a38867ec-70b5-4044-a765-54b36bdd6fd9","req_id":"","op":"subscribe"}
    {"success":false,"ret_msg":"error:handler not found,topic:orderbook.40.BTCUSDT","conn_id":"c1",
     "req_id":"","op":"subscribe"}

The REST instrument list (``GET /v5/market/instruments-info``) may go through the feed too, so a recording
carries the tick and lot sizes the live session used::

    {"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT",
     "priceFilter":{"tickSize":"0.10"},"lotSizeFilter":{"qtyStep":"0.001"}}]}}
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Ack",
    "AllLiquidation",
    "BookData",
    "Envelope",
    "InstrumentInfo",
    "InstrumentsInfo",
    "Liquidation",
    "LotSizeFilter",
    "OrderBook",
    "PriceFilter",
    "PublicTrade",
    "Ticker",
    "TickerData",
    "Trade",
]


class Envelope(msgspec.Struct, frozen=True):
    """Any frame: a topic push (``topic``, ``type``, ``ts``, ``data``, ``cts`` on books, ``cs`` on tickers)
    or an operation answer (``success``, ``ret_msg``, ``op``, ``conn_id``, ``req_id``)."""

    topic: str = ""
    type: str = ""
    ts: int = 0
    data: msgspec.Raw = msgspec.Raw(b"null")  # left undecoded: the parser picks the struct by topic
    cts: int | None = None
    cs: int | None = None
    success: bool | None = None
    ret_msg: str = ""
    op: str = ""
    conn_id: str = ""
    req_id: str = ""
    retCode: int | None = None  # noqa: N815 - Bybit's field name (REST answers)
    result: msgspec.Raw = msgspec.Raw(b"null")


class BookData(msgspec.Struct, frozen=True):
    """``data`` of ``orderbook.{depth}.{symbol}``: ``b`` bids (price descending in a snapshot), ``a`` asks
    (ascending), ``[price, size]`` strings, size ``"0"`` deletes; ``u`` update id; ``seq`` cross sequence
    (comparable across depths of a symbol: smaller is earlier)."""

    s: str
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    u: int
    seq: int | None = None


class OrderBook(msgspec.Struct, frozen=True):
    """A book push.  ``type`` is ``"snapshot"`` or ``"delta"``; ``ts`` the market-data service's time (ms),
    ``cts`` the matching engine's (ms; correlates with the trades' ``T``)."""

    topic: str
    type: str
    ts: int
    data: BookData
    cts: int | None = None

    @property
    def depth(self) -> str:
        """``"500"`` of ``orderbook.500.XRPUSDT``."""
        return self.topic.split(".", 2)[1]


class Trade(msgspec.Struct, frozen=True):
    """One public trade: ``T`` fill time (ms), ``S`` taker side (``Buy``/``Sell``), ``v`` size, ``p`` price,
    ``i`` trade id (a string: digits on spot, a UUID on derivatives), ``BT`` block trade, ``RPI`` retail
    price improvement trade, ``L`` tick direction (derivatives), ``seq`` cross sequence."""

    T: int
    s: str
    S: str
    v: str
    p: str
    i: str
    BT: bool = False
    RPI: bool | None = None
    L: str | None = None
    seq: int | None = None


class PublicTrade(msgspec.Struct, frozen=True):
    """``publicTrade.{symbol}``: up to 1024 trades, oldest first."""

    topic: str
    ts: int
    data: list[Trade]


class Liquidation(msgspec.Struct, frozen=True):
    """One liquidation: ``S`` is the side of the liquidated *position* (``Buy``: a long was liquidated, so
    the forced order sells), ``v`` executed size, ``p`` bankruptcy price, ``T`` time (ms)."""

    T: int
    s: str
    S: str
    v: str
    p: str


class AllLiquidation(msgspec.Struct, frozen=True):
    """``allLiquidation.{symbol}`` (derivatives, pushed every 500 ms, every liquidation)."""

    topic: str
    ts: int
    data: list[Liquidation]


class TickerData(msgspec.Struct, frozen=True):
    """``data`` of ``tickers.{symbol}``.  Derivatives push a snapshot, then deltas holding only the fields
    that changed (absent = unchanged); spot pushes snapshots only.  ``fundingRate`` applies at
    ``nextFundingTime`` (ms, a string); ``openInterest`` is in base coin; ``markPrice`` and ``indexPrice``
    are prices.  Spot carries the 24 h fields and ``usdIndexPrice``."""

    symbol: str
    lastPrice: str | None = None  # noqa: N815 - Bybit's field names below
    markPrice: str | None = None  # noqa: N815
    indexPrice: str | None = None  # noqa: N815
    fundingRate: str | None = None  # noqa: N815
    nextFundingTime: str | None = None  # noqa: N815
    openInterest: str | None = None  # noqa: N815
    openInterestValue: str | None = None  # noqa: N815
    bid1Price: str | None = None  # noqa: N815
    bid1Size: str | None = None  # noqa: N815
    ask1Price: str | None = None  # noqa: N815
    ask1Size: str | None = None  # noqa: N815
    tickDirection: str | None = None  # noqa: N815
    price24hPcnt: str | None = None  # noqa: N815
    prevPrice24h: str | None = None  # noqa: N815
    highPrice24h: str | None = None  # noqa: N815
    lowPrice24h: str | None = None  # noqa: N815
    prevPrice1h: str | None = None  # noqa: N815
    volume24h: str | None = None  # noqa: N815
    turnover24h: str | None = None  # noqa: N815
    usdIndexPrice: str | None = None  # noqa: N815


class Ticker(msgspec.Struct, frozen=True):
    """``tickers.{symbol}``; ``cs`` cross sequence."""

    topic: str
    type: str
    ts: int
    data: TickerData
    cs: int | None = None


class Ack(msgspec.Struct, frozen=True):
    """Answer to an operation (``subscribe``, ``unsubscribe``, ``ping``); ``ret_msg`` says why on failure."""

    success: bool
    op: str
    ret_msg: str = ""
    conn_id: str = ""
    req_id: str = ""


class PriceFilter(msgspec.Struct, frozen=True):
    tickSize: str  # noqa: N815


class LotSizeFilter(msgspec.Struct, frozen=True):
    """``qtyStep`` on derivatives, ``basePrecision`` on spot."""

    qtyStep: str | None = None  # noqa: N815
    basePrecision: str | None = None  # noqa: N815


class InstrumentInfo(msgspec.Struct, frozen=True):
    symbol: str
    priceFilter: PriceFilter  # noqa: N815
    lotSizeFilter: LotSizeFilter  # noqa: N815


class InstrumentsInfo(msgspec.Struct, frozen=True):
    """``result`` of REST ``GET /v5/market/instruments-info``."""

    category: str
    items: list[InstrumentInfo] = msgspec.field(name="list")
