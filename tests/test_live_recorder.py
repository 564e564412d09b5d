"""The recorder: flowbook's raw format, one file set per venue and symbol, rotation with a snapshot in
every file, every completed line readable after ``kill -9``, and ``flowbook replay`` reading it all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from flowbook.book import L2Book
from flowbook.cli import main as flowbook_main
from flowbook.live import LiveRunner, Recorder
from flowbook.replay.raw import iter_frames
from flowbook.replay.sources import load
from flowbook.testing import write_recording
from flowbook.testing.simulator import BinanceSimulator, FaultPlan
from flowbook.venues.binance.live import LiveConfig

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
HOUR = 3_600_000_000_000


def test_lines_go_to_one_file_per_symbol_and_hour(tmp_path: Path) -> None:
    new_files: list[tuple[str, str]] = []
    rec = Recorder(tmp_path, "binance-usdm", on_new_file=lambda s, p: new_files.append((s, p.name)))
    t0 = 1_723_161_255_000_000_000  # 2024-08-08 23:54:15 UTC
    for i in range(8):  # 23:54:15 to 01:39:15
        rec.write("BTCUSDT", t0 + i * HOUR // 4, b'{"stream":"btcusdt@trade","data":{"i":%d}}' % i)
        rec.write("ETHUSDT", t0 + i * HOUR // 4, b'{"lastUpdateId":1,\n"bids":[],"asks":[]}')
    rec.write("BTCUSDT", t0 + HOUR // 8, b'{"late":1}')  # an earlier time never reopens an old file
    rec.close()
    btc = sorted((tmp_path / "binance-usdm" / "BTCUSDT").glob("*.gz"))
    assert [p.name for p in btc] == ["btcusdt_20240808_23.gz", "btcusdt_20240809_00.gz", "btcusdt_20240809_01.gz"]
    assert ("BTCUSDT", "btcusdt_20240809_00.gz") in new_files and len(new_files) == 4  # not for the first files
    frames = list(iter_frames(btc))
    assert [f.ts_local for f in frames[:3]] == [t0 + i * HOUR // 4 for i in range(3)]
    assert len(frames) == 9 and frames[-1].payload == b'{"late":1}'
    eth = list(iter_frames(sorted((tmp_path / "binance-usdm" / "ETHUSDT").glob("*.gz"))))
    assert all(b"\n" not in f.payload for f in eth) and len(eth) == 8
    # a second recorder in the same hour never appends to a file a killed run may have torn
    rec2 = Recorder(tmp_path, "binance-usdm")
    rec2.write("BTCUSDT", t0 + 7 * HOUR // 4, b"{}")
    rec2.close()
    assert (tmp_path / "binance-usdm" / "BTCUSDT" / "btcusdt_20240809_01.1.gz").exists()


_KILLED = textwrap.dedent("""
    import sys
    from flowbook.live import Recorder
    rec = Recorder(sys.argv[1], "binance", flush_interval=0.0, fsync_interval=3600)
    t = 1_723_161_255_000_000_000
    n = 0
    while True:
        for _ in range(50):
            n += 1
            rec.write("BTCUSDT", t + n, b'{"stream":"btcusdt@trade","data":{"n":%d}}' % n)
        rec.flush()
        print(n, flush=True)
""")


def test_every_completed_line_survives_kill_9(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    done = 0
    while done < 20_000:  # lines written and flushed, as reported by the writer
        done = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    errors: list[str] = []
    files = sorted(tmp_path.rglob("*.gz"))
    frames = list(iter_frames(files, errors))
    assert len(frames) >= done
    assert [int(f.payload.split(b'"n":')[1].rstrip(b"}")) for f in frames] == list(range(1, len(frames) + 1))
    assert len(errors) <= 1  # at most one torn last member, reported


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("rec_src")
    out = []
    for seed, sym in enumerate(SYMBOLS, 21):
        p = d / f"{sym.lower()}.gz"
        write_recording(p, 8000, seed, symbol=sym)
        out.append(p)
    return out


async def _record(paths: list[Path], out: Path, plan: FaultPlan) -> tuple[BinanceSimulator, LiveRunner]:
    async with BinanceSimulator(paths, speed=8.0, faults=plan, min_streams=10) as sim:
        cfg = LiveConfig(ws_url=sim.ws_url, rest_url=sim.url, weight_budget=1e9, resync_idle=0.2)
        # books-free, like `flowbook record`; a new file every 300 ms of receive time
        runner = LiveRunner(venue="binance-usdm", symbols=SYMBOLS, config=cfg, compute_features=False,
                            record=out, recorder_options={"rotate_ns": 300_000_000})
        await runner.start()
        try:
            await asyncio.wait_for(sim.done.wait(), 60)
            # stop once synced with no snapshot on its way (a file cut before its snapshot arrived
            # would need the previous file to replay)
            while not all(runner.adapter.synced(s) for s in SYMBOLS) or runner.adapter.snapshots_in_flight:
                await asyncio.sleep(0.02)
        finally:
            await runner.stop()
    return sim, runner


def test_recording_replays_to_the_truth_and_every_file_replays_alone(recordings: list[Path], tmp_path: Path) -> None:
    from flowbook.testing.simulator import load_source

    depth = load_source(recordings).indices("depth", "AAAUSDT")
    plan = FaultPlan().at(depth[300], "drop")  # a gap and a resync inside the recording
    sim, runner = asyncio.run(_record(recordings, tmp_path / "rec", plan))
    root = tmp_path / "rec" / "binance-usdm"
    for sym in SYMBOLS:
        files = sorted((root / sym).glob("*.gz"))
        assert len(files) >= 2, "rotated"
        loaded = load(files, None, strict=False)
        assert [i.symbol for i in loaded.instruments] == [sym]
        book = L2Book(window=1 << 16)
        ev = loaded.events
        for seg in np.split(ev, np.flatnonzero(ev["kind"] == 2)):  # BOOK_CLEAR starts a new book
            if len(seg) and seg["kind"][0] == 2:
                book.clear()
            book.apply(seg)
        for side in (1, -1):
            assert book.levels(side, 2000) == sim.truth.levels(sym, side, 2000), (sym, side)
        assert loaded.stats["gaps"] == runner.adapter.stats[sym].gaps
        for k, f in enumerate(files):  # a fresh snapshot was fetched for every new file
            alone = load([f], None, strict=False)
            if k == 0 and alone.stats["snapshots"] == 0:
                # the session's first file can end before the first snapshot comes back (a 300 ms
                # file on a loaded machine): it then holds only diffs received before that snapshot,
                # and the next file starts the book
                assert load([files[1]], None, strict=False).stats["snapshots"] >= 1, files[1].name
                continue
            assert alone.stats["snapshots"] - alone.stats["snapshots_unused"] >= 1, f.name
            assert alone.stats["diffs_applied"] > 0, f.name
    # the command line reads them with no options
    files = [str(p) for p in sorted(root.rglob("*.gz"))]
    assert flowbook_main(["replay", *files, "--out", str(tmp_path / "f.parquet"), "--quiet", "--no-archive"]) == 0
    assert os.path.getsize(tmp_path / "f.parquet") > 0
