"""Spill files: batches kept on local disk while the database cannot take them.

One batch per Parquet file ``spill-<ns>-<pid>-<n>.parquet`` in the spill directory, raw batch
columns (ticks, lots, ns) with the table and instrument in the file metadata, written atomically
(temp file, ``fsync``, rename).  Files sort oldest first; ``rejected/`` keeps batches the database
refused for a reason other than being unreachable.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..events import Instrument
from .schema import Batch

__all__ = ["SpillDir"]


class SpillDir:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._n = itertools.count()

    def write(self, b: Batch, sub: str = "") -> Path:
        """Store a batch durably; returns its file."""
        d = self.path / sub if sub else self.path
        d.mkdir(parents=True, exist_ok=True)
        cols = {}
        for c in b.table.data_columns:
            v = b.columns[c.name]
            cols[c.name] = pa.array(list(v), pa.string()) if c.numpy is None else pa.array(v)
        md = {b"flowbook.table": b.table.name.encode(), b"flowbook.instrument": json.dumps(asdict(b.instrument)).encode()}
        tbl = pa.table(cols).replace_schema_metadata(md)
        name = f"spill-{time.time_ns():020d}-{os.getpid()}-{next(self._n):06d}.parquet"
        final, tmp = d / name, d / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            pq.write_table(tbl, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return final

    def files(self) -> list[Path]:
        """Spilled batches waiting for the database, oldest first."""
        return sorted(self.path.glob("spill-*.parquet")) if self.path.is_dir() else []

    def rejected(self) -> list[Path]:
        d = self.path / "rejected"
        return sorted(d.glob("spill-*.parquet")) if d.is_dir() else []

    @staticmethod
    def read(path: Path) -> Batch:
        tbl = pq.read_table(path)
        md = tbl.schema.metadata or {}
        inst = Instrument(**json.loads(md[b"flowbook.instrument"]))
        cols: dict[str, object] = {}
        for name in tbl.column_names:
            col = tbl.column(name)
            cols[name] = np.asarray(col.to_pylist(), dtype=object) if pa.types.is_string(col.type) else col.to_numpy()
        return Batch.make(md[b"flowbook.table"].decode(), inst, cols)

    @staticmethod
    def rows(path: Path) -> int:
        return pq.ParquetFile(path).metadata.num_rows
