"""1-minute trade bars in PostgreSQL: kept at ingest in ``trade_bars_1m`` (migration 0003), read by
:meth:`PgBars.bars` at any interval, rebuilt from the trades on demand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from psycopg import sql

from .bars import BARS, BARS_COLUMNS, MINUTE_NS, bucket_bounds, trade_bars
from .bars import parse_interval as _interval
from .errors import StoreError
from .pgcopy import HEADER, TRAILER
from .schema import Batch

__all__ = ["PgBars", "COPY_TYPE"]

COPY_TYPE = {"ts": "int8", "i8": "int8", "i4": "int4", "i2": "int2", "f8": "float8", "price": "numeric",
             "qty": "numeric", "text": "text"}


class PgBars:
    """Trade bars of :class:`~flowbook.store.PostgresStore` (a mixin: it needs the store's connection,
    schema identifier, staging tables, function calls and queries)."""

    _bars_text: dict[str, str]

    if TYPE_CHECKING:
        import psycopg

        @property
        def _s(self) -> sql.Identifier: ...
        def conn(self) -> psycopg.Connection: ...
        def _stage(self, name: str, like: str) -> sql.Identifier: ...
        def _call(self, func: str, *args: Any) -> Any: ...
        def query(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame: ...

    def _bars_sql(self, src: str) -> str:
        """The statement that adds the bars of the trades in ``src`` (see migration 0003)."""
        text = self._bars_text.get(src)
        if text is None:
            row = self.conn().execute(sql.SQL("SELECT {}.fb_trade_bars_sql(%s)").format(self._s), (src,)).fetchone()
            assert row is not None
            text = self._bars_text[src] = str(row[0])
        return text

    def _merge_sql(self) -> str:
        """The ON CONFLICT clause that merges bars (``fb_trade_bars_merge()``, migration 0003)."""
        text = self._bars_text.get("")
        if text is None:
            row = self.conn().execute(sql.SQL("SELECT {}.fb_trade_bars_merge()").format(self._s)).fetchone()
            assert row is not None
            text = self._bars_text[""] = str(row[0])
        return text

    def _add_bars(self, parts: Sequence[tuple[Batch, int]]) -> None:
        """Merge the 1-minute bars of these (just inserted) trades into ``trade_bars_1m``."""
        by_iid: dict[int, list[Batch]] = {}
        for b, iid in parts:
            by_iid.setdefault(iid, []).append(b)
        bars = [trade_bars(bl, iid) for iid, bl in sorted(by_iid.items())]
        stage = self._stage(f"stg_{BARS}", BARS)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c, _ in BARS_COLUMNS)
        with self.conn().cursor() as cur:
            if all(b.exact for b in bars):
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, cols)) as cp:
                    cp.write(HEADER)
                    for b in bars:
                        cp.write(b.encode())
                    cp.write(TRAILER)
            else:  # a volume beyond int64: Python integers and Decimal, exact
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, cols)) as cp:
                    cp.set_types([COPY_TYPE[k] for _, k in BARS_COLUMNS])
                    for b in bars:
                        for row in b.rows():
                            cp.write_row(row)
            merge = self._merge_sql()
            cur.execute(sql.SQL("INSERT INTO {}.{} AS b SELECT * FROM {} ORDER BY instrument_id, ts {}").format(
                self._s, sql.Identifier(BARS), stage, sql.SQL(merge)))  # type: ignore[arg-type]
            cur.execute(sql.SQL("DELETE FROM {}").format(stage))  # a later use in this transaction starts empty

    def bars(self, symbol: str, start_ns: int, end_ns: int, interval: str | int = "1m",
             venue: str | None = None) -> pl.DataFrame:
        """Trade bars of one instrument: the ``interval`` buckets (aligned to the epoch) that start in
        ``[start_ns, end_ns)`` and hold trades, in time order.

        Columns: ``ts`` (bucket start, ``Datetime("ns")``), ``open``, ``high``, ``low``, ``close``,
        ``volume``, ``buy_volume``, ``sell_volume`` (exact decimals) and ``trades``.  Whole minutes
        (``"1m"``, ``"5m"``, ``"1h"``, ``"1d"``) come from ``trade_bars_1m``, kept at ingest; other
        intervals (``"10s"``) are aggregated from the trades.  ``venue`` is needed only when the
        symbol trades on several venues.
        """
        step = _interval(interval)
        lo, hi = bucket_bounds(start_ns, end_ns, step)
        where = {"venue": venue} if venue is not None else {}
        found = self.query("SELECT instrument_id FROM instruments WHERE symbol = %(symbol)s"
                           + (" AND venue = %(venue)s" if venue is not None else ""), {"symbol": symbol, **where})
        if found.height > 1:
            raise StoreError(f"{symbol} is stored for several venues; pass venue=")
        p = {"i": int(found["instrument_id"][0]) if found.height else -1, "lo": lo, "hi": hi, "step": step}
        cut = "%(step)s"
        if step == MINUTE_NS:
            q = ("SELECT ts AS bucket, open, high, low, close, volume, buy_volume, sell_volume, trades "
                 "FROM trade_bars_1m WHERE instrument_id = %(i)s AND ts >= %(lo)s AND ts < %(hi)s ORDER BY ts")
        elif step % MINUTE_NS == 0:
            q = (f"SELECT ts - ((ts %% {cut}) + {cut}) %% {cut} AS bucket, (array_agg(open ORDER BY ts))[1] AS open, "
                 "max(high) AS high, min(low) AS low, (array_agg(close ORDER BY ts DESC))[1] AS close, "
                 "sum(volume) AS volume, sum(buy_volume) AS buy_volume, sum(sell_volume) AS sell_volume, "
                 "sum(trades)::bigint AS trades FROM trade_bars_1m "
                 "WHERE instrument_id = %(i)s AND ts >= %(lo)s AND ts < %(hi)s GROUP BY 1 ORDER BY 1")
        else:
            q = (f"SELECT ts_exchange - ((ts_exchange %% {cut}) + {cut}) %% {cut} AS bucket, "
                 "(array_agg(price ORDER BY ts_exchange, trade_id, seq))[1] AS open, max(price) AS high, "
                 "min(price) AS low, (array_agg(price ORDER BY ts_exchange DESC, trade_id DESC, seq DESC))[1] AS "
                 "close, sum(qty) AS volume, coalesce(sum(qty) FILTER (WHERE side > 0), 0) AS buy_volume, "
                 "coalesce(sum(qty) FILTER (WHERE side < 0), 0) AS sell_volume, count(*) AS trades FROM trades "
                 "WHERE instrument_id = %(i)s AND ts_exchange >= %(lo)s AND ts_exchange < %(hi)s GROUP BY 1 ORDER BY 1")
        df = self.query(q, p)
        return df.rename({"bucket": "ts"}).with_columns(pl.col("ts").cast(pl.Datetime("ns")))

    def rebuild_bars(self, start_ns: int | None = None, end_ns: int | None = None) -> int:
        """Recompute ``trade_bars_1m`` of ``[start_ns, end_ns)`` (whole minutes; default: everything)
        from the stored trades, e.g. after trades were changed by hand; returns the bars written."""
        lo = -(2**63) + MINUTE_NS if start_ns is None else int(start_ns)
        hi = 2**63 - 1 if end_ns is None else int(end_ns)
        return int(self._call("fb_rebuild_trade_bars", lo, hi))
