"""OKX v5 live books through the generic push transport, against the push simulator on 127.0.0.1.

Market data: the real Binance USD-M captures (BTCUSDT, ETHUSDT) served as the OKX instruments BTC-USDT
and ETH-USDT, and the synthetic generator for the randomized run.  The simulator writes OKX ``books``
with seqId/prevSeqId and the CRC32 checksum of the book the client should hold; each test compares the
live books with the simulator's truth at all 400 levels, so a wrong level anywhere fails it.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flowbook.live import FeatureSnapshot, LiveRunner
from flowbook.testing.simulator import wait_caught_up
from flowbook.testing.simulator.okx import OkxRenderer, okx_checksum, okx_market
from flowbook.testing.simulator.push import PushSimulator
from flowbook.testing.simulator.pushcheck import differences, live_config, push_session
from flowbook.testing.simulator.pushtruth import PushFaultPlan, PushMarket
from flowbook.venues.binance.rest import ConnectError, LiveConfig, LiveError, SubscriptionRejected
from flowbook.venues.okx.protocol import OkxProtocol
from flowbook.venues.registry import get

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
DEPTH = 400


@pytest.fixture(scope="module")
def market(data_dir: Path) -> PushMarket:
    """The first 12,000 steps (book messages and trades) of the two real USD-M captures, merged."""
    paths = [data_dir / "hftbacktest" / "usdm" / f"{s}_20240808.gz" for s in ("btcusdt", "ethusdt")]
    return okx_market(paths, {"BTCUSDT": "BTC-USDT", "ETHUSDT": "ETH-USDT"}, max_steps=12_000)


@pytest.fixture(scope="module")
def short(market: PushMarket) -> PushMarket:
    """The first 4,000 steps: enough for a fault and its recovery, cheap enough for one test per fault."""
    m = copy.copy(market)
    m.steps = market.steps[:4000]
    return m


def _config(sim: PushSimulator, **kw: object) -> LiveConfig:
    return live_config(sim.ws_url(), **kw)


async def _session(market: PushMarket, plan: PushFaultPlan | None = None, *, speed: float = math.inf,
                   symbols: list[str] = SYMBOLS, during: Callable[[PushSimulator, LiveRunner], object] | None = None,
                   record: Path | None = None, cfg_kw: dict | None = None,
                   timeout: float = 40.0) -> tuple[LiveRunner, PushSimulator, list[FeatureSnapshot], list[str]]:
    async def caught_up(runner: LiveRunner, sim: PushSimulator) -> list[str]:
        await wait_caught_up(runner, sim, timeout=timeout)
        return differences(runner, sim, DEPTH)

    sim = PushSimulator(market, OkxRenderer(), speed=speed, faults=plan, min_books=len(symbols))
    return await push_session(sim, "okx", symbols, DEPTH, during=during, record=record, cfg_kw=cfg_kw,
                              wait=caught_up)


def _checksums_all_verified(runner: LiveRunner) -> None:
    fs = runner.adapter.feed.stats
    assert fs.checksum_failures == 0
    assert fs.checksums_verified == fs.snapshots + fs.diffs_applied > 0  # every applied books message


def test_protocol_requests_answers_and_limits() -> None:
    p = OkxProtocol(get("okx"), 400, LiveConfig())
    topics = [t for s in ("BTC-USDT", "ETH-USDT") for t in p.topics(s)]
    [(rid, text, batch)] = p.requests("subscribe", topics, iter(map(str, range(100))).__next__)
    assert text.startswith('{"id":"0","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},'
                           '{"channel":"trades","instId":"BTC-USDT"},{"channel":"tickers","instId":"BTC-USDT"}')
    assert len(batch) == 6 and p.ping("1") == "ping"
    # one answer per argument: the request is acknowledged by the last of them, not before
    acks = [p.control(b'{"id":"0","event":"subscribe","arg":{"channel":"%s","instId":"%s"},"connId":"c"}'
                      % (t.channel.encode(), t.symbol.encode())) for t in batch]
    assert [a.kind for a in acks] == ["info"] * 5 + ["ack"] and acks[-1].req_id == "0"
    p.requests("subscribe", topics[:1], iter(["1"]).__next__)
    err = p.control(b'{"id":"1","event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:X '
                    b'doesn\'t exist.","connId":"c"}')
    assert (err.kind, err.req_id, err.op) == ("error", "1", "subscribe") and err.message.startswith("error 60018")
    assert p.control(b"pong").kind == "pong"
    head = b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[]'
    assert p.frame_key(head) == ("BTC-USDT", True)
    assert p.frame_key(b'{"arg":{"channel":"trades","instId":"ETH-USDT"},"data":[') == ("ETH-USDT", False)
    assert p.frame_key(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}') is None
    assert p.url("ws://127.0.0.1:9") == "ws://127.0.0.1:9/ws/v5/public"
    assert p.topics_per_connection == 29 * 3  # fewer than 30 deep book channels per connection
    with pytest.raises(LiveError, match="depth 1"):
        LiveRunner(venue="okx", symbols=["BTC-USDT"], config=LiveConfig(snapshot_limit=1))


def test_renderer_checksum_vectors() -> None:
    # reference §B.3: the two worked strings of OKX's checksum documentation
    assert okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]) == -1881014294
    assert okx_checksum([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]) == 831078360
    r = OkxRenderer()
    text = '{"arg":{"channel":"books","instId":"A-B"},"action":"update","data":[{"checksum":-5,"seqId":3}]}'
    assert '"checksum":-4,' in (r.bad_checksum(text) or "")
    assert r.bad_checksum('{"arg":{"channel":"trades","instId":"A-B"},"data":[]}') is None


def test_runner_books_equal_the_truth(market: PushMarket) -> None:
    runner, sim, rows, diffs = asyncio.run(_session(market))
    assert diffs == []  # all 400 levels of both books
    _checksums_all_verified(runner)
    for s in SYMBOLS:
        st = runner.adapter.stats[s]
        assert (st.gaps, st.resyncs, st.dropped, st.bad, st.snapshots) == (0, 0, 0, 0, 1), (s, st)
        assert st.depth > 1500
    assert {r.symbol for r in rows} == set(SYMBOLS)
    assert runner.adapter.feed.stats.trades > 1000 and set(runner.adapter.feed.tickers) == set(SYMBOLS)
    assert sim.stats["connections"] == 1 and sim.stats["sent"] > 10_000


def test_books5_depth(short: PushMarket) -> None:
    async def go() -> tuple[LiveRunner, list[str]]:
        async with PushSimulator(short, OkxRenderer(), min_books=2) as sim:
            runner = LiveRunner(venue="okx", symbols=SYMBOLS, config=_config(sim, snapshot_limit=5))
            await runner.start()
            try:
                await wait_caught_up(runner, sim, timeout=30)
                return runner, differences(runner, sim, 5)
            finally:
                await runner.stop()

    runner, diffs = asyncio.run(go())
    assert diffs == []  # every books5 push replaces the 5-level book
    assert runner.adapter.feed.stats.snapshots > 1000 and runner.adapter.feed.stats.checksums_verified == 0


# fault kind -> the instrument it hits resyncs, the other does not
SYMBOL_FAULTS = ["drop", "reorder", "corrupt", "unchained", "checksum"]


@pytest.mark.parametrize("kind", [*SYMBOL_FAULTS, "duplicate", "disconnect", "restart"])
def test_each_fault_recovers(short: PushMarket, kind: str) -> None:
    idx = short.indices("book", "BTC-USDT")
    plan = PushFaultPlan(downtime=30).at(idx[len(idx) // 3], kind)
    runner, sim, _, diffs = asyncio.run(_session(short, plan))
    assert diffs == []
    assert plan.applied[kind] == 1
    btc, eth = (runner.adapter.stats[s] for s in SYMBOLS)
    fs = runner.adapter.feed.stats
    assert fs.checksum_failures == (1 if kind == "checksum" else 0)
    if kind in SYMBOL_FAULTS:
        assert btc.resyncs >= 1 and eth.resyncs == 0, (btc, eth)  # that instrument only
        assert btc.gaps + btc.forced_resyncs >= 1
    elif kind == "duplicate":  # the repeated update is dropped, the book stays
        assert btc.resyncs == 0 and btc.duplicates == 1 and sim.stats["duplicated"] == 1
    else:  # every instrument of the connection is resubscribed
        assert btc.resyncs >= 1 and eth.resyncs >= 1
        assert sim.stats["connections"] >= 2
    if kind == "checksum":
        assert sim.stats["checksum"] == 1 and btc.gaps == 1
    if kind == "restart":
        assert sim.book_u("BTC-USDT", DEPTH) < btc.depth  # seqIds started again at 1
    assert runner.adapter.internal_errors == 0


def test_slow_subscription_answer_and_refused_resubscription(short: PushMarket) -> None:
    idx = short.indices("book", "BTC-USDT")
    plan = PushFaultPlan().slow_ack(0.3).at(idx[len(idx) // 2], "drop")

    async def refuse_next(sim: PushSimulator, runner: LiveRunner) -> None:
        sim.faults.reject("BTC-USDT")  # the resubscription after the drop is refused once

    runner, sim, _, diffs = asyncio.run(_session(short, plan, during=refuse_next))
    assert diffs == []
    assert plan.applied["subscription_slow"] == 1 and plan.applied["subscription_reject"] == 1
    btc, eth = (runner.adapter.stats[s] for s in SYMBOLS)
    assert btc.rest_errors == 1 and btc.resyncs >= 1  # counted, retried after a backoff, recovered
    assert eth.rest_errors == 0 and eth.resyncs == 0


def test_missing_pongs_reconnect(short: PushMarket) -> None:
    async def silence(sim: PushSimulator, runner: LiveRunner) -> None:
        sim.answer_pings = False
        while runner.adapter.pong_timeouts == 0:
            await asyncio.sleep(0.05)
        sim.answer_pings = True

    runner, sim, _, diffs = asyncio.run(_session(short, speed=40.0, during=silence, cfg_kw={"heartbeat": 0.4}))
    assert diffs == []
    assert runner.adapter.pong_timeouts >= 1 and sim.stats["connections"] >= 2 and sim.stats["pings"] >= 2


def test_many_random_faults_leave_no_divergent_book() -> None:
    symbols = ["AAA-USDT", "BBB-USDT", "CCC-USDT", "DDD-USDT"]
    market = PushMarket.synthetic(symbols, 40_000, seed=7)
    weights = {"drop": 4, "duplicate": 2, "reorder": 2, "corrupt": 2, "checksum": 2, "unchained": 1,
               "disconnect": 0.05}
    plan = PushFaultPlan.random(market.indices("book"), 1200, seed=3, weights=weights, downtime=5)
    cfg = {"reconnect_base": 0.005, "reconnect_cap": 0.05}  # paced so that most faults hit a synced book
    runner, sim, _, diffs = asyncio.run(_session(market, plan, speed=2.5, symbols=symbols, cfg_kw=cfg, timeout=50))
    kinds = ("dropped", "duplicated", "corrupted", "reordered", "checksum", "unchained", "disconnects")
    hit = sum(sim.stats[k] for k in kinds)
    assert sum(plan.applied.values()) >= 1000 and hit >= 1000  # on frames actually sent to the client
    assert diffs == []  # zero divergent books
    st = [runner.adapter.stats[s] for s in symbols]
    # every instrument was hit and recovered many times; repeated updates were recognised as such
    assert all(x.resyncs >= 40 for x in st) and sum(x.resyncs for x in st) >= 300
    assert sum(x.duplicates for x in st) >= 40 and runner.adapter.feed.stats.checksum_failures >= 30
    assert runner.adapter.internal_errors == 0


def test_recording_replays_to_the_live_rows(short: PushMarket, tmp_path: Path) -> None:
    from flowbook.features import FEATURE_COLUMNS, FeatureEngine
    from flowbook.replay.okx import load_okx

    runner, _, rows, diffs = asyncio.run(_session(short, symbols=["BTC-USDT"], record=tmp_path))
    assert diffs == []
    files = sorted((tmp_path / "okx" / "BTC-USDT").glob("*.gz"))
    loaded = load_okx(files, strict=True)
    assert loaded.stats["checksums_verified"] == runner.adapter.feed.stats.checksums_verified > 500
    eng = FeatureEngine(loaded.instruments[0])
    eng.process(loaded.events)
    f, ii = eng.take()
    live = np.array([[r.values[c] for c in FEATURE_COLUMNS] for r in rows])
    assert len(f) == len(rows) > 500
    assert np.array_equal(ii[:, 0], [r.ts_local for r in rows])
    assert np.array_equal(ii[:, 2], [r.update_id for r in rows])
    same = (f == live) | (np.isnan(f) & np.isnan(live))
    assert same.all(), [FEATURE_COLUMNS[k] for k in np.flatnonzero(~same.all(axis=0))]
    book = runner.book("BTC-USDT", DEPTH)
    assert eng.book is not None
    assert len(eng.book.levels(1, DEPTH)) == len(book.bids) == DEPTH


def test_start_raises_subscription_rejected_with_okx_message(short: PushMarket) -> None:
    async def go() -> str:
        async with PushSimulator(short, OkxRenderer()) as sim:
            runner = LiveRunner(venue="okx", symbols=["BTC-USDT", "NOPE-USDT"], config=_config(sim))
            with pytest.raises(SubscriptionRejected) as err:
                await runner.start()
            return str(err.value)

    text = asyncio.run(go())
    assert "error 60018: Wrong URL or channel:books,instId:NOPE-USDT doesn't exist" in text


def test_no_server_raises_connect_error() -> None:
    runner = LiveRunner(venue="okx", symbols=["BTC-USDT"], config=LiveConfig(ws_url="ws://127.0.0.1:9"))
    with pytest.raises(ConnectError, match="cannot connect to ws://127.0.0.1:9/ws/v5/public"):
        asyncio.run(runner.start())


def test_cli_live_against_the_simulator(short: PushMarket, capsys: pytest.CaptureFixture) -> None:
    import argparse

    from flowbook.cli_live import add_parsers, run
    from flowbook.testing.simulator.push import PushSimulatorThread

    ap = argparse.ArgumentParser(prog="flowbook")
    add_parsers(ap.add_subparsers(dest="command"))
    with PushSimulatorThread(short, OkxRenderer(), speed=20.0) as sim:
        args = ap.parse_args(["live", "okx:BTC-USDT", "--ws-url", sim.ws_url(), "--duration", "1500ms"])
        assert run(args) == 0
    out = capsys.readouterr().out
    for word in ("BTC-USDT", "synced", "mid", "imbalance"):
        assert word in out


@pytest.mark.parametrize("pace", [True, False])
def test_requests_wait_for_the_connections_hourly_budget(pace: bool) -> None:
    """OKX allows 480 subscribe/unsubscribe requests per connection and hour: the 3rd request of a budget of
    2 per 0.5 s waits until the first leaves the window (the limits shrunk on the instance)."""
    import time

    from flowbook.venues.okx.live import OkxLive

    async def go() -> tuple[float, int]:
        live = OkxLive(get("okx"), ["BTC-USDT"], LiveConfig(pace=pace))
        assert (live.protocol.requests_per_window, live.protocol.request_window) == (480, 3600.0)
        live.protocol.requests_per_window, live.protocol.request_window = 2, 0.5  # type: ignore[misc]
        c = live.connections[0]
        t0 = time.monotonic()
        for _ in range(3):
            await live._within_budget(c)
        return time.monotonic() - t0, live.requests_deferred

    took, deferred = asyncio.run(go())
    if pace:
        assert deferred == 1 and took >= 0.45
    else:
        assert deferred == 0 and took < 0.1
