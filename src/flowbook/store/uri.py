"""Open a store from a URI: ``parquet:DIR`` (or a plain directory) or ``postgresql://…``.

Resolution, first match wins:

1. the ``uri`` argument (``--store``);
2. ``$FLOWBOOK_STORE``;
3. the default Parquet directory: ``$FLOWBOOK_HOME/store``, else ``$XDG_DATA_HOME/flowbook/store``,
   else ``~/.local/share/flowbook/store``.

``postgresql:`` / ``postgres:`` with nothing after the colon takes the DSN from ``$FLOWBOOK_PG_DSN``.
A ``schema=NAME`` query parameter of a PostgreSQL URI picks the schema (default ``flowbook``); it is
removed before the DSN reaches libpq.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import StoreError

if TYPE_CHECKING:
    from .parquet import ParquetStore
    from .postgres import PostgresStore

__all__ = ["open_store", "default_root", "split_pg_uri", "is_postgres_uri", "display_uri"]

ENV_STORE = "FLOWBOOK_STORE"
ENV_PG_DSN = "FLOWBOOK_PG_DSN"


def default_root() -> Path:
    """Default directory of the embedded store."""
    home = os.environ.get("FLOWBOOK_HOME")
    if home:
        return Path(home).expanduser() / "store"
    data = os.environ.get("XDG_DATA_HOME")
    base = Path(data).expanduser() if data else Path.home() / ".local" / "share"
    return base / "flowbook" / "store"


def split_pg_uri(uri: str) -> tuple[str, str]:
    """``(dsn, schema)`` of a PostgreSQL URI; ``postgresql:`` alone reads ``$FLOWBOOK_PG_DSN``."""
    if uri.rstrip(":/") in ("postgresql", "postgres"):
        env = os.environ.get(ENV_PG_DSN)
        if not env:
            raise StoreError(f"--store {uri} needs the DSN in ${ENV_PG_DSN}")
        uri = env
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres"):
        return uri, "flowbook"  # a libpq key=value string
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "flowbook")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def is_postgres_uri(text: str) -> bool:
    """True when ``text`` names a PostgreSQL store (a URI or a libpq ``key=value`` string)."""
    return text.startswith(("postgresql:", "postgres:")) or ("=" in text and "dbname" in text)


def display_uri(uri: str | Path) -> str:
    """``uri`` for messages: a PostgreSQL DSN without its password."""
    text = str(uri)
    if not is_postgres_uri(text):
        return text
    from .postgres import redact

    dsn, schema = split_pg_uri(text)
    return f"{redact(dsn)}?schema={schema}"


def open_store(uri: str | Path | None = None, **options: object) -> ParquetStore | PostgresStore:
    """The store named by ``uri`` (see the module docstring); options go to the store's constructor."""
    text = str(uri) if uri is not None else os.environ.get(ENV_STORE, "")
    if not text:
        from .parquet import ParquetStore

        return ParquetStore(default_root(), **options)  # type: ignore[arg-type]
    if is_postgres_uri(text):
        from .postgres import PostgresStore

        dsn, schema = split_pg_uri(text)
        return PostgresStore(dsn, schema=str(options.pop("schema", schema)), **options)  # type: ignore[arg-type]
    if text.startswith("parquet:"):
        text = text[len("parquet:"):]
        if text.startswith("//"):
            text = text[2:]
        if not text:
            raise StoreError("parquet: needs a directory, e.g. parquet:./store")
    elif "://" in text:
        raise StoreError(f"unknown store URI {text!r}: use parquet:DIR or postgresql://…")
    from .parquet import ParquetStore

    return ParquetStore(Path(text), **options)  # type: ignore[arg-type]
