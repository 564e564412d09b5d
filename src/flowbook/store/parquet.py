"""The embedded store: Parquet datasets partitioned ``venue=/symbol=/date=``, queried with DuckDB.

Layout: ``<root>/<table>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/part-<first time>-<batch id>-<n>.parquet``
(partition values percent-encoded; DuckDB and polars decode them).  A file is written as
``.part-….parquet.<pid>.tmp`` in its final directory, flushed and ``fsync``-ed, then renamed: readers
only ever see whole files, and a killed writer leaves at most a hidden temp file that no reader
matches and that the next writer removes.  A write with a ``batch_id`` names its files after it and
skips files that already exist, so re-running an import with the same id never duplicates rows.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..events import EVENT_DTYPE, Instrument
from .bars import BAR_NAMES, MINUTE_NS, bars_batch, bucket_bounds, parse_interval
from .decimals import to_decimal128
from .duck import DuckViews, has_files
from .errors import StoreError
from .schema import DECIMAL_SCALE, NS_PER_DAY, Batch, Table, days_of

__all__ = ["ParquetStore", "batch_to_arrow"]

_ARROW_INT = {"i8": pa.int64(), "i4": pa.int32(), "i2": pa.int16(), "i1": pa.int8(), "u1": pa.uint8(),
              "u2": pa.uint16()}
# dictionary-encoded columns (hashing every value costs more than it saves on small integers)
_DICTIONARY = {"tick_size", "lot_size", "detector"}
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")
_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")


def batch_to_arrow(b: Batch) -> pa.Table:
    """A batch as an Arrow table in the Parquet schema (decimals exact, timestamps ns)."""
    inst, n, arrays, fields = b.instrument, b.rows, [], []
    for c in b.table.columns:
        if c.kind == "inst":
            dictionary = pa.array([str(getattr(inst, c.name))], pa.string())
            arr: pa.Array = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), dictionary)
        else:
            v = b.columns[c.name]
            if c.kind == "ts":
                arr = pa.array(v.view("M8[ns]"))
            elif c.kind in ("price", "qty"):
                arr = to_decimal128(v, inst.tick_size if c.kind == "price" else inst.lot_size, DECIMAL_SCALE)
            elif c.kind == "f8":
                arr = pa.array(v, pa.float64())
            elif c.kind == "text":
                arr = pa.array(list(v), pa.string())
            else:
                arr = pa.array(v, _ARROW_INT[c.kind])
        arrays.append(arr)
        fields.append(pa.field(c.name, arr.type))
    md = {b"flowbook.table": b.table.name.encode(), b"flowbook.instrument": json.dumps(asdict(inst)).encode()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=md))


def _part(value: str) -> str:
    return quote(value, safe="")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ParquetStore:
    """Parquet datasets under ``root`` plus DuckDB views for queries.

    Parameters
    ----------
    root:
        store directory (created on the first write).
    compression:
        Parquet codec: ``lz4`` (default, the fastest to write), ``zstd`` (level 1: files about half
        the size, writes about a third slower), ``snappy``, ``none``.
    threads:
        files written in parallel by one :meth:`write` (default: CPU count).
    file_rows:
        largest number of rows in one file; a bigger partition of a batch is split.
    """

    kind = "parquet"
    replay_tables = ("events", "trades", "liquidations", "funding_rates", "open_interest")

    def __init__(self, root: Path | str, compression: str = "lz4", threads: int | None = None,
                 file_rows: int = 1 << 20, row_group_rows: int = 1 << 17) -> None:
        self.root = Path(root).expanduser()
        self.compression = compression
        self.threads = threads or os.cpu_count() or 1
        self.file_rows = file_rows
        self.row_group_rows = row_group_rows
        self._views: DuckViews | None = None
        self._cleaned = False

    @property
    def uri(self) -> str:
        return f"parquet:{self.root}"

    # -- writing -----------------------------------------------------------------------------------
    def write(self, batches: Batch | Iterable[Batch], batch_id: str | None = None) -> int:
        """Append batches atomically, one or more files per (table, venue, symbol, date).

        Returns the rows written (files skipped because ``batch_id`` already wrote them are not
        counted).  Each file appears whole or not at all; a crash loses only the files of this call not
        yet renamed, and the same call with the same ``batch_id`` completes it without duplicates.
        """
        batches = [b for b in ([batches] if isinstance(batches, Batch) else batches) if b.rows]
        for b in batches:
            if b.table.derived:
                raise StoreError(f"table {b.table.name!r} is kept by the store from the trades; write trades")
        bid = batch_id or f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
        if not _ID.match(bid):
            raise StoreError(f"batch id {bid!r}: use letters, digits, '_', '.', '-' (at most 120)")
        self._cleanup_once()
        # each trades batch brings its 1-minute bars (merged per minute by the trade_bars_1m view)
        derived = [bars_batch(b) for b in batches if b.table.name == "trades" and b.rows]
        parts = [(part, self._dir(b.table, b.instrument, day)) for b in [*batches, *derived] if b.rows
                 for day, part in self._split_days(b)]
        # a partition over file_rows becomes files of equal size (the same split for the same rows,
        # so a batch id names the same files again), written in parallel
        jobs: list[tuple[Batch, Path]] = []
        counter: dict[Path, int] = {}
        for part, d in parts:
            pieces = -(-part.rows // self.file_rows)
            for j in range(pieces):
                lo, hi = part.rows * j // pieces, part.rows * (j + 1) // pieces
                k = counter.get(d, 0)
                counter[d] = k + 1
                chunk = part.slice(slice(lo, hi))
                first = int(chunk.columns[part.table.time][0]) & (2**64 - 1)  # files sort by first time
                jobs.append((chunk, d / f"part-{first:016x}-{bid}-{k}.parquet"))
        if not jobs:
            return 0
        created: set[Path] = set()
        for d in counter:
            _makedirs(d, created)
        if len(jobs) == 1 or self.threads == 1:
            written = [self._write_file(b, p) for b, p in jobs]
        else:
            with ThreadPoolExecutor(min(self.threads, len(jobs))) as ex:
                written = list(ex.map(lambda j: self._write_file(*j), jobs))
        for d in {*counter, *(c.parent for c in created)}:  # renames and new directory entries
            _fsync_dir(d)
        return sum(n for (b, _), n in zip(jobs, written, strict=True) if not b.table.derived)

    def _split_days(self, b: Batch) -> list[tuple[int, Batch]]:
        days = days_of(b.columns[b.table.time])
        if days.min() == days.max():
            return [(int(days[0]), b)]
        order = np.argsort(days, kind="stable")
        ds = days[order]
        cuts = np.flatnonzero(np.diff(ds)) + 1
        return [(int(ds[s]), b.slice(order[s:e])) for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(ds)], strict=True)]

    def _dir(self, t: Table, inst: Instrument, day: int) -> Path:
        date = datetime.fromtimestamp(day * NS_PER_DAY / 1e9, tz=UTC).strftime("%Y-%m-%d")
        return self.root / t.name / f"venue={_part(inst.venue)}" / f"symbol={_part(inst.symbol)}" / f"date={date}"

    def _write_file(self, b: Batch, path: Path) -> int:
        if path.exists():
            return 0  # written by an earlier run of the same batch id
        tbl = batch_to_arrow(b)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        dictionary = [c for c in tbl.column_names if c in _DICTIONARY]
        stats = [c.name for c in b.table.columns if c.kind == "ts"]  # what queries prune on
        try:  # a native path: Arrow writes without holding the GIL, so threads run in parallel
            pq.write_table(tbl, str(tmp), compression=self.compression, use_dictionary=dictionary,
                           row_group_size=self.row_group_rows, data_page_version="2.0", write_statistics=stats,
                           compression_level=1 if self.compression == "zstd" else None)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return b.rows

    def _cleanup_once(self) -> None:
        if not self._cleaned:
            self.cleanup_temp()
            self._cleaned = True

    def cleanup_temp(self) -> int:
        """Delete temp files left by writers that no longer run (same host); returns how many."""
        n = 0
        if not self.root.is_dir():
            return 0
        for p in self.root.glob("*/*/*/*/.*.tmp"):
            m = _TMP.match(p.name)
            if m and not _pid_alive(int(m.group(1))):
                p.unlink(missing_ok=True)
                n += 1
        return n

    # -- reading -----------------------------------------------------------------------------------
    def _duck(self) -> DuckViews:
        if self._views is None:
            self._views = DuckViews(self.root)
        return self._views

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run SQL (DuckDB dialect) over the table views; a polars DataFrame."""
        return self._duck().polars(sql, params)

    def query_arrow(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        return self._duck().arrow(sql, params)

    def query_pandas(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """As :meth:`query`, as a pandas DataFrame (needs pandas: ``pip install 'flowbook[pandas]'``)."""
        try:
            import pandas  # noqa: F401
        except ImportError as exc:
            raise StoreError("pandas is not installed (pip install 'flowbook[pandas]')") from exc
        return self.query_arrow(sql, params).to_pandas()

    def bars(self, symbol: str, start_ns: int, end_ns: int, interval: str | int = "1m",
             venue: str | None = None) -> pl.DataFrame:
        """Trade bars of one instrument, as :meth:`PostgresStore.bars`: the ``interval`` buckets (aligned
        to the epoch) that start in ``[start_ns, end_ns)`` and hold trades, in time order.

        Whole minutes come from the ``trade_bars_1m`` fragments written with the trades (merged per
        minute by the view); other intervals are aggregated from the trades.
        """
        step = parse_interval(interval)
        lo, hi = bucket_bounds(start_ns, end_ns, step)
        if venue is None:
            found = sorted(p.parent.name for p in (self.root / "trades").glob(f"venue=*/symbol={_part(symbol)}"))
            if len(found) > 1:
                raise StoreError(f"{symbol} is stored for several venues; pass venue=")
            venue = unquote(found[0].split("=", 1)[1]) if found else ""
        days = [datetime.fromtimestamp(d * NS_PER_DAY / 1e9, tz=UTC).date()
                for d in (lo // NS_PER_DAY, max(lo, hi - 1) // NS_PER_DAY)]
        p: list[Any] = [venue, symbol, *days, lo, hi]
        where = "venue = ? AND symbol = ? AND date BETWEEN ? AND ? AND {t} >= make_timestamp_ns(?) AND {t} < make_timestamp_ns(?)"
        if step == MINUTE_NS:
            q = (f"SELECT {', '.join(BAR_NAMES)} FROM trade_bars_1m WHERE {where.format(t='ts')} ORDER BY ts")
        elif step % MINUTE_NS == 0:
            q = (f"SELECT make_timestamp_ns(b) AS ts, arg_min(open, t) AS open, max(high) AS high, min(low) AS low, "
                 "arg_max(close, t) AS close, sum(volume) AS volume, sum(buy_volume) AS buy_volume, "
                 "sum(sell_volume) AS sell_volume, sum(trades)::BIGINT AS trades FROM (SELECT *, epoch_ns(ts) AS t, "
                 f"t - ((t % {step}) + {step}) % {step} AS b FROM trade_bars_1m WHERE {where.format(t='ts')}) "
                 "GROUP BY b ORDER BY b")
        else:
            k = "(t, trade_id, seq)"
            q = (f"SELECT make_timestamp_ns(b) AS ts, arg_min(price, {k}) AS open, max(price) AS high, "
                 f"min(price) AS low, arg_max(price, {k}) AS close, sum(qty) AS volume, "
                 "coalesce(sum(qty) FILTER (WHERE side > 0), 0) AS buy_volume, "
                 "coalesce(sum(qty) FILTER (WHERE side < 0), 0) AS sell_volume, count(*) AS trades "
                 f"FROM (SELECT *, epoch_ns(ts_exchange) AS t, t - ((t % {step}) + {step}) % {step} AS b "
                 f"FROM trades WHERE {where.format(t='ts_exchange')}) GROUP BY b ORDER BY b")
        return self.query(q, p)

    def tables(self) -> list[str]:
        """Tables that hold at least one file."""
        return [t for t in sorted(os.listdir(self.root)) if has_files(self.root / t)] if self.root.is_dir() else []

    def read_events(self, venue: str, symbol: str, start_ns: int | None = None,
                    end_ns: int | None = None) -> tuple[np.ndarray, Instrument]:
        """Stored normalized events of one instrument as ``EVENT_DTYPE``, with its instrument.

        Order: by day, then file (files sort by their first receive time), then row: the order of each
        write, and writes in time order.
        """
        where, params = ["venue = ?", "symbol = ?"], [venue, symbol]
        if start_ns is not None:
            where.append("ts_local >= make_timestamp_ns(?)")
            params.append(int(start_ns))
        if end_ns is not None:
            where.append("ts_local < make_timestamp_ns(?)")
            params.append(int(end_ns))
        names = [n for n in EVENT_DTYPE.names or ()]
        sel = ", ".join(f"epoch_ns({n}) AS {n}" if n.startswith("ts_") else n for n in names if n != "symbol")
        tbl = self._events_arrow(sel, where, params)
        if tbl.num_rows == 0:
            raise StoreError(f"no stored events for {venue}:{symbol}")
        ev = np.zeros(tbl.num_rows, EVENT_DTYPE)
        for n in names:
            if n != "symbol":
                ev[n] = tbl.column(n).to_numpy()
        md = pq.read_schema(next((self.root / "events" / f"venue={_part(venue)}" /
                                  f"symbol={_part(symbol)}").glob("date=*/*.parquet"))).metadata
        inst = Instrument(**json.loads(md[b"flowbook.instrument"]))
        return ev, inst

    def _events_arrow(self, sel: str, where: list[str], params: list[Any]) -> pa.Table:
        pattern = str(self.root / "events" / "*/*/*/*.parquet").replace("'", "''")
        sql = (f"SELECT {sel} FROM read_parquet('{pattern}', hive_partitioning = true, filename = true, "
               "file_row_number = true, hive_types = {'venue': VARCHAR, 'symbol': VARCHAR, 'date': DATE}) "
               f"WHERE {' AND '.join(where)} ORDER BY date, filename, file_row_number")
        return self._duck().arrow(sql, params)

    def close(self) -> None:
        if self._views is not None:
            self._views.close()
            self._views = None

    def __enter__(self) -> ParquetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _makedirs(d: Path, created: set[Path]) -> None:
    """``mkdir -p d``, adding the directories it creates to ``created``."""
    missing = []
    p = d
    while not p.exists():
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        m.mkdir(exist_ok=True)
        created.add(m)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

