"""The stored tables, defined once for both stores, and the :class:`Batch` every write takes.

A table is a list of typed columns, the column that places a row in time (the ``date=`` partition of
the Parquet store, the range-partition key of PostgreSQL) and the natural key that makes writes
idempotent on PostgreSQL.  Every row also belongs to one instrument (``venue``, ``symbol``): a
partition pair in Parquet, ``instrument_id`` in PostgreSQL.  Column kinds:

========  ====================================  =====================  ================
kind      value in a :class:`Batch`             Parquet / DuckDB       PostgreSQL
========  ====================================  =====================  ================
ts        int64 ns since the epoch (UTC)        timestamp[ns]          bigint (ns)
i8 … u1   integers                              same width             bigint/int/smallint
f8        float64                               double                 double precision
price     int64 ticks of the instrument         decimal(38, 12) exact  numeric exact
qty       int64 lots of the instrument          decimal(38, 12) exact  numeric exact
text      str                                   string                 text
inst      (taken from the instrument)           string                 -
========  ====================================  =====================  ================

``seq`` (where a table has it) separates rows that share the rest of the natural key, 0, 1, 2… in
source order; :meth:`Batch.make` fills it when the caller does not.  The documentation of every table
is in ``docs/storage.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..events import Instrument
from .errors import StoreError

__all__ = ["Column", "Table", "Batch", "TABLES", "FEATURE_NAMES", "DECIMAL_SCALE", "table", "NS_PER_DAY"]

DECIMAL_SCALE = 12  # decimal places of price/qty columns in Parquet (DECIMAL(38, 12))
NS_PER_DAY = 86_400_000_000_000

_NUMPY = {"ts": "i8", "i8": "i8", "i4": "i4", "i2": "i2", "i1": "i1", "u1": "u1", "u2": "u2",
          "f8": "f8", "price": "i8", "qty": "i8"}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # ts, i8, i4, i2, i1, u1, u2, f8, price, qty, text, inst

    @property
    def numpy(self) -> str | None:
        """NumPy dtype of the column in a batch (None for text columns)."""
        return _NUMPY.get(self.kind)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    time: str  # the column that dates a row (partitions)
    key: tuple[str, ...]  # natural key within one instrument (PostgreSQL primary key after instrument_id)
    postgres: bool = True  # also a PostgreSQL table
    derived: bool = False  # kept by the stores from other tables (written with them, never directly)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def data_columns(self) -> list[Column]:
        """Columns a batch carries (everything but instrument constants)."""
        return [c for c in self.columns if c.kind != "inst"]


def _cols(spec: str) -> tuple[Column, ...]:
    return tuple(Column(*item.split(":")) for item in spec.split())


# the core feature columns of flowbook.features.FEATURE_COLUMNS, in order (a test checks they agree;
# a new feature needs a PostgreSQL migration that adds its column)
FEATURE_NAMES: tuple[str, ...] = (
    "best_bid", "best_bid_qty", "best_ask", "best_ask_qty", "mid", "spread", "spread_bps", "spread_pct",
    "microprice", "imbalance_1", "imbalance_n", "imbalance_dw", "bid_depth_n", "ask_depth_n",
    "bid_notional_n", "ask_notional_n", "total_depth_n", "depth_ratio", "depth_ratio_capped",
    "large_order_presence", "bid_depth_bps", "ask_depth_bps", "bid_notional_bps", "ask_notional_bps", "ofi",
    "mlofi_1", "mlofi_2", "mlofi_3", "mlofi_4", "mlofi_5", "cvd", "delta_volume_k", "buy_volume",
    "sell_volume", "trade_count", "vwap", "vwap_k", "last_price",
)

_TABLES = [
    Table("events", _cols(
        "kind:u1 side:i1 flags:u2 ts_exchange:ts ts_local:ts price:i8 qty:i8 id:i8 id2:i8 value:f8 "
        "tick_size:inst lot_size:inst"), time="ts_local", key=(), postgres=False),
    Table("trades", _cols("ts_exchange:ts ts_local:ts trade_id:i8 side:i2 price:price qty:qty flags:i4 seq:i4"),
          time="ts_exchange", key=("ts_exchange", "trade_id", "seq")),
    Table("liquidations", _cols("ts_exchange:ts ts_local:ts side:i2 price:price qty:qty avg_price:f8 seq:i4"),
          time="ts_exchange", key=("ts_exchange", "side", "seq")),
    Table("funding_rates", _cols(
        "ts_exchange:ts ts_local:ts funding_rate:f8 mark_price:f8 next_funding_time:ts seq:i4"),
          time="ts_exchange", key=("ts_exchange", "seq")),
    Table("open_interest", _cols("ts_exchange:ts ts_local:ts open_interest:f8 seq:i4"),
          time="ts_exchange", key=("ts_exchange", "seq")),
    Table("features", _cols("ts:ts ts_exchange:ts update_id:i8 interval_ns:i8 config_hash:i8 seq:i4 "
                            + " ".join(f"{n}:{'i8' if n == 'trade_count' else 'f8'}" for n in FEATURE_NAMES)),
          time="ts", key=("config_hash", "ts", "update_id", "seq")),
    Table("detector_events", _cols(
        "ts:ts ts_exchange:ts detector:text side:i2 price:price qty:qty score:f8 details:text seq:i4"),
          time="ts", key=("detector", "ts", "seq")),
    Table("book_deltas", _cols("ts_local:ts ts_exchange:ts update_id:i8 first_update_id:i8 kind:i2 side:i2 "
                               "price:price qty:qty flags:i4 seq:i4"),
          time="ts_local", key=("ts_local", "update_id", "seq")),
    Table("book_snapshots", _cols("ts_local:ts ts_exchange:ts update_id:i8 side:i2 level:i2 price:price qty:qty"),
          time="ts_local", key=("ts_local", "update_id", "side", "level")),
    Table("liquidation_levels", _cols("ts:ts side:i2 price:price leverage:f8 notional:f8"),
          time="ts", key=("ts", "side", "price", "leverage")),
    # 1-minute bars of the trades (flowbook.store.bars), written by the stores with the trades
    Table("trade_bars_1m", _cols("ts:ts open:price high:price low:price close:price volume:qty buy_volume:qty "
                                 "sell_volume:qty trades:i8 open_ts:ts open_trade_id:i8 open_seq:i4 close_ts:ts "
                                 "close_trade_id:i8 close_seq:i4"), time="ts", key=("ts",), derived=True),
]
TABLES: dict[str, Table] = {t.name: t for t in _TABLES}


def table(name: str) -> Table:
    """The table called ``name`` (a :class:`StoreError` names the known ones otherwise)."""
    try:
        return TABLES[name]
    except KeyError:
        raise StoreError(f"unknown table {name!r}; known: {', '.join(TABLES)}") from None


@dataclass(frozen=True)
class Batch:
    """Rows of one table for one instrument: column name -> NumPy array (text: a list or object array).

    Build with :meth:`make`, which checks names, lengths and types and fills ``seq``.
    """

    table: Table
    instrument: Instrument
    columns: Mapping[str, np.ndarray] = field(repr=False)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values())))  # every batch holds all of its data columns

    @classmethod
    def make(cls, table_name: str, instrument: Instrument, columns: Mapping[str, object]) -> Batch:
        t = table(table_name)
        want = {c.name for c in t.data_columns}
        have = set(columns)
        missing = want - have - {"seq"}
        extra = have - want
        if missing or extra:
            raise StoreError(f"{t.name}: missing columns {sorted(missing)}, unknown columns {sorted(extra)}")
        out: dict[str, np.ndarray] = {}
        n = -1
        for c in t.data_columns:
            if c.name not in columns:
                continue
            v = columns[c.name]
            arr = np.asarray(v, dtype=object) if c.numpy is None else np.ascontiguousarray(v, dtype=c.numpy)
            if arr.ndim != 1 or (n >= 0 and len(arr) != n):
                raise StoreError(f"{t.name}.{c.name}: expected a 1-d column of {n} rows, got shape {arr.shape}")
            n = len(arr)
            out[c.name] = arr
        if "seq" in want and "seq" not in columns:
            seq_kind = t.column("seq").numpy or "i8"
            out["seq"] = rank_within(t, out, n).astype(seq_kind)
        return cls(t, instrument, out)

    def slice(self, idx: np.ndarray | slice) -> Batch:
        return Batch(self.table, self.instrument, {k: v[idx] for k, v in self.columns.items()})


def rank_within(t: Table, cols: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """0, 1, 2… for rows sharing the rest of the natural key, in source order (the ``seq`` column)."""
    group = [k for k in t.key if k != "seq"]
    if not group or n == 0:
        return np.arange(n, dtype=np.int64)
    keys = [np.unique(np.asarray(cols[g]), return_inverse=True)[1] if cols[g].dtype == object
            else cols[g] for g in group]
    order = np.lexsort([np.arange(n)] + keys[::-1])  # stable: source order breaks ties
    same = np.ones(n - 1, bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    start = np.flatnonzero(np.r_[True, ~same])
    pos = np.arange(n) - np.repeat(start, np.diff(np.r_[start, n]))
    rank = np.empty(n, np.int64)
    rank[order] = pos
    return rank


def days_of(ts_ns: np.ndarray) -> np.ndarray:
    """UTC day number (days since 1970-01-01) of nanosecond timestamps."""
    return np.floor_divide(ts_ns, NS_PER_DAY)
