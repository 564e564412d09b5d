"""Kraken spot book checksum (CRC32 of the top 10 levels), as pure functions.

Construction (Kraken's "Book checksum" guides, v1 and v2; reference B.4):

1. take the top 10 asks, lowest price first, then the top 10 bids, highest price first;
2. for each level write the price and the quantity as decimal strings (v1: the strings as received;
   v2: the JSON numbers formatted to the pair's ``price_precision`` / ``qty_precision``), remove the
   ``.`` and strip the leading zeros, and append ``price + qty``;
3. the checksum is the unsigned CRC32 of the concatenation (asks string, then bids string).

``level_fragment("45285.2", "0.00100000") == "452852100000"``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from decimal import Decimal

__all__ = ["CHECKSUM_LEVELS", "book_checksum", "checksum_string", "fixed", "level_fragment", "strip_number"]

CHECKSUM_LEVELS = 10  # whatever the subscribed depth


def strip_number(text: str) -> str:
    """``"0.00100000"`` -> ``"100000"``: the decimal point removed, then the leading zeros."""
    return text.replace(".", "").lstrip("0")


def level_fragment(price: str, qty: str) -> str:
    """One level's part of the checksum string."""
    return strip_number(price) + strip_number(qty)


def fixed(value: Decimal, places: int) -> str:
    """A v2 JSON number written with exactly ``places`` decimals (``fixed(Decimal("0.001"), 8)`` ->
    ``"0.00100000"``).  Raises ``ValueError`` when the value has more decimals than that."""
    text = format(value, f".{places}f")
    if Decimal(text) != value:
        raise ValueError(f"{value} has more than {places} decimals")
    return text


def checksum_string(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> str:
    """The string the CRC is taken of; ``asks`` best (lowest) first, ``bids`` best (highest) first.
    Only the first :data:`CHECKSUM_LEVELS` of each are used."""
    out: list[str] = []
    for levels in (asks, bids):
        for i, (p, q) in enumerate(levels):
            if i == CHECKSUM_LEVELS:
                break
            out.append(level_fragment(p, q))
    return "".join(out)


def book_checksum(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> int:
    """Unsigned CRC32 of :func:`checksum_string`."""
    return zlib.crc32(checksum_string(asks, bids).encode()) & 0xFFFFFFFF
