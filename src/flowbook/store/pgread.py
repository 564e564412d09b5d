"""Query results of PostgreSQL as polars columns, decoded with NumPy from binary ``COPY … TO STDOUT``.

``COPY (query) TO STDOUT (FORMAT BINARY)`` sends each row as one CopyData message (PostgreSQL
protocol, "COPY Operations": "always one per row"): an int16 field count, then per field an int32
length (-1 for NULL) and the value in the type's binary send format, big-endian.  The column types
come from describing the query (libpq ``PQprepare`` + ``PQdescribePrepared``), because COPY sends
none.  Decoding works on whole columns:

* when every row has the same length and every column a fixed width (no NULL, no text or numeric),
  each column is a strided view of the bytes (one byte-order conversion per column);
* otherwise the field offsets are found column by column (one vectorised gather per column).

Types decoded without Python objects: bool, int2/4/8, oid, float4/8, numeric (exact, as an Arrow
``decimal128(38, max dscale)`` when the unscaled values fit int64), text/varchar/bpchar/name, date,
timestamp and timestamptz (microseconds, as psycopg gives them).  Any other type, and values these
cannot hold (numeric NaN/Infinity or beyond 18 digits, infinite dates and times), go through
psycopg's own binary loaders, one Python object per value, which is what a plain ``fetchall`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from psycopg import pq
from psycopg.adapt import Transformer

__all__ = ["SIGNATURE", "Unframed", "decode_copy", "decode_messages", "copyable"]

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
# fixed-width types: oid -> (width, big-endian dtype)
_FIXED: dict[int, tuple[int, str]] = {
    16: (1, "u1"), 21: (2, ">i2"), 23: (4, ">i4"), 20: (8, ">i8"), 26: (4, ">u4"), 700: (4, ">f4"),
    701: (8, ">f8"), 1082: (4, ">i4"), 1114: (8, ">i8"), 1184: (8, ">i8"),
}
_TEXT = {25, 1042, 1043, 19}  # text, bpchar, varchar, name
_NUMERIC = 1700
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000
_I64_MAX, _I64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min
_I32_MAX, _I32_MIN = np.iinfo(np.int32).max, np.iinfo(np.int32).min
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


class Unframed(Exception):
    """The COPY data is not one row per message as expected (the caller falls back to a plain fetch)."""


def copyable(query: str) -> bool:
    """True when ``query`` starts like a statement ``COPY ( … ) TO`` accepts (SELECT, WITH, VALUES, TABLE)."""
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace() or c == "(":
            i += 1
        elif query.startswith("--", i):
            j = query.find("\n", i)
            i = n if j < 0 else j + 1
        elif query.startswith("/*", i):
            j = query.find("*/", i + 2)
            if j < 0:
                return False
            i = j + 2
        else:
            break
    word = query[i:i + 7].lower()
    return word.startswith(("select", "with", "values", "table")) and not word.startswith("tables")


def _gather(buf: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes at each position: an (n, width) uint8 array (C order).  Positions past the end
    (the short fields of NULL rows) are clamped; the caller ignores those values."""
    if len(buf) < width:
        return np.zeros((len(pos), width), np.uint8)
    windows = np.lib.stride_tricks.as_strided(buf, shape=(len(buf) - width + 1, width), strides=(1, 1))
    return windows[np.minimum(pos, len(buf) - width)]


def _be(buf: np.ndarray, pos: np.ndarray, dtype: str) -> np.ndarray:
    """One big-endian value of ``dtype`` at each position, as a native array."""
    dt = np.dtype(dtype)
    if dt.itemsize == 1:
        return buf[np.minimum(pos, len(buf) - 1)].astype(dt.newbyteorder("="))
    if len(buf) < dt.itemsize:
        return np.zeros(len(pos), dt.newbyteorder("="))
    # an overlapping view with one (unaligned) value starting at every byte
    every = np.ndarray(shape=(len(buf) - dt.itemsize + 1,), dtype=dt, buffer=buf, strides=(1,))
    return every[np.minimum(pos, len(buf) - dt.itemsize)].astype(dt.newbyteorder("="))


def _validity(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    nulls = int(len(valid) - np.count_nonzero(valid))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


class _Column:
    """One result column: its values are the fields at ``off`` with lengths ``length`` (-1: NULL)."""

    def __init__(self, name: str, oid: int, off: np.ndarray, length: np.ndarray,
                 values: np.ndarray | None = None) -> None:
        self.name, self.oid, self.off, self.length = name, oid, off, length
        self.valid = length >= 0
        self.values = values  # the decoded values when the rows are one structured array


def _fixed(buf: np.ndarray, c: _Column, tz: str | None) -> pa.Array | None:
    width, dtype = _FIXED[c.oid]
    if np.any(c.valid & (c.length != width)):
        return None
    v = c.values if c.values is not None else _be(buf, np.where(c.valid, c.off, 0), dtype)
    valid = c.valid
    mask, nulls = _validity(valid)
    n = len(v)
    if c.oid == 16:
        return pa.array(v != 0, pa.bool_(), mask=~valid if nulls else None)
    if c.oid == 1082:  # date: int4 days since 2000-01-01; +-infinity are int4 max/min
        if np.any(valid & ((v == _I32_MAX) | (v == _I32_MIN))):
            return None
        d = (v.astype(np.int64) + _PG_EPOCH_DAYS).astype(np.int32)
        return pa.Array.from_buffers(pa.date32(), n, [mask, pa.py_buffer(d)], nulls)
    if c.oid in (1114, 1184):  # int8 microseconds since 2000-01-01; +-infinity are int8 max/min
        if np.any(valid & ((v == _I64_MAX) | (v == _I64_MIN))) or (c.oid == 1184 and tz is None):
            return None  # (a session time zone without a name: psycopg's datetimes)
        us = np.where(valid, v, 0) + _PG_EPOCH_US
        typ = pa.timestamp("us", tz if c.oid == 1184 else None)
        return pa.Array.from_buffers(typ, n, [mask, pa.py_buffer(us)], nulls)
    if nulls:
        v = np.where(valid, v, 0).astype(v.dtype)
    return pa.Array.from_buffers(pa.from_numpy_dtype(v.dtype), n, [mask, pa.py_buffer(v)], nulls)


def _numeric(buf: np.ndarray, c: _Column) -> pa.Array | None:
    """Exact decimal128(38, S), S the largest dscale, when every unscaled value fits int64."""
    valid = c.valid
    n = len(valid)
    if np.any(valid & (c.length < 8)):
        return None
    pos = np.where(valid, c.off, 0)
    head = _gather(buf, pos, 8).view(">i2").astype(np.int64)  # ndigits, weight, sign, dscale
    ndig, weight, sign, dscale = (np.where(valid, head[:, k], 0) for k in range(4))
    sign = sign & 0xFFFF
    if np.any((sign != 0) & (sign != 0x4000)) or np.any(valid & (c.length != 8 + 2 * ndig)):
        return None  # NaN, +-Infinity, or not the layout expected
    scale = int(dscale.max()) if n else 0
    present = ndig > 0
    top = int(np.max(np.where(present, 4 * (weight + 1), 0))) if n else 0  # integer digits at most
    if scale > 18 or max(top, 0) + scale > 18:
        return None  # may not fit int64: leave it to Python's Decimal
    k = int(ndig.max()) if n else 0
    value = np.zeros(n, np.int64)
    if k:
        digits = _gather(buf, pos + 8, 2 * k).view(">i2").astype(np.int64)
        for j in range(k):
            d = np.where(j < ndig, digits[:, j], 0)
            e = 4 * (weight - j) + scale  # decimal exponent of this base-10000 digit in the unscaled value
            up = np.clip(e, 0, 18)
            down = np.clip(-e, 0, 18)
            exact = (e >= -18) & ((d % _POW10[down]) == 0)
            if not np.all(exact | (d == 0)):
                return None
            value += np.where(e >= 0, d * _POW10[up], d // _POW10[down])
    value = np.where(sign == 0x4000, -value, value)
    mask, nulls = _validity(valid)
    words = np.empty((n, 2), np.int64)
    words[:, 0] = value
    words[:, 1] = value >> 63
    return pa.Array.from_buffers(pa.decimal128(38, scale), n, [mask, pa.py_buffer(words)], nulls)


def _text(buf: np.ndarray, c: _Column) -> pa.Array:
    length = np.maximum(c.length, 0)
    offsets = np.zeros(len(length) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    total = int(offsets[-1])
    idx = np.repeat(c.off - offsets[:-1], length) + np.arange(total, dtype=np.int64)
    data = buf[idx]
    mask, nulls = _validity(c.valid)
    return pa.Array.from_buffers(pa.large_utf8(), len(length), [mask, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 nulls)


def _objects(raw: memoryview, c: _Column, tx: Transformer) -> pl.Series:
    """Python values through psycopg's binary loader (what fetchall gives), then polars' inference."""
    loader = tx.get_loader(c.oid, pq.Format.BINARY)
    values = [loader.load(raw[o:o + n]) if n >= 0 else None for o, n in zip(c.off.tolist(), c.length.tolist(),
                                                                             strict=True)]
    if any(isinstance(v, Decimal) and not v.is_finite() for v in values):
        return pl.Series(c.name, values, dtype=pl.Object)  # polars decimals hold no NaN or Infinity
    try:
        return pl.Series(c.name, values, strict=False)
    except Exception:  # noqa: BLE001 - a value polars cannot infer a type for
        return pl.Series(c.name, values, dtype=pl.Object)


def _frame(raw: bytes, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The [begin, end) of each row in ``raw``, the CopyData messages of lengths ``lens`` end to end."""
    if not raw.startswith(SIGNATURE) or len(raw) < 21 or not raw.endswith(_TRAILER) or int(lens.sum()) != len(raw):
        raise Unframed("no binary COPY header or trailer")
    hdr = 19 + int.from_bytes(raw[15:19], "big")
    ends = np.cumsum(lens)
    begins = ends - lens
    if lens[0] < hdr:
        raise Unframed("header split across messages")
    begins[0] += hdr
    if ends[-1] - begins[-1] == 2:  # the trailer's own message
        begins, ends = begins[:-1], ends[:-1]
    elif len(lens) == 1 and lens[0] == hdr + 2:  # header and trailer together: no rows
        begins, ends = begins[:0], ends[:0]
    else:
        raise Unframed("trailer not in a message of its own")
    keep = ends > begins
    return begins[keep], ends[keep]


def decode_messages(chunks: Sequence[Any], names: Sequence[str], oids: Sequence[int], tx: Transformer,
                    timezone: str | None, utf8: bool) -> pl.DataFrame:
    """:func:`decode_copy` of a list of CopyData messages."""
    return decode_copy(b"".join(chunks), np.array([len(c) for c in chunks], np.int64), names, oids, tx, timezone,
                       utf8)


def decode_copy(raw: bytes, lens: np.ndarray, names: Sequence[str], oids: Sequence[int], tx: Transformer,
                timezone: str | None, utf8: bool) -> pl.DataFrame:
    """A polars frame of the rows of a binary COPY: ``raw`` is its CopyData messages end to end and
    ``lens`` their lengths.  ``names`` must be unique; ``timezone`` is the session's (None:
    timestamptz through psycopg's datetimes)."""
    begins, ends = _frame(raw, lens)
    buf = np.frombuffer(raw, np.uint8)
    n, ncols = len(begins), len(oids)
    if n and np.any(_be(buf, begins, ">i2") != ncols):
        raise Unframed("field count differs from the described columns")
    cols: list[_Column] = []
    widths = [_FIXED[o][0] if o in _FIXED else -1 for o in oids]
    rowlen = 2 + sum(4 + w for w in widths)
    if n and min(widths, default=0) > 0 and np.all(ends - begins == rowlen):
        # the common case: fixed widths and no NULL anywhere (a NULL would shorten its row), so each
        # column is a strided view of the buffer, converted to native byte order in one pass.  Every
        # field of a fixed-width type has that width or is NULL: the lengths are checked on row 0 only.
        if not np.all(np.diff(begins) == rowlen):
            raise Unframed("rows are not contiguous")
        o = int(begins[0]) + 2
        for name, oid, w in zip(names, oids, widths, strict=True):
            if int.from_bytes(raw[o:o + 4], "big", signed=True) != w:
                raise Unframed("a field length differs from its type's width")
            dtype = np.dtype(_FIXED[oid][1])
            v = np.ndarray((n,), dtype, buffer=buf, offset=o + 4, strides=(rowlen,)).astype(dtype.newbyteorder("="))
            cols.append(_Column(name, oid, begins + (o + 4 - int(begins[0])), np.full(n, w, np.int32), v))
            o += 4 + w
    else:
        pos = begins + 2
        for name, oid in zip(names, oids, strict=True):
            length = _be(buf, pos, ">i4") if n else np.zeros(0, np.int32)
            cols.append(_Column(name, oid, pos + 4, length))
            pos = pos + 4 + np.maximum(length, 0)
        if not np.array_equal(pos, ends):
            raise Unframed("rows do not end where their messages end")
    arrays: dict[int, pa.Array] = {}
    objects: dict[int, pl.Series] = {}
    for j, c in enumerate(cols):
        arr: pa.Array | None = None
        if c.oid in _FIXED:
            arr = _fixed(buf, c, timezone)
        elif c.oid == _NUMERIC:
            arr = _numeric(buf, c)
        elif c.oid in _TEXT and utf8:
            arr = _text(buf, c)
        if arr is None:
            objects[j] = _objects(memoryview(raw), c, tx)
        else:
            arrays[j] = arr
    if not arrays:
        return pl.DataFrame([objects[j] for j in range(len(cols))])
    # one Arrow table into polars (names are unique: the caller sees to it)
    df = pl.from_arrow(pa.Table.from_arrays(list(arrays.values()), names=[cols[j].name for j in arrays]))
    assert isinstance(df, pl.DataFrame)
    for j, series in objects.items():
        df.insert_column(j, series)
    return df
