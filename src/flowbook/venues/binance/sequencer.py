"""Binance diff-depth sequencer: snapshot buffering and the documented sync rules, per symbol.

Spot (Binance spot API docs, "How to manage a local order book correctly"; reference B.1.1)
and futures (USD-M/COIN-M, reference B.1.2) differ in the first-event rule and in continuity:
spot chains ``U == previous u + 1``, futures chain ``pu == previous u``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from .messages import DepthSnapshot, DepthUpdate

__all__ = ["Action", "DepthSequencer", "SyncIssue"]


class Action(Enum):
    APPLY = "apply"  # apply the diff to the book
    BUFFER = "buffer"  # held until a snapshot arrives
    STALE = "stale"  # older than the snapshot the book starts from: ignore
    DUPLICATE = "duplicate"  # u <= the last applied u: already in the book (a repeat or a late copy)
    GAP = "gap"  # continuity broken: the book is invalid until the next snapshot


@dataclass(frozen=True, slots=True)
class SyncIssue:
    """A gap or a stale snapshot, with the update ids involved."""

    kind: str  # "gap" | "stale_snapshot" | "no_first_event"
    expected: int
    got_first: int
    got_last: int
    prev: int | None


class DepthSequencer:
    """State machine for one symbol's diff-depth stream.

    Feed diffs with :meth:`on_diff` and snapshots with :meth:`on_snapshot`; both return what to apply.
    ``synced`` is true only while the local book provably equals the exchange's.
    """

    def __init__(self, futures: bool, max_buffer: int = 100_000) -> None:
        self.futures = futures
        self.synced = False
        self.last_u: int | None = None
        self._first_pending = False
        self._buffer: deque[tuple[DepthUpdate, object]] = deque(maxlen=max_buffer)
        self.issues: deque[SyncIssue] = deque(maxlen=1000)  # the latest ones; the feed counts all
        self.duplicates = 0  # diffs dropped as already applied (also those met in the buffer)

    def reset(self) -> None:
        """Forget the book: buffer diffs again until the next snapshot."""
        self.synced = False
        self.last_u = None
        self._first_pending = False
        self._buffer.clear()

    def on_diff(self, d: DepthUpdate, tag: object = None) -> tuple[Action, SyncIssue | None]:
        """Classify one diff.  ``tag`` travels with buffered diffs (e.g. file and line)."""
        if not self.synced:
            # 1. Buffer the stream's events until the snapshot is there.
            self._buffer.append((d, tag))
            return Action.BUFFER, None
        return self._check(d)

    def _check(self, d: DepthUpdate) -> tuple[Action, SyncIssue | None]:
        last = self.last_u
        assert last is not None
        if self._first_pending:
            if self.futures:
                # 3. Drop any event where u < lastUpdateId (futures keep u == lastUpdateId).
                if d.u < last:
                    return Action.STALE, None
                # 4. The first processed event must have U <= lastUpdateId AND u >= lastUpdateId.
                ok = d.U <= last <= d.u
            else:
                # 4. Discard any event where u <= lastUpdateId of the snapshot.
                if d.u <= last:
                    return Action.STALE, None
                # 5. The first processed event must have U <= lastUpdateId+1 AND u >= lastUpdateId+1.
                ok = d.U <= last + 1 <= d.u
            if not ok:
                return self._gap(d)
            self._first_pending = False
            self.last_u = d.u
            return Action.APPLY, None
        # A diff whose u is at or below the last applied u changes nothing the book does not hold
        # already: a repeated frame, or a copy that arrives late.  Dropping it keeps the chain intact;
        # on futures its pu would otherwise look like a break (an exact repeat has pu != last u).
        if d.u <= last:
            self.duplicates += 1
            return Action.DUPLICATE, None
        if self.futures:
            # 5. Each new event's pu must equal the previous event's u, else re-initialise.
            if d.pu != last:
                return self._gap(d)
        # 6. U > local id + 1: something was missed, restart.
        elif last + 1 < d.U:
            return self._gap(d)
        self.last_u = d.u
        return Action.APPLY, None

    def _gap(self, d: DepthUpdate) -> tuple[Action, SyncIssue]:
        assert self.last_u is not None
        expected = self.last_u if self.futures else self.last_u + 1
        issue = SyncIssue("gap", expected, d.U, d.u, d.pu)
        self.issues.append(issue)
        self.reset()
        return Action.GAP, issue

    def advance(self, last_update_id: int) -> bool:
        """Polling without diffs: a newer snapshot replaces the synced book.  False when it is not newer
        (an answer overtaken by a later one), or when the book is not synced."""
        if not self.synced or self.last_u is None or last_update_id <= self.last_u:
            return False
        self.last_u = last_update_id
        return True

    def on_snapshot(
        self, snap: DepthSnapshot
    ) -> tuple[bool, list[tuple[DepthUpdate, object]], SyncIssue | None]:
        """Take a snapshot.  Returns ``(accepted, diffs_to_apply_after_it, issue)``.

        A snapshot that arrives while synced is not needed and is not applied (``accepted`` False).
        """
        if self.synced:
            return False, [], None
        lid = snap.lastUpdateId
        buffered = list(self._buffer)
        # 3. If the snapshot's lastUpdateId is older than the first buffered event, it is too old.
        if buffered and lid < buffered[0][0].U - (0 if self.futures else 1):
            issue = SyncIssue("stale_snapshot", buffered[0][0].U, lid, lid, None)
            self.issues.append(issue)
            return False, [], issue
        self._buffer.clear()
        # 5. Set the local book to the snapshot; its update id is lastUpdateId.
        self.synced = True
        self.last_u = lid
        self._first_pending = True
        out: list[tuple[DepthUpdate, object]] = []
        for i, (d, tag) in enumerate(buffered):
            # 6. Apply the buffered events under the same rules as live ones.
            action, issue = self._check(d)
            if action is Action.APPLY:
                out.append((d, tag))
            elif action is Action.GAP:
                # keep the diffs from the gap on for the next snapshot
                self._buffer.extend(buffered[i:])
                return True, out, issue
        return True, out, None
