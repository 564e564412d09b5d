"""The read side of the PostgreSQL store: queries run as binary ``COPY (query) TO STDOUT`` and
decoded column by column with NumPy (:mod:`flowbook.store.pgread`), with psycopg's plain fetch as the
fallback for statements COPY does not take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

from .errors import StoreError
from .pgread import Unframed, copyable, decode_copy

__all__ = ["PgQueries"]


class PgQueries:
    """Queries of :class:`~flowbook.store.PostgresStore` (a mixin: it needs ``conn()`` and ``_fail()``)."""

    if TYPE_CHECKING:
        def conn(self) -> psycopg.Connection: ...
        def _fail(self, exc: psycopg.Error, what: str) -> StoreError: ...

    def query(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a read-only query; a polars DataFrame (``numeric`` columns as exact Decimal).

        A SELECT (WITH, VALUES, TABLE) runs as ``COPY (query) TO STDOUT (FORMAT BINARY)`` and its rows
        are decoded column by column with NumPy (:mod:`flowbook.store.pgread`): no Python object per
        value for the common types.  Parameters are then bound on the client by psycopg (quoted
        literals).  Other statements, and a query COPY refuses, are fetched the plain way.
        """
        return self._query(query, params, copy=True)

    def _query(self, query: str, params: Sequence[Any] | dict[str, Any] | None, copy: bool) -> pl.DataFrame:
        """:meth:`query`; ``copy=False`` fetches Python rows (psycopg's ``fetchall``): the tests' reference."""
        conn = self.conn()
        try:
            with conn.transaction(force_rollback=True), conn.cursor(binary=True) as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                if copy and copyable(query):
                    df = self._copy_query(conn, cur, query, params)
                    if df is not None:
                        return df
                cur.execute(query, params)  # type: ignore[arg-type]
                if cur.description is None:
                    raise StoreError("the statement returns no rows (use a SELECT)")
                names = _unique([d.name for d in cur.description])
                rows = cur.fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc, "query") from exc
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pl.DataFrame(dict(zip(names, columns, strict=True)), strict=False)

    @staticmethod
    def _copy_query(conn: psycopg.Connection, cur: psycopg.Cursor, query: str,
                    params: Sequence[Any] | dict[str, Any] | None) -> pl.DataFrame | None:
        """The rows of ``query`` through binary COPY; None when the plain path must run it instead."""
        text = query if params is None else psycopg.ClientCursor(conn).mogrify(query, params)  # type: ignore[arg-type]
        text = text.rstrip().rstrip(";")
        enc = conn.info.encoding
        pg = conn.pgconn
        res = pg.prepare(b"", text.encode(enc))
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(res, encoding=enc)
        desc = pg.describe_prepared(b"")
        if desc.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(desc, encoding=enc)
        if desc.nfields == 0:
            return None  # not a query that returns rows: the plain path says so
        names = _unique([(desc.fname(i) or b"").decode(enc) for i in range(desc.nfields)])
        oids = [desc.ftype(i) for i in range(desc.nfields)]
        try:
            # a savepoint: COPY refuses some texts PREPARE takes (a comment after a semicolon)
            with conn.transaction(), cur.copy(f"COPY (\n{text}\n) TO STDOUT (FORMAT BINARY)") as cp:  # type: ignore[call-overload]
                raw, lens = _copy_out(pg, cp, enc)
        except psycopg.errors.SyntaxError:
            return None
        try:
            return decode_copy(raw, lens, names, oids, Transformer(cur),
                               getattr(conn.info.timezone, "key", None), enc.replace("-", "").lower() == "utf8")
        except Unframed:
            return None

    def query_pandas(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        try:
            import pandas  # noqa: F401
        except ImportError as exc:
            raise StoreError("pandas is not installed (pip install 'flowbook[pandas]')") from exc
        return self._query(query, params, copy=True).to_pandas()


def _copy_out(pg: pq.abc.PGconn, cp: psycopg.Copy, enc: str) -> tuple[bytes, np.ndarray]:
    """The CopyData messages of a running ``COPY … TO STDOUT`` end to end, and their lengths.

    Messages libpq already holds are taken with non-blocking ``PQgetCopyData`` calls (psycopg's
    ``Copy.read`` costs several microseconds per row: one message is one row); when none is
    buffered, ``Copy.read`` waits for the next one, interruptibly.  Every 65,536 messages are joined
    into one block, so a large result holds few Python objects.  At the end the command's final
    result is read here, and an error (a failure in the middle of the rows) is raised.
    """
    blocks: list[bytes] = []
    lens: list[int] = []
    pending: list[Any] = []
    append, get = pending.append, pg.get_copy_data

    def flush() -> None:
        blocks.append(b"".join(pending))
        lens.extend(map(len, pending))
        pending.clear()

    finished = False
    while True:
        nbytes, data = get(1)
        if nbytes > 0:
            append(data)
            if len(pending) >= 65536:
                flush()
        elif nbytes == 0:
            more = cp.read()  # waits; b"" once psycopg has read the end and the final result itself
            if not more:
                finished = True
                break
            append(more)
        else:
            break
    flush()
    if not finished:
        error: psycopg.Error | None = None
        while (res := pg.get_result()) is not None:  # to the end, so the connection is idle again
            if res.status != pq.ExecStatus.COMMAND_OK and error is None:
                error = psycopg.errors.error_from_result(res, encoding=enc)
        if error is not None:
            raise error
    return b"".join(blocks) if len(blocks) > 1 else blocks[0], np.array(lens, np.int64)


def _unique(names: list[str]) -> list[str]:
    """Column names made unique for a DataFrame (``count``, ``count_1``, …)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k}")
    return out
