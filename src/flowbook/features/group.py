"""`EngineGroup`: the feature engines of many instruments, advanced by one kernel call per batch.

A live batch holds a few events of many symbols.  Run through one :class:`FeatureEngine` call per
symbol, most of the cost is the call itself (argument checks and unboxing of 19 arrays), not the
book work.  The group keeps every engine's arrays in two typed lists and :func:`run_runs` walks the
batch's per-symbol runs in compiled code, calling the same kernel (:func:`flowbook.features.nb.run`)
on each, with one shared output buffer: the rows of run ``r`` are ``[ends[r-1], ends[r])``.  The rows
are the rows each engine would write on its own (``tests/test_engine_group.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import List

from ..book import L2Book, window_for
from ..events import EVENT_DTYPE, Instrument
from . import nb as k
from .engine import FeatureConfig, FeatureEngine

__all__ = ["EngineGroup", "run_runs"]

_BOOK_T = types.UniTuple(types.int64[::1], 7)
_STATE_T = types.Tuple((types.float64[::1], types.float64[::1], types.int64[::1], types.float64[:, ::1]))


# The typed lists are made and changed only through these compiled (and cached) functions: a typed list's own
# methods, called from Python, compile on first use in every process (a quarter of a second, which a live
# feed would pay the first time a book grows).
@njit(cache=True)
def _new_lists():
    return List.empty_list(_BOOK_T), List.empty_list(_STATE_T)


@njit(cache=True)
def _append(books, states, book, state):
    books.append(book)
    states.append(state)


@njit(cache=True)
def _set_book(books, i, book):
    books[i] = book


@njit(cache=True)
def run_runs(ev, lo, hi, eng, r, i, rows, books, states, out_f, out_i, ends, bpx, bq, apx, aq):
    """Advance run ``r`` from event ``i``, then runs ``r + 1 ..``: run ``r`` is ``ev[lo[r]:hi[r]]`` of
    engine ``eng[r]``.  Rows go to ``out_f``/``out_i`` from row ``rows`` on; ``ends[r]`` is the row count
    after run ``r``.  Returns ``(status, r, i, rows)``: ``ST_DONE``, or the engine kernel's
    ``ST_NEED_GROW`` (grow engine ``eng[r]``'s book) / ``ST_NEED_OUT`` (grow the output) with where to
    resume."""
    n = lo.shape[0]
    while r < n:
        a = lo[r]
        st, lb, la, hkb, hvb, hka, hva = books[eng[r]]
        p, fs, fi, ring = states[eng[r]]
        fi[k.S_ROWS] = rows
        status, j = k.run(ev[a:hi[r]], i - a, st, lb, la, hkb, hvb, hka, hva, p, fs, fi, ring, out_f, out_i,
                          bpx, bq, apx, aq)
        rows = fi[k.S_ROWS]
        fi[k.S_ROWS] = 0
        if status != k.ST_DONE:
            return status, r, a + j, rows
        ends[r] = rows
        r += 1
        if r < n:
            i = lo[r]
    return k.ST_DONE, r, i, rows


class EngineGroup:
    """Feature engines of several instruments sharing one configuration, run batch by batch.

    :meth:`add` makes an engine (an ordinary :class:`FeatureEngine`, whose ``book``, ``fi`` and ``fs``
    stay readable); :meth:`process` runs a batch of events given as per-engine runs.
    """

    def __init__(self, config: FeatureConfig | None = None, out_rows: int = 4096) -> None:
        self.config = config or FeatureConfig()
        self.engines: list[FeatureEngine] = []
        self._books, self._states = _new_lists()
        self.out_f = np.empty((max(out_rows, 1), k.NCOLS))
        self.out_i = np.empty((max(out_rows, 1), k.NICOLS), np.int64)
        self._scratch = tuple(np.zeros(self.config.depth_levels, np.int64) for _ in range(4))

    def __len__(self) -> int:
        return len(self.engines)

    def add(self, instrument: Instrument, first_events: np.ndarray, window: int | None = None,
            hash_capacity: int = 1 << 10) -> int:
        """A new engine for ``instrument``, its book ``window`` ticks wide (default: sized from its first
        events, as :class:`FeatureEngine` does; see :class:`~flowbook.book.L2Book`); returns its index."""
        eng = FeatureEngine(instrument, self.config, out_rows=1)  # rows go to the group's buffer
        eng.book = L2Book(window=window or window_for(first_events), hash_capacity=hash_capacity)
        self.engines.append(eng)
        _append(self._books, self._states, eng.book.arrays, (eng.p, eng.fs, eng.fi, eng.ring))
        if len(self.engines) == 1:  # load _set_book now, not when a book first grows mid-stream
            _set_book(self._books, 0, eng.book.arrays)
        return len(self.engines) - 1

    def process(self, ev: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                eng: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run ``ev[lo[r]:hi[r]]`` through engine ``eng[r]`` for each run ``r`` (int64 arrays; an engine's
        runs in time order).  Returns ``(floats, ints, ends)``: the rows of run ``r`` are
        ``[ends[r-1], ends[r])`` of the two row arrays, which stay valid until the next call."""
        if ev.dtype != EVENT_DTYPE:
            raise TypeError("events must have flowbook's EVENT_DTYPE")
        ends = np.zeros(len(lo), np.int64)
        r, i, rows = 0, int(lo[0]) if len(lo) else 0, 0
        while True:
            status, r, i, rows = run_runs(ev, lo, hi, eng, r, i, rows, self._books, self._states,
                                          self.out_f, self.out_i, ends, *self._scratch)
            if status == k.ST_DONE:
                return self.out_f[:rows], self.out_i[:rows], ends
            if status == k.ST_NEED_GROW:
                e = int(eng[r])
                book = self.engines[e].book
                assert book is not None
                book.grow()
                _set_book(self._books, e, book.arrays)
            else:  # ST_NEED_OUT: double the shared buffer, keeping the rows of this batch
                f = np.empty((2 * len(self.out_f), k.NCOLS))
                ii = np.empty((2 * len(self.out_i), k.NICOLS), np.int64)
                f[:rows], ii[:rows] = self.out_f[:rows], self.out_i[:rows]
                self.out_f, self.out_i = f, ii
