"""Compiled per-batch bookkeeping of :class:`~flowbook.live.runner.LiveRunner`.

A live batch holds a few events of many symbols, and NumPy's per-call cost on arrays that small is most
of the cost of splitting, timing and filing them; these kernels do each step for the whole batch in one
call.  Symbols are the runner's indices; latency rings are :class:`~flowbook.live.values.LatencyBook`
arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .values import ring_add

_EOM = 8
_SNAP = 1

NEED_SYMBOLS = -1  # split_batch: some symbol id is not in the index yet


@njit(cache=True)
def split_batch(ev, out, sid_index, engine_of, lat_buf, lat_count, starts, ends, sidx, engine):
    """Copy ``ev`` into ``out`` grouped by symbol (stable: each symbol's events keep their order) and describe
    the runs: run ``r`` is ``out[starts[r]:ends[r]]`` of runner symbol ``sidx[r]`` (-1: not ours) and engine
    ``engine[r]`` (-1: none yet).  Adds exchange -> receive latencies of depth messages and trades.

    Returns ``(runs, flags)``: flags bit 1 a snapshot row, bit 2 a run of ours without an engine; or
    ``(NEED_SYMBOLS, 0)`` without side effects when a symbol id is missing from ``sid_index`` (-2 or out of
    range): the caller resolves it and calls again."""
    n = ev.shape[0]
    m = sid_index.shape[0]
    for j in range(n):
        sid = ev[j]["symbol"]
        if sid >= m or sid_index[sid] == -2:
            return NEED_SYMBOLS, 0
    # stable grouping by symbol, runs in order of first appearance (a batch holds few symbols)
    taken = np.zeros(n, np.bool_)
    runs = 0
    flags = 0
    k = 0
    first = 0
    while k < n:
        while taken[first]:  # the first event not yet copied opens the next run
            first += 1
        sid = ev[first]["symbol"]
        starts[runs] = k
        for j in range(first, n):
            if not taken[j] and ev[j]["symbol"] == sid:
                out[k] = ev[j]
                taken[j] = True
                k += 1
        ends[runs] = k
        s = sid_index[sid]
        sidx[runs] = s
        engine[runs] = engine_of[s] if s >= 0 else -1
        if s >= 0 and engine[runs] < 0:
            flags |= 2
        for j in range(starts[runs], k):
            e = out[j]
            kind = e["kind"]
            if kind == 1 and e["flags"] & _SNAP:
                flags |= 1
            elif s >= 0 and ((kind == 1 and e["flags"] & _EOM) or kind == 3):
                ring_add(lat_buf, lat_count, s, e["ts_local"] - e["ts_exchange"])
        runs += 1
    return runs, flags


@njit(cache=True)
def note_rows(f, ii, row_end, sidx, now, lat_buf, lat_count, nrows, latest_f, latest_i):
    """File a batch's feature rows per symbol: receive -> features latency (``now`` minus the row's receive
    time), the row count, and the symbol's latest row (there is one when its count is not 0)."""
    a = 0
    for r in range(row_end.shape[0]):
        b = row_end[r]
        s = sidx[r]
        if b > a:
            for j in range(a, b):
                ring_add(lat_buf, lat_count, s, now - ii[j, 0])
            nrows[s] += b - a
            latest_f[s, :] = f[b - 1, :]
            latest_i[s, :] = ii[b - 1, :]
        a = b
