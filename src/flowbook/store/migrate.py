"""Versioned migrations of the PostgreSQL store: numbered ``.sql`` files applied once per schema.

``migrations/NNNN_name.sql`` ship with the package.  :func:`apply_migrations` takes a session advisory
lock (concurrent writers starting together migrate once), creates ``<schema>.schema_migrations``,
and applies each missing version in its own transaction with ``search_path = <schema>, public``,
recording version, name and SHA-256.  An applied file that has changed since is an error: migrations
are append-only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql

from .errors import StoreError

__all__ = ["Migration", "migrations", "apply_migrations", "valid_identifier"]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def valid_identifier(name: str, what: str = "identifier") -> str:
    """``name`` if it is a plain lower-case SQL identifier (letters, digits, ``_``), else StoreError."""
    if not _IDENT.match(name):
        raise StoreError(f"invalid {what} {name!r}: use lower-case letters, digits and '_' (at most 63)")
    return name


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The shipped migrations in version order."""
    out = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        m = _FILE.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort(key=lambda mg: mg.version)
    if [mg.version for mg in out] != list(range(1, len(out) + 1)):
        raise StoreError("migration files must be numbered 0001, 0002, … without gaps")
    return out


def apply_migrations(conn: psycopg.Connection, schema: str) -> list[int]:
    """Bring ``schema`` up to date; returns the versions applied now (empty when already current)."""
    valid_identifier(schema, "schema name")
    s = sql.Identifier(schema)
    applied_now: list[int] = []
    was_autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"flowbook.migrate.{schema}",))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())").format(s))
            done = dict(conn.execute(sql.SQL("SELECT version, checksum FROM {}.schema_migrations").format(s)).fetchall())
            for mg in migrations():
                if mg.version in done:
                    if done[mg.version] != mg.checksum:
                        raise StoreError(f"migration {mg.version:04d}_{mg.name} changed after it was applied to "
                                         f"schema {schema}; add a new migration instead")
                    continue
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(s))
                    conn.execute(mg.sql.encode())  # several statements, no parameters: simple protocol
                    conn.execute(sql.SQL("INSERT INTO {}.schema_migrations (version, name, checksum) "
                                         "VALUES (%s, %s, %s)").format(s), (mg.version, mg.name, mg.checksum))
                applied_now.append(mg.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"flowbook.migrate.{schema}",))
    except psycopg.Error as exc:
        raise StoreError(f"migrating schema {schema}: {str(exc).splitlines()[0]}") from exc
    finally:
        conn.autocommit = was_autocommit
    return applied_now
