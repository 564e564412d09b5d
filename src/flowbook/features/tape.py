"""The book tape: one compiled pass over one instrument's events that applies the book and records what
the catalog's book groups read (:mod:`flowbook.features.micro`, ``liquidity`` and the ``cost`` walks).

:func:`tape_nb` (numba) records the book at each sample (touch, depth within bands of the mid, and on
flagged samples the best levels and a book walk for a size), for each trade the resting depth on the
side it hit, for each level set the lots added at or inside the touch, and after each depth message
the depth within a band.  Samples are given as event positions (the sample is taken before that
event), so several consumers with different time rules share one pass: :func:`sample_positions`
turns times into positions.

Time is the chosen clock made non-decreasing (running maximum in stream order), so a value at
sample time ``T`` sees exactly the events that arrived before the first event later than ``T``.
Plain-Python twin: :mod:`flowbook.features.reference_micro` (``ref_replay``).  Docs: ``docs/analytics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit

from ..book import L2Book, window_for
from ..book import nb as bk
from ..book import readnb as rd
from ..book.readnb import band_limits
from ..events import Flag, Kind
from .impact import walk_nb

__all__ = ["Tape", "LEVELS", "WALK", "W_FIELDS", "book_tape", "run_tape", "tape_nb", "effective_clock",
           "sample_positions", "messages_before", "band_limits"]

DONE, NEED_GROW, NEED_OUT = 0, 2, 3
# tape state slots
S_SYNC, S_NEXT, S_ROWS, S_TRADES, S_ADDS, S_MSGS, S_SIZE = range(7)
# sample flags: record the best levels / walk the book
LEVELS, WALK = 1, 2
# per walked side: lots, notional (tick·lots), levels used, last tick, remainder, levels read, tick of the last
# level read, best tick, notional of the levels read >= 2**62 (the walk's overflow guard)
W_FIELDS = ("lots", "cost", "used", "last", "rem", "read", "read_last", "best", "too_large")
FIRST_READ = 256  # levels read first for a walk; ×4 while the walk takes them all (impact.book_cost)
_LIMIT = float(2**62)


@njit(cache=True)
def _walk_side(st, lb, la, hkb, hvb, hka, hva, side, want, by_quote, out):
    """:func:`flowbook.features.impact.book_cost`'s walk of one side (+1 buys: walks the asks) into ``out``
    (``W_FIELDS``): the best ``FIRST_READ`` levels, four times more while the walk takes all it read."""
    n = FIRST_READ
    while True:
        px = np.empty(n, np.int64)
        q = np.empty(n, np.int64)
        m = rd.top_levels(st, lb, la, hkb, hvb, hka, hva, -side, n, px, q)
        lots, cost, used, last, rem = walk_nb(px, q, m, want, by_quote)
        if not (m == n and used == m and rem > 0):
            break
        n *= 4
    tot = 0.0
    for j in range(m):
        tot += float(px[j]) * float(q[j])
    out[0], out[1], out[2], out[3], out[4], out[5] = lots, cost, used, last, rem, m
    out[6] = px[m - 1] if m > 0 else 0
    out[7] = px[0] if m > 0 else 0
    out[8] = 1 if tot >= _LIMIT else 0


@njit(cache=True)
def _sample(st, lb, la, hkb, hvb, hka, hva, si, bands, top_k, flag, want, by_quote, r, o_sync, o_bb, o_ba,
            o_band, o_bpx, o_bq, o_apx, o_aq, o_nlv, o_walk):
    bb, ba = st[bk.ST_BEST_BID], st[bk.ST_BEST_ASK]
    o_sync[r] = si[S_SYNC]
    o_bb[r], o_ba[r] = bb, ba
    o_band[r, :, :] = np.nan
    o_nlv[r, 0], o_nlv[r, 1] = 0, 0
    if si[S_SYNC] == 0:
        return
    if bb != bk.NO_BID and ba != bk.NO_ASK:
        for j in range(bands.shape[0]):
            lo, hi = band_limits(bb, ba, bands[j])
            o_band[r, j, 0], o_band[r, j, 2] = rd.band_depth(st, lb, la, hkb, hvb, hka, hva, 1, lo)
            o_band[r, j, 1], o_band[r, j, 3] = rd.band_depth(st, lb, la, hkb, hvb, hka, hva, -1, hi)
    if top_k > 0 and flag & LEVELS:
        o_nlv[r, 0] = rd.top_levels(st, lb, la, hkb, hvb, hka, hva, 1, top_k, o_bpx[r], o_bq[r])
        o_nlv[r, 1] = rd.top_levels(st, lb, la, hkb, hvb, hka, hva, -1, top_k, o_apx[r], o_aq[r])
    if flag & WALK:
        _walk_side(st, lb, la, hkb, hvb, hka, hva, 1, want, by_quote, o_walk[r, 0])
        _walk_side(st, lb, la, hkb, hvb, hka, hva, -1, want, by_quote, o_walk[r, 1])


@njit(cache=True)
def _run_end(ev, i, lim, bb, ba, synced):
    """End (exclusive) of the level sets from ``ev[i]`` that :func:`flowbook.book.nb.apply_levels` may
    take in one call: same clocks as ``ev[i]``, before ``lim``, through the first one flagged
    ``END_OF_MESSAGE``/``SNAPSHOT_END``.  While ``synced``, the run stops before a set that may add lots
    at or inside its side's touch (an addition is recorded set by set) and after a delete that may
    remove the touch.  ``bb``/``ba``: the touch, kept as a lower (bid) / upper (ask) bound of the
    touch before each set of the run.  Returns ``i`` when ``ev[i]`` itself may be an addition."""
    ts_l = ev[i]["ts_local"]
    ts_e = ev[i]["ts_exchange"]
    j = i
    while j < lim:
        e = ev[j]
        if e["kind"] != 1 or e["ts_local"] != ts_l or e["ts_exchange"] != ts_e:
            return j
        side, p, q, f = e["side"], e["price"], e["qty"], e["flags"]
        if synced and side != 0:
            if q > 0:
                if side > 0:
                    if f & 1 == 0 and (bb == bk.NO_BID or p >= bb):
                        return j
                    bb = max(bb, p)
                else:
                    if f & 1 == 0 and (ba == bk.NO_ASK or p <= ba):
                        return j
                    ba = min(ba, p)
            elif (side > 0 and bb != bk.NO_BID and p >= bb) or (side < 0 and ba != bk.NO_ASK and p <= ba):
                return j + 1
        j += 1
        if f & 12:
            return j
    return j


@njit(cache=True)
def tape_nb(ev, clk, i, st, lb, la, hkb, hvb, hka, hva, s_at, s_flag, bands, top_k, c_levels, c_bps, p_bps, p_need,
            want, by_quote, si, o_sync, o_bb, o_ba, o_band, o_bpx, o_bq, o_apx, o_aq, o_nlv, o_walk, tr_depth, add_t, add_q,
            add_side, msg_t, msg_b, msg_a, buf_px, buf_q):
    """Replay ``ev[i:]`` (clock ``clk``, non-decreasing) into the book and record the tape.

    Samples: before event ``s_at[s]`` (non-decreasing positions; ``len(ev)``: after the last event),
    one row ``r`` of the ``o_*`` arrays: synced flag, best bid/ask ticks, per band ``j`` (``bands`` in
    bps of the mid) bid lots, ask lots, bid Σ lots·ticks, ask Σ lots·ticks (NaN unless synced and
    two-sided); with ``LEVELS`` in ``s_flag[s]`` the best ``top_k`` levels per side, with ``WALK``
    the walk of ``want`` lots (notional units when ``by_quote``) on each side (``o_walk[r, 0]`` buys,
    ``[r, 1]`` sells; fields ``W_FIELDS``; only when synced).  Trades (``k``-th ``TRADE``): ``tr_depth[k]``
    = lots on the hit side within its best ``c_levels`` levels and ``c_bps`` of its best price; −1 when
    not synced, the hit side is empty or the trade has no aggressor side.  Additions: a ``BOOK_SET``
    (synced, not part of a snapshot) that raises a level at or inside its side's touch, before the
    set, records ``(time, lots added, side)``.  Messages: after each synced depth message, bid and ask
    lots within ``p_bps`` of the mid (NaN when one-sided; also NaN when ``p_need``, one flag per event,
    is given and the message's event is not flagged); a ``BOOK_CLEAR`` records NaN.
    Level sets that cannot be additions go to the book a run at a time (:func:`_run_end`).
    Returns ``(status, i)``: ``NEED_GROW`` (grow the book, call again at ``i``), ``NEED_OUT`` (the
    sample rows are full: drain, reset ``si[S_ROWS]``, call again) or ``DONE``.
    Twin: ``reference_micro.ref_replay``.
    """
    n = ev.shape[0]
    ns = s_at.shape[0]
    cap = o_sync.shape[0]
    while True:
        while si[S_NEXT] < ns and s_at[si[S_NEXT]] <= i:
            if si[S_ROWS] >= cap:
                return NEED_OUT, i
            _sample(st, lb, la, hkb, hvb, hka, hva, si, bands, top_k, s_flag[si[S_NEXT]], want, by_quote, si[S_ROWS],
                    o_sync, o_bb, o_ba, o_band, o_bpx, o_bq, o_apx, o_aq, o_nlv, o_walk)
            si[S_NEXT] += 1
            si[S_ROWS] += 1
        if i >= n:
            return DONE, i
        e = ev[i]
        kind = e["kind"]
        if kind == 1:
            lim = s_at[si[S_NEXT]] if si[S_NEXT] < ns else n
            j = _run_end(ev, i, lim, st[bk.ST_BEST_BID], st[bk.ST_BEST_ASK], si[S_SYNC] != 0)
            if j > i:
                status, j = bk.apply_levels(st, lb, la, hkb, hvb, hka, hva, ev[:j], i)
                if status != bk.OK:
                    return NEED_GROW, j
                last = j - 1
            else:
                side, p, q, flags = e["side"], e["price"], e["qty"], e["flags"]
                old = rd.get_level(st, lb, la, hkb, hvb, hka, hva, side, p)
                best = st[bk.ST_BEST_BID] if side > 0 else st[bk.ST_BEST_ASK]
                if bk.set_level(st, lb, la, hkb, hvb, hka, hva, side, p, q) != bk.OK:
                    return NEED_GROW, i
                # on a retry after NEED_GROW the level already holds q, so nothing is recorded twice
                at_touch = (best == bk.NO_BID or p >= best) if side > 0 else (best == bk.NO_ASK or p <= best)
                if si[S_SYNC] != 0 and flags & 1 == 0 and q > old and at_touch:
                    k = si[S_ADDS]
                    add_t[k], add_q[k], add_side[k] = clk[i], q - old, side
                    si[S_ADDS] = k + 1
                last = i
                j = i + 1
            flags = ev[last]["flags"]
            if flags & 4:
                si[S_SYNC] = 1
            if flags & 8:
                if bk.maybe_recenter(st, lb, la, hkb, hvb, hka, hva) != bk.OK:
                    return NEED_GROW, last
                if si[S_SYNC] != 0:
                    k = si[S_MSGS]
                    msg_t[k], msg_b[k], msg_a[k] = clk[last], np.nan, np.nan
                    bb, ba = st[bk.ST_BEST_BID], st[bk.ST_BEST_ASK]
                    if bb != bk.NO_BID and ba != bk.NO_ASK and (p_need.shape[0] == 0 or p_need[last] != 0):
                        lo, hi = band_limits(bb, ba, p_bps)
                        msg_b[k] = rd.band_depth(st, lb, la, hkb, hvb, hka, hva, 1, lo)[0]
                        msg_a[k] = rd.band_depth(st, lb, la, hkb, hvb, hka, hva, -1, hi)[0]
                    si[S_MSGS] = k + 1
            i = j
            continue
        if kind == 2:
            bk.book_clear(st, lb, la, hkb, hvb, hka, hva)
            si[S_SYNC] = 0
            k = si[S_MSGS]
            msg_t[k], msg_b[k], msg_a[k] = clk[i], np.nan, np.nan
            si[S_MSGS] = k + 1
        elif kind == 3:
            k = si[S_TRADES]
            tr_depth[k] = -1
            hit = -e["side"]
            if si[S_SYNC] != 0 and hit != 0:
                m = rd.top_levels(st, lb, la, hkb, hvb, hka, hva, hit, c_levels, buf_px, buf_q)
                if m > 0:
                    b0 = buf_px[0]
                    c_lim = math.ceil(b0 * (1.0 - c_bps * 1e-4) - 1e-9) if hit > 0 else \
                        math.floor(b0 * (1.0 + c_bps * 1e-4) + 1e-9)
                    d = 0
                    for j in range(m):
                        if (buf_px[j] >= c_lim) if hit > 0 else (buf_px[j] <= c_lim):
                            d += buf_q[j]
                    tr_depth[k] = d
            si[S_TRADES] = k + 1
        i += 1


# ---- the tape, in Python --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tape:
    """What :func:`tape_nb` recorded (see there).  Ticks and lots; ``bb``/``ba`` use the book's
    ``NO_BID``/``NO_ASK`` sentinels; ``band[s, j]`` = bid lots, ask lots, bid and ask Σ lots·ticks.
    ``levels`` and ``walk`` have a row per sample flagged ``LEVELS`` / ``WALK``, in sample order."""

    t: np.ndarray  # effective clock of every event
    synced: np.ndarray
    bb: np.ndarray
    ba: np.ndarray
    band: np.ndarray
    bpx: np.ndarray
    bq: np.ndarray
    apx: np.ndarray
    aq: np.ndarray
    nlv: np.ndarray
    trade_depth: np.ndarray
    add_t: np.ndarray
    add_q: np.ndarray
    add_side: np.ndarray
    msg_t: np.ndarray
    msg_bid: np.ndarray
    msg_ask: np.ndarray
    levels: np.ndarray  # level_fn's rows (empty without one)
    walk: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, len(W_FIELDS)), np.int64))

    def pick(self, rows: np.ndarray, band: int = 0, level_rows: np.ndarray | None = None) -> Tape:
        """The tape at the samples ``rows`` (repeats allowed) with band ``band`` only (as band 0) and the
        ``levels`` rows ``level_rows``: the sample rows a pass of its own over those samples would have
        recorded (the per-event records are shared as they are)."""
        b = self.band[rows][:, band: band + 1]
        lv = self.levels[level_rows] if level_rows is not None else self.levels[:0]
        return replace(self, synced=self.synced[rows], bb=self.bb[rows], ba=self.ba[rows], band=b, levels=lv)


LevelFn = Callable[..., np.ndarray]


def effective_clock(events: np.ndarray, clock: str) -> np.ndarray:
    """The clock field made non-decreasing: the running maximum in stream order."""
    if clock not in ("ts_local", "ts_exchange"):
        raise ValueError("clock must be 'ts_local' or 'ts_exchange'")
    c = events[clock].astype(np.int64)
    return np.maximum.accumulate(c) if len(c) else c


def messages_before(events: np.ndarray, at: np.ndarray) -> np.ndarray:
    """One flag per event: the last depth message (an ``END_OF_MESSAGE`` level set or a ``BOOK_CLEAR``)
    before each of the positions ``at``.  A tape's message record looked up at a sample at or after
    position ``p`` (the last one recorded before ``p``) is the flagged one, or a clear (NaN), or none."""
    kinds = events["kind"]
    idx = np.flatnonzero(((kinds == Kind.BOOK_SET) & (events["flags"] & Flag.END_OF_MESSAGE != 0))
                         | (kinds == Kind.BOOK_CLEAR))
    j = np.searchsorted(idx, np.asarray(at, np.int64), side="left") - 1
    need = np.zeros(len(events), np.int8)
    need[idx[j[j >= 0]]] = 1
    return need


def sample_positions(t: np.ndarray, sample_ts: np.ndarray) -> np.ndarray:
    """The event position of each sample time on the non-decreasing clock ``t``: before the first event
    later than the time."""
    s_ts = np.asarray(sample_ts, np.int64)
    if np.any(np.diff(s_ts) < 0):
        raise ValueError("sample times must be in time order")
    return np.searchsorted(t, s_ts, side="right")


def book_tape(events: np.ndarray, sample_ts: np.ndarray, clock: str = "ts_local", bands_bps: tuple[float, ...] = (),
              top_k: int = 0, consume_levels: int = 10, consume_bps: float = 10.0, pressure_bps: float = 10.0,
              level_fn: LevelFn | None = None, chunk: int = 4096) -> Tape:
    """Run :func:`tape_nb` over one instrument's events (arrival order) and the sample times.

    With ``level_fn``, the best levels of each chunk of samples go to ``level_fn(bb, ba, bpx, bq, apx,
    aq, nlv)`` and only its 2-D float result is kept (``Tape.levels``), so memory stays bounded."""
    t = effective_clock(events, clock)
    at = sample_positions(t, sample_ts)
    flags = np.full(len(at), LEVELS if top_k > 0 else 0, np.int64)
    return run_tape(events, t, at, flags, bands_bps, top_k, consume_levels, consume_bps, pressure_bps, level_fn,
                    chunk=chunk)


def run_tape(events: np.ndarray, t: np.ndarray, at: np.ndarray, flags: np.ndarray, bands_bps: tuple[float, ...] = (),
             top_k: int = 0, consume_levels: int = 10, consume_bps: float = 10.0, pressure_bps: float = 10.0,
             level_fn: LevelFn | None = None, walk_want: int = 0, walk_quote: bool = True,
             msg_need: np.ndarray | None = None, chunk: int = 4096) -> Tape:
    """:func:`tape_nb` over ``events`` (effective clock ``t``) with samples at the event positions ``at``
    (non-decreasing) and their ``LEVELS``/``WALK`` ``flags``.  The best levels go to ``level_fn`` (as in
    :func:`book_tape`) or are kept as they are; walks are of ``walk_want`` units (notional when
    ``walk_quote``).  ``msg_need`` (one flag per event; default all): the depth messages whose band
    depth is read (:func:`messages_before` finds those that samples look up)."""
    at = np.asarray(at, np.int64)
    flags = np.asarray(flags, np.int64)
    if np.any(np.diff(at) < 0) or len(flags) != len(at):
        raise ValueError("sample positions must be in order, one flag each")
    need = np.zeros(0, np.int8) if msg_need is None else np.asarray(msg_need, np.int8)
    if msg_need is not None and len(need) != len(events):
        raise ValueError("msg_need: one flag per event")
    book = L2Book(window=window_for(events))
    kinds = events["kind"]
    n_tr = int((kinds == Kind.TRADE).sum())
    n_set = int((kinds == Kind.BOOK_SET).sum())
    n_msg = int(((kinds == Kind.BOOK_SET) & (events["flags"] & Flag.END_OF_MESSAGE != 0)).sum()
                + (kinds == Kind.BOOK_CLEAR).sum())
    bands = np.asarray(bands_bps, np.float64)
    nb_ = len(bands)
    cap = max(1, min(chunk, len(at)))
    k = max(top_k, 1)
    kw = cap if (flags & WALK).any() else 1  # rows of the walk buffer
    rows = (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros((cap, nb_, 4)),
            np.zeros((cap, k), np.int64), np.zeros((cap, k), np.int64), np.zeros((cap, k), np.int64),
            np.zeros((cap, k), np.int64), np.zeros((cap, 2), np.int64), np.zeros((kw, 2, len(W_FIELDS)), np.int64))
    parts: list[list[np.ndarray]] = [[] for _ in rows]
    reduced: list[np.ndarray] = []
    tr_depth = np.zeros(n_tr, np.int64)
    add_t, add_q, add_side = np.zeros(n_set, np.int64), np.zeros(n_set, np.int64), np.zeros(n_set, np.int64)
    msg_t, msg_b, msg_a = np.zeros(n_msg, np.int64), np.zeros(n_msg), np.zeros(n_msg)
    buf = np.zeros(max(consume_levels, 1), np.int64), np.zeros(max(consume_levels, 1), np.int64)
    si = np.zeros(S_SIZE, np.int64)
    i = 0
    done = 0  # samples drained
    while True:
        status, i = tape_nb(events, t, i, *book.arrays, at, flags, bands, top_k, consume_levels, consume_bps,
                            pressure_bps, need, walk_want, walk_quote, si, *rows, tr_depth, add_t, add_q, add_side, msg_t,
                            msg_b, msg_a, *buf)
        if status == NEED_GROW:
            book.grow()
            continue
        r = int(si[S_ROWS])
        f = flags[done: done + r]
        lv = (f & LEVELS != 0) if top_k > 0 else np.ones(r, bool)  # top_k 0: empty rows of every sample
        lv_rows = [a[:r][lv] for a in rows[4:8]]
        if level_fn is not None:
            if lv.any():
                reduced.append(level_fn(rows[1][:r][lv], rows[2][:r][lv], *(a[:, :top_k] for a in lv_rows),
                                        rows[8][:r][lv]))
            lv_rows = [a[:0] for a in lv_rows]
        wk = f & WALK != 0
        for j, (p, a) in enumerate(zip(parts, rows, strict=True)):
            if 4 <= j < 8:
                p.append(lv_rows[j - 4])
            elif j == 9:
                p.append(a[:r][wk] if wk.any() else a[:0].copy())
            else:
                p.append(a[:r].copy())
        done += r
        si[S_ROWS] = 0
        if status == DONE:
            break
    cols = [np.concatenate(p) for p in parts]
    na, nm = int(si[S_ADDS]), int(si[S_MSGS])
    return Tape(t, cols[0], cols[1], cols[2], cols[3], cols[4][:, :top_k], cols[5][:, :top_k], cols[6][:, :top_k],
                cols[7][:, :top_k], cols[8], tr_depth, add_t[:na], add_q[:na], add_side[:na], msg_t[:nm], msg_b[:nm],
                msg_a[:nm], np.concatenate(reduced) if reduced else np.zeros((0, 0)), cols[9])
