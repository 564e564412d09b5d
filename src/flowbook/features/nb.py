"""Compiled core-feature kernel: events -> book -> feature rows, for one instrument.

:func:`run` applies events to the book arrays (:mod:`flowbook.book.nb`) and writes feature rows,
either one per applied depth message (``MODE_EVENT``) or one per clock tick (``MODE_INTERVAL``,
using only events with time <= the tick).  It stops and returns a status when it needs the caller
to grow the book's hash tables or to drain the output buffer, and resumes where it stopped.

Reference twin: :mod:`flowbook.features.reference` computes the same columns in plain Python; the
tests compare both on real captures and random streams.  Formulas: ``docs/features.md``.
"""

from __future__ import annotations

import math

from numba import njit

from ..book import nb as bk
from ..book import readnb as rd

# ---- columns of the float output ------------------------------------------------------------
C_BEST_BID = 0
C_BEST_BID_QTY = 1
C_BEST_ASK = 2
C_BEST_ASK_QTY = 3
C_MID = 4
C_SPREAD = 5
C_SPREAD_BPS = 6
C_SPREAD_PCT = 7
C_MICROPRICE = 8
C_IMB1 = 9
C_IMBN = 10
C_IMB_DW = 11
C_BID_DEPTH = 12
C_ASK_DEPTH = 13
C_BID_NOTIONAL = 14
C_ASK_NOTIONAL = 15
C_TOTAL_DEPTH = 16
C_DEPTH_RATIO = 17
C_DEPTH_RATIO_CAP = 18
C_LARGE = 19
C_BID_DEPTH_BPS = 20
C_ASK_DEPTH_BPS = 21
C_BID_NOTIONAL_BPS = 22
C_ASK_NOTIONAL_BPS = 23
C_OFI = 24
C_MLOFI = 25  # C_MLOFI .. C_MLOFI + MLOFI_LEVELS - 1
MLOFI_LEVELS = 5
C_CVD = 30
C_DELTA_K = 31
C_BUY_VOL = 32
C_SELL_VOL = 33
C_TRADES = 34
C_VWAP = 35
C_VWAP_K = 36
C_LAST_PRICE = 37
NCOLS = 38

# ---- integer output columns -----------------------------------------------------------------
I_TS = 0  # ts_local of the message (event mode) or the sample time (interval mode)
I_TS_EXCHANGE = 1
I_UPDATE_ID = 2
NICOLS = 3

# ---- parameters (float64 vector) ------------------------------------------------------------
P_MODE = 0
P_INTERVAL = 1
P_CLOCK = 2  # 0 local receive time, 1 exchange time
P_NLEVELS = 3
P_BAND_BPS = 4
P_DW_BPS = 5
P_LARGE_PCT = 6
P_K_TRADES = 7
P_PX_NUM = 8  # price = ticks * num / den
P_PX_DEN = 9
P_Q_NUM = 10  # qty = lots * num / den
P_Q_DEN = 11
P_MULT = 12  # contract multiplier
P_INVERSE = 13  # 1: notional = qty * multiplier (coin-margined)
P_RATIO_CAP = 14
NPARAMS = 16

MODE_EVENT = 0
MODE_INTERVAL = 1

# ---- integer state --------------------------------------------------------------------------
S_SYNCED = 0
S_NEXT_T = 1
S_ROWS = 2
S_HAS_PREV = 3
S_CROSSED = 4
S_FIRST_CROSSED = 5
S_LAST_TS_EX = 6
S_LAST_ID = 7
S_TRADES_INT = 8
S_RING_POS = 9
S_RING_N = 10
S_BOOK_MSGS = 11
S_STARTED = 12
S_LAST_CLOCK = 13
S_NB = 14  # levels in the scratch arrays (bids, asks)
S_NA = 15
NSTATE = 16

# ---- float state ----------------------------------------------------------------------------
F_PREV = 0  # 4 * MLOFI_LEVELS: bid px, bid qty, ask px, ask qty per level
F_OFI = 20
F_MLOFI = 21  # .. 25
F_CVD = 26
F_BUY = 27
F_SELL = 28
F_VWAP_NUM = 29
F_VWAP_DEN = 30
F_LAST_PX = 31
F_RING = 32  # .. 34: running sums of the ring's rows (signed qty, qty*price, qty)
F_DW_C = 35  # the decay rate c of the power table below (0: none yet)
F_DW_POW = 36  # .. + DW_POW - 1: exp(-c)**g for g = 0 .. DW_POW - 1
DW_POW = 128
NFSTATE = F_DW_POW + DW_POW

ST_OK = 0
ST_NEED_GROW = 2
ST_NEED_OUT = 3
ST_DONE = 1

_NOBID = -1e300
_NOASK = 1e300


@njit(cache=True, inline="always")
def _ofi_side(p0: float, q0: float, p1: float, q1: float, bid: bool) -> float:
    """One side's CKS contribution for the state change (p0,q0) -> (p1,q1)."""
    if bid:
        e = 0.0
        if p1 >= p0:
            e += q1
        if p1 <= p0:
            e -= q0
        return e
    e = 0.0
    if p1 <= p0:
        e -= q1
    if p1 >= p0:
        e += q0
    return e


@njit(cache=True, inline="always")
def _decay_pow(fs, c):
    """``fs[F_DW_POW + g] = exp(-c)**g`` for g < DW_POW, rebuilt only when ``c`` (the mid) changes."""
    if fs[F_DW_C] == c:
        return
    fs[F_DW_C] = c
    r = math.exp(-c)
    t = F_DW_POW
    fs[t] = 1.0
    for g in range(1, 16):
        fs[t + g] = fs[t + g - 1] * r
    r16 = fs[t + 15] * r
    for h in range(16, DW_POW, 16):
        fs[t + h] = fs[t + h - 16] * r16
        for g in range(1, 16):
            fs[t + h + g] = fs[t + h] * fs[t + g]


@njit(cache=True, inline="always")
def _decay_sum(fs, px, q, n, midt, c, side):
    """Σ q[i] · exp(-c · |px[i] - midt|) over the first ``n`` levels of one side (best first).

    Levels are on integer ticks moving away from the mid, so level ``i`` weighs the first level's weight
    times ``exp(-c)**g`` for its gap ``g`` in ticks to the first level, read from the power table
    (:func:`_decay_pow`): one ``exp`` per side and no branch on the gaps.  A crossed side (a level beyond
    the mid) takes the direct formula.
    """
    if n == 0:
        return 0.0
    if (px[0] - midt) * side > 0:
        acc = 0.0
        for i in range(n):
            acc += q[i] * math.exp(-c * abs(px[i] - midt))
        return acc
    p0 = px[0]
    w0 = math.exp(-c * abs(p0 - midt))
    acc = 0.0
    if (p0 - px[n - 1]) * side < DW_POW:  # the common case: every gap is in the table
        for i in range(n):
            acc += q[i] * fs[F_DW_POW + (p0 - px[i]) * side]
        return acc * w0
    for i in range(n):
        g = (p0 - px[i]) * side
        acc += q[i] * (w0 * fs[F_DW_POW + g] if g < DW_POW else math.exp(-c * abs(px[i] - midt)))
    return acc


@njit(cache=True, inline="always")
def _book_features(p, fs, fi, out_f, row, arrays, bpx, bq, apx, aq, fresh):
    st, lb, la, hkb, hvb, hka, hva = arrays
    n = int(p[P_NLEVELS])
    if fresh:  # the scratch arrays already hold the top N levels of this state
        nb_ = fi[S_NB]
        na_ = fi[S_NA]
    else:
        nb_ = rd.top_levels_fast(st, lb, la, hkb, hvb, hka, hva, 1, n, bpx, bq)
        na_ = rd.top_levels_fast(st, lb, la, hkb, hvb, hka, hva, -1, n, apx, aq)
    pxs = p[P_PX_NUM] / p[P_PX_DEN]
    qs = p[P_Q_NUM] / p[P_Q_DEN]
    mult = p[P_MULT]
    inverse = p[P_INVERSE] != 0.0
    nan = math.nan
    o = out_f[row]
    # --- best levels, mid, spread, microprice
    bb = bpx[0] * p[P_PX_NUM] / p[P_PX_DEN] if nb_ > 0 else nan
    ba = apx[0] * p[P_PX_NUM] / p[P_PX_DEN] if na_ > 0 else nan
    qb = bq[0] * p[P_Q_NUM] / p[P_Q_DEN] if nb_ > 0 else nan
    qa = aq[0] * p[P_Q_NUM] / p[P_Q_DEN] if na_ > 0 else nan
    o[C_BEST_BID] = bb
    o[C_BEST_BID_QTY] = qb
    o[C_BEST_ASK] = ba
    o[C_BEST_ASK_QTY] = qa
    if nb_ > 0 and na_ > 0:
        mid = (bpx[0] + apx[0]) * 0.5 * pxs
        o[C_MID] = mid
        o[C_SPREAD] = (apx[0] - bpx[0]) * p[P_PX_NUM] / p[P_PX_DEN]
        o[C_SPREAD_BPS] = (apx[0] - bpx[0]) / ((bpx[0] + apx[0]) * 0.5) * 1e4
        o[C_SPREAD_PCT] = (apx[0] - bpx[0]) / ((bpx[0] + apx[0]) * 0.5) * 1e2
        # the weighted mid is undefined on a crossed book (reference §A.3)
        o[C_MICROPRICE] = (qb * ba + qa * bb) / (qb + qa) if bpx[0] <= apx[0] else nan
    else:
        mid = nan
        o[C_MID] = nan
        o[C_SPREAD] = nan
        o[C_SPREAD_BPS] = nan
        o[C_SPREAD_PCT] = nan
        o[C_MICROPRICE] = nan
    # --- imbalance, depth, notional within N levels
    b1 = float(bq[0]) if nb_ > 0 else 0.0
    a1 = float(aq[0]) if na_ > 0 else 0.0
    o[C_IMB1] = (b1 - a1) / (b1 + a1) if b1 + a1 > 0 else nan
    bsum = 0.0
    bnot = 0.0
    for i in range(nb_):
        bsum += bq[i]
        bnot += float(bq[i]) * float(bpx[i])
    asum = 0.0
    anot = 0.0
    for i in range(na_):
        asum += aq[i]
        anot += float(aq[i]) * float(apx[i])
    o[C_IMBN] = (bsum - asum) / (bsum + asum) if bsum + asum > 0 else nan
    o[C_BID_DEPTH] = bsum * qs
    o[C_ASK_DEPTH] = asum * qs
    if inverse:
        o[C_BID_NOTIONAL] = bsum * qs * mult
        o[C_ASK_NOTIONAL] = asum * qs * mult
    else:
        o[C_BID_NOTIONAL] = bnot * pxs * qs * mult
        o[C_ASK_NOTIONAL] = anot * pxs * qs * mult
    o[C_TOTAL_DEPTH] = (bsum + asum) * qs
    o[C_DEPTH_RATIO] = bsum / asum if asum > 0 else nan
    cap = p[P_RATIO_CAP]
    if asum > 0:
        o[C_DEPTH_RATIO_CAP] = min(bsum / asum, cap)
    else:
        o[C_DEPTH_RATIO_CAP] = cap if bsum > 0 else nan
    # --- large-order presence: share of visible volume in levels holding >= pct of it
    vis = bsum + asum
    if vis > 0:
        thr = p[P_LARGE_PCT] * vis
        big = 0.0
        for i in range(nb_):  # selects, not branches: which levels are large is data
            big += bq[i] if bq[i] >= thr else 0
        for i in range(na_):
            big += aq[i] if aq[i] >= thr else 0
        o[C_LARGE] = big / vis
    else:
        o[C_LARGE] = nan
    # --- distance-weighted imbalance and depth within a band around the mid
    if nb_ > 0 and na_ > 0:
        midt = (bpx[0] + apx[0]) * 0.5
        lam = p[P_DW_BPS]
        c = 1e4 / (midt * lam)  # weight exp(-c * distance in ticks)
        _decay_pow(fs, c)
        wb = _decay_sum(fs, bpx, bq, nb_, midt, c, 1)
        wa = _decay_sum(fs, apx, aq, na_, midt, c, -1)
        o[C_IMB_DW] = (wb - wa) / (wb + wa) if wb + wa > 0 else nan
        lo, hi = rd.band_limits(bpx[0], apx[0], p[P_BAND_BPS])
        bl, bn = rd.band_depth_fast(st, lb, la, hkb, hvb, hka, hva, 1, lo)
        al, an = rd.band_depth_fast(st, lb, la, hkb, hvb, hka, hva, -1, hi)
        o[C_BID_DEPTH_BPS] = bl * qs
        o[C_ASK_DEPTH_BPS] = al * qs
        if inverse:
            o[C_BID_NOTIONAL_BPS] = bl * qs * mult
            o[C_ASK_NOTIONAL_BPS] = al * qs * mult
        else:
            o[C_BID_NOTIONAL_BPS] = bn * pxs * qs * mult
            o[C_ASK_NOTIONAL_BPS] = an * pxs * qs * mult
    else:
        o[C_IMB_DW] = nan
        o[C_BID_DEPTH_BPS] = nan
        o[C_ASK_DEPTH_BPS] = nan
        o[C_BID_NOTIONAL_BPS] = nan
        o[C_ASK_NOTIONAL_BPS] = nan
    return mid


@njit(cache=True, inline="always")
def _ofi_update(fs, fi, arrays, bpx, bq, apx, aq, levels):
    """Accumulate event-level OFI and MLOFI for the state change since the previous message.

    ``levels`` is the number of levels to read into the scratch arrays (MLOFI_LEVELS, or the N of
    the row about to be written so the row can reuse them).
    """
    st, lb, la, hkb, hvb, hka, hva = arrays
    m = MLOFI_LEVELS
    nb_ = rd.top_levels_fast(st, lb, la, hkb, hvb, hka, hva, 1, levels, bpx, bq)
    na_ = rd.top_levels_fast(st, lb, la, hkb, hvb, hka, hva, -1, levels, apx, aq)
    fi[S_NB] = nb_
    fi[S_NA] = na_
    has_prev = fi[S_HAS_PREV] != 0
    for lvl in range(m):
        pb1 = float(bpx[lvl]) if lvl < nb_ else _NOBID
        qb1 = float(bq[lvl]) if lvl < nb_ else 0.0
        pa1 = float(apx[lvl]) if lvl < na_ else _NOASK
        qa1 = float(aq[lvl]) if lvl < na_ else 0.0
        k = F_PREV + 4 * lvl
        if has_prev:
            e = _ofi_side(fs[k], fs[k + 1], pb1, qb1, True) + _ofi_side(fs[k + 2], fs[k + 3], pa1, qa1, False)
            fs[F_MLOFI + lvl] += e
            if lvl == 0:
                fs[F_OFI] += e
        fs[k] = pb1
        fs[k + 1] = qb1
        fs[k + 2] = pa1
        fs[k + 3] = qa1
    fi[S_HAS_PREV] = 1


@njit(cache=True, inline="always")
def _ring_push(fs, fi, ring, d, qp, q):
    """Add one trade to the ring of the last K trades and keep its running sums.

    The sums are updated by add/subtract and recomputed exactly each time the ring wraps, so rounding
    cannot accumulate (the values are integers in ticks and lots, exact in float64 up to 2**53).
    """
    k_trades = ring.shape[1]
    pos = fi[S_RING_POS]
    full = fi[S_RING_N] == k_trades
    if full:
        fs[F_RING] -= ring[0, pos]
        fs[F_RING + 1] -= ring[1, pos]
        fs[F_RING + 2] -= ring[2, pos]
    ring[0, pos] = d
    ring[1, pos] = qp
    ring[2, pos] = q
    fs[F_RING] += d
    fs[F_RING + 1] += qp
    fs[F_RING + 2] += q
    pos += 1
    if pos == k_trades:
        pos = 0
        for r in range(3):
            acc = 0.0
            for j in range(k_trades):
                acc += ring[r, j]
            fs[F_RING + r] = acc
    fi[S_RING_POS] = pos
    if not full:
        fi[S_RING_N] += 1


@njit(cache=True, inline="always")
def _emit(p, fs, fi, out_f, out_i, ring, ts, arrays, bpx, bq, apx, aq, fresh):
    row = fi[S_ROWS]
    _book_features(p, fs, fi, out_f, row, arrays, bpx, bq, apx, aq, fresh)
    o = out_f[row]
    qs = p[P_Q_NUM] / p[P_Q_DEN]
    pxs = p[P_PX_NUM] / p[P_PX_DEN]
    o[C_OFI] = fs[F_OFI] * qs
    for lvl in range(MLOFI_LEVELS):
        o[C_MLOFI + lvl] = fs[F_MLOFI + lvl] * qs
    o[C_CVD] = fs[F_CVD] * qs
    o[C_BUY_VOL] = fs[F_BUY] * qs
    o[C_SELL_VOL] = fs[F_SELL] * qs
    o[C_TRADES] = fi[S_TRADES_INT]
    o[C_VWAP] = fs[F_VWAP_NUM] / fs[F_VWAP_DEN] * pxs if fs[F_VWAP_DEN] > 0 else math.nan
    dk = fs[F_RING]
    num = fs[F_RING + 1]
    den = fs[F_RING + 2]
    o[C_DELTA_K] = dk * qs
    o[C_VWAP_K] = num / den * pxs if den > 0 else math.nan
    o[C_LAST_PRICE] = fs[F_LAST_PX] * pxs if fs[F_VWAP_DEN] > 0 else math.nan
    out_i[row, I_TS] = ts
    out_i[row, I_TS_EXCHANGE] = fi[S_LAST_TS_EX]
    out_i[row, I_UPDATE_ID] = fi[S_LAST_ID]
    fi[S_ROWS] = row + 1
    # interval quantities restart after each row
    fs[F_OFI] = 0.0
    for lvl in range(MLOFI_LEVELS):
        fs[F_MLOFI + lvl] = 0.0
    fs[F_BUY] = 0.0
    fs[F_SELL] = 0.0
    fi[S_TRADES_INT] = 0


# ``_nrt=False``: nothing under these two kernels allocates, and without numba's runtime the array
# arguments of every inner call are not reference-counted (an atomic increment and decrement per
# array per call, about 40% of the per-message cost of a feature row when they were on).
@njit(cache=True, _nrt=False)
def run(ev, start, st, lb, la, hkb, hvb, hka, hva, p, fs, fi, ring, out_f, out_i, bpx, bq, apx, aq):
    """Process ``ev[start:]``.  Returns ``(status, next_index)``; see the module docstring."""
    arrays = (st, lb, la, hkb, hvb, hka, hva)
    mode = int(p[P_MODE])
    interval = int(p[P_INTERVAL])
    use_ex = p[P_CLOCK] != 0.0
    cap_rows = out_f.shape[0]
    n = ev.shape[0]
    i = start
    while i < n:
        e = ev[i]
        clock = e["ts_exchange"] if use_ex else e["ts_local"]
        if mode == MODE_INTERVAL:
            if fi[S_STARTED] == 0:
                fi[S_NEXT_T] = (clock // interval + 1) * interval if clock % interval else clock
                fi[S_STARTED] = 1
            # samples strictly before this event's time see everything applied so far
            while fi[S_NEXT_T] < clock:
                if fi[S_SYNCED] != 0:
                    if fi[S_ROWS] >= cap_rows:
                        return ST_NEED_OUT, i
                    _emit(p, fs, fi, out_f, out_i, ring, fi[S_NEXT_T], arrays, bpx, bq, apx, aq, False)
                fi[S_NEXT_T] += interval
        kind = e["kind"]
        if kind == 1:  # BOOK_SET: the level sets of this message at once
            r, j = bk.apply_levels(st, lb, la, hkb, hvb, hka, hva, ev, i)
            if r != bk.OK:
                return ST_NEED_GROW, j
            i = j - 1
            e = ev[i]
            flags = e["flags"]
            if flags & 4:  # SNAPSHOT_END
                fi[S_SYNCED] = 1
                fi[S_HAS_PREV] = 0
            if flags & 8:  # END_OF_MESSAGE
                fi[S_LAST_TS_EX] = e["ts_exchange"]
                fi[S_LAST_ID] = e["id"]
                if fi[S_SYNCED] != 0:
                    # level sets are idempotent, so retrying this event after a grow is safe
                    if bk.maybe_recenter(st, lb, la, hkb, hvb, hka, hva) != bk.OK:
                        return ST_NEED_GROW, i
                    fi[S_BOOK_MSGS] += 1
                    bb = st[bk.ST_BEST_BID]
                    ba = st[bk.ST_BEST_ASK]
                    if bb != bk.NO_BID and ba != bk.NO_ASK and bb >= ba:
                        if fi[S_CROSSED] == 0:
                            fi[S_FIRST_CROSSED] = i
                        fi[S_CROSSED] += 1
                    if mode == MODE_EVENT:
                        _ofi_update(fs, fi, arrays, bpx, bq, apx, aq, int(p[P_NLEVELS]))
                        _emit(p, fs, fi, out_f, out_i, ring, e["ts_local"], arrays, bpx, bq, apx, aq, True)
                    else:
                        _ofi_update(fs, fi, arrays, bpx, bq, apx, aq, MLOFI_LEVELS)
        elif kind == 2:  # BOOK_CLEAR
            bk.book_clear(st, lb, la, hkb, hvb, hka, hva)
            fi[S_SYNCED] = 0
            fi[S_HAS_PREV] = 0
        elif kind == 3:  # TRADE
            q = float(e["qty"])
            s = float(e["side"])
            fs[F_CVD] += s * q
            if s > 0:
                fs[F_BUY] += q
            elif s < 0:
                fs[F_SELL] += q
            fs[F_VWAP_NUM] += q * float(e["price"])
            fs[F_VWAP_DEN] += q
            fs[F_LAST_PX] = float(e["price"])
            fi[S_TRADES_INT] += 1
            _ring_push(fs, fi, ring, s * q, q * float(e["price"]), q)
        fi[S_LAST_CLOCK] = clock
        i += 1
        # event mode: make room before the next event that may write a row
        if mode == MODE_EVENT and fi[S_ROWS] >= cap_rows:
            return ST_NEED_OUT, i
    return ST_DONE, i


@njit(cache=True, _nrt=False)
def flush_interval(p, fs, fi, ring, out_f, out_i, st, lb, la, hkb, hvb, hka, hva, bpx, bq, apx, aq, end_clock):
    """Interval mode: emit the samples up to and including ``end_clock`` (end of input)."""
    arrays = (st, lb, la, hkb, hvb, hka, hva)
    interval = int(p[P_INTERVAL])
    while fi[S_STARTED] != 0 and fi[S_NEXT_T] <= end_clock:
        if fi[S_SYNCED] != 0:
            if fi[S_ROWS] >= out_f.shape[0]:
                return ST_NEED_OUT
            _emit(p, fs, fi, out_f, out_i, ring, fi[S_NEXT_T], arrays, bpx, bq, apx, aq, False)
        fi[S_NEXT_T] += interval
    return ST_DONE
