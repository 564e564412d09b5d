"""Reads of the compiled L2 book: level lookup, the best N levels, depth over a price band.

Depth over a band (lots and ``Σ lots·ticks`` of one side up to a limit price): the ladder's per-block
sums (see :mod:`flowbook.book.nb`) make a band of ``B`` ticks cost about ``B / BLK`` block reads plus
at most ``BLK / 2`` tick reads per edge, instead of ``B`` tick reads.  The best ``n`` levels come from the
occupancy bitmaps, 64 ticks per word.  Sums are
exact integers (ladder index times lots), converted to float once.

Reference twin: :class:`flowbook.book.reference.ReferenceBook` (``get``, ``levels``, ``depth_to``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .hashnb import NO_ASK, NO_BID, TOMB, hash_extreme, hash_get
from .nb import (
    BLK,
    BLK_SHIFT,
    NO_BASE,
    ST_BASE,
    ST_BEST_ASK,
    ST_BEST_BID,
    ST_HA_LIVE,
    ST_HB_LIVE,
    ST_SIZE,
    ctlz,
    cttz,
    n_blocks,
    n_words,
    occ_off,
)


# Indexing note: the loops below index with unsigned integers.  A signed index makes numba wrap
# negative values around (``a[-1]``), a select per read that keeps LLVM from vectorising the loop; the
# indices here are never negative, and unsigned they sum several times faster.
@njit(cache=True, inline="always")
def _ticks_sum(lad, i0, i1):
    """Σ lad[i] and Σ lad[i]·i over ``[i0, i1]`` (``0 <= i0``), tick by tick (a loop that vectorises)."""
    tot = 0
    wsum = 0
    for i in range(np.uint64(i0), np.uint64(max(i1 + 1, i0))):
        q = lad[i]
        tot += q
        wsum += q * np.int64(i)
    return tot, wsum


@njit(cache=True, inline="always")
def _part(st, lad, off_q, nblk, b, lo, hi):
    """Σ over ``[lo, hi]`` inside block ``b``: tick by tick or block sum minus the rest, whichever reads less."""
    h = b << BLK_SHIFT
    e = min(h + BLK, lad.shape[0]) - 1
    inside = hi - lo + 1
    if inside <= (e - h + 1) - inside:
        return _ticks_sum(lad, lo, hi)
    tot = st[np.uint64(off_q + b)]
    wsum = st[np.uint64(off_q + nblk + b)]
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
    """Σ lots and Σ lots·i of ladder ``lad`` (block sums ``k``: 0 bids, 1 asks) over ``[i0, i1]``
    (``0 <= i0``): the whole blocks from their sums, the edge blocks by :func:`_part`."""
    if i1 < i0:
        return 0, 0
    nblk = n_blocks(lad.shape[0])
    off_q = ST_SIZE + 2 * k * nblk
    b0 = i0 >> BLK_SHIFT
    b1 = i1 >> BLK_SHIFT
    if b0 == b1:
        return _part(st, lad, off_q, nblk, b0, i0, i1)
    tot, wsum = _part(st, lad, off_q, nblk, b0, i0, ((b0 + 1) << BLK_SHIFT) - 1)
    q, ws = _part(st, lad, off_q, nblk, b1, b1 << BLK_SHIFT, i1)
    tot += q
    wsum += ws
    o1 = np.uint64(off_q + b0 + 1)
    o2 = np.uint64(off_q + nblk + b0 + 1)
    for j in range(np.uint64(b1 - b0 - 1)):
        tot += st[o1 + j]
        wsum += st[o2 + j]
    return tot, wsum


@njit(cache=True, inline="always")
def band_limits(bb, ba, bps):
    """Bid and ask limit ticks of the band of ``bps`` around the mid of touch ticks ``bb``/``ba``: the bids
    at or above the first, the asks at or below the second (the core features' depth within bps)."""
    m = (bb + ba) / 2.0
    return math.ceil(m * (1.0 - bps * 1e-4) - 1e-9), math.floor(m * (1.0 + bps * 1e-4) + 1e-9)


@njit(cache=True)
def band_depth(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray, side: int, limit: int) -> tuple[int, float]:
    """Lots and sum of ``lots * ticks`` of ``side`` at prices no worse than tick ``limit``.

    Bids count ticks ``>= limit``; asks count ticks ``<= limit``.
    """
    return band_depth_fast(st, lb, la, hkb, hvb, hka, hva, side, limit)


# Inlined front doors for the feature kernel's per-row reads.  A call of a compiled function passes every
# array as a struct of seven words, so a call with nine arrays costs more than the read itself; these
# inline the common case (the touch inside the window, the levels asked for in the ladder) and call out
# for the rest.  The public functions are these doors behind one call.
@njit(cache=True, inline="always")
def band_depth_fast(st, lb, la, hkb, hvb, hka, hva, side, limit):
    """:func:`band_depth`, inlined."""
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
                return _hash_band(hkb, hvb, limit, base - 1, tot, notional)
            return tot, notional
        return _scan_all(st, lb, hkb, hvb, limit, True)
    t = st[ST_BEST_ASK]
    if t == NO_ASK or t > limit:
        return 0, 0.0
    if base <= t < base + w:
        tot, wsum = ladder_sum(st, la, 1, t - base, min(limit - base, w - 1))
        notional = float(tot * base + wsum)
        if limit >= base + w and st[ST_HA_LIVE] > 0:
            return _hash_band(hka, hva, base + w, limit, tot, notional)
        return tot, notional
    return _scan_all(st, la, hka, hva, limit, False)


@njit(cache=True)
def _hash_band(keys, vals, lo, hi, tot, notional):
    """``tot``/``notional`` plus the far levels (hash) at ticks ``[lo, hi]``."""
    for j in range(keys.shape[0]):
        k = keys[j]
        if k > TOMB and lo <= k <= hi:
            tot += vals[j]
            notional += float(vals[j]) * float(k)
    return tot, notional


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


@njit(cache=True)
def get_level(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
              hka: np.ndarray, hva: np.ndarray, side: int, t: int) -> int:
    """Lots resting at tick ``t`` on ``side`` (0 if none)."""
    base = st[ST_BASE]
    if base == NO_BASE:
        return 0
    i = t - base
    if 0 <= i < lb.shape[0]:
        return lb[i] if side > 0 else la[i]
    return hash_get(hkb, hvb, t) if side > 0 else hash_get(hka, hva, t)


@njit(cache=True)
def _hash_next(keys: np.ndarray, vals: np.ndarray, bound: int, bids: bool):
    """The far level next after ``bound`` going away from the touch: ``(tick, lots)``; lots 0 if none.

    A scan of the table per level; used only when the window holds fewer levels than asked for.
    """
    if bids:
        k = hash_extreme(keys, bound, NO_BID, True)
        if k == NO_BID:
            return k, 0
    else:
        k = hash_extreme(keys, NO_ASK, bound, False)
        if k == NO_ASK:
            return k, 0
    return k, hash_get(keys, vals, k)


@njit(cache=True, inline="always")
def _ladder_top(st, lad, w, k, i, n, base, out_px, out_qty):
    """The first ``n`` levels of ladder ``lad`` (side ``k``: 0 bids, going down from index ``i``; 1 asks,
    going up) into ``out_px``/``out_qty``, by the occupancy bitmap: one word (64 ticks) per step and one
    step per level found.  Returns the count."""
    o = occ_off(w, k)
    wi = i >> 6
    m = 0
    if k == 0:
        wd = st[o + wi] & ~(np.int64(-2) << (i & 63))
        while m < n:
            while wd != 0 and m < n:
                b = 63 - ctlz(wd)
                j = (wi << 6) + b
                out_px[m] = base + j
                out_qty[m] = lad[j]
                m += 1
                wd ^= np.int64(1) << b
            wi -= 1
            if wi < 0:
                break
            wd = st[o + wi]
    else:
        nw = n_words(w)
        wd = st[o + wi] & (np.int64(-1) << (i & 63))
        while m < n:
            while wd != 0 and m < n:
                j = (wi << 6) + cttz(wd)
                out_px[m] = base + j
                out_qty[m] = lad[j]
                m += 1
                wd &= wd - 1
            wi += 1
            if wi >= nw:
                break
            wd = st[o + wi]
    return m


@njit(cache=True)
def top_levels(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray, side: int, n: int, out_px: np.ndarray,
               out_qty: np.ndarray) -> int:
    """Write the best ``n`` levels of ``side`` (best first) into ``out_px``/``out_qty``; returns count."""
    return top_levels_fast(st, lb, la, hkb, hvb, hka, hva, side, n, out_px, out_qty)


@njit(cache=True, inline="always")
def top_levels_fast(st, lb, la, hkb, hvb, hka, hva, side, n, out_px, out_qty):
    """:func:`top_levels`, inlined (a front door: see :func:`band_depth_fast`)."""
    base = st[ST_BASE]
    w = lb.shape[0]
    if side > 0:
        t = st[ST_BEST_BID]
        if t == NO_BID or n <= 0:
            return 0
        if base <= t < base + w:
            m = _ladder_top(st, lb, w, 0, t - base, n, base, out_px, out_qty)
            if m < n and st[ST_HB_LIVE] > 0:
                return _hash_top(hkb, hvb, base, True, n, m, out_px, out_qty)
            return m
    else:
        t = st[ST_BEST_ASK]
        if t == NO_ASK or n <= 0:
            return 0
        if base <= t < base + w:
            m = _ladder_top(st, la, w, 1, t - base, n, base, out_px, out_qty)
            if m < n and st[ST_HA_LIVE] > 0:
                return _hash_top(hka, hva, base + w - 1, False, n, m, out_px, out_qty)
            return m
    # slow path: the touch lies outside the window (only after unusual moves); merge everything
    return _top_levels_slow(st, lb, la, hkb, hvb, hka, hva, side, n, out_px, out_qty)


@njit(cache=True)
def _hash_top(keys, vals, bound, bids, n, m, out_px, out_qty):
    """Levels ``m ..`` of the best ``n`` from the far-level hash, beyond the window edge ``bound``."""
    while m < n:
        k, q = _hash_next(keys, vals, bound, bids)
        if q == 0:
            break
        out_px[m] = k
        out_qty[m] = q
        m += 1
        bound = k
    return m


@njit(cache=True)
def _top_levels_slow(st, lb, la, hkb, hvb, hka, hva, side, n, out_px, out_qty):
    """Best ``n`` levels when the touch lies outside the window: merge ladder and hash level by level."""
    base = st[ST_BASE]
    w = lb.shape[0]
    bids = side > 0
    lad = lb if bids else la
    keys = hkb if bids else hka
    vals = hvb if bids else hva
    bound = NO_ASK if bids else NO_BID  # strictly beyond the previous level taken
    m = 0
    while m < n:
        # the ladder's next level after ``bound``
        lt = NO_BID if bids else NO_ASK
        lq = 0
        if bids:
            i = min(bound - 1 - base, w - 1)
            while i >= 0:
                if lad[i] != 0:
                    lt = base + i
                    lq = lad[i]
                    break
                i -= 1
        else:
            i = max(bound + 1 - base, 0)
            while i < w:
                if lad[i] != 0:
                    lt = base + i
                    lq = lad[i]
                    break
                i += 1
        ht, hq = _hash_next(keys, vals, bound, bids)
        if lq == 0 and hq == 0:
            break
        if hq == 0 or (lq != 0 and ((lt > ht) if bids else (lt < ht))):
            out_px[m] = lt
            out_qty[m] = lq
        else:
            out_px[m] = ht
            out_qty[m] = hq
        bound = out_px[m]
        m += 1
    return m

