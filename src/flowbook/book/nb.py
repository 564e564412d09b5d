"""Compiled L2 book kernels: a dense tick ladder around the touch plus a hash for far levels.

Layout (one book = one instrument)
----------------------------------
- ``st``: int64 state vector, indexed by the ``ST_*`` constants below.
- ``lb``/``la``: int64 quantity (lots) per tick for bids/asks over the window
  ``[st[ST_BASE], st[ST_BASE] + W)``; 0 means no level.
- ``hkb``/``hvb`` and ``hka``/``hva``: open-addressing hash tables (tick -> lots) holding every
  level outside the window.  Capacity is a power of two; ``EMPTY``/``TOMB`` mark free slots.

Each side also has an occupancy bitmap of its ladder (see :func:`st_size`), so that the next level
away from the touch is found 64 ticks per step instead of one.

Level updates are O(1).  The window follows the market: when the touch comes within ``W/8`` of an
edge, or an update lands on the inside of the window's far edge, :func:`recenter` moves levels
between ladder and hash.  Functions that may need more hash room check first and return
``NEED_GROW`` *without* changing anything, so the caller can grow the tables and retry.

Reference twin: :class:`flowbook.book.reference.ReferenceBook` (plain Python dicts); the hypothesis
tests in ``tests/test_book_model.py`` drive both with the same random operations.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .hashnb import EMPTY, NO_ASK, NO_BID, TOMB, hash_extreme, hash_put, hash_room

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
ST_SIZE = 16  # fixed slots; the per-block sums follow (see st_size)

# Per-block sums of the ladders, after the fixed slots: for block ``b`` (ladder ticks
# ``[BLK b, BLK b + BLK)``), ``st[ST_SIZE + k * nblk + b]`` holds, for k = 0..3: bid lots, bid lots * i,
# ask lots, ask lots * i (``i`` the ladder index).  Depth over a price band then costs a few blocks
# plus at most one partial block per edge instead of one read per tick.
BLK_SHIFT = 4
BLK = 1 << BLK_SHIFT
# After the block sums, the occupancy bitmaps: bit ``i & 63`` of word ``i >> 6`` is set when ladder index
# ``i`` holds a level; the bid words first, then the ask words (:func:`occ_off`).

NO_BASE = -(2**62)
OK = 0
NEED_GROW = 2


@njit(cache=True)
def n_blocks(window: int) -> int:
    """Blocks of ``BLK`` ticks (block sums) of a ladder ``window`` ticks wide."""
    return max(1, (window + BLK - 1) >> BLK_SHIFT)


@njit(cache=True)
def n_words(window: int) -> int:
    """64-bit words of an occupancy bitmap of a ladder ``window`` ticks wide."""
    return max(1, (window + 63) >> 6)


def st_size(window: int) -> int:
    """Length of the state vector of a book whose ladders are ``window`` ticks wide."""
    return ST_SIZE + 4 * n_blocks(window) + 2 * n_words(window)


@intrinsic
def cttz(typingctx, x):
    """Trailing zero bits of an int64 (64 for 0): ``llvm.cttz.i64``."""
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.int64(types.int64), codegen


@intrinsic
def ctlz(typingctx, x):
    """Leading zero bits of an int64 (64 for 0): ``llvm.ctlz.i64``."""
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.int64(types.int64), codegen


@njit(cache=True, inline="always")
def occ_off(w, k):
    """Index in ``st`` of the first bitmap word of side ``k`` (0 bids, 1 asks) for ladder width ``w``."""
    return ST_SIZE + 4 * n_blocks(w) + k * n_words(w)


@njit(cache=True, inline="always")
def _occ_set(st, w, k, i, q):
    """Set or clear the occupancy bit of ladder index ``i`` of side ``k`` as ``q != 0``."""
    o = occ_off(w, k) + (i >> 6)
    m = np.int64(1) << (i & 63)
    st[o] = (st[o] & ~m) | (m & -np.int64(q != 0))


@njit(cache=True, inline="always")
def occ_below(st, w, k, i):
    """Highest occupied ladder index ``<= i`` of side ``k``, or -1 (``i`` < ``w``)."""
    if i < 0:
        return -1
    o = occ_off(w, k)
    wi = i >> 6
    wd = st[o + wi] & ~(np.int64(-2) << (i & 63))
    while wd == 0:
        wi -= 1
        if wi < 0:
            return -1
        wd = st[o + wi]
    return (wi << 6) + 63 - ctlz(wd)


@njit(cache=True, inline="always")
def occ_above(st, w, k, i):
    """Lowest occupied ladder index ``>= i`` of side ``k``, or ``w`` (``i`` >= 0)."""
    if i >= w:
        return w
    o = occ_off(w, k)
    nw = n_words(w)
    wi = i >> 6
    wd = st[o + wi] & (np.int64(-1) << (i & 63))
    while wd == 0:
        wi += 1
        if wi >= nw:
            return w
        wd = st[o + wi]
    return (wi << 6) + cttz(wd)


@njit(cache=True, inline="always")
def _blk_add(st, w, k, i, d):
    """Add ``d`` lots at ladder index ``i`` to the block sums ``k`` (0 bids, 1 asks)."""
    nblk = n_blocks(w)
    b = ST_SIZE + 2 * k * nblk + (i >> BLK_SHIFT)
    st[b] += d
    st[b + nblk] += d * i


@njit(cache=True)
def _blk_rebuild(st, lb, la):
    w = lb.shape[0]
    st[ST_SIZE:] = 0
    for i in range(w):
        if lb[i] != 0:
            _blk_add(st, w, 0, i, lb[i])
            _occ_set(st, w, 0, i, 1)
        if la[i] != 0:
            _blk_add(st, w, 1, i, la[i])
            _occ_set(st, w, 1, i, 1)


@njit(cache=True)
def book_clear(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
               hka: np.ndarray, hva: np.ndarray) -> None:
    """Drop every level."""
    if st[ST_NBID] > 0 or st[ST_NASK] > 0:
        lb[:] = 0
        la[:] = 0
        st[ST_SIZE:] = 0
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
    i = occ_below(st, w, 0, i)
    if i >= 0:
        return base + i
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
    i = occ_above(st, w, 1, i)
    if i < w:
        return base + i
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
    # 2. levels leaving the window go to the hash
    for i in range(w):
        t = old + i
        if t < new or t >= new + w:
            if lb[i] != 0:
                st[ST_HB_LIVE] += hash_put(hkb, hvb, st, ST_HB_USED, t, lb[i])
                lb[i] = 0
            if la[i] != 0:
                st[ST_HA_LIVE] += hash_put(hka, hva, st, ST_HA_USED, t, la[i])
                la[i] = 0
    # 3. the rest shift in place (in the direction that never overwrites an unread tick)
    d = new - old
    if d > 0:
        for i in range(w - d):
            lb[i] = lb[i + d]
            la[i] = la[i + d]
        lb[max(w - d, 0):] = 0
        la[max(w - d, 0):] = 0
    else:
        for i in range(w - 1, -d - 1, -1):
            lb[i] = lb[i + d]
            la[i] = la[i + d]
        lb[:min(-d, w)] = 0
        la[:min(-d, w)] = 0
    st[ST_BASE] = new
    # 4. levels from the hash that fall inside the new window move to the ladder
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
    _blk_rebuild(st, lb, la)
    st[ST_RECENTERS] += 1
    return OK


@njit(cache=True)
def apply_levels(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
                 hka: np.ndarray, hva: np.ndarray, ev: np.ndarray, i: int) -> tuple[int, int]:
    """Apply the level sets of one message: ``ev[i:j]``, all ``BOOK_SET`` with the clocks of ``ev[i]``.

    Stops after an event flagged ``END_OF_MESSAGE`` or ``SNAPSHOT_END``, or before an event of another
    kind or time.  Returns ``(OK, j)``, or ``(NEED_GROW, k)`` with ``ev[i:k]`` applied (level sets are
    idempotent, so applying ``ev[k:]`` again after the grow is safe).  Events with side 0 carry only
    flags.

    This is the hot loop of every replay: the common update (a tick inside the window that does not
    remove the touch) is written out here rather than called, because a call per update costs more
    than the update (numba reference-counts the arrays around each call); every other case goes
    to :func:`set_level`.
    """
    n = ev.shape[0]
    w = lb.shape[0]
    nblk = n_blocks(w)
    ob = occ_off(w, 0)
    nw = n_words(w)
    ts_l = ev[i]["ts_local"]
    ts_e = ev[i]["ts_exchange"]
    j = i
    while j < n:
        e = ev[j]
        if e["kind"] != 1 or e["ts_local"] != ts_l or e["ts_exchange"] != ts_e:
            break
        side = e["side"]
        t = e["price"]
        q = e["qty"]
        base = st[ST_BASE]
        k = t - base
        bid = side > 0
        best = ST_BEST_BID if bid else ST_BEST_ASK
        if side == 0:
            pass
        # branch-free on the data (side, delete or not): bitwise tests and selects instead of ifs
        elif (base != NO_BASE) & (k >= 0) & (k < w) & ((q != 0) | (t != st[best])):
            lad = lb if bid else la
            old = lad[k]
            lad[k] = q
            st[ST_NBID if bid else ST_NASK] += np.int64(q != 0) - np.int64(old != 0)
            if (q != 0) & ((t - st[best]) * side > 0):
                st[best] = t
            b = ST_SIZE + (k >> BLK_SHIFT) + (0 if bid else 2 * nblk)
            st[b] += q - old
            st[b + nblk] += (q - old) * k
            o = ob + (k >> 6) + (0 if bid else nw)
            m = np.int64(1) << (k & 63)
            st[o] = (st[o] & ~m) | (m & -np.int64(q != 0))
        elif set_level(st, lb, la, hkb, hvb, hka, hva, side, t, q) != OK:
            return NEED_GROW, j
        j += 1
        if e["flags"] & 12:  # END_OF_MESSAGE | SNAPSHOT_END
            break
    return OK, j


@njit(cache=True)
def apply_book_sets(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
                    hka: np.ndarray, hva: np.ndarray, ev: np.ndarray, i: int) -> tuple[int, int]:
    """Apply every ``BOOK_SET`` message of ``ev[i:]`` (other kinds are skipped), message by message with
    :func:`apply_levels`.  Returns ``(OK, n)``, or ``(NEED_GROW, k)`` with ``ev[i:k]`` applied."""
    n = ev.shape[0]
    while i < n:
        if ev[i]["kind"] != 1:
            i += 1
            continue
        status, i = apply_levels(st, lb, la, hkb, hvb, hka, hva, ev, i)
        if status == NEED_GROW:
            return NEED_GROW, i
    return OK, i


@njit(cache=True)
def set_level(st: np.ndarray, lb: np.ndarray, la: np.ndarray, hkb: np.ndarray, hvb: np.ndarray,
              hka: np.ndarray, hva: np.ndarray, side: int, t: int, q: int) -> int:
    """Set the level at tick ``t`` of ``side`` (+1 bid, -1 ask) to ``q`` lots; 0 deletes.

    Deleting a level that is not there is a no-op.  Returns ``OK`` or ``NEED_GROW`` (nothing changed).
    For whole messages use :func:`apply_levels`, which is several times faster per update.
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
            _blk_add(st, w, 0, i, q - old)
            _occ_set(st, w, 0, i, q)
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
            _blk_add(st, w, 1, i, q - old)
            _occ_set(st, w, 1, i, q)
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


@njit(cache=True, inline="always")
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
