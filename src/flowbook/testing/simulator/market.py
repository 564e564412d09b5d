"""Market statistics the recordings lack, derived from their trades: the 24 h ticker, open interest and
the recent trades a REST client polls.

Everything follows the broadcast: a trade counts once the simulator has sent it, so a client that
received the same trades can check every figure exactly (decimal strings in the recording's precision).

- **24 h ticker** (``@ticker``): the recordings span minutes, so the "24 h" window is every trade sent so
  far.  ``o`` = first trade price, ``h``/``l`` extremes, ``c``/``Q`` last trade, ``v`` = sum of
  quantities, ``q`` = sum of price x quantity (COIN-M: sum of quantity x contract size / price, the base
  asset), ``w`` = ``q / v`` (COIN-M: ``v`` x contract size / ``q``), ``p = c - o``, ``P`` = ``100 p / o``
  to 3 decimals, ``F``/``L``/``n`` first and last trade id and count.  Spot adds ``x`` (= ``o``) and the
  best bid and ask of the truth.
- **Open interest** (``GET openInterest``): ``OI = V0 + sum of q_i * (+1 if the trade id is even else
  -1)`` over the trades sent so far, with ``V0`` the total quantity of every trade in the recording, so
  it is never negative and moves with trading.  Deterministic for a given recording position.
- **Recent trades** (``GET trades?limit=``): the last ``limit`` (at most 1000) trades sent, oldest first.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ...venues.binance.messages import Trade
from .source import SimFrame

__all__ = ["MarketStats", "contract_size"]

_trade = msgspec.json.Decoder(Trade)
_BASE_DECIMALS = Decimal("0.00000001")


def contract_size(symbol: str) -> int:
    """COIN-M contract size in USD as Binance lists it: 100 for BTC contracts, 10 for the others."""
    return 100 if symbol.startswith("BTC") else 10


@dataclass
class _Sym:
    v0: Decimal = Decimal(0)
    oi: Decimal = Decimal(0)
    n: int = 0
    first_id: int = 0
    last_id: int = 0
    first_ms: int = 0
    open: Decimal = Decimal(0)
    open_text: str = "0"
    high: Decimal = Decimal(0)
    low: Decimal = Decimal(0)
    last_text: str = "0"
    last_qty: str = "0"
    volume: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    recent: deque[Trade] = field(default_factory=lambda: deque(maxlen=1000))


class MarketStats:
    """Per-symbol ticker, open interest and recent trades of one simulated market."""

    def __init__(self, frames: Iterable[SimFrame], market: str) -> None:
        self.market = market  # "spot", "usdm" or "coinm"
        self.symbols: dict[str, _Sym] = {}
        for f in frames:  # V0: the recording's total traded quantity per symbol
            if f.kind == "trade":
                st = self._sym(f.symbol)
                st.v0 += Decimal(_trade.decode(f.data).q)
        for st in self.symbols.values():
            st.oi = st.v0

    def _sym(self, symbol: str) -> _Sym:
        st = self.symbols.get(symbol)
        if st is None:
            st = self.symbols[symbol] = _Sym()
        return st

    def on_trade(self, symbol: str, data: bytes) -> None:
        """Count one trade the simulator sent (its payload as sent)."""
        t = _trade.decode(data)
        st = self._sym(symbol)
        p, q = Decimal(t.p), Decimal(t.q)
        if st.n == 0:
            st.first_id, st.first_ms, st.open, st.open_text, st.high, st.low = t.t, t.T, p, t.p, p, p
        st.n += 1
        st.last_id, st.last_text, st.last_qty = t.t, t.p, t.q
        st.high, st.low = max(st.high, p), min(st.low, p)
        st.volume += q
        st.quote += (q * contract_size(symbol) / p).quantize(_BASE_DECIMALS) if self.market == "coinm" else p * q
        st.oi += q if t.t % 2 == 0 else -q
        st.recent.append(t)

    def ticker(self, symbol: str, now_ms: int, best: tuple[str, str, str, str] | None = None) -> bytes | None:
        """The ``24hrTicker`` payload of ``symbol`` (``None`` before its first trade)."""
        st = self.symbols.get(symbol)
        if st is None or st.n == 0:
            return None
        last = Decimal(st.last_text)
        change = last - st.open
        pct = (change * 100 / st.open).quantize(Decimal("0.001"))
        exp = Decimal(st.last_text).as_tuple().exponent
        step = Decimal(1).scaleb(exp if isinstance(exp, int) else 0)
        if self.market == "coinm":
            w = (st.volume * contract_size(symbol) / st.quote).quantize(step) if st.quote else Decimal(0)
        else:
            w = (st.quote / st.volume).quantize(step) if st.volume else Decimal(0)
        d: dict[str, object] = {"e": "24hrTicker", "E": now_ms, "s": symbol, "p": str(change), "P": str(pct),
                                "w": str(w)}
        if self.market == "coinm":
            d["ps"] = symbol.split("_")[0]
        if self.market == "spot":
            d["x"] = st.open_text
        d.update({"c": st.last_text, "Q": st.last_qty})
        if self.market == "spot" and best is not None:
            d.update(dict(zip(("b", "B", "a", "A"), best, strict=True)))
        d.update({"o": st.open_text, "h": str(st.high), "l": str(st.low), "v": str(st.volume), "q": str(st.quote),
                  "O": st.first_ms, "C": now_ms, "F": st.first_id, "L": st.last_id, "n": st.n})
        return json.dumps(d, separators=(",", ":")).encode()

    def open_interest(self, symbol: str, now_ms: int) -> bytes:
        st = self._sym(symbol)
        d: dict[str, object] = {"symbol": symbol}
        if self.market == "coinm":
            d.update({"pair": symbol.split("_")[0], "openInterest": str(st.oi), "contractType": "PERPETUAL"})
        else:
            d["openInterest"] = str(st.oi)
        d["time"] = now_ms
        return json.dumps(d, separators=(",", ":")).encode()

    def recent_trades(self, symbol: str, limit: int) -> bytes:
        st = self._sym(symbol)
        out = []
        for t in list(st.recent)[-limit:]:
            e: dict[str, object] = {"id": t.t, "price": t.p, "qty": t.q}
            if self.market == "coinm":
                e["baseQty"] = str((Decimal(t.q) * contract_size(symbol) / Decimal(t.p)).quantize(_BASE_DECIMALS))
            else:
                e["quoteQty"] = str(Decimal(t.p) * Decimal(t.q))
            e.update({"time": t.T, "isBuyerMaker": t.m})
            if self.market == "spot":
                e["isBestMatch"] = True
            out.append(e)
        return json.dumps(out, separators=(",", ":")).encode()
