"""The PostgreSQL server store (psycopg 3): migrations, on-demand partitions, COPY + ON CONFLICT writes,
trade bars kept at ingest, queries decoded column by column.

One :meth:`PostgresStore.write` is one transaction.  Per table, the rows travel as binary COPY built
with NumPy (times as bigint ns, prices and sizes as exact binary ``numeric``) by one of three paths:

* bulk: a day with no partition yet and at least ``bulk_rows`` rows in the write is copied into a new
  table, its primary key built once, and the table attached as the day's partition (under the lock
  ``fb_ensure_partition`` takes, so other writers needing a new partition wait for the commit);
* direct: when no stored row of the batch's instrument lies between the batch's smallest and largest
  natural key, no key can conflict and COPY goes straight into the table;
* staged: otherwise (a re-import, overlapping data, a duplicate inside the batch) the rows go to a
  session temp table and ``INSERT … SELECT … ON CONFLICT DO NOTHING`` moves the new ones.

Every write holds an advisory lock on (table, instrument) for its instruments until commit, taken in
one order (bulk tables, then table name and instrument id), so writers of one instrument queue and
do not deadlock on them.  Re-running an import, or the batch a killed writer had in flight, never
duplicates.  Trades also update ``trade_bars_1m`` in the same transaction (migration 0003).  Queries that return rows run as
``COPY (query) TO STDOUT (FORMAT BINARY)`` decoded with NumPy (:mod:`flowbook.store.pgread`).
Identifiers come from the table registry or are validated; values are bound parameters."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from ..events import Instrument
from .bars import BARS
from .errors import StoreError, StoreUnavailable
from .migrate import apply_migrations, valid_identifier
from .pgbars import COPY_TYPE, PgBars
from .pgcopy import HEADER, TRAILER, encode_rows, numeric_digits, row_dtype
from .pgquery import PgQueries
from .schema import NS_PER_DAY, TABLES, Batch, Column, Table, days_of

__all__ = ["PostgresStore", "StoreUnavailable", "redact"]

log = logging.getLogger("flowbook.store")
_INT_KINDS = ("ts", "i8", "i4", "i2", "i1", "u1", "u2")
_CHUNK_BYTES = 1 << 21  # COPY data encoded at a time: about 2 MB, which stays in the CPU cache


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


class PostgresStore(PgBars, PgQueries):
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
                 migrate: bool = True, bulk_rows: int = 100_000) -> None:
        self.dsn = dsn
        self.schema = valid_identifier(schema, "schema name")
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._instruments: dict[tuple[str, str, str, str], int] = {}
        self._partitions: set[tuple[str, int]] = set()
        self._staged: set[str] = set()
        self._native_cache: dict[str, bool] = {}
        self._bars_text: dict[str, str] = {}
        self.bulk_rows = bulk_rows
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

        Trades also update ``trade_bars_1m`` in the same transaction.  ``batch_id`` is accepted for
        symmetry with the Parquet store; natural keys make it unneeded.
        """
        bs = [b for b in ([batches] if isinstance(batches, Batch) else batches) if b.rows]
        if not bs:
            return 0
        for b in bs:
            if not b.table.postgres:
                raise StoreError(f"table {b.table.name!r} is kept by the Parquet store only")
            if b.table.derived:
                raise StoreError(f"table {b.table.name!r} is kept by the store from the trades; write trades")
        conn = self.conn()
        try:
            with conn.transaction():  # instruments and partitions first, in a short transaction
                iids = [self._instrument_id(b.instrument) for b in bs]
                bulk = self._prepare_partitions(bs)
            inserted = 0
            with conn.transaction():
                bulk = self._lock_bulk(bulk)
                by_table: dict[str, list[int]] = {}
                for j, b in enumerate(bs):
                    by_table.setdefault(b.table.name, []).append(j)
                # locks in one order for every writer: bulk tables, then (table, instrument) by name and id
                for name, idx in sorted(by_table.items()):
                    inserted += self._write_table(TABLES[name], [bs[j] for j in idx], [iids[j] for j in idx],
                                                  {d for t, d in bulk if t == name})
            self._partitions.update(bulk)
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

    def _native(self, table_name: str) -> bool:
        """True when ``table_name`` is natively range-partitioned here (not a hypertable)."""
        v = self._native_cache.get(table_name)
        if v is None:
            row = self.conn().execute(sql.SQL("SELECT {}.fb_is_partitioned(%s)").format(self._s),
                                      (table_name,)).fetchone()
            v = self._native_cache[table_name] = bool(row and row[0])
        return v

    def _prepare_partitions(self, bs: Sequence[Batch]) -> set[tuple[str, int]]:
        """Create the day partitions the batches need; returns the (table, day) left to bulk-load:
        days with no partition yet and at least ``bulk_rows`` rows in this write (fixed-width tables,
        native partitioning)."""
        need: dict[tuple[str, int], int] = {}
        for b in bs:
            days, counts = np.unique(days_of(b.columns[b.table.time]), return_counts=True)
            for day, n in zip(days.tolist(), counts.tolist(), strict=True):
                need[(b.table.name, day)] = need.get((b.table.name, day), 0) + n
                if b.table.name == "trades":
                    need.setdefault((BARS, day), 0)
        bulk: set[tuple[str, int]] = set()
        conn = self.conn()
        for (name, day), n in sorted(need.items()):
            if (name, day) in self._partitions:
                continue
            if (self.bulk_rows and n >= self.bulk_rows and name in TABLES
                    and all(c.kind != "text" for c in TABLES[name].data_columns) and self._native(name)):
                row = conn.execute("SELECT to_regclass(%s) IS NULL", (f"{self.schema}.{_part(name, day)}",)).fetchone()
                if row and row[0]:
                    bulk.add((name, day))
                    continue
            conn.execute(sql.SQL("SELECT {}.fb_ensure_partition(%s, %s)").format(self._s), (name, _date(day)))
            self._partitions.add((name, day))
        return bulk

    def _lock_bulk(self, bulk: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """In the write's transaction: take the partition-creation lock of each bulk table (the lock
        ``fb_ensure_partition`` takes, held to commit: writers that need a new partition of the table
        wait), in name order, and keep the days whose partition still does not exist."""
        conn = self.conn()
        for name in sorted({t for t, _ in bulk}):
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}.{name}",))
        out = set()
        for name, day in bulk:
            row = conn.execute("SELECT to_regclass(%s) IS NULL", (f"{self.schema}.{_part(name, day)}",)).fetchone()
            if row and row[0]:
                out.add((name, day))
            else:
                self._partitions.add((name, day))
        return out

    def _stage(self, name: str, like: str) -> sql.Identifier:
        """A session temp table ``name`` shaped like ``like`` (emptied at every commit)."""
        if name not in self._staged:
            self.conn().execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}.{}) ON COMMIT DELETE ROWS")
                                .format(sql.Identifier(name), self._s, sql.Identifier(like)))
            self._staged.add(name)
        return sql.Identifier(name)

    def _fresh(self, t: Table, b: Batch, iid: int) -> bool:
        """True when no stored row of this instrument (and constant key prefix) lies between the batch's
        smallest and largest natural key (its time range when the key has non-integer columns): then
        no key can conflict and the rows may be copied straight into the table.  The caller holds the
        advisory lock on (table, instrument) until commit, so this stays true until then."""
        where = [sql.SQL("instrument_id = %s")]
        params: list[Any] = [iid]
        tpos = t.key.index(t.time)
        for k in t.key[:tpos]:
            v = b.columns[k]
            if v.dtype == object or v.min() != v.max():
                return False
            where.append(sql.SQL("{} = %s").format(sql.Identifier(k)))
            params.append(int(v[0]))
        rest = t.key[tpos:]
        if all(t.column(k).kind in _INT_KINDS for k in rest):
            cols = [b.columns[k] for k in rest]
            names = sql.SQL(", ").join(sql.Identifier(k) for k in rest)
            marks = sql.SQL(", ").join(sql.Placeholder() * len(rest))
            where.append(sql.SQL("({n}) >= ({m}) AND ({n}) <= ({m})").format(n=names, m=marks))
            params += _lex_extreme(cols, np.min) + _lex_extreme(cols, np.max)
        else:
            ts = b.columns[t.time]
            where.append(sql.SQL("{} BETWEEN %s AND %s").format(sql.Identifier(t.time)))
            params += [int(ts.min()), int(ts.max())]
        conn = self.conn()  # (the caller holds the advisory lock on (table, instrument))
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
                    cp.set_types(["int4"] + [COPY_TYPE[c.kind] for c in t.data_columns])
                    for b, iid in zip(bs, iids, strict=True):
                        vals = [_decimals(b, c) if c.kind in ("price", "qty") else b.columns[c.name].tolist()
                                for c in t.data_columns]
                        for row in zip(*vals, strict=True):
                            cp.write_row((iid, *row))
                return
            kinds = ["i4"] + [c.kind for c in t.data_columns]
            step = max(256, _CHUNK_BYTES // row_dtype(kinds).itemsize)
            with cur.copy(stmt) as cp:  # the server is the bottleneck: encoding a chunk takes ~1 ms
                cp.write(HEADER)
                for b, iid in zip(bs, iids, strict=True):
                    for lo in range(0, b.rows, step):
                        cp.write(memoryview(self._encode(b.slice(slice(lo, lo + step)), iid)))
                cp.write(TRAILER)

    def _write_table(self, t: Table, bs: Sequence[Batch], iids: Sequence[int], bulk_days: set[int]) -> int:
        """Rows of one table, each by one of three paths:

        * bulk: the rows of a day with no partition yet go into a new table, its primary key is built
          once, and it is attached as the day's partition (all in this transaction);
        * direct: COPY straight into the table when no stored row of the instrument lies in the
          batch's time range (so no key can conflict);
        * staged: COPY into a temp table, then ``INSERT … ON CONFLICT DO NOTHING`` (re-imports,
          overlaps, duplicates within a batch).

        Trades inserted by the first two paths are added to the 1-minute bars here with NumPy; those of
        the staged path by the same statement that inserts them.
        """
        conn = self.conn()
        for iid in sorted(set(iids)):  # writers of one instrument queue, whichever path they take
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"{self.schema}.{t.name}", iid))
        parts = list(zip(bs, iids, strict=True))
        by_day: dict[int, list[tuple[Batch, int]]] = {}
        if bulk_days:
            rest = []
            for b, iid in parts:
                days = days_of(b.columns[t.time])
                bulk_mask = np.isin(days, np.fromiter(bulk_days, np.int64, len(bulk_days)))
                for day in np.unique(days[bulk_mask]).tolist():
                    by_day.setdefault(day, []).append((b.slice(days == day), iid))
                if not bulk_mask.all():
                    rest.append((b.slice(~bulk_mask) if bulk_mask.any() else b, iid))
            parts = rest
        done: list[tuple[Batch, int]] = []  # inserted in full
        staged: list[tuple[Batch, int]] = []
        fixed = all(c.kind != "text" for c in t.data_columns)
        if parts and fixed and all(self._fresh(t, b, iid) for b, iid in parts):
            try:
                with conn.transaction():  # a savepoint: a duplicate inside the batch falls back below
                    self._copy(sql.SQL("{}.{}").format(self._s, sql.Identifier(t.name)), t,
                               [b for b, _ in parts], [i for _, i in parts])
                done += parts
            except psycopg.errors.UniqueViolation:
                staged += parts
        else:
            staged += parts
        for day, group in sorted(by_day.items()):
            if self._bulk_load(t, day, group):
                done += group
            else:
                staged += group
        inserted = sum(b.rows for b, _ in done)
        if t.name == "trades" and done:
            self._add_bars(done)
        if staged:
            stage = self._stage(f"stg_{t.name}", t.name)  # empty: ON COMMIT DELETE ROWS, one use per transaction
            self._copy(stage, t, [b for b, _ in staged], [i for _, i in staged])
            if t.name == "trades":  # the inserted rows feed the bars in the same statement
                cur = conn.execute(sql.SQL("WITH ins AS (INSERT INTO {}.trades SELECT * FROM {} ON CONFLICT DO NOTHING "
                                           "RETURNING instrument_id, ts_exchange, trade_id, seq, side, price, qty), "
                                           "bars AS ({}) SELECT count(*) FROM ins").format(
                                               self._s, stage, sql.SQL(self._bars_sql("ins"))))  # type: ignore[arg-type]
                row = cur.fetchone()
                inserted += int(row[0]) if row else 0
            else:
                cur = conn.execute(sql.SQL("INSERT INTO {}.{} SELECT * FROM {} ON CONFLICT DO NOTHING").format(
                    self._s, sql.Identifier(t.name), stage))
                inserted += max(cur.rowcount, 0)
        return inserted

    def _bulk_load(self, t: Table, day: int, group: Sequence[tuple[Batch, int]]) -> bool:
        """Load a new day of ``t`` as a new table, build its primary key once, attach it as the day's
        partition; False (nothing changed, the partition created empty) when the rows hold a
        duplicate key.  The caller holds the table's partition-creation lock."""
        conn = self.conn()
        part = sql.Identifier(_part(t.name, day))
        lo, hi = day * NS_PER_DAY, (day + 1) * NS_PER_DAY
        tcol = sql.Identifier(t.time)
        key = sql.SQL(", ").join(sql.Identifier(k) for k in ("instrument_id", *t.key))
        check = sql.Identifier(f"{_part(t.name, day)}_bounds")
        try:
            with conn.transaction():  # a savepoint: a duplicate key undoes the whole attempt
                conn.execute(sql.SQL("CREATE TABLE {s}.{p} (LIKE {s}.{t} INCLUDING DEFAULTS, CONSTRAINT {c} CHECK "
                                     "({tc} >= {lo} AND {tc} < {hi}))").format(
                    s=self._s, p=part, t=sql.Identifier(t.name), c=check, tc=tcol, lo=sql.Literal(lo),
                    hi=sql.Literal(hi)))
                self._copy(sql.SQL("{}.{}").format(self._s, part), t, [b for b, _ in group], [i for _, i in group])
                conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
                conn.execute(sql.SQL("ALTER TABLE {}.{} ADD PRIMARY KEY ({})").format(self._s, part, key))
                # the CHECK constraint proves the partition bound: ATTACH does not scan the rows
                conn.execute(sql.SQL("ALTER TABLE {s}.{t} ATTACH PARTITION {s}.{p} FOR VALUES FROM ({lo}) TO ({hi})")
                             .format(s=self._s, t=sql.Identifier(t.name), p=part, lo=sql.Literal(lo),
                                     hi=sql.Literal(hi)))
                conn.execute(sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT {}").format(self._s, part, check))
            return True
        except psycopg.errors.UniqueViolation:
            conn.execute(sql.SQL("SELECT {}.fb_ensure_partition(%s, %s)").format(self._s), (t.name, _date(day)))
            return False

    # -- reading and maintenance -------------------------------------------------------------------
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


def _lex_extreme(cols: Sequence[np.ndarray], pick: Any) -> list[int]:
    """The lexicographically smallest (``pick=np.min``) or largest (``np.max``) row of integer columns."""
    idx = np.arange(len(cols[0]))
    out = []
    for c in cols:
        v = c[idx]
        m = pick(v)
        idx = idx[v == m]
        out.append(int(m))
    return out


def _part(table_name: str, day: int) -> str:
    """The name of a table's partition of UTC day ``day`` (as ``fb_ensure_partition`` names it)."""
    return f"{table_name}_p{_date(day):%Y%m%d}"


def _date(day: int) -> date:
    return datetime(1970, 1, 1, tzinfo=UTC).date() + timedelta(days=day)


def _decimals(b: Batch, c: Column) -> list[Decimal]:
    step = Decimal(b.instrument.tick_size if c.kind == "price" else b.instrument.lot_size)
    return [Decimal(v) * step for v in b.columns[c.name].tolist()]
