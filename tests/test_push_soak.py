"""Soak of the push transport: 24 synthetic Bybit symbols over two simulated hours at accelerated speed,
with a few hundred faults (drops, corrupt frames, broken chains, disconnects) so that resubscriptions and
reconnects happen all along.  After warm-up the process memory stays flat and every per-symbol structure
stays within its bound (queue, due resubscriptions, requests awaiting answers, pending events, trade-id
windows, issue lists, conversion caches)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

import flowbook.events.instrument as instrument
from flowbook.live import LiveRunner
from flowbook.testing.simulator.bybit import BybitRenderer
from flowbook.testing.simulator.check import grid_cache_max, memory_after_warmup, sample_memory
from flowbook.testing.simulator.push import PushSimulator
from flowbook.testing.simulator.pushcheck import differences, live_config, wait_books
from flowbook.testing.simulator.pushtruth import PushFaultPlan, PushMarket

N_SYMBOLS = 24
SIM_SECONDS = 2 * 3600.0
SPEED = 300.0  # 2 h in 24 s
DEPTH = 50


def _sizes(runner: LiveRunner) -> dict[str, int]:
    """The sizes of everything that could grow with time."""
    a, feed = runner.adapter, runner.adapter.feed
    syms = feed.symbols.values()
    return {
        "grid_cache_max": grid_cache_max(syms),
        "queue": a.queue_depth,
        "due": len(a._due),
        "awaiting_answers": sum(len(c.pending) for c in a.connections),
        "pending": sum(len(s.pending) + len(s.seen_prices) for s in syms),
        "trade_ids_max": max((len(ids._order) for ids in feed._trade_ids.values()), default=0),
        "feed_issues": len(feed.stats.issues),
        "msg_index": len(feed.depth_msg_end) + len(feed.depth_msg_where),
        "tickers": len(feed.tickers),
    }


@pytest.fixture(scope="module")
def market() -> PushMarket:
    """Synthetic markets whose steps are stretched to span two hours."""
    m = PushMarket.synthetic([f"S{i:02d}USDT" for i in range(N_SYMBOLS)], 12_000, seed=11)
    t0, span = m.steps[0].ts, m.steps[-1].ts - m.steps[0].ts
    k = SIM_SECONDS * 1e9 / span
    m.steps = [replace(st, ts=t0 + int((st.ts - t0) * k)) for st in m.steps]
    return m


def test_push_transport_memory_is_flat_over_simulated_hours(market: PushMarket,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instrument, "CACHE_SIZE", 1024)  # filled many times over: the bound at work
    plan = PushFaultPlan.random(market.indices("book"), 300, seed=5, downtime=5)
    samples: list[tuple[float, float, dict[str, int]]] = []
    symbols = sorted(market.instruments)

    async def go() -> tuple[LiveRunner, PushSimulator, list[str]]:
        async with PushSimulator(market, BybitRenderer(), speed=SPEED, faults=plan, min_books=N_SYMBOLS) as sim:
            runner = LiveRunner(venue="bybit-linear", symbols=symbols,
                                config=live_config(sim.ws_url("/v5/public/linear"), queue_size=20_000))
            await runner.start()
            try:
                n = len(market.steps)
                samples.extend(await sample_memory(sim, runner, n, _sizes))
                diffs = await wait_books(runner, sim, DEPTH, timeout=30)
            finally:
                await runner.stop()
        return runner, sim, diffs

    t = time.monotonic()
    runner, sim, diffs = asyncio.run(go())
    wall = time.monotonic() - t
    warm, rss, growth, late = memory_after_warmup(samples)
    assert len(warm) >= 10, f"too few samples after warm-up ({len(samples)} in {wall:.0f} s)"
    st = runner.adapter.stats
    print(f"push soak: {wall:.1f} s wall, {sim.position:,} steps, {sum(plan.applied.values())} faults, "
          f"{sum(s.resyncs for s in st.values())} resyncs, RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB "
          f"(max {max(rss):.0f}), sizes at end {warm[-1][2]}")
    assert growth < 25.0 and late < 6.0, f"RSS grew {growth:.1f} MB after warm-up, {late:.1f} MB in the second half: {rss}"
    for _, _, sz in warm:
        assert sz["grid_cache_max"] <= 1024 and sz["feed_issues"] <= 1000 and sz["msg_index"] == 0
        assert sz["trade_ids_max"] <= 4096 and sz["tickers"] <= N_SYMBOLS
        assert sz["due"] <= N_SYMBOLS and sz["awaiting_answers"] <= 4 * N_SYMBOLS and sz["pending"] <= 10_000
    assert sum(plan.applied.values()) >= 250 and sum(s.resyncs for s in st.values()) >= 50
    assert diffs == [] and not differences(runner, sim, DEPTH)  # every book ends equal to the truth
    assert runner.adapter.internal_errors == 0
