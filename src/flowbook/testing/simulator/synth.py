"""Messages the recordings lack, derived from what they have: aggTrade, forceOrder, markPriceUpdate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ...venues.binance.messages import Trade

if TYPE_CHECKING:
    from .truth import Truth

__all__ = ["aggtrade_from_trade", "liquidation_from_trade", "mark_price"]

_trade = msgspec.json.Decoder(Trade)
_FUNDING_MS = 8 * 3_600_000


def aggtrade_from_trade(data: bytes) -> bytes:
    """The ``aggTrade`` of a single ``trade`` (``a`` = ``f`` = ``l`` = the trade id)."""
    t = _trade.decode(data)
    return (f'{{"e":"aggTrade","E":{t.E},"s":"{t.s}","a":{t.t},"p":"{t.p}","q":"{t.q}","f":{t.t},'
            f'"l":{t.t},"T":{t.T},"m":{"true" if t.m else "false"}}}').encode()


def liquidation_from_trade(data: bytes) -> bytes:
    """A ``forceOrder`` as if the trade's aggressor had been a liquidated position's order."""
    t = _trade.decode(data)
    side = "SELL" if t.m else "BUY"
    return (f'{{"e":"forceOrder","E":{t.E},"o":{{"s":"{t.s}","S":"{side}","o":"LIMIT","f":"IOC",'
            f'"q":"{t.q}","p":"{t.p}","ap":"{t.p}","X":"FILLED","l":"{t.q}","z":"{t.q}","T":{t.T}}}}}').encode()


def mark_price(truth: Truth, symbol: str, now_ms: int) -> bytes:
    """A ``markPriceUpdate`` at the truth's best bid (funding 0.01 %, next funding on the 8 h grid)."""
    levels = truth.levels(symbol, 1, 1)
    p = truth.price_text(symbol, levels[0][0]) if levels else "0"
    nxt = (now_ms // _FUNDING_MS + 1) * _FUNDING_MS
    return (f'{{"e":"markPriceUpdate","E":{now_ms},"s":"{symbol}","p":"{p}","i":"{p}","P":"{p}",'
            f'"r":"0.00010000","T":{nxt}}}').encode()
