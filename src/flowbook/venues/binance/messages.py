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
