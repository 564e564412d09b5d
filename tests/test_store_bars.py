"""1-minute trade bars kept at ingest (PostgreSQL ``trade_bars_1m``, Parquet bar fragments), checked
against the aggregate computed in Python from the trades stored, after every kind of write: split
minutes, re-imports, overlaps, duplicates, drops, volumes beyond int64, both stores, coarser intervals."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import psycopg
import pytest
from store_fixtures import INST, T0, trades

from flowbook.events import Instrument
from flowbook.store import Batch, ParquetStore, PostgresStore, StoreError
from flowbook.store.bars import parse_interval

DAY = 86_400 * 10**9
MIN = 60 * 10**9
NAMES = ["ts", "open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "trades"]


def reference(rows: list[tuple[int, int, int, int, Decimal, Decimal]], step: int) -> list[tuple]:
    """Bars of (ts, trade_id, seq, side, price, qty) rows, computed one trade at a time."""
    groups: dict[int, list[tuple]] = defaultdict(list)
    for r in rows:
        groups[r[0] // step * step].append(r)
    out = []
    for b in sorted(groups):
        g = sorted(groups[b], key=lambda r: (r[0], r[1], r[2]))
        prices = [r[4] for r in g]
        out.append((b, g[0][4], max(prices), min(prices), g[-1][4], sum(r[5] for r in g),
                    sum((r[5] for r in g if r[3] > 0), Decimal(0)), sum((r[5] for r in g if r[3] < 0), Decimal(0)),
                    len(g)))
    return out


def stored_trades(st: PostgresStore, symbol: str = "BTCUSDT") -> list[tuple]:
    return st.query("SELECT ts_exchange, trade_id, seq, side, price, qty FROM trades_v WHERE symbol = %s",
                    (symbol,)).rows()


def as_rows(df: pl.DataFrame) -> list[tuple]:
    df = df.with_columns(pl.col("ts").cast(pl.Int64)) if df.schema["ts"] != pl.Int64 else df
    return df.select(NAMES).rows()


def table_rows(st: PostgresStore) -> list[tuple]:
    return st.query(f"SELECT {', '.join(NAMES)} FROM trade_bars_1m ORDER BY instrument_id, ts").rows()


def mixed(n: int, start: int, t0: int = T0, step_ns: int = 7_000_000, inst: Instrument = INST) -> Batch:
    """Trades with some side-0 rows, equal times with different ids, and negative prices."""
    b = trades(n, start=start, t0=t0, step_ns=step_ns, inst=inst)
    i = np.arange(start, start + n)
    b.columns["side"][:] = np.select([i % 5 == 0, i % 2 == 0], [0, 1], -1)
    b.columns["ts_exchange"][i % 11 == 3] -= step_ns  # same time as the trade before, a later id
    b.columns["price"][i % 97 == 0] *= -1
    return b


def test_bars_equal_the_stored_trades_after_every_kind_of_write(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    writes = [
        mixed(4000, 0),  # minutes 0..0.47: direct path
        mixed(3000, 4000).slice(slice(None, None, -1)),  # continues inside the last minute (rows in reverse
        # order): direct path, merged into a stored bar
        [mixed(2000, 3000), mixed(500, 9000)],  # overlaps stored rows: staged path, only new rows count
        mixed(3000, 0),  # everything stored already: nothing changes
    ]
    dup = mixed(10, 20_000)
    dup.columns["trade_id"][:] = 5
    dup.columns["ts_exchange"][:] = T0 + 3 * MIN + 123
    dup.columns["seq"][:] = 0
    writes.append(dup)  # ten rows with one key in a batch: one trade, one bar
    for w in writes:
        st.write(w)
        assert table_rows(st) == reference(stored_trades(st), MIN)
    assert stored_trades(st) and st.query("SELECT count(*) AS n FROM trades")["n"][0] == 7501
    # the API, coarser intervals and sub-minute ones (those from the trades)
    for iv in ("1m", "5m", "1h", "10s", "1s"):
        got = as_rows(st.bars("BTCUSDT", T0, T0 + DAY, iv))
        want = reference(stored_trades(st), parse_interval(iv))
        assert got == want, iv
    part = as_rows(st.bars("BTCUSDT", T0 + 1, T0 + 3 * MIN + 1))  # buckets starting in the range (with trades)
    assert [r[0] for r in part] == [T0 + MIN, T0 + 3 * MIN]
    # rebuilding from the trades gives the same bars
    before = st.query("SELECT * FROM trade_bars_1m ORDER BY ts").rows()
    assert st.rebuild_bars() == len(before)
    assert st.query("SELECT * FROM trade_bars_1m ORDER BY ts").rows() == before


def test_bars_of_several_instruments_in_one_write_and_the_view(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    eth = Instrument("binance-usdm", "ETHUSDT", "0.01", "0.001")
    st.write([mixed(3000, 0), mixed(2500, 0, inst=eth, step_ns=11_000_000), mixed(500, 3000)])
    for sym in ("BTCUSDT", "ETHUSDT"):
        assert as_rows(st.bars(sym, T0, T0 + DAY)) == reference(stored_trades(st, sym), MIN)
    v = st.query("SELECT symbol, count(*) AS n, sum(trades) AS t FROM trade_bars_1m_v GROUP BY 1 ORDER BY 1").rows()
    assert v == [("BTCUSDT", 1, 3500), ("ETHUSDT", 1, 2500)]
    st.write(mixed(10, 0, inst=Instrument("okx", "BTCUSDT", "0.1", "0.001")))
    with pytest.raises(StoreError, match="several venues"):
        st.bars("BTCUSDT", T0, T0 + DAY)
    assert st.bars("BTCUSDT", T0, T0 + DAY, venue="okx")["trades"].to_list() == [10]
    assert st.bars("NOPE", T0, T0 + DAY).height == 0


def test_bars_follow_dropped_days_and_reimports(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    b = trades(3000, step_ns=DAY // 1000)  # three days
    st.write(b)
    assert st.query("SELECT count(DISTINCT ts / 86400000000000) AS d FROM trade_bars_1m")["d"][0] == 3
    assert st.drop_before("trades", T0 + DAY) == 1  # the first day, and its bars
    assert table_rows(st) == reference(stored_trades(st), MIN)
    st.write(b)  # the dropped day comes back once
    assert table_rows(st) == reference(stored_trades(st), MIN)
    assert st.query("SELECT sum(trades) AS n FROM trade_bars_1m")["n"][0] == 3000
    st.set_retention("trades", timedelta(days=1))  # the data is from 2024: all of it goes, bars too
    assert st.apply_retention() == 3
    assert st.query("SELECT count(*) AS n FROM trade_bars_1m")["n"][0] == 0


def test_bar_volumes_beyond_int64_stay_exact(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    tiny = Instrument("x", "TINY", "1", "0.000000001")
    b = trades(4, inst=tiny)
    b.columns["qty"][:] = 2**62  # four of them: 2**64 lots in one minute
    st = PostgresStore(pg_dsn, pg_schema)
    st.write(b)
    got = st.query("SELECT volume, trades FROM trade_bars_1m").rows()
    assert got == [(Decimal(2**64) * Decimal("0.000000001"), 4)]
    with pytest.raises(StoreError, match="exceeds int64"):  # Parquet keeps lots as int64: refused, nothing written
        ParquetStore(tmp_path).write(b)
    assert not list(tmp_path.rglob("*.parquet"))


def test_parquet_bars_equal_postgres_bars(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    pq, pg = ParquetStore(tmp_path / "store"), PostgresStore(pg_dsn, pg_schema)
    parts = [mixed(4000, 0), mixed(3000, 4000, step_ns=9_000_000), mixed(1500, 7000, t0=T0 + DAY - MIN)]
    for b in parts:  # minutes split across writes: the view merges the fragments
        pq.write(b)
        pg.write(b)
    assert pq.query("SELECT count(*) AS n FROM read_parquet(?)",
                    [str(tmp_path / "store/trade_bars_1m/*/*/*/*.parquet")])["n"][0] > pq.bars(
                        "BTCUSDT", T0, T0 + 2 * DAY).height  # there are fragments to merge
    for iv in ("1m", "15m", "1d", "30s"):
        a, b = pq.bars("BTCUSDT", T0, T0 + 2 * DAY, iv), pg.bars("BTCUSDT", T0, T0 + 2 * DAY, iv)
        assert a.columns == b.columns == NAMES
        assert a.schema["ts"] == b.schema["ts"] == pl.Datetime("ns")
        assert as_rows(a) == as_rows(b) == reference(stored_trades(pg), parse_interval(iv)), iv
    # the merged view holds the bar keys too
    keys = pq.query("SELECT epoch_ns(open_ts) AS o, open_trade_id, epoch_ns(close_ts) AS c, close_trade_id "
                    "FROM trade_bars_1m ORDER BY ts").rows()
    assert keys == pg.query("SELECT open_ts, open_trade_id, close_ts, close_trade_id FROM trade_bars_1m "
                            "ORDER BY ts").rows()


def test_bars_are_not_written_directly(pg_dsn: str, pg_schema: str, tmp_path: Path) -> None:
    b = Batch.make("trade_bars_1m", INST, {n: np.zeros(1, np.int64) for n in [
        "ts", "open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "trades", "open_ts",
        "open_trade_id", "open_seq", "close_ts", "close_trade_id", "close_seq"]})
    for st in (ParquetStore(tmp_path), PostgresStore(pg_dsn, pg_schema)):
        with pytest.raises(StoreError, match="kept by the store from the trades"):
            st.write(b)
    with pytest.raises(ValueError, match="bad interval"):
        parse_interval("5 minutes")


def test_migration_3_builds_the_bars_of_trades_stored_before(pg_dsn: str, pg_schema: str) -> None:
    st = PostgresStore(pg_dsn, pg_schema)
    st.write([mixed(3000, 0), mixed(100, 0, t0=T0 + DAY)])
    st.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # back to the schema of migration 2
        conn.execute(f"SET search_path TO {pg_schema}")
        conn.execute("DROP TABLE trade_bars_1m CASCADE; DROP FUNCTION fb_rebuild_trade_bars, fb_trade_bars_sql, "
                     "fb_trade_bars_merge; DELETE FROM schema_migrations WHERE version = 3")
    st = PostgresStore(pg_dsn, pg_schema)
    assert st.applied == [3]
    assert table_rows(st) == reference(stored_trades(st), MIN)
