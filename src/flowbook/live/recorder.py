"""Recorder: raw frames and REST snapshots in flowbook's recording format, one file set per symbol.

Layout: ``<root>/<venue>/<SYMBOL>/<symbol>_<YYYYMMDD>_<HH>.gz`` (the symbol made safe for a path by
:func:`path_name`; ``.1.gz``, ... when a file of that
hour exists already: a new run never appends to a file a killed run may have torn), one line per frame,
``<local_ns> <raw JSON>`` (the format of ``shared/data/hftbacktest``, read by ``flowbook replay``).
A new file starts with the first line of each UTC hour (by receive time; ``rotate_ns`` changes the
period); the live runner then asks for a fresh REST snapshot so that every file replays on its own.

Kill guarantee: lines are collected in memory and written as one complete gzip member per file every
``flush_interval`` seconds (and when ``max_pending`` bytes wait), with an unbuffered write, so the
kernel holds every member as soon as the write returns.  A ``kill -9`` therefore loses at most the
lines of the last ``flush_interval`` and leaves every earlier line readable (a gzip reader reads the
complete members and stops at a torn last one; ``flowbook replay`` reports it and goes on).
``fsync`` runs every ``fsync_interval`` seconds, at rotation and at close, which bounds the loss after
a power failure as well.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Recorder", "path_name"]


_HOUR = 3_600_000_000_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def path_name(symbol: str) -> str:
    """A symbol as a folder and file name: characters other than letters, digits, ``_``, ``.`` and ``-``
    become ``_`` (Kraken's ``BTC/USD`` -> ``BTC_USD``); the frames inside keep the venue's spelling."""
    return _UNSAFE.sub("_", symbol)


@dataclass
class _File:
    path: Path
    period: int  # rotation periods since the epoch
    fd: int
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    dirty: bool = False  # written since the last fsync


class Recorder:
    """Writes frames for one venue; call :meth:`close` at the end (or rely on what was flushed)."""

    def __init__(self, root: Path | str, venue: str, flush_interval: float = 0.25, fsync_interval: float = 5.0,
                 max_pending: int = 1 << 20, compresslevel: int = 3,
                 on_new_file: Callable[[str, Path], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, rotate_ns: int = _HOUR) -> None:
        if rotate_ns <= 0:
            raise ValueError("rotate_ns must be positive")
        self.root = Path(root) / venue
        self.rotate_ns = rotate_ns
        self.flush_interval = flush_interval
        self.fsync_interval = fsync_interval
        self.max_pending = max_pending
        self.compresslevel = compresslevel
        self.on_new_file = on_new_file
        self.clock = clock
        self.files: list[Path] = []
        self.lines = 0
        self.members = 0
        self._open: dict[str, _File] = {}
        self._last_flush = clock()
        self._last_sync = clock()
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, symbol: str, ts_local: int, payload: bytes) -> None:
        """Queue one line (``payload`` must be one JSON document; line breaks are replaced)."""
        if b"\n" in payload or b"\r" in payload:
            payload = payload.replace(b"\r", b" ").replace(b"\n", b" ")
        period = ts_local // self.rotate_ns
        f = self._open.get(symbol)
        if f is None or period > f.period:  # only forward: a late snapshot time never reopens a file
            f = self._rotate(symbol, f, period)
        line = b"%d %s\n" % (ts_local, payload)
        f.pending.append(line)
        f.pending_bytes += len(line)
        self.lines += 1
        if f.pending_bytes >= self.max_pending:
            self._write_member(f)
        self.maybe_flush()

    def maybe_flush(self) -> None:
        now = self.clock()
        if now - self._last_flush >= self.flush_interval:
            self.flush(fsync=now - self._last_sync >= self.fsync_interval)

    def flush(self, fsync: bool = False) -> None:
        """Write every pending line now (one gzip member per file); ``fsync`` also syncs to disk."""
        for f in self._open.values():
            self._write_member(f)
            if fsync and f.dirty:
                os.fsync(f.fd)
                f.dirty = False
        self._last_flush = self.clock()
        if fsync:
            self._last_sync = self._last_flush

    def close(self) -> None:
        for f in list(self._open.values()):
            self._close_file(f)
        self._open.clear()

    def _write_member(self, f: _File) -> None:
        if not f.pending:
            return
        data = gzip.compress(b"".join(f.pending), compresslevel=self.compresslevel, mtime=0)
        f.pending.clear()
        f.pending_bytes = 0
        view = memoryview(data)
        while view:  # unbuffered: each write goes straight to the kernel
            n = os.write(f.fd, view)
            view = view[n:]
        f.dirty = True
        self.members += 1

    def _close_file(self, f: _File) -> None:
        self._write_member(f)
        os.fsync(f.fd)
        os.close(f.fd)

    def _rotate(self, symbol: str, old: _File | None, period: int) -> _File:
        first = old is None
        if old is not None:
            self._close_file(old)
        start = datetime.fromtimestamp(period * self.rotate_ns / 1e9, tz=UTC)
        stamp = start.strftime("%Y%m%d_%H" if self.rotate_ns % _HOUR == 0 else "%Y%m%d_%H%M%S%f")
        safe = path_name(symbol)
        d = self.root / safe
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{safe.lower()}_{stamp}.gz"
        n = 0
        while path.exists():  # never append after a member a killed run may have torn
            n += 1
            path = d / f"{safe.lower()}_{stamp}.{n}.gz"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        f = self._open[symbol] = _File(path, period, fd)
        if path not in self.files:
            self.files.append(path)
        if not first and self.on_new_file is not None:
            self.on_new_file(symbol, path)
        return f
