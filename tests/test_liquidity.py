"""Liquidity features (``flowbook.features.liquidity``): walls and clusters by hand, the score's
normalisation, depth pressure, and the fast path against the plain-Python twin
(``reference_micro.ref_liquidity``) on hypothesis streams and on the real captures."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_micro import INVERSE, LINEAR, NS, UNIT, Stream, assert_columns_match, streams

from flowbook.book import L2Book
from flowbook.events import EVENT_DTYPE, Instrument, Kind
from flowbook.features.liquidity import (
    LIQUIDITY_COLUMNS,
    Cluster,
    LiquidityConfig,
    Wall,
    book_walls,
    component_score,
    liquidity_series,
    mark_nb,
    rolling_median_nb,
)
from flowbook.features.reference_micro import ref_liquidity, ref_walls

# bids, best first: median size 2, walls >= 10 (x5), cluster members >= 6 (x3)
BIDS = [(100, 1), (99, 2), (98, 20), (97, 21), (96, 1), (95, 2), (94, 1), (93, 30), (92, 1), (91, 2)]


def marks(levels: list[tuple[int, int]], cfg: LiquidityConfig) -> tuple[float, list[int], list[int]]:
    px = np.array([p for p, _ in levels], np.int64)
    q = np.array([v for _, v in levels], np.int64)
    w, c = np.zeros(max(len(levels), 1), np.int64), np.zeros(max(len(levels), 1), np.int64)
    typ = mark_nb(px, q, len(levels), cfg.wall_min_levels, cfg.wall_mult, cfg.cluster_mult, cfg.cluster_gap_ticks,
                  cfg.cluster_min_levels, w, c)
    return typ, w[: len(levels)].tolist(), c[: len(levels)].tolist()


def test_walls_and_clusters_by_hand() -> None:
    cfg = LiquidityConfig()
    typ, wall, cluster = marks(BIDS, cfg)
    assert typ == 2.0 and wall == [0, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    assert cluster == [-1, -1, 0, 0, -1, -1, -1, -1, -1, -1]  # 93 is a wall but alone: no cluster
    assert ref_walls(BIDS, 5, 5.0, 3.0, 1, 2) == (2.0, [2, 3, 7], [[2, 3]])
    # neighbours two ticks apart join only with cluster_gap_ticks >= 2
    gapped = [(100, 1), (98, 9), (96, 9), (95, 1), (94, 1)]
    assert marks(gapped, cfg)[2] == [-1, -1, -1, -1, -1]
    assert marks(gapped, LiquidityConfig(cluster_gap_ticks=2))[2] == [-1, 0, 0, -1, -1]
    assert math.isnan(marks(BIDS[:4], cfg)[0])  # fewer than wall_min_levels: nothing is typical
    book = L2Book(window=1 << 10)
    for p, q in BIDS:
        book.set(1, p, q)
    book.set(-1, 101, 4)
    walls, clusters = book_walls(book, UNIT, cfg)
    assert walls == [Wall(1, 98.0, 20.0, 10.0, pytest.approx(2.5 / 100.5 * 1e4)),
                     Wall(1, 97.0, 21.0, 10.5, pytest.approx(3.5 / 100.5 * 1e4)),
                     Wall(1, 93.0, 30.0, 15.0, pytest.approx(7.5 / 100.5 * 1e4))]
    assert clusters == [Cluster(1, 97.0, 98.0, 41.0, 2)]  # one ask level: below wall_min_levels


def test_wall_columns_pick_the_largest_then_the_nearest() -> None:
    s = Stream()
    s.snapshot(1, BIDS, [(101, 3), (102, 3), (103, 30), (104, 3), (105, 30), (106, 3)])
    cfg = LiquidityConfig(wall_min_levels=5)
    out = liquidity_series(s.array(), UNIT, np.array([1]), cfg)
    assert tuple(out) == LIQUIDITY_COLUMNS
    at = {k: float(v[0]) for k, v in out.items()}
    assert (at["liq_bid_wall_price"], at["liq_bid_wall_size"], at["liq_bid_wall_mult"], at["liq_bid_walls"]) == \
        (93.0, 30.0, 15.0, 3.0)
    assert at["liq_bid_wall_dist_bps"] == pytest.approx((100.5 - 93) / 100.5 * 1e4)
    assert (at["liq_bid_cluster_low"], at["liq_bid_cluster_high"], at["liq_bid_cluster_size"],
            at["liq_bid_cluster_levels"]) == (97.0, 98.0, 41.0, 2.0)
    assert at["liq_ask_typical"] == 3.0 and at["liq_ask_wall_price"] == 103.0  # tie of 30s: the nearer one
    assert at["liq_ask_walls"] == 2.0 and math.isnan(at["liq_ask_cluster_size"]) and at["liq_ask_cluster_levels"] == 0


def test_score_normalisation() -> None:
    x = np.array([0.0, 1.0, 3.0, np.nan, 2.0])
    ref = np.array([0.0, 1.0, 1.0, 1.0, np.nan])
    assert component_score(x, ref, True)[:3].tolist() == [0.5, 0.5, 0.75]
    assert component_score(x, ref, False)[:3].tolist() == [0.5, 0.5, 0.25]
    assert np.isnan(component_score(x, ref, True)[3:]).all()
    out = np.empty(5)
    rolling_median_nb(np.array([0, 1, 2, 3, 10]), np.array([4.0, np.nan, 1.0, 2.0, 9.0]), 3, out)
    assert out.tolist() == [4.0, 4.0, 2.5, 1.5, 9.0]  # NaN skipped; (T − 3, T]
    s = Stream()  # spread 1 tick at mid 100.5; depth 10 lots each side; 6 lots traded
    s.snapshot(0, [(100, 10)], [(101, 10)])
    s.trade(1, 1, 101, 6)
    spread_bps = 1 / 100.5 * 1e4
    cfg = LiquidityConfig(depth_bps=100.0, spread_ref_bps=spread_bps, depth_ref_quote=2010.0,
                          volume_ref_quote=606.0 / 3, volume_window_ns=10)
    at = {k: float(v[0]) for k, v in liquidity_series(s.array(), UNIT, np.array([1]), cfg).items()}
    assert at["liq_spread_bps"] == pytest.approx(spread_bps) and at["liq_depth_quote"] == 2010.0
    assert at["liq_volume_quote"] == 606.0
    assert (at["liq_spread_score"], at["liq_depth_score"]) == (0.5, 0.5)
    assert at["liq_volume_score"] == pytest.approx(0.75)
    assert at["liq_score"] == pytest.approx(0.4 * 0.5 + 0.4 * 0.5 + 0.2 * 0.75)
    with pytest.raises(ValueError):
        LiquidityConfig(weights=(0.5, 0.5, 0.5))


def test_depth_pressure_by_hand_and_edge_cases() -> None:
    s = Stream()
    s.snapshot(0, [(100, 5)], [(101, 5)])
    s.message(10, [(1, 100, 9)])
    s.add(Kind.BOOK_CLEAR, 20)
    cfg = LiquidityConfig(pressure_window_ns=10, pressure_bps=100.0)
    out = liquidity_series(s.array(), UNIT, np.array([-1, 5, 10, 20]), cfg)
    p = out["liq_depth_pressure"]
    assert math.isnan(p[0]) and math.isnan(p[1])  # nothing known 10 ns earlier
    assert p[2] == pytest.approx((9 - 5 - 0) / (9 + 5 + 5 + 5))
    assert math.isnan(p[3]) and math.isnan(out["liq_bid_depth_band"][3])  # the book was cleared
    assert out["liq_bid_depth_band"][2] == 9.0 and out["liq_ask_depth_band"][2] == 5.0
    empty = liquidity_series(np.zeros(0, EVENT_DTYPE), UNIT, np.array([1, 2]))
    assert all(len(v) == 2 for v in empty.values()) and np.isnan(empty["liq_score"]).all()
    assert empty["liq_volume_quote"].tolist() == [0.0, 0.0]
    one = Stream()
    one.snapshot(0, [(100 - j, 1 + j % 3) for j in range(8)], [])
    at = {k: float(v[0]) for k, v in liquidity_series(one.array(), UNIT, np.array([0])).items()}
    assert math.isnan(at["liq_spread_bps"]) and math.isnan(at["liq_score"]) and at["liq_bid_typical"] == 2.0
    assert math.isnan(at["liq_ask_typical"]) and at["liq_bid_walls"] == 0 and math.isnan(at["liq_ask_walls"])


LIQ_CFGS = st.builds(
    LiquidityConfig, depth_bps=st.sampled_from([5.0, 500.0]), volume_window_ns=st.integers(1, 20),
    baseline_ns=st.integers(1, 30), spread_ref_bps=st.sampled_from([None, None, 20.0]),
    depth_ref_quote=st.sampled_from([None, 5.0]), weights=st.sampled_from([(0.4, 0.4, 0.2), (0.0, 0.0, 1.0)]),
    wall_levels=st.integers(3, 8), wall_min_levels=st.integers(1, 3), wall_mult=st.sampled_from([1.5, 2.0, 3.0]),
    cluster_mult=st.sampled_from([1.0, 2.0]), cluster_gap_ticks=st.integers(1, 3), cluster_min_levels=st.integers(2, 3),
    pressure_bps=st.sampled_from([10.0, 1000.0]), pressure_window_ns=st.integers(1, 10))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=streams(), cfg=LIQ_CFGS, inst=st.sampled_from([LINEAR, INVERSE]))
def test_liquidity_matches_twin(data: tuple[np.ndarray, list[int]], cfg: LiquidityConfig, inst: Instrument) -> None:
    ev, samples = data
    got = liquidity_series(ev, inst, np.array(samples, np.int64), cfg)
    assert_columns_match(got, ref_liquidity(ev, inst, samples, cfg))


def test_real_capture_matches_twin(capture: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = capture
    ev = ev[:25_000]
    t = np.maximum.accumulate(ev["ts_local"])
    samples = np.linspace(t[0] - 1, t[-1], 6).astype(np.int64)
    cfg = LiquidityConfig(baseline_ns=8 * NS, volume_window_ns=3 * NS, pressure_window_ns=2 * NS)
    got = liquidity_series(ev, inst, samples, cfg)
    assert_columns_match(got, ref_liquidity(ev, inst, samples.tolist(), cfg))
    assert not np.isnan(got["liq_score"][1:]).any()


def test_real_capture_whole_run(capture: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = capture
    t = np.maximum.accumulate(ev["ts_local"])
    samples = np.arange(t[0] // NS * NS + NS, t[-1], NS)
    out = liquidity_series(ev, inst, samples)
    score = out["liq_score"][~np.isnan(out["liq_score"])]
    assert len(score) > 0.95 * len(samples) and ((score >= 0) & (score <= 1)).all()
    for side in ("bid", "ask"):
        m = out[f"liq_{side}_wall_mult"]
        assert (m[~np.isnan(m)] >= 10.0).all()
        lo, hi = out[f"liq_{side}_cluster_low"], out[f"liq_{side}_cluster_high"]
        ok = ~np.isnan(lo)
        assert (lo[ok] < hi[ok]).all() and (out[f"liq_{side}_cluster_levels"][ok] >= 2).all()
    p = out["liq_depth_pressure"][~np.isnan(out["liq_depth_pressure"])]
    assert len(p) and (np.abs(p) <= 1).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.just(math.nan), st.integers(-5, 5).map(float))),
                max_size=60), st.integers(1, 12))
def test_rolling_median_matches_brute_force(items: list[tuple[int, float]], window: int) -> None:
    t = np.cumsum([d for d, _ in items]).astype(np.int64)
    x = np.array([v for _, v in items], np.float64)
    out = np.empty(len(t))
    rolling_median_nb(t, x, window, out)
    for s in range(len(t)):
        vals = [x[j] for j in range(len(t)) if t[s] - window < t[j] <= t[s] and not math.isnan(x[j])]
        want = statistics.median(vals) if vals else math.nan
        np.testing.assert_equal(out[s], want)
