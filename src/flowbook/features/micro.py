"""Microstructure features at sample times: VWAP deviation, depth imbalance classes, buy pressure,
aggressive/passive ratio, trade-size distribution, order-flow intensity, liquidity consumption.

One compiled pass (:func:`tape_nb`, numba) replays one instrument's book and records what the
features need: the book at each sample time (touch, depth within bands of the mid, optionally the
best levels), for each trade the resting depth on the side it hit, for each level set the lots
added at or inside the touch, and after each depth message the depth within a band.  Windowed sums
over trades and additions are then prefix sums looked up with ``searchsorted``.  The tape is shared
with :mod:`flowbook.features.liquidity`.

Time is the chosen clock made non-decreasing (running maximum in stream order), so a value at
sample time ``T`` sees exactly the events that arrived before the first event later than ``T``.
Plain-Python twin: :mod:`flowbook.features.reference_micro`.  Docs: ``docs/analytics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
from numba import njit

from ..book import L2Book, window_for
from ..book import nb as bk
from ..book import readnb as rd
from ..events import Flag, Instrument, Kind

__all__ = ["MICRO_COLUMNS", "MicroConfig", "Tape", "book_tape", "tape_nb", "micro_series", "catalog_columns",
           "effective_clock", "window_sums", "band_limits", "quote_per_lot", "classify_imbalance"]

NS = 1_000_000_000
NS_HOUR = 3600 * NS
NS_DAY = 24 * NS_HOUR
DONE, NEED_GROW, NEED_OUT = 0, 2, 3
# tape state slots
S_SYNC, S_NEXT, S_ROWS, S_TRADES, S_ADDS, S_MSGS, S_SIZE = range(7)


# ---- the tape kernel ----------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def band_limits(bb, ba, bps):
    """Bid and ask limit ticks of the band of ``bps`` around the mid (the core features' rule)."""
    m = (bb + ba) / 2.0
    return math.ceil(m * (1.0 - bps * 1e-4) - 1e-9), math.floor(m * (1.0 + bps * 1e-4) + 1e-9)


@njit(cache=True)
def _sample(st, lb, la, hkb, hvb, hka, hva, si, bands, top_k, r, o_sync, o_bb, o_ba, o_band, o_bpx, o_bq,
            o_apx, o_aq, o_nlv):
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
    if top_k > 0:
        o_nlv[r, 0] = rd.top_levels(st, lb, la, hkb, hvb, hka, hva, 1, top_k, o_bpx[r], o_bq[r])
        o_nlv[r, 1] = rd.top_levels(st, lb, la, hkb, hvb, hka, hva, -1, top_k, o_apx[r], o_aq[r])


@njit(cache=True)
def tape_nb(ev, clk, i, st, lb, la, hkb, hvb, hka, hva, sample_ts, bands, top_k, c_levels, c_bps, p_bps, si,
            o_sync, o_bb, o_ba, o_band, o_bpx, o_bq, o_apx, o_aq, o_nlv, tr_depth, add_t, add_q, add_side,
            msg_t, msg_b, msg_a, buf_px, buf_q):
    """Replay ``ev[i:]`` (clock ``clk``, non-decreasing) into the book and record the tape.

    Samples: before the first event later than ``sample_ts[s]``, one row ``r`` of the ``o_*``
    arrays: synced flag, best bid/ask ticks, per band ``j`` (``bands`` in bps of the mid) bid lots,
    ask lots, bid Σ lots·ticks, ask Σ lots·ticks (NaN unless synced and two-sided), and the best
    ``top_k`` levels per side.  Trades (``k``-th ``TRADE``): ``tr_depth[k]`` = lots on the hit side
    within its best ``c_levels`` levels and ``c_bps`` of its best price; −1 when not synced, the hit
    side is empty or the trade has no aggressor side.  Additions: a ``BOOK_SET`` (synced, not part
    of a snapshot) that raises a level at or inside its side's touch, before the set, records
    ``(time, lots added, side)``.  Messages: after each synced depth message, bid and ask lots
    within ``p_bps`` of the mid (NaN when one-sided); a ``BOOK_CLEAR`` records NaN.
    Returns ``(status, i)``: ``NEED_GROW`` (grow the book, call again at ``i``), ``NEED_OUT`` (the
    sample rows are full: drain, reset ``si[S_ROWS]``, call again) or ``DONE``.
    Twin: ``reference_micro.ref_replay``.
    """
    n = ev.shape[0]
    ns = sample_ts.shape[0]
    cap = o_sync.shape[0]
    while True:
        tnow = clk[i] if i < n else np.iinfo(np.int64).max
        while si[S_NEXT] < ns and sample_ts[si[S_NEXT]] < tnow:
            if si[S_ROWS] >= cap:
                return NEED_OUT, i
            _sample(st, lb, la, hkb, hvb, hka, hva, si, bands, top_k, si[S_ROWS], o_sync, o_bb, o_ba, o_band,
                    o_bpx, o_bq, o_apx, o_aq, o_nlv)
            si[S_NEXT] += 1
            si[S_ROWS] += 1
        if i >= n:
            return DONE, i
        e = ev[i]
        kind = e["kind"]
        if kind == 1:
            side, p, q, flags = e["side"], e["price"], e["qty"], e["flags"]
            if side != 0:
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
            if flags & 4:
                si[S_SYNC] = 1
            if flags & 8:
                if bk.maybe_recenter(st, lb, la, hkb, hvb, hka, hva) != bk.OK:
                    return NEED_GROW, i
                if si[S_SYNC] != 0:
                    k = si[S_MSGS]
                    msg_t[k], msg_b[k], msg_a[k] = clk[i], np.nan, np.nan
                    bb, ba = st[bk.ST_BEST_BID], st[bk.ST_BEST_ASK]
                    if bb != bk.NO_BID and ba != bk.NO_ASK:
                        lo, hi = band_limits(bb, ba, p_bps)
                        msg_b[k] = rd.band_depth(st, lb, la, hkb, hvb, hka, hva, 1, lo)[0]
                        msg_a[k] = rd.band_depth(st, lb, la, hkb, hvb, hka, hva, -1, hi)[0]
                    si[S_MSGS] = k + 1
        elif kind == 2:
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
                    lim = math.ceil(b0 * (1.0 - c_bps * 1e-4) - 1e-9) if hit > 0 else \
                        math.floor(b0 * (1.0 + c_bps * 1e-4) + 1e-9)
                    d = 0
                    for j in range(m):
                        if (buf_px[j] >= lim) if hit > 0 else (buf_px[j] <= lim):
                            d += buf_q[j]
                    tr_depth[k] = d
            si[S_TRADES] = k + 1
        i += 1


# ---- the tape, in Python --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tape:
    """What :func:`tape_nb` recorded (see there).  Ticks and lots; ``bb``/``ba`` use the book's
    ``NO_BID``/``NO_ASK`` sentinels; ``band[s, j]`` = bid lots, ask lots, bid and ask Σ lots·ticks."""

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


LevelFn = Callable[..., np.ndarray]


def effective_clock(events: np.ndarray, clock: str) -> np.ndarray:
    """The clock field made non-decreasing: the running maximum in stream order."""
    if clock not in ("ts_local", "ts_exchange"):
        raise ValueError("clock must be 'ts_local' or 'ts_exchange'")
    c = events[clock].astype(np.int64)
    return np.maximum.accumulate(c) if len(c) else c


def book_tape(events: np.ndarray, sample_ts: np.ndarray, clock: str = "ts_local", bands_bps: tuple[float, ...] = (),
              top_k: int = 0, consume_levels: int = 10, consume_bps: float = 10.0, pressure_bps: float = 10.0,
              level_fn: LevelFn | None = None, chunk: int = 4096) -> Tape:
    """Run :func:`tape_nb` over one instrument's events (arrival order) and the sample times.

    With ``level_fn``, the best levels of each chunk of samples go to ``level_fn(bb, ba, bpx, bq, apx,
    aq, nlv)`` and only its 2-D float result is kept (``Tape.levels``), so memory stays bounded."""
    t = effective_clock(events, clock)
    s_ts = np.asarray(sample_ts, np.int64)
    if np.any(np.diff(s_ts) < 0):
        raise ValueError("sample times must be in time order")
    book = L2Book(window=window_for(events))
    kinds = events["kind"]
    n_tr = int((kinds == Kind.TRADE).sum())
    n_set = int((kinds == Kind.BOOK_SET).sum())
    n_msg = int(((kinds == Kind.BOOK_SET) & (events["flags"] & Flag.END_OF_MESSAGE != 0)).sum()
                + (kinds == Kind.BOOK_CLEAR).sum())
    bands = np.asarray(bands_bps, np.float64)
    nb_ = len(bands)
    cap = max(1, min(chunk, len(s_ts)))
    k = max(top_k, 1)
    rows = (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros((cap, nb_, 4)),
            np.zeros((cap, k), np.int64), np.zeros((cap, k), np.int64), np.zeros((cap, k), np.int64),
            np.zeros((cap, k), np.int64), np.zeros((cap, 2), np.int64))
    parts: list[list[np.ndarray]] = [[] for _ in rows]
    reduced: list[np.ndarray] = []
    tr_depth = np.zeros(n_tr, np.int64)
    add_t, add_q, add_side = np.zeros(n_set, np.int64), np.zeros(n_set, np.int64), np.zeros(n_set, np.int64)
    msg_t, msg_b, msg_a = np.zeros(n_msg, np.int64), np.zeros(n_msg), np.zeros(n_msg)
    buf = np.zeros(max(consume_levels, 1), np.int64), np.zeros(max(consume_levels, 1), np.int64)
    si = np.zeros(S_SIZE, np.int64)
    i = 0
    while True:
        status, i = tape_nb(events, t, i, *book.arrays, s_ts, bands, top_k, consume_levels, consume_bps,
                            pressure_bps, si, *rows, tr_depth, add_t, add_q, add_side, msg_t, msg_b, msg_a, *buf)
        if status == NEED_GROW:
            book.grow()
            continue
        r = int(si[S_ROWS])
        if level_fn is not None:
            reduced.append(level_fn(rows[1][:r], rows[2][:r], *(a[:r, :top_k] for a in rows[4:8]), rows[8][:r]))
        for j, (p, a) in enumerate(zip(parts, rows, strict=True)):
            p.append(a[:r].copy() if level_fn is None or j < 4 or j == 8 else a[:0])
        si[S_ROWS] = 0
        if status == DONE:
            break
    cols = [np.concatenate(p) for p in parts]
    na, nm = int(si[S_ADDS]), int(si[S_MSGS])
    return Tape(t, cols[0], cols[1], cols[2], cols[3], cols[4][:, :top_k], cols[5][:, :top_k], cols[6][:, :top_k],
                cols[7][:, :top_k], cols[8], tr_depth, add_t[:na], add_q[:na], add_side[:na], msg_t[:nm], msg_b[:nm],
                msg_a[:nm], np.concatenate(reduced) if reduced else np.zeros((0, 0)))


# ---- helpers -------------------------------------------------------------------------------------
def window_sums(t: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``Σ x[k]`` over ``lo < t[k] ≤ hi`` for each pair (``t`` non-decreasing), via prefix sums."""
    return sums_between(x, np.searchsorted(t, lo, side="right"), np.searchsorted(t, hi, side="right"))


def sums_between(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Σ x[a:b]`` for each pair of indices (the searchsorted bounds of :func:`window_sums`, found once
    when many series share one window)."""
    cs = np.concatenate([np.zeros(1, x.dtype), np.cumsum(x)])
    return cs[b] - cs[a]


def quote_per_lot(inst: Instrument) -> tuple[float, float]:
    """``(a, b)`` with a trade's quote notional ``= lots·(a·ticks + b)``: linear ``a = tick·lot``,
    inverse ``b = lot·multiplier`` (contracts × quote value per contract)."""
    lot = inst.lot
    if inst.inverse:
        return 0.0, lot * inst.multiplier
    return float(Decimal(inst.tick_size) * Decimal(inst.lot_size)), 0.0


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)


# ---- microstructure features ----------------------------------------------------------------------
MICRO_COLUMNS: tuple[str, ...] = (
    "micro_mid", "micro_vwap_session", "micro_vwap_rolling", "micro_vwap_dev_session_bps",
    "micro_vwap_dev_rolling_bps", "micro_imbalance", "micro_imbalance_class", "micro_buy_pressure",
    "micro_aggressive_volume", "micro_passive_volume", "micro_aggr_passive_ratio",
    "micro_size_share_0", "micro_size_share_1", "micro_size_share_2", "micro_size_share_3", "micro_size_share_4",
    "micro_institutional_share", "micro_trades_per_s", "micro_quote_per_s", "micro_trades_ratio",
    "micro_quote_ratio", "micro_consumption_buy", "micro_consumption_sell",
)


@dataclass(frozen=True, slots=True)
class MicroConfig:
    """Parameters of :func:`micro_series` (defaults and meaning: ``docs/analytics.md``)."""

    session_hour_utc: float = 0.0  # session VWAP resets daily at this UTC hour
    vwap_window_ns: int = 300 * NS  # rolling VWAP
    imbalance_bps: float = 10.0  # depth band around the mid for the imbalance
    weak_imbalance: float = 1 / 3  # |I| ≤ weak: neutral (Cartea–Donnelly–Jaimungal's middle bucket)
    strong_imbalance: float = 2 / 3  # weak < |I| ≤ strong: weak; above: strong
    flow_window_ns: int = 60 * NS  # buy pressure, aggressive/passive, sizes, consumption
    size_edges_quote: tuple[float, float, float, float] = (1e3, 1e4, 1e5, 1e6)
    institutional_quote: float = 1e5
    intensity_window_ns: int = 10 * NS
    baseline_window_ns: int = 300 * NS
    consume_levels: int = 10
    consume_bps: float = 10.0

    def __post_init__(self) -> None:
        if min(self.vwap_window_ns, self.flow_window_ns, self.intensity_window_ns, self.baseline_window_ns) <= 0:
            raise ValueError("windows must be positive")
        if not 0 <= self.weak_imbalance <= self.strong_imbalance <= 1:
            raise ValueError("need 0 <= weak_imbalance <= strong_imbalance <= 1")
        e = self.size_edges_quote
        if len(e) != 4 or any(b <= a for a, b in zip(e, e[1:], strict=False)) or e[0] <= 0:
            raise ValueError("size_edges_quote: four increasing positive edges")
        if self.consume_levels < 1 or self.consume_bps < 0 or self.imbalance_bps <= 0 or not 0 <= self.session_hour_utc < 24:
            raise ValueError("consume_levels >= 1, consume_bps >= 0, imbalance_bps > 0, session_hour_utc in [0, 24)")


def classify_imbalance(imb: np.ndarray, weak: float, strong: float) -> np.ndarray:
    """+2 strong bid, +1 weak bid, 0 neutral, −1 weak ask, −2 strong ask; NaN stays NaN."""
    a = np.abs(imb)
    c = np.where(a > strong, 2.0, np.where(a > weak, 1.0, 0.0)) * np.sign(imb)
    return np.where(np.isnan(imb), np.nan, c + 0.0)


def micro_series(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, cfg: MicroConfig | None = None,
                 clock: str = "ts_local") -> dict[str, np.ndarray]:
    """Every :data:`MICRO_COLUMNS` column at each sample time, for one instrument's events."""
    cfg = cfg or MicroConfig()
    T = np.asarray(sample_ts, np.int64)
    tape = book_tape(events, T, clock, (cfg.imbalance_bps,), 0, cfg.consume_levels, cfg.consume_bps)
    px = inst.tick
    lot = inst.lot
    qa, qb = quote_per_lot(inst)
    # book at the samples
    two = (tape.synced != 0) & (tape.bb != bk.NO_BID) & (tape.ba != bk.NO_ASK)
    mid_t = np.where(two, (tape.bb + tape.ba) / 2.0, np.nan)
    bid, ask = tape.band[:, 0, 0], tape.band[:, 0, 1]
    imb = _ratio(bid - ask, bid + ask)
    # trades
    tm = events["kind"] == Kind.TRADE
    tt = tape.t[tm]
    p, q, side = events["price"][tm].astype(np.int64), events["qty"][tm].astype(np.int64), events["side"][tm]
    quote = q * (qa * p + qb)
    day_off = round(cfg.session_hour_utc * NS_HOUR)
    sess_lo = (T - day_off) // NS_DAY * NS_DAY + day_off - 1  # the session holds (sess_lo, T]
    pq = (p * q).astype(np.float64)
    # each window's searchsorted bounds once: (lo, T] of the trades' clock
    end = np.searchsorted(tt, T, side="right")
    w_s, w_l = cfg.intensity_window_ns, cfg.baseline_window_ns
    a_sess, a_vw, a_fw, a_s, a_l = (np.searchsorted(tt, lo, side="right") for lo in (
        sess_lo, T - cfg.vwap_window_ns, T - cfg.flow_window_ns, T - w_s, T - w_l))

    def win(x: np.ndarray, a: np.ndarray) -> np.ndarray:
        return sums_between(x, a, end)

    vwap_s = _ratio(win(pq, a_sess), win(q, a_sess).astype(np.float64))
    vwap_r = _ratio(win(pq, a_vw), win(q, a_vw).astype(np.float64))
    fw = T - cfg.flow_window_ns
    buy = win(np.where(side > 0, q, 0), a_fw)
    sell = win(np.where(side < 0, q, 0), a_fw)
    aggr = win(q, a_fw)
    passive = window_sums(tape.add_t, tape.add_q, fw, T)
    qsum = win(quote, a_fw)
    # size classes compare whole quote units exactly: quote ≥ edge ⟺ units ≥ ⌈edge / unit⌉
    units, unit = (q, Fraction(Decimal(inst.lot_size)) * Fraction(inst.multiplier)) if inst.inverse else \
        (p * q, Fraction(Decimal(inst.tick_size) * Decimal(inst.lot_size)))
    edges = np.array([math.ceil(Fraction(e) / unit) for e in cfg.size_edges_quote], np.int64)
    bucket = np.searchsorted(edges, units, side="right")
    shares = [_ratio(win(np.where(bucket == b, quote, 0.0), a_fw), qsum) for b in range(5)]
    big = units >= math.ceil(Fraction(cfg.institutional_quote) / unit)
    inst_share = _ratio(win(np.where(big, quote, 0.0), a_fw), qsum)
    depth = tape.trade_depth
    share = np.where(depth > 0, q / np.where(depth > 0, depth, 1), 0.0)
    cons_b = win(np.where(side > 0, share, 0.0), a_fw)
    cons_s = win(np.where(side < 0, share, 0.0), a_fw)
    # intensity: full-window rates, NaN until the input covers the window
    t0 = tape.t[0] if len(tape.t) else 0
    ones = np.ones(len(tt), np.int64)
    n_s = win(ones, a_s) / (w_s / NS)
    v_s = win(quote, a_s) / (w_s / NS)
    n_l = win(ones, a_l) / (w_l / NS)
    v_l = win(quote, a_l) / (w_l / NS)
    ok_s = (T - t0 >= w_s) if len(tape.t) else np.zeros(len(T), bool)
    ok_l = (T - t0 >= w_l) if len(tape.t) else np.zeros(len(T), bool)
    out = {
        "micro_mid": mid_t * px,
        "micro_vwap_session": vwap_s * px,
        "micro_vwap_rolling": vwap_r * px,
        "micro_vwap_dev_session_bps": (mid_t / vwap_s - 1.0) * 1e4,
        "micro_vwap_dev_rolling_bps": (mid_t / vwap_r - 1.0) * 1e4,
        "micro_imbalance": imb,
        "micro_imbalance_class": classify_imbalance(imb, cfg.weak_imbalance, cfg.strong_imbalance),
        "micro_buy_pressure": _ratio(buy.astype(float), (buy + sell).astype(float)),
        "micro_aggressive_volume": aggr * lot,
        "micro_passive_volume": passive * lot,
        "micro_aggr_passive_ratio": _ratio(aggr.astype(float), passive.astype(float)),
        **{f"micro_size_share_{b}": shares[b] for b in range(5)},
        "micro_institutional_share": inst_share,
        "micro_trades_per_s": np.where(ok_s, n_s, np.nan),
        "micro_quote_per_s": np.where(ok_s, v_s, np.nan),
        "micro_trades_ratio": np.where(ok_l & ok_s, _ratio(n_s, n_l), np.nan),
        "micro_quote_ratio": np.where(ok_l & ok_s, _ratio(v_s, v_l), np.nan),
        "micro_consumption_buy": cons_b,
        "micro_consumption_sell": cons_s,
    }
    assert tuple(out) == MICRO_COLUMNS
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def catalog_columns(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str = "ts_local",
                    cfg: object | None = None) -> dict[str, np.ndarray]:
    """The ``micro`` group of the feature catalog: :func:`micro_series` with default parameters."""
    return micro_series(events, inst, sample_ts, MicroConfig(), clock)
