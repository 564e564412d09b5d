"""Kraken spot v2 live books through the generic push transport, against the push simulator on 127.0.0.1.

Market data: the real Binance spot captures (BTCUSDT, ETHUSDT) replayed as the Kraken pairs BTC/USD and
ETH/USD, and the synthetic generator for the randomized run.  Kraken books carry no sequence number: the
checksum of the top 10 levels is the only loss detector.  So the books are compared with the truth at the
whole subscribed depth where the checksum covers all of it (depth 10) or where no fault happened; with a
deeper book and a lost message, only the checksummed top 10 is claimed until the next snapshot.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flowbook.events import Instrument
from flowbook.live import FeatureSnapshot, LiveRunner
from flowbook.testing.simulator.kraken import KrakenRenderer, KrakenSimulator, crc_of_book, kraken_market
from flowbook.testing.simulator.pushcheck import differences, live_config, push_session, wait_books
from flowbook.testing.simulator.pushrender import Request, SimTopic
from flowbook.testing.simulator.pushtruth import PushFaultPlan, PushMarket, PushTruth
from flowbook.venues.binance.rest import ConnectError, LiveConfig, LiveError, SubscriptionRejected
from flowbook.venues.kraken.live import KrakenLive
from flowbook.venues.kraken.protocol import KrakenProtocol
from flowbook.venues.registry import get

PAIRS = {"BTCUSDT": "BTC/USD", "ETHUSDT": "ETH/USD"}
SYMBOLS = ["BTC/USD", "ETH/USD"]
DEPTH = 25


@pytest.fixture(scope="module")
def market(data_dir: Path) -> PushMarket:
    """The first 12,000 steps (book messages and trades) of the two real spot captures, merged."""
    paths = [data_dir / "hftbacktest" / "spot" / f"{s.lower()}_20240808.gz" for s in PAIRS]
    return kraken_market(paths, PAIRS, max_steps=12_000)


@pytest.fixture(scope="module")
def short(market: PushMarket) -> PushMarket:
    """The first 5,000 of those steps (the fault tests)."""
    out = PushMarket(market.events, list(market.instruments.values()))
    out.steps = out.steps[:5000]
    return out


def _config(sim: KrakenSimulator, depth: int, **kw: object) -> LiveConfig:
    return live_config(sim.ws_url(), snapshot_limit=depth, **kw)


async def settle(runner: LiveRunner, sim: KrakenSimulator, timeout: float = 30.0) -> None:
    """After the broadcast, until every pair is synced with nothing in flight and its checksummed top 10
    equals the truth (or ``timeout``: the caller's comparison then shows why)."""
    await wait_books(runner, sim, 10, timeout)


async def _session(market: PushMarket, plan: PushFaultPlan | None = None, *, depth: int = DEPTH,
                   speed: float = math.inf, symbols: list[str] = SYMBOLS,
                   during: Callable[[KrakenSimulator, LiveRunner], object] | None = None,
                   record: Path | None = None, cfg_kw: dict | None = None, sim_kw: dict | None = None,
                   timeout: float = 40.0) -> tuple[LiveRunner, KrakenSimulator, list[FeatureSnapshot], list[str]]:
    async def settled(runner: LiveRunner, sim: KrakenSimulator) -> list[str]:
        return await wait_books(runner, sim, depth, timeout, check_depth=10)

    sim = KrakenSimulator(market, speed=speed, faults=plan, min_books=len(symbols), **(sim_kw or {}))
    return await push_session(sim, "kraken", symbols, depth, during=during, record=record,
                              cfg_kw={"snapshot_limit": depth, **(cfg_kw or {})}, wait=settled)


def _checks(runner: LiveRunner, sym: str) -> tuple[int, int]:
    book = runner.adapter.feed.book(sym)
    return book.verified, book.failed


def test_protocol_and_renderer_texts() -> None:
    p = KrakenProtocol(get("kraken"), 25, LiveConfig())
    topics = [t for s in ("BTC/USD", "ETH/USD") for t in p.topics(s)]
    reqs = p.requests("subscribe", topics, iter(map(str, range(1, 100))).__next__)
    assert [r[1] for r in reqs] == [
        '{"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":1}',
        '{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD","ETH/USD"],"depth":25},"req_id":2}',
        '{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD","ETH/USD"],"snapshot":false},'
        '"req_id":3}',
        '{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD","ETH/USD"]},"req_id":4}']
    # Kraken answers each symbol: the request is answered at its last success, failed at its first error
    ok = b'{"method":"subscribe","result":{"channel":"book","depth":25,"symbol":"%s"},"success":true,"req_id":2}'
    assert p.control(ok % b"BTC/USD").kind == "info" and p.control(ok % b"ETH/USD").kind == "ack"
    err = p.control(b'{"error":"Currency pair not supported NOPE/USD","method":"subscribe","req_id":3,'
                    b'"success":false,"symbol":"NOPE/USD"}')
    assert (err.kind, err.req_id, err.message) == ("error", "3", "Currency pair not supported NOPE/USD")
    assert p.control(b'{"method":"pong","req_id":9,"time_in":"x","time_out":"y"}').kind == "pong"
    # requests whose answers never all come (a lost connection, a failed request) do not pile up
    ids = iter(range(100, 10_000))
    for _ in range(2_000):
        p.requests("subscribe", p.topics("BTC/USD")[:1], lambda: str(next(ids)))
    assert len(p._expect) <= 1024 and str(100 + 1999) in p._expect
    assert p.control(b'{"channel":"heartbeat"}').kind == "info"
    assert p.ping("5") == '{"method":"ping","req_id":5}'
    assert p.frame_key(b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[]') == (
        "BTC/USD", True)
    assert p.frame_key(b'{"channel":"trade","type":"update","data":[{"symbol":"ETH/USD"') == ("ETH/USD", False)
    assert p.frame_key(b'{"channel":"heartbeat"}') is None
    assert p.url("ws://127.0.0.1:9") == "ws://127.0.0.1:9/v2"
    # the instrument snapshot is cut per pair, each entry's bytes kept
    r = KrakenRenderer({"BTC/USD": (1, 8), "ETH/USD": (2, 8), "SOL/USD": (2, 8)})
    frames = dict(KrakenProtocol.instrument_frames(r.instruments().encode(), {"BTC/USD", "ETH/USD"}))
    assert sorted(frames) == ["BTC/USD", "ETH/USD"]
    assert frames["BTC/USD"].startswith(b'{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol"'
                                        b':"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8')
    # the simulator's checksum is Kraken's documented example (reference B.4)
    asks = [("45285.2", "0.00100000"), ("45286.4", "1.54582015"), ("45286.6", "1.00000000")]
    bids = [("45283.5", "0.00100000"), ("45283.4", "1.54582015"), ("45282.1", "0.07850000")]
    assert crc_of_book(asks, bids) == 3840037297
    t = SimTopic("BTC/USD", "book", 10, "book.BTC/USD")
    snap = r.book(t, True, [(p_, q) for p_, q in bids], [(p_, q) for p_, q in asks], 1, 1, 0)
    assert '"asks":[{"price":45285.2,"qty":0.00100000},' in snap and '"checksum":3840037297' in snap
    assert '"checksum":3840037298' in r.bad_checksum(snap)
    assert r.pong(Request("ping", "7")).startswith('{"method":"pong","time_in":')
    with pytest.raises(LiveError, match="depth 40"):
        LiveRunner(venue="kraken", symbols=["BTC/USD"], config=LiveConfig(snapshot_limit=40))


def test_runner_books_equal_the_truth(market: PushMarket) -> None:
    runner, sim, rows, diffs = asyncio.run(_session(market))
    assert diffs == []  # all 25 levels a side
    feed = runner.adapter.feed
    for s in SYMBOLS:
        st = runner.adapter.stats[s]
        assert (st.gaps, st.resyncs, st.dropped, st.bad, st.snapshots) == (0, 0, 0, 0, 1), (s, st)
        verified, failed = _checks(runner, s)
        assert failed == 0 and verified == st.depth > 500  # every book message's checksum verified
        assert feed.symbols[s].inst is not None and feed.symbols[s].inst.tick_size == "0.01"  # from `instrument`
    assert feed.stats.trades > 1000 and set(feed.tickers) == set(SYMBOLS)
    assert {r.symbol for r in rows} == set(SYMBOLS)
    assert sim.stats["connections"] == 1 and sim.stats["instrument_snapshots"] == 1


# fault kind -> BTC/USD resyncs expected (None: at least one); faults on BTC/USD only, depth 10 (the
# checksum covers the whole book, so the final verified checksum proves the whole book)
FAULTS = {"drop": None, "reorder": None, "corrupt": None, "checksum": 1, "duplicate": 0}


@pytest.mark.parametrize("kind", [*FAULTS, "disconnect", "restart"])
def test_each_fault_recovers(short: PushMarket, kind: str) -> None:
    idx = short.indices("book", "BTC/USD")
    plan = PushFaultPlan(downtime=30).at(idx[len(idx) // 3], kind)
    runner, sim, _, diffs = asyncio.run(_session(short, plan, depth=10))
    assert diffs == []
    assert plan.applied[kind] == 1
    btc, eth = (runner.adapter.stats[s] for s in SYMBOLS)
    assert runner.adapter.internal_errors == 0
    if kind in FAULTS:
        assert eth.resyncs == 0 and _checks(runner, "ETH/USD")[1] == 0, eth  # that pair only
        want = FAULTS[kind]
        assert btc.resyncs >= 1 if want is None else btc.resyncs == want, btc
    if kind == "checksum":  # the wrong checksum is caught at once and only BTC/USD resubscribes
        assert sim.stats["checksum"] == 1 and _checks(runner, "BTC/USD")[1] == 1 and btc.gaps == 1
    elif kind == "duplicate":  # levels carry absolute quantities: a repeat verifies again, no harm
        assert sim.stats["duplicated"] == 1 and _checks(runner, "BTC/USD")[1] == 0
    elif kind == "corrupt":
        assert btc.bad == 1 and btc.forced_resyncs == 1
    elif kind in ("drop", "reorder"):  # no sequence number: the next checksum is what catches it
        assert _checks(runner, "BTC/USD")[1] >= 1 and btc.gaps >= 1
    else:  # every pair of the connection is resubscribed
        assert btc.resyncs >= 1 and eth.resyncs >= 1 and sim.stats["connections"] >= 2
        assert sim.stats["instrument_snapshots"] >= 2


def test_drop_below_the_top_10_is_only_claimed_after_a_snapshot(market: PushMarket) -> None:
    """Depth 25: a lost update that only touches levels 11-25 leaves the checksum unchanged.  The top 10
    stays equal to the truth throughout; the deeper levels are claimed again after a new snapshot."""
    truth, deep = PushTruth(market), []  # BTC/USD steps that change levels 11-25 only
    prev = truth.view("BTC/USD", DEPTH)
    for i, s in enumerate(market.steps):
        truth.apply(s)
        if s.symbol != "BTC/USD" or s.kind != "book":
            continue
        cur = truth.view("BTC/USD", DEPTH)
        top_same = all(list(p.items())[:10] == list(c.items())[:10] for p, c in zip(prev, cur, strict=True))
        if cur != prev and top_same and i < len(market.steps) * 3 // 4:
            deep.append(i)
        prev = cur
    plan = PushFaultPlan()
    for i in deep[:40]:
        plan.at(i, "drop")

    async def resnapshot(sim: KrakenSimulator, runner: LiveRunner) -> None:
        await settle(runner, sim)
        top = differences(runner, sim, 10)
        full = differences(runner, sim, DEPTH)
        report.update(top=top, full=full, failed=_checks(runner, "BTC/USD")[1])
        runner.adapter.request_snapshot("BTC/USD")  # the only way to re-prove levels 11-25 without a fault
        while runner.adapter.stats["BTC/USD"].snapshots < 2 or not runner.adapter.idle:
            await asyncio.sleep(0.02)

    report: dict[str, object] = {}
    runner, sim, _, diffs = asyncio.run(_session(market, plan, during=resnapshot))
    assert plan.applied["drop"] == sim.stats["dropped"] == len(deep[:40]) >= 10
    print(f"deep drops={len(deep[:40])} failed checksums={report['failed']} unseen={report['full']}")
    assert report["top"] == []  # the checksummed top 10 is right whatever was lost below it
    # below the top 10 the loss is either still there (unseen) or was caught once it reached the top 10
    assert report["full"] != [] or report["failed"] >= 1, report
    assert diffs == []  # after the new snapshot: all 25 levels
    assert runner.adapter.stats["ETH/USD"].resyncs == 0


def test_slow_subscription_answer_and_refused_resubscription(short: PushMarket) -> None:
    idx = short.indices("book", "BTC/USD")
    plan = PushFaultPlan().slow_ack(0.4, "BTC/USD").at(idx[200], "checksum")

    async def refuse_next(sim: KrakenSimulator, runner: LiveRunner) -> None:
        sim.faults.reject("BTC/USD", message="Currency pair not supported BTC/USD")  # the resync, once

    t0 = time.monotonic()
    runner, sim, _, diffs = asyncio.run(_session(short, plan, depth=10, during=refuse_next))
    assert diffs == [] and time.monotonic() - t0 > 0.4
    assert plan.applied["subscription_slow"] == 1 and plan.applied["subscription_reject"] == 1
    btc, eth = (runner.adapter.stats[s] for s in SYMBOLS)
    assert btc.rest_errors == 1 and btc.resyncs == 1 and eth.resyncs == 0  # counted, retried, recovered


@pytest.mark.parametrize("case", ["unknown", "refused"])
def test_start_raises_subscription_rejected(market: PushMarket, case: str) -> None:
    async def go() -> str:
        plan = PushFaultPlan().reject("ETH/USD", message="Subscription depth not supported") \
            if case == "refused" else None
        async with KrakenSimulator(market, faults=plan) as sim:
            symbols = ["BTC/USD", "NOPE/USD" if case == "unknown" else "ETH/USD"]
            runner = LiveRunner(venue="kraken", symbols=symbols, config=_config(sim, 10))
            with pytest.raises(SubscriptionRejected) as err:
                await runner.start()
            return str(err.value)

    text = asyncio.run(go())
    want = "Currency pair not supported NOPE/USD" if case == "unknown" else "Subscription depth not supported"
    assert text.startswith("kraken: subscription rejected: ") and want in text


def test_no_server_raises_connect_error() -> None:
    runner = LiveRunner(venue="kraken", symbols=["BTC/USD"], config=LiveConfig(ws_url="ws://127.0.0.1:9"))
    with pytest.raises(ConnectError, match="cannot connect to ws://127.0.0.1:9/v2"):
        asyncio.run(runner.start())


def test_missing_pongs_reconnect_and_heartbeats(short: PushMarket) -> None:
    async def silence(sim: KrakenSimulator, runner: LiveRunner) -> None:
        sim.answer_pings = False
        while runner.adapter.pong_timeouts == 0:
            await asyncio.sleep(0.05)
        sim.answer_pings = True
        await settle(runner, sim)
        await asyncio.sleep(0.8)  # quiet (pongs aside): Kraken sends {"channel":"heartbeat"}

    market = PushMarket(short.events, list(short.instruments.values()))
    market.steps = market.steps[:3000]
    runner, sim, _, diffs = asyncio.run(_session(market, depth=10, speed=40.0, during=silence,
                                                 cfg_kw={"heartbeat": 0.4}, sim_kw={"heartbeat": 0.2}))
    assert diffs == []
    a = runner.adapter
    assert a.pong_timeouts >= 1 and sim.stats["connections"] >= 2 and sim.stats["pings"] >= 2
    assert sim.stats["kraken_heartbeats"] >= 1 and a.unattributed == 0  # heartbeats are not market data


def test_many_random_faults_leave_no_divergent_book() -> None:
    symbols = ["AAA/USD", "BBB/USD", "CCC/USD", "DDD/USD"]
    market = PushMarket.synthetic(symbols, 30_000, seed=7)
    # no fault in each pair's last 30 book steps: the final checksums must have a message to ride on
    last = {s: market.indices("book", s)[-30:] for s in symbols}
    targets = sorted(set(market.indices("book")) - {i for v in last.values() for i in v})
    weights = {"drop": 4, "duplicate": 2, "reorder": 2, "corrupt": 2, "checksum": 2, "disconnect": 0.05}
    plan = PushFaultPlan.random(targets, 1200, seed=3, weights=weights, downtime=5)
    cfg = {"reconnect_base": 0.005, "reconnect_cap": 0.05}  # paced so that most faults hit a synced book
    runner, sim, _, diffs = asyncio.run(_session(market, plan, depth=10, speed=3.0, symbols=symbols,
                                                 cfg_kw=cfg, timeout=50))
    hit = sum(sim.stats[k] for k in ("dropped", "duplicated", "corrupted", "reordered", "checksum", "disconnects"))
    assert sum(plan.applied.values()) >= 1000 and hit >= 1000  # on frames actually sent to the client
    assert diffs == []  # zero divergent books, every pair synced after its final checksum
    st = [runner.adapter.stats[s] for s in symbols]
    failed = sum(_checks(runner, s)[1] for s in symbols)
    assert sum(x.resyncs for x in st) >= 300 and failed >= 200 and runner.adapter.internal_errors == 0
    print(f"faults={dict(plan.applied)} sent-faults={hit} resyncs={sum(x.resyncs for x in st)} "
          f"checksum failures={failed} verified={sum(_checks(runner, s)[0] for s in symbols)}")


def test_recording_replays_to_the_live_rows(market: PushMarket, tmp_path: Path) -> None:
    from flowbook.features import FEATURE_COLUMNS, FeatureEngine
    from flowbook.replay.kraken import load_kraken
    from flowbook.replay.sources import load

    runner, _, rows, diffs = asyncio.run(_session(market, symbols=["BTC/USD"], record=tmp_path))
    assert diffs == []
    files = sorted((tmp_path / "kraken" / "BTC_USD").glob("*.gz"))
    loaded = load_kraken(files, strict=True)  # depth and precisions come from the recording itself
    assert load(files, None, True).events.tobytes() == loaded.events.tobytes()
    eng = FeatureEngine(loaded.instruments[0])
    eng.process(loaded.events)
    f, ii = eng.take()
    live = np.array([[r.values[c] for c in FEATURE_COLUMNS] for r in rows])
    assert len(f) == len(rows) > 500
    assert np.array_equal(ii[:, 0], [r.ts_local for r in rows])
    assert np.array_equal(ii[:, 2], [r.update_id for r in rows])
    same = (f == live) | (np.isnan(f) & np.isnan(live))
    assert same.all(), [FEATURE_COLUMNS[k] for k in np.flatnonzero(~same.all(axis=0))]
    book = runner.book("BTC/USD", DEPTH)
    assert eng.book is not None and len(eng.book.levels(1, DEPTH)) == len(book.bids) == DEPTH


def test_known_instruments_skip_the_instrument_channel(market: PushMarket) -> None:
    async def go() -> tuple[KrakenLive, KrakenSimulator]:
        async with KrakenSimulator(market, min_books=1) as sim:
            insts = {"BTC/USD": Instrument("kraken", "BTC/USD", "0.01", "0.00000001")}
            live = KrakenLive(get("kraken"), ["BTC/USD"], _config(sim, 10), instruments=insts)
            await live.start()
            while not live.synced("BTC/USD"):
                await asyncio.sleep(0.02)
            await live.stop()
            return live, sim

    live, sim = asyncio.run(go())
    assert sim.stats["instrument_snapshots"] == 0 and live.feed.book("BTC/USD").verified >= 1
