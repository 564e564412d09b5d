"""Binance instrument specs: known symbols, and inference for the rest."""

from __future__ import annotations

from ...events import Instrument, infer_step
from .parser import Market

__all__ = ["KNOWN_TICKS", "instrument_for"]

VENUES: dict[str, str] = {"spot": "binance", "usdm": "binance-usdm", "coinm": "binance-coinm"}

# (market, symbol) -> (tick size, contract multiplier).  Ticks as Binance's exchangeInfo listed them
# in 2024; anything else is inferred from the first snapshot (gcd of its prices).
KNOWN_TICKS: dict[tuple[str, str], tuple[str, float]] = {
    ("spot", "BTCUSDT"): ("0.01", 1.0),
    ("spot", "ETHUSDT"): ("0.01", 1.0),
    ("usdm", "BTCUSDT"): ("0.1", 1.0),
    ("usdm", "ETHUSDT"): ("0.01", 1.0),
    ("coinm", "BTCUSD_PERP"): ("0.1", 100.0),
    ("coinm", "ETHUSD_PERP"): ("0.01", 10.0),
}


def _precision(texts: list[str]) -> str:
    """The finest step the strings are written in (Binance pads quantities to a fixed precision)."""
    d = max((len(t.partition(".")[2]) for t in texts), default=0)
    return "1" if d == 0 else "0." + "0" * (d - 1) + "1"


def instrument_for(
    market: Market, symbol: str, prices: list[str], qtys: list[str], tick_size: str | None = None,
    contract_size: float | None = None,
) -> Instrument:
    """Instrument for a Binance symbol, given sample price and quantity strings (e.g. a snapshot).

    The lot is the precision the quantities are written in, so every quantity converts exactly.
    ``contract_size`` (exchangeInfo ``contractSize``, COIN-M: USD per contract) overrides the table and
    the fallback (100 USD for BTC contracts, 10 USD for the others, as Binance lists them).
    """
    known = KNOWN_TICKS.get((market, symbol))
    tick = tick_size or (known[0] if known else infer_step(prices))
    mult = known[1] if known else (100.0 if symbol.startswith("BTC") else 10.0) if market == "coinm" else 1.0
    if contract_size is not None and market == "coinm":
        mult = float(contract_size)
    return Instrument(
        venue=VENUES[market],
        symbol=symbol,
        tick_size=tick,
        lot_size=_precision(qtys),
        multiplier=mult,
        inverse=market == "coinm",
    )
