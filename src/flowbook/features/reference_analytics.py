"""Plain-Python reference twins of the analytics kernels (volume profile, cost of trading, VPIN).

Slow and obvious on purpose: dicts and lists, Python integers and :class:`fractions.Fraction`,
every quantity recomputed from scratch for every sample, each rule written the way
``docs/analytics.md`` states it.  ``tests/test_profile.py``, ``tests/test_impact.py`` and
``tests/test_vpin.py`` require the fast paths (:mod:`.profile`, :mod:`.impact`, :mod:`.vpin`) to
agree with these functions on hypothesis-generated inputs and on the real captures.
"""

from __future__ import annotations

import math
import statistics
from decimal import Decimal
from fractions import Fraction

import numpy as np

from ..book import ReferenceBook
from ..events import Flag, Instrument, Kind

__all__ = [
    "ref_tick_lots", "ref_profile", "ref_levels", "ref_session_ids", "ref_profile_series", "ref_nodes",
    "ref_naked_pocs", "ref_walk", "ref_book_cost", "ref_cost_series", "ref_flow", "ref_kyle", "ref_amihud", "ref_spreads",
    "ref_vpin",
]

NS_DAY = 86_400 * 10**9
Item = tuple[int, int, int, int, int, int]  # ts, open, high, low, close, lots


# ---- volume profile (reference §A.6) --------------------------------------------------------------
def ref_tick_lots(low: int, high: int, lots: int) -> dict[int, int]:
    """A candle's lots per tick: ``lots // n`` each, plus one for each tick ``j`` (0 = low) where
    ``floor((j+1)·r/n) > floor(j·r/n)``, ``r = lots % n``."""
    n = high - low + 1
    q, r = divmod(lots, n)
    return {low + j: q + ((j + 1) * r // n - j * r // n) for j in range(n)}


def ref_profile(items: list[Item], bin_ticks: int) -> dict[int, int]:
    """Row -> lots (rows ``tick // bin_ticks``)."""
    rows: dict[int, int] = {}
    for _, _, high, low, _, lots in items:
        for tick, q in ref_tick_lots(low, high, lots).items():
            rows[tick // bin_ticks] = rows.get(tick // bin_ticks, 0) + q
    return rows


def ref_levels(rows: dict[int, int], pct: float = 0.70, va_rows: int = 2,
               tie: str = "upper") -> tuple[int, int, int, int, int] | None:
    """``(poc, val, vah, va_lots, total)`` rows, or None when nothing traded (reference §A.6)."""
    traded = [r for r, v in rows.items() if v > 0]
    if not traded:
        return None
    first, last = min(traded), max(traded)
    vol = {r: rows.get(r, 0) for r in range(first, last + 1)}
    total = sum(vol.values())
    middle = Fraction(first + last, 2)
    # POC: most lots; ties -> nearest the middle of the traded range, then the lower row
    poc = min(vol, key=lambda r: (-vol[r], abs(r - middle), r))
    target = Fraction(round(pct * 10_000), 10_000) * total
    lo = hi = poc
    acc = vol[poc]
    while acc < target:
        above = [r for r in range(hi + 1, hi + 1 + va_rows) if r <= last]
        below = [r for r in range(lo - va_rows, lo) if r >= first]
        if not above and not below:
            break
        up, dn = sum(vol[r] for r in above), sum(vol[r] for r in below)
        take_up = not below or (above and (up > dn or (up == dn and tie == "upper")))
        if take_up:
            hi = max(above)
            acc += up
        else:
            lo = min(below)
            acc += dn
    return poc, lo, hi, acc, total


def ref_session_ids(items: list[Item], hour_utc: float = 0.0, gap_ticks: int = 0) -> list[int]:
    """New session when the UTC day starting at ``hour_utc`` changes or |open − previous close| > gap."""
    off = round(hour_utc * 3_600 * 10**9)
    out: list[int] = []
    for i, (ts, op, _, _, _, _) in enumerate(items):
        day = (ts - off) // NS_DAY
        if i == 0:
            out.append(0)
            continue
        prev = items[i - 1]
        new = day != (prev[0] - off) // NS_DAY or (gap_ticks > 0 and abs(op - prev[4]) > gap_ticks)
        out.append(out[-1] + 1 if new else out[-1])
    return out


def ref_profile_series(items: list[Item], sample_ts: list[int], bin_ticks: int, pct: float = 0.70,
                       va_rows: int = 2, tie: str = "upper", hour_utc: float = 0.0, gap_ticks: int = 0,
                       window_ns: int = 0) -> list[tuple[int | None, int | None, int | None, int, int, float]]:
    """Per sample ``T``: ``(poc, val, vah, va_lots, total, vwap_ticks)`` of the items with ts ≤ T in
    the current session (same day as T) or, with ``window_ns``, with ``T − window_ns < ts ≤ T``."""
    sess = ref_session_ids(items, hour_utc, gap_ticks)
    off = round(hour_utc * 3_600 * 10**9)
    out = []
    for t in sample_ts:
        seen = [i for i, it in enumerate(items) if it[0] <= t]
        if window_ns:
            chosen = [items[i] for i in seen if items[i][0] > t - window_ns]
        elif seen and (items[seen[-1]][0] - off) // NS_DAY == (t - off) // NS_DAY:
            chosen = [items[i] for i in seen if sess[i] == sess[seen[-1]]]
        else:
            chosen = []
        lv = ref_levels(ref_profile(chosen, bin_ticks), pct, va_rows, tie)
        lots = sum(it[5] for it in chosen)
        vwap = float(Fraction(sum((it[2] + it[3]) * it[5] for it in chosen), 2 * lots)) if lots else math.nan
        if lv is None:
            out.append((None, None, None, 0, 0, vwap))
        else:
            out.append((*lv, vwap))
    return out


def _runs(s: list[int], maxima: bool) -> list[int]:
    """Middle index of each run of equal values whose two neighbours (0 outside) are lower/higher."""
    out, i, n = [], 0, len(s)
    while i < n:
        e = i
        while e + 1 < n and s[e + 1] == s[i]:
            e += 1
        left = s[i - 1] if i > 0 else 0
        right = s[e + 1] if e + 1 < n else 0
        if (left < s[i] > right) if maxima else (left > s[i] < right):
            out.append((i + e) // 2)
        i = e + 1
    return out


def ref_nodes(rows: dict[int, int], smooth_rows: int = 3, hvn_pct: float = 0.80,
              lvn_pct: float = 0.20) -> tuple[list[int], list[int], int, int]:
    """``(hvn rows, lvn rows, hvn threshold, lvn threshold)`` on the smoothed traded range."""
    traded = [r for r, v in rows.items() if v > 0]
    if not traded:
        return [], [], 0, 0
    first, last = min(traded), max(traded)
    vol = [rows.get(r, 0) for r in range(first, last + 1)]
    h = smooth_rows // 2
    s = [sum(vol[max(0, i - h): i + h + 1]) for i in range(len(vol))]
    srt = sorted(s)

    def nearest_rank(p: float) -> int:  # value at rank ceil(p·n), at least rank 1
        return srt[max(1, math.ceil(Fraction(round(p * 10_000), 10_000) * len(s))) - 1]

    hi_t, lo_t = nearest_rank(hvn_pct), nearest_rank(lvn_pct)
    hvn = [first + i for i in _runs(s, True) if s[i] >= hi_t]
    lvn = [first + i for i in _runs(s, False) if s[i] <= lo_t]
    return hvn, lvn, hi_t, lo_t


def ref_naked_pocs(items: list[Item], bin_ticks: int, hour_utc: float = 0.0, gap_ticks: int = 0,
                   pct: float = 0.70, va_rows: int = 2, tie: str = "upper") -> list[tuple[int, int]]:
    """``(session, poc row)`` of finished sessions whose POC row no later item traded in."""
    sess = ref_session_ids(items, hour_utc, gap_ticks)
    out = []
    for s in range(sess[-1] if sess else 0):
        mine = [it for it, si in zip(items, sess, strict=True) if si == s]
        later = [it for it, si in zip(items, sess, strict=True) if si > s]
        lv = ref_levels(ref_profile(mine, bin_ticks), pct, va_rows, tie)
        if lv is None:
            continue
        if not any(it[3] // bin_ticks <= lv[0] <= it[2] // bin_ticks for it in later):
            out.append((s, lv[0]))
    return out


# ---- walking the book (reference §C.2) ------------------------------------------------------------
def ref_walk(levels: list[tuple[int, int]], side: int, size: str, unit: str, inst: Instrument,
             mid_ticks: Fraction | None) -> dict[str, object]:
    """Walk ``levels`` (ticks, lots; best first) in exact decimals.  Sizes: whole lots; a quote
    walk stops at the first level where not even one lot fits in what is left."""
    tick, lot = Decimal(inst.tick_size), Decimal(inst.lot_size)
    want = Decimal(size)
    rem = want
    filled, cost, used, last = 0, Decimal(0), 0, None
    for px, q in levels:
        price = px * tick
        take = min(int(rem // lot), q) if unit == "base" else min(int(rem // (price * lot)), q)
        if take <= 0:
            break
        filled += take
        cost += take * lot * price
        used += 1
        last = px
        rem -= take * lot if unit == "base" else take * lot * price
    if unit == "base":
        exhausted = int(rem // lot) > 0
    else:
        exhausted = want >= tick * lot and used == len(levels) and (
            not levels or rem >= levels[-1][0] * tick * lot)
    s = 1 if side > 0 else -1
    res: dict[str, object] = {"filled_lots": filled, "levels": used, "exhausted": exhausted, "last": last}
    if filled:
        avg = cost / (filled * lot)
        best = levels[0][0] * tick
        res["avg"] = avg
        res["slip_best_bps"] = s * (avg / best - 1) * 10_000
        res["cost_vs_best"] = s * (avg - best) * filled * lot
        if mid_ticks is not None:
            mid = Decimal(mid_ticks.numerator) / Decimal(mid_ticks.denominator) * tick
            res["slip_mid_bps"] = s * (avg / mid - 1) * 10_000
            res["cost_vs_mid"] = s * (avg - mid) * filled * lot
    return res


def ref_book_cost(book: ReferenceBook, size: str, unit: str, inst: Instrument) -> dict[int, dict[str, object]]:
    """Both sides of ``book``: +1 buys walk the asks, −1 sells walk the bids."""
    bb, ba = book.best_bid, book.best_ask
    mid = Fraction(bb + ba, 2) if bb is not None and ba is not None else None
    return {side: ref_walk(book.levels(-side, len(book)), side, size, unit, inst, mid) for side in (1, -1)}


def ref_cost_series(events: np.ndarray, inst: Instrument, sample_ts: list[int], size: str, unit: str,
                    clock: str = "ts_local") -> list[dict[int, dict[str, object]] | None]:
    """:func:`ref_book_cost` on the dict book after the events with clock ≤ T; None while unsynced."""
    rows = events[["kind", "side", "flags", clock, "price", "qty"]].tolist()
    book, synced, i, out = ReferenceBook(), False, 0, []
    for t in sample_ts:
        while i < len(rows) and rows[i][3] <= t:
            kind, side, flags, _, price, qty = rows[i]
            if kind == Kind.BOOK_CLEAR:
                book.clear()
                synced = False
            elif kind == Kind.BOOK_SET:
                if side:
                    book.set(side, price, qty)
                synced = synced or bool(flags & Flag.SNAPSHOT_END)
            i += 1
        out.append(ref_book_cost(book, size, unit, inst) if synced else None)
    return out


# ---- Kyle, Amihud, spreads (reference §A.5) ----------------------------------------------------------
def ref_flow(trades: list[tuple[int, int, int, int]], grid: list[int]) -> list[tuple[int, int, int]]:
    """Per interval ``(grid[k], grid[k+1]]``: (Σ side·lots, Σ lots, Σ lots·ticks) of (ts, price, lots, side)."""
    out = []
    for a, b in zip(grid[:-1], grid[1:], strict=True):
        inside = [t for t in trades if a < t[0] <= b]
        out.append((sum(t[3] * t[2] for t in inside), sum(t[2] for t in inside),
                    sum(t[2] * t[1] for t in inside)))
    return out


def ref_kyle(dp: list[float], q: list[float], window: int, lags: int) -> list[tuple[float, ...]]:
    """Per window end: (slope, intercept, R², Newey–West t) of dp on q, NaNs when undefined."""
    nan4 = (math.nan,) * 4
    out = []
    for k in range(len(dp)):
        if k < window - 1:
            out.append(nan4)
            continue
        x, y = q[k - window + 1: k + 1], dp[k - window + 1: k + 1]
        if any(math.isnan(v) for v in x + y):
            out.append(nan4)
            continue
        mx, my = sum(x) / window, sum(y) / window
        sxx = sum((a - mx) ** 2 for a in x)
        if sxx == 0:
            out.append(nan4)
            continue
        sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
        syy = sum((b - my) ** 2 for b in y)
        beta = sxy / sxx
        resid = [b - my - beta * (a - mx) for a, b in zip(x, y, strict=True)]
        u = [(a - mx) * e for a, e in zip(x, resid, strict=True)]
        s = sum(v * v for v in u)
        for lag in range(1, min(lags, window - 1) + 1):
            s += 2 * (1 - lag / (lags + 1)) * sum(u[t] * u[t - lag] for t in range(lag, window))
        perfect = sum(e * e for e in resid) <= 1e-12 * syy
        t_nw = beta / math.sqrt(s / sxx**2) if s > 0 and not perfect else math.nan
        out.append((beta, my - beta * mx, sxy**2 / (sxx * syy) if syy > 0 else math.nan, t_nw))
    return out


def ref_amihud(ret: list[float], dvol: list[float], window: int) -> list[float]:
    out = []
    for k in range(len(ret)):
        pairs = [(r, v) for r, v in zip(ret[max(0, k - window + 1): k + 1], dvol[max(0, k - window + 1): k + 1],
                                        strict=True) if v > 0 and math.isfinite(r)]
        out.append(statistics.fmean(abs(r) / v * 1e6 for r, v in pairs) if pairs and k >= window - 1
                   else math.nan)
    return out


def ref_spreads(trades: list[tuple[int, float, float, int]], mids: list[tuple[int, float]],
                horizon_ns: int) -> list[tuple[float, float, float]]:
    """(es, rs, pi) in price units per trade (ts, price, qty, side); mids (ts, mid) in time order."""

    def mid_at(t: int) -> float:
        before = [m for ts, m in mids if ts <= t]
        return before[-1] if before else math.nan

    out = []
    for ts, p, _, d in trades:
        m0 = mid_at(ts)
        m1 = mid_at(ts + horizon_ns) if mids and ts + horizon_ns <= mids[-1][0] else math.nan
        if d == 0:
            out.append((math.nan,) * 3)
        else:
            out.append((2 * d * (p - m0), 2 * d * (p - m1), 2 * d * (m1 - m0)))
    return out


# ---- VPIN (reference §A.4) ---------------------------------------------------------------------------
def ref_vpin(trades: list[tuple[int, int, int, int]], bucket_lots: int, n: int, mode: str, bar_ns: int,
             sigma_bars: int) -> tuple[list[int], list[float], list[float]]:
    """(bucket times, bucket buy lots, VPIN) of trades (ts, price ticks, lots, side)."""
    pieces: list[tuple[int, int, float]] = []  # (time, lots, buy share)
    if mode == "bvc":
        bars: dict[int, list[tuple[int, int, int, int]]] = {}
        for t in trades:
            bars.setdefault(t[0] // bar_ns, []).append(t)
        keys = sorted(bars)
        last = [bars[b][-1][1] for b in keys]
        for i, b in enumerate(keys):
            changes = [last[j] - last[j - 1] for j in range(max(1, i - sigma_bars + 1), i + 1)]
            sd = statistics.stdev(changes) if len(changes) >= 2 else 0.0
            share = statistics.NormalDist().cdf(changes[-1] / sd) if sd > 0 else 0.5
            pieces.append(((b + 1) * bar_ns, sum(t[2] for t in bars[b]), share))
    else:
        direction = 0.5
        for i, (ts, px, lots, side) in enumerate(trades):
            if mode == "tick" and i > 0 and px != trades[i - 1][1]:
                direction = 1.0 if px > trades[i - 1][1] else 0.0
            share = direction if mode == "tick" else (1.0 if side > 0 else 0.0 if side < 0 else 0.5)
            pieces.append((ts, lots, share))
    times, buys = [], []
    fill, buy = 0, 0.0
    for ts, lots, share in pieces:
        while lots > 0:
            take = min(lots, bucket_lots - fill)
            buy += take * share
            fill += take
            lots -= take
            if fill == bucket_lots:
                times.append(ts)
                buys.append(buy)
                fill, buy = 0, 0.0
    vp = [math.nan if k < n - 1 else
          sum(abs(bucket_lots - 2 * b) for b in buys[k - n + 1: k + 1]) / (n * bucket_lots)
          for k in range(len(buys))]
    return times, buys, vp
