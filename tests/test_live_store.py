"""``live`` / ``record`` with ``--store``: what the live path computed is what the store holds, and a
store that goes away (a real PostgreSQL behind a TCP forwarder that is switched off) never stops the
live path, loses nothing, and is reported."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from flowbook.cli_live import add_parsers, run
from flowbook.events import Event, Kind
from flowbook.live import FeatureSnapshot, LiveRunner
from flowbook.live.storesink import StoreSink
from flowbook.store import PostgresStore, open_store
from flowbook.testing import write_recording
from flowbook.testing.simulator import BinanceSimulator, SimulatorThread, wait_caught_up
from flowbook.testing.tcpproxy import TcpProxy
from flowbook.venues.binance.live import LiveConfig


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("livestore") / "cccusdt.gz"
    write_recording(p, 4000, 57, symbol="CCCUSDT")
    return p


def _run_live(recording: Path, store: StoreSink, while_running=None) -> tuple[list[FeatureSnapshot], list[Event],  # noqa: ANN001
                                                                              LiveRunner]:
    async def go() -> tuple[list[FeatureSnapshot], list[Event], LiveRunner]:
        async with BinanceSimulator([recording], speed=4.0, min_streams=5) as sim:
            cfg = LiveConfig(ws_url=sim.ws_url, rest_url=sim.url, weight_budget=1e9, resync_idle=0.2)
            runner = LiveRunner(venue="binance-usdm", symbols=["CCCUSDT"], config=cfg, store=store)
            snaps: list[FeatureSnapshot] = []
            trades: list[Event] = []
            runner.on_features(snaps.append)
            runner.on_event(lambda _s, e: trades.append(e), kinds=[Kind.TRADE])
            await runner.start()
            try:
                if while_running is not None:
                    await while_running(runner)
                await wait_caught_up(runner, sim)
            finally:
                await runner.stop()
            return snaps, trades, runner

    return asyncio.run(go())


def _check_stored(st: object, snaps: list[FeatureSnapshot], trades: list[Event]) -> None:
    f = st.query("SELECT update_id, mid, cvd, imbalance_n, ofi FROM features ORDER BY ts, update_id, seq")
    assert f.height == len(snaps) > 100
    # rows are delivered in application order; diffs buffered before a snapshot are applied after it
    # with earlier receive times, so the store's time order is the delivered rows sorted by time (stable)
    snaps = sorted(snaps, key=lambda s: (s.ts_local, s.update_id))
    assert f["update_id"].to_list() == [s.update_id for s in snaps]
    for col in ("mid", "cvd", "imbalance_n", "ofi"):
        np.testing.assert_array_equal(f[col].to_numpy(), np.array([s[col] for s in snaps]), err_msg=col)
    t = st.query("SELECT trade_id FROM trades ORDER BY trade_id")
    assert t["trade_id"].to_list() == sorted(e.id for e in trades) and len(trades) > 50


def test_live_features_and_trades_reach_the_parquet_store(recording: Path, tmp_path: Path) -> None:
    from flowbook.features import FEATURE_COLUMNS, FeatureConfig

    sink = StoreSink(f"parquet:{tmp_path / 'store'}", "binance-usdm", features=FeatureConfig(),
                     columns=FEATURE_COLUMNS, spill_dir=tmp_path / "spill", flush_interval=0.1)
    snaps, trades, runner = _run_live(recording, sink)
    r = runner.store_report
    assert r is not None and r.written_rows == r.accepted_rows > 0 and not r.outages and r.spill_rows == 0
    assert sink.flushes > 1  # written while running, not only at the end
    st = open_store(f"parquet:{tmp_path / 'store'}")
    _check_stored(st, snaps, trades)
    ev = st.query("SELECT count(*) AS n FROM events WHERE kind = 3")
    assert ev["n"][0] == len(trades)


def test_store_down_then_back_loses_nothing(recording: Path, pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    from flowbook.features import FEATURE_COLUMNS, FeatureConfig

    PostgresStore(pg_dsn, pg_schema).close()  # the schema exists; the outage starts before the run
    with TcpProxy(5432, start_up=False) as proxy:
        uri = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?schema={pg_schema}"
        sink = StoreSink(uri, "binance-usdm", features=FeatureConfig(), columns=FEATURE_COLUMNS,
                         spill_dir=tmp_path / "spill", capacity_rows=3000, flush_interval=0.1, retry_max=0.3,
                         connect_timeout=1)

        async def outage(runner: LiveRunner) -> None:
            deadline = time.monotonic() + 60
            while runner.status()["CCCUSDT"].rows < 300 or not sink.report().down:
                assert time.monotonic() < deadline, "no rows, or the outage was never noticed"
                await asyncio.sleep(0.05)
            rows_while_down = runner.status()["CCCUSDT"].rows
            await asyncio.sleep(1.0)
            assert runner.status()["CCCUSDT"].rows > rows_while_down  # the live path kept running
            assert sink.report().written_rows == 0
            proxy.up()

        snaps, trades, runner = _run_live(recording, sink, outage)
    r = runner.store_report
    assert r is not None and len(r.outages) == 1 and r.outages[0].end_ns is not None
    assert r.outages[0].rows_delayed > 0 and r.spill_rows == 0 and r.pending_rows == 0
    assert r.written_rows == r.accepted_rows
    _check_stored(PostgresStore(pg_dsn, pg_schema), snaps, trades)


@pytest.fixture(scope="module")
def sim(recording: Path):  # noqa: ANN201
    with SimulatorThread([recording], speed=2.0) as s:
        yield s


def _args(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="flowbook")
    add_parsers(ap.add_subparsers(dest="command"))
    return ap.parse_args(list(argv))


def test_record_with_store_and_one_line_errors(sim, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    store = tmp_path / "store"
    rc = run(_args("record", "binance-usdm:CCCUSDT", "--out", str(tmp_path / "rec"), "--base-url", sim.url,
                   "--duration", "1500ms", "--store", f"parquet:{store}", "--spill-dir", str(tmp_path / "spill")))
    assert rc == 0
    err = capsys.readouterr().err
    assert f"into parquet:{store}" in err and "recorded" in err, err
    st = open_store(f"parquet:{store}")
    assert st.query("SELECT count(*) AS n FROM events")["n"][0] > 0
    assert st.query("SELECT count(*) AS n FROM features")["n"][0] == 0  # record computes no features
    rc = run(_args("live", "binance-usdm:CCCUSDT", "--base-url", sim.url, "--duration", "1s",
                   "--store", "mongodb://x"))
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown store URI" in err


def test_events_before_the_instrument_is_known_wait_in_the_sink(tmp_path: Path) -> None:
    from flowbook.events import EVENT_DTYPE, Instrument

    inst = Instrument("binance-usdm", "EEEUSDT", "0.1", "0.001")
    sink = StoreSink(f"parquet:{tmp_path / 'store'}", "binance-usdm", spill_dir=tmp_path / "spill")
    ev = np.zeros(3, EVENT_DTYPE)
    ev["kind"] = Kind.TRADE
    ev["ts_exchange"] = ev["ts_local"] = 1_723_075_200_000_000_000 + np.arange(3)
    ev["id"], ev["price"], ev["qty"], ev["side"] = np.arange(3), 600_000, 5, 1
    sink.add_events("EEEUSDT", None, ev[:2])  # trades before the first snapshot named the instrument
    assert sink.flush() == 0
    sink.add_events("EEEUSDT", inst, ev[2:])
    sink.flush()
    r = sink.close()
    assert r.written_rows == r.accepted_rows and sink.unstored_rows == 0
    st = open_store(f"parquet:{tmp_path / 'store'}")
    assert st.query("SELECT trade_id FROM trades ORDER BY 1")["trade_id"].to_list() == [0, 1, 2]
