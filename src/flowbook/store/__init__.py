"""Storage: Parquet + DuckDB (embedded default) and PostgreSQL (TimescaleDB when present).

See ``docs/storage.md``.  ``open_store(uri)`` is the one way in: ``parquet:DIR`` or
``postgresql://…``; without a URI, ``$FLOWBOOK_STORE`` or the default Parquet directory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from .convert import event_batches, feature_batches, write_replay
    from .parquet import ParquetStore
    from .postgres import PostgresStore
    from .schema import TABLES, Batch, Column, Table
    from .uri import default_root, open_store
    from .writer import AsyncWriter, WriterReport

__all__ = [
    "Batch", "Column", "Table", "TABLES", "StoreError", "StoreUnavailable", "ParquetStore", "PostgresStore",
    "AsyncWriter", "WriterReport", "open_store", "default_root", "event_batches", "feature_batches", "write_replay",
]

# imported when first used, so that importing one store module does not load DuckDB, psycopg and
# pyarrow for every caller (``flowbook live`` without --store uses none of them)
_WHERE = {
    "event_batches": "convert", "feature_batches": "convert", "write_replay": "convert",
    "ParquetStore": "parquet", "PostgresStore": "postgres", "TABLES": "schema", "Batch": "schema",
    "Column": "schema", "Table": "schema", "default_root": "uri", "open_store": "uri",
    "AsyncWriter": "writer", "WriterReport": "writer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
