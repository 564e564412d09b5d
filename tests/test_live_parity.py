"""Live equals replay (spot, USD-M, COIN-M): features computed live against the simulator replaying a real
recording equal the features ``flowbook replay`` computes from that recording, and replaying what the live
session recorded gives back every live row exactly (same code path, same order, same times)."""

from __future__ import annotations

import asyncio
import gzip
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowbook.features import FEATURE_COLUMNS
from flowbook.live import FeatureSnapshot, LiveRunner
from flowbook.replay.run import replay
from flowbook.testing.simulator import BinanceSimulator, wait_caught_up
from flowbook.venues.binance.live import LiveConfig

CASES = {  # venue, recording, symbol, lines kept
    "spot": ("binance", "hftbacktest/spot/btcusdt_20240808.gz", "BTCUSDT", 9000),
    "usdm": ("binance-usdm", "hftbacktest/usdm/ethusdt_20240808.gz", "ETHUSDT", 9000),
    "coinm": ("binance-coinm", "hftbacktest/cm/btcusd_perp_20240808.gz", "BTCUSD_PERP", 9000),
}


def _head(src: Path, dst: Path, lines: int) -> Path:
    with gzip.open(src, "rb") as fi, gzip.open(dst, "wb", compresslevel=1) as fo:
        for n, line in enumerate(fi):
            if n >= lines:
                break
            fo.write(line)
    return dst


async def _live(path: Path, venue: str, symbol: str, record: Path) -> list[FeatureSnapshot]:
    streams = 3 if venue == "binance" else 5
    async with BinanceSimulator([path], speed=math.inf, min_streams=streams) as sim:
        # one connection, as the recording was made (USD-M's routed paths would interleave trades and
        # depth differently from the recording); a queue that never fills
        cfg = LiveConfig(ws_url=sim.ws_url, rest_url=sim.url, route_streams=False, queue_size=10**7,
                         weight_budget=1e9, resync_idle=0.2)
        runner = LiveRunner(venue=venue, symbols=[symbol], config=cfg, record=record)
        rows: list[FeatureSnapshot] = []
        runner.on_features(rows.append)
        await runner.start()
        try:
            await wait_caught_up(runner, sim, timeout=60)
        finally:
            await runner.stop()
        st = runner.adapter.stats[symbol]
        assert (st.gaps, st.resyncs, st.dropped, st.bad, st.snapshots) == (0, 0, 0, 0, 1)
    return rows


def _frame(rows: list[FeatureSnapshot]) -> pl.DataFrame:
    cols: dict[str, object] = {
        "ts_local": [r.ts_local for r in rows], "update_id": [r.update_id for r in rows],
    }
    for c in FEATURE_COLUMNS:
        cols[c] = [r.values[c] for r in rows]
    return pl.DataFrame(cols)


def _same(a: pl.DataFrame, b: pl.DataFrame, columns: list[str]) -> list[str]:
    bad = []
    for c in columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        eq = (x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x == y
        if not eq.all():
            k = int(np.flatnonzero(~eq)[0])
            bad.append(f"{c}: row {k} live {x[k]} vs replay {y[k]}")
    return bad


@pytest.mark.parametrize("case", sorted(CASES))
def test_live_features_equal_replay_features(data_dir: Path, tmp_path: Path, case: str) -> None:
    venue, rel, symbol, lines = CASES[case]
    path = _head(data_dir / rel, tmp_path / Path(rel).name, lines)
    rows = asyncio.run(_live(path, venue, symbol, tmp_path / "rec"))
    live = _frame(rows)
    assert live.height > 500

    # 1. against the source recording: the rows of diffs that arrived after the live snapshot, from the
    #    second on (diffs buffered before the snapshot come after all trades up to it, so they and the
    #    interval columns - buy/sell volume, trade count - of the next row differ by construction)
    out = tmp_path / "source.parquet"
    replay([path], out, use_archive=False, strict=True)
    ref = pl.read_parquet(out).filter(pl.col("symbol") == symbol)
    after = live.filter(pl.col("ts_local") > live["ts_local"][0]).slice(1)
    joined = after.join(ref, on="update_id", how="inner", suffix="_replay")
    assert joined.height == after.height > 400, "every live row has a replay row for the same update id"
    mine = joined.select(FEATURE_COLUMNS)
    theirs = joined.select([f"{c}_replay" for c in FEATURE_COLUMNS]).rename(
        {f"{c}_replay": c for c in FEATURE_COLUMNS})
    assert _same(mine, theirs, FEATURE_COLUMNS) == []

    # 2. against the live session's own recording, read by replay with no options: every row, exactly
    files = sorted((tmp_path / "rec").rglob("*.gz"))
    assert files and all(f.parent.name == symbol for f in files)
    out2 = tmp_path / "recorded.parquet"
    replay(files, out2, use_archive=False, strict=True)
    rec = pl.read_parquet(out2)
    assert rec.height == live.height
    assert _same(live, rec, ["ts_local", "update_id", *FEATURE_COLUMNS]) == []
