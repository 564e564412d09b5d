"""The compiled feature kernel (via :class:`FeatureEngine`) against its plain-Python twin.

``flowbook.features.reference.reference_features`` recomputes every row from the same events with
the dict-based reference book.  Rows, row ints and every column must agree (relative 1e-9, NaN ==
NaN) on hypothesis-generated streams (snapshots with and without a clear, multi-level diff messages
with END_OF_MESSAGE, trades, clears, jumps far outside a tiny book window, foreign event kinds;
event and interval mode, both clocks, linear and inverse instruments, small delta windows, a tiny
output buffer and chunked input) and on the first 1500 depth messages of the real USD-M capture.

The tests at the end pin four edge cases where an earlier kernel departed from the reference
document (crossed-book microprice, |P - M| distance weights, vwap_k with side-0 trades, the index
of the first crossed event across ``process`` calls); they were strict xfails until it was fixed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowbook.events import EVENT_DTYPE, Flag, Instrument, Kind
from flowbook.features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine
from flowbook.features.reference import ReferenceFeatures, reference_features

LINEAR = Instrument("test", "LINUSDT", "0.1", "0.001")
INVERSE = Instrument("test", "INVUSD_PERP", "0.5", "1", multiplier=100.0, inverse=True)
SNAP = Flag.SNAPSHOT
EOM = Flag.END_OF_MESSAGE

# ---- events by hand ---------------------------------------------------------------------------


class Stream:
    """Build an event array: snapshots, diff messages (the last event carries END_OF_MESSAGE), trades."""

    def __init__(self) -> None:
        self.events: list[tuple[int, ...]] = []
        self.update_id = 100

    def add(self, kind: int, t: int, side: int = 0, price: int = 0, qty: int = 0, flags: int = 0,
            t_ex: int | None = None, ident: int = -1) -> None:
        self.events.append((kind, side, flags, 0, t if t_ex is None else t_ex, t, price, qty, ident, -1, 0.0))

    def snapshot(self, t: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], clear: bool = True,
                 t_ex: int | None = None) -> None:
        if clear:
            self.add(Kind.BOOK_CLEAR, t, t_ex=t_ex)
        levels = [(1, p, q) for p, q in bids] + [(-1, p, q) for p, q in asks] or [(0, 0, 0)]
        self.update_id += 1
        for j, (side, p, q) in enumerate(levels):
            flags = SNAP | (Flag.SNAPSHOT_BEGIN if j == 0 else 0)
            if j == len(levels) - 1:
                flags |= Flag.SNAPSHOT_END | EOM
            self.add(Kind.BOOK_SET, t, side, p, q, flags, t_ex, self.update_id)

    def message(self, t: int, sets: list[tuple[int, int, int]], t_ex: int | None = None) -> None:
        self.update_id += 1 + len(sets)
        for j, (side, p, q) in enumerate(sets):
            self.add(Kind.BOOK_SET, t, side, p, q, EOM if j == len(sets) - 1 else 0, t_ex, self.update_id)

    def trade(self, t: int, side: int, price: int, qty: int, t_ex: int | None = None) -> None:
        self.add(Kind.TRADE, t, side, price, qty, EOM, t_ex, 7)

    def array(self) -> np.ndarray:
        return np.array(self.events, dtype=EVENT_DTYPE)


# ---- comparison -------------------------------------------------------------------------------


def run_engine(events: np.ndarray, inst: Instrument, cfg: FeatureConfig, window: int | None = None,
               out_rows: int = 1 << 16, split: int | None = None) -> FeatureEngine:
    eng = FeatureEngine(inst, cfg, window=window, out_rows=out_rows)
    for chunk in (events,) if split is None else (events[:split], events[split:]):
        eng.process(chunk)
    eng.finish()
    return eng


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def assert_rows_match(f: np.ndarray, ii: np.ndarray, rows: list[dict[str, float]]) -> int:
    """Every row, row int and column equal; returns the number of crossed rows."""
    assert f.shape == (len(rows), len(FEATURE_COLUMNS))
    crossed_rows = 0
    for r, row in enumerate(rows):
        assert (int(ii[r, 0]), int(ii[r, 1]), int(ii[r, 2])) == (row["ts"], row["ts_exchange"],
                                                                 row["update_id"]), r
        crossed_rows += row["best_bid"] > row["best_ask"]  # False when either is NaN
        for c, name in enumerate(FEATURE_COLUMNS):
            a, b = float(f[r, c]), row[name]
            assert same(a, b), (r, name, a, b)
    return crossed_rows


# ---- random streams ---------------------------------------------------------------------------

SIDE = st.sampled_from([1, -1])


@st.composite
def streams(draw: st.DrawFn) -> np.ndarray:
    """A random stream around a drifting centre price."""
    s = Stream()
    c = draw(st.sampled_from([200, 10_000, 1_000_000]))
    t = 1_000 + draw(st.integers(0, 9))
    jitter = draw(st.booleans())  # exchange clock behind the local one by 0..2 (not monotonic)

    def tex() -> int:
        return t - draw(st.integers(0, 2)) if jitter else t

    def snapshot(clear: bool) -> None:
        bids = sorted({c - draw(st.integers(0, 25)) for _ in range(draw(st.integers(0, 8)))})
        asks = sorted({c + draw(st.integers(1, 25)) for _ in range(draw(st.integers(0, 8)))})
        s.snapshot(t, [(p, draw(st.integers(1, 5))) for p in bids],
                   [(p, draw(st.integers(0, 5))) for p in asks], clear, tex())

    ops = ["trade", "diff", "diff", "diff", "diff", "snapshot", "clear", "jump", "other"]
    for _ in range(draw(st.integers(0, 3))):  # trades before the first snapshot
        t += draw(st.integers(0, 3))
        s.trade(t, draw(SIDE), c, draw(st.integers(1, 5)), tex())
    snapshot(True)
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.integers(0, 3))
        op = draw(st.sampled_from(ops))
        if op == "diff":  # bids mostly at or below the centre, asks above: crossing happens sometimes
            sets = [(side, c + draw(st.integers(-20, 3) if side > 0 else st.integers(-3, 20)),
                     draw(st.integers(0, 5))) for side in draw(st.lists(SIDE, min_size=1, max_size=5))]
            s.message(t, sets, tex())
        elif op == "trade":
            side = draw(st.sampled_from([1, -1, 1, -1, 0]))  # 0: no aggressor side
            s.trade(t, side, c + draw(st.integers(-3, 3)), draw(st.integers(1, 5)), tex())
        elif op == "snapshot":
            snapshot(draw(st.booleans()))
        elif op == "clear":
            s.add(Kind.BOOK_CLEAR, t, t_ex=tex())
        elif op == "jump":  # the market moves far outside a small ladder window
            c = max(c + draw(st.sampled_from([-1, 1])) * draw(st.integers(30, 3000)), 100)
        else:  # kinds the feature kernel ignores (they still move the sampling clock)
            s.add(draw(st.sampled_from([Kind.BBO, Kind.MARK_PRICE])), t, 1, c, 1, EOM, tex())
    return s.array()


CONFIGS = st.builds(
    FeatureConfig,
    interval_ns=st.sampled_from([0, 0, 1, 2, 5]),
    clock=st.sampled_from(["local", "exchange"]),
    depth_levels=st.sampled_from([5, 6, 20]),
    band_bps=st.sampled_from([5.0, 50.0, 500.0]),
    dw_bps=st.sampled_from([1.0, 10.0, 100.0]),
    large_order_pct=st.sampled_from([0.01, 0.1, 0.3]),
    delta_window=st.sampled_from([1, 2, 3, 10]),
    ratio_cap=st.sampled_from([2.0, 0.5]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), cfg=CONFIGS, inst=st.sampled_from([LINEAR, INVERSE]),
       window=st.sampled_from([None, 16, 64]), out_rows=st.sampled_from([2, 1 << 12]), data=st.data())
def test_kernel_matches_twin_on_random_streams(events: np.ndarray, cfg: FeatureConfig,
                                               inst: Instrument, window: int | None, out_rows: int,
                                               data: st.DataObject) -> None:
    split = data.draw(st.one_of(st.none(), st.integers(0, len(events))), label="split")
    eng = run_engine(events, inst, cfg, window, out_rows, split)
    f, ii = eng.take()
    twin = ReferenceFeatures(inst, cfg)
    twin.process(events)
    twin.finish()
    assert_rows_match(f, ii, twin.rows)
    assert eng.stats.book_messages == twin.stats["book_messages"]
    assert eng.stats.crossed == twin.stats["crossed"]
    assert eng.stats.first_crossed_event == twin.stats["first_crossed_event"]


# ---- the real USD-M capture -------------------------------------------------------------------


def _shared_data() -> Path:
    env = os.environ.get("FLOWBOOK_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def usdm() -> tuple[np.ndarray, Instrument]:
    path = _shared_data() / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"
    if not path.exists():
        pytest.skip(f"shared capture not found: {path} (set FLOWBOOK_SHARED_DATA to the shared/data dir)")
    from flowbook.replay.sources import load

    loaded = load([path], None, False)
    events = loaded.events[: int(loaded.msg_end[1499]) + 1]  # the first 1500 depth messages
    return events, loaded.instruments[0]


@pytest.mark.parametrize(
    ("cfg", "window"),
    [
        (FeatureConfig(), None),
        (FeatureConfig(depth_levels=5, band_bps=2.0, dw_bps=1.0, large_order_pct=0.05, delta_window=7), 64),
        (FeatureConfig(interval_ns=100_000_000), None),
        (FeatureConfig(interval_ns=250_000_000, clock="exchange", delta_window=1), None),
    ],
    ids=["event", "event-small-window", "interval-100ms-local", "interval-250ms-exchange"],
)
def test_kernel_matches_twin_on_usdm_capture(usdm: tuple[np.ndarray, Instrument], cfg: FeatureConfig,
                                             window: int | None) -> None:
    events, inst = usdm
    eng = run_engine(events, inst, cfg, window)
    f, ii = eng.take()
    rows = reference_features(events, inst, cfg)
    assert len(rows) > 250
    assert assert_rows_match(f, ii, rows) == 0  # the capture's book never crosses here
    if window is not None:  # a 64-tick ladder: far levels fill (and grow) the hash, the window moves
        assert eng.stats.recenters > 0 and eng.book is not None and eng.book.hkb.shape[0] > 1024
    assert np.isfinite(f[:, FEATURE_COLUMNS.index("ofi")]).all()


# ---- edge cases where the kernel once departed from the reference document ------------------


def _crossed_stream() -> np.ndarray:
    s = Stream()
    s.snapshot(10, [(1000, 4), (999, 2)], [(1001, 3), (1002, 1)])
    s.message(11, [(1, 1003, 2)])  # a bid through the asks: best bid 100.3 > best ask 100.1
    return s.array()


def test_microprice_is_nan_on_crossed_book() -> None:
    """Reference §A.3: the weighted mid is invalid on a crossed book (the kernel once gave 100.22)."""
    f, _ = run_engine(_crossed_stream(), LINEAR, FeatureConfig()).take()
    assert f[-1, FEATURE_COLUMNS.index("best_bid")] > f[-1, FEATURE_COLUMNS.index("best_ask")]
    assert math.isnan(f[-1, FEATURE_COLUMNS.index("microprice")])
    assert not math.isnan(f[0, FEATURE_COLUMNS.index("microprice")])  # the uncrossed snapshot row


def test_imbalance_dw_uses_absolute_distance() -> None:
    """Reference §A.3 weighs by |P_i - M|; a signed distance gives levels through the mid weights > 1.

    Crossed book: bids 100.3 x 2, 100.0 x 4, 99.9 x 2; asks 100.1 x 3, 100.2 x 1; mid 100.2.
    Weights exp(-d_bps / 10): the signed version gave -0.2018, the absolute one gives -0.2079.
    """
    events = _crossed_stream()
    f, _ = run_engine(events, LINEAR, FeatureConfig()).take()
    mid = 1002.0

    def w(p: int) -> float:
        return math.exp(-abs(p - mid) / mid * 1e4 / 10.0)

    wb = 2 * w(1003) + 4 * w(1000) + 2 * w(999)
    wa = 3 * w(1001) + 1 * w(1002)
    got = float(f[-1, FEATURE_COLUMNS.index("imbalance_dw")])
    assert got == pytest.approx((wb - wa) / (wb + wa), rel=1e-12) and got == pytest.approx(-0.2079, abs=1e-4)
    assert same(got, reference_features(events, LINEAR, FeatureConfig())[-1]["imbalance_dw"])


def test_vwap_k_counts_trades_without_aggressor_side() -> None:
    """vwap_k = sum(q p) / sum(q) over the last K trades, side-0 trades included (was sum(|s| q))."""
    s = Stream()
    s.snapshot(10, [(1000, 4)], [(1010, 3)])
    s.trade(11, 1, 1000, 1)
    s.trade(12, 0, 1010, 1)
    s.message(13, [(1, 999, 1)])
    f, _ = run_engine(s.array(), LINEAR, FeatureConfig()).take()
    assert reference_features(s.array(), LINEAR, FeatureConfig())[-1]["vwap_k"] == pytest.approx(100.5)
    assert f[-1, FEATURE_COLUMNS.index("vwap")] == pytest.approx(100.5)
    assert f[-1, FEATURE_COLUMNS.index("vwap_k")] == pytest.approx(100.5)  # was 201.0
    assert f[-1, FEATURE_COLUMNS.index("delta_volume_k")] == pytest.approx(0.001)  # side 0 adds no delta
    assert f[-1, FEATURE_COLUMNS.index("trade_count")] == 2


@pytest.mark.parametrize("split", [0, 3, 5, 6])
def test_first_crossed_event_is_a_global_index(split: int) -> None:
    """EngineStats.first_crossed_event indexes the whole input, however it was split into calls."""
    events = _crossed_stream()  # the crossing message is the last event
    eng = run_engine(events, LINEAR, FeatureConfig(), split=split)
    twin = ReferenceFeatures(LINEAR, FeatureConfig())
    twin.process(events)
    assert twin.stats["first_crossed_event"] == len(events) - 1
    assert eng.stats.first_crossed_event == len(events) - 1
    assert eng.stats.crossed == 1
