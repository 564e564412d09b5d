"""PostgreSQL bulk loads of new days (COPY into a new table, primary key built once, ATTACH PARTITION in
the write's transaction), writers racing for the same new day, kill -9 during a bulk load, and the
plans of the typical queries (partition pruning, natural-key index)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from store_fixtures import INST, T0, kill_9, read_until, run_script, trades

from flowbook.events import Instrument
from flowbook.features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine
from flowbook.store import Batch, PostgresStore, feature_batches
from flowbook.store.convert import config_hash
from flowbook.testing import synthetic_events

DAY = 86_400 * 10**9


def _catalog(st: PostgresStore, part: str) -> dict[str, object]:
    s = st.schema
    return {
        "attached": st.query("SELECT count(*) AS n FROM pg_inherits WHERE inhrelid = %s::regclass",
                             (f"{s}.{part}",))["n"][0],
        "checks": st.query("SELECT count(*) AS n FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
                           (f"{s}.{part}",))["n"][0],
        "pkey_attached": st.query("SELECT count(*) AS n FROM pg_inherits WHERE inhrelid = %s::regclass",
                                  (f"{s}.{part}_pkey",))["n"][0],
        "loose": st.query("SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname ~ '_p[0-9]{8}$' "
                          "AND NOT c.relispartition", (s,))["n"][0],
    }


def test_bulk_load_of_a_new_day(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema, bulk_rows=1000)
    b = trades(5000)
    assert st.write(b) == 5000
    assert _catalog(st, "trades_p20240808") == {"attached": 1, "checks": 0, "pkey_attached": 1, "loose": 0}
    df = st.query("SELECT ts_exchange, trade_id, price FROM trades ORDER BY ts_exchange")
    np.testing.assert_array_equal(df["ts_exchange"].to_numpy(), b.columns["ts_exchange"])
    assert st.write(b) == 0  # the same again: staged, nothing new
    assert st.write(trades(2000, start=5000)) == 2000  # the day exists now: the direct path
    assert st.query("SELECT count(DISTINCT trade_id) AS n FROM trades")["n"][0] == 7000
    # a primary key is in force on the bulk-loaded partition
    with pytest.raises(Exception, match="duplicate key"):
        st.conn().execute(f"INSERT INTO {pg_schema}.trades SELECT * FROM {pg_schema}.trades LIMIT 1")


def test_bulk_load_round_trips_features_exactly(pg_dsn: str, pg_schema: str) -> None:
    ev, inst = synthetic_events(20_000, 5)
    cfg = FeatureConfig()
    eng = FeatureEngine(inst, cfg)
    eng.process(ev)
    eng.finish()
    f, ii = eng.take()
    (b,) = feature_batches([(inst.symbol, f, ii)], [inst], FEATURE_COLUMNS, 0, config_hash(cfg))
    st = PostgresStore(pg_dsn, pg_schema, bulk_rows=1000)
    assert b.rows >= 1000 and st.write(b) == b.rows
    days = np.unique(b.columns["ts"] // DAY)
    assert _catalog(st, f"features_p{np.datetime64(int(days[0]), 'D').astype(str).replace('-', '')}")["attached"] == 1
    got = st.query("SELECT * FROM features ORDER BY ts, update_id, seq")
    order = np.lexsort([b.columns[k] for k in ("seq", "update_id", "ts")])
    for name, col in b.columns.items():
        want = col[order]
        assert np.array_equal(got[name].to_numpy(), want, equal_nan=want.dtype.kind == "f"), name


def test_duplicate_keys_in_a_bulk_batch_fall_back(pg_dsn: str, pg_schema: str) -> None:
    b = trades(3000)
    for c in ("ts_exchange", "trade_id"):
        b.columns[c][100:110] = b.columns[c][99]
    b.columns["seq"][99:110] = 0  # rows 99..109 share one key: the first wins
    st = PostgresStore(pg_dsn, pg_schema, bulk_rows=1000)
    assert st.write(b) == 2990
    assert _catalog(st, "trades_p20240808") == {"attached": 1, "checks": 0, "pkey_attached": 1, "loose": 0}
    assert st.query("SELECT sum(trades) AS n FROM trade_bars_1m")["n"][0] == 2990


_RACER = r"""
import sys, time
from store_fixtures import trades
from flowbook.events import Instrument
from flowbook.store import PostgresStore
dsn, schema, who, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
st = PostgresStore(dsn, schema, bulk_rows=50_000)
while time.time() < start:
    time.sleep(0.002)
if who == "bulk":  # one big write of a new day
    st.write(trades(300_000, step_ns=250_000))
else:  # small writes of another instrument, then of the same one (overlapping the big write)
    eth = Instrument("binance-usdm", "ETHUSDT", "0.01", "0.001")
    for k in range(20):
        st.write(trades(500, start=k * 500, inst=eth, step_ns=3_000_000))
    for k in range(10):
        st.write(trades(1000, start=k * 1000, step_ns=250_000))
print("done", flush=True)
"""


def test_a_bulk_load_and_other_writers_of_the_same_new_day(pg_dsn: str, pg_schema: str) -> None:
    """Writers that need the new day while a bulk load creates it wait for its commit, then see it."""
    st = PostgresStore(pg_dsn, pg_schema)  # migrated before the race
    start = time.time() + 3
    procs = [run_script(_RACER, pg_dsn, pg_schema, who, str(start)) for who in ("bulk", "small")]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "done", err[-2000:]
    got = st.query("SELECT symbol, count(*) AS n, count(DISTINCT trade_id) AS d FROM trades_v GROUP BY 1 ORDER BY 1")
    assert got.rows() == [("BTCUSDT", 300_000, 300_000), ("ETHUSDT", 10_000, 10_000)]
    bars = st.query("SELECT symbol, sum(trades) AS n FROM trade_bars_1m_v GROUP BY 1 ORDER BY 1").rows()
    assert bars == [("BTCUSDT", 300_000), ("ETHUSDT", 10_000)]
    assert _catalog(st, "trades_p20240808") == {"attached": 1, "checks": 0, "pkey_attached": 1, "loose": 0}


def test_kill_9_during_bulk_loads(pg_dsn: str, pg_schema: str) -> None:
    """A writer killed in the middle of a bulk load leaves no rows and no loose table of that day; the
    rerun completes the import without duplicates."""
    rows, days = 150_000, 4
    code = r"""
import sys
from store_fixtures import trades, T0
from flowbook.store import PostgresStore
dsn, schema, rows, days = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
st = PostgresStore(dsn, schema, bulk_rows=10_000)
for d in range(days):  # one new day per write: each a bulk load
    st.write(trades(rows, start=d * rows, t0=T0 + d * 86_400 * 10**9, step_ns=500_000))
    print(d, flush=True)
"""
    proc = run_script(code, pg_dsn, pg_schema, str(rows), str(days))
    done = kill_9(proc, read_until(proc, 1))
    st = PostgresStore(pg_dsn, pg_schema)
    n = st.query("SELECT count(*) AS n FROM trades")["n"][0]
    assert n % rows == 0 and done * rows <= n <= (done + 1) * rows
    assert _catalog(st, "trades_p20240808")["loose"] == 0
    proc = run_script(code, pg_dsn, pg_schema, str(rows), str(days))
    read_until(proc, days)
    assert proc.wait() == 0
    df = st.query("SELECT count(*) AS n, count(DISTINCT trade_id) AS d FROM trades")
    assert df["n"][0] == df["d"][0] == rows * days
    assert st.query("SELECT sum(trades) AS n FROM trade_bars_1m")["n"][0] == rows * days


def _plan(st: PostgresStore, q: str, params: tuple) -> dict:
    row = st.conn().execute("EXPLAIN (FORMAT JSON) " + q, params).fetchone()
    assert row is not None
    plan = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return plan[0]["Plan"]


def _scans(node: dict) -> list[tuple[str, str, str | None]]:
    out = []
    if "Relation Name" in node:
        out.append((node["Node Type"], node["Relation Name"], node.get("Index Name")))
    for child in node.get("Plans", []):
        out += _scans(child)
    return out


def test_typical_queries_prune_partitions_and_use_the_natural_key(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    n = 60_000  # three days, one row every 4.32 s
    ts = T0 + np.arange(n, dtype=np.int64) * (3 * DAY // n)
    cols: dict[str, object] = {"ts": ts, "ts_exchange": ts - 1000, "update_id": np.arange(n), "interval_ns": np.zeros(n),
                               "config_hash": np.full(n, 42)}
    for name in FEATURE_COLUMNS:
        cols[name] = np.arange(n) % 7 if name == "trade_count" else np.random.default_rng(1).random(n)
    st.write([Batch.make("features", INST, cols), trades(30_000, step_ns=3 * DAY // 30_000)])
    st.conn().execute(f"ANALYZE {pg_schema}.features; ANALYZE {pg_schema}.trades; ANALYZE {pg_schema}.trade_bars_1m")
    since = T0 + 3 * DAY - 15 * 60 * 10**9
    plan = _plan(st, "SELECT * FROM features WHERE instrument_id = %s AND config_hash = %s AND ts >= %s ORDER BY ts",
                 (1, 42, since))
    assert _scans(plan) == [("Index Scan", "features_p20240810", "features_p20240810_pkey")]
    plan = _plan(st, "SELECT * FROM trade_bars_1m WHERE instrument_id = %s AND ts >= %s AND ts < %s ORDER BY ts",
                 (1, T0 + DAY, T0 + 2 * DAY))
    assert [s[1] for s in _scans(plan)] == ["trade_bars_1m_p20240809"]
    # a minute of trades: one partition, its natural key
    plan = _plan(st, "SELECT * FROM trades WHERE instrument_id = 1 AND ts_exchange >= %s AND ts_exchange < %s",
                 (T0 + 2 * DAY, T0 + 2 * DAY + 60 * 10**9))
    assert [s[1:] for s in _scans(plan)] == [("trades_p20240810", "trades_p20240810_pkey")]
    assert st.bars("BTCUSDT", T0, T0 + 3 * DAY, "1d")["trades"].to_list() == [10_000] * 3


def test_small_writes_never_bulk_load(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)  # default threshold: 100,000 rows of one day in one write
    st.write(trades(5000))
    st.write(Batch.make("trades", Instrument("b", "X", "1", "1"), trades(10).columns))
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 5010


_CROSS = r"""
import sys, time
import numpy as np
from store_fixtures import trades, INST, T0
from flowbook.features import FEATURE_COLUMNS
from flowbook.store import Batch, PostgresStore
dsn, schema, flip, start = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
st = PostgresStore(dsn, schema)
while time.time() < start:
    time.sleep(0.002)
for k in range(15):
    n = 2000
    ts = T0 + (k * n + np.arange(n)) * 1_000_000
    cols = {"ts": ts, "ts_exchange": ts, "update_id": np.arange(n), "interval_ns": np.zeros(n), "config_hash": np.full(n, 7)}
    for name in FEATURE_COLUMNS:
        cols[name] = np.zeros(n)
    f = Batch.make("features", INST, cols)
    t = trades(n, start=k * n)
    st.write([t, f] if flip else [f, t])  # the same rows from both writers, tables in opposite orders
print("done", flush=True)
"""


def test_writers_with_tables_in_opposite_orders_do_not_deadlock(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    st.write(trades(10))  # the day exists: both writers take the direct or the staged path
    start = time.time() + 3
    procs = [run_script(_CROSS, pg_dsn, pg_schema, flip, str(start)) for flip in ("0", "1")]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == "done", err[-2000:]
    df = st.query("SELECT (SELECT count(*) FROM trades) AS t, (SELECT count(DISTINCT trade_id) FROM trades) AS d, "
                  "(SELECT count(*) FROM features) AS f, (SELECT sum(trades) FROM trade_bars_1m) AS b")
    assert df.rows() == [(30_000, 30_000, 30_000, 30_000)]
