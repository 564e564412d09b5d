"""An asynchronous writer with a bounded buffer in front of a (server) store.

:meth:`AsyncWriter.put` never waits for the database.  A batch goes into an in-memory buffer of at
most ``capacity_rows`` rows; when the buffer is full (database down or slower than the feed) the
batch is *spilled*: written, in the caller's thread, to a local Parquet file in ``spill_dir``
(atomic, ``fsync``-ed).  A background thread writes the buffer to the store in groups of up to
``batch_rows`` rows and, whenever the buffer is empty and the database is up, loads spilled files
oldest first and deletes each once committed.  An unreachable database is retried with exponential
backoff; every outage is recorded (start, end, error, rows delayed) and logged.  A batch the
database refuses for another reason (bad data) is moved to ``spill_dir/rejected`` and counted.

What a crash loses: a killed process loses the rows still in its memory buffer (at most
``capacity_rows`` plus the group in flight); spilled files survive and the next writer with the same
``spill_dir`` sends them.  ``capacity_rows=0`` spills every batch before ``put`` returns (durable,
slower).  :meth:`close` (also run at interpreter exit) spills whatever the database did not take
in time, so nothing accepted is dropped.  Rows may reach the store twice (a spill of a group whose commit raced the close);
the PostgreSQL store's natural keys make that harmless.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError, StoreUnavailable
from .schema import Batch
from .spill import SpillDir

__all__ = ["AsyncWriter", "WriterReport", "Outage"]

log = logging.getLogger("flowbook.store")


@dataclass
class Outage:
    """A time the store could not be written: wall-clock ns, the error, rows that waited."""

    start_ns: int
    end_ns: int | None = None
    error: str = ""
    rows_delayed: int = 0

    @property
    def seconds(self) -> float:
        return ((self.end_ns or time.time_ns()) - self.start_ns) / 1e9


@dataclass
class WriterReport:
    accepted_rows: int = 0  # rows put() took (buffered or spilled)
    written_rows: int = 0  # rows sent in committed writes (including spilled ones drained later)
    inserted_rows: int = 0  # rows the store reported as new (re-sent rows are not counted twice)
    pending_rows: int = 0  # rows in the memory buffer now
    spilled_rows: int = 0  # rows ever spilled to disk
    spill_files: int = 0  # spilled files waiting now
    spill_rows: int = 0  # rows in them
    recovered_rows: int = 0  # spilled rows written to the store
    rejected_rows: int = 0  # rows the store refused (kept in spill_dir/rejected)
    outages: list[Outage] = field(default_factory=list)
    last_error: str | None = None

    @property
    def down(self) -> bool:
        return bool(self.outages) and self.outages[-1].end_ns is None


class AsyncWriter:
    """Background writer of :class:`Batch` es to the store made by ``connect``.

    Parameters
    ----------
    connect:
        makes the store (called in the writer thread, again after a failure), e.g.
        ``lambda: PostgresStore(dsn, schema)``.
    spill_dir:
        local directory for spilled batches (created when needed).
    capacity_rows:
        rows the memory buffer holds before ``put`` spills (0: spill everything).
    batch_rows:
        rows per store write.
    """

    def __init__(self, connect: Callable[[], object], spill_dir: Path | str, capacity_rows: int = 1_000_000,
                 batch_rows: int = 200_000, retry_min: float = 0.2, retry_max: float = 10.0,
                 linger: float = 0.2) -> None:
        self._connect = connect
        self.spill = SpillDir(spill_dir)
        self.capacity_rows = capacity_rows
        self.batch_rows = batch_rows
        self.retry_min, self.retry_max, self.linger = retry_min, retry_max, linger
        self._buf: deque[Batch] = deque()
        self._cv = threading.Condition()
        left = self.spill.files()  # a previous run's spilled batches are sent first
        self._report = WriterReport(spill_files=len(left), spill_rows=sum(self.spill.rows(f) for f in left))
        self._store: object | None = None
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="flowbook-store-writer", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)  # an exit without close() still keeps the buffer (spilled)

    # -- producer side -----------------------------------------------------------------------------
    def put(self, batch: Batch) -> str:
        """Accept a batch; returns ``"buffered"`` or ``"spilled"``.  Never waits for the database."""
        if batch.rows == 0:
            return "buffered"
        with self._cv:
            if self._closed or self._closing:
                raise StoreError("the writer is closed")
            self._report.accepted_rows += batch.rows
            if self._report.pending_rows + batch.rows <= self.capacity_rows:
                self._buf.append(batch)
                self._report.pending_rows += batch.rows
                self._cv.notify_all()
                return "buffered"
        self.spill.write(batch)  # full: to disk, in the caller's thread (bounded local I/O)
        with self._cv:
            self._report.spilled_rows += batch.rows
            self._report.spill_files += 1
            self._report.spill_rows += batch.rows
            if self._report.down:
                self._report.outages[-1].rows_delayed += batch.rows
            self._cv.notify_all()
        return "spilled"

    def report(self) -> WriterReport:
        """A copy of the counters and outages so far."""
        with self._cv:
            r = self._report
            return WriterReport(**{**vars(r), "outages": [Outage(**vars(o)) for o in r.outages]})

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the buffer and the spill directory are empty; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._report.pending_rows or self._report.spill_files:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> WriterReport:
        """Stop after writing what the database takes within ``timeout``; spill the rest."""
        self.flush(timeout)
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(max(0.1, timeout / 10))
        with self._cv:
            rest = list(self._buf)
            self._buf.clear()
            self._report.pending_rows = 0
        for b in rest:
            self.spill.write(b)
        with self._cv:
            self._report.spilled_rows += sum(b.rows for b in rest)
            self._report.spill_rows += sum(b.rows for b in rest)
            self._report.spill_files = len(self.spill.files())
            self._closed = True
        atexit.unregister(self._at_exit)
        store = self._store
        if store is not None and hasattr(store, "close") and not self._thread.is_alive():
            store.close()
        return self.report()

    def _at_exit(self) -> None:
        if not self._closed:
            self.close(timeout=1.0)

    def __enter__(self) -> AsyncWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self.retry_min
        while True:
            with self._cv:
                while not self._closing and not self._buf and not self._report.spill_files:
                    self._cv.wait()
                if self._closing:
                    return
                if self._buf and self._report.pending_rows < self.batch_rows and not self._report.down:
                    self._cv.wait(self.linger)  # let small batches gather
                group, n = [], 0
                for b in self._buf:
                    if group and n + b.rows > self.batch_rows:
                        break
                    group.append(b)
                    n += b.rows
            try:
                store = self._open()
                if group:
                    inserted = store.write(group)  # type: ignore[attr-defined]
                    self._done(group, inserted)
                else:
                    self._drain_one(store)
                backoff = self.retry_min
            except StoreUnavailable as exc:
                self._down(str(exc))
                with self._cv:
                    self._cv.wait(backoff)
                backoff = min(self.retry_max, backoff * 2)
            except StoreError as exc:  # refused for good: find the bad batches, keep them aside, go on
                if len(group) > 1:
                    self._one_by_one(group)
                else:
                    self._reject(group, str(exc))
            except Exception as exc:  # a bug or bad spill file must not stop the writer silently
                log.exception("store writer")
                self._reject(group, f"{type(exc).__name__}: {exc}")

    def _one_by_one(self, group: list[Batch]) -> None:
        for b in group:
            try:
                self._done([b], self._open().write([b]))  # type: ignore[attr-defined]
            except StoreUnavailable:
                return  # the outer loop retries what is left
            except StoreError as exc:
                self._reject([b], str(exc))

    def _open(self) -> object:
        if self._store is None:
            self._store = self._connect()
        return self._store

    def _pop(self, group: list[Batch]) -> None:
        """Remove a group from the head of the buffer (unless close() already took it); lock held."""
        for b in group:
            if self._buf and self._buf[0] is b:
                self._buf.popleft()
                self._report.pending_rows -= b.rows

    def _done(self, group: list[Batch], inserted: int) -> None:
        with self._cv:
            self._pop(group)
            rows = sum(b.rows for b in group)
            self._report.written_rows += rows
            self._report.inserted_rows += inserted
            self._up()
            self._cv.notify_all()

    def _drain_one(self, store: object) -> None:
        files = self.spill.files()
        if not files:
            with self._cv:
                self._report.spill_files = 0
                self._cv.notify_all()
            return
        path = files[0]
        b = self.spill.read(path)
        inserted = store.write([b])  # type: ignore[attr-defined]
        path.unlink()
        left = len(self.spill.files())  # puts may have spilled more meanwhile
        with self._cv:
            self._report.written_rows += b.rows
            self._report.inserted_rows += inserted
            self._report.recovered_rows += b.rows
            self._report.spill_rows -= b.rows
            self._report.spill_files = left
            self._up()
            self._cv.notify_all()

    def _down(self, error: str) -> None:
        with self._cv:
            r = self._report
            r.last_error = error
            if not r.down:
                waiting = r.pending_rows + r.spill_rows
                r.outages.append(Outage(time.time_ns(), None, error, waiting))
                log.warning("store unavailable, buffering (%d rows waiting): %s", waiting, error)

    def _up(self) -> None:  # called with the lock held
        r = self._report
        if r.down:
            o = r.outages[-1]
            o.end_ns = time.time_ns()
            log.warning("store back after %.1f s; %d rows had to wait", o.seconds, o.rows_delayed)

    def _reject(self, group: list[Batch], error: str) -> None:
        if group:
            for b in group:
                self.spill.write(b, sub="rejected")
            with self._cv:
                self._pop(group)
                self._report.rejected_rows += sum(b.rows for b in group)
                self._report.last_error = error
                self._cv.notify_all()
        else:  # a spilled file the store refuses: move it aside
            files = self.spill.files()
            if files:
                (self.spill.path / "rejected").mkdir(exist_ok=True)
                rows = self.spill.rows(files[0])
                files[0].rename(self.spill.path / "rejected" / files[0].name)
                left = len(self.spill.files())
                with self._cv:
                    self._report.rejected_rows += rows
                    self._report.spill_rows -= rows
                    self._report.spill_files = left
                    self._report.last_error = error
                    self._cv.notify_all()
        log.error("store refused %s: %s", "a batch" if group else "a spilled batch", error)
