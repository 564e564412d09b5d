"""The embedded store: Parquet round trips, atomic appends, kill -9 of a writer, DuckDB views, URIs."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from store_fixtures import INST, T0, kill_9, read_until, run_script, trades

from flowbook.events import EVENT_DTYPE, Instrument
from flowbook.store import Batch, ParquetStore, StoreError, default_root, event_batches, open_store
from flowbook.store.decimals import to_decimal128
from flowbook.store.schema import rank_within, table
from flowbook.store.uri import split_pg_uri
from flowbook.testing import synthetic_events


@pytest.fixture(scope="module")
def synth() -> tuple[np.ndarray, Instrument]:
    return synthetic_events(30_000, 3)


def test_events_round_trip_exact(tmp_path: Path, synth: tuple[np.ndarray, Instrument]) -> None:
    ev, inst = synth
    st = ParquetStore(tmp_path)
    assert st.write(event_batches(ev, [inst], ["events"])) == len(ev)
    back, inst2 = st.read_events(inst.venue, inst.symbol)
    assert back.dtype == EVENT_DTYPE
    assert inst2 == inst
    np.testing.assert_array_equal(back, ev)  # every field, ns timestamps included
    df = st.query("SELECT * FROM events LIMIT 1")
    assert df.schema["ts_local"] == pl.Datetime("ns") and df.schema["kind"] == pl.UInt8
    assert df["tick_size"][0] == "0.1" and df["symbol"][0] == inst.symbol and df["venue"][0] == inst.venue
    ns = st.query("SELECT epoch_ns(ts_local) AS t FROM events")["t"].to_numpy()
    np.testing.assert_array_equal(np.sort(ns), np.sort(ev["ts_local"]))


def test_trades_decimals_exact_and_partition_names(tmp_path: Path) -> None:
    odd = Instrument("okx", "BTC/USDT-SWAP", "0.5", "0.00000001")  # a '/' and an odd tick
    st = ParquetStore(tmp_path)
    b1, b2 = trades(500), trades(300, start=500, inst=odd)
    b2.columns["price"][:3] = [-3, 0, 2**62 // 5]  # negative, zero, a huge value (128-bit unscaled)
    st.write([b1, b2])
    for b in (b1, b2):
        df = st.query("SELECT epoch_ns(ts_exchange) AS ts, trade_id, price, qty FROM trades "
                      "WHERE symbol = ? ORDER BY trade_id", [b.instrument.symbol])
        assert df.schema["price"] == pl.Decimal(38, 12)
        tick, lot = Decimal(b.instrument.tick_size), Decimal(b.instrument.lot_size)
        assert df["price"].to_list() == [Decimal(int(x)) * tick for x in b.columns["price"]]
        assert df["qty"].to_list() == [Decimal(int(x)) * lot for x in b.columns["qty"]]
        np.testing.assert_array_equal(df["ts"].to_numpy(), b.columns["ts_exchange"])
    assert (tmp_path / "trades" / "venue=okx" / "symbol=BTC%2FUSDT-SWAP").is_dir()


def test_decimal_columns_exact_both_ways() -> None:
    rng = np.random.default_rng(7)
    units = np.r_[rng.integers(-(2**62), 2**62, 3000), 0, 1, -1, 2**63 - 1, -(2**63) + 1]
    for step in ("0.1", "0.001", "1", "0.00000001", "7.5", "0.000000000001", "12345.678"):
        arr = to_decimal128(units, step, 12)
        assert arr.type == pa.decimal128(38, 12)
        assert arr.to_pylist() == [Decimal(int(u)) * Decimal(step) for u in units]
    with pytest.raises(StoreError):
        to_decimal128(units, "0.0000000000001", 12)  # more decimals than the column holds


def test_seq_separates_rows_sharing_a_key() -> None:
    t = table("book_deltas")
    cols = {"ts_local": np.array([5, 5, 5, 6, 5]), "update_id": np.array([1, 1, 2, 1, 1])}
    np.testing.assert_array_equal(rank_within(t, cols, 5), [0, 1, 0, 0, 2])


def test_rows_spanning_days_go_to_date_partitions(tmp_path: Path) -> None:
    st = ParquetStore(tmp_path)
    st.write(trades(100, t0=T0 + 86_400 * 10**9 - 50 * 10**6))  # 50 ms before midnight, 1 ms apart
    df = st.query("SELECT date, count(*) AS n FROM trades GROUP BY date ORDER BY date")
    assert df["n"].to_list() == [50, 50]
    assert [str(d) for d in df["date"].to_list()] == ["2024-08-08", "2024-08-09"]


def test_empty_store_has_typed_empty_views(tmp_path: Path) -> None:
    st = ParquetStore(tmp_path / "nothing-yet")
    df = st.query("SELECT * FROM features")
    assert df.height == 0 and "ofi" in df.columns and df.schema["ts"] == pl.Datetime("ns")
    st.write(trades(10))
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 10  # a view created after the first file


def test_batch_id_makes_appends_idempotent(tmp_path: Path) -> None:
    st = ParquetStore(tmp_path)
    b = trades(1000)
    assert st.write(b, batch_id="import-1") == 1000
    assert st.write(b, batch_id="import-1") == 0
    assert st.write(b) == 1000  # without an id an append is an append
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 2000
    with pytest.raises(StoreError):
        st.write(b, batch_id="../escape")


def test_temp_files_are_invisible_and_cleaned(tmp_path: Path) -> None:
    st = ParquetStore(tmp_path)
    st.write(trades(100))
    part = next((tmp_path / "trades").glob("*/*/*"))
    dead = part / ".part-dead.parquet.999999999.tmp"  # a writer killed mid-file: truncated bytes
    dead.write_bytes(b"PAR1 truncated")
    live = part / f".part-live.parquet.{os.getpid()}.tmp"  # a running writer's file
    live.write_bytes(b"PAR1 still writing")
    assert st.query("SELECT count(*) AS n FROM trades")["n"][0] == 100
    assert ParquetStore(tmp_path).cleanup_temp() == 1
    assert not dead.exists() and live.exists()


def test_pandas_and_arrow_results(tmp_path: Path) -> None:
    st = ParquetStore(tmp_path)
    st.write(trades(20))
    pdf = st.query_pandas("SELECT trade_id, price FROM trades ORDER BY trade_id")
    assert list(pdf["trade_id"])[:2] == [1_000_000, 1_000_001]
    assert st.query_arrow("SELECT count(*) AS n FROM trades").column("n")[0].as_py() == 20


def test_bad_sql_and_unknown_table_are_store_errors(tmp_path: Path) -> None:
    st = ParquetStore(tmp_path)
    with pytest.raises(StoreError, match="nope"):
        st.query("SELECT * FROM nope")
    with pytest.raises(StoreError, match="unknown table"):
        Batch.make("nope", INST, {})
    with pytest.raises(StoreError, match="missing columns"):
        Batch.make("trades", INST, {"ts_exchange": [1]})


_PARQUET_WRITER = r"""
import sys
from store_fixtures import trades
from flowbook.store import ParquetStore
root, batches, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
st = ParquetStore(root, threads=1)
for k in range(batches):
    st.write(trades(rows, start=k * rows), batch_id=f"b{k:04d}")
    print(k, flush=True)
"""


def test_kill_9_mid_batch_then_restart(tmp_path: Path) -> None:
    """A writer killed with SIGKILL loses at most the batch in flight; a restart with the same batch
    ids completes the import without duplicates, and the store is readable all along."""
    root, batches, rows = tmp_path / "store", 12, 150_000
    proc = run_script(_PARQUET_WRITER, str(root), str(batches), str(rows))
    done = kill_9(proc, read_until(proc, 3))
    st = ParquetStore(root)
    n = st.query("SELECT count(*) AS n FROM trades")["n"][0]
    assert n % rows == 0 and done * rows <= n <= (done + 1) * rows  # whole batches only
    proc = run_script(_PARQUET_WRITER, str(root), str(batches), str(rows))
    read_until(proc, batches)
    assert proc.wait() == 0
    df = st.query("SELECT count(*) AS n, count(DISTINCT trade_id) AS d FROM trades")
    assert df["n"][0] == df["d"][0] == batches * rows
    assert not list(root.glob("**/.*.tmp"))  # the restart removed what the killed writer left


def test_uris_and_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store(f"parquet:{tmp_path}"), ParquetStore)
    assert open_store(f"parquet://{tmp_path}").root == tmp_path
    assert open_store(tmp_path / "x").root == tmp_path / "x"
    monkeypatch.setenv("FLOWBOOK_STORE", f"parquet:{tmp_path / 'env'}")
    assert open_store().root == tmp_path / "env"
    monkeypatch.delenv("FLOWBOOK_STORE")
    monkeypatch.setenv("FLOWBOOK_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / "store" == open_store().root
    with pytest.raises(StoreError, match="unknown store URI"):
        open_store("s3://bucket/x")
    monkeypatch.setenv("FLOWBOOK_PG_DSN", "postgresql://u@h:5433/db?schema=mine&sslmode=disable")
    assert split_pg_uri("postgresql:") == ("postgresql://u@h:5433/db?sslmode=disable", "mine")
    assert split_pg_uri("postgresql://u@h/db") == ("postgresql://u@h/db", "flowbook")
