"""Microstructure features (``flowbook.features.micro``): a hand-computed stream, the imbalance
classes (reference §A.3, Cartea–Donnelly–Jaimungal buckets), point-in-time sampling, edge cases, and
the compiled tape against the plain-Python twin (``reference_micro.ref_micro``) on hypothesis
streams and on the real USD-M, spot and COIN-M captures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbook.events import EVENT_DTYPE, Flag, Instrument, Kind
from flowbook.features.micro import MICRO_COLUMNS, MicroConfig, book_tape, classify_imbalance, micro_series
from flowbook.features.reference_micro import ref_micro

NS = 1_000_000_000
NS_DAY = 86_400 * NS
UNIT = Instrument("test", "UNIT", "1", "1")  # quote = ticks × lots
LINEAR = Instrument("test", "LINUSDT", "0.1", "0.001")
INVERSE = Instrument("test", "INVUSD_PERP", "0.5", "1", multiplier=100.0, inverse=True)
SNAP, EOM = Flag.SNAPSHOT, Flag.END_OF_MESSAGE


class Stream:
    """Event arrays by hand: snapshots, diff messages (END_OF_MESSAGE on the last set), trades."""

    def __init__(self, scale: int = 1) -> None:
        self.rows: list[tuple[int, ...]] = []
        self.scale = scale

    def add(self, kind: int, t: int, side: int = 0, price: int = 0, qty: int = 0, flags: int = 0,
            ident: int = -1, id2: int = -1, value: float = 0.0) -> None:
        ts = t * self.scale
        self.rows.append((kind, side, flags, 0, ts, ts, price, qty, ident, id2, value))

    def snapshot(self, t: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], clear: bool = True) -> None:
        if clear:
            self.add(Kind.BOOK_CLEAR, t)
        levels = [(1, p, q) for p, q in bids] + [(-1, p, q) for p, q in asks] or [(0, 0, 0)]
        for j, (side, p, q) in enumerate(levels):
            last = j == len(levels) - 1
            self.add(Kind.BOOK_SET, t, side, p, q, SNAP | (Flag.SNAPSHOT_END | EOM if last else 0))

    def message(self, t: int, sets: list[tuple[int, int, int]]) -> None:
        for j, (side, p, q) in enumerate(sets):
            self.add(Kind.BOOK_SET, t, side, p, q, EOM if j == len(sets) - 1 else 0)

    def trade(self, t: int, side: int, price: int, qty: int) -> None:
        self.add(Kind.TRADE, t, side, price, qty, EOM)

    def array(self) -> np.ndarray:
        return np.array(self.rows, dtype=EVENT_DTYPE)


def same(a: float, b: float, rel: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def assert_columns_match(got: dict[str, np.ndarray], want: dict[str, list[float]], rel: float = 1e-9) -> None:
    assert set(got) == set(want)
    for k, col in got.items():
        for s, (a, b) in enumerate(zip(col.tolist(), want[k], strict=True)):
            assert same(float(a), float(b), rel), (k, s, a, b)


# ---- by hand ------------------------------------------------------------------------------------
def hand_stream() -> np.ndarray:
    s = Stream(NS)  # times in seconds
    s.snapshot(10, [(100, 5), (99, 3)], [(101, 2), (102, 4)])
    s.trade(20, 1, 101, 1)  # hits asks 101:2 + 102:4 -> 1/6
    s.message(30, [(1, 100, 8), (1, 98, 7), (-1, 101, 1)])  # +3 at the bid touch; 98 behind; a decrease
    s.message(40, [(-1, 103, 5)])  # behind the ask touch: not passive volume at the touch
    s.trade(50, -1, 100, 4)  # hits bids 100:8 + 99:3 + 98:7 -> 4/18
    s.trade(60, 1, 101, 1)  # hits asks 101:1 + 102:4 + 103:5 -> 1/10
    return s.array()


HAND_CFG = MicroConfig(vwap_window_ns=25 * NS, imbalance_bps=1000.0, flow_window_ns=100 * NS,
                       size_edges_quote=(150.0, 1000.0, 1e4, 1e5), institutional_quote=300.0,
                       intensity_window_ns=30 * NS, baseline_window_ns=50 * NS, consume_levels=10,
                       consume_bps=1000.0)


def test_hand_stream_values() -> None:
    out = micro_series(hand_stream(), UNIT, np.array([5, 20, 60]) * NS, HAND_CFG)
    assert tuple(out) == MICRO_COLUMNS
    at = {k: v[2] for k, v in out.items()}  # T = 60 s
    assert at["micro_mid"] == 100.5
    assert at["micro_vwap_session"] == pytest.approx(602 / 6) and at["micro_vwap_rolling"] == pytest.approx(501 / 5)
    assert at["micro_vwap_dev_session_bps"] == pytest.approx((100.5 / (602 / 6) - 1) * 1e4)
    assert at["micro_imbalance"] == pytest.approx(8 / 28) and at["micro_imbalance_class"] == 0.0
    assert at["micro_buy_pressure"] == pytest.approx(2 / 6)
    assert (at["micro_aggressive_volume"], at["micro_passive_volume"], at["micro_aggr_passive_ratio"]) == (6, 3, 2)
    assert at["micro_size_share_0"] == pytest.approx(202 / 602) and at["micro_size_share_1"] == pytest.approx(400 / 602)
    assert at["micro_size_share_2"] == at["micro_size_share_3"] == at["micro_size_share_4"] == 0.0
    assert at["micro_institutional_share"] == pytest.approx(400 / 602)
    assert at["micro_trades_per_s"] == pytest.approx(2 / 30) and at["micro_quote_per_s"] == pytest.approx(501 / 30)
    assert at["micro_trades_ratio"] == pytest.approx((2 / 30) / (3 / 50))
    assert at["micro_quote_ratio"] == pytest.approx((501 / 30) / (602 / 50))
    assert at["micro_consumption_buy"] == pytest.approx(1 / 6 + 1 / 10)
    assert at["micro_consumption_sell"] == pytest.approx(4 / 18)
    first = {k: v[0] for k, v in out.items()}  # before any event: no book, no trades
    assert math.isnan(first["micro_mid"]) and math.isnan(first["micro_imbalance"])
    assert math.isnan(first["micro_buy_pressure"]) and first["micro_aggressive_volume"] == 0.0
    assert math.isnan(first["micro_trades_per_s"])  # the input does not cover the window yet
    t20 = {k: v[1] for k, v in out.items()}
    assert t20["micro_consumption_buy"] == pytest.approx(1 / 6) and t20["micro_passive_volume"] == 0.0
    assert_columns_match(out, ref_micro(hand_stream(), UNIT, [5 * NS, 20 * NS, 60 * NS], HAND_CFG))


def test_imbalance_classes_follow_the_documented_thresholds() -> None:
    # reference §A.3: Cartea–Donnelly–Jaimungal buckets [−1, −1/3), [−1/3, 1/3], (1/3, 1]
    imb = np.array([-1.0, -0.7, -2 / 3, -0.34, -1 / 3, 0.0, 1 / 3, 0.34, 2 / 3, 0.67, 1.0, np.nan])
    got = classify_imbalance(imb, 1 / 3, 2 / 3)
    assert got[:-1].tolist() == [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, 2] and math.isnan(got[-1])
    assert classify_imbalance(np.array([0.2, -0.2]), 0.1, 0.5).tolist() == [1, -1]
    with pytest.raises(ValueError):
        MicroConfig(weak_imbalance=0.7, strong_imbalance=0.5)
    with pytest.raises(ValueError):
        MicroConfig(size_edges_quote=(1.0, 1.0, 2.0, 3.0))


def test_point_in_time_and_arrival_order() -> None:
    ev = hand_stream()
    out = micro_series(ev, UNIT, np.array([50 * NS - 1, 50 * NS]), HAND_CFG)
    assert out["micro_aggressive_volume"].tolist() == [1, 5]  # the trade at exactly T is in, 1 ns later is not
    s = Stream()
    s.trade(100, 1, 10, 1)
    s.trade(90, -1, 10, 2)  # its clock steps back: it arrived after the first, so it counts from t = 100
    back = micro_series(s.array(), UNIT, np.array([95, 100]), MicroConfig(flow_window_ns=1000))
    assert back["micro_aggressive_volume"].tolist() == [0, 3]
    assert back["micro_buy_pressure"][1] == pytest.approx(1 / 3)


def test_empty_one_sided_and_trade_only_inputs() -> None:
    empty = micro_series(np.zeros(0, EVENT_DTYPE), UNIT, np.array([1, 2]))
    assert all(len(v) == 2 for v in empty.values()) and np.isnan(empty["micro_vwap_session"]).all()
    assert empty["micro_aggressive_volume"].tolist() == [0, 0] and np.isnan(empty["micro_buy_pressure"]).all()
    assert all(len(v) == 0 for v in micro_series(hand_stream(), UNIT, np.zeros(0, np.int64)).values())
    s = Stream()
    s.trade(1, 1, 100, 2)  # trades before any book: volume counts, consumption cannot
    s.snapshot(2, [(100, 5)], [])  # one-sided book
    s.trade(3, -1, 100, 1)
    s.trade(4, 1, 101, 1)  # hits an empty ask side
    cfg = MicroConfig(flow_window_ns=100, consume_bps=100.0)
    out = micro_series(s.array(), UNIT, np.array([4]), cfg)
    assert math.isnan(out["micro_mid"][0]) and math.isnan(out["micro_imbalance"][0])
    assert out["micro_aggressive_volume"][0] == 4 and out["micro_consumption_sell"][0] == pytest.approx(1 / 5)
    assert out["micro_consumption_buy"][0] == 0.0 and math.isnan(out["micro_aggr_passive_ratio"][0])
    assert_columns_match(out, ref_micro(s.array(), UNIT, [4], cfg))
    with pytest.raises(ValueError):
        micro_series(hand_stream(), UNIT, np.array([5, 1]))


def test_tape_chunks_and_retries_give_the_same_rows() -> None:
    ev = hand_stream()
    t = np.arange(0, 70) * NS
    a = book_tape(ev, t, bands_bps=(5.0, 1000.0), top_k=3, chunk=4096)
    b = book_tape(ev, t, bands_bps=(5.0, 1000.0), top_k=3, chunk=2)
    for f in ("synced", "bb", "ba", "bpx", "bq", "apx", "aq", "nlv", "trade_depth", "add_q", "msg_bid"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    np.testing.assert_array_equal(a.band, b.band)
    assert a.add_q.tolist() == [3] and a.trade_depth.tolist() == [2, 8, 1]  # default 10 bps of the touch
    assert a.msg_t.tolist()[0] == 10 * NS and math.isnan(a.msg_bid[0])  # the clear at 10 s


# ---- random streams --------------------------------------------------------------------------------
SIDE = st.sampled_from([1, -1])


@st.composite
def streams(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    """A random stream (snapshots, diffs, trades, clears, jumps, clock steps back) and sample times."""
    s = Stream()
    c = draw(st.sampled_from([200, 10_000]))
    t = draw(st.sampled_from([1_000, NS_DAY - 30]))  # sometimes across a UTC midnight
    start = t

    def snapshot(clear: bool) -> None:
        bids = sorted({c - draw(st.integers(0, 12)) for _ in range(draw(st.integers(0, 8)))})
        asks = sorted({c + draw(st.integers(1, 12)) for _ in range(draw(st.integers(0, 8)))})
        s.snapshot(t, [(p, draw(st.integers(1, 9))) for p in bids], [(p, draw(st.integers(1, 9))) for p in asks], clear)

    for _ in range(draw(st.integers(0, 2))):
        s.trade(t, draw(SIDE), c, draw(st.integers(1, 5)))
    snapshot(True)
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.integers(0, 3))
        op = draw(st.sampled_from(["trade", "trade", "diff", "diff", "diff", "snapshot", "clear", "jump", "back"]))
        if op == "diff":
            sets = [(side, c + draw(st.integers(-12, 2) if side > 0 else st.integers(-2, 12)), draw(st.integers(0, 9)))
                    for side in draw(st.lists(SIDE, min_size=1, max_size=4))]
            s.message(t, sets)
        elif op == "trade":
            s.trade(t, draw(st.sampled_from([1, -1, 1, -1, 0])), c + draw(st.integers(-3, 3)), draw(st.integers(0, 5)))
        elif op == "snapshot":
            snapshot(draw(st.booleans()))
        elif op == "clear":
            s.add(Kind.BOOK_CLEAR, t)
        elif op == "jump":
            c = max(c + draw(SIDE) * draw(st.integers(20, 3000)), 100)
        else:  # a trade whose clock steps back
            s.trade(t - draw(st.integers(1, 3)), draw(SIDE), c, draw(st.integers(1, 3)))
    samples = sorted(draw(st.lists(st.integers(start - 2, t + 2), min_size=1, max_size=8)))
    return s.array(), samples


MICRO_CFGS = st.builds(
    MicroConfig, vwap_window_ns=st.integers(1, 20), imbalance_bps=st.sampled_from([5.0, 100.0, 2000.0]),
    flow_window_ns=st.integers(1, 30), size_edges_quote=st.sampled_from([(1.0, 2.0, 3.0, 6.0), (100.0, 200.0, 5e2, 1e3)]),
    institutional_quote=st.sampled_from([2.0, 3.0, 300.0]), intensity_window_ns=st.integers(1, 10),
    baseline_window_ns=st.integers(1, 40), consume_levels=st.integers(1, 4),
    consume_bps=st.sampled_from([0.0, 10.0, 500.0]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=streams(), cfg=MICRO_CFGS, inst=st.sampled_from([LINEAR, INVERSE]))
def test_micro_matches_twin(data: tuple[np.ndarray, list[int]], cfg: MicroConfig, inst: Instrument) -> None:
    ev, samples = data
    assert_columns_match(micro_series(ev, inst, np.array(samples, np.int64), cfg), ref_micro(ev, inst, samples, cfg))


# ---- real captures ---------------------------------------------------------------------------------
# the real captures come from the ``capture`` fixture (tests/conftest.py)


def test_real_capture_matches_twin(capture: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = capture
    ev = ev[:25_000]  # the snapshot and about 10-20 s of the stream
    t = np.maximum.accumulate(ev["ts_local"])
    samples = np.linspace(t[0] - 1, t[-1], 6).astype(np.int64)
    cfg = MicroConfig(vwap_window_ns=4 * NS, flow_window_ns=5 * NS, intensity_window_ns=2 * NS,
                      baseline_window_ns=6 * NS)
    got = micro_series(ev, inst, samples, cfg)
    assert_columns_match(got, ref_micro(ev, inst, samples.tolist(), cfg))
    assert math.isnan(got["micro_mid"][0]) and not np.isnan(got["micro_mid"][1:]).any()


def test_real_capture_whole_run(capture: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = capture
    t = np.maximum.accumulate(ev["ts_local"])
    samples = np.arange(t[0] // NS * NS + NS, t[-1], NS)
    out = micro_series(ev, inst, samples)
    shares = sum(out[f"micro_size_share_{b}"] for b in range(5))
    traded = out["micro_aggressive_volume"] > 0
    np.testing.assert_allclose(shares[traded], 1.0, rtol=1e-9)
    bp = out["micro_buy_pressure"][traded]
    assert ((bp >= 0) & (bp <= 1)).all()
    imb = out["micro_imbalance"]
    ok = ~np.isnan(imb)
    assert ok.mean() > 0.95 and (np.abs(imb[ok]) <= 1).all()
    assert (out["micro_passive_volume"][1:] > 0).all()  # makers keep adding at the touch
    # the session VWAP at the end is the VWAP of every trade of that UTC day (local clock)
    tr = ev[ev["kind"] == Kind.TRADE]
    tt = np.maximum.accumulate(ev["ts_local"])[ev["kind"] == Kind.TRADE]
    day = (tt <= samples[-1]) & (tt // NS_DAY == samples[-1] // NS_DAY)
    px = float(inst.tick_size)
    want = (tr["price"][day] * tr["qty"][day].astype(float)).sum() / tr["qty"][day].sum() * px
    assert out["micro_vwap_session"][-1] == pytest.approx(want, rel=1e-12)


def test_far_levels_grow_the_book_and_still_match_the_twin() -> None:
    s = Stream()  # 3000 levels spread over ±120,000 ticks: most live in the far-level hash, which must grow
    s.snapshot(1, [(200_000 - 40 * j, 1 + j % 7) for j in range(1500)],
               [(200_001 + 40 * j, 1 + j % 5) for j in range(1500)])
    s.trade(2, 1, 200_001, 3)
    s.message(3, [(1, 200_000 - 40 * j, 0) for j in range(0, 1500, 3)] + [(1, 200_000, 9)])
    s.trade(4, -1, 200_000, 2)
    ev = s.array()
    cfg = MicroConfig(flow_window_ns=10, imbalance_bps=5000.0, consume_levels=50, consume_bps=1000.0)
    got = micro_series(ev, LINEAR, np.array([1, 2, 4]), cfg)
    assert_columns_match(got, ref_micro(ev, LINEAR, [1, 2, 4], cfg))
    assert got["micro_consumption_buy"][2] > 0 and got["micro_passive_volume"][2] > 0
