"""Bybit v5 ``orderbook.{depth}.{symbol}`` sync rule, per symbol (reference §B.4; docs/venues-bybit.md).

Bybit pushes the snapshot itself over the WebSocket (no REST snapshot, no buffering): the first push after
subscribing is a snapshot, then deltas follow.  Every push carries ``u``, the update id of that book
stream, and ``seq``, the cross sequence.  The steps, as numbered in the docs page:

1. A ``snapshot`` replaces the local book, whenever it comes (the first after subscribing, one Bybit resends
   after a problem on its side, the periodic snapshot of level-1 streams).  The book is synced from it.
2. ``u == 1`` in a snapshot: the book service restarted; the snapshot overwrites the book like any other.
3. Level-1 streams push snapshots only, and repeat the previous ``u`` when nothing changed for 3 s: a
   snapshot with the same ``u`` is accepted (it replaces the book with the same content).
4. A ``delta`` while the symbol has no book (before its first snapshot, or after a gap) is dropped.
5. A ``delta`` with ``u == previous u + 1`` is applied (size ``"0"`` deletes the level, others set it).
6. A ``delta`` with ``u <= previous u`` was applied already (a repeated frame): dropped, not a gap.
   Except ``u == 1``: a restart announced by a delta instead of a snapshot is treated as a gap (step 7).
7. Any other ``u`` is a gap: the book is lost for that symbol only; it waits for the next snapshot (the
   live transport resubscribes the symbol's book topic to get one).

The sequencer only classifies; the feed applies, counts and reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Action", "BookSequencer", "Verdict"]


class Action(Enum):
    REPLACE = "replace"  # a snapshot: clear the book and set its levels
    APPLY = "apply"  # a delta that continues the stream
    DUPLICATE = "duplicate"  # a delta already applied: drop
    UNSYNCED = "unsynced"  # a delta with no book to apply it to: drop
    GAP = "gap"  # continuity broken: lose the book until the next snapshot


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    expected: int | None = None  # the u a delta should have carried (gaps)
    restart: bool = False  # a snapshot with u == 1 that replaced a book with a later u
    repeat: bool = False  # a snapshot repeating the previous u (level-1 streams)


class BookSequencer:
    """State of one symbol's book stream: the depth it follows, the last ``u`` and ``seq`` applied."""

    __slots__ = ("depth", "last_seq", "last_u", "synced")

    def __init__(self) -> None:
        self.depth: str | None = None  # the book follows one depth per symbol (the first one seen)
        self.synced = False
        self.last_u: int | None = None
        self.last_seq: int | None = None

    def reset(self) -> None:
        """Forget the book (a gap, a bad message): wait for the next snapshot."""
        self.synced = False
        self.last_u = None

    def on_snapshot(self, u: int, seq: int | None) -> Verdict:
        prev = self.last_u if self.synced else None
        # 1. A snapshot replaces the local book and syncs it.
        # 2. u == 1 after a later u: the service restarted; overwrite all the same.
        restart = u == 1 and prev is not None and prev > 1
        # 3. Level-1 streams repeat the previous u when nothing changed for 3 s: accept.
        repeat = prev is not None and u == prev
        self.synced = True
        self.last_u = u
        self.last_seq = seq
        return Verdict(Action.REPLACE, restart=restart, repeat=repeat)

    def on_delta(self, u: int, seq: int | None) -> Verdict:
        # 4. No book yet (or lost): drop until the next snapshot.
        if not self.synced or self.last_u is None:
            return Verdict(Action.UNSYNCED)
        last = self.last_u
        # 5. The next update: apply.
        if u == last + 1:
            self.last_u = u
            self.last_seq = seq
            return Verdict(Action.APPLY)
        # 6. Already applied (a repeated frame): drop; a delta restarting at u == 1 is a gap (7).
        if u <= last and u != 1:
            return Verdict(Action.DUPLICATE, expected=last + 1)
        # 7. Anything else: a gap.  The book is lost until the next snapshot.
        self.reset()
        return Verdict(Action.GAP, expected=last + 1)
