"""Soak: 40 synthetic USD-M symbols over two simulated hours at accelerated speed (about 30 s of wall
time): after warm-up the process memory stays flat and every internal per-symbol structure stays within
its bound (DecimalGrid caches, queues, sequencer buffers, pending frames, trade-id holes, issue lists)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

import flowbook.events.instrument as instrument
from flowbook.live import LiveRunner
from flowbook.testing import write_recording
from flowbook.testing.simulator import BinanceSimulator, SimSource, load_source
from flowbook.testing.simulator.check import grid_cache_max, memory_after_warmup, sample_memory
from flowbook.venues.binance.live import LiveConfig

N_SYMBOLS = 40
SIM_SECONDS = 2 * 3600.0
SPEED = 300.0  # 2 h in 24 s


def _sizes(runner: LiveRunner) -> dict[str, int]:
    """The sizes of everything per symbol that could grow with time."""
    a, feed = runner.adapter, runner.adapter.feed
    syms = feed.symbols.values()
    return {
        "grid_cache_max": grid_cache_max(syms),
        "queue": a.queue_depth,
        "control": len(a._control),
        "seq_buffer": sum(len(s.seq._buffer) for s in syms if s.seq is not None),
        "seq_issues": max((len(s.seq.issues) for s in syms if s.seq is not None), default=0),
        "pending": sum(len(s.pending) + len(s.seen_prices) for s in syms),
        "trade_holes": sum(len(t.holes) for s in syms for t in s.trade_ids.values()),
        "feed_issues": len(feed.stats.issues),
        "msg_index": len(feed.depth_msg_end) + len(feed.depth_msg_where),
        "rows_buffer": len(feed._rows),
        "names": sum(len(c.names) for c in a.connections),
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> SimSource:
    """40 symbols, each message stretched in time so that the recordings span two hours."""
    d = tmp_path_factory.mktemp("soak")
    paths = []
    for i in range(N_SYMBOLS):
        p = d / f"s{i:02d}usdt.gz"
        write_recording(p, 16_000, 100 + i, symbol=f"S{i:02d}USDT")
        paths.append(p)
    src = load_source(paths)
    t0 = src.frames[0].ts
    span = max(f.ts for f in src.frames) - t0
    k = SIM_SECONDS * 1e9 / span
    frames = tuple(sorted((replace(f, ts=t0 + int((f.ts - t0) * k)) for f in src.frames), key=lambda f: f.ts))
    return SimSource(frames, src.symbols, src.futures, src.market)


def test_memory_is_flat_over_simulated_hours(source: SimSource, monkeypatch: pytest.MonkeyPatch) -> None:
    # a smaller DecimalGrid cache, so that two simulated hours fill it many times over (the bound at work)
    monkeypatch.setattr(instrument, "CACHE_SIZE", 1024)
    samples: list[tuple[float, float, dict[str, int]]] = []

    async def go() -> tuple[LiveRunner, BinanceSimulator]:
        async with BinanceSimulator(source, speed=SPEED, min_streams=N_SYMBOLS * 5, ticker_every_ms=60_000) as sim:
            cfg = LiveConfig(ws_url=sim.ws_url, rest_url=sim.url, weight_budget=1e9, resync_idle=0.5,
                             open_interest_interval=0.5, queue_size=20_000)
            runner = LiveRunner(venue="binance-usdm", symbols=list(source.symbols), config=cfg)
            await runner.start()
            try:
                n = len(source.broadcast())
                samples.extend(await sample_memory(sim, runner, n, _sizes))
            finally:
                await runner.stop()
        return runner, sim

    t = time.monotonic()
    runner, sim = asyncio.run(go())
    wall = time.monotonic() - t
    warm, rss, growth, late = memory_after_warmup(samples)
    assert len(warm) >= 10, f"too few samples after warm-up ({len(samples)} in {wall:.0f} s)"
    print(f"soak: {wall:.1f} s wall, {sim.position:,} frames, RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB "
          f"(max {max(rss):.0f}), sizes at end {warm[-1][2]}")
    assert growth < 25.0 and late < 6.0, f"RSS grew {growth:.1f} MB after warm-up, {late:.1f} MB in the second half: {rss}"
    for _, _, sz in warm:
        assert sz["grid_cache_max"] <= 1024
        assert sz["seq_issues"] <= 1000 and sz["feed_issues"] <= 1000
        assert sz["msg_index"] == 0 and sz["rows_buffer"] == 0
        assert sz["trade_holes"] <= N_SYMBOLS * 2 * 4096
        assert sz["names"] <= N_SYMBOLS * 6
    st = runner.status()
    assert all(s.rows > 1000 for s in st.values()), "every symbol computed features all along"
    assert runner.adapter.internal_errors == 0
