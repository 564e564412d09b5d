"""Volume profile (``flowbook.features.profile``) against the reference document and its twin.

Worked example: shared/reference/formulas-and-protocols.md §A.6 (rows 100..108, volumes
5,10,20,35,50,30,25,10,5).  Kernel vs twin (``reference_analytics.ref_*``) on hypothesis-generated
trades and candles and on the real USD-M and spot captures (the spot capture runs across 00:00 UTC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbook.events import Kind
from flowbook.features.profile import (
    NO_ROW,
    NS_DAY,
    Bias,
    Items,
    Profile,
    ProfileConfig,
    candles,
    market_profile,
    naked_pocs,
    profile_series,
    trades,
    trading_bias,
)
from flowbook.features.reference_analytics import (
    ref_levels,
    ref_naked_pocs,
    ref_nodes,
    ref_profile,
    ref_profile_series,
    ref_tick_lots,
)
from flowbook.replay.sources import load

H = 3_600_000_000_000
EXAMPLE = dict(zip(range(100, 109), [5, 10, 20, 35, 50, 30, 25, 10, 5], strict=True))


def profile_of(rows: dict[int, int], ts: int = 0) -> tuple[Profile, Items]:
    """One trade per row (lots = the row's volume), tick = row (bin 1)."""
    px = np.array(sorted(rows), np.int64)
    it = trades(np.full(len(px), ts, np.int64), px, np.array([rows[p] for p in sorted(rows)], np.int64))
    return Profile.build(it, 1), it


def as_tuples(it: Items) -> list[tuple[int, ...]]:
    return list(zip(*(a.tolist() for a in (it.ts, it.open, it.high, it.low, it.close, it.vol)), strict=True))


# ---- reference §A.6 worked example ----------------------------------------------------------------
def test_value_area_worked_example_dual_row() -> None:
    prof, _ = profile_of(EXAMPLE)
    lv = prof.levels(ProfileConfig())  # 70 %, dual-row, ties -> upper
    assert (lv.poc, lv.val, lv.vah, lv.va_lots, lv.total) == (104, 102, 106, 160, 190)
    assert ref_levels(EXAMPLE) == (104, 102, 106, 160, 190)


def test_value_area_worked_example_single_row() -> None:
    prof, _ = profile_of(EXAMPLE)
    lv = prof.levels(ProfileConfig(va_rows=1))
    assert (lv.val, lv.vah, lv.va_lots) == (103, 106, 140)
    assert ref_levels(EXAMPLE, va_rows=1) == (104, 103, 106, 140, 190)


def test_value_area_tie_break() -> None:
    # worked example: the first step is a tie (105+106 = 55 = 103+102); either side ends at 102-106
    prof, _ = profile_of(EXAMPLE)
    assert prof.levels(ProfileConfig(va_tie="lower")).va_lots == 160
    # symmetric profile: the tie decides which side the value area grows to
    sym = {1: 1, 2: 4, 3: 10, 4: 4, 5: 1}
    prof, _ = profile_of(sym)
    up, down = prof.levels(ProfileConfig()), prof.levels(ProfileConfig(va_tie="lower"))
    assert (up.val, up.vah, up.va_lots) == (3, 5, 15)
    assert (down.val, down.vah, down.va_lots) == (1, 3, 15)
    assert ref_levels(sym, tie="lower") == (3, 1, 3, 15, 20)


def test_value_area_one_side_exhausted_and_full_pct() -> None:
    prof, _ = profile_of({10: 50, 11: 1, 12: 1, 13: 1})  # POC at the bottom edge: grows up only
    lv = prof.levels(ProfileConfig(value_area_pct=1.0))
    assert (lv.poc, lv.val, lv.vah, lv.va_lots, lv.total) == (10, 10, 13, 53, 53)


def test_poc_ties_nearest_middle_then_lower() -> None:
    assert profile_of({10: 5, 12: 5})[0].levels(ProfileConfig()).poc == 10  # equidistant -> lower
    assert profile_of({10: 5, 11: 5, 14: 1})[0].levels(ProfileConfig()).poc == 11  # middle is 12
    assert ref_levels({10: 5, 11: 5, 14: 1})[0] == 11


def test_rows_are_floor_of_tick_over_bin() -> None:
    it = trades(np.zeros(4, np.int64), np.array([9, 10, 11, 12]), np.array([1, 2, 3, 4]))
    prof = Profile.build(it, 3)  # rows 3 (9..11) and 4 (12..14)
    assert prof.first_row == 3 and prof.vol.tolist() == [6, 4]
    assert (prof.row_low(4), prof.row_high(4)) == (12, 14)


# ---- candles ---------------------------------------------------------------------------------------
def test_candle_lots_spread_evenly_and_exactly() -> None:
    # ticks 10..19, 7 lots: one lot each on ticks 11, 12, 14, 15, 17, 18, 19
    assert ref_tick_lots(10, 19, 7) == {10: 0, 11: 1, 12: 1, 13: 0, 14: 1, 15: 1, 16: 0, 17: 1, 18: 1, 19: 1}
    prof = Profile.build(candles([1], [10], [19], [10], [12], [7]), 3)
    assert prof.first_row == 3 and prof.vol.tolist() == [1, 2, 2, 2]
    big = Profile.build(candles([1], [10], [19], [10], [12], [1_000_003]), 4)
    assert int(big.vol.sum()) == 1_000_003  # total exact


def test_flat_candle_is_a_trade_and_bad_candles_raise() -> None:
    a = Profile.build(candles([5], [7], [7], [7], [7], [9]), 2)
    b = Profile.build(trades([5], [7], [9]), 2)
    assert (a.first_row, a.vol.tolist(), a.vwap_ticks) == (b.first_row, b.vol.tolist(), b.vwap_ticks)
    with pytest.raises(ValueError):
        candles([1], [5], [4], [6], [5], [1])


# ---- sessions, rolling window ---------------------------------------------------------------------
def test_session_resets_at_the_configured_utc_hour() -> None:
    midnight = 20_000 * NS_DAY
    it = trades([midnight - H, midnight + H // 2, midnight + 2 * H], [100, 200, 201], [5, 3, 4])
    s0 = profile_series(it, [midnight - 1, midnight + 10, midnight + 3 * H], ProfileConfig())
    assert s0.total.tolist() == [5, 0, 7]  # a sample after 00:00 with no trade yet: empty profile
    assert s0.poc[1] == NO_ROW and s0.poc[2] == 201
    s1 = profile_series(it, [midnight + 3 * H], ProfileConfig(session_hour_utc=1.0))  # resets 01:00
    assert s1.total.tolist() == [4]
    s_all = profile_series(it, [midnight + 3 * H], ProfileConfig(session_hour_utc=22.0))
    assert s_all.total.tolist() == [12]


def test_session_resets_on_a_price_gap() -> None:
    it = trades([1, 2, 3, 4], [100, 101, 150, 151], [1, 1, 1, 1])
    assert profile_series(it, [4], ProfileConfig(gap_ticks=10)).total.tolist() == [2]
    assert profile_series(it, [4], ProfileConfig(gap_ticks=49)).total.tolist() == [4]


def test_rolling_window_drops_old_trades() -> None:
    it = trades([10, 20, 30], [100, 101, 102], [5, 6, 7])
    s = profile_series(it, [10, 25, 30, 44, 60], ProfileConfig(window_ns=15))  # (T - 15, T]
    assert s.total.tolist() == [5, 6, 13, 7, 0]
    assert s.poc.tolist()[:4] == [100, 101, 102, 102] and s.poc[4] == NO_ROW


# ---- nodes, naked POCs, bias, summary --------------------------------------------------------------
def test_volume_nodes_on_a_two_peak_profile() -> None:
    rows = {r: v for r, v in zip(range(10, 21), [1, 3, 9, 3, 1, 0, 1, 2, 8, 2, 1], strict=True)}
    prof, _ = profile_of(rows)
    cfg = ProfileConfig(smooth_rows=1, hvn_pct=0.8, lvn_pct=0.2)
    nodes = prof.nodes(cfg)
    assert nodes.hvn == (12, 18) and nodes.lvn == (15,)
    assert ref_nodes(rows, 1, 0.8, 0.2)[:2] == ([12, 18], [15])
    # 3-row sums: 4,13,15,13,4,2,3,11,12,11,3; the 70th percentile (rank 8 of 11) is 12
    smoothed = prof.nodes(ProfileConfig(smooth_rows=3, hvn_pct=0.7))
    assert smoothed.hvn == (12, 18) and smoothed.lvn == (15,) and smoothed.hvn_threshold == 12
    assert prof.nodes(ProfileConfig(smooth_rows=3)).hvn == (12,)  # 80th percentile: 13


def test_naked_poc_until_revisited() -> None:
    t0 = 30_000 * NS_DAY
    day1 = [(t0 + H, 100, 10), (t0 + 2 * H, 101, 2), (t0 + 3 * H, 99, 2)]
    day2 = [(t0 + NS_DAY + H, 110, 5), (t0 + NS_DAY + 2 * H, 108, 1), (t0 + NS_DAY + 5 * H, 100, 1)]
    ts, px, q = (np.array(c) for c in zip(*(day1 + day2), strict=True))
    it = trades(ts, px, q)
    cfg = ProfileConfig()
    before = naked_pocs(it, cfg, until_ts=t0 + NS_DAY + 3 * H)
    assert [(n.session, n.poc_row, n.poc_lots) for n in before] == [(0, 100, 10)]
    assert naked_pocs(it, cfg) == []  # the last trade goes back to 100
    assert ref_naked_pocs(as_tuples(it)[:5], 1) == [(0, 100)] and ref_naked_pocs(as_tuples(it), 1) == []
    assert naked_pocs(trades([], [], []), cfg) == []


def test_trading_bias_and_market_profile() -> None:
    prof, _ = profile_of(EXAMPLE)  # POC 104, VA 102..106 (width 5 ticks, neutral band ±1.25)
    cfg = ProfileConfig()
    lv = prof.levels(cfg)
    assert [trading_bias(p, prof, lv, cfg) for p in (107, 101, 104, 105, 106, 103, 102)] == [
        Bias.BULLISH, Bias.BEARISH, Bias.NEUTRAL, Bias.NEUTRAL, Bias.BULLISH, Bias.NEUTRAL, Bias.BEARISH]
    mp = market_profile(107, prof, ProfileConfig(smooth_rows=1))
    assert not mp.inside_value_area and mp.bias == Bias.BULLISH and (mp.val, mp.vah) == (102, 106)
    assert mp.support == 104.0 and mp.resistance is None  # the one HVN is the POC row
    assert mp.vwap == pytest.approx(sum(r * v for r, v in EXAMPLE.items()) / 190)
    assert mp.vs_poc_bps == pytest.approx((107 / 104 - 1) * 1e4)
    below = market_profile(103, prof, ProfileConfig(smooth_rows=1))
    assert below.inside_value_area and below.support is None and below.resistance == 104.0


# ---- edge cases ---------------------------------------------------------------------------------
def test_empty_one_trade_and_zero_volume() -> None:
    cfg = ProfileConfig()
    empty = trades([], [], [])
    s = profile_series(empty, [1, 2], cfg)
    assert s.poc.tolist() == [NO_ROW, NO_ROW] and s.total.tolist() == [0, 0] and np.isnan(s.vwap_ticks).all()
    prof = Profile.build(empty, 1)
    assert prof.levels(cfg).poc == NO_ROW and prof.nodes(cfg).hvn == ()
    mp = market_profile(100, prof, cfg)
    assert np.isnan(mp.vwap) and mp.bias == Bias.NEUTRAL and not mp.inside_value_area
    one = profile_series(trades([5], [100], [3]), [4, 5], cfg)
    assert one.poc.tolist() == [NO_ROW, 100] and one.val[1] == one.vah[1] == 100 and one.va_lots[1] == 3
    zero = Profile.build(trades([5, 6], [100, 101], [0, 0]), 1)
    assert zero.levels(cfg).poc == NO_ROW and len(zero.vol) == 0
    assert profile_series(trades([5], [100], [0]), [5], cfg).poc.tolist() == [NO_ROW]


# ---- kernel vs twin: hypothesis -------------------------------------------------------------------
@st.composite
def item_streams(draw: st.DrawFn) -> tuple[Items, list[int]]:
    n = draw(st.integers(0, 25))
    t = 40_000 * NS_DAY + draw(st.integers(0, 23)) * H
    rows = []
    price = draw(st.integers(20, 60))
    flat = draw(st.booleans())
    for _ in range(n):
        t += draw(st.sampled_from([0, 1, 1_000, H, 5 * H]))
        price = max(1, price + draw(st.integers(-6, 6)))
        lo = price - (0 if flat else draw(st.integers(0, 5)))
        hi = price + (0 if flat else draw(st.integers(0, 5)))
        rows.append((t, price, max(hi, 1), max(lo, 1), price, draw(st.integers(0, 30))))
    it = Items(*(np.array([r[c] for r in rows], np.int64).reshape(-1) for c in range(6)))
    t_first = rows[0][0] if rows else 40_000 * NS_DAY
    samples = sorted(draw(st.lists(st.integers(t_first - 2, t + NS_DAY), max_size=8)))
    return it, samples


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=item_streams(), bin_ticks=st.integers(1, 4), va_rows=st.integers(1, 3),
       tie=st.sampled_from(["upper", "lower"]), pct=st.sampled_from([0.5, 0.7, 0.68, 1.0]),
       hour=st.sampled_from([0.0, 1.0, 13.5]), gap=st.sampled_from([0, 3, 8]),
       window=st.sampled_from([0, 1_000, H, 6 * H]))
def test_series_matches_twin(data: tuple[Items, list[int]], bin_ticks: int, va_rows: int, tie: str, pct: float,
                             hour: float, gap: int, window: int) -> None:
    it, samples = data
    cfg = ProfileConfig(bin_ticks=bin_ticks, va_rows=va_rows, va_tie=tie, value_area_pct=pct,
                        session_hour_utc=hour, gap_ticks=gap, window_ns=window)
    fast = profile_series(it, samples, cfg)
    slow = ref_profile_series(as_tuples(it), samples, bin_ticks, pct, va_rows, tie, hour, gap, window)
    none = NO_ROW
    for k, row in enumerate(slow):
        got = (fast.poc[k], fast.val[k], fast.vah[k], fast.va_lots[k], fast.total[k])
        assert got == tuple(none if v is None else v for v in row[:5]), (k, row)
        assert (np.isnan(fast.vwap_ticks[k]) and np.isnan(row[5])) or fast.vwap_ticks[k] == pytest.approx(row[5])


@settings(max_examples=150, deadline=None)
@given(data=item_streams(), bin_ticks=st.integers(1, 4), smooth=st.sampled_from([1, 3, 5]),
       hvn=st.sampled_from([0.5, 0.8, 0.9]), lvn=st.sampled_from([0.1, 0.2, 0.5]), gap=st.sampled_from([0, 5]))
def test_profile_nodes_and_naked_pocs_match_twin(data: tuple[Items, list[int]], bin_ticks: int, smooth: int,
                                                 hvn: float, lvn: float, gap: int) -> None:
    it, _ = data
    cfg = ProfileConfig(bin_ticks=bin_ticks, smooth_rows=smooth, hvn_pct=hvn, lvn_pct=lvn, gap_ticks=gap)
    prof = Profile.build(it, bin_ticks)
    rows = ref_profile(as_tuples(it), bin_ticks)
    dense = {prof.first_row + i: int(v) for i, v in enumerate(prof.vol)}
    assert {r: v for r, v in dense.items() if v} == {r: v for r, v in rows.items() if v}
    nodes = prof.nodes(cfg)
    assert (list(nodes.hvn), list(nodes.lvn), nodes.hvn_threshold, nodes.lvn_threshold) == tuple(
        ref_nodes(rows, smooth, hvn, lvn))
    lv = prof.levels(cfg)
    ref = ref_levels(rows)
    assert (lv.poc == NO_ROW and ref is None) or (lv.poc, lv.val, lv.vah, lv.va_lots, lv.total) == ref
    got = [(n.session, n.poc_row) for n in naked_pocs(it, cfg)]
    assert got == ref_naked_pocs(as_tuples(it), bin_ticks, gap_ticks=gap)


# ---- real captures -----------------------------------------------------------------------------------
CAPTURES = {"usdm": ["usdm/btcusdt_20240808.gz"], "spot": ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"]}


def _capture(data_dir: Path, name: str) -> Items:
    loaded = load([data_dir / "hftbacktest" / p for p in CAPTURES[name]], None, False)
    tr = loaded.events[loaded.events["kind"] == Kind.TRADE]
    return trades(tr["ts_exchange"], tr["price"], tr["qty"])


@pytest.fixture(scope="module", params=sorted(CAPTURES))
def capture_trades(request: pytest.FixtureRequest, data_dir: Path) -> tuple[str, Items]:
    return request.param, _capture(data_dir, request.param)


def test_real_capture_series_match_twin(capture_trades: tuple[str, Items]) -> None:
    name, it = capture_trades
    samples = np.linspace(it.ts[0] - 1, it.ts[-1], 12).astype(np.int64).tolist()
    bin_ticks = 50 if name == "usdm" else 500  # $5 rows (ticks 0.1 and 0.01)
    for cfg in (ProfileConfig(bin_ticks=bin_ticks), ProfileConfig(bin_ticks=bin_ticks, window_ns=60 * 10**9),
                ProfileConfig(bin_ticks=1, va_rows=1, gap_ticks=200)):
        fast = profile_series(it, samples, cfg)
        slow = ref_profile_series(as_tuples(it), samples, cfg.bin_ticks, cfg.value_area_pct, cfg.va_rows,
                                  cfg.va_tie, 0.0, cfg.gap_ticks, cfg.window_ns)
        for k, row in enumerate(slow):
            got = (fast.poc[k], fast.val[k], fast.vah[k], fast.va_lots[k], fast.total[k])
            assert got == tuple(NO_ROW if v is None else v for v in row[:5])
            assert np.isnan(row[5]) or fast.vwap_ticks[k] == pytest.approx(row[5], rel=1e-12)
    assert fast.total[-1] > 0


def test_real_spot_capture_resets_at_midnight(data_dir: Path) -> None:
    it = _capture(data_dir, "spot")  # the spot capture runs across 00:00 UTC
    midnight = int(it.ts[-1]) // NS_DAY * NS_DAY
    after = it.ts >= midnight  # a trade at exactly 00:00:00.000 starts the new day
    s = profile_series(it, [midnight - 1, int(it.ts[-1])], ProfileConfig(bin_ticks=500))
    assert s.total.tolist() == [int(it.vol[~after].sum()), int(it.vol[after].sum())]
    nk = naked_pocs(it, ProfileConfig(bin_ticks=500))
    ref = ref_naked_pocs(as_tuples(it), 500)
    assert [(n.session, n.poc_row) for n in nk] == ref
