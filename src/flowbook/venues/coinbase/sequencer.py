"""Coinbase sequencing: per-connection ``sequence_num`` (Advanced Trade), per-product match order
(Exchange), and trade-id deduplication.

Advanced Trade (reference §B.2.2; the sync rule of ``docs/venues-coinbase.md``):

1. Subscribe to ``level2`` (and ``heartbeats``, which keep quiet channels open) within 5 s of connecting.
2. Every message of the connection, whatever its channel, carries ``sequence_num``, one more than the
   message before it.
3. A product's first ``l2_data`` event is a ``snapshot``: it replaces the book and the product is synced.
4. ``update`` events set absolute sizes on a synced book (``"0"`` removes the level); updates of an
   unsynced product are dropped.
5. ``sequence_num`` above the previous one plus one: messages were lost, and nothing tells which
   products they were about.  Every product whose book arrived on that connection is lost and
   resubscribed (a new snapshot); products of other connections are untouched.
6. ``sequence_num`` at or below the previous one: a repeated or reordered message; it is dropped.
7. A new connection starts its own numbering: the transport gives it a new connection key (or calls
   :meth:`ConnectionSequencer.reset`).
8. A number of 0 or 1 after higher ones is a new connection's numbering starting over (a recording of
   one connection key that reconnected): like 7, the old books are forgotten and the numbering starts
   again.  A late message 0 or 1 of the same connection is read so too; that costs a snapshot only.

Exchange (legacy ``ws-feed``, reference §B.2.1): ``level2`` carries no sequence number (the channel is
documented as guaranteed delivery), so its gaps cannot be seen.  ``match`` messages carry the product's
``sequence``, which counts every order event of the product (it jumps between two matches), and
``trade_id``, which counts the product's trades one by one: :class:`MatchSequence` drops a match whose
``sequence`` does not increase and counts the trade ids skipped over as missed matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..common import RecentIds

__all__ = ["ConnectionSequencer", "MatchSequence", "RecentIds", "Verdict"]


class Verdict(Enum):
    FIRST = "first"  # the connection's first message: the numbering starts here
    NEXT = "next"  # previous + 1
    GAP = "gap"  # above previous + 1: messages were lost
    DUPLICATE = "duplicate"  # at or below the previous number: drop
    RESTART = "restart"  # 0 or 1 after higher numbers: a new connection under the same key


@dataclass
class _Connection:
    last: int | None = None
    products: set[str] = field(default_factory=set)  # products whose book arrived on this connection


class ConnectionSequencer:
    """``sequence_num`` bookkeeping of every connection, by connection key."""

    def __init__(self) -> None:
        self._conns: dict[str, _Connection] = {}

    def check(self, conn: str, seq: int) -> tuple[Verdict, int]:
        """Classify a message's number; returns ``(verdict, expected number)``.  GAP and NEXT advance."""
        c = self._conns.setdefault(conn, _Connection())
        last = c.last
        if last is None:
            c.last = seq
            return Verdict.FIRST, seq
        expected = last + 1
        # 8. The numbering started over: a new connection under the same key.
        if seq <= 1 < last:
            return Verdict.RESTART, expected
        # 6. A number at or below the previous one: a repeat or a reordered message.
        if seq <= last:
            return Verdict.DUPLICATE, expected
        c.last = seq
        # 2./5. Exactly one more than the previous message, else messages were lost.
        return (Verdict.NEXT if seq == expected else Verdict.GAP), expected

    def add_product(self, conn: str, product: str) -> None:
        """The product's book arrives on ``conn`` (5. it is lost with the connection's next gap)."""
        self._conns.setdefault(conn, _Connection()).products.add(product)

    def products(self, conn: str) -> list[str]:
        c = self._conns.get(conn)
        return sorted(c.products) if c is not None else []

    def reset(self, conn: str) -> list[str]:
        """7. Forget a connection (it was closed); returns the products whose book came on it."""
        c = self._conns.pop(conn, None)
        return sorted(c.products) if c is not None else []


@dataclass
class MatchSequence:
    """Order of one product's Exchange ``match`` messages (``last_match`` included)."""

    sequence: int | None = None
    trade_id: int | None = None

    def admit(self, sequence: int, trade_id: int) -> tuple[bool, int]:
        """``(keep, trade ids skipped over)``.  A match whose ``sequence`` is not above the last one is a
        repeat or reordered: not kept."""
        if self.sequence is not None and sequence <= self.sequence:
            return False, 0
        missed = 0
        if self.trade_id is not None and trade_id > self.trade_id + 1:
            missed = trade_id - self.trade_id - 1
        self.sequence = sequence
        if self.trade_id is None or trade_id > self.trade_id:
            self.trade_id = trade_id
        return True, missed
