"""Kraken book sequencing: one symbol's checksum book and the documented sync steps.

Kraken's spot ``book`` channel carries no sequence numbers (v2 nor v1): the CRC32 checksum of the top
10 levels is the only way to tell that a message was lost or misapplied.  So the feed keeps, per
symbol, a copy of the book as Kraken defines it (truncated to the subscribed depth, prices and
quantities as the checksum writes them) and checks every message against it.

Sync steps (Kraken guides "Book checksum (WebSocket v1 / v2)"; reference B.4), carried out by
:class:`ChecksumBook` and :class:`~flowbook.venues.kraken.feed.KrakenFeed`:

1. Subscribe to ``book`` with a depth D (10, 25, 100, 500, 1000).  The first message is a snapshot: it
   replaces the local book.  v2 snapshots carry a checksum (checked as in step 4); v1 snapshots do not.
2. Each update: apply every level in array order (v1: do not sort by timestamp; several updates to one
   price can share one).  Quantity 0 removes the price level; any other quantity inserts or replaces it.
3. After all levels of the message, truncate each side to D levels: Kraken sends no delete for levels
   pushed out of scope.  flowbook emits those deletes itself so its book equals Kraken's view.
4. Build the checksum string from the top 10 asks (low -> high) then the top 10 bids (high -> low) and
   compare its unsigned CRC32 with the message's ``checksum`` (v1: ``c`` in the message's last object).
5. On a mismatch the book is lost: clear it and resubscribe that symbol only; its new snapshot restarts
   at step 1.  Updates that arrive meanwhile (and before the first snapshot) are dropped.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from dataclasses import dataclass, field

from .checksum import CHECKSUM_LEVELS, level_fragment

__all__ = ["ChecksumBook", "Level", "Side"]

Level = tuple[int, int, str, str]  # (tick, lots, price text, qty text); lots 0 removes the level


@dataclass
class Side:
    """One side of the checksum book, best level first (bids keep their keys negated)."""

    sign: int  # +1 asks (ascending prices), -1 bids
    keys: list[int] = field(default_factory=list)  # sign * tick, ascending = best first
    levels: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # tick -> (price, qty, fragment)

    def set(self, tick: int, lots: int, price: str, qty: str) -> None:
        key = self.sign * tick
        if lots == 0:
            if self.levels.pop(tick, None) is not None:
                del self.keys[bisect_left(self.keys, key)]
            return
        if tick not in self.levels:
            insort(self.keys, key)
        self.levels[tick] = (price, qty, level_fragment(price, qty))

    def truncate(self, depth: int) -> list[tuple[int, str]]:
        """Drop the levels beyond ``depth``; returns them as ``(tick, price text)``."""
        if len(self.keys) <= depth:
            return []
        gone = self.keys[depth:]
        del self.keys[depth:]
        out = []
        for key in gone:
            tick = self.sign * key
            out.append((tick, self.levels.pop(tick)[0]))
        return out

    def top_fragments(self) -> list[str]:
        sign, levels = self.sign, self.levels
        return [levels[sign * k][2] for k in self.keys[:CHECKSUM_LEVELS]]

    def clear(self) -> None:
        self.keys.clear()
        self.levels.clear()


class ChecksumBook:
    """One symbol's book as Kraken defines it, for the checksum.  ``synced`` is true from a snapshot
    until a checksum mismatch (or :meth:`reset`)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.synced = False
        self.bids = Side(-1)
        self.asks = Side(1)
        self.verified = 0
        self.failed = 0

    def reset(self) -> None:
        """Forget the book (step 5): updates are dropped until the next snapshot."""
        self.synced = False
        self.bids.clear()
        self.asks.clear()

    def load_snapshot(self, bids: list[Level], asks: list[Level]) -> None:
        """Step 1: replace the book (levels beyond the depth are not kept)."""
        self.reset()
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for tick, lots, price, qty in levels:
                side.set(tick, lots, price, qty)
            side.truncate(self.depth)
        self.synced = True

    def apply(self, bids: list[Level], asks: list[Level]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """Steps 2 and 3: apply one update message; returns the levels truncated away (bids, asks)."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for tick, lots, price, qty in levels:
                side.set(tick, lots, price, qty)
        return self.bids.truncate(self.depth), self.asks.truncate(self.depth)

    def checksum(self) -> int:
        """Step 4: unsigned CRC32 of the top 10 asks then the top 10 bids."""
        text = "".join(self.asks.top_fragments()) + "".join(self.bids.top_fragments())
        return zlib.crc32(text.encode()) & 0xFFFFFFFF

    def verify(self, expected: int) -> bool:
        """Step 4: compare with the message's checksum and count the outcome."""
        ok = self.checksum() == expected
        if ok:
            self.verified += 1
        else:
            self.failed += 1
        return ok

    def kept(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The levels held, ``(price, qty)`` texts per side, best first."""
        return ([self.bids.levels[-k][:2] for k in self.bids.keys],
                [self.asks.levels[k][:2] for k in self.asks.keys])

    def best(self) -> tuple[int | None, int | None]:
        """Best bid and best ask ticks."""
        return (-self.bids.keys[0] if self.bids.keys else None, self.asks.keys[0] if self.asks.keys else None)
