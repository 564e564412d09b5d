"""Compiled L2 book kernels: a dense tick ladder around the touch plus a hash for far levels.

Layout (one book = one instrument)
----------------------------------
- ``st``: int64 state vector, indexed by the ``ST_*`` constants below.
- ``lb``/``la``: int64 quantity (lots) per tick for bids/asks over the window
  ``[st[ST_BASE], st[ST_BASE] + W)``; 0 means no level.
- ``hkb``/``hvb`` and ``hka``/``hva``: open-addressing hash tables (tick -> lots) holding every
  level outside the window.  Capacity is a power of two; ``EMPTY``/``TOMB`` mark free slots.

Level updates are O(1).  The window follows the market: when the touch comes within ``W/8`` of an
edge, or an update lands on the inside of the window's far edge, :func:`recenter` moves levels
between ladder and hash.  Functions that may need more hash room check first and return
``NEED_GROW`` *without* changing anything, so the caller can grow the tables and retry.

Reference twin: :class:`flowbook.book.reference.ReferenceBook` (plain Python dicts); the hypothesis
tests in ``tests/test_book_model.py`` drive both with the same random operations.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .hashnb import EMPTY, NO_ASK, NO_BID, TOMB, hash_extreme, hash_get, hash_put, hash_room

# state vector slots
ST_BASE = 0
ST_W = 1
ST_BEST_BID = 2
ST_BEST_ASK = 3
ST_NBID = 4
ST_NASK = 5
ST_HB_USED = 6  # occupied slots incl. tombstones
ST_HA_USED = 7
ST_HB_LIVE = 8
ST_HA_LIVE = 9
ST_RECENTERS = 10
ST_SIZE = 16

NO_BASE = -(2**62)
OK = 0
NEED_GROW = 2


@njit(cache=True)
def book_clear(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray) -> None:
    """Drop every level."""
    if st[ST_NBID] > 0 or st[ST_NASK] > 0:
        lb[:] = 0
        la[:] = 0
    if st[ST_HB_USED] > 0:
        hkb[:] = EMPTY
        hvb[:] = 0
    if st[ST_HA_USED] > 0:
        hka[:] = EMPTY
        hva[:] = 0
    st[ST_BASE] = NO_BASE
    st[ST_BEST_BID] = NO_BID
    st[ST_BEST_ASK] = NO_ASK
    st[ST_NBID] = 0
    st[ST_NASK] = 0
    st[ST_HB_USED] = 0
    st[ST_HA_USED] = 0
    st[ST_HB_LIVE] = 0
    st[ST_HA_LIVE] = 0


@njit(cache=True)
def _next_bid_below(st, lb, hkb, t):
    """Best bid strictly below tick ``t``."""
    base = st[ST_BASE]
    w = lb.shape[0]
    i = t - 1 - base
    if i >= w:
        # t above the window: anything above the window lives in the hash
        k = hash_extreme(hkb, t, base + w - 1, True)
        if k != NO_BID:
            return k
        i = w - 1
    while i >= 0:
        if lb[i] != 0:
            return base + i
        i -= 1
    if st[ST_HB_LIVE] == 0:
        return NO_BID
    return hash_extreme(hkb, min(t, base), NO_BID, True)


@njit(cache=True)
def _next_ask_above(st, la, hka, t):
    """Best ask strictly above tick ``t``."""
    base = st[ST_BASE]
    w = la.shape[0]
    i = t + 1 - base
    if i < 0:
        k = hash_extreme(hka, base, t, False)
        if k != NO_ASK:
            return k
        i = 0
    while i < w:
        if la[i] != 0:
            return base + i
        i += 1
    if st[ST_HA_LIVE] == 0:
        return NO_ASK
    return hash_extreme(hka, NO_ASK, max(t, base + w - 1), False)


@njit(cache=True)
def recenter(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
             hka: np.ndarray, hva: np.ndarray, center: int) -> int:
    """Move the window to ``[center - W/2, center + W/2)``.  Returns ``OK`` or ``NEED_GROW``."""
    w = lb.shape[0]
    old = st[ST_BASE]
    new = center - w // 2
    if old == new:
        return OK
    if old == NO_BASE:
        st[ST_BASE] = new
        return OK
    # 1. how many ladder levels leave the window (they go to the hash)
    out_b = 0
    out_a = 0
    for i in range(w):
        t = old + i
        if t < new or t >= new + w:
            if lb[i] != 0:
                out_b += 1
            if la[i] != 0:
                out_a += 1
    if not hash_room(hkb, st[ST_HB_USED], out_b) or not hash_room(hka, st[ST_HA_USED], out_a):
        return NEED_GROW
    ob = lb.copy()
    oa = la.copy()
    lb[:] = 0
    la[:] = 0
    st[ST_BASE] = new
    # 2. levels from the hash that fall inside the new window move to the ladder
    for j in range(hkb.shape[0]):
        k = hkb[j]
        if k > TOMB and new <= k < new + w:
            lb[k - new] = hvb[j]
            hkb[j] = TOMB
            hvb[j] = 0
            st[ST_HB_LIVE] -= 1
    for j in range(hka.shape[0]):
        k = hka[j]
        if k > TOMB and new <= k < new + w:
            la[k - new] = hva[j]
            hka[j] = TOMB
            hva[j] = 0
            st[ST_HA_LIVE] -= 1
    # 3. old ladder levels: into the new ladder or the hash
    for i in range(w):
        t = old + i
        q = ob[i]
        if q != 0:
            if new <= t < new + w:
                lb[t - new] = q
            else:
                st[ST_HB_LIVE] += hash_put(hkb, hvb, st, ST_HB_USED, t, q)
        q = oa[i]
        if q != 0:
            if new <= t < new + w:
                la[t - new] = q
            else:
                st[ST_HA_LIVE] += hash_put(hka, hva, st, ST_HA_USED, t, q)
    st[ST_RECENTERS] += 1
    return OK


@njit(cache=True)
def set_level(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
              hka: np.ndarray, hva: np.ndarray, side: int, t: int, q: int) -> int:
    """Set the level at tick ``t`` of ``side`` (+1 bid, -1 ask) to ``q`` lots; 0 deletes.

    Deleting a level that is not there is a no-op.  Returns ``OK`` or ``NEED_GROW`` (nothing changed).
    """
    w = lb.shape[0]
    if st[ST_BASE] == NO_BASE:
        if q == 0:
            return OK
        st[ST_BASE] = t - w // 2
    base = st[ST_BASE]
    # an update on the inside of the window's far edge: bring it into the window first
    if q != 0 and ((side > 0 and t >= base + w) or (side < 0 and t < base)):
        r = recenter(st, lb, la, hkb, hvb, hka, hva, t)
        if r != OK:
            return r
        base = st[ST_BASE]
    i = t - base
    if side > 0:
        if 0 <= i < w:
            old = lb[i]
            lb[i] = q
            if q != 0:
                if old == 0:
                    st[ST_NBID] += 1
                if t > st[ST_BEST_BID]:
                    st[ST_BEST_BID] = t
            elif old != 0:
                st[ST_NBID] -= 1
                if t == st[ST_BEST_BID]:
                    st[ST_BEST_BID] = _next_bid_below(st, lb, hkb, t)
        else:
            if q != 0 and not hash_room(hkb, st[ST_HB_USED], 1):
                return NEED_GROW
            d = hash_put(hkb, hvb, st, ST_HB_USED, t, q)
            st[ST_HB_LIVE] += d
            st[ST_NBID] += d
            if q != 0:
                if t > st[ST_BEST_BID]:
                    st[ST_BEST_BID] = t
            elif d != 0 and t == st[ST_BEST_BID]:
                st[ST_BEST_BID] = _next_bid_below(st, lb, hkb, t)
    else:
        if 0 <= i < w:
            old = la[i]
            la[i] = q
            if q != 0:
                if old == 0:
                    st[ST_NASK] += 1
                if t < st[ST_BEST_ASK]:
                    st[ST_BEST_ASK] = t
            elif old != 0:
                st[ST_NASK] -= 1
                if t == st[ST_BEST_ASK]:
                    st[ST_BEST_ASK] = _next_ask_above(st, la, hka, t)
        else:
            if q != 0 and not hash_room(hka, st[ST_HA_USED], 1):
                return NEED_GROW
            d = hash_put(hka, hva, st, ST_HA_USED, t, q)
            st[ST_HA_LIVE] += d
            st[ST_NASK] += d
            if q != 0:
                if t < st[ST_BEST_ASK]:
                    st[ST_BEST_ASK] = t
            elif d != 0 and t == st[ST_BEST_ASK]:
                st[ST_BEST_ASK] = _next_ask_above(st, la, hka, t)
    return OK


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
def _hash_sorted(keys: np.ndarray, vals: np.ndarray, descending: bool):
    n = 0
    for j in range(keys.shape[0]):
        if keys[j] > TOMB:
            n += 1
    ks = np.empty(n, np.int64)
    vs = np.empty(n, np.int64)
    m = 0
    for j in range(keys.shape[0]):
        if keys[j] > TOMB:
            ks[m] = keys[j]
            vs[m] = vals[j]
            m += 1
    order = np.argsort(ks)
    if descending:
        order = order[::-1]
    return ks[order], vs[order]


@njit(cache=True)
def top_levels(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray, side: int, n: int, out_px: np.ndarray,
               out_qty: np.ndarray) -> int:
    """Write the best ``n`` levels of ``side`` (best first) into ``out_px``/``out_qty``; returns count."""
    base = st[ST_BASE]
    w = lb.shape[0]
    m = 0
    if side > 0:
        t = st[ST_BEST_BID]
        if t == NO_BID or n <= 0:
            return 0
        if base <= t < base + w:
            i = t - base
            while i >= 0 and m < n:
                q = lb[i]
                if q != 0:
                    out_px[m] = base + i
                    out_qty[m] = q
                    m += 1
                i -= 1
            if m < n and st[ST_HB_LIVE] > 0:
                ks, vs = _hash_sorted(hkb, hvb, True)
                for j in range(ks.shape[0]):
                    if m >= n:
                        break
                    if ks[j] < base:
                        out_px[m] = ks[j]
                        out_qty[m] = vs[j]
                        m += 1
            return m
    else:
        t = st[ST_BEST_ASK]
        if t == NO_ASK or n <= 0:
            return 0
        if base <= t < base + w:
            i = t - base
            while i < w and m < n:
                q = la[i]
                if q != 0:
                    out_px[m] = base + i
                    out_qty[m] = q
                    m += 1
                i += 1
            if m < n and st[ST_HA_LIVE] > 0:
                ks, vs = _hash_sorted(hka, hva, False)
                for j in range(ks.shape[0]):
                    if m >= n:
                        break
                    if ks[j] >= base + w:
                        out_px[m] = ks[j]
                        out_qty[m] = vs[j]
                        m += 1
            return m
    # slow path: the touch lies outside the window (only after unusual moves); merge everything
    return _top_levels_slow(st, lb, la, hkb, hvb, hka, hva, side, n, out_px, out_qty)


@njit(cache=True)
def _top_levels_slow(st, lb, la, hkb, hvb, hka, hva, side, n, out_px, out_qty):
    base = st[ST_BASE]
    w = lb.shape[0]
    lad = lb if side > 0 else la
    ks, vs = _hash_sorted(hkb, hvb, True) if side > 0 else _hash_sorted(hka, hva, False)
    cnt = 0
    for i in range(w):
        if lad[i] != 0:
            cnt += 1
    allk = np.empty(cnt + ks.shape[0], np.int64)
    allv = np.empty(cnt + ks.shape[0], np.int64)
    m = 0
    for i in range(w):
        if lad[i] != 0:
            allk[m] = base + i
            allv[m] = lad[i]
            m += 1
    for j in range(ks.shape[0]):
        allk[m] = ks[j]
        allv[m] = vs[j]
        m += 1
    order = np.argsort(allk)
    if side > 0:
        order = order[::-1]
    k = min(n, order.shape[0])
    for j in range(k):
        out_px[j] = allk[order[j]]
        out_qty[j] = allv[order[j]]
    return k


@njit(cache=True)
def band_depth(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray, side: int, limit: int) -> tuple[int, float]:
    """Lots and sum of ``lots * ticks`` of ``side`` at prices no worse than tick ``limit``.

    Bids count ticks ``>= limit``; asks count ticks ``<= limit``.
    """
    base = st[ST_BASE]
    w = lb.shape[0]
    tot = 0
    notional = 0.0
    if side > 0:
        t = st[ST_BEST_BID]
        if t == NO_BID or t < limit:
            return 0, 0.0
        if base <= t < base + w:
            lo = max(limit - base, 0)
            for i in range(lo, t - base + 1):  # branch-free so it vectorises; empty ticks add 0
                q = lb[i]
                tot += q
                notional += float(q) * float(base + i)
            if limit < base and st[ST_HB_LIVE] > 0:
                for j in range(hkb.shape[0]):
                    k = hkb[j]
                    if k > TOMB and limit <= k < base:
                        tot += hvb[j]
                        notional += float(hvb[j]) * float(k)
            return tot, notional
        for i in range(w):
            if lb[i] != 0 and base + i >= limit:
                tot += lb[i]
                notional += float(lb[i]) * float(base + i)
        for j in range(hkb.shape[0]):
            k = hkb[j]
            if k > TOMB and k >= limit:
                tot += hvb[j]
                notional += float(hvb[j]) * float(k)
        return tot, notional
    t = st[ST_BEST_ASK]
    if t == NO_ASK or t > limit:
        return 0, 0.0
    if base <= t < base + w:
        hi = min(limit - base, w - 1)
        for i in range(t - base, hi + 1):  # branch-free so it vectorises; empty ticks add 0
            q = la[i]
            tot += q
            notional += float(q) * float(base + i)
        if limit >= base + w and st[ST_HA_LIVE] > 0:
            for j in range(hka.shape[0]):
                k = hka[j]
                if k > TOMB and base + w <= k <= limit:
                    tot += hva[j]
                    notional += float(hva[j]) * float(k)
        return tot, notional
    for i in range(w):
        if la[i] != 0 and base + i <= limit:
            tot += la[i]
            notional += float(la[i]) * float(base + i)
    for j in range(hka.shape[0]):
        k = hka[j]
        if k > TOMB and k <= limit:
            tot += hva[j]
            notional += float(hva[j]) * float(k)
    return tot, notional


@njit(cache=True)
def maybe_recenter(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
                   hka: np.ndarray, hva: np.ndarray) -> int:
    """Recenter on the mid when the touch has drifted within W/8 of a window edge."""
    base = st[ST_BASE]
    if base == NO_BASE:
        return OK
    w = lb.shape[0]
    bb = st[ST_BEST_BID]
    ba = st[ST_BEST_ASK]
    margin = w // 8
    if bb != NO_BID and ba != NO_ASK:
        center = (bb + ba) // 2
    elif bb != NO_BID:
        center = bb
    elif ba != NO_ASK:
        center = ba
    else:
        return OK
    lo_edge = base + margin
    hi_edge = base + w - margin
    need = False
    if bb != NO_BID and (bb < lo_edge or bb >= hi_edge):
        need = True
    if ba != NO_ASK and (ba < lo_edge or ba >= hi_edge):
        need = True
    if not need:
        return OK
    return recenter(st, lb, la, hkb, hvb, hka, hva, center)
