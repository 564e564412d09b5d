"""`L2Book`: the Python face of the compiled book kernels (one instrument)."""

from __future__ import annotations

import numpy as np

from . import nb, readnb
from .hashnb import hash_rehash

__all__ = ["L2Book", "default_window"]


def default_window(price_ticks: int, span: float = 0.05, lo: int = 1 << 10, hi: int = 1 << 19) -> int:
    """Ladder width (ticks) covering about ``±span`` of ``price_ticks``, a power of two in [lo, hi]."""
    want = max(int(price_ticks * span * 2), 1)
    w = 1 << (want - 1).bit_length()
    return int(min(max(w, lo), hi))


def window_for(events: np.ndarray) -> int:
    """:func:`default_window` for a book that will replay ``events`` (``EVENT_DTYPE``): sized from the
    first resting level's price (the book recenters as prices move); 4096 ticks' worth without one.

    The level is searched in growing chunks from the start: it is almost always among the first events,
    and a whole-array pass over a long replay costs a sixth of the replay's feature time."""
    a, step = 0, 4096
    while a < len(events):
        part = events[a:a + step]
        first = np.flatnonzero((part["kind"] == 1) & (part["qty"] > 0))  # BOOK_SET of a resting level
        if first.size:
            return default_window(int(part["price"][first[0]]))
        a += step
        step *= 4
    return default_window(1 << 12)


class L2Book:
    """An L2 book on integer ticks and lots.

    Parameters
    ----------
    window:
        ladder width in ticks (power of two recommended).  Levels outside the window live in a hash
        table, so nothing is ever dropped; the window only decides what is fast.
    hash_capacity:
        initial slots of each side's far-level hash (a power of two; grows on demand).
    """

    def __init__(self, window: int = 1 << 14, hash_capacity: int = 1 << 10) -> None:
        if hash_capacity & (hash_capacity - 1):
            raise ValueError("hash_capacity must be a power of two")
        self.st = np.zeros(nb.st_size(window), np.int64)
        self.lb = np.zeros(window, np.int64)
        self.la = np.zeros(window, np.int64)
        self.hkb = np.full(hash_capacity, nb.EMPTY, np.int64)
        self.hvb = np.zeros(hash_capacity, np.int64)
        self.hka = np.full(hash_capacity, nb.EMPTY, np.int64)
        self.hva = np.zeros(hash_capacity, np.int64)
        self.st[nb.ST_W] = window
        self.st[nb.ST_HB_USED] = 1  # force a full reset on the first clear
        self.st[nb.ST_HA_USED] = 1
        self.clear()

    # -- state arrays, in the order the kernels take them
    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.st, self.lb, self.la, self.hkb, self.hvb, self.hka, self.hva)

    def grow(self, side: int | None = None) -> None:
        """Double (or rehash) the far-level tables whose load needs it.

        A table gets room for every level of its side, so that a recenter that moves many ladder
        levels into it at once always fits after one grow.
        """
        for s in (1, -1) if side is None else (side,):
            keys, vals = (self.hkb, self.hvb) if s > 0 else (self.hka, self.hva)
            live = int(self.st[nb.ST_HB_LIVE if s > 0 else nb.ST_HA_LIVE])
            levels = max(live, int(self.st[nb.ST_NBID if s > 0 else nb.ST_NASK]))
            cap = keys.shape[0]
            while (levels + max(64, live)) * 4 > cap * 3 or cap < 16:
                cap *= 2
            nk = np.full(cap, nb.EMPTY, np.int64)
            nv = np.zeros(cap, np.int64)
            n = hash_rehash(keys, vals, nk, nv)
            if s > 0:
                self.hkb, self.hvb = nk, nv
                self.st[nb.ST_HB_USED] = n
            else:
                self.hka, self.hva = nk, nv
                self.st[nb.ST_HA_USED] = n

    def clear(self) -> None:
        nb.book_clear(*self.arrays)

    def set(self, side: int, tick: int, lots: int) -> None:
        """Set the level at ``tick`` on ``side`` (+1 bid, -1 ask) to ``lots``; 0 deletes."""
        while nb.set_level(*self.arrays, side, tick, lots) == nb.NEED_GROW:
            self.grow()

    def apply(self, events: np.ndarray) -> None:
        """Apply the ``BOOK_SET`` events of ``events`` (EVENT_DTYPE) message by message."""
        i = 0
        while True:
            status, i = nb.apply_book_sets(*self.arrays, events, i)
            if status != nb.NEED_GROW:
                return
            self.grow()

    def recenter_if_needed(self) -> None:
        while nb.maybe_recenter(*self.arrays) == nb.NEED_GROW:
            self.grow()

    def get(self, side: int, tick: int) -> int:
        return int(readnb.get_level(*self.arrays, side, tick))

    @property
    def best_bid(self) -> int | None:
        t = int(self.st[nb.ST_BEST_BID])
        return None if t == nb.NO_BID else t

    @property
    def best_ask(self) -> int | None:
        t = int(self.st[nb.ST_BEST_ASK])
        return None if t == nb.NO_ASK else t

    def __len__(self) -> int:
        return int(self.st[nb.ST_NBID] + self.st[nb.ST_NASK])

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels of ``side`` as ``(tick, lots)``, best first."""
        px = np.empty(max(n, 0), np.int64)
        qty = np.empty(max(n, 0), np.int64)
        m = readnb.top_levels(*self.arrays, side, n, px, qty)
        return [(int(px[i]), int(qty[i])) for i in range(m)]

    def depth_to(self, side: int, limit_tick: int) -> tuple[int, float]:
        """Lots and ``Σ lots·ticks`` on ``side`` at prices no worse than ``limit_tick``."""
        lots, notional = readnb.band_depth(*self.arrays, side, limit_tick)
        return int(lots), float(notional)
