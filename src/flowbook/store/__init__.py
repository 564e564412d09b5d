"""Storage: Parquet + DuckDB (embedded default) and PostgreSQL (TimescaleDB when present).

See ``docs/storage.md``.  ``open_store(uri)`` is the one way in: ``parquet:DIR`` or
``postgresql://…``; without a URI, ``$FLOWBOOK_STORE`` or the default Parquet directory.
"""

from .convert import event_batches, feature_batches, write_replay
from .errors import StoreError
from .parquet import ParquetStore
from .postgres import PostgresStore
from .schema import TABLES, Batch, Column, Table
from .uri import default_root, open_store
from .writer import AsyncWriter, WriterReport

__all__ = [
    "Batch", "Column", "Table", "TABLES", "StoreError", "ParquetStore", "PostgresStore", "AsyncWriter",
    "WriterReport", "open_store", "default_root", "event_batches", "feature_batches", "write_replay",
]
