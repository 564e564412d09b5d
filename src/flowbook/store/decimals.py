"""Exact decimal columns from integer ticks/lots, vectorised (no Python object per value).

A price ``ticks * tick_size`` becomes an Arrow ``decimal128(38, scale)`` whose unscaled integer is
``ticks * (tick_size * 10**scale)``, computed in 128-bit two's complement with NumPy.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa

from .errors import StoreError

__all__ = ["step_units", "to_decimal128"]

_M32 = np.uint64(0xFFFFFFFF)


def step_units(step: str, scale: int) -> int:
    """``step * 10**scale`` as an integer; a :class:`StoreError` if the step has more decimals."""
    units = Decimal(step).scaleb(scale)
    if units != units.to_integral_value() or units <= 0:
        raise StoreError(f"step {step} has more than {scale} decimal places (or is not positive)")
    out = int(units)
    if out >= 1 << 63:
        raise StoreError(f"step {step} is too large for a {scale}-decimal column")
    return out


def _mul128(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``a * k`` for int64 ``a`` and ``0 < k < 2**63``: (low uint64 word, high int64 word)."""
    neg = a < 0
    ua = np.where(neg, -(a.astype(np.int64)), a).view(np.uint64)  # |a| (INT64_MIN wraps to 2**63: fine)
    ah, al = ua >> np.uint64(32), ua & _M32
    kh, kl = np.uint64(k >> 32), np.uint64(k & 0xFFFFFFFF)
    p0, p1, p2, p3 = al * kl, al * kh, ah * kl, ah * kh
    mid = (p0 >> np.uint64(32)) + (p1 & _M32) + (p2 & _M32)
    lo = (p0 & _M32) | (mid << np.uint64(32))
    hi = p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (mid >> np.uint64(32))
    # negate the 128-bit value where a < 0: ~x + 1
    nlo = ~lo + np.uint64(1)
    nhi = ~hi + (nlo == 0).astype(np.uint64)
    return np.where(neg, nlo, lo), np.where(neg, nhi, hi).view(np.int64)


def to_decimal128(units: np.ndarray, step: str, scale: int, precision: int = 38) -> pa.Array:
    """Arrow ``decimal128(precision, scale)`` of ``units * step`` (exact)."""
    k = step_units(step, scale)
    a = np.ascontiguousarray(units, dtype=np.int64)
    buf = np.empty((len(a), 2), np.uint64)
    lim = (1 << 63) // k
    if len(a) == 0 or (int(a.max()) < lim and int(a.min()) > -lim):  # the product fits int64
        v = a * np.int64(k) if k != 1 else a
        buf[:, 0] = v.view(np.uint64)
        buf[:, 1] = (v >> 63).view(np.uint64)
    else:
        lo, hi = _mul128(a, k)
        buf[:, 0], buf[:, 1] = lo, hi.view(np.uint64)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(a), [None, pa.py_buffer(buf)])

