"""Cost of trading (``flowbook.features.impact``) against the reference document and its twin.

Worked example: shared/reference/formulas-and-protocols.md §C.2 (walk the book: VWAP 100.22,
slippage ≈ +16.99 bps, worst price 100.4).  §A.5 definitions: Kyle's lambda, Amihud, effective /
realized spread and price impact (``ES = RS + PI``).  Kernel vs twin (``reference_analytics``) on
hypothesis-generated books and series and on the real USD-M and spot captures.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowbook.book import L2Book, ReferenceBook
from flowbook.events import Instrument, Kind
from flowbook.features.impact import (
    IMPACT_BPS,
    amihud,
    book_cost,
    category,
    cost_series,
    interval_flow,
    kyle_lambda,
    mid_at,
    mid_series,
    trade_spreads,
    walk,
)
from flowbook.features.reference_analytics import (
    ref_amihud,
    ref_book_cost,
    ref_cost_series,
    ref_flow,
    ref_kyle,
    ref_spreads,
    ref_walk,
)
from flowbook.replay.sources import load

INST = Instrument("test", "EX", "0.1", "0.1")  # price 100.1 = tick 1001, size 2.0 = 20 lots
ASKS = (np.array([1001, 1002, 1004, 1008]), np.array([20, 15, 30, 50]))


def close(a: float, b: object, rel: float = 1e-12) -> bool:
    if b is None:
        return math.isnan(a)
    return a == pytest.approx(float(b), rel=rel, abs=1e-12)  # type: ignore[arg-type]


# ---- reference §C.2 worked example --------------------------------------------------------------
def test_walk_worked_example() -> None:
    w = walk(*ASKS, side=1, size="5.0", unit="base", inst=INST, mid2=2001)  # mid 100.05
    assert w.avg_price == pytest.approx(100.22, abs=1e-12) and w.worst_price == pytest.approx(100.4)
    assert w.slippage_mid_bps == pytest.approx(16.99, abs=0.005)
    assert (w.levels, w.filled_qty, w.exhausted, w.category) == (3, 5.0, False, "moderate")
    assert w.cost_vs_mid == pytest.approx(5.0 * (100.22 - 100.05))
    assert w.slippage_best_bps == pytest.approx((100.22 / 100.1 - 1) * 1e4)
    ref = ref_walk(list(zip(*(a.tolist() for a in ASKS), strict=True)), 1, "5.0", "base", INST, Fraction(2001, 2))
    assert ref["avg"] == Decimal("100.22") and ref["levels"] == 3 and not ref["exhausted"]


def test_walk_sell_side_quote_size_and_exhaustion() -> None:
    bids = (np.array([1000, 999, 995]), np.array([10, 10, 10]))
    sell = walk(*bids, side=-1, size="150", unit="quote", inst=INST, mid2=2001)
    # 100.0 x 1.0 = 100, then 0.5 more (5 lots x 99.9 = 49.95): the next lot would exceed 150
    assert sell.filled_qty == pytest.approx(1.5) and sell.filled_quote == pytest.approx(149.95)
    assert sell.slippage_mid_bps == pytest.approx(-((149.95 / 1.5) / 100.05 - 1) * 1e4)
    assert sell.slippage_mid_bps > 0 and sell.levels == 2 and not sell.exhausted
    out = walk(*bids, side=-1, size="100", unit="base", inst=INST, mid2=2001)
    assert out.exhausted and out.filled_qty == pytest.approx(3.0) and out.category == "insufficient_depth"
    assert out.worst_price == pytest.approx(99.5)  # the visible book ran out: flagged, not a made-up price
    tiny = walk(*bids, side=-1, size="0.05", unit="base", inst=INST, mid2=2001)  # below one lot
    assert tiny.filled_qty == 0 and not tiny.exhausted and tiny.category == "none" and math.isnan(tiny.avg_price)


def test_empty_and_one_sided_books() -> None:
    book = L2Book(window=1 << 10)
    empty = book_cost(book, "1", "base", INST)
    assert math.isnan(empty.mid) and empty.buy.exhausted and empty.sell.exhausted
    assert empty.buy.levels == 0 and math.isnan(empty.buy.avg_price)
    book.set(-1, 1001, 20)
    one = book_cost(book, "1", "base", INST)
    assert math.isnan(one.mid) and one.buy.avg_price == pytest.approx(100.1)
    assert math.isnan(one.buy.slippage_mid_bps) and one.buy.slippage_best_bps == 0.0
    assert one.buy.category == "unknown" and one.sell.exhausted
    assert book_cost(book, "0", "quote", INST).buy.category == "none"


def test_categories() -> None:
    assert [category(x, False) for x in (0.5, -3, 10, 30, 80)] == ["negligible", "low", "moderate", "high", "severe"]
    assert category(0.1, True) == "insufficient_depth" and category(math.nan, False) == "unknown"
    assert [b for _, b in IMPACT_BPS] == [1.0, 5.0, 20.0, 50.0]


def test_deep_walk_reads_past_the_first_levels() -> None:
    book, ref = L2Book(window=1 << 12), ReferenceBook()
    for i in range(600):
        for b in (book, ref):
            b.set(-1, 2000 + 2 * i, 1 + i % 3)
            b.set(1, 1999 - i, 2)
    got = book_cost(book, "100", "base", INST, first_levels=16)  # 1000 lots: 501 ask levels
    want = ref_book_cost(ref, "100", "base", INST)
    assert got.buy.levels == want[1]["levels"] == 501 and not got.buy.exhausted
    assert close(got.buy.avg_price, want[1]["avg"]) and close(got.buy.slippage_mid_bps, want[1]["slip_mid_bps"])
    assert got.sell.levels == want[-1]["levels"] == 500


# ---- kernel vs twin: walks -----------------------------------------------------------------------
def assert_walk_matches(w: object, ref: dict[str, object]) -> None:
    assert (round(w.filled_qty / 0.1), w.levels, w.exhausted) == (ref["filled_lots"], ref["levels"], ref["exhausted"])
    assert close(w.avg_price, ref.get("avg")) and close(w.slippage_best_bps, ref.get("slip_best_bps"))
    assert close(w.slippage_mid_bps, ref.get("slip_mid_bps")) and close(w.cost_vs_mid, ref.get("cost_vs_mid"))
    assert close(w.cost_vs_best, ref.get("cost_vs_best"))


@settings(max_examples=300, deadline=None)
@given(levels=st.dictionaries(st.integers(1, 3000), st.integers(1, 500), max_size=30),
       side=st.sampled_from([1, -1]), unit=st.sampled_from(["base", "quote"]),
       size=st.decimals(0, 50_000, places=2, allow_nan=False), touch=st.integers(0, 10))
def test_walk_matches_twin(levels: dict[int, int], side: int, unit: str, size: object, touch: int) -> None:
    ordered = sorted(levels.items(), reverse=side < 0)  # buys walk asks upward, sells walk bids downward
    px = np.array([p for p, _ in ordered], np.int64)
    q = np.array([v for _, v in ordered], np.int64)
    mid2 = None if not ordered else 2 * ordered[0][0] - side * min(touch, ordered[0][0] - 1)
    w = walk(px, q, side, str(size), unit, INST, mid2)
    assert_walk_matches(w, ref_walk(ordered, side, str(size), unit, INST,
                                    None if mid2 is None else Fraction(mid2, 2)))


@settings(max_examples=100, deadline=None)
@given(bids=st.dictionaries(st.integers(1, 999), st.integers(1, 50), max_size=40),
       asks=st.dictionaries(st.integers(1000, 2000), st.integers(1, 50), max_size=40),
       unit=st.sampled_from(["base", "quote"]), size=st.integers(0, 400))
def test_book_cost_matches_twin(bids: dict[int, int], asks: dict[int, int], unit: str, size: int) -> None:
    book, ref = L2Book(window=1 << 10), ReferenceBook()
    for side, lv in ((1, bids), (-1, asks)):
        for p, q in lv.items():
            book.set(side, p, q)
            ref.set(side, p, q)
    got = book_cost(book, str(size), unit, INST, first_levels=4)
    want = ref_book_cost(ref, str(size), unit, INST)
    assert_walk_matches(got.buy, want[1])
    assert_walk_matches(got.sell, want[-1])


# ---- Kyle's lambda, Amihud, interval flow ----------------------------------------------------------
def test_kyle_lambda_recovers_a_linear_impact() -> None:
    q = np.array([1.0, -2.0, 3.0, 0.5, -1.0, 2.0])
    k = kyle_lambda(0.5 + 2.0 * q, q, window=4, lags=2, price=np.full(6, 100.0))
    assert np.isnan(k["lambda"][:3]).all() and k["lambda"][3:] == pytest.approx([2.0] * 3)
    assert k["alpha"][3:] == pytest.approx([0.5] * 3) and k["r2"][3:] == pytest.approx([1.0] * 3)
    assert k["bps_per_million"][5] == pytest.approx(2.0 * 1e6 / 100.0 * 1e4 / 100.0)
    assert np.isnan(k["t_nw"][3:]).all()  # a perfect fit has no standard error
    flat = kyle_lambda(np.arange(5.0), np.ones(5), window=3)
    assert np.isnan(flat["lambda"]).all()  # constant flow: slope undefined


@settings(max_examples=100, deadline=None)
@given(xy=st.lists(st.tuples(st.integers(-50, 50), st.integers(-500, 500).map(lambda v: v / 100)), max_size=30),
       window=st.integers(2, 8), lags=st.integers(0, 4), holes=st.lists(st.integers(0, 29), max_size=3))
def test_kyle_and_amihud_match_twin(xy: list[tuple[int, float]], window: int, lags: int, holes: list[int]) -> None:
    q = [float(a) for a, _ in xy]
    dp = [b for _, b in xy]
    for h in holes:
        if h < len(dp):
            dp[h] = math.nan
    got = kyle_lambda(np.array(dp), np.array(q), window, lags)
    for k, row in enumerate(ref_kyle(dp, q, window, lags)):
        for key, want in zip(("lambda", "alpha", "r2", "t_nw"), row, strict=True):
            assert (math.isnan(want) and math.isnan(got[key][k])) or got[key][k] == pytest.approx(want, rel=1e-7, abs=1e-9)
    dvol = [abs(a) * 10.0 for a in q]
    am = amihud(np.array(dp), np.array(dvol), window)
    for a, b in zip(am, ref_amihud(dp, dvol, window), strict=True):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9)


def test_amihud_example() -> None:
    ret = np.array([0.001, -0.002, 0.0, 0.004])
    dvol = np.array([1e6, 2e6, 0.0, 4e6])  # the zero-volume interval is skipped
    out = amihud(ret, dvol, window=3)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx((0.001 + 0.001) / 2) and out[3] == pytest.approx((0.001 + 0.001) / 2)


@settings(max_examples=100, deadline=None)
@given(trs=st.lists(st.tuples(st.integers(0, 100), st.integers(90, 110), st.integers(1, 9),
                              st.sampled_from([-1, 0, 1])), max_size=30),
       grid=st.lists(st.integers(-5, 105), min_size=0, max_size=8, unique=True))
def test_interval_flow_matches_twin(trs: list[tuple[int, int, int, int]], grid: list[int]) -> None:
    trs, grid = sorted(trs), sorted(grid)
    cols = [np.array([t[c] for t in trs], np.int64) for c in range(4)]
    signed, vol, notional = interval_flow(cols[0], cols[2], cols[3], cols[1], np.array(grid, np.int64))
    assert list(zip(signed.tolist(), vol.tolist(), notional.tolist(), strict=True)) == ref_flow(trs, grid)


# ---- effective / realized spread ------------------------------------------------------------------
def test_effective_and_realized_spread_example() -> None:
    mid_ts, mids = np.array([0, 10, 20]), np.array([100.0, 100.2, 100.4])
    ts = np.array([-1, 5, 12, 14])
    px = np.array([100.0, 100.1, 100.1, 100.3])
    sp = trade_spreads(ts, px, np.array([1.0, 2.0, 1.0, 1.0]), np.array([1, 1, -1, 0]), mid_ts, mids, 10)
    assert np.isnan(sp.es[0])  # before the first mid
    assert sp.es[1] == pytest.approx(0.2) and sp.rs[1] == pytest.approx(-0.2) and sp.pi[1] == pytest.approx(0.4)
    assert sp.es[2] == pytest.approx(0.2) and np.isnan(sp.rs[2])  # 12 + 10 is after the last mid
    assert np.isnan(sp.es[3])  # no aggressor side
    assert sp.es_bps[1] == pytest.approx(0.2 / 100.0 * 1e4)
    assert sp.mean_es_bps == pytest.approx((2 * 20.0 + 0.2 / 100.2 * 1e4) / 3)
    assert sp.mean_rs_bps == pytest.approx(-20.0)
    ok = np.isfinite(sp.rs) & np.isfinite(sp.es)
    assert sp.es[ok] == pytest.approx(sp.rs[ok] + sp.pi[ok])  # ES = RS + PI
    assert mid_at(np.array([-1, 0, 15]), mid_ts, mids)[1:].tolist() == [100.0, 100.2]


# ---- real captures --------------------------------------------------------------------------------
CAPTURES = {"usdm": ["usdm/btcusdt_20240808.gz"], "spot": ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"]}


@pytest.fixture(scope="module", params=sorted(CAPTURES))
def capture(request: pytest.FixtureRequest, data_dir: Path) -> tuple[np.ndarray, Instrument]:
    loaded = load([data_dir / "hftbacktest" / p for p in CAPTURES[request.param]], None, False)
    return loaded.events, loaded.instruments[0]


def test_real_capture_book_cost_matches_twin(capture: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = capture
    t = ev["ts_local"]
    samples = np.linspace(t[0], t[-1], 6).astype(np.int64)
    for size, unit in (("1", "base"), ("1000000", "quote"), ("100000", "base")):
        got = cost_series(ev, inst, samples, size, unit)
        want = ref_cost_series(ev, inst, samples.tolist(), size, unit)
        assert got[0] is None and want[0] is None  # before the snapshot
        for g, w in zip(got[1:], want[1:], strict=True):
            for walk_g, side in ((g.buy, 1), (g.sell, -1)):
                ref = w[side]
                lots = round(walk_g.filled_qty / float(inst.lot_size))
                assert (lots, walk_g.levels, walk_g.exhausted) == (ref["filled_lots"], ref["levels"], ref["exhausted"])
                assert close(walk_g.avg_price, ref["avg"]) and close(walk_g.slippage_mid_bps, ref["slip_mid_bps"])
            assert g.buy.slippage_mid_bps > 0 and g.sell.slippage_mid_bps > 0
            assert g.buy.exhausted == g.sell.exhausted == (size == "100000")  # beyond the visible book


def test_real_capture_spreads_and_lambda_match_twin(capture: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = capture
    mts, mid = mid_series(ev, inst)
    tick = float(inst.tick_size)
    tr = ev[ev["kind"] == Kind.TRADE][:400]
    px = tr["price"] * tick
    sp = trade_spreads(tr["ts_local"], px, tr["qty"], tr["side"], mts, mid, 1_000_000_000)
    ref = ref_spreads(list(zip(tr["ts_local"].tolist(), px.tolist(), tr["qty"].tolist(), tr["side"].tolist(),
                               strict=True)), list(zip(mts.tolist(), mid.tolist(), strict=True)), 1_000_000_000)
    got = np.column_stack([sp.es, sp.rs, sp.pi])
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-12, atol=1e-9)
    assert sp.mean_es_bps >= 0
    trades = ev[ev["kind"] == Kind.TRADE]
    grid = np.arange(mts[0], mts[-1], 1_000_000_000)
    signed, _, notional = interval_flow(trades["ts_local"], trades["qty"], trades["side"], trades["price"], grid)
    m = mid_at(grid, mts, mid)
    dp, q = np.diff(m), signed * float(inst.lot_size)
    k = kyle_lambda(dp, q, 60, 5)
    want = ref_kyle(dp.tolist(), q.tolist(), 60, 5)
    np.testing.assert_allclose(k["lambda"], [r[0] for r in want], rtol=1e-7)
    assert np.nanmedian(k["lambda"]) > 0  # buying pushes the mid up
    dvol = notional * tick * float(inst.lot_size)
    ret = np.diff(np.log(m))
    np.testing.assert_allclose(amihud(ret, dvol, 60), ref_amihud(ret.tolist(), dvol.tolist(), 60), rtol=1e-9)
