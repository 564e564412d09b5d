"""VPIN (``flowbook.features.vpin``): reference §A.4 procedure, the tick rule of §A.7, and the
kernel-vs-twin check (``reference_analytics.ref_vpin``) on hypothesis-generated trades and on the
real USD-M and spot captures, in all three classification modes."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist, stdev

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowbook.events import Kind
from flowbook.features.reference_analytics import ref_vpin
from flowbook.features.vpin import VpinConfig, bucket_lots_for, tick_rule_nb, vpin
from flowbook.replay.sources import load


def run(trades: list[tuple[int, int, int, int]], cfg: VpinConfig):  # noqa: ANN201
    cols = [np.array([t[c] for t in trades], np.int64) for c in range(4)]
    return vpin(cols[0], cols[1], cols[2], cols[3], cfg)


def test_buckets_split_pieces_pro_rata() -> None:
    # aggressor sides: buy 6, sell 3, buy 5, sell 10 into buckets of 5 lots
    trades = [(1, 100, 6, 1), (2, 100, 3, -1), (3, 100, 5, 1), (4, 100, 10, -1)]
    v = run(trades, VpinConfig(bucket_lots=5, n_buckets=2, mode="aggressor"))
    assert v.ts.tolist() == [1, 3, 4, 4]  # the last 4 sell lots stay in an unreported partial bucket
    assert v.buy.tolist() == [5, 2, 4, 0] and v.sell.tolist() == [0, 3, 1, 5]
    assert np.isnan(v.vpin[0]) and v.vpin[1:].tolist() == pytest.approx([0.6, 0.4, 0.8])
    assert math.isnan(v.at([0])[0]) and v.at([3, 100]).tolist() == pytest.approx([0.6, 0.8])


def test_bulk_volume_classification_by_hand() -> None:
    bar = 10
    trades = [(1, 100, 4, 0), (12, 101, 1, 0), (15, 102, 3, 0), (25, 101, 4, 0), (38, 101, 4, 0)]
    v = run(trades, VpinConfig(bucket_lots=4, n_buckets=1, mode="bvc", bar_ns=bar, sigma_bars=10))
    # bars end at 10, 20, 30, 40; price changes +2, -1, 0 after the first bar
    z2 = NormalDist().cdf(-1 / stdev([2, -1]))
    assert v.ts.tolist() == [10, 20, 30, 40]
    assert v.buy.tolist() == pytest.approx([2.0, 2.0, 4 * z2, 2.0])  # one change only: Z = 0.5
    assert v.vpin.tolist() == pytest.approx([0.0, 0.0, abs(1 - 2 * z2), 0.0])


def test_flat_prices_and_tick_rule() -> None:
    flat = [(i * 10, 100, 3, 1) for i in range(6)]
    v = run(flat, VpinConfig(bucket_lots=3, n_buckets=2, mode="bvc", bar_ns=10))
    assert v.buy.tolist() == [1.5] * 6 and np.nanmax(v.vpin) == 0.0  # sigma 0: Z = 0.5
    out = np.empty(6)
    tick_rule_nb(np.array([100, 100, 101, 101, 100, 100]), out)
    assert out.tolist() == [0.5, 0.5, 1.0, 1.0, 0.0, 0.0]


def test_edge_cases() -> None:
    cfg = VpinConfig(bucket_lots=10, n_buckets=3)
    for mode in ("bvc", "tick", "aggressor"):
        c = VpinConfig(bucket_lots=10, n_buckets=3, mode=mode)
        assert len(run([], c).ts) == 0 and math.isnan(run([], c).at([5])[0])
        assert len(run([(1, 100, 5, 1)], c).ts) == 0  # one trade: no full bucket
        assert len(run([(1, 100, 0, 1), (2, 101, 0, -1)], c).ts) == 0  # zero volume
        few = run([(i, 100 + i % 2, 10, 1) for i in range(2)], c)
        assert len(few.ts) == 2 and np.isnan(few.vpin).all()  # fewer than n buckets
    with pytest.raises(ValueError):
        VpinConfig(bucket_lots=0)
    with pytest.raises(ValueError):
        VpinConfig(bucket_lots=1, mode="lee-ready")
    assert bucket_lots_for(1000, 3_600_000_000_000) == 480  # 24 000 lots a day / 50
    assert cfg.n_buckets == 3


@st.composite
def trade_lists(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    n = draw(st.integers(0, 60))
    t, p, out = 0, 100, []
    for _ in range(n):
        t += draw(st.integers(0, 30))
        p = max(1, p + draw(st.integers(-3, 3)))
        out.append((t, p, draw(st.integers(0, 40)), draw(st.sampled_from([-1, 0, 1]))))
    return out


@settings(max_examples=200, deadline=None)
@given(trades=trade_lists(), size=st.integers(1, 60), n=st.integers(1, 6),
       mode=st.sampled_from(["bvc", "tick", "aggressor"]), bar=st.integers(1, 40), sig=st.integers(2, 8))
def test_vpin_matches_twin(trades: list[tuple[int, int, int, int]], size: int, n: int, mode: str, bar: int,
                           sig: int) -> None:
    v = run(trades, VpinConfig(bucket_lots=size, n_buckets=n, mode=mode, bar_ns=bar, sigma_bars=sig))
    ts, buys, vp = ref_vpin(trades, size, n, mode, bar, sig)
    assert v.ts.tolist() == ts
    np.testing.assert_allclose(v.buy, buys, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(v.vpin, vp, rtol=1e-9, atol=1e-12)
    assert np.all((v.vpin[n - 1:] >= -1e-12) & (v.vpin[n - 1:] <= 1 + 1e-12))


CAPTURES = {"usdm": ["usdm/btcusdt_20240808.gz"], "spot": ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"]}


@pytest.fixture(scope="module", params=sorted(CAPTURES))
def capture_trades(request: pytest.FixtureRequest, data_dir: Path) -> list[tuple[int, int, int, int]]:
    loaded = load([data_dir / "hftbacktest" / p for p in CAPTURES[request.param]], None, False)
    tr = loaded.events[loaded.events["kind"] == Kind.TRADE]
    return list(zip(*(tr[c].tolist() for c in ("ts_exchange", "price", "qty", "side")), strict=True))


@pytest.mark.parametrize("mode", ["bvc", "tick", "aggressor"])
def test_real_capture_matches_twin(capture_trades: list[tuple[int, int, int, int]], mode: str) -> None:
    size = sum(t[2] for t in capture_trades) // 50  # 50 buckets over the capture
    cfg = VpinConfig(bucket_lots=size, n_buckets=10, mode=mode, bar_ns=1_000_000_000, sigma_bars=60)
    v = run(capture_trades, cfg)
    ts, buys, vp = ref_vpin(capture_trades, size, 10, mode, cfg.bar_ns, cfg.sigma_bars)
    assert len(v.ts) in (49, 50) and v.ts.tolist() == ts
    np.testing.assert_allclose(v.buy, buys, rtol=1e-9)
    np.testing.assert_allclose(v.vpin, vp, rtol=1e-9)
    assert 0 < np.nanmin(v.vpin) <= np.nanmax(v.vpin) < 1
