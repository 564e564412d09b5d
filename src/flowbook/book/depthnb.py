"""Depth over a price band: lots and ``Σ lots·ticks`` of one side up to a limit price.

The ladder's per-block sums (see :mod:`flowbook.book.nb`) make a band of ``B`` ticks cost about
``B / 64`` block reads plus at most 64 tick reads per edge, instead of ``B`` tick reads.  Sums are
exact integers (ladder index times lots), converted to float once.

Reference twin: :meth:`flowbook.book.reference.ReferenceBook.depth_to`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .hashnb import NO_ASK, NO_BID, TOMB
from .nb import BLK, BLK_SHIFT, ST_BASE, ST_BEST_ASK, ST_BEST_BID, ST_HA_LIVE, ST_HB_LIVE, ST_SIZE


@njit(cache=True, inline="always")
def _ticks_sum(lad, i0, i1):
    """Σ lad[i] and Σ lad[i]·i over ``[i0, i1]``, tick by tick (a loop that vectorises)."""
    tot = 0
    wsum = 0
    for i in range(i0, i1 + 1):
        q = lad[i]
        tot += q
        wsum += q * i
    return tot, wsum


@njit(cache=True, inline="always")
def _part(st, lad, off_q, nblk, b, lo, hi):
    """Σ over ``[lo, hi]`` inside block ``b``: tick by tick or block sum minus the rest, whichever reads less."""
    h = b << BLK_SHIFT
    e = min(h + BLK, lad.shape[0]) - 1
    inside = hi - lo + 1
    if inside <= (e - h + 1) - inside:
        return _ticks_sum(lad, lo, hi)
    tot = st[off_q + b]
    wsum = st[off_q + nblk + b]
    if lo > h:
        q, ws = _ticks_sum(lad, h, lo - 1)
        tot -= q
        wsum -= ws
    if hi < e:
        q, ws = _ticks_sum(lad, hi + 1, e)
        tot -= q
        wsum -= ws
    return tot, wsum


@njit(cache=True)
def ladder_sum(st, lad, k, i0, i1):
    """Σ lots and Σ lots·i of ladder ``lad`` (block sums ``k``: 0 bids, 1 asks) over ``[i0, i1]``."""
    if i1 < i0:
        return 0, 0
    nblk = max(1, (lad.shape[0] + BLK - 1) >> BLK_SHIFT)
    off_q = ST_SIZE + 2 * k * nblk
    b0 = i0 >> BLK_SHIFT
    b1 = i1 >> BLK_SHIFT
    if b0 == b1:
        return _part(st, lad, off_q, nblk, b0, i0, i1)
    tot, wsum = _part(st, lad, off_q, nblk, b0, i0, ((b0 + 1) << BLK_SHIFT) - 1)
    q, ws = _part(st, lad, off_q, nblk, b1, b1 << BLK_SHIFT, i1)
    tot += q
    wsum += ws
    for b in range(b0 + 1, b1):
        tot += st[off_q + b]
        wsum += st[off_q + nblk + b]
    return tot, wsum


@njit(cache=True)
def band_depth(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray, side: int, limit: int) -> tuple[int, float]:
    """Lots and sum of ``lots * ticks`` of ``side`` at prices no worse than tick ``limit``.

    Bids count ticks ``>= limit``; asks count ticks ``<= limit``.
    """
    base = st[ST_BASE]
    w = lb.shape[0]
    if side > 0:
        t = st[ST_BEST_BID]
        if t == NO_BID or t < limit:
            return 0, 0.0
        if base <= t < base + w:
            tot, wsum = ladder_sum(st, lb, 0, max(limit - base, 0), t - base)
            notional = float(tot * base + wsum)
            if limit < base and st[ST_HB_LIVE] > 0:
                for j in range(hkb.shape[0]):
                    k = hkb[j]
                    if k > TOMB and limit <= k < base:
                        tot += hvb[j]
                        notional += float(hvb[j]) * float(k)
            return tot, notional
        return _scan_all(st, lb, hkb, hvb, limit, True)
    t = st[ST_BEST_ASK]
    if t == NO_ASK or t > limit:
        return 0, 0.0
    if base <= t < base + w:
        tot, wsum = ladder_sum(st, la, 1, t - base, min(limit - base, w - 1))
        notional = float(tot * base + wsum)
        if limit >= base + w and st[ST_HA_LIVE] > 0:
            for j in range(hka.shape[0]):
                k = hka[j]
                if k > TOMB and base + w <= k <= limit:
                    tot += hva[j]
                    notional += float(hva[j]) * float(k)
        return tot, notional
    return _scan_all(st, la, hka, hva, limit, False)


@njit(cache=True)
def _scan_all(st, lad, keys, vals, limit, bids):
    """Slow path when the touch lies outside the window: every ladder tick and hash slot."""
    base = st[ST_BASE]
    tot = 0
    notional = 0.0
    for i in range(lad.shape[0]):
        if lad[i] != 0 and ((base + i >= limit) if bids else (base + i <= limit)):
            tot += lad[i]
            notional += float(lad[i]) * float(base + i)
    for j in range(keys.shape[0]):
        k = keys[j]
        if k > TOMB and ((k >= limit) if bids else (k <= limit)):
            tot += vals[j]
            notional += float(vals[j]) * float(k)
    return tot, notional
