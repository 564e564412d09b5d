"""Normalized event archives: parsed events in Parquet, so a replay can skip JSON parsing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..events import EVENT_DTYPE, Instrument

__all__ = ["fingerprint", "write_archive", "read_archive", "archive_path"]

_FIELDS = [name for name in EVENT_DTYPE.names or ()]


def fingerprint(paths: list[Path], extra: str = "") -> str:
    """Identity of a set of input files (path, size, mtime) plus parser options."""
    h = hashlib.sha256(extra.encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def archive_path(out: Path, fp: str) -> Path:
    return out.parent / ".flowbook-archive" / f"{fp}.events.parquet"


def write_archive(path: Path, events: np.ndarray, instruments: list[Instrument], meta: dict) -> None:
    """Write events with their instrument table and run metadata (JSON) in the file's metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({name: events[name] for name in _FIELDS})
    md = {
        b"flowbook.instruments": json.dumps([asdict(i) for i in instruments]).encode(),
        b"flowbook.meta": json.dumps(meta).encode(),
    }
    table = table.replace_schema_metadata(md)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)


def read_archive(path: Path) -> tuple[np.ndarray, list[Instrument], dict]:
    """Events, instruments and metadata from an archive written by :func:`write_archive`."""
    table = pq.read_table(path)
    md = table.schema.metadata or {}
    if b"flowbook.instruments" not in md:
        raise ValueError(f"{path}: not a flowbook event archive (no instrument table in its metadata)")
    events = np.zeros(table.num_rows, EVENT_DTYPE)
    for name in _FIELDS:
        events[name] = table.column(name).to_numpy()
    instruments = [Instrument(**d) for d in json.loads(md[b"flowbook.instruments"])]
    meta = json.loads(md.get(b"flowbook.meta", b"{}"))
    return events, instruments, meta
