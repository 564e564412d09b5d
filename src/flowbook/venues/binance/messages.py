"""Binance market-data messages as typed structs named after Binance's own fields.

Raw examples (USD-M combined stream, as recorded)::

    {"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256299,"T":1723161256298,
     "s":"BTCUSDT","U":5123107832006,"u":5123107837557,"pu":5123107831937,
     "b":[["58710.20","0.014"]],"a":[["61800.30","2.510"]]}}
    {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT",
     "t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}
    {"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT",
     "b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}
    {"lastUpdateId":5123107852948,"E":1723161256501,"T":1723161256493,"bids":[["61800.20","2.909"]],
     "asks":[["61800.30","2.510"]]}

24 h ticker (``<symbol>@ticker``; spot adds ``x``, ``b``/``B``, ``a``/``A``; COIN-M adds ``ps`` and its
``v`` counts contracts, ``q`` the base asset)::

    {"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1723161256322,"s":"BTCUSDT","p":"-512.30",
     "P":"-0.822","w":"61950.12","c":"61800.30","Q":"0.006","o":"62312.60","h":"62750.00","l":"61012.10",
     "v":"301234.512","q":"18661234567.12","O":1723074856322,"C":1723161256322,"F":5260000000,
     "L":5266583935,"n":6583936}}

REST answers that are not depth snapshots: open interest (USD-M; COIN-M adds ``pair`` and
``contractType``, and counts contracts) and recent trades (``/api/v3/trades``, ``/fapi/v1/trades``;
COIN-M has ``baseQty`` instead of ``quoteQty``)::

    {"openInterest":"10659.509","symbol":"BTCUSDT","time":1723161256322}
    [{"id":5266583935,"price":"61800.30","qty":"0.006","quoteQty":"370.80","time":1723161256322,
      "isBuyerMaker":false}]
"""

from __future__ import annotations

import msgspec

__all__ = [
    "AggTrade",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "Envelope",
    "ForceOrder",
    "ForceOrderBody",
    "MarkPrice",
    "OpenInterest",
    "RecentTrades",
    "RestTrade",
    "Ticker",
    "Trade",
]


class Envelope(msgspec.Struct, frozen=True):
    """Combined-stream wrapper ``{"stream": ..., "data": ...}``; ``data`` decoded on demand."""

    stream: str
    data: msgspec.Raw


class DepthUpdate(msgspec.Struct, frozen=True):
    """``<symbol>@depth`` diff. ``pu`` and ``T`` are futures-only."""

    E: int
    s: str
    U: int
    u: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]
    pu: int | None = None
    T: int | None = None
    ps: str | None = None  # pair: COIN-M only


class DepthSnapshot(msgspec.Struct, frozen=True):
    """REST ``/api/v3/depth`` (spot) or ``/fapi|dapi/v1/depth`` (futures) response."""

    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    E: int | None = None
    T: int | None = None
    symbol: str | None = None
    pair: str | None = None


class Trade(msgspec.Struct, frozen=True):
    """``<symbol>@trade``; ``m`` = buyer is maker (so ``m`` true means the aggressor sold)."""

    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class AggTrade(msgspec.Struct, frozen=True):
    """``<symbol>@aggTrade``: ``a`` aggregate id, ``f``..``l`` trade ids."""

    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's field name
    T: int
    m: bool


class BookTicker(msgspec.Struct, frozen=True):
    """``<symbol>@bookTicker``; ``E``/``T`` present on futures only."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    E: int | None = None
    T: int | None = None


class ForceOrderBody(msgspec.Struct, frozen=True):
    s: str
    S: str
    q: str
    p: str
    ap: str
    X: str
    l: str  # noqa: E741
    z: str
    T: int
    o: str = ""
    f: str = ""


class ForceOrder(msgspec.Struct, frozen=True):
    """``<symbol>@forceOrder`` liquidation (futures)."""

    E: int
    o: ForceOrderBody


class MarkPrice(msgspec.Struct, frozen=True):
    """``<symbol>@markPrice``: ``p`` mark, ``i`` index, ``r`` funding rate, ``T`` next funding time."""

    E: int
    s: str
    p: str
    r: str
    T: int
    i: str = ""
    P: str = ""


class Ticker(msgspec.Struct, frozen=True):
    """``<symbol>@ticker`` (event ``24hrTicker``): statistics of the rolling 24 h window ``O``..``C``.

    ``p`` price change, ``P`` change in percent, ``w`` weighted average price, ``c``/``Q`` last price and
    quantity, ``o``/``h``/``l`` open, high, low, ``v`` volume (contracts on COIN-M), ``q`` quote volume
    (base asset volume on COIN-M), ``F``..``L`` trade ids, ``n`` trade count.
    """

    E: int
    s: str
    p: str
    P: str
    w: str
    c: str
    Q: str
    o: str
    h: str
    l: str  # noqa: E741
    v: str
    q: str
    O: int  # noqa: E741
    C: int
    F: int
    L: int
    n: int
    x: str | None = None  # spot: last price before the window
    b: str | None = None  # spot: best bid, qty, best ask, qty
    B: str | None = None
    a: str | None = None
    A: str | None = None
    ps: str | None = None  # COIN-M: pair


class OpenInterest(msgspec.Struct, frozen=True):
    """REST ``GET /fapi/v1/openInterest`` or ``/dapi/v1/openInterest``: open interest at ``time`` (ms)."""

    openInterest: str
    symbol: str
    time: int
    pair: str | None = None
    contractType: str | None = None


class RestTrade(msgspec.Struct, frozen=True):
    """One entry of REST ``GET trades`` (recent trades, oldest first); ``isBuyerMaker`` as ``m``."""

    id: int
    price: str
    qty: str
    time: int
    isBuyerMaker: bool
    quoteQty: str | None = None
    baseQty: str | None = None
    isBestMatch: bool | None = None


class RecentTrades(msgspec.Struct, frozen=True):
    """A REST recent-trades answer (a bare JSON list; the symbol comes from the request)."""

    trades: list[RestTrade]
