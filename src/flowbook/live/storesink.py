"""Live events and feature rows into a store (``flowbook live/record --store URI``).

The runner hands every batch of normalized events (and, when it computes them, every feature row)
to a :class:`StoreSink`.  The sink only appends NumPy arrays to per-symbol lists; every
``flush_interval`` seconds the runner calls :meth:`StoreSink.flush`, which turns them into store
batches (the same conversion ``flowbook replay --store`` uses: :func:`flowbook.store.event_batches`,
:func:`flowbook.store.feature_batches`) and puts them into an :class:`~flowbook.store.AsyncWriter`.

So the live path never waits for the database: the writer buffers up to ``capacity_rows`` rows in
memory and spills beyond that to local Parquet files in ``spill_dir``, which it loads once the
database is back (and which the next run with the same ``spill_dir`` sends, when this one ends
during an outage).  The raw recording (``--record``) is written by the recorder, independently of
the store.  What a closing run reports: rows accepted, written and spilled, and each outage with its
length and the rows it delayed (:class:`~flowbook.store.WriterReport`).

Natural keys: every batch holds whole messages (the adapter delivers events message by message), so
the ``seq`` a batch gives to rows sharing a key is the one a replay of the recording gives them, and
the PostgreSQL store drops what it already holds when the same recording is replayed into it later.
The Parquet store keys by batch only: replaying a recording that was also stored live adds its rows
a second time there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..events import Instrument
from ..store.convert import config_hash, event_batches, feature_batches
from ..store.uri import default_root, display_uri, is_postgres_uri, open_store, split_pg_uri
from ..store.writer import AsyncWriter, WriterReport

__all__ = ["StoreSink", "store_tables", "default_spill_dir", "describe"]

log = logging.getLogger("flowbook.live")


def store_tables(uri: str | Path) -> tuple[str, ...]:
    """The event tables the store named by ``uri`` keeps (without connecting to it)."""
    if is_postgres_uri(str(uri)):
        from ..store.postgres import PostgresStore

        return PostgresStore.replay_tables
    from ..store.parquet import ParquetStore

    return ParquetStore.replay_tables


def default_spill_dir(uri: str | Path, venue: str) -> Path:
    """``<flowbook data dir>/spill/<store id>/<venue>``: one directory per store and venue, so a later
    run against the same store sends what an earlier one spilled."""
    digest = hashlib.sha256(str(uri).encode()).hexdigest()[:12]
    return default_root().parent / "spill" / digest / venue


class StoreSink:
    """Collects live events and feature rows and writes them through an :class:`AsyncWriter`.

    ``WAIT_ROWS``: events a symbol may hold while its instrument is not known yet.

    Parameters
    ----------
    uri:
        the store (``parquet:DIR``, ``postgresql://…``); opened in the writer thread, again after
        a failure, so a database that is down at start is not an error.
    venue:
        names the default spill directory.
    features:
        the feature configuration (its hash tags the stored rows); ``None`` stores events only.
    columns, interval_ns:
        the engine's feature columns and its sampling interval (0: a row per message).
    """

    WAIT_ROWS = 100_000

    def __init__(self, uri: str | Path, venue: str, *, features: Any | None = None,
                 columns: Sequence[str] = (), interval_ns: int = 0, spill_dir: Path | str | None = None,
                 capacity_rows: int = 1_000_000, batch_rows: int = 200_000, flush_interval: float = 1.0,
                 retry_max: float = 10.0, connect_timeout: float = 5.0) -> None:
        self.uri = str(uri)
        self.tables = store_tables(uri)
        self.columns = tuple(columns)
        self.interval_ns = int(interval_ns)
        self.cfg_hash = config_hash(features) if features is not None else 0
        self.flush_interval = flush_interval
        self.spill_dir = Path(spill_dir) if spill_dir is not None else default_spill_dir(uri, venue)
        connect: Callable[[], object]
        if is_postgres_uri(self.uri):
            split_pg_uri(self.uri)  # a DSN missing from the environment is an error now, not an outage
            connect = lambda: open_store(self.uri, connect_timeout=connect_timeout)  # noqa: E731
        else:
            local = open_store(self.uri)  # a bad path is an error now
            connect = lambda: local  # noqa: E731
        self.writer = AsyncWriter(connect, self.spill_dir, capacity_rows=capacity_rows, batch_rows=batch_rows,
                                  retry_max=retry_max)
        self._events: dict[str, tuple[Instrument, list[np.ndarray]]] = {}
        self._waiting: dict[str, list[np.ndarray]] = {}  # events of symbols whose instrument is unknown yet
        self.unstored_rows = 0
        self._rows: dict[str, tuple[Instrument, list[np.ndarray], list[np.ndarray]]] = {}
        self._last_flush = time.monotonic()
        self.flushes = 0

    # -- called by the runner (event loop thread) ------------------------------------------------------
    def add_events(self, symbol: str, instrument: Instrument | None, events: np.ndarray) -> None:
        """Keep one batch of a symbol's events (copied: the caller may reuse its array).

        Events that arrive before the symbol's instrument is known (trades before the first
        snapshot) wait here, up to ``WAIT_ROWS`` rows a symbol (beyond that the oldest are dropped
        and counted in ``unstored_rows``), and go out with the first batch that names it."""
        if not len(events):
            return
        part = np.array(events, copy=True)
        if instrument is None:
            waiting = self._waiting.setdefault(symbol, [])
            waiting.append(part)
            while sum(len(w) for w in waiting) > self.WAIT_ROWS and len(waiting) > 1:
                self.unstored_rows += len(waiting.pop(0))
            return
        parts = self._events.setdefault(symbol, (instrument, []))[1]
        if symbol in self._waiting:
            parts.extend(self._waiting.pop(symbol))
        parts.append(part)

    def add_features(self, symbol: str, instrument: Instrument, f: np.ndarray, ii: np.ndarray) -> None:
        """Keep feature rows (``f`` in ``columns`` order; ``ii`` = time, exchange time, update id)."""
        if len(f):
            item = self._rows.setdefault(symbol, (instrument, [], []))
            item[1].append(np.array(f, copy=True))
            item[2].append(np.array(ii, copy=True))

    def due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.flush_interval

    def flush(self) -> int:
        """Hand everything collected so far to the writer; returns the rows handed over."""
        self._last_flush = time.monotonic()
        batches = []
        for _, (inst, parts) in self._events.items():
            ev = parts[0] if len(parts) == 1 else np.concatenate(parts)
            ev["symbol"] = 0  # event_batches indexes the instrument list by symbol id
            batches += event_batches(ev, [inst], self.tables)
        self._events.clear()
        if self._rows and self.columns:
            rows = [(sym, np.concatenate(fs), np.concatenate(iis)) for sym, (_, fs, iis) in self._rows.items()]
            insts = [inst for inst, _, _ in self._rows.values()]
            batches += feature_batches(rows, insts, self.columns, self.interval_ns, self.cfg_hash)
        self._rows.clear()
        n = 0
        for b in batches:
            self.writer.put(b)
            n += b.rows
        if batches:
            self.flushes += 1
        return n

    def report(self) -> WriterReport:
        return self.writer.report()

    def close(self, timeout: float = 10.0) -> WriterReport:
        """Flush, let the writer send what the store takes within ``timeout``, spill the rest."""
        self.flush()
        report = self.writer.close(timeout)
        for o in report.outages:
            log.warning("event=store_outage seconds=%.1f rows_delayed=%d error=%s", o.seconds, o.rows_delayed,
                        o.error)
        return report


def describe(report: WriterReport, uri: str, spill_dir: Path) -> str:
    """The closing line(s) of a live run with a store."""
    lines = [f"stored {report.written_rows:,} rows into {display_uri(uri)} ({report.inserted_rows:,} new)"]
    if report.outages:
        total = sum(o.seconds for o in report.outages)
        lines.append(f"store unavailable {len(report.outages)} time(s), {total:.1f} s in all; "
                     f"{sum(o.rows_delayed for o in report.outages):,} rows delayed, "
                     f"{report.recovered_rows:,} recovered from spill")
    if report.spill_rows:
        lines.append(f"{report.spill_rows:,} rows wait in {spill_dir}{os.sep} and go to the store on the next run "
                     "with the same --store")
    if report.rejected_rows:
        lines.append(f"{report.rejected_rows:,} rows refused by the store, kept in {spill_dir / 'rejected'}")
    return "\n".join(lines)
