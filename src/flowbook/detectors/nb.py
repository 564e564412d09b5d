"""The detectors' compiled one-pass kernel: book + trades + liquidations -> detection rows.

``run`` walks one instrument's events in array order, keeps the L2 book (``flowbook.book.nb``) and
every detector's state in arrays, and writes one row per detection.  It is resumable: it returns
``(NEED_ROOM | NEED_GROW, i, n)`` when the output is full or the book's far-level hash needs room,
and the caller drains/grows and calls again from ``i`` (nothing of event ``i`` has been applied).
Definitions: docs/detectors.md.  Twins: ``detectors.reference`` (sweep, block, iceberg, wall pulled) and
``detectors.reference_flow`` (absorption, momentum, HFT burst, liquidation cascade).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..book import nb as bk
from ..book import readnb as rd
from .model import (
    F_BLK_NOT,
    F_IC_RATIO,
    F_INV,
    F_LIN,
    F_LQ_NOT,
    F_MO_NOT,
    F_SW_NOT,
    F_WL_KEEP,
    P_AB_LOTS,
    P_AB_MOVE,
    P_AB_NS,
    P_CLOCK,
    P_HF_N,
    P_HF_NS,
    P_HF_SMALL,
    P_IC_GONE_NS,
    P_IC_LOTS,
    P_IC_NS,
    P_IC_REFILLS,
    P_LQ_N,
    P_LQ_NS,
    P_MO_NS,
    P_MO_TICKS,
    P_SW_LEVELS,
    P_SW_NS,
    P_TW,
    P_WL_DIST,
    P_WL_LOTS,
    P_WL_NS,
)

OK, NEED_GROW, NEED_ROOM = 0, 2, 3
NO_BASE = -(2**62)
RING, LQ_CAP, AB_CAP = 4096, 256, 64
ROOM = 8 + AB_CAP  # rows one event can emit at most
# int state slots
(S_SYNC, S_TBASE, S_OR_N, S_OR_TS, S_OR_SIDE, S_OR_LOTS, S_OR_P, S_BU_N, S_BU_T0, S_BU_SIDE, S_BU_LOTS,
 S_BU_LEVELS, S_BU_P, S_MO_HEAD, S_MO_TAIL, S_HF_HEAD, S_HF_TAIL, S_HF_SUM, S_HF_NET, S_HF_QUIET,
 S_LQ_HEAD, S_LQ_TAIL, S_LQ_ACT, S_AB_N, S_SIZE) = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                                    16, 17, 18, 19, 20, 22, 24, 26, 27)
FS_OR_NOT, FS_BU_NOT, FS_SIZE = 0, 1, 2
# per-tick fields of ``tk[field, side_index, tick - base]`` (side index 0 bid, 1 ask; the passive side)
(T_LAST_TRADE, T_IC_START, T_IC_EXEC, T_IC_VIS, T_IC_REFILL, T_IC_PEND, T_IC_FIRED, T_IC_GONE, T_AB_START,
 T_AB_LOTS, T_AB_FIRED, T_SIZE) = range(12)
# detection kinds (DetectorKind)
SWEEP, ABSORPTION, BLOCK, MOMENTUM, ICEBERG, HFT, WALL, LIQ = 1, 2, 3, 4, 5, 6, 7, 8


def new_state(track_ticks: int) -> tuple[np.ndarray, ...]:
    """Fresh detector state: ``(s, fs, tk, ring, lqi, lqf, abp)``."""
    s = np.zeros(S_SIZE, np.int64)
    s[S_TBASE] = NO_BASE
    return (s, np.zeros(FS_SIZE), np.zeros((T_SIZE, 2, track_ticks), np.int64), np.zeros((5, RING), np.int64),
            np.zeros((2, 2, LQ_CAP), np.int64), np.zeros((2, LQ_CAP)), np.zeros((AB_CAP, 5), np.int64))


@njit(cache=True, inline="always")
def _f(x):
    return min(1.0, 0.5 * x)  # confidence: 0.5 at the threshold, 1 at twice it


@njit(cache=True)
def _emit(oi, of, n, ts, kind, side, price, lots, count, conf):
    oi[n, 0], oi[n, 1], oi[n, 2], oi[n, 3], oi[n, 4], oi[n, 5] = ts, kind, side, price, lots, count
    of[n] = conf
    return n + 1


@njit(cache=True)
def _close_order(s, fs, ring, ip, fp, oi, of, n):
    """Block and momentum decisions for the finished taker order (same-time, same-side fills).

    Twins: ``reference.ref_detect`` (block), ``reference_flow.ref_momentum`` (momentum)."""
    side, lots, p, ts, notional = s[S_OR_SIDE], s[S_OR_LOTS], s[S_OR_P], s[S_OR_TS], fs[FS_OR_NOT]
    if notional >= fp[F_BLK_NOT]:
        n = _emit(oi, of, n, ts, BLOCK, side, p, lots, s[S_OR_N], _f(notional / fp[F_BLK_NOT]))
    if notional >= fp[F_MO_NOT]:
        while s[S_MO_TAIL] < s[S_MO_HEAD] and ring[0, s[S_MO_TAIL] % RING] < ts - ip[P_MO_NS]:
            s[S_MO_TAIL] += 1
        move = side * (p - ring[1, s[S_MO_TAIL] % RING])
        if move >= ip[P_MO_TICKS]:
            conf = 0.5 * (_f(move / ip[P_MO_TICKS]) + _f(notional / fp[F_MO_NOT]))
            n = _emit(oi, of, n, ts, MOMENTUM, side, p, lots, move, conf)
    s[S_OR_N], s[S_OR_LOTS], fs[FS_OR_NOT] = 0, 0, 0.0
    return n


@njit(cache=True)
def _close_burst(s, fs, ip, fp, oi, of, n):
    levels, notional = s[S_BU_LEVELS], fs[FS_BU_NOT]
    if levels >= ip[P_SW_LEVELS] and notional >= fp[F_SW_NOT]:
        conf = 0.5 * (_f(levels / ip[P_SW_LEVELS]) + _f(notional / fp[F_SW_NOT]))
        n = _emit(oi, of, n, s[S_BU_T0], SWEEP, s[S_BU_SIDE], s[S_BU_P], s[S_BU_LOTS], levels, conf)
    s[S_BU_N], s[S_BU_LOTS], s[S_BU_LEVELS], fs[FS_BU_NOT] = 0, 0, 0, 0.0
    return n


@njit(cache=True)
def flush(s, fs, ring, ip, fp, oi, of, n):
    """Close the open taker order and trade burst at the end of the input."""
    if s[S_OR_N] > 0:
        n = _close_order(s, fs, ring, ip, fp, oi, of, n)
    if s[S_BU_N] > 0:
        n = _close_burst(s, fs, ip, fp, oi, of, n)
    return n


@njit(cache=True)
def _ice_check(tk, si, k, t, side, price, ip, fp, oi, of, n):
    ex, vis, refills = tk[T_IC_EXEC, si, k], tk[T_IC_VIS, si, k], tk[T_IC_REFILL, si, k]
    if (tk[T_IC_FIRED, si, k] == 0 and refills >= ip[P_IC_REFILLS] and ex >= ip[P_IC_LOTS]
            and ex >= fp[F_IC_RATIO] * vis and ex > vis):
        tk[T_IC_FIRED, si, k] = 1
        r = 2.0 if vis == 0 else ex / (fp[F_IC_RATIO] * vis)
        conf = 0.5 * (_f(r) + _f(refills / ip[P_IC_REFILLS]))
        n = _emit(oi, of, n, t, ICEBERG, side, price, ex, refills, conf)
    return n


@njit(cache=True)
def _ice_live(tk, si, k, t, ip):
    """Is the iceberg episode at this level still running at ``t``?"""
    st = tk[T_IC_START, si, k]
    gone = tk[T_IC_GONE, si, k]
    return st != 0 and t - st <= ip[P_IC_NS] and not (gone != 0 and t - gone > ip[P_IC_GONE_NS])


@njit(cache=True)
def _absorb_resolve(s, abp, tk, book, t, ip, oi, of, n):
    """Decide the waiting absorption levels at the end of a depth message.

    Twin: ``reference_flow.ref_absorption``."""
    st, lb, la, hkb, hvb, hka, hva = book
    m = 0
    for j in range(s[S_AB_N]):
        side, p, ts = abp[j, 0], abp[j, 1], abp[j, 2]
        if t < ts:
            abp[m, :] = abp[j, :]
            m += 1
            continue
        best = st[bk.ST_BEST_BID] if side > 0 else st[bk.ST_BEST_ASK]
        if rd.get_level(st, lb, la, hkb, hvb, hka, hva, side, p) > 0 and abs(best - p) <= ip[P_AB_MOVE]:
            si, k = (0 if side > 0 else 1), p - s[S_TBASE]
            same = tk[T_AB_START, si, k] == abp[j, 3]  # its episode still runs, or it ended with abp[j, 4]
            lots = tk[T_AB_LOTS, si, k] if same else abp[j, 4]
            conf = _f(lots / ip[P_AB_LOTS])
            n = _emit(oi, of, n, t, ABSORPTION, side, p, lots, 0, conf)
    s[S_AB_N] = m
    return n


@njit(cache=True)
def _trade(s, fs, tk, ring, abp, book, t, a, p, q, ip, fp, oi, of, n):
    """Every detector's state update for one trade.

    Twins: ``reference.ref_detect`` (sweep, block, iceberg), ``reference_flow.ref_absorption``,
    ``ref_momentum``, ``ref_hft_burst``."""
    notional = q * (fp[F_LIN] * p + fp[F_INV])
    # taker order (block, momentum) and burst (sweep) accumulation
    if s[S_OR_N] == 0:
        s[S_OR_TS], s[S_OR_SIDE] = t, a
    s[S_OR_N] += 1
    s[S_OR_LOTS] += q
    s[S_OR_P] = p
    fs[FS_OR_NOT] += notional
    if s[S_BU_N] == 0:
        s[S_BU_T0], s[S_BU_SIDE], s[S_BU_LEVELS] = t, a, 1
    elif p != s[S_BU_P]:
        s[S_BU_LEVELS] += 1
    s[S_BU_N] += 1
    s[S_BU_LOTS] += q
    s[S_BU_P] = p
    fs[FS_BU_NOT] += notional
    if s[S_MO_HEAD] - s[S_MO_TAIL] >= RING:
        s[S_MO_TAIL] += 1
    ring[0, s[S_MO_HEAD] % RING], ring[1, s[S_MO_HEAD] % RING] = t, p
    s[S_MO_HEAD] += 1
    # HFT burst: small trades in a window
    if q <= ip[P_HF_SMALL]:  # lots and side kept apart: a trade with no aggressor side still counts its lots
        if s[S_HF_HEAD] - s[S_HF_TAIL] >= RING:  # full: the oldest trade leaves before its slot is reused
            s[S_HF_SUM] -= ring[3, s[S_HF_TAIL] % RING]
            s[S_HF_NET] -= ring[4, s[S_HF_TAIL] % RING] * ring[3, s[S_HF_TAIL] % RING]
            s[S_HF_TAIL] += 1
        h = s[S_HF_HEAD] % RING
        ring[2, h], ring[3, h], ring[4, h] = t, q, a
        s[S_HF_HEAD] += 1
        s[S_HF_SUM] += q
        s[S_HF_NET] += a * q
        while ring[2, s[S_HF_TAIL] % RING] < t - ip[P_HF_NS]:
            s[S_HF_SUM] -= ring[3, s[S_HF_TAIL] % RING]
            s[S_HF_NET] -= ring[4, s[S_HF_TAIL] % RING] * ring[3, s[S_HF_TAIL] % RING]
            s[S_HF_TAIL] += 1
        cnt = s[S_HF_HEAD] - s[S_HF_TAIL]
        if cnt >= ip[P_HF_N] and t >= s[S_HF_QUIET]:
            side = 1 if s[S_HF_NET] > 0 else (-1 if s[S_HF_NET] < 0 else 0)
            n = _emit(oi, of, n, t, HFT, side, p, s[S_HF_SUM], cnt, _f(cnt / ip[P_HF_N]))
            s[S_HF_QUIET] = t + ip[P_HF_NS]
    # per-level state of the passive side
    tw = ip[P_TW]
    k = p - s[S_TBASE]
    if s[S_TBASE] == NO_BASE or k < tw // 4 or k >= tw - tw // 4:
        s[S_TBASE] = p - tw // 2  # re-anchor the tracking window on the trading price
        tk[:] = 0
        s[S_AB_N] = 0
        k = p - s[S_TBASE]
    ps = -a
    si = 0 if ps > 0 else 1
    tk[T_LAST_TRADE, si, k] = t
    if s[S_SYNC] == 0:
        return n
    if a != 0:  # absorption; a trade with no aggressor side has no passive side to absorb it
        if tk[T_AB_START, si, k] == 0 or t - tk[T_AB_START, si, k] > ip[P_AB_NS]:
            if tk[T_AB_FIRED, si, k] == 1:  # the ending episode may wait for its decision: keep its lots
                for j in range(s[S_AB_N]):
                    if abp[j, 0] == ps and abp[j, 1] == p and abp[j, 3] == tk[T_AB_START, si, k]:
                        abp[j, 4] = tk[T_AB_LOTS, si, k]
            tk[T_AB_START, si, k], tk[T_AB_LOTS, si, k], tk[T_AB_FIRED, si, k] = t, 0, 0
        tk[T_AB_LOTS, si, k] += q
        if tk[T_AB_FIRED, si, k] == 0 and tk[T_AB_LOTS, si, k] >= ip[P_AB_LOTS] and s[S_AB_N] < AB_CAP:
            tk[T_AB_FIRED, si, k] = 1
            j = s[S_AB_N]
            abp[j, 0], abp[j, 1], abp[j, 2], abp[j, 3] = ps, p, t, tk[T_AB_START, si, k]
            s[S_AB_N] = j + 1
    st, lb, la, hkb, hvb, hka, hva = book
    if not _ice_live(tk, si, k, t, ip):
        tk[T_IC_START, si, k], tk[T_IC_EXEC, si, k], tk[T_IC_REFILL, si, k] = t, 0, 0
        tk[T_IC_PEND, si, k], tk[T_IC_FIRED, si, k], tk[T_IC_GONE, si, k] = 0, 0, 0
        tk[T_IC_VIS, si, k] = 0
    vis = rd.get_level(st, lb, la, hkb, hvb, hka, hva, ps, p)
    tk[T_IC_VIS, si, k] = max(tk[T_IC_VIS, si, k], vis)
    tk[T_IC_EXEC, si, k] += q
    tk[T_IC_PEND, si, k] += q
    return _ice_check(tk, si, k, t, ps, p, ip, fp, oi, of, n)


@njit(cache=True)
def _level(s, tk, t, side, p, old, q, best, ip, fp, oi, of, n):
    """Wall-pulled and iceberg decisions for one applied level set (``old`` -> ``q`` lots)."""
    k = p - s[S_TBASE]
    if s[S_SYNC] == 0 or s[S_TBASE] == NO_BASE or k < 0 or k >= ip[P_TW]:
        return n
    si = 0 if side > 0 else 1
    dist = (best - p) * side
    if old >= ip[P_WL_LOTS] and q <= fp[F_WL_KEEP] * old and 0 <= dist <= ip[P_WL_DIST]:
        lt = tk[T_LAST_TRADE, si, k]
        if lt == 0 or t - lt > ip[P_WL_NS]:
            n = _emit(oi, of, n, t, WALL, side, p, old - q, dist, _f(old / ip[P_WL_LOTS]))
    if tk[T_IC_START, si, k] != 0 and _ice_live(tk, si, k, t, ip):
        if q == 0:
            if tk[T_IC_GONE, si, k] == 0:
                tk[T_IC_GONE, si, k] = t
        else:
            tk[T_IC_GONE, si, k] = 0
        pend = tk[T_IC_PEND, si, k]
        if pend > 0 and q > max(old - pend, 0):
            tk[T_IC_REFILL, si, k] += 1
        tk[T_IC_PEND, si, k] = 0
        tk[T_IC_VIS, si, k] = max(tk[T_IC_VIS, si, k], q)
        n = _ice_check(tk, si, k, t, side, p, ip, fp, oi, of, n)
    return n


@njit(cache=True)
def _liq(s, lqi, lqf, t, side, p, q, ip, fp, oi, of, n):
    """Liquidation-cascade decision for one forced order.

    Twin: ``reference_flow.ref_liquidation_cascade``."""
    si = 0 if side > 0 else 1
    h, tl = S_LQ_HEAD + si, S_LQ_TAIL + si
    while s[tl] < s[h] and lqi[si, 0, s[tl] % LQ_CAP] < t - ip[P_LQ_NS]:
        s[tl] += 1
    if s[tl] == s[h]:
        s[S_LQ_ACT + si] = 0  # a quiet gap longer than the window ends the cascade
    if s[h] - s[tl] >= LQ_CAP:
        s[tl] += 1
    notional = q * (fp[F_LIN] * p + fp[F_INV])
    lqi[si, 0, s[h] % LQ_CAP], lqi[si, 1, s[h] % LQ_CAP], lqf[si, s[h] % LQ_CAP] = t, q, notional
    s[h] += 1
    cnt = s[h] - s[tl]
    total, lots = 0.0, 0
    for j in range(s[tl], s[h]):
        total += lqf[si, j % LQ_CAP]
        lots += lqi[si, 1, j % LQ_CAP]
    first = lqf[si, s[tl] % LQ_CAP]
    if s[S_LQ_ACT + si] == 0 and cnt >= ip[P_LQ_N] and total >= fp[F_LQ_NOT] and notional >= first:
        s[S_LQ_ACT + si] = 1
        conf = 0.5 * (_f(cnt / ip[P_LQ_N]) + _f(total / fp[F_LQ_NOT]))
        n = _emit(oi, of, n, t, LIQ, side, p, lots, cnt, conf)
    return n


@njit(cache=True)
def run(ev, i, st, lb, la, hkb, hvb, hka, hva, s, fs, tk, ring, lqi, lqf, abp, ip, fp, oi, of, n):
    """Process ``ev[i:]``; returns ``(status, next index, rows written)``."""
    book = (st, lb, la, hkb, hvb, hka, hva)
    cap = oi.shape[0]
    while i < ev.shape[0]:
        if n + ROOM > cap:
            return NEED_ROOM, i, n
        e = ev[i]
        kind = e["kind"]
        t = e["ts_exchange"] if ip[P_CLOCK] == 0 else e["ts_local"]
        is_trade = kind == 3
        if s[S_OR_N] > 0 and ((is_trade and (t != s[S_OR_TS] or e["side"] != s[S_OR_SIDE]))
                              or (not is_trade and t > s[S_OR_TS])):
            n = _close_order(s, fs, ring, ip, fp, oi, of, n)
        if s[S_BU_N] > 0 and (t > s[S_BU_T0] + ip[P_SW_NS] or (is_trade and e["side"] != s[S_BU_SIDE])):
            n = _close_burst(s, fs, ip, fp, oi, of, n)
        if kind == 1:
            side, p, q = e["side"], e["price"], e["qty"]
            if side != 0:
                old = rd.get_level(st, lb, la, hkb, hvb, hka, hva, side, p)
                best = st[bk.ST_BEST_BID] if side > 0 else st[bk.ST_BEST_ASK]
                if bk.set_level(st, lb, la, hkb, hvb, hka, hva, side, p, q) == bk.NEED_GROW:
                    return NEED_GROW, i, n
                n = _level(s, tk, t, side, p, old, q, best, ip, fp, oi, of, n)
            if e["flags"] & 4:
                s[S_SYNC] = 1
                if s[S_TBASE] == NO_BASE:  # anchor the tracking window on the synced book's touch
                    b, a = st[bk.ST_BEST_BID], st[bk.ST_BEST_ASK]
                    c = (b + a) // 2 if b != bk.NO_BID and a != bk.NO_ASK else (b if b != bk.NO_BID else a)
                    if c != bk.NO_BID and c != bk.NO_ASK:
                        s[S_TBASE] = c - ip[P_TW] // 2
            if e["flags"] & 8:
                if bk.maybe_recenter(st, lb, la, hkb, hvb, hka, hva) == bk.NEED_GROW:
                    return NEED_GROW, i, n
                if s[S_SYNC] == 1 and s[S_AB_N] > 0:
                    n = _absorb_resolve(s, abp, tk, book, t, ip, oi, of, n)
        elif kind == 2:
            bk.book_clear(st, lb, la, hkb, hvb, hka, hva)
            s[S_SYNC], s[S_AB_N] = 0, 0
            tk[1:] = 0  # book-derived level state; last-trade times stay
        elif is_trade:
            n = _trade(s, fs, tk, ring, abp, book, t, e["side"], e["price"], e["qty"], ip, fp, oi, of, n)
        elif kind == 5:
            n = _liq(s, lqi, lqf, t, e["side"], e["price"], e["qty"], ip, fp, oi, of, n)
        i += 1
    return OK, i, n
