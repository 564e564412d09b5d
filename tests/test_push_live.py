"""Bybit v5 live books through the generic push transport, against the push simulator on 127.0.0.1.

Market data: the real Binance USD-M captures (BTCUSDT, ETHUSDT) cut into book and trade steps, and the
synthetic generator for the randomized run.  Each test compares the live books with the simulator's
truth at every level of the subscribed depth (50), so a wrong level anywhere fails it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flowbook.live import FeatureSnapshot, LiveRunner
from flowbook.testing.simulator import wait_caught_up
from flowbook.testing.simulator.bybit import BybitRenderer
from flowbook.testing.simulator.push import PushSimulator
from flowbook.testing.simulator.pushcheck import differences, live_config, push_session
from flowbook.testing.simulator.pushtruth import PushFaultPlan, PushMarket
from flowbook.venues.binance.rest import LiveConfig, LiveError, SubscriptionRejected
from flowbook.venues.bybit.protocol import BybitProtocol
from flowbook.venues.registry import get

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
DEPTH = 50
PATH = "/v5/public/linear"


@pytest.fixture(scope="module")
def market(data_dir: Path) -> PushMarket:
    """The first 12,000 steps (book messages and trades) of the two real USD-M captures, merged."""
    paths = [data_dir / "hftbacktest" / "usdm" / f"{s.lower()}_20240808.gz" for s in SYMBOLS]
    return PushMarket.from_recordings(paths, max_steps=12_000)


def _config(sim: PushSimulator, **kw: object) -> LiveConfig:
    return live_config(sim.ws_url(PATH), **kw)


async def _session(market: PushMarket, plan: PushFaultPlan | None = None, *, speed: float = math.inf,
                   symbols: list[str] = SYMBOLS, during: Callable[[PushSimulator, LiveRunner], object] | None = None,
                   record: Path | None = None, cfg_kw: dict | None = None,
                   timeout: float = 40.0) -> tuple[LiveRunner, PushSimulator, list[FeatureSnapshot], list[str]]:
    async def caught_up(runner: LiveRunner, sim: PushSimulator) -> list[str]:
        await wait_caught_up(runner, sim, timeout=timeout)
        return differences(runner, sim, DEPTH)

    sim = PushSimulator(market, BybitRenderer(), speed=speed, faults=plan, min_books=len(symbols))
    return await push_session(sim, "bybit-linear", symbols, DEPTH, path=PATH, during=during, record=record,
                              cfg_kw=cfg_kw, wait=caught_up)


def test_protocol_batches_and_splits() -> None:
    spot = BybitProtocol(get("bybit"), 50, LiveConfig())
    topics = [t for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT") for t in spot.topics(s)]
    reqs = spot.requests("subscribe", topics, iter(map(str, range(100))).__next__)
    assert [len(b) for _, _, b in reqs] == [10, 2]  # spot: at most 10 args per subscribe
    assert reqs[0][1].startswith('{"op":"subscribe","req_id":"0","args":["orderbook.50.AUSDT"')
    assert spot.frame_key(b'{"topic":"orderbook.50.AUSDT","type":"delta"') == ("AUSDT", True)
    assert spot.frame_key(b'{"topic":"publicTrade.AUSDT","type":"snapshot"') == ("AUSDT", False)
    assert spot.frame_key(b'{"success":true,"ret_msg":"pong","op":"ping"}') is None
    assert spot.control(b'{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"4","op":"ping"}').kind == "pong"
    bad = spot.control(b'{"success":false,"ret_msg":"error:handler not found","req_id":"9","op":"subscribe"}')
    assert (bad.kind, bad.req_id, bad.message) == ("error", "9", "error:handler not found")
    assert spot.url("ws://127.0.0.1:9") == "ws://127.0.0.1:9/v5/public/spot"
    with pytest.raises(LiveError, match="depth 40"):
        LiveRunner(venue="bybit", symbols=["AUSDT"], config=LiveConfig(snapshot_limit=40))


def test_runner_books_equal_the_truth(market: PushMarket) -> None:
    runner, sim, rows, diffs = asyncio.run(_session(market))
    assert diffs == []
    for s in SYMBOLS:
        st = runner.adapter.stats[s]
        assert (st.gaps, st.resyncs, st.dropped, st.bad, st.snapshots) == (0, 0, 0, 0, 1), (s, st)
        assert st.depth > 1000
    assert {r.symbol for r in rows} == set(SYMBOLS)
    assert sim.stats["connections"] == 1 and sim.stats["sent"] > 10_000


# fault kind -> (symbols expected to resync, counter that proves the fault was seen)
SYMBOL_FAULTS = ["drop", "reorder", "corrupt", "unchained"]


@pytest.mark.parametrize("kind", [*SYMBOL_FAULTS, "duplicate", "checksum", "disconnect", "restart"])
def test_each_fault_recovers(market: PushMarket, kind: str) -> None:
    idx = market.indices("book", "BTCUSDT")
    plan = PushFaultPlan(downtime=30).at(idx[len(idx) // 3], kind)
    runner, sim, _, diffs = asyncio.run(_session(market, plan))
    assert diffs == []
    assert plan.applied[kind] == 1
    btc, eth = (runner.adapter.stats[s] for s in SYMBOLS)
    if kind in SYMBOL_FAULTS:
        assert btc.resyncs >= 1 and eth.resyncs == 0, (btc, eth)  # that symbol only
        assert btc.gaps + btc.forced_resyncs >= 1
    elif kind == "duplicate":
        assert btc.resyncs == 0 and btc.duplicates == 1 and sim.stats["duplicated"] == 1
    elif kind == "checksum":  # Bybit books carry no checksum: the frame goes through unchanged
        assert btc.resyncs == 0 and sim.stats["checksum_not_applicable"] == 1
    else:  # every symbol of the connection is resubscribed
        assert btc.resyncs >= 1 and eth.resyncs >= 1
        assert sim.stats["connections"] >= 2
    if kind == "restart":
        assert runner.adapter.feed.stats.snapshots_restart == 0  # the reconnect unsynced first: plain snapshots
        assert sim.book_u("BTCUSDT", DEPTH) < btc.depth  # u started again at 1


def test_slow_subscription_answer_and_refused_resubscription(market: PushMarket) -> None:
    idx = market.indices("book", "BTCUSDT")
    plan = PushFaultPlan().slow_ack(0.4, "BTCUSDT").at(idx[200], "drop")

    async def refuse_next(sim: PushSimulator, runner: LiveRunner) -> None:
        sim.faults.reject("BTCUSDT")  # the resubscription after the drop is refused once

    runner, sim, _, diffs = asyncio.run(_session(market, plan, during=refuse_next))
    assert diffs == []
    assert plan.applied["subscription_slow"] == 1 and plan.applied["subscription_reject"] == 1
    btc = runner.adapter.stats["BTCUSDT"]
    assert btc.rest_errors == 1 and btc.resyncs >= 1  # counted, retried after a backoff, recovered


@pytest.mark.parametrize("case", ["unknown", "refused"])
def test_start_raises_subscription_rejected(market: PushMarket, case: str) -> None:
    async def go() -> str:
        plan = PushFaultPlan().reject("ETHUSDT", message="error:simulated refusal") if case == "refused" else None
        async with PushSimulator(market, BybitRenderer(), faults=plan) as sim:
            symbols = ["BTCUSDT", "NOPEUSDT" if case == "unknown" else "ETHUSDT"]
            runner = LiveRunner(venue="bybit-linear", symbols=symbols, config=_config(sim))
            with pytest.raises(SubscriptionRejected) as err:
                await runner.start()
            return str(err.value)

    text = asyncio.run(go())
    want = "handler not found,topic:orderbook.50.NOPEUSDT" if case == "unknown" else "simulated refusal"
    assert want in text


def test_no_network_raises_connect_error() -> None:
    cfg = LiveConfig(ws_url="ws://127.0.0.1:9/v5/public/linear")
    runner = LiveRunner(venue="bybit-linear", symbols=["BTCUSDT"], config=cfg)
    with pytest.raises(LiveError, match="cannot connect"):
        asyncio.run(runner.start())


def test_missing_pongs_reconnect(market: PushMarket) -> None:
    async def silence(sim: PushSimulator, runner: LiveRunner) -> None:
        sim.answer_pings = False
        while runner.adapter.pong_timeouts == 0:
            await asyncio.sleep(0.05)
        sim.answer_pings = True

    runner, sim, _, diffs = asyncio.run(_session(market, speed=40.0, during=silence, cfg_kw={"heartbeat": 0.4}))
    assert diffs == []
    assert runner.adapter.pong_timeouts >= 1 and sim.stats["connections"] >= 2 and sim.stats["pings"] >= 2


def test_full_queue_drops_and_resubscribes(market: PushMarket) -> None:
    runner, sim, _, diffs = asyncio.run(_session(market, cfg_kw={"queue_size": 40}))
    assert diffs == []
    st = [runner.adapter.stats[s] for s in SYMBOLS]
    assert sum(x.dropped_depth for x in st) > 0  # the broadcast outran the queue
    for x in st:  # a dropped book frame unsyncs its symbol and resubscribes it: never a silent hole
        if x.dropped_depth:
            assert x.forced_resyncs >= 1 and x.resyncs >= 1, x


def test_many_random_faults_leave_no_divergent_book() -> None:
    symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"]
    market = PushMarket.synthetic(symbols, 40_000, seed=7)
    plan = PushFaultPlan.random(market.indices("book"), 1200, seed=3, downtime=5)
    cfg = {"reconnect_base": 0.005, "reconnect_cap": 0.05}  # paced so that most faults hit a synced book
    runner, sim, _, diffs = asyncio.run(_session(market, plan, speed=2.5, symbols=symbols, cfg_kw=cfg, timeout=50))
    hit = sum(sim.stats[k] for k in ("dropped", "duplicated", "corrupted", "reordered", "unchained", "disconnects"))
    assert sum(plan.applied.values()) >= 1000 and hit >= 1000  # on frames actually sent to the client
    assert diffs == []  # zero divergent books
    st = [runner.adapter.stats[s] for s in symbols]
    assert sum(x.resyncs for x in st) >= 400 and sum(x.duplicates for x in st) >= 100
    assert runner.adapter.internal_errors == 0


def test_recording_replays_to_the_live_rows(market: PushMarket, tmp_path: Path) -> None:
    from flowbook.features import FEATURE_COLUMNS, FeatureEngine
    from flowbook.replay.bybit import load_bybit

    runner, _, rows, diffs = asyncio.run(_session(market, symbols=["BTCUSDT"], record=tmp_path))
    assert diffs == []
    files = sorted((tmp_path / "bybit-linear" / "BTCUSDT").glob("*.gz"))
    loaded = load_bybit(files, strict=True)
    eng = FeatureEngine(loaded.instruments[0])
    eng.process(loaded.events)
    f, ii = eng.take()
    live = np.array([[r.values[c] for c in FEATURE_COLUMNS] for r in rows])
    assert len(f) == len(rows) > 1000
    assert np.array_equal(ii[:, 0], [r.ts_local for r in rows])
    assert np.array_equal(ii[:, 2], [r.update_id for r in rows])
    same = (f == live) | (np.isnan(f) & np.isnan(live))
    assert same.all(), [FEATURE_COLUMNS[k] for k in np.flatnonzero(~same.all(axis=0))]
    book = runner.book("BTCUSDT", DEPTH)
    assert eng.book is not None and len(eng.book.levels(1, DEPTH)) == len(book.bids) == DEPTH


def test_cli_live_against_the_simulator(market: PushMarket, capsys: pytest.CaptureFixture) -> None:
    import argparse

    from flowbook.cli_live import add_parsers, run
    from flowbook.testing.simulator.push import PushSimulatorThread

    ap = argparse.ArgumentParser(prog="flowbook")
    add_parsers(ap.add_subparsers(dest="command"))
    with PushSimulatorThread(market, BybitRenderer(), speed=20.0) as sim:
        args = ap.parse_args(["live", "bybit-linear:BTCUSDT", "--ws-url", sim.ws_url(PATH), "--duration", "1500ms"])
        assert run(args) == 0
    out = capsys.readouterr().out
    for word in ("BTCUSDT", "synced", "mid", "imbalance"):
        assert word in out
