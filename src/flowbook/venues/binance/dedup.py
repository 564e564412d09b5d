"""Trade-id bookkeeping per symbol and stream: repeats are dropped, late trades are let in.

Binance trade ids (``t`` of ``trade``, ``a`` of ``aggTrade``, ``id`` of REST ``trades``) increase by one
per trade of a symbol.  A trade whose id is at or below the highest id seen was either seen already (a
repeated frame, or the overlap of two REST polls) or skipped over by a later one (frames reordered on the
way).  :class:`TradeIds` remembers the ids skipped over, within the last ``window`` ids, so it can tell
the two apart in O(1) and in bounded memory: a repeat is dropped, a late trade is counted once.
"""

from __future__ import annotations

__all__ = ["TradeIds"]


class TradeIds:
    """Ids seen on one trade stream of one symbol."""

    __slots__ = ("holes", "last", "window")

    def __init__(self, window: int = 4096) -> None:
        self.last = -1
        self.holes: set[int] = set()  # ids below ``last`` not seen yet, at most ``window`` below it
        self.window = window

    def admit(self, tid: int) -> int:
        """1: new, in order; 2: late (an id skipped over before); 0: seen already (drop it)."""
        last = self.last
        if tid > last:
            if last >= 0 and tid > last + 1:
                self.holes.update(range(max(last + 1, tid - self.window), tid))
            self.last = tid
            if len(self.holes) > self.window:
                floor = tid - self.window
                self.holes = {h for h in self.holes if h >= floor}
            return 1
        if tid in self.holes:
            self.holes.discard(tid)
            return 2
        return 0
