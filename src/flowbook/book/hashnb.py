"""Open-addressing hash tables (tick -> lots) for the book's levels outside the ladder window.

Keys are int64 ticks; ``EMPTY`` marks a never-used slot and ``TOMB`` a deleted one.  Capacity is a power
of two; callers check :func:`hash_room` before inserting and rehash into a bigger table when needed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NO_BID = -(2**62)  # sentinels shared with the book: no level on that side
NO_ASK = 2**62
EMPTY = -(2**63)  # never-used slot; every sentinel key is <= TOMB, every real tick > TOMB
TOMB = -(2**63) + 1


_HASH_MUL = np.uint64(11400714819323198485)


@njit(cache=True, inline="always")
def _slot0(key: int, mask: int) -> int:
    return int((np.uint64(key) * _HASH_MUL) >> np.uint64(20)) & mask


@njit(cache=True)
def hash_get(keys: np.ndarray, vals: np.ndarray, key: int) -> int:
    """Lots at ``key`` or 0."""
    mask = keys.shape[0] - 1
    i = _slot0(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return vals[i]
        if k == EMPTY:
            return 0
        i = (i + 1) & mask


@njit(cache=True)
def hash_room(keys: np.ndarray, used: int, extra: int) -> bool:
    """Whether ``extra`` more inserts keep the load factor at or under 3/4."""
    return (used + extra) * 4 <= keys.shape[0] * 3


@njit(cache=True)
def hash_put(keys: np.ndarray, vals: np.ndarray, st: np.ndarray, used_slot: int, key: int, qty: int) -> int:
    """Set ``key`` to ``qty`` (0 deletes).  Returns the change in live levels (-1, 0, +1).

    The caller checks :func:`hash_room` before an insert.
    """
    mask = keys.shape[0] - 1
    i = _slot0(key, mask)
    free = -1
    while True:
        k = keys[i]
        if k == key:
            if qty == 0:
                keys[i] = TOMB
                vals[i] = 0
                return -1
            vals[i] = qty
            return 0
        if k == EMPTY:
            break
        if k == TOMB and free < 0:
            free = i
        i = (i + 1) & mask
    if qty == 0:
        return 0
    if free < 0:
        free = i
        st[used_slot] += 1
    keys[free] = key
    vals[free] = qty
    return 1


@njit(cache=True)
def hash_extreme(keys: np.ndarray, below: int, above: int, want_max: bool) -> int:
    """Max (or min) live key strictly between ``above`` and ``below``; sentinel when none."""
    best = NO_BID if want_max else NO_ASK
    for i in range(keys.shape[0]):
        k = keys[i]
        if k <= TOMB:
            continue
        if k < below and k > above:
            if want_max:
                if k > best:
                    best = k
            elif k < best:
                best = k
    return best


@njit(cache=True)
def hash_rehash(ok: np.ndarray, ov: np.ndarray, nk: np.ndarray, nv: np.ndarray) -> int:
    """Copy live entries of one table into a fresh (all ``EMPTY``) one; returns live count."""
    mask = nk.shape[0] - 1
    n = 0
    for j in range(ok.shape[0]):
        k = ok[j]
        if k <= TOMB:
            continue
        i = _slot0(k, mask)
        while nk[i] != EMPTY:
            i = (i + 1) & mask
        nk[i] = k
        nv[i] = ov[j]
        n += 1
    return n
