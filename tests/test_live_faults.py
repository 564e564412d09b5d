"""Each fault kind, injected by the simulator on real sockets: after recovery the live book equals the
truth at every level of its trusted range, every feature row the client emitted matches the truth's row
for the same update id, the client never crashed, and the recovery is counted."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from flowbook.events import Kind
from flowbook.live import FeatureSnapshot, LiveRunner
from flowbook.testing import write_recording
from flowbook.testing.simulator import (
    BinanceSimulator,
    FaultPlan,
    RestFault,
    book_differences,
    row_differences,
    wait_caught_up,
)
from flowbook.venues.binance.live import LiveConfig

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
STREAMS = 2 * 5  # the broadcast starts with 5 of each symbol's 6 streams (depth, trade, bookTicker, ticker, ...)


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    """Load the compiled kernels before any clock starts."""
    from flowbook.features import FeatureEngine
    from flowbook.testing import synthetic_events

    ev, inst = synthetic_events(200, 1)
    FeatureEngine(inst).process(ev)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("faults")
    out = []
    for seed, sym in enumerate(SYMBOLS, 1):
        p = d / f"{sym.lower()}.gz"
        write_recording(p, 6000, seed, symbol=sym)
        out.append(p)
    return out


def _config(sim: BinanceSimulator, **kw: object) -> LiveConfig:
    base = dict(ws_url=sim.ws_url, rest_url=sim.url, weight_budget=1e9, reconnect_base=0.02,
                reconnect_cap=0.2, resync_idle=0.2)
    base.update(kw)
    return LiveConfig(**base)  # type: ignore[arg-type]


async def _session(paths: list[Path], plan: FaultPlan, *, speed: float = 8.0,
                   during: Callable[[BinanceSimulator, LiveRunner], object] | None = None,
                   setup: Callable[[LiveRunner], None] | None = None,
                   sim_kw: dict | None = None, cfg_kw: dict | None = None) -> tuple[LiveRunner, BinanceSimulator,
                                                                                  list[FeatureSnapshot]]:
    async with BinanceSimulator(paths, speed=speed, faults=plan, min_streams=STREAMS, keep_truth_rows=True,
                                **(sim_kw or {})) as sim:
        runner = LiveRunner(venue="binance-usdm", symbols=SYMBOLS, config=_config(sim, **(cfg_kw or {})))
        rows: list[FeatureSnapshot] = []
        runner.on_features(rows.append)
        if setup is not None:
            setup(runner)
        await runner.start()
        try:
            if during is not None:
                r = during(sim, runner)
                if asyncio.iscoroutine(r):
                    await r
            await wait_caught_up(runner, sim)
        finally:
            await runner.stop()
    return runner, sim, rows


def _check(runner: LiveRunner, sim: BinanceSimulator, rows: list[FeatureSnapshot], min_rows: int = 100) -> None:
    assert sim.faults.pending == 0, "every scripted fault was injected"
    assert runner.adapter.internal_errors == 0
    assert book_differences(runner, sim) == []
    assert row_differences(rows, sim) == []
    assert len(rows) >= min_rows


async def _synced(sim: BinanceSimulator, runner: LiveRunner) -> None:
    while not all(runner.adapter.synced(s) for s in SYMBOLS):
        assert not sim.done.is_set(), "the recording ended before the client synced"
        await asyncio.sleep(0.005)


def _after_sync(kind: str, offsets: list[int], symbol: str = "AAAUSDT"):  # noqa: ANN202
    """Inject ``kind`` on the depth frames of ``symbol`` that come ``offsets`` diffs after the client
    synced (stream positions, so the faults hit a synced book whatever the machine's speed)."""

    async def during(sim: BinanceSimulator, runner: LiveRunner) -> None:
        await _synced(sim, runner)
        depth = [i for i in sim.source.indices("depth", symbol) if i > sim.position + 2 * sim.chunk]
        assert len(depth) > max(offsets), "recording too short for the scripted faults"
        for k in offsets:
            sim.faults.at(depth[k], kind)

    return during


def test_duplicated_diffs_and_trades_are_dropped_without_a_resync(recordings: list[Path]) -> None:
    """A repeated frame (the same diff, the same trade) changes nothing: counted, no gap, no resync."""
    async def during(sim: BinanceSimulator, runner: LiveRunner) -> None:
        await _synced(sim, runner)
        depth = [i for i in sim.source.indices("depth", "AAAUSDT") if i > sim.position + 2 * sim.chunk]
        trades = [i for i in sim.source.indices("trade", "AAAUSDT") if i > sim.position + 2 * sim.chunk]
        for i in (depth[10], depth[120], trades[5], trades[50]):
            sim.faults.at(i, "duplicate")

    runner, sim, rows = asyncio.run(_session(recordings, FaultPlan(), during=during))
    _check(runner, sim, rows)
    a = runner.adapter.stats["AAAUSDT"]
    assert (a.gaps, a.resyncs, a.snapshots, a.duplicates) == (0, 0, 1, 4)
    feed = runner.adapter.feed.stats
    assert (feed.diffs_duplicate, feed.trades_duplicate) == (2, 2)
    assert runner.status()["AAAUSDT"].duplicates == 4


@pytest.mark.parametrize("kind", ["drop", "reorder"])
def test_stream_fault_resyncs_that_symbol_only(recordings: list[Path], kind: str) -> None:
    runner, sim, rows = asyncio.run(_session(recordings, FaultPlan(), during=_after_sync(kind, [10, 120])))
    _check(runner, sim, rows)
    a, b = runner.adapter.stats["AAAUSDT"], runner.adapter.stats["BBBUSDT"]
    assert a.gaps >= 1 and a.resyncs >= 1 and a.snapshots >= 2
    assert (b.gaps, b.resyncs, b.snapshots) == (0, 0, 1), "the other symbol is never touched"


def test_corrupt_json_forces_a_resync(recordings: list[Path]) -> None:
    runner, sim, rows = asyncio.run(_session(recordings, FaultPlan(),
                                             during=_after_sync("corrupt", [10, 120], symbol="BBBUSDT")))
    _check(runner, sim, rows)
    b = runner.adapter.stats["BBBUSDT"]
    # each corrupt frame forces one resync; on a loaded machine a recovering snapshot can also be
    # overtaken by the stream, which is a counted gap and one more resync, never a wrong book
    assert b.bad == 2 and b.forced_resyncs == 2 and b.resyncs >= b.forced_resyncs
    assert runner.adapter.stats["AAAUSDT"].resyncs == 0


@pytest.mark.parametrize("kind", ["disconnect", "restart"])
def test_disconnect_and_server_restart_reconnect_and_resync(recordings: list[Path], kind: str) -> None:
    runner, sim, rows = asyncio.run(_session(recordings, FaultPlan(downtime=30), during=_after_sync(kind, [10])))
    _check(runner, sim, rows)
    assert sum(c.reconnects for c in runner.adapter.connections) >= 2  # both routes' sockets
    assert sim.stats["disconnects" if kind == "disconnect" else "restarts"] == 1
    for s in SYMBOLS:  # frames were broadcast while nobody could connect: each book resynced
        st = runner.adapter.stats[s]
        assert st.gaps >= 1 and st.resyncs >= 1


def test_snapshot_older_than_the_stream_is_refused_and_fetched_again(recordings: list[Path]) -> None:
    plan = FaultPlan()

    async def during(sim: BinanceSimulator, runner: LiveRunner) -> None:
        await _synced(sim, runner)
        # the next resync of AAAUSDT is first answered with a snapshot ~200 diffs old
        # (after its 300th diff, so the simulator keeps snapshots from well before the drop)
        depth = [i for i in sim.source.indices("depth", "AAAUSDT")[300:] if i > sim.position + 2 * sim.chunk]
        plan.on_rest(RestFault("stale", symbol="AAAUSDT"))
        plan.at(depth[0], "drop")

    runner, sim, rows = asyncio.run(_session(recordings, plan, during=during))
    _check(runner, sim, rows)
    a = runner.adapter.stats["AAAUSDT"]
    assert sim.stats["snapshots_stale"] == 1
    assert a.stale_snapshots == 1 and a.resyncs >= 1


@pytest.mark.parametrize("fault", [RestFault("error", status=503), RestFault("error", status=500),
                                   RestFault("rate_limit", retry_after=0.3), RestFault("delay", delay=0.3)])
def test_failing_or_slow_rest_still_syncs(recordings: list[Path], fault: RestFault) -> None:
    times = 2 if fault.kind == "delay" else 3  # the first answers of the two symbols (and one retry)
    plan = FaultPlan().on_rest(fault, times=times)
    runner, sim, rows = asyncio.run(_session(recordings, plan))
    _check(runner, sim, rows)
    errors = sum(runner.adapter.stats[s].rest_errors for s in SYMBOLS)
    assert errors == (0 if fault.kind == "delay" else 3)
    if fault.kind == "rate_limit":  # Retry-After stops every request of the venue, not just that one
        assert runner.adapter.rest is not None
        assert runner.adapter.rest.limiter._blocked_until > 0


def test_full_queue_drops_counts_and_resyncs(recordings: list[Path]) -> None:
    """The reader outruns the consumer (no pacing, a 32-frame queue): frames are dropped and counted,
    a dropped diff unsyncs its symbol, and the books still end equal to the truth."""
    runner, sim, rows = asyncio.run(_session(recordings, FaultPlan(), speed=math.inf,
                                             cfg_kw={"queue_size": 32}))
    _check(runner, sim, rows, min_rows=2)
    st = runner.adapter.stats
    assert all(s.dropped > 0 and s.dropped_depth > 0 for s in st.values())
    assert sum(s.forced_resyncs for s in st.values()) > 0


def test_client_answers_server_pings(recordings: list[Path]) -> None:
    runner, sim, rows = asyncio.run(_session(recordings, FaultPlan(), speed=10.0,
                                             sim_kw={"ping_interval": 0.05, "pong_timeout": 1.0}))
    _check(runner, sim, rows)
    assert sim.stats["pings"] > 0 and sim.stats["pongs"] > 0
    assert sim.stats["pong_timeouts"] == 0 and sim.stats["connections"] == 2


def test_futures_streams_are_routed_split_and_parsed(recordings: list[Path]) -> None:
    """Depth and book tickers on /public, trades, liquidations and mark prices on /market (a stream on the
    wrong path would be silent); at most 3 streams per connection here, so the symbols are split."""
    seen: list[str] = []
    counts: Counter[str] = Counter()

    async def during(sim: BinanceSimulator, runner: LiveRunner) -> None:
        while len(sim.subscriptions()) < STREAMS:
            await asyncio.sleep(0.01)
        seen.extend(f"{route}:{name}" for route, name in sim.subscriptions())

    def setup(runner: LiveRunner) -> None:
        runner.on_event(lambda sym, ev: counts.update([ev.kind.name]),
                        kinds=(Kind.LIQUIDATION, Kind.MARK_PRICE, Kind.FUNDING_RATE, Kind.TRADE))

    runner, sim, rows = asyncio.run(_session(
        recordings, FaultPlan(), during=during, setup=setup,
        sim_kw={"enforce_routes": True, "mark_price_every": 20, "liquidation_every": 5},
        cfg_kw={"max_streams_per_connection": 3, "ticker": False}))
    _check(runner, sim, rows)
    assert len(runner.adapter.connections) == 4  # /public: 2 streams x 2 symbols; /market: 3 x 2
    assert sorted(seen) == sorted(
        [f"public:{s}@depth@100ms" for s in ("aaausdt", "bbbusdt")]
        + [f"public:{s}@bookTicker" for s in ("aaausdt", "bbbusdt")]
        + [f"market:{s}@{k}" for s in ("aaausdt", "bbbusdt") for k in ("trade", "forceOrder", "markPrice@1s")])
    assert counts["LIQUIDATION"] > 0 and counts["TRADE"] > 0
    assert counts["MARK_PRICE"] > 0 and counts["FUNDING_RATE"] == counts["MARK_PRICE"]


def test_spot_capture_with_lost_diffs_resyncs_to_the_truth(data_dir: Path, tmp_path: Path) -> None:
    """Spot's rules (``U == u + 1`` chain, snapshot without ``E``/``T``) on a real capture."""
    import gzip

    src = data_dir / "hftbacktest/spot/btcusdt_20240808.gz"
    path = tmp_path / "btcusdt_20240808.gz"
    with gzip.open(src, "rb") as fi, gzip.open(path, "wb", compresslevel=1) as fo:
        for n, line in enumerate(fi):
            if n == 8000:
                break
            fo.write(line)

    async def go() -> tuple[LiveRunner, BinanceSimulator, list[FeatureSnapshot]]:
        async with BinanceSimulator([path], speed=40.0, min_streams=3, keep_truth_rows=True) as sim:
            runner = LiveRunner(venue="binance", symbols=["BTCUSDT"], config=_config(sim))
            rows: list[FeatureSnapshot] = []
            runner.on_features(rows.append)
            await runner.start()
            try:
                while not runner.adapter.synced("BTCUSDT"):
                    await asyncio.sleep(0.005)
                depth = [i for i in sim.source.indices("depth") if i > sim.position + 2 * sim.chunk]
                for k, kind in ((5, "drop"), (60, "reorder"), (120, "corrupt")):
                    sim.faults.at(depth[k], kind)
                await wait_caught_up(runner, sim)
            finally:
                await runner.stop()
        return runner, sim, rows

    runner, sim, rows = asyncio.run(go())
    _check(runner, sim, rows)
    st = runner.adapter.stats["BTCUSDT"]
    assert st.gaps >= 2 and st.forced_resyncs == 1 and st.resyncs == 3
