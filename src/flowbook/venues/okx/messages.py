"""OKX v5 public market-data messages as typed structs named after OKX's own fields.

Every push of ``/ws/v5/public`` is ``{"arg": {"channel", "instId" | "instType"}, "action"?, "data": [...]}``;
the answers to requests are events (``{"event": "subscribe" | "error" | "notice", ...}``), and the
keep-alive answer is the bare text ``pong``.  Prices and sizes are decimal strings; times are
millisecond strings.  Sizes of derivatives count contracts (``ctVal`` each), of spot the base asset.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Arg",
    "BookData",
    "Envelope",
    "EventMessage",
    "FundingRate",
    "InstrumentInfo",
    "InstrumentsResponse",
    "LiquidationDetail",
    "LiquidationOrders",
    "MarkPrice",
    "OpenInterest",
    "Ticker",
    "Trade",
]


class Arg(msgspec.Struct, frozen=True):
    """The channel a push belongs to: ``{"channel": "books", "instId": "BTC-USDT"}``.

    ``liquidation-orders`` is subscribed per instrument type: ``{"channel": "liquidation-orders",
    "instType": "SWAP"}``.
    """

    channel: str
    instId: str | None = None
    instType: str | None = None


class Envelope(msgspec.Struct, frozen=True):
    """Any text frame of the public channel; ``data`` is decoded per channel on demand.

    Push::

        {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{...}]}

    Events (subscription ack, error, notice)::

        {"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}
        {"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\"}","connId":"a4d3ae55"}
    """

    arg: Arg | None = None
    action: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    event: str | None = None
    code: str | None = None
    msg: str | None = None


class EventMessage(msgspec.Struct, frozen=True):
    """An answer to a request (``event``: ``subscribe``, ``unsubscribe``, ``error``, ``notice``, ...)."""

    event: str
    arg: Arg | None = None
    code: str | None = None
    msg: str | None = None


class BookData(msgspec.Struct, frozen=True):
    """One entry of ``books`` (400 levels), ``books5`` or ``bbo-tbt``.

    Level arrays are ``[price, size, "0" (deprecated liquidated orders), orderCount]``; size ``"0"``
    deletes the level.  ``prevSeqId`` is -1 on a snapshot.  ``checksum`` is 0 on JSON feeds since
    23 Jun 2026 (and absent on ``books5``/``bbo-tbt``); the 2022 captures carry no seqId at all::

        {"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{
         "asks":[["30249.4","0","0","0"],["30261","4","0","1"]],"bids":[["30182.6","452","0","1"]],
         "ts":"1652459225464","checksum":-914047754}]}
        {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{
         "asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085",
         "checksum":-1200119424,"prevSeqId":123456,"seqId":123457}]}
        {"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[{"asks":[["8446.6","1","0","1"]],
         "bids":[["8446.5","2","0","3"]],"instId":"BTC-USDT","ts":"1597026383085","seqId":123456}]}
    """

    asks: list[list[str]]
    bids: list[list[str]]
    ts: str
    checksum: int = 0
    prevSeqId: int | None = None
    seqId: int | None = None
    instId: str | None = None


class Trade(msgspec.Struct, frozen=True):
    """``trades``: one push per taker order and price; ``side`` is the taker's, ``tradeId`` the last
    fill's id and ``count`` the number of fills aggregated (absent in the 2022 captures)::

        {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",
         "tradeId":"338476308","px":"30243.5","sz":"0.001","side":"buy","ts":"1652459226050"}]}
    """

    instId: str
    tradeId: str
    px: str
    sz: str
    side: str
    ts: str
    count: str | None = None


class Ticker(msgspec.Struct, frozen=True):
    """``tickers`` (24 h statistics and the touch)::

        {"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instType":"SPOT","instId":"BTC-USDT",
         "last":"30243.5","lastSz":"0.00684062","askPx":"30228.7","askSz":"1.55896972","bidPx":"30228.6",
         "bidSz":"0.23393","open24h":"29700.4","high24h":"31073","low24h":"28020.3","sodUtc0":"29028.8",
         "sodUtc8":"30337.7","volCcy24h":"525802333.80365708","vol24h":"17602.13889433","ts":"1652459226124"}]}
    """

    instId: str
    last: str
    ts: str
    instType: str = ""
    lastSz: str = ""
    askPx: str = ""
    askSz: str = ""
    bidPx: str = ""
    bidSz: str = ""
    open24h: str = ""
    high24h: str = ""
    low24h: str = ""
    volCcy24h: str = ""
    vol24h: str = ""
    sodUtc0: str = ""
    sodUtc8: str = ""


class FundingRate(msgspec.Struct, frozen=True):
    """``funding-rate`` (perpetual swaps; pushed every 30-90 s).  ``fundingTime`` is the settlement time
    of ``fundingRate``, ``nextFundingTime`` the one after it::

        {"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},"data":[{"instType":"SWAP",
         "instId":"BTC-USD-SWAP","method":"current_period","fundingRate":"0.0001875391284828",
         "nextFundingRate":"","fundingTime":"1700726400000","nextFundingTime":"1700755200000",
         "ts":"1700724675402"}]}
    """

    instId: str
    fundingRate: str
    fundingTime: str
    nextFundingTime: str = ""
    ts: str = ""
    instType: str = ""
    method: str = ""
    nextFundingRate: str = ""


class OpenInterest(msgspec.Struct, frozen=True):
    """``open-interest``: ``oi`` in contracts, ``oiCcy`` in the base currency::

        {"arg":{"channel":"open-interest","instId":"LTC-USD-SWAP"},"data":[{"instType":"SWAP",
         "instId":"LTC-USD-SWAP","oi":"5000","oiCcy":"555.55","oiUsd":"50000","ts":"1597026383085"}]}
    """

    instId: str
    oi: str
    ts: str
    instType: str = ""
    oiCcy: str = ""
    oiUsd: str = ""


class MarkPrice(msgspec.Struct, frozen=True):
    """``mark-price``::

        {"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",
         "instId":"BTC-USDT-SWAP","markPx":"42310.6","ts":"1630049139746"}]}
    """

    instId: str
    markPx: str
    ts: str
    instType: str = ""


class LiquidationDetail(msgspec.Struct, frozen=True):
    """One liquidation: ``side`` of the liquidation order (``buy``: a short was closed), ``bkPx`` the
    bankruptcy price, ``sz`` in contracts (``MARGIN``: base currency)."""

    side: str
    sz: str
    ts: str
    bkPx: str = ""
    posSide: str = ""
    bkLoss: str = ""
    ccy: str = ""


class LiquidationOrders(msgspec.Struct, frozen=True):
    """``liquidation-orders`` (subscribed per ``instType``; pushes every instrument of that type)::

        {"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0",
         "bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],
         "instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}
    """

    instId: str
    details: list[LiquidationDetail]
    instType: str = ""
    uly: str = ""
    instFamily: str = ""


class InstrumentInfo(msgspec.Struct, frozen=True):
    """One instrument of ``GET /api/v5/public/instruments`` (only the fields flowbook uses)::

        {"instId":"BTC-USD-220527","instType":"FUTURES","ctType":"inverse","ctVal":"100","ctMult":"1",
         "ctValCcy":"USD","tickSz":"0.1","lotSz":"1","settleCcy":"BTC","uly":"BTC-USD","state":"live"}
    """

    instId: str
    instType: str
    tickSz: str
    lotSz: str
    ctType: str = ""
    ctVal: str = ""
    ctMult: str = ""
    ctValCcy: str = ""


class InstrumentsResponse(msgspec.Struct, frozen=True):
    """``{"code":"0","msg":"","data":[InstrumentInfo, ...]}``."""

    code: str
    data: list[InstrumentInfo] = []
    msg: str = ""
