"""Cost of trading: walking the visible book, Kyle's lambda, Amihud illiquidity, effective and
realized spreads.

Book walks run on integer ticks and lots (:func:`walk_nb`, numba); the windowed estimators are
numba or vectorised NumPy.  Plain-Python twin: :mod:`flowbook.features.reference_analytics`
(``ref_walk``, ``ref_kyle``, ``ref_amihud``, ``ref_spreads``).  Formulas, parameters and tests:
``docs/analytics.md`` (reference §C.2 and §A.5).  Linear instruments only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numba import njit

from ..book import L2Book, window_for
from ..book import readnb as rd
from ..events import Flag, Instrument, Kind

__all__ = [
    "IMPACT_BPS", "Walk", "BookCost", "walk_nb", "walk", "walk_units", "walk_record", "book_cost", "category", "cost_series", "mid_series",
    "interval_flow", "kyle_lambda", "amihud", "rolling_ols_nb", "Spreads", "trade_spreads", "mid_at",
]

# upper bounds (bps of the mid, exclusive) of the impact categories; beyond the last: "severe"
IMPACT_BPS: tuple[tuple[str, float], ...] = (("negligible", 1.0), ("low", 5.0), ("moderate", 20.0),
                                            ("high", 50.0))
_LIMIT = 2**62


@njit(cache=True)
def walk_nb(px, qty, m, want, by_quote):
    """Fill ``want`` lots (or ``want`` tick·lot notional units when ``by_quote``) from the levels
    ``px[:m]``/``qty[:m]`` (best first).  A quote walk takes the whole lots that fit in what is
    left.  Returns ``(lots, notional, levels_used, last_tick, remaining)``; ``remaining > 0`` with
    every level used means the visible book ran out.  Twin: ``ref_walk``."""
    lots = 0
    cost = 0
    used = 0
    last = 0
    rem = want
    for i in range(m):
        if rem <= 0:
            break
        f = min(rem // px[i], qty[i]) if by_quote else min(rem, qty[i])
        if f <= 0:
            break
        lots += f
        cost += f * px[i]
        used += 1
        last = px[i]
        rem -= f * px[i] if by_quote else f
    return lots, cost, used, last, rem


@functools.lru_cache(maxsize=256)  # called several times per book walk with the same tick or lot
def _scale(step: str) -> tuple[int, int]:
    d = Decimal(step).normalize()
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    den = 10 ** max(0, -exp)
    return int(d * den), den


@dataclass(frozen=True, slots=True)
class Walk:
    """One side of a book walk.  ``side`` +1 buys (walks the asks), −1 sells (walks the bids).

    Prices in quote currency, sizes in base units.  ``slippage_*_bps = s·(avg/ref − 1)·1e4`` and
    ``cost_vs_* = s·(avg − ref)·filled_qty`` (quote), so a cost is positive.  NaN when undefined.
    ``exhausted``: the visible book ran out before the size was filled.
    """

    side: int
    requested: float
    unit: str
    filled_qty: float
    filled_quote: float
    avg_price: float
    worst_price: float
    levels: int
    exhausted: bool
    slippage_mid_bps: float
    slippage_best_bps: float
    cost_vs_mid: float
    cost_vs_best: float
    category: str


def category(slippage_mid_bps: float, exhausted: bool,
             bounds: tuple[tuple[str, float], ...] = IMPACT_BPS) -> str:
    """Impact category: ``insufficient_depth`` when exhausted, ``unknown`` without a mid, else the
    first ``(name, bound)`` with ``|slippage| < bound``, else ``severe``.  (:func:`walk` gives
    ``none`` when the size is below one lot and nothing fills.)"""
    if exhausted:
        return "insufficient_depth"
    if math.isnan(slippage_mid_bps):
        return "unknown"
    for name, bound in bounds:
        if abs(slippage_mid_bps) < bound:
            return name
    return "severe"


def walk_units(size: float | str, unit: str, inst: Instrument) -> int:
    """``size`` in the whole units a walk fills: lots (``unit="base"``) or tick·lot notional units
    (``"quote"``), rounded down."""
    if inst.inverse:
        raise ValueError("book walks support linear instruments only")
    if unit not in ("base", "quote"):
        raise ValueError("unit must be 'base' or 'quote'; mid2 positive or None")
    tn, td = _scale(inst.tick_size)
    ln, ld = _scale(inst.lot_size)
    d_size = Decimal(str(size))
    if not d_size >= 0:
        raise ValueError("size must be >= 0")
    # base: lots = floor(size / lot); quote: notional units of tick·lot = floor(size / (tick·lot))
    want = int(d_size * ld // ln) if unit == "base" else int(d_size * td * ld // (tn * ln))
    if want >= _LIMIT:
        raise ValueError("size or book notional too large for int64 tick·lot arithmetic")
    return want


def walk(px: np.ndarray, qty: np.ndarray, side: int, size: float | str, unit: str, inst: Instrument,
         mid2: int | None = None, more: bool = False) -> Walk:
    """Walk the opposite-side levels ``px``/``qty`` (ticks, lots, best first) for ``size`` in
    ``unit`` ``"base"`` or ``"quote"``.  ``mid2`` is best bid + best ask in ticks (twice the mid;
    None on a one-sided book).  ``more`` says the arrays are a prefix of a deeper book: a walk that
    takes every level and still has size left then raises ``LookupError`` (read deeper and retry)."""
    if inst.inverse:
        raise ValueError("book walks support linear instruments only")
    if unit not in ("base", "quote") or (mid2 is not None and mid2 <= 0):
        raise ValueError("unit must be 'base' or 'quote'; mid2 positive or None")
    want = walk_units(size, unit, inst)
    m = len(px)
    if m and float(np.dot(px.astype(float), qty.astype(float))) >= _LIMIT:
        raise ValueError("size or book notional too large for int64 tick·lot arithmetic")
    lots, cost, used, last, rem = (int(v) for v in walk_nb(px, qty, m, want, unit == "quote"))
    if more and used == m and rem > 0:
        raise LookupError("more levels needed")
    return walk_record(side, float(Decimal(str(size))), unit, inst, want, lots, cost, used, last, rem, m,
                       int(px[m - 1]) if m else 0, int(px[0]) if m else 0, mid2)


def walk_record(side: int, requested: float, unit: str, inst: Instrument, want: int, lots: int, cost: int, used: int,
                last: int, rem: int, m: int, read_last: int, best: int, mid2: int | None) -> Walk:
    """The :class:`Walk` of a :func:`walk_nb` result ``(lots, cost, used, last, rem)`` over ``m`` levels
    (``read_last``: the tick of the last of them, ``best``: of the first) for ``want`` units."""
    tn, td = _scale(inst.tick_size)
    ln, ld = _scale(inst.lot_size)
    # quote walk runs out: every level taken and one more lot at the last price would still fit
    exhausted = rem > 0 if unit == "base" else want > 0 and used == m and (m == 0 or rem >= read_last)
    s = 1 if side > 0 else -1
    nan = math.nan
    # exact integer numerators, one correctly rounded division each
    has_mid = lots > 0 and mid2 is not None
    return Walk(
        side=s, requested=requested, unit=unit, filled_qty=lots * ln / ld,
        filled_quote=cost * tn * ln / (td * ld), avg_price=cost * tn / (lots * td) if lots else nan,
        worst_price=last * tn / td if lots else nan, levels=used, exhausted=bool(exhausted),
        slippage_mid_bps=s * (2 * cost - mid2 * lots) * 10_000 / (mid2 * lots) if has_mid else nan,
        slippage_best_bps=s * (cost - best * lots) * 10_000 / (best * lots) if lots else nan,
        cost_vs_mid=s * (2 * cost - mid2 * lots) * tn * ln / (2 * td * ld) if has_mid else nan,
        cost_vs_best=s * (cost - best * lots) * tn * ln / (td * ld) if lots else nan,
        category=category(s * (2 * cost - mid2 * lots) * 10_000 / (mid2 * lots) if has_mid else nan,
                          bool(exhausted)) if lots or exhausted else "none",
    )


@dataclass(frozen=True, slots=True)
class BookCost:
    """A walk of the same size on both sides of one book state; ``mid`` NaN on a one-sided book."""

    mid: float
    buy: Walk
    sell: Walk


def book_cost(book: L2Book, size: float | str, unit: str, inst: Instrument, first_levels: int = 256) -> BookCost:
    """Walk ``book`` for ``size`` on both sides; reads deeper (doubling) until filled or exhausted."""
    bb, ba = book.best_bid, book.best_ask
    mid2 = bb + ba if bb is not None and ba is not None else None
    tn, td = _scale(inst.tick_size)
    out = []
    for side in (1, -1):
        n = first_levels
        while True:
            px = np.empty(n, np.int64)
            q = np.empty(n, np.int64)
            m = rd.top_levels(*book.arrays, -side, n, px, q)
            try:
                out.append(walk(px[:m], q[:m], side, size, unit, inst, mid2, more=m == n))
                break
            except LookupError:
                n *= 4
    return BookCost(mid2 * tn / (2 * td) if mid2 is not None else math.nan, out[0], out[1])


def cost_series(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, size: float | str, unit: str,
                clock: str = "ts_local") -> list[BookCost | None]:
    """:func:`book_cost` at each sample time ``T`` on the book after the events with ``clock ≤ T``
    (one instrument, time order); ``None`` while the book is unsynced (after a ``BOOK_CLEAR``,
    before a ``SNAPSHOT_END``).  Twin: ``ref_cost_series``."""
    book = L2Book(window=window_for(events))
    clk = events[clock]
    kind = events["kind"]
    clear_at = np.flatnonzero(kind == Kind.BOOK_CLEAR)  # found once, not per sample
    snap_end_at = np.flatnonzero((kind == Kind.BOOK_SET) & (events["flags"] & Flag.SNAPSHOT_END != 0))
    out: list[BookCost | None] = []
    pos, synced = 0, False
    for end in np.searchsorted(clk, np.asarray(sample_ts, np.int64), side="right").tolist():
        if end > pos:
            c0, c1 = np.searchsorted(clear_at, (pos, end)).tolist()
            start = pos
            for c in clear_at[c0:c1].tolist():
                book.apply(events[start:c])
                book.clear()
                start = c + 1
            book.apply(events[start:end])
            s0, s1 = np.searchsorted(snap_end_at, (pos, end)).tolist()
            if s1 > s0 and (c1 == c0 or snap_end_at[s1 - 1] > clear_at[c1 - 1]):
                synced = True
            elif c1 > c0:
                synced = False
            pos = end
        out.append(book_cost(book, size, unit, inst) if synced else None)
    return out


def mid_series(events: np.ndarray, inst: Instrument) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_local, mid)`` after every synced depth message, from :class:`FeatureEngine` (event mode)."""
    from .engine import FEATURE_COLUMNS, FeatureEngine

    eng = FeatureEngine(inst)
    eng.process(events)
    eng.finish()
    f, i = eng.take()
    return i[:, 0].copy(), f[:, FEATURE_COLUMNS.index("mid")].copy()


# ---- Kyle's lambda, Amihud ---------------------------------------------------------------------
def mid_at(t: np.ndarray, mid_ts: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """The mid in force at each time of ``t``: the last ``mid`` with ``mid_ts ≤ t`` (NaN before any)."""
    j = np.searchsorted(mid_ts, t, side="right") - 1
    out = np.where(j >= 0, mid[np.maximum(j, 0)], np.nan)
    return out.astype(float)


@njit(cache=True)
def _flow_nb(ts, qty, side, price, grid, signed, vol, notional):
    j = 0
    n = grid.shape[0]
    for i in range(ts.shape[0]):
        while j < n and grid[j] < ts[i]:
            j += 1
        if j == 0 or j == n:  # before the first boundary or after the last: in no interval
            continue
        signed[j - 1] += side[i] * qty[i]
        vol[j - 1] += qty[i]
        notional[j - 1] += float(qty[i]) * float(price[i])


def interval_flow(ts: np.ndarray, qty: np.ndarray, side: np.ndarray, price: np.ndarray,
                  grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per interval ``(grid[k], grid[k+1]]``: signed lots ``Σ D·q``, lots ``Σ q`` and ``Σ q·p`` (tick·lots).
    Trades and grid in time order (``ValueError`` otherwise)."""
    if np.any(np.diff(ts) < 0) or np.any(np.diff(grid) <= 0):
        raise ValueError("trades must be in time order and the grid strictly increasing")
    k = max(len(grid) - 1, 0)
    signed, vol, notional = np.zeros(k, np.int64), np.zeros(k, np.int64), np.zeros(k)
    _flow_nb(np.asarray(ts, np.int64), np.asarray(qty, np.int64), np.asarray(side, np.int64),
             np.asarray(price, np.int64), np.asarray(grid, np.int64), signed, vol, notional)
    return signed, vol, notional


@njit(cache=True)
def rolling_ols_nb(x, y, w, lags, out):
    """Slope, intercept, R² and Newey–West t-statistic (Bartlett weights, ``lags``) of ``y`` on ``x``
    over each window ``[k − w + 1, k]``; NaN when the window has a NaN or ``x`` is constant; the
    t-statistic is NaN for a perfect fit (residual sum of squares ≤ 1e-12 × that of ``y``).
    Twin: ``ref_kyle``."""
    n = x.shape[0]
    out[:] = np.nan
    for k in range(w - 1, n):
        a = k - w + 1
        bad = False
        mx = 0.0
        my = 0.0
        for t in range(a, k + 1):
            if math.isnan(x[t]) or math.isnan(y[t]):
                bad = True
            mx += x[t]
            my += y[t]
        if bad:
            continue
        mx /= w
        my /= w
        sxx = 0.0
        sxy = 0.0
        syy = 0.0
        for t in range(a, k + 1):
            sxx += (x[t] - mx) ** 2
            sxy += (x[t] - mx) * (y[t] - my)
            syy += (y[t] - my) ** 2
        if sxx == 0.0:
            continue
        beta = sxy / sxx
        out[k, 0] = beta
        out[k, 1] = my - beta * mx
        out[k, 2] = sxy * sxy / (sxx * syy) if syy > 0 else np.nan
        ssr = 0.0
        for t in range(a, k + 1):
            ssr += (y[t] - my - beta * (x[t] - mx)) ** 2
        if ssr <= 1e-12 * syy:  # a perfect fit (or constant y): no standard error
            continue
        s = 0.0
        for lag in range(0, min(lags, w - 1) + 1):
            g = 0.0
            for t in range(a + lag, k + 1):
                u0 = (x[t] - mx) * (y[t] - my - beta * (x[t] - mx))
                u1 = (x[t - lag] - mx) * (y[t - lag] - my - beta * (x[t - lag] - mx))
                g += u0 * u1
            s += g if lag == 0 else 2.0 * (1.0 - lag / (lags + 1.0)) * g
        out[k, 3] = beta / math.sqrt(s / (sxx * sxx)) if s > 0 else np.nan


def kyle_lambda(dp: np.ndarray, q: np.ndarray, window: int, lags: int = 5,
                price: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Rolling Kyle's lambda: OLS of ``dp`` (price change per interval) on ``q`` (signed base volume)
    over the last ``window`` intervals.  Keys ``lambda``, ``alpha``, ``r2``, ``t_nw`` and, with
    ``price`` (the interval's reference price), ``bps_per_million``: ``λ·1e6·1e4/price²``."""
    x, y = np.asarray(q, float), np.asarray(dp, float)
    out = np.empty((len(x), 4))
    rolling_ols_nb(x, y, int(window), int(lags), out)
    res = {"lambda": out[:, 0], "alpha": out[:, 1], "r2": out[:, 2], "t_nw": out[:, 3]}
    if price is not None:
        res["bps_per_million"] = out[:, 0] * 1e10 / np.asarray(price, float) ** 2
    return res


def amihud(ret: np.ndarray, dvol: np.ndarray, window: int) -> np.ndarray:
    """Rolling Amihud illiquidity: mean of ``|ret|/dvol × 1e6`` over the intervals of the last
    ``window`` with ``dvol > 0`` and a finite return; NaN when there is none."""
    r, v = np.asarray(ret, float), np.asarray(dvol, float)
    ok = (v > 0) & np.isfinite(r)
    x = np.where(ok, np.abs(np.where(ok, r, 0.0)) / np.where(ok, v, 1.0) * 1e6, 0.0)
    cs = np.r_[0.0, np.cumsum(x)]
    cn = np.r_[0, np.cumsum(ok)]
    k = np.arange(len(r))
    lo = np.maximum(k + 1 - window, 0)
    num, cnt = cs[k + 1] - cs[lo], cn[k + 1] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((cnt > 0) & (k >= window - 1), num / np.maximum(cnt, 1), np.nan)
    return out


# ---- effective and realized spreads --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Spreads:
    """Per-trade spreads in price units (``es = 2D(P − M_t)``, ``rs = 2D(P − M_{t+Δ})``,
    ``pi = 2D(M_{t+Δ} − M_t)``) and in bps of ``M_t``; NaN where undefined.  Means are
    quantity-weighted over the trades where the value is defined."""

    es: np.ndarray
    rs: np.ndarray
    pi: np.ndarray
    es_bps: np.ndarray
    rs_bps: np.ndarray
    pi_bps: np.ndarray
    mean_es_bps: float
    mean_rs_bps: float
    mean_pi_bps: float


def trade_spreads(ts: np.ndarray, price: np.ndarray, qty: np.ndarray, side: np.ndarray, mid_ts: np.ndarray,
                  mid: np.ndarray, horizon_ns: int) -> Spreads:
    """Effective and realized spread and price impact of each trade (prices and mids in one unit).

    ``M_t``: mid in force at the trade time (last mid with ``mid_ts ≤ t``; ``mid_ts`` in time order).  ``M_{t+Δ}``: the same
    at ``t + horizon_ns``, NaN when that lies after the last mid time.  Side-0 trades: NaN.
    """
    t = np.asarray(ts, np.int64)
    p, q, d = np.asarray(price, float), np.asarray(qty, float), np.asarray(side, float)
    m0 = mid_at(t, mid_ts, mid)
    m1 = mid_at(t + horizon_ns, mid_ts, mid)
    if len(mid_ts):
        m1[t + horizon_ns > mid_ts[-1]] = np.nan
    d = np.where(d == 0, np.nan, d)
    es, rs, pi = 2 * d * (p - m0), 2 * d * (p - m1), 2 * d * (m1 - m0)

    def wmean(v: np.ndarray) -> float:
        ok = np.isfinite(v)
        return float((v[ok] * q[ok]).sum() / q[ok].sum()) if q[ok].sum() > 0 else math.nan

    with np.errstate(invalid="ignore", divide="ignore"):
        es_b, rs_b, pi_b = es / m0 * 1e4, rs / m0 * 1e4, pi / m0 * 1e4
    return Spreads(es, rs, pi, es_b, rs_b, pi_b, wmean(es_b), wmean(rs_b), wmean(pi_b))
