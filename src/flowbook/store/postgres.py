"""The PostgreSQL server store (psycopg 3): migrations, on-demand partitions, COPY + ON CONFLICT writes.

One :meth:`PostgresStore.write` is one transaction.  Per table, the rows travel as binary COPY built
with NumPy (times as bigint ns, prices and sizes as exact binary ``numeric``).  When no stored row of
the batch's instrument lies in the batch's time range (checked under an advisory lock on table and
instrument), no natural key can conflict and COPY goes straight into the table: the fast path of
live data and first imports.  Otherwise (a re-import, overlapping data, or a duplicate inside the
batch) the rows go to a session temp staging table and ``INSERT … SELECT … ON CONFLICT DO NOTHING``
moves the new ones: re-running an import, or the batch a killed writer had in flight, never
duplicates.  Identifiers come from the table registry or are validated; values are bound parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from ..events import Instrument
from .errors import StoreError
from .migrate import apply_migrations, valid_identifier
from .pgcopy import HEADER, TRAILER, encode_rows, numeric_digits
from .schema import TABLES, Batch, Column, Table, days_of

__all__ = ["PostgresStore", "StoreUnavailable", "redact"]

log = logging.getLogger("flowbook.store")
_COPY_TYPE = {"ts": "int8", "i8": "int8", "i4": "int4", "i2": "int2", "f8": "float8", "price": "numeric",
              "qty": "numeric", "text": "text"}
_CHUNK_ROWS = 1 << 16  # rows encoded per COPY message


class StoreUnavailable(StoreError):
    """The database could not be reached or dropped the connection (worth retrying later)."""


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable DSN>"
    host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname", "")
    return f"postgresql://{info.get('user', '')}@{host}:{port}/{db}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class PostgresStore:
    """Tables of ``flowbook.store.schema`` in one PostgreSQL schema.

    Parameters
    ----------
    dsn:
        libpq connection string or ``postgresql://`` URI.
    schema:
        the schema holding the tables (created and migrated on open).
    connect_timeout:
        seconds before an unreachable server raises :class:`StoreUnavailable`.
    """

    kind = "postgresql"
    replay_tables = ("book_snapshots", "book_deltas", "trades", "liquidations", "funding_rates", "open_interest")

    def __init__(self, dsn: str, schema: str = "flowbook", connect_timeout: float = 5.0,
                 migrate: bool = True) -> None:
        self.dsn = dsn
        self.schema = valid_identifier(schema, "schema name")
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._instruments: dict[tuple[str, str, str, str], int] = {}
        self._partitions: set[tuple[str, int]] = set()
        self._staged: set[str] = set()
        self.applied: list[int] = []
        self.conn()
        if migrate:
            self.applied = apply_migrations(self.conn(), self.schema)
            self.conn().execute(sql.SQL("SET search_path TO {}, public").format(self._s))

    @property
    def uri(self) -> str:
        return f"{redact(self.dsn)}?schema={self.schema}"

    @property
    def _s(self) -> sql.Identifier:
        return sql.Identifier(self.schema)

    # -- connection --------------------------------------------------------------------------------
    def conn(self) -> psycopg.Connection:
        """The open connection (reconnecting after a failure)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._instruments.clear()
            self._staged.clear()
            try:
                self._conn = psycopg.connect(self.dsn, connect_timeout=max(1, int(self.connect_timeout)),
                                             application_name="flowbook", autocommit=True)
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot connect to PostgreSQL at {redact(self.dsn)}: {_first_line(exc)}") from exc
            self._conn.execute(sql.SQL("SET search_path TO {}, public").format(self._s))
            self._conn.execute("SET temp_buffers = '64MB'")  # staging tables stay in memory
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, exc: psycopg.Error, what: str) -> StoreError:
        broken = self._conn is None or self._conn.closed or self._conn.broken
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or broken:
            self.close()
            return StoreUnavailable(f"{what}: PostgreSQL at {redact(self.dsn)}: {_first_line(exc)}")
        return StoreError(f"{what}: {_first_line(exc)}")

    # -- writing -----------------------------------------------------------------------------------
    def write(self, batches: Batch | Iterable[Batch], batch_id: str | None = None) -> int:
        """Insert batches in one transaction; returns the rows inserted (existing keys are skipped).

        ``batch_id`` is accepted for symmetry with the Parquet store; natural keys make it unneeded.
        """
        bs = [batches] if isinstance(batches, Batch) else [b for b in batches if b.rows]
        if not bs:
            return 0
        for b in bs:
            if not b.table.postgres:
                raise StoreError(f"table {b.table.name!r} is kept by the Parquet store only")
        conn = self.conn()
        try:
            with conn.transaction():  # instruments and partitions first, in a short transaction
                iids = [self._instrument_id(b.instrument) for b in bs]
                for b in bs:
                    self._ensure_partitions(b)
            inserted = 0
            with conn.transaction():
                by_table: dict[str, list[int]] = {}
                for j, b in enumerate(bs):
                    by_table.setdefault(b.table.name, []).append(j)
                for name, idx in by_table.items():
                    inserted += self._write_table(TABLES[name], [bs[j] for j in idx], [iids[j] for j in idx])
            return inserted
        except BaseException as exc:
            self._partitions.clear()  # what a rolled-back transaction created is gone
            self._staged.clear()
            self._instruments.clear()
            if isinstance(exc, psycopg.Error):
                raise self._fail(exc, "writing") from exc
            raise

    def _instrument_id(self, inst: Instrument) -> int:
        key = (inst.venue, inst.symbol, inst.tick_size, inst.lot_size)
        iid = self._instruments.get(key)
        if iid is None:
            row = self.conn().execute(
                sql.SQL("INSERT INTO {}.instruments AS i (venue, symbol, tick_size, lot_size, multiplier, inverse) "
                        "VALUES (%s, %s, %s::numeric, %s::numeric, %s, %s) ON CONFLICT (venue, symbol) DO UPDATE "
                        "SET tick_size = EXCLUDED.tick_size, lot_size = EXCLUDED.lot_size, multiplier = "
                        "EXCLUDED.multiplier, inverse = EXCLUDED.inverse, updated_at = now() RETURNING instrument_id"
                        ).format(self._s),
                (inst.venue, inst.symbol, inst.tick_size, inst.lot_size, inst.multiplier, inst.inverse)).fetchone()
            assert row is not None
            iid = self._instruments[key] = int(row[0])
        return iid

    def _ensure_partitions(self, b: Batch) -> None:
        for day in np.unique(days_of(b.columns[b.table.time])).tolist():
            if (b.table.name, day) in self._partitions:
                continue
            date = datetime(1970, 1, 1, tzinfo=UTC).date() + timedelta(days=day)
            self.conn().execute(sql.SQL("SELECT {}.fb_ensure_partition(%s, %s)").format(self._s),
                                (b.table.name, date))
            self._partitions.add((b.table.name, day))

    def _stage(self, t: Table) -> sql.Identifier:
        """A session temp table shaped like ``t`` (emptied at every commit)."""
        name = f"stg_{t.name}"
        if name not in self._staged:
            self.conn().execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}.{}) ON COMMIT DELETE ROWS")
                                .format(sql.Identifier(name), self._s, sql.Identifier(t.name)))
            self._staged.add(name)
        return sql.Identifier(name)

    def _fresh(self, t: Table, b: Batch, iid: int) -> bool:
        """True when no stored row of this instrument (and constant key prefix) lies in the batch's time
        range: then no key can conflict and the rows may be copied straight into the table.  Holds an
        advisory lock on (table, instrument) until commit, so concurrent writers of one instrument queue."""
        where = [sql.SQL("instrument_id = %s")]
        params: list[Any] = [iid]
        for k in t.key[: t.key.index(t.time)]:
            v = b.columns[k]
            if v.dtype == object or v.min() != v.max():
                return False
            where.append(sql.SQL("{} = %s").format(sql.Identifier(k)))
            params.append(int(v[0]))
        ts = b.columns[t.time]
        where.append(sql.SQL("{} BETWEEN %s AND %s").format(sql.Identifier(t.time)))
        params += [int(ts.min()), int(ts.max())]
        conn = self.conn()
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"{self.schema}.{t.name}", iid))
        row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{} WHERE {})").format(
            self._s, sql.Identifier(t.name), sql.SQL(" AND ").join(where)), params).fetchone()
        return not (row and row[0])

    @staticmethod
    def _encode(b: Batch, iid: int) -> bytes:
        cols: list[tuple[str, np.ndarray]] = [("i4", np.full(b.rows, iid, np.int32))]
        for c in b.table.data_columns:
            v = b.columns[c.name]
            if c.kind in ("price", "qty"):
                v = numeric_digits(v, b.instrument.tick_size if c.kind == "price" else b.instrument.lot_size)
            cols.append((c.kind, v))
        return encode_rows(cols)

    def _copy(self, target: sql.Composable, t: Table, bs: Sequence[Batch], iids: Sequence[int]) -> None:
        names = sql.SQL(", ").join(sql.Identifier(n) for n in ["instrument_id", *(c.name for c in t.data_columns)])
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, names)
        with self.conn().cursor() as cur:
            if any(c.kind == "text" for c in t.data_columns):  # low-volume tables: psycopg adapts per row
                with cur.copy(stmt) as cp:
                    cp.set_types(["int4"] + [_COPY_TYPE[c.kind] for c in t.data_columns])
                    for b, iid in zip(bs, iids, strict=True):
                        vals = [_decimals(b, c) if c.kind in ("price", "qty") else b.columns[c.name].tolist()
                                for c in t.data_columns]
                        for row in zip(*vals, strict=True):
                            cp.write_row((iid, *row))
                return
            # a writer thread sends one chunk while the next is encoded
            with cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as cp:
                cp.write(HEADER)
                for b, iid in zip(bs, iids, strict=True):
                    for lo in range(0, b.rows, _CHUNK_ROWS):
                        cp.write(self._encode(b.slice(slice(lo, lo + _CHUNK_ROWS)), iid))
                cp.write(TRAILER)

    def _write_table(self, t: Table, bs: Sequence[Batch], iids: Sequence[int]) -> int:
        """Rows of one table: straight COPY when nothing stored can conflict, else staged + ON CONFLICT."""
        conn = self.conn()
        rows = sum(b.rows for b in bs)
        fixed = all(c.kind != "text" for c in t.data_columns)
        if fixed and all([self._fresh(t, b, iid) for b, iid in zip(bs, iids, strict=True)]):
            try:
                with conn.transaction():  # a savepoint: a duplicate inside the batch falls back below
                    self._copy(sql.SQL("{}.{}").format(self._s, sql.Identifier(t.name)), t, bs, iids)
                return rows
            except psycopg.errors.UniqueViolation:
                pass
        stage = self._stage(t)  # empty: ON COMMIT DELETE ROWS, one use per transaction
        self._copy(stage, t, bs, iids)
        cur = conn.execute(sql.SQL("INSERT INTO {}.{} SELECT * FROM {} ON CONFLICT DO NOTHING").format(
            self._s, sql.Identifier(t.name), stage))
        return max(cur.rowcount, 0)

    # -- reading and maintenance -------------------------------------------------------------------
    def query(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a read-only query; a polars DataFrame (numeric columns as Decimal).

        Results travel in PostgreSQL's binary format and are assembled column by column.
        """
        conn = self.conn()
        try:
            with conn.transaction(force_rollback=True), conn.cursor(binary=True) as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(query, params)  # type: ignore[arg-type]
                if cur.description is None:
                    raise StoreError("the statement returns no rows (use a SELECT)")
                names = _unique([d.name for d in cur.description])
                rows = cur.fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc, "query") from exc
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pl.DataFrame(dict(zip(names, columns, strict=True)), strict=False)

    def query_pandas(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        try:
            import pandas  # noqa: F401
        except ImportError as exc:
            raise StoreError("pandas is not installed (pip install 'flowbook[pandas]')") from exc
        return self.query(query, params).to_pandas()

    def _call(self, func: str, *args: Any) -> Any:
        conn = self.conn()
        try:
            with conn.transaction():
                placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in args)
                row = conn.execute(sql.SQL("SELECT {}.{}({})").format(self._s, sql.Identifier(func), placeholders),
                                   args).fetchone()
        except psycopg.Error as exc:
            raise self._fail(exc, func) from exc
        return row[0] if row else None

    def drop_before(self, table_name: str, cutoff_ns: int) -> int:
        """Drop whole days of ``table_name`` ending at or before ``cutoff_ns``; partitions dropped."""
        t = self._table(table_name)
        n = int(self._call("fb_drop_before", t.name, int(cutoff_ns)))
        self._partitions.clear()
        return n

    def set_retention(self, table_name: str, keep: timedelta) -> None:
        """Keep ``keep`` of a table (TimescaleDB policy, or applied by :meth:`apply_retention`)."""
        self._call("fb_set_retention", self._table(table_name).name, keep)

    def apply_retention(self) -> int:
        n = int(self._call("fb_apply_retention"))
        self._partitions.clear()
        return n

    def timescale(self) -> bool:
        """True when this server can (and may) use TimescaleDB."""
        return bool(self._call("fb_timescale_available"))

    def partitioned(self, table_name: str) -> bool:
        return bool(self._call("fb_is_partitioned", self._table(table_name).name))

    @staticmethod
    def _table(name: str) -> Table:
        t = TABLES.get(name)
        if t is None or not t.postgres:
            raise StoreError(f"no PostgreSQL table {name!r}")
        return t


def _decimals(b: Batch, c: Column) -> list[Decimal]:
    step = Decimal(b.instrument.tick_size if c.kind == "price" else b.instrument.lot_size)
    return [Decimal(v) * step for v in b.columns[c.name].tolist()]


def _unique(names: list[str]) -> list[str]:
    """Column names made unique for a DataFrame (``count``, ``count_1``, …)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k}")
    return out
