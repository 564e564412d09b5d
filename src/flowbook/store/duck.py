"""DuckDB over the Parquet store: one view per table, results as polars / pandas / Arrow.

Each view reads ``<root>/<table>/venue=*/symbol=*/date=*/*.parquet`` with Hive partitioning, so
``venue``, ``symbol`` (VARCHAR) and ``date`` (DATE) are columns and filters on them skip whole
directories; ``union_by_name`` lets files written before a column was added be read beside newer ones.
A table without files yet is an empty view of the same columns, so queries never fail on an empty store.
Temporary files of writers (``.*.tmp``) do not match the glob and are never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from .errors import StoreError
from .schema import DECIMAL_SCALE, TABLES, Table

__all__ = ["DuckViews", "duck_type"]

_DUCK = {"ts": "TIMESTAMP_NS", "i8": "BIGINT", "i4": "INTEGER", "i2": "SMALLINT", "i1": "TINYINT",
         "u1": "UTINYINT", "u2": "USMALLINT", "f8": "DOUBLE", "price": f"DECIMAL(38,{DECIMAL_SCALE})",
         "qty": f"DECIMAL(38,{DECIMAL_SCALE})", "text": "VARCHAR", "inst": "VARCHAR"}
GLOB = "*/*/*/*.parquet"  # venue=/symbol=/date=/part


def duck_type(kind: str) -> str:
    return _DUCK[kind]


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def has_files(d: Path) -> bool:
    """True when ``d`` holds at least one finished Parquet file of a table (stops at the first)."""
    if not d.is_dir():
        return False
    for venue in d.iterdir():
        if venue.is_dir():
            for sym in venue.iterdir():
                if sym.is_dir():
                    for day in sym.iterdir():
                        if day.is_dir() and any(p.suffix == ".parquet" for p in day.iterdir()):
                            return True
    return False


class DuckViews:
    """An in-memory DuckDB connection with a view per stored table of ``root``."""

    def __init__(self, root: Path, threads: int | None = None) -> None:
        self.root = root
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._filled: dict[str, bool] = {}
        self.refresh()

    def _view_sql(self, t: Table, filled: bool) -> str:
        cols = ", ".join(f'"{c.name}"' for c in t.columns)
        if filled and t.name == "trade_bars_1m":
            # bar fragments (one per write and minute) merged per minute: open/close of the first/last
            # trade by natural key, sums of volumes and counts
            pattern = _lit(str(self.root / t.name / GLOB))
            first, last = "(open_ts, open_trade_id, open_seq)", "(close_ts, close_trade_id, close_seq)"
            return (f'CREATE OR REPLACE VIEW "{t.name}" AS SELECT venue, symbol, date, ts, '
                    f"arg_min(open, {first}) AS open, max(high) AS high, min(low) AS low, "
                    f"arg_max(close, {last}) AS close, sum(volume) AS volume, sum(buy_volume) AS buy_volume, "
                    "sum(sell_volume) AS sell_volume, sum(trades)::BIGINT AS trades, "
                    f"arg_min(open_ts, {first}) AS open_ts, arg_min(open_trade_id, {first}) AS open_trade_id, "
                    f"arg_min(open_seq, {first}) AS open_seq, arg_max(close_ts, {last}) AS close_ts, "
                    f"arg_max(close_trade_id, {last}) AS close_trade_id, arg_max(close_seq, {last}) AS close_seq "
                    f"FROM read_parquet({pattern}, hive_partitioning = true, union_by_name = true, "
                    "hive_types = {'venue': VARCHAR, 'symbol': VARCHAR, 'date': DATE}) GROUP BY venue, symbol, date, ts")
        if filled:
            pattern = _lit(str(self.root / t.name / GLOB))
            return (f'CREATE OR REPLACE VIEW "{t.name}" AS SELECT venue, symbol, date, {cols} FROM read_parquet('
                    f"{pattern}, hive_partitioning = true, union_by_name = true, "
                    "hive_types = {'venue': VARCHAR, 'symbol': VARCHAR, 'date': DATE})")
        typed = ", ".join(f'NULL::{duck_type(c.kind)} AS "{c.name}"' for c in t.columns)
        return (f'CREATE OR REPLACE VIEW "{t.name}" AS SELECT NULL::VARCHAR AS venue, NULL::VARCHAR AS symbol, '
                f"NULL::DATE AS date, {typed} WHERE false")

    def refresh(self) -> None:
        """(Re)create the views of tables whose first file appeared since the last call."""
        for t in TABLES.values():
            if self._filled.get(t.name):
                continue  # a filled view globs at every query: new files are seen without a refresh
            filled = has_files(self.root / t.name)
            if t.name not in self._filled or filled:
                self.con.execute(self._view_sql(t, filled))
                self._filled[t.name] = filled

    def relation(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        """The result of one SQL statement (parameters as ``?`` / ``$name``)."""
        self.refresh()
        try:
            rel = self.con.sql(sql, params=params)
        except duckdb.Error as exc:
            raise StoreError(_one_line(exc)) from exc
        if rel is None:
            raise StoreError("the statement returns no rows (use a SELECT)")
        return rel

    def polars(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        rel = self.relation(sql, params)
        try:
            return rel.pl()
        except duckdb.Error as exc:
            raise StoreError(_one_line(exc)) from exc

    def arrow(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        rel = self.relation(sql, params)
        try:
            return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(_one_line(exc)) from exc

    def close(self) -> None:
        self.con.close()


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
