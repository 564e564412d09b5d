"""OKX order-book checksum (CRC32 over the top 25 levels), as pure functions.

Construction (OKX v5 docs, "Checksum" of the order book channel; reference §B.3):

1. Take the best 25 bids (highest first) and the best 25 asks (lowest first) of the local book.
2. Interleave them level by level: ``bidPx:bidSz:askPx:askSz:...``, joined with ``:``.  When one side
   has fewer than 25 levels its missing entries are skipped, so the other side's remaining levels
   follow in order.
3. Use the price and size strings exactly as received (``"3366.10"`` is not ``"3366.1"``).
4. CRC32 of the UTF-8 bytes, read as a signed 32-bit integer.

Worked example (bids 3366.1×7 and 3366×6; asks 3366.8×9 and 3368×8)::

    "3366.1:7:3366.8:9:3366:6:3368:8" -> CRC32 2413953002 -> signed -1881014294
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

__all__ = ["DEPTH", "book_checksum", "checksum_string", "signed_crc32"]

DEPTH = 25


def checksum_string(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]], depth: int = DEPTH) -> str:
    """The string OKX checksums: ``bids`` best first, ``asks`` best first, ``(price, size)`` strings."""
    parts: list[str] = []
    nb, na = min(depth, len(bids)), min(depth, len(asks))
    for i in range(max(nb, na)):
        if i < nb:
            parts.append(bids[i][0])
            parts.append(bids[i][1])
        if i < na:
            parts.append(asks[i][0])
            parts.append(asks[i][1])
    return ":".join(parts)


def signed_crc32(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as a signed 32-bit integer."""
    v = zlib.crc32(text.encode())
    return v - (1 << 32) if v >= 1 << 31 else v


def book_checksum(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> int:
    """The checksum OKX sends for a book whose best levels are ``bids`` and ``asks``."""
    return signed_crc32(checksum_string(bids, asks))
