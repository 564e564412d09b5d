"""``flowbook vectors``: versioned model vectors of a recording into Parquet, and its one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from flowbook.features.vectors import SCHEMAS, build, read_schema, sample_grid
from flowbook.replay.sources import load
from flowbook.testing import write_recording


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowbook.cli", "vectors", *argv], capture_output=True, text=True,
                          timeout=600)


def test_vectors_of_a_synthetic_recording(tmp_path: Path) -> None:
    rec = tmp_path / "v.gz"
    write_recording(rec, 30_000, 9, symbol="VVVUSDT")
    out = tmp_path / "v.parquet"
    r = _cli(str(rec), "--out", str(out), "--vector", "state_v1", "--every", "500ms")
    assert r.returncode == 0, r.stderr
    schema = read_schema(out)
    assert schema == SCHEMAS["state_v1"] and schema.hash in r.stdout
    df = pl.read_parquet(out)
    loaded = load([rec], None, False)
    ts = sample_grid(loaded.events, 500_000_000)
    want = build("state_v1", loaded.events, loaded.instruments[0], ts)
    assert df.height == len(ts) > 10 and df["ts"].to_list() == ts.tolist()
    got = df.select(schema.names).to_numpy()
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert np.isfinite(got).all() and set(df["symbol"]) == {"VVVUSDT"}


def test_two_symbols_merged_by_time(data_dir: Path, tmp_path: Path) -> None:
    files = sorted((data_dir / "hftbacktest" / "usdm").glob("*_20240808.gz"))
    out = tmp_path / "b.parquet"
    r = _cli(*map(str, files), "--out", str(out), "--vector", "book_v1")
    assert r.returncode == 0, r.stderr
    df = pl.read_parquet(out)
    assert set(df["symbol"]) == {"BTCUSDT", "ETHUSDT"} and df["ts"].is_sorted()
    assert df.width == 2 + SCHEMAS["book_v1"].width
    one = _cli(*map(str, files), "--out", str(tmp_path / "e.parquet"), "--vector", "book_v1", "--symbol", "ethusdt")
    assert one.returncode == 0, one.stderr
    eth = pl.read_parquet(tmp_path / "e.parquet")
    assert eth.drop("symbol").equals(df.filter(pl.col("symbol") == "ETHUSDT").drop("symbol"))


def test_errors_are_one_line(tmp_path: Path) -> None:
    rec = tmp_path / "x.gz"
    write_recording(rec, 2_000, 3, symbol="XXXUSDT")
    for argv, text in (([str(tmp_path / "none.gz")], "no such recording"),
                       ([str(rec), "--symbol", "NOPE"], "symbol 'NOPE' not in the recording")):
        r = _cli(*argv, "--out", str(tmp_path / "o.parquet"))
        assert r.returncode == 2 and text in r.stderr and r.stderr.count("\n") == 1, r.stderr
