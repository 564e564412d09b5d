"""The reference document's worked examples (shared/reference/formulas-and-protocols.md §A.1-§A.3),
run through :class:`FeatureEngine` on event arrays built by hand.

Instrument: tick 0.1, lot 1, so price 100.0 is tick 1000 and sizes are lots.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowbook.events import EVENT_DTYPE, Flag, Instrument, Kind
from flowbook.features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine

INST = Instrument("test", "EXAMPLE", "0.1", "1")
EOM = Flag.END_OF_MESSAGE
COL = {name: i for i, name in enumerate(FEATURE_COLUMNS)}


def _event(kind: int, t: int, side: int = 0, price: int = 0, qty: int = 0, flags: int = 0,
           ident: int = -1) -> tuple[int | float, ...]:
    return (kind, side, flags, 0, t, t, price, qty, ident, -1, 0.0)


def _snapshot(t: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> list[tuple[int | float, ...]]:
    out = [_event(Kind.BOOK_CLEAR, t)]
    levels = [(1, p, q) for p, q in bids] + [(-1, p, q) for p, q in asks]
    for j, (side, p, q) in enumerate(levels):
        flags = Flag.SNAPSHOT | (Flag.SNAPSHOT_END | EOM if j == len(levels) - 1 else 0)
        out.append(_event(Kind.BOOK_SET, t, side, p, q, flags, 1))
    return out


def _message(t: int, sets: list[tuple[int, int, int]], ident: int) -> list[tuple[int | float, ...]]:
    return [_event(Kind.BOOK_SET, t, s, p, q, EOM if j == len(sets) - 1 else 0, ident)
            for j, (s, p, q) in enumerate(sets)]


def _rows(events: list[tuple[int | float, ...]], cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    eng = FeatureEngine(INST, cfg)
    eng.process(np.array(events, dtype=EVENT_DTYPE))
    eng.finish()
    return eng.take()


# ---- §A.1 OFI worked example --------------------------------------------------------------------
# BBO states (Pb, Qb, Pa, Qa): (100.0,10,100.1,8) -> (100.0,12,100.1,8) -> (100.0,12,100.1,5)
#   -> (100.1,3,100.2,7) -> (100.0,9,100.1,4); contributions +2, +3, +8, -7; interval OFI +6.


def _ofi_example(t0: int = 100) -> list[tuple[int | float, ...]]:
    ev = _snapshot(t0, [(1000, 10)], [(1001, 8)])
    ev += _message(t0 + 1, [(1, 1000, 12)], 2)  # bid queue +2
    ev += _message(t0 + 2, [(-1, 1001, 5)], 3)  # ask queue -3 at the same price
    ev += _message(t0 + 3, [(-1, 1001, 0), (-1, 1002, 7), (1, 1001, 3)], 4)  # both sides up a tick
    ev += _message(t0 + 4, [(1, 1001, 0), (1, 1000, 9), (-1, 1001, 4)], 5)  # both sides down a tick
    return ev


BBO_STATES = [(100.0, 10, 100.1, 8), (100.0, 12, 100.1, 8), (100.0, 12, 100.1, 5), (100.1, 3, 100.2, 7),
              (100.0, 9, 100.1, 4)]


def test_ofi_example_per_event() -> None:
    f, ii = _rows(_ofi_example(), FeatureConfig())
    assert f.shape[0] == 5
    got = f[:, [COL[c] for c in ("best_bid", "best_bid_qty", "best_ask", "best_ask_qty")]]
    np.testing.assert_allclose(got, np.array(BBO_STATES), rtol=1e-12)
    # the first row after a snapshot has no previous state: no contribution
    assert list(f[:, COL["ofi"]]) == [0.0, 2.0, 3.0, 8.0, -7.0]
    assert f[1:, COL["ofi"]].sum() == 6.0
    assert list(ii[:, 2]) == [1, 2, 3, 4, 5]  # update id of each message


def test_ofi_example_as_one_interval() -> None:
    ev = _ofi_example(t0=100)
    ev.append(_event(Kind.MARK_PRICE, 200))  # moves the clock to the next sample time, nothing else
    f, ii = _rows(ev, FeatureConfig(interval_ns=100))
    assert list(ii[:, 0]) == [100, 200]
    assert f[0, COL["ofi"]] == 0.0  # sample at 100: the snapshot only
    assert f[1, COL["ofi"]] == 6.0  # sample at 200: the four events of (100, 200]
    assert f[1, COL["best_bid"]] == pytest.approx(100.0) and f[1, COL["best_ask_qty"]] == 4.0


def test_mlofi_level_one_is_ofi() -> None:
    f, _ = _rows(_ofi_example(), FeatureConfig())
    np.testing.assert_array_equal(f[:, COL["mlofi_1"]], f[:, COL["ofi"]])
    # level 2 (§A.2: the same rule at the 2nd best price; a missing level sits at an infinite price):
    # state 4 gains a 2nd bid 100.0 x 12 (a rise from "missing": +12, asks have no 2nd level);
    # state 5 loses it (a fall: -12) and gains a 2nd ask 100.2 x 7 (a fall from +infinity: -7)
    assert list(f[:, COL["mlofi_2"]]) == [0.0, 0.0, 0.0, 12.0, -19.0]
    assert (f[:, COL["mlofi_3"]] == 0).all()


# ---- §A.3 weighted mid (the kernel's ``microprice`` column) and imbalance ------------------------


def test_weighted_mid_formula() -> None:
    f, _ = _rows(_ofi_example(), FeatureConfig())
    for r, (pb, qb, pa, qa) in enumerate(BBO_STATES):
        i = qb / (qb + qa)
        want = (qb * pa + qa * pb) / (qb + qa)
        assert f[r, COL["microprice"]] == pytest.approx(want, rel=1e-12)
        assert f[r, COL["microprice"]] == pytest.approx(i * pa + (1 - i) * pb, rel=1e-12)
        assert f[r, COL["mid"]] == pytest.approx((pb + pa) / 2, rel=1e-12)
        assert f[r, COL["imbalance_1"]] == pytest.approx((qb - qa) / (qb + qa), rel=1e-12)
    # a larger bid queue pulls the weighted mid toward the ask: state 1 is 10 vs 8
    assert f[0, COL["microprice"]] > f[0, COL["mid"]]
    assert f[0, COL["microprice"]] == pytest.approx((10 * 100.1 + 8 * 100.0) / 18)


@settings(max_examples=150, deadline=None)
@given(bids=st.lists(st.tuples(st.integers(990, 1000), st.integers(1, 50)), max_size=8),
       asks=st.lists(st.tuples(st.integers(1001, 1011), st.integers(1, 50)), max_size=8),
       dw=st.sampled_from([0.5, 10.0, 1000.0]))
def test_imbalances_lie_in_minus_one_one(bids: list[tuple[int, int]], asks: list[tuple[int, int]],
                                         dw: float) -> None:
    bids_d, asks_d = dict(bids), dict(asks)
    ev = _snapshot(10, sorted(bids_d.items()), sorted(asks_d.items()))
    if not bids_d and not asks_d:
        ev.append(_event(Kind.BOOK_SET, 10, 0, 0, 0, Flag.SNAPSHOT_END | EOM))
    f, _ = _rows(ev, FeatureConfig(dw_bps=dw, depth_levels=5))
    assert f.shape[0] == 1
    for name in ("imbalance_1", "imbalance_n", "imbalance_dw"):
        v = f[0, COL[name]]
        assert math.isnan(v) or -1.0 <= v <= 1.0, (name, v)
    if bids_d and not asks_d:  # one empty side: +1 / -1 (reference §A.3); no mid, so no dw imbalance
        assert f[0, COL["imbalance_1"]] == 1.0 and f[0, COL["imbalance_n"]] == 1.0
    if asks_d and not bids_d:
        assert f[0, COL["imbalance_1"]] == -1.0 and f[0, COL["imbalance_n"]] == -1.0
    if not (bids_d and asks_d):
        assert math.isnan(f[0, COL["imbalance_dw"]]) and math.isnan(f[0, COL["microprice"]])
    if not bids_d and not asks_d:
        assert math.isnan(f[0, COL["imbalance_1"]]) and math.isnan(f[0, COL["imbalance_n"]])


# ---- point-in-time clock sampling -------------------------------------------------------------------


@pytest.mark.parametrize("clock", ["local", "exchange"])
def test_clock_sampling_is_point_in_time(clock: str) -> None:
    """A sample at T sees an event at exactly T and not one at T + 1 ns."""
    ev = _snapshot(1_000, [(1000, 1)], [(1001, 1)])
    ev += _message(2_000, [(1, 1000, 2)], 2)  # exactly at the sample time 2000: included
    ev += _message(3_001, [(1, 1000, 3)], 3)  # 1 ns after the sample time 3000: not included
    ev.append(_event(Kind.TRADE, 3_500, 1, 1001, 4, EOM, 9))
    ev.append(_event(Kind.MARK_PRICE, 4_000))
    f, ii = _rows(ev, FeatureConfig(interval_ns=1_000, clock=clock))
    assert list(ii[:, 0]) == [1_000, 2_000, 3_000, 4_000]
    assert list(f[:, COL["best_bid_qty"]]) == [1.0, 2.0, 2.0, 3.0]
    assert list(f[:, COL["ofi"]]) == [0.0, 1.0, 0.0, 1.0]
    assert list(ii[:, 2]) == [1, 2, 2, 3]
    assert list(f[:, COL["trade_count"]]) == [0, 0, 0, 1] and f[3, COL["buy_volume"]] == 4.0


def test_last_sample_waits_for_its_time() -> None:
    """The final flush emits samples up to the last event's clock, not a partial interval after it."""
    ev = _snapshot(1_000, [(1000, 1)], [(1001, 1)])
    ev += _message(1_999, [(1, 1000, 5)], 2)
    f, ii = _rows(ev, FeatureConfig(interval_ns=1_000))
    assert list(ii[:, 0]) == [1_000]
    assert f[0, COL["best_bid_qty"]] == 1.0
