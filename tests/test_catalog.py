"""The feature catalog (``replay --features``): point-in-time columns, the detections file, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowbook.detectors import counts, detect
from flowbook.events import Kind
from flowbook.features import catalog
from flowbook.replay.sources import load
from flowbook.testing import write_recording

USDM = "hftbacktest/usdm/btcusdt_20240808.gz"
GROUPS = ["profile", "vpin", "cost", "micro", "liquidity", "futures"]


@pytest.fixture(scope="module")
def usdm(data_dir: Path) -> tuple[np.ndarray, object]:
    loaded = load([data_dir / USDM], None, False)
    return loaded.events, loaded.instruments[0]


def test_columns_are_point_in_time(usdm) -> None:  # noqa: ANN001
    ev, inst = usdm
    t0, t1 = int(ev["ts_local"][ev["ts_local"] > 0].min()), int(ev["ts_local"].max())
    step = 1_000_000_000
    # whole seconds, so the book-walk grid of a one-sample run is that sample itself
    samples = (np.linspace(t0 + (t1 - t0) * 0.3, t1, 6).astype(np.int64) // step) * step
    full = catalog.columns(GROUPS, ev, inst, samples)
    assert {"profile_poc", "vpin", "cost_buy_bps"} <= set(full)
    assert np.isfinite(full["profile_poc"]).all() and np.isfinite(full["cost_buy_bps"]).all()
    for j, t in enumerate(samples.tolist()):
        cut = ev[ev["ts_local"] <= t]  # only what was known at t
        # the samples up to t as well: the liquidity score's references are medians over past samples
        part = catalog.columns(GROUPS, cut, inst, samples[: j + 1])
        for name, col in full.items():
            np.testing.assert_equal(part[name][-1], col[j], err_msg=f"{name} at sample {j}")
    trades = ev[ev["kind"] == Kind.TRADE]
    px = float(inst.tick_size)
    assert trades["price"].min() * px <= full["profile_poc"].min() <= full["profile_poc"].max() <= \
        trades["price"].max() * px
    v = full["vpin"][np.isfinite(full["vpin"])]
    assert len(v) and ((v >= 0) & (v <= 1)).all()
    assert (full["cost_buy_bps"] >= 0).all() and (full["cost_sell_bps"] >= 0).all()


def test_replay_features_all_on_the_real_capture(data_dir: Path, usdm, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "f.parquet"
    r = subprocess.run([sys.executable, "-m", "flowbook.cli", "replay", str(data_dir / USDM), "--out", str(out),
                        "--features", "all", "--quiet", "--no-archive"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    core = pl.read_parquet(out).columns
    df = pl.read_parquet(out)
    assert {"mid", "profile_poc", "profile_vah", "vpin", "cost_sell_bps"} <= set(core)
    assert df.height == 6548
    det = pl.read_parquet(out.with_name("f.detections.parquet"))
    ev, inst = usdm
    want = counts(detect(ev, inst))
    got = dict(det.group_by("detector").len().iter_rows())
    assert {k: v for k, v in want.items() if v} == got
    assert f"{det.height:,} detector events" in r.stdout


def test_unknown_group_is_one_line(tmp_path: Path) -> None:
    rec = tmp_path / "x.gz"
    write_recording(rec, 2000, 5, symbol="XUSDT")
    r = subprocess.run([sys.executable, "-m", "flowbook.cli", "replay", str(rec), "--out", str(tmp_path / "f.parquet"),
                        "--features", "profile,nope"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown feature group(s) nope" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert catalog.resolve_groups("core") == [] and "detectors" in catalog.resolve_groups("all")


def test_detections_reach_both_stores(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    from flowbook.replay import replay
    from flowbook.store import open_store

    rec = tmp_path / "d.gz"
    write_recording(rec, 60_000, 11, symbol="DDDUSDT")
    for uri in (f"parquet:{tmp_path / 'store'}", f"{pg_dsn}?schema={pg_schema}"):
        s = replay([rec], tmp_path / "f.parquet", store=uri, groups=["detectors"])
        det = pl.read_parquet(tmp_path / "f.detections.parquet")
        assert s.detections == det.height > 0 and s.stored["detector_events"] == det.height
        st = open_store(uri)
        got = st.query("SELECT detector, count(*) AS n, sum(qty) AS q FROM detector_events GROUP BY 1 ORDER BY 1")
        want = det.group_by("detector").agg(pl.len().alias("n"), pl.col("volume").sum().alias("q")).sort("detector")
        assert got["detector"].to_list() == want["detector"].to_list()
        assert got["n"].to_list() == want["n"].to_list()
        np.testing.assert_allclose([float(x) for x in got["q"].to_list()], want["q"].to_list(), rtol=1e-12)
        again = replay([rec], tmp_path / "f.parquet", store=uri, groups=["detectors"])
        assert again.stored["detector_events"] == 0  # a second run adds nothing
        if hasattr(st, "close"):
            st.close()
