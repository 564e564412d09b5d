"""Instruments and exact decimal-string conversion to integer ticks and lots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import gcd

__all__ = ["Instrument", "DecimalGrid", "PriceNotOnGrid", "infer_step"]


CACHE_SIZE = 1 << 16  # decimal strings remembered per grid (about 10 MB at most); cleared when full


class PriceNotOnGrid(ValueError):
    """A decimal string is not a whole multiple of the instrument's step."""


class DecimalGrid:
    """Exact conversion between decimal strings and integer multiples of a step.

    ``DecimalGrid("0.01").to_int("61837.63000000") == 6183763``.  No float is involved; a value that
    is not a whole multiple of the step raises :class:`PriceNotOnGrid`.
    """

    __slots__ = ("step", "_scale", "_units", "_cache")

    def __init__(self, step: str | Decimal) -> None:
        step_d = Decimal(str(step))
        if step_d <= 0:
            raise ValueError(f"step must be positive, got {step}")
        self.step = step_d
        exp = step_d.normalize().as_tuple().exponent
        assert isinstance(exp, int)
        self._scale = max(0, -exp)  # decimal places of the step
        self._units = int(step_d * (10**self._scale))  # step in units of 10**-scale
        self._cache: dict[str, int] = {}

    def to_int(self, text: str) -> int:
        """Integer multiple of the step for a decimal string (exact)."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        whole, _, frac = text.partition(".")
        scale = self._scale
        if len(frac) > scale:
            extra = frac[scale:]
            if extra.strip("0"):
                raise PriceNotOnGrid(f"{text!r} is not a multiple of step {self.step} (too many decimals)")
            frac = frac[:scale]
        neg = whole.startswith("-")
        units = int(whole or "0") * 10**scale + (int(frac.ljust(scale, "0")) if scale else 0) * (
            -1 if neg else 1
        )
        q, r = divmod(units, self._units)
        if r:
            raise PriceNotOnGrid(f"{text!r} is not a multiple of step {self.step}")
        cache = self._cache
        if len(cache) >= CACHE_SIZE:  # bounded: a long live session meets ever new quantity strings
            cache.clear()
        cache[text] = q
        return q

    def to_ints(self, texts: Sequence[str]) -> list[int]:
        """:meth:`to_int` of each string (one call for many: the cache is read without a call per string)."""
        cache = self._cache
        try:
            return [cache[t] for t in texts]
        except KeyError:
            return [self.to_int(t) for t in texts]

    def to_decimal(self, n: int) -> Decimal:
        return self.step * n

    def to_float(self, n: int) -> float:
        return float(self.step * n)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument of one venue.

    Parameters
    ----------
    venue, symbol:
        e.g. ``"binance-usdm"``, ``"BTCUSDT"``.
    tick_size, lot_size:
        price and quantity steps as decimal strings; the book holds integer ticks and lots.
    multiplier:
        contract multiplier (quote value of one contract for inverse contracts, 1 for spot/linear).
    inverse:
        ``True`` for coin-margined contracts whose quantity is a count of contracts worth
        ``multiplier`` quote units each.
    """

    venue: str
    symbol: str
    tick_size: str
    lot_size: str
    multiplier: float = 1.0
    inverse: bool = False

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    def price_grid(self) -> DecimalGrid:
        return DecimalGrid(self.tick_size)

    def qty_grid(self) -> DecimalGrid:
        return DecimalGrid(self.lot_size)

    @property
    def tick(self) -> float:
        return float(Decimal(self.tick_size))

    @property
    def lot(self) -> float:
        return float(Decimal(self.lot_size))


def infer_step(texts: list[str]) -> str:
    """Largest decimal step of which every string is a whole multiple (the gcd of the values).

    Used for instruments without metadata: the step of a 1000-level snapshot is, in practice, the
    tick.  Returns a decimal string such as ``"0.01"``.
    """
    if not texts:
        raise ValueError("cannot infer a step from no values")
    scale = max(len(t.partition(".")[2].rstrip("0")) for t in texts)
    g = 0
    for t in texts:
        whole, _, frac = t.partition(".")
        frac = frac.rstrip("0")
        units = int(whole or "0") * 10**scale + (int(frac.ljust(scale, "0")) if scale else 0)
        g = gcd(g, abs(units))
        if g == 1:
            break
    if g == 0:
        g = 1
    step = Decimal(g).scaleb(-scale)
    return format(step.normalize(), "f")
