"""OKX ``books`` sequencing (seqId/prevSeqId) and the per-symbol string book the checksum needs.

OKX pushes the book itself: the first message after subscribing is a 400-level snapshot, then updates
every 100 ms.  The sync rule (OKX v5 docs, "Order book channel"; reference §B.3) is carried out by
:meth:`BookSequencer.on_update`, its steps numbered as in ``docs/venues-okx.md``.  The feed applies
what it returns and checks the CRC32 checksum after each message (:mod:`.checksum`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from enum import Enum

__all__ = ["Action", "BookSequencer", "StringBook", "is_zero"]


class Action(Enum):
    APPLY = "apply"  # apply the levels, then check the checksum
    HEARTBEAT = "heartbeat"  # seqId == prevSeqId and no levels: nothing changed
    UNSYNCED = "unsynced"  # no book yet (or lost): dropped until the next snapshot
    GAP = "gap"  # prevSeqId is not the last applied seqId: the book is lost
    DUPLICATE = "duplicate"  # the last applied update again (same prevSeqId and seqId): dropped


def is_zero(size: str) -> bool:
    """Whether a size string is zero (``"0"``, ``"0.000"``): the level is deleted."""
    return not size.strip("0.")


class StringBook:
    """The levels of one symbol as received: tick -> ``(price, size)`` strings, per side.

    The checksum needs the best 25 levels with the strings exactly as the exchange wrote them, so they
    are kept beside the integer book.  Ticks of each side are held sorted (ascending) so the best levels
    are a slice; an update is a dict store plus, for a new or deleted price, one ``bisect`` and a list
    insert/remove (a few hundred ticks per side).
    """

    __slots__ = ("bids", "asks", "_bid_ticks", "_ask_ticks")

    def __init__(self) -> None:
        self.bids: dict[int, tuple[str, str]] = {}
        self.asks: dict[int, tuple[str, str]] = {}
        self._bid_ticks: list[int] = []
        self._ask_ticks: list[int] = []

    def replace(self, bids: list[tuple[int, str, str]], asks: list[tuple[int, str, str]]) -> None:
        """A snapshot: ``[(tick, price, size), ...]`` per side, any order."""
        self.bids = {t: (p, q) for t, p, q in bids if not is_zero(q)}
        self.asks = {t: (p, q) for t, p, q in asks if not is_zero(q)}
        self._bid_ticks = sorted(self.bids)
        self._ask_ticks = sorted(self.asks)

    def set(self, side: int, tick: int, price: str, size: str) -> None:
        """One level of an update (+1 bid, -1 ask); a zero size deletes it."""
        levels, ticks = (self.bids, self._bid_ticks) if side > 0 else (self.asks, self._ask_ticks)
        if is_zero(size):
            if levels.pop(tick, None) is not None:
                del ticks[bisect_left(ticks, tick)]
            return
        if tick not in levels:
            insort(ticks, tick)
        levels[tick] = (price, size)

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The best ``n`` bids (highest first) and asks (lowest first) as received."""
        bids, asks = self.bids, self.asks
        return ([bids[t] for t in self._bid_ticks[:-n - 1:-1]], [asks[t] for t in self._ask_ticks[:n]])

    def best(self) -> tuple[int | None, int | None]:
        """Best bid and ask ticks (None for an empty side)."""
        return (self._bid_ticks[-1] if self._bid_ticks else None, self._ask_ticks[0] if self._ask_ticks else None)

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)


class BookSequencer:
    """Sequencing state of one symbol's ``books`` stream.

    ``last_seq`` is the seqId of the last applied message (None when the stream carries no seqIds, as
    in the 2022 captures: then only the checksum guards the book).  ``full`` is set once the symbol has a
    ``books`` stream, after which ``books5`` pushes no longer replace its book.
    """

    __slots__ = ("last_seq", "last_prev", "book", "full")

    def __init__(self) -> None:
        self.last_seq: int | None = None
        self.last_prev: int | None = None  # prevSeqId of the last applied message (-1: a snapshot)
        self.book = StringBook()
        self.full = False

    def reset(self) -> None:
        """The book was dropped by the transport (reconnect, lost frame): only a snapshot chains again."""
        self.last_seq = self.last_prev = None
        self.book = StringBook()

    def on_snapshot(self, seq_id: int | None) -> None:
        # 1. A snapshot (action "snapshot", prevSeqId -1) replaces the book; its seqId starts the chain.
        self.last_seq = seq_id
        self.last_prev = -1

    def on_update(self, synced: bool, prev_seq: int | None, seq_id: int | None, n_levels: int) -> Action:
        """Classify one update of a symbol whose book state is ``synced``."""
        # 2. Without a book (before the first snapshot, or after a loss), updates are dropped until
        #    the next snapshot (a resubscription of that symbol).
        if not synced:
            return Action.UNSYNCED
        # 3. An update carrying no seqIds (API versions before seqId) cannot be chained: apply it, the
        #    checksum is the only guard.
        if prev_seq is None or seq_id is None:
            return Action.APPLY
        # 4a. The last applied update received again (same prevSeqId and seqId, a repeated frame):
        #     dropped, the book stays valid.  A real next update cannot repeat both ids, because its
        #     prevSeqId is the last seqId.
        if prev_seq == self.last_prev and seq_id == self.last_seq and prev_seq != seq_id:
            return Action.DUPLICATE
        # 4. Each update's prevSeqId must equal the seqId of the last applied message; otherwise
        #    messages were lost: the book is invalid, resubscribe that symbol.
        if self.last_seq is not None and prev_seq != self.last_seq:
            return Action.GAP
        # 5. An idle book gets an update with no levels and seqId == prevSeqId: a heartbeat, no-op.
        if seq_id == prev_seq and n_levels == 0:
            return Action.HEARTBEAT
        # 6. After a maintenance reset seqId can be smaller than prevSeqId; the message is still valid
        #    because prevSeqId matched, and the chain continues from the new seqId.
        self.last_seq = seq_id
        self.last_prev = prev_seq
        return Action.APPLY
