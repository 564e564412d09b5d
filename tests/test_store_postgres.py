"""The PostgreSQL store against the real server: migrations, round trips, idempotent re-imports,
partitions and retention, TimescaleDB detection, kill -9 of writers, the database going away."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import psycopg
import pytest
from store_fixtures import CLOSED_DSN, T0, kill_9, read_until, run_script, trades

from flowbook.events import Instrument
from flowbook.features import FEATURE_COLUMNS
from flowbook.store import TABLES, AsyncWriter, Batch, PostgresStore, StoreError, event_batches
from flowbook.store.migrate import migrations
from flowbook.store.postgres import StoreUnavailable
from flowbook.store.schema import FEATURE_NAMES
from flowbook.testing import synthetic_events

DAY = 86_400 * 10**9


def test_migrations_apply_once_and_detect_changes(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    assert st.applied == [m.version for m in migrations()] == [1, 2, 3]
    assert PostgresStore(pg_dsn, pg_schema).applied == []  # idempotent
    rows = st.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows["name"].to_list() == ["base", "series", "trade_bars"]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{pg_schema}".schema_migrations SET checksum = %s WHERE version = 2', ("x",))
    with pytest.raises(StoreError, match="changed after it was applied"):
        PostgresStore(pg_dsn, pg_schema)


def test_tables_match_the_registry(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    assert tuple(FEATURE_COLUMNS) == FEATURE_NAMES  # a new engine feature needs a migration
    kinds = {"ts": "bigint", "i8": "bigint", "i4": "integer", "i2": "smallint", "f8": "double precision",
             "price": "numeric", "qty": "numeric", "text": "text"}
    for t in TABLES.values():
        if not t.postgres:
            continue
        got = st.query("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
                       "AND table_name = %s ORDER BY ordinal_position", (pg_schema, t.name)).rows()
        assert got == [("instrument_id", "integer")] + [(c.name, kinds[c.kind]) for c in t.data_columns], t.name


def test_timescale_detection_and_both_ddl_plans(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    ext = st.query("SELECT count(*) AS n FROM pg_available_extensions WHERE name = 'timescaledb'")["n"][0]
    if ext == 0:
        assert st.timescale() is False
        assert st.partitioned("trades") and st.partitioned("features")  # the native path is in use
    ddl = "SELECT fb_series_ddl('t', 'a bigint', 'a', 'instrument_id', 'a', %s) AS s"
    native = st.query(ddl, (False,))["s"][0].to_list()
    hyper = " ; ".join(st.query(ddl, (True,))["s"][0].to_list())
    assert native == ['CREATE TABLE t (a bigint) PARTITION BY RANGE (a)']
    for piece in ("CREATE EXTENSION IF NOT EXISTS timescaledb", "create_hypertable('t', 'a'",
                  "set_integer_now_func('t', 'fb_now_ns')", "timescaledb.compress_segmentby = 'instrument_id'",
                  "add_compression_policy('t'"):
        assert piece in hyper
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # the opt-out setting wins
        conn.execute("SET flowbook.timescale = 'off'")
        off = conn.execute(f'SELECT "{pg_schema}".fb_timescale_available()').fetchone()
        assert off == (False,)


def test_round_trip_exact(pg_dsn: str, pg_schema: str) -> None:
    ev, inst = synthetic_events(20_000, 5)
    st = PostgresStore(pg_dsn, pg_schema)
    batches = event_batches(ev, [inst], ["trades", "book_deltas", "book_snapshots"])
    odd = Instrument("okx", "ETH-USD-SWAP", "0.25", "1")
    extra = trades(50, inst=odd)
    extra.columns["price"][:2] = [-7, 2**58]  # negative; far beyond any real price (ticks * 25 < 2**63)
    det = Batch.make("detector_events", inst, {
        "ts": [T0, T0 + 1], "ts_exchange": [T0, T0], "detector": ["sweep", "iceberg"], "side": [1, -1],
        "price": [600_001, 600_002], "qty": [5, 6], "score": [0.5, float("nan")], "details": ['{"levels": 3}', "{}"]})
    assert st.write([*batches, extra, det]) == sum(b.rows for b in batches) + 50 + 2
    for b in (*batches, extra):
        t = b.table
        cols = [c.name for c in t.data_columns]
        df = st.query(f"SELECT {', '.join(cols)} FROM {t.name}_v WHERE symbol = %s ORDER BY {', '.join(t.key)}",
                      (b.instrument.symbol,))
        order = np.lexsort([b.columns[k] for k in reversed(t.key)])
        for c in t.data_columns:
            want = b.columns[c.name][order]
            if c.kind in ("price", "qty"):
                step = Decimal(b.instrument.tick_size if c.kind == "price" else b.instrument.lot_size)
                assert df[c.name].to_list() == [Decimal(int(v)) * step for v in want], (t.name, c.name)
            else:
                np.testing.assert_array_equal(df[c.name].to_numpy(), want, err_msg=f"{t.name}.{c.name}")
    got = st.query("SELECT detector, price, qty, score, details FROM detector_events ORDER BY ts").rows()
    assert got[0] == ("sweep", Decimal("60000.1"), Decimal("0.005"), 0.5, '{"levels": 3}')
    assert got[1][0] == "iceberg" and np.isnan(got[1][3])


def test_reimport_never_duplicates(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    assert st.write(trades(3000)) == 3000
    assert st.write(trades(3000)) == 0  # the same import again
    assert st.write(trades(5000)) == 2000  # overlapping: only the new rows
    dup = trades(10)
    dup.columns["seq"][:] = 0
    dup.columns["trade_id"][:] = 7  # ten rows with one key, in one batch: the first one wins
    dup.columns["ts_exchange"][:] = T0 + 10 * DAY
    assert st.write(dup) == 1
    df = st.query("SELECT count(*) AS n, count(DISTINCT (ts_exchange, trade_id, seq)) AS d FROM trades")
    assert df["n"][0] == df["d"][0] == 5001


def test_partitions_on_demand_and_retention(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    st.write(trades(300, step_ns=DAY // 100))  # three UTC days
    parts = st.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "WHERE i.inhparent = %s::regclass ORDER BY 1", (f"{pg_schema}.trades",))["relname"].to_list()
    assert parts == ["trades_p20240808", "trades_p20240809", "trades_p20240810"]
    assert st.drop_before("trades", T0 + DAY) == 1  # the whole first day
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 200
    st.write(trades(100))  # the dropped day's partition is created again
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 300
    st.set_retention("trades", timedelta(days=1))  # the data is from 2024: all of it is older
    assert st.apply_retention() == 3
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 0


def test_identifiers_and_parameters(pg_dsn: str, pg_schema: str) -> None:
    with pytest.raises(StoreError, match="invalid schema name"):
        PostgresStore(pg_dsn, 'x"; DROP SCHEMA public; --')
    st = PostgresStore(pg_dsn, pg_schema)
    st.write(trades(10))
    evil = "BTCUSDT' OR '1'='1"
    assert st.query("SELECT count(*) AS n FROM trades_v WHERE symbol = %s", (evil,))["n"][0] == 0
    with pytest.raises(StoreError, match="no PostgreSQL table"):
        st.drop_before("trades; DROP TABLE x", 0)
    with pytest.raises(StoreError):  # queries are read-only
        st.query("DELETE FROM trades RETURNING 1")


def test_unreachable_database_is_one_clear_error() -> None:
    t = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1"):
        PostgresStore(CLOSED_DSN.replace("postgres@", "postgres:secret@"), "x", connect_timeout=2)
    assert time.monotonic() - t < 30  # refused at once, never a hang (a generous bound, not a timing test)


def test_async_writer_database_down_then_back(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    dsn = [CLOSED_DSN]  # the database is "down" until the test points the writer at the real server
    w = AsyncWriter(lambda: PostgresStore(dsn[0], pg_schema, connect_timeout=2), tmp_path / "spill",
                    capacity_rows=2500, retry_max=0.3)
    states = [w.put(trades(1000, start=k * 1000)) for k in range(6)]
    assert states == ["buffered", "buffered", "spilled", "spilled", "spilled", "spilled"]  # never blocks
    deadline = time.monotonic() + 60
    while not w.report().down:
        assert time.monotonic() < deadline, "the writer never noticed the outage"
        time.sleep(0.05)
    r = w.report()
    assert r.pending_rows == 2000 and r.spilled_rows == r.spill_rows == 4000 and r.spill_files == 4
    assert r.written_rows == 0
    dsn[0] = pg_dsn  # the database is back
    assert w.flush(timeout=120)
    r = w.close()
    assert r.written_rows == r.inserted_rows == r.accepted_rows == 6000 and r.recovered_rows == 4000
    assert len(r.outages) == 1 and r.outages[0].end_ns is not None and r.outages[0].rows_delayed == 6000
    assert "127.0.0.1:1" in (r.last_error or "")
    st = PostgresStore(pg_dsn, pg_schema)
    assert st.query("SELECT count(DISTINCT trade_id) AS n FROM trades")["n"][0] == 6000


def test_spilled_rows_survive_the_writer(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    w = AsyncWriter(lambda: PostgresStore(CLOSED_DSN, pg_schema, connect_timeout=1), tmp_path, capacity_rows=0)
    for k in range(3):
        assert w.put(trades(500, start=k * 500)) == "spilled"
    r = w.close(timeout=0.5)
    assert r.spill_files == 3 and r.written_rows == 0
    w2 = AsyncWriter(lambda: PostgresStore(pg_dsn, pg_schema), tmp_path)  # the next run, database up
    assert w2.flush(timeout=120)
    assert w2.close().recovered_rows == 1500
    assert PostgresStore(pg_dsn, pg_schema).query("SELECT count(*) AS n FROM trades")["n"][0] == 1500


def test_rejected_batches_are_kept_and_counted(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    bad = Instrument("x", "HUGE", "1000000000", "1")  # ticks * 1e9 beyond int64: refused by the encoder
    b = trades(5, inst=bad)
    b.columns["price"][:] = 2**62
    w = AsyncWriter(lambda: PostgresStore(pg_dsn, pg_schema), tmp_path)
    w.put(b)
    w.put(trades(5))
    assert w.flush(timeout=120)
    r = w.close()
    assert r.rejected_rows == 5 and r.inserted_rows == 5 and len(w.spill.rejected()) == 1


_PG_WRITER = r"""
import sys
from store_fixtures import trades
from flowbook.store import PostgresStore
dsn, schema, batches, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
st = PostgresStore(dsn, schema)
for k in range(batches):
    st.write(trades(rows, start=k * rows))
    print(k, flush=True)
"""


def test_kill_9_mid_batch_then_restart(pg_dsn: str, pg_schema: str) -> None:
    """SIGKILL loses at most the uncommitted batch; re-running the whole import adds exactly the rest."""
    batches, rows = 10, 40_000
    proc = run_script(_PG_WRITER, pg_dsn, pg_schema, str(batches), str(rows))
    done = kill_9(proc, read_until(proc, 2))
    st = PostgresStore(pg_dsn, pg_schema)
    n = st.query("SELECT count(*) AS n FROM trades")["n"][0]
    assert n % rows == 0 and done * rows <= n <= (done + 1) * rows  # committed batches only
    proc = run_script(_PG_WRITER, pg_dsn, pg_schema, str(batches), str(rows))
    read_until(proc, batches)
    assert proc.wait() == 0
    df = st.query("SELECT count(*) AS n, count(DISTINCT trade_id) AS d FROM trades")
    assert df["n"][0] == df["d"][0] == batches * rows


_SPILL_WRITER = r"""
import sys
from store_fixtures import trades, CLOSED_DSN
from flowbook.store import AsyncWriter, PostgresStore
spill, schema, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = AsyncWriter(lambda: PostgresStore(CLOSED_DSN, schema, connect_timeout=1), spill, capacity_rows=0)
k = 0
while True:
    w.put(trades(rows, start=k * rows))
    print(k, flush=True)
    k += 1
"""


def test_kill_9_durable_writer_loses_nothing_accepted(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    """With capacity_rows=0 every accepted batch is on disk before put() returns: after SIGKILL (the
    database down all along) the next writer delivers every accepted row, once."""
    rows = 2000
    proc = run_script(_SPILL_WRITER, str(tmp_path), pg_schema, str(rows))
    accepted = kill_9(proc, read_until(proc, 5))
    w = AsyncWriter(lambda: PostgresStore(pg_dsn, pg_schema), tmp_path)
    assert w.flush(timeout=120)
    w.close()
    df = PostgresStore(pg_dsn, pg_schema).query("SELECT count(*) AS n, count(DISTINCT trade_id) AS d FROM trades")
    n = df["n"][0]
    assert n == df["d"][0] and n % rows == 0 and accepted * rows <= n <= (accepted + 1) * rows


def test_an_empty_batch_writes_nothing(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    empty = trades(0)
    assert PostgresStore(pg_dsn, pg_schema).write(empty) == 0
    from flowbook.store import ParquetStore

    assert ParquetStore(tmp_path / "p").write(empty) == 0
