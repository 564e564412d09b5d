"""Model-based tests: the compiled :class:`L2Book` against its plain-Python twin :class:`ReferenceBook`.

A hypothesis state machine applies the same random operations to both books (level sets including
deletes of missing levels, clears, recenters) with tiny ladders (8..64 ticks) and a 16-slot far-level
hash, so window moves, far levels in the hash, hash growth, crossed books and empty sides all happen.
After every step every read of the two books must agree.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from flowbook.book import L2Book, ReferenceBook
from flowbook.events import EVENT_DTYPE, Flag, Kind

CENTER = 10_000
SIDES = st.sampled_from([1, -1])
QTY = st.integers(0, 5)
# mostly near the touch (crossing updates are common), sometimes a few windows away, rarely very far
TICKS = st.one_of(
    st.integers(CENTER - 12, CENTER + 12),
    st.integers(CENTER - 12, CENTER + 12),
    st.integers(CENTER - 200, CENTER + 200),
    st.integers(CENTER - 10**7, CENTER + 10**7),
)
LEVEL_COUNTS = (0, 1, 2, 3, 5, 8, 1000)


def assert_same(fast: L2Book, ref: ReferenceBook) -> None:
    """Every read of the compiled book equals the reference's."""
    assert fast.best_bid == ref.best_bid
    assert fast.best_ask == ref.best_ask
    assert len(fast) == len(ref)
    for side in (1, -1):
        for n in LEVEL_COUNTS:
            assert fast.levels(side, n) == ref.levels(side, n), (side, n)
    ticks = set(ref.bids) | set(ref.asks)
    for b in (ref.best_bid, ref.best_ask):
        if b is not None:
            ticks.update(range(b - 3, b + 4))
    ticks.update((CENTER, CENTER - 1, CENTER + 1))
    for t in ticks:
        for side in (1, -1):
            assert fast.get(side, t) == ref.get(side, t), (side, t)
    limits = set(ticks) | {CENTER - 10**8, CENTER + 10**8}
    for lim in limits:
        for side in (1, -1):
            assert fast.depth_to(side, lim) == ref.depth_to(side, lim), (side, lim)


class BookMachine(RuleBasedStateMachine):
    fast: L2Book
    ref: ReferenceBook

    @initialize(window=st.sampled_from([8, 16, 32, 64, 200, 256]))
    def make(self, window: int) -> None:
        self.fast = L2Book(window=window, hash_capacity=16)
        self.ref = ReferenceBook()

    @rule(side=SIDES, tick=TICKS, qty=QTY)
    def set_level(self, side: int, tick: int, qty: int) -> None:
        self.fast.set(side, tick, qty)
        self.ref.set(side, tick, qty)

    @rule(side=SIDES, offset=st.integers(-3, 3), qty=QTY)
    def set_near_best(self, side: int, offset: int, qty: int) -> None:
        best = self.ref.best_bid if side > 0 else self.ref.best_ask
        tick = (best if best is not None else CENTER) + offset
        self.fast.set(side, tick, qty)
        self.ref.set(side, tick, qty)

    @rule(ops=st.lists(st.tuples(SIDES, st.integers(-40, 40), QTY), min_size=1, max_size=12))
    def apply_message(self, ops: list[tuple[int, int, int]]) -> None:
        """A whole message through the batch kernel (``apply_levels``), ticks around the touch."""
        anchor = self.ref.best_bid if self.ref.best_bid is not None else CENTER
        ev = np.zeros(len(ops), EVENT_DTYPE)
        ev["kind"] = Kind.BOOK_SET
        ev["ts_local"] = ev["ts_exchange"] = 7
        for j, (side, off, qty) in enumerate(ops):
            ev[j]["side"], ev[j]["price"], ev[j]["qty"] = side, anchor + off, qty
            self.ref.set(side, anchor + off, qty)
        ev[-1]["flags"] = Flag.END_OF_MESSAGE
        self.fast.apply(ev)

    @precondition(lambda self: len(self.ref) > 0)
    @rule(side=SIDES)
    def delete_best(self, side: int) -> None:
        best = self.ref.best_bid if side > 0 else self.ref.best_ask
        if best is not None:
            self.fast.set(side, best, 0)
            self.ref.set(side, best, 0)

    @rule(side=SIDES, tick=TICKS)
    def delete_anywhere(self, side: int, tick: int) -> None:
        self.fast.set(side, tick, 0)
        self.ref.set(side, tick, 0)

    @rule(side=SIDES, start=TICKS, step=st.integers(-40, 40), qty=st.integers(1, 5))
    def burst(self, side: int, start: int, step: int, qty: int) -> None:
        """Eight levels in a row with a stride: fills the far-level hash until it must grow."""
        for j in range(8):
            self.fast.set(side, start + j * step, qty)
            self.ref.set(side, start + j * step, qty)

    @rule()
    def recenter(self) -> None:
        self.fast.recenter_if_needed()

    @rule()
    def clear(self) -> None:
        self.fast.clear()
        self.ref.clear()

    @invariant()
    def same_reads(self) -> None:
        if hasattr(self, "fast"):
            assert_same(self.fast, self.ref)


BookMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookModel = BookMachine.TestCase


# ---- plain regression tests ------------------------------------------------------------------------


def _pair(window: int = 16) -> tuple[L2Book, ReferenceBook]:
    return L2Book(window=window, hash_capacity=16), ReferenceBook()


def _apply(fast: L2Book, ref: ReferenceBook, ops: list[tuple[int, int, int]], check: bool = True) -> None:
    for side, tick, qty in ops:
        fast.set(side, tick, qty)
        ref.set(side, tick, qty)
        if check:
            assert_same(fast, ref)


def test_empty_book_reads() -> None:
    fast, ref = _pair()
    assert fast.best_bid is None and fast.best_ask is None and len(fast) == 0
    assert fast.levels(1, 5) == [] and fast.levels(-1, 5) == []
    assert fast.get(1, 123) == 0 and fast.get(-1, 123) == 0
    assert fast.depth_to(1, 0) == (0, 0.0) and fast.depth_to(-1, 10**9) == (0, 0.0)
    fast.set(1, 100, 0)  # deleting a missing level of an empty book is a no-op
    fast.recenter_if_needed()
    assert_same(fast, ref)
    fast.clear()
    assert_same(fast, ref)


def test_one_sided_book() -> None:
    fast, ref = _pair(8)
    _apply(fast, ref, [(1, 100 - i, i + 1) for i in range(30)])
    fast.recenter_if_needed()
    assert_same(fast, ref)
    assert fast.best_ask is None and fast.best_bid == 100
    assert fast.depth_to(1, 95) == (sum(range(1, 7)), float(sum((i + 1) * (100 - i) for i in range(6))))
    _apply(fast, ref, [(-1, 140 + i, 2) for i in range(20)] + [(1, 100 - i, 0) for i in range(30)])
    assert fast.best_bid is None and fast.best_ask == 140


def test_deleting_the_best_repeatedly() -> None:
    fast, ref = _pair(16)
    ops = [(1, 1000 - 3 * i, 1 + i % 5) for i in range(40)] + [(-1, 1001 + 3 * i, 1 + i % 4) for i in range(40)]
    _apply(fast, ref, ops)
    fast.recenter_if_needed()
    while ref.best_bid is not None or ref.best_ask is not None:
        for side, best in ((1, ref.best_bid), (-1, ref.best_ask)):
            if best is not None:
                _apply(fast, ref, [(side, best, 0)])
        fast.recenter_if_needed()
        assert_same(fast, ref)
    assert len(fast) == 0


def test_jump_far_outside_the_window() -> None:
    fast, ref = _pair(32)
    _apply(fast, ref, [(1, 5000 - i, 1) for i in range(10)] + [(-1, 5001 + i, 1) for i in range(10)])
    # the market jumps a million ticks: new levels on both sides, old ones still present
    _apply(fast, ref, [(1, 1_005_000, 3), (-1, 1_005_002, 4), (-1, 1_004_999, 2)])
    fast.recenter_if_needed()
    assert_same(fast, ref)
    # and back: remove the far levels one by one, the old book becomes the touch again
    _apply(fast, ref, [(1, 1_005_000, 0), (-1, 1_004_999, 0), (-1, 1_005_002, 0)])
    fast.recenter_if_needed()
    assert_same(fast, ref)
    assert fast.best_bid == 5000 and fast.best_ask == 5001
    # a crossed book: a bid far above every ask
    _apply(fast, ref, [(1, 2_000_000, 1)])
    fast.recenter_if_needed()
    assert_same(fast, ref)


def test_many_far_levels_grow_the_hash() -> None:
    fast, ref = _pair(8)
    _apply(fast, ref, [(s, 10_000 + s * 7 * i, 1 + i % 5) for i in range(200) for s in (1, -1)], check=False)
    assert fast.hkb.shape[0] > 16 and fast.hka.shape[0] > 16
    assert_same(fast, ref)
    fast.recenter_if_needed()
    assert_same(fast, ref)
    _apply(fast, ref, [(s, 10_000 + s * 7 * i, 0) for i in range(0, 200, 2) for s in (1, -1)], check=False)
    assert_same(fast, ref)
    for _ in range(3):  # deleting the best from the hash side walks through far levels
        _apply(fast, ref, [(1, ref.best_bid or 0, 0), (-1, ref.best_ask or 0, 0)])
