"""Kernel (``detectors.nb``) vs plain-Python twin (``detectors.reference``) for the sweep, block, iceberg
and wall-pulled detectors: hypothesis streams and the real Binance captures (counts printed with -s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowbook.detectors import DetectorConfig, Scale, counts, detect_rows, resolve, to_detections
from flowbook.detectors.reference import ref_detect
from flowbook.events import EVENT_DTYPE, Instrument, Kind
from flowbook.replay.sources import load

TWINNED = (1, 3, 5, 7)  # sweep, block, iceberg, wall pulled


def fast_rows(ev: np.ndarray, res) -> list[tuple[int, ...]]:  # noqa: ANN001
    rows, conf = detect_rows(ev, res)
    assert np.all((conf >= 0) & (conf <= 1))
    return sorted(tuple(r) for r in rows.tolist() if r[1] in TWINNED)


@st.composite
def streams(draw: st.DrawFn) -> np.ndarray:
    rows: list[tuple[int, int, int, int, int, int]] = []
    t = 1_000_000_000

    def snapshot() -> None:
        rows.append((Kind.BOOK_CLEAR, 0, 0, t, 0, 0))
        lv = [(1, 1000 - j, draw(st.integers(1, 200))) for j in range(1, 6)]
        lv += [(-1, 1000 + j, draw(st.integers(1, 200))) for j in range(1, 6)]
        for n, (s, p, q) in enumerate(lv):
            rows.append((Kind.BOOK_SET, s, 1 | (12 if n == len(lv) - 1 else 0), t, p, q))

    snapshot()
    for _ in range(draw(st.integers(0, 120))):
        t += draw(st.sampled_from([0, 0, 1, 3, 20, 200, 2000])) * 1_000_000
        op = draw(st.sampled_from(["set", "set", "trade", "trade", "clear"]) if len(rows) > 5 else st.just("set"))
        if op == "clear" and draw(st.integers(0, 9)) == 0:
            snapshot()
            continue
        side = draw(st.sampled_from([1, -1]))
        p = 1000 + draw(st.integers(-8, 8))
        if op == "trade":
            rows.append((Kind.TRADE, side, 8, t, p, draw(st.integers(1, 120))))
        else:
            rows.append((Kind.BOOK_SET, side, 8, t, p, draw(st.sampled_from([0, 0, 5, 40, 150, 400]))))
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for n, (k, s, f, tt, p, q) in enumerate(rows):
        ev[n] = (k, s, f, 0, tt, tt, p, q, -1, -1, 0.0)
    return ev


INST = Instrument("test", "T", "1", "1")


@settings(max_examples=300, deadline=None)
@given(ev=streams(), tw=st.sampled_from([16, 1 << 10]), refills=st.integers(1, 3), levels=st.integers(2, 4))
def test_kernel_matches_twin_on_random_streams(ev: np.ndarray, tw: int, refills: int, levels: int) -> None:
    cfg = DetectorConfig(track_ticks=tw, sweep_min_levels=levels, sweep_min_notional=50_000,
                         block_min_notional=80_000, iceberg_min_refills=refills, iceberg_min_ratio=1.5,
                         iceberg_min_trade_mult=20, iceberg_window_ms=3000, wall_level_mult=20, wall_min_notional=1,
                         wall_max_dist_bps=50, wall_trade_window_ms=500)
    res = resolve(cfg, INST, Scale(trade_lots=2, level_lots=5, price_ticks=1000))
    assert fast_rows(ev, res) == sorted(ref_detect(ev, res))


CAPTURES = {"usdm-btc": ["usdm/btcusdt_20240808.gz"], "usdm-eth": ["usdm/ethusdt_20240808.gz"],
            "spot-btc": ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"]}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_real_capture_kernel_matches_twin(name: str, data_dir: Path) -> None:
    loaded = load([data_dir / "hftbacktest" / p for p in CAPTURES[name]], None, False)
    ev, inst = loaded.events, loaded.instruments[0]
    assert len(loaded.instruments) == 1
    res = resolve(DetectorConfig(), inst, Scale.from_events(ev))
    fast = fast_rows(ev, res)
    assert fast == sorted(ref_detect(ev, res))
    rows, conf = detect_rows(ev, res)
    c = counts(to_detections(rows, conf, res))
    print(f"\n{name}: {c}")
    assert c["sweep"] > 0 and c["block_trade"] > 0 and c["hft_burst"] > 0
    assert c["liquidation_cascade"] == 0  # the captures hold no liquidation stream
    assert np.all(np.diff(rows[:, 0][rows[:, 1] == 3]) >= 0)  # blocks in time order
