"""Plain-Python reference twins of the microstructure, liquidity and futures-context features.

Slow and obvious on purpose: for every sample time ``T`` the twin replays the events that arrived
by ``T`` into a dict-based :class:`flowbook.book.ReferenceBook` from scratch, keeps trades, level
additions and depth-message records in lists, and evaluates each rule of ``docs/analytics.md`` the
way it is written there, with Python integers, :class:`fractions.Fraction` and
:class:`decimal.Decimal`.  ``tests/test_micro.py``, ``tests/test_liquidity.py`` and
``tests/test_futures_context.py`` require :mod:`.micro`, :mod:`.liquidity` and :mod:`.futures` to
agree with these functions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np

from ..book import ReferenceBook
from ..events import NO_ID, Instrument, Kind
from .liquidity import LIQUIDITY_COLUMNS
from .micro import MICRO_COLUMNS

__all__ = ["RefState", "ref_clock", "ref_replay", "ref_micro", "ref_walls", "ref_liquidity", "ref_futures"]

NS = 10**9
NAN = math.nan


def ref_clock(events: np.ndarray, clock: str) -> list[int]:
    """The clock as it arrives, never going back: each event's time is the latest seen so far."""
    out: list[int] = []
    latest = None
    for v in events[clock].tolist():
        latest = v if latest is None else max(latest, v)
        out.append(latest)
    return out


@dataclass
class RefState:
    """What the twin knows at one sample time."""

    book: ReferenceBook = field(default_factory=ReferenceBook)
    synced: bool = False
    trades: list[tuple[int, int, int, int, int | None]] = field(default_factory=list)  # t, ticks, lots, side, depth
    adds: list[tuple[int, int, int]] = field(default_factory=list)  # t, lots added at the touch, side
    msgs: list[tuple[int, int | None, int | None]] = field(default_factory=list)  # t, bid, ask lots in the band
    start: int | None = None  # time of the first event

    def two_sided(self) -> bool:
        return self.synced and self.book.best_bid is not None and self.book.best_ask is not None


def band_lots(book: ReferenceBook, bps: float) -> tuple[int, int, int, int]:
    """Bid lots, ask lots, bid Σ lots·ticks, ask Σ lots·ticks within ``bps`` of the mid."""
    bb, ba = book.best_bid, book.best_ask
    assert bb is not None and ba is not None
    m = (bb + ba) / 2.0
    lo = math.ceil(m * (1.0 - bps * 1e-4) - 1e-9)
    hi = math.floor(m * (1.0 + bps * 1e-4) + 1e-9)
    bids = [(p, q) for p, q in book.bids.items() if p >= lo]
    asks = [(p, q) for p, q in book.asks.items() if p <= hi]
    return sum(q for _, q in bids), sum(q for _, q in asks), sum(p * q for p, q in bids), sum(p * q for p, q in asks)


def hit_depth(book: ReferenceBook, hit: int, levels: int, bps: float) -> int | None:
    """Lots on side ``hit`` within its best ``levels`` levels and ``bps`` of its best price."""
    lv = book.levels(hit, levels)
    if not lv:
        return None
    best = lv[0][0]
    if hit > 0:
        lim = math.ceil(best * (1.0 - bps * 1e-4) - 1e-9)
        return sum(q for p, q in lv if p >= lim)
    lim = math.floor(best * (1.0 + bps * 1e-4) + 1e-9)
    return sum(q for p, q in lv if p <= lim)


def ref_replay(events: np.ndarray, clk: list[int], T: int, consume_levels: int = 10, consume_bps: float = 10.0,
               pressure_bps: float = 10.0) -> RefState:
    """Replay, from nothing, every event with time ≤ ``T``."""
    s = RefState()
    for i, (kind, side, flags, p, q) in enumerate(zip(*(events[f].tolist() for f in ("kind", "side", "flags", "price",
                                                                                       "qty")), strict=True)):
        t = clk[i]
        if t > T:
            break
        if s.start is None:
            s.start = t
        if kind == Kind.BOOK_SET:
            if side != 0:
                old = s.book.get(side, p)
                best = s.book.best_bid if side > 0 else s.book.best_ask
                touch = best is None or (p >= best if side > 0 else p <= best)
                if s.synced and not flags & 1 and q > old and touch:
                    s.adds.append((t, q - old, side))
                s.book.set(side, p, q)
            if flags & 4:
                s.synced = True
            if flags & 8 and s.synced:
                if s.book.best_bid is not None and s.book.best_ask is not None:
                    b, a, _, _ = band_lots(s.book, pressure_bps)
                    s.msgs.append((t, b, a))
                else:
                    s.msgs.append((t, None, None))
        elif kind == Kind.BOOK_CLEAR:
            s.book.clear()
            s.synced = False
            s.msgs.append((t, None, None))
        elif kind == Kind.TRADE:
            d = hit_depth(s.book, -side, consume_levels, consume_bps) if s.synced and side != 0 else None
            s.trades.append((t, p, q, side, d))
    return s


def _div(a: Fraction | int, b: Fraction | int) -> float:
    return float(Fraction(a) / b) if b else NAN


def _quote(inst: Instrument, p: int, q: int) -> Fraction:
    if inst.inverse:
        return Fraction(q) * Fraction(Decimal(inst.lot_size)) * Fraction(inst.multiplier)
    return Fraction(p * q) * Fraction(Decimal(inst.tick_size) * Decimal(inst.lot_size))


# ---- microstructure ------------------------------------------------------------------------------
def ref_micro(events: np.ndarray, inst: Instrument, sample_ts: list[int], cfg: object,
              clock: str = "ts_local") -> dict[str, list[float]]:
    """:func:`flowbook.features.micro.micro_series`, one sample at a time (``cfg``: a ``MicroConfig``)."""
    c = cfg
    clk = ref_clock(events, clock)
    tick = Fraction(Decimal(inst.tick_size))
    lot = Fraction(Decimal(inst.lot_size))
    out: dict[str, list[float]] = {k: [] for k in MICRO_COLUMNS}

    def put(k: str, v: float) -> None:
        out[k].append(v)

    for T in sample_ts:
        s = ref_replay(events, clk, T, c.consume_levels, c.consume_bps)
        mid = Fraction(s.book.best_bid + s.book.best_ask, 2) if s.two_sided() else None
        put("micro_mid", float(mid * tick) if mid is not None else NAN)
        day = (T - round(c.session_hour_utc * 3600 * NS)) // (86400 * NS)
        start = day * 86400 * NS + round(c.session_hour_utc * 3600 * NS)
        for name, lo in (("session", start - 1), ("rolling", T - c.vwap_window_ns)):
            tr = [x for x in s.trades if lo < x[0] <= T]
            vol = sum(x[2] for x in tr)
            vwap = Fraction(sum(x[1] * x[2] for x in tr), vol) if vol else None
            put(f"micro_vwap_{name}", float(vwap * tick) if vwap is not None else NAN)
            put(f"micro_vwap_dev_{name}_bps", float((mid / vwap - 1) * 10_000) if mid is not None and vwap else NAN)
        imb = NAN
        if s.two_sided():
            b, a, _, _ = band_lots(s.book, c.imbalance_bps)
            imb = _div(b - a, b + a)
        put("micro_imbalance", imb)
        cls = NAN
        if not math.isnan(imb):
            size = 2 if abs(imb) > c.strong_imbalance else 1 if abs(imb) > c.weak_imbalance else 0
            cls = float(size if imb > 0 else -size)
        put("micro_imbalance_class", cls)
        win = [x for x in s.trades if T - c.flow_window_ns < x[0] <= T]
        buy = sum(x[2] for x in win if x[3] > 0)
        sell = sum(x[2] for x in win if x[3] < 0)
        aggr = sum(x[2] for x in win)
        passive = sum(a[1] for a in s.adds if T - c.flow_window_ns < a[0] <= T)
        put("micro_buy_pressure", _div(buy, buy + sell))
        put("micro_aggressive_volume", float(aggr * lot))
        put("micro_passive_volume", float(passive * lot))
        put("micro_aggr_passive_ratio", _div(aggr, passive))
        quotes = [_quote(inst, x[1], x[2]) for x in win]
        total = sum(quotes, Fraction(0))
        edges = [Fraction(e) for e in c.size_edges_quote]
        for b in range(5):
            lo_e = edges[b - 1] if b > 0 else None
            hi_e = edges[b] if b < 4 else None
            part = sum((v for v in quotes if (lo_e is None or v >= lo_e) and (hi_e is None or v < hi_e)), Fraction(0))
            put(f"micro_size_share_{b}", _div(part, total))
        big = sum((v for v in quotes if v >= Fraction(c.institutional_quote)), Fraction(0))
        put("micro_institutional_share", _div(big, total))
        rates = {}
        for name, w in (("s", c.intensity_window_ns), ("l", c.baseline_window_ns)):
            tr = [x for x in s.trades if T - w < x[0] <= T]
            ok = s.start is not None and T - s.start >= w
            rates[name] = (Fraction(len(tr) * NS, w), sum((_quote(inst, x[1], x[2]) for x in tr), Fraction(0))
                           * NS / w, ok)
        n_s, v_s, ok_s = rates["s"]
        n_l, v_l, ok_l = rates["l"]
        put("micro_trades_per_s", float(n_s) if ok_s else NAN)
        put("micro_quote_per_s", float(v_s) if ok_s else NAN)
        put("micro_trades_ratio", _div(n_s, n_l) if ok_s and ok_l else NAN)
        put("micro_quote_ratio", _div(v_s, v_l) if ok_s and ok_l else NAN)
        for name, sd in (("buy", 1), ("sell", -1)):
            put(f"micro_consumption_{name}", float(sum(Fraction(x[2], x[4]) for x in win if x[3] == sd and x[4])))
    return out


# ---- liquidity -------------------------------------------------------------------------------------
def ref_walls(levels: list[tuple[int, int]], min_levels: int, mult: float, cmult: float, gap: int,
              min_run: int) -> tuple[float, list[int], list[list[int]]]:
    """``(typical, wall indices, clusters as index lists)`` of one side's levels (best first)."""
    if len(levels) < min_levels or not levels:
        return NAN, [], []
    typ = float(statistics.median(q for _, q in levels))
    walls = [j for j, (_, q) in enumerate(levels) if q >= mult * typ]
    clusters: list[list[int]] = []
    run: list[int] = []
    for j, (p, q) in enumerate(levels):
        if q >= cmult * typ and (not run or abs(p - levels[run[-1]][0]) <= gap):
            run.append(j)
            continue
        if len(run) >= min_run:
            clusters.append(run)
        run = [j] if q >= cmult * typ else []
    if len(run) >= min_run:
        clusters.append(run)
    return typ, walls, clusters


def _median_ref(values: list[float]) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return float(statistics.median(ok)) if ok else NAN


def _component(x: float, ref: float, higher: bool) -> float:
    if math.isnan(x) or math.isnan(ref):
        return NAN
    x = max(x, 0.0)
    if x + ref == 0:
        return 0.5
    return (x if higher else ref) / (x + ref)


def ref_liquidity(events: np.ndarray, inst: Instrument, sample_ts: list[int], cfg: object,
                  clock: str = "ts_local") -> dict[str, list[float]]:
    """:func:`flowbook.features.liquidity.liquidity_series`, one sample at a time (``cfg``: ``LiquidityConfig``)."""
    c = cfg
    clk = ref_clock(events, clock)
    tick = Decimal(inst.tick_size)
    lot = Decimal(inst.lot_size)
    out: dict[str, list[float]] = {k: [] for k in LIQUIDITY_COLUMNS}
    raw: list[tuple[float, float, float]] = []

    def put(k: str, v: float) -> None:
        out[k].append(v)

    states = [ref_replay(events, clk, T, pressure_bps=c.pressure_bps) for T in sample_ts]
    for T, s in zip(sample_ts, states, strict=True):  # the raw components at every sample first
        sp = dq = NAN
        if s.two_sided():
            bb, ba = s.book.best_bid, s.book.best_ask
            sp = float(Fraction(2 * (ba - bb) * 10_000, bb + ba))
            b, a, bn, an = band_lots(s.book, c.depth_bps)
            dq = float(_quote(inst, 1, bn + an)) if not inst.inverse else float(_quote(inst, 0, b + a))
        vq = float(sum((_quote(inst, x[1], x[2]) for x in s.trades if T - c.volume_window_ns < x[0] <= T),
                       Fraction(0)))
        raw.append((sp, dq, vq))
    for n, (T, s) in enumerate(zip(sample_ts, states, strict=True)):
        scores = []
        for k, (fixed, higher) in enumerate(((c.spread_ref_bps, False), (c.depth_ref_quote, True),
                                             (c.volume_ref_quote, True))):
            ref = fixed if fixed is not None else _median_ref(  # every sample known at T, this one included
                [max(raw[j][k], 0.0) if not math.isnan(raw[j][k]) else NAN  # a crossed book's spread: 0
                 for j in range(len(sample_ts)) if T - c.baseline_ns < sample_ts[j] <= T])
            scores.append(_component(raw[n][k], ref, higher))
        for name, v in zip(("spread_bps", "depth_quote", "volume_quote"), raw[n], strict=True):
            put(f"liq_{name}", v)
        for name, v in zip(("spread", "depth", "volume"), scores, strict=True):
            put(f"liq_{name}_score", v)
        put("liq_score", sum(w * v for w, v in zip(c.weights, scores, strict=True)))
        mid2 = s.book.best_bid + s.book.best_ask if s.two_sided() else None
        for side, name in ((1, "bid"), (-1, "ask")):
            lv = s.book.levels(side, c.wall_levels) if s.synced else []
            typ, walls, clusters = ref_walls(lv, c.wall_min_levels, c.wall_mult, c.cluster_mult,
                                             c.cluster_gap_ticks, c.cluster_min_levels)
            put(f"liq_{name}_typical", typ * float(lot))
            big = None
            for j in walls:  # largest; ties: the nearest (first)
                if big is None or lv[j][1] > lv[big][1]:
                    big = j
            put(f"liq_{name}_wall_price", float(lv[big][0] * tick) if big is not None else NAN)
            put(f"liq_{name}_wall_size", float(lv[big][1] * lot) if big is not None else NAN)
            put(f"liq_{name}_wall_mult", lv[big][1] / typ if big is not None else NAN)
            put(f"liq_{name}_wall_dist_bps", float(Fraction(abs(2 * lv[big][0] - mid2) * 10_000, mid2))
                if big is not None and mid2 else NAN)
            put(f"liq_{name}_walls", float(len(walls)) if not math.isnan(typ) else NAN)
            best = max(clusters, key=lambda r: (sum(lv[j][1] for j in r), -r[0])) if clusters else None
            prices = [lv[j][0] for j in best] if best else []
            put(f"liq_{name}_cluster_low", float(min(prices) * tick) if best else NAN)
            put(f"liq_{name}_cluster_high", float(max(prices) * tick) if best else NAN)
            put(f"liq_{name}_cluster_size", float(sum(lv[j][1] for j in best) * lot) if best else NAN)
            put(f"liq_{name}_cluster_levels", float(len(best)) if best else (0.0 if not math.isnan(typ) else NAN))
        now = [m for m in s.msgs if m[0] <= T]
        then = [m for m in s.msgs if m[0] <= T - c.pressure_window_ns]
        b1, a1 = (now[-1][1], now[-1][2]) if now else (None, None)
        b0, a0 = (then[-1][1], then[-1][2]) if then else (None, None)
        put("liq_bid_depth_band", float(b1 * lot) if b1 is not None else NAN)
        put("liq_ask_depth_band", float(a1 * lot) if a1 is not None else NAN)
        ok = None not in (b1, a1, b0, a0)
        put("liq_depth_pressure", _div((b1 - b0) - (a1 - a0), b1 + a1 + b0 + a0) if ok else NAN)
    return out


# ---- futures context -----------------------------------------------------------------------------
def ref_futures(events: np.ndarray, inst: Instrument, sample_ts: list[int], cfg: object,
                clock: str = "ts_local") -> dict[str, list[float]]:
    """:func:`flowbook.features.futures.futures_series`, one sample at a time (``cfg``: ``FuturesConfig``)."""
    from .futures import futures_columns, window_label

    c = cfg
    clk = ref_clock(events, clock)
    rows = list(zip(clk, *(events[f].tolist() for f in ("kind", "side", "price", "qty", "id", "id2", "value")),
                    strict=True))
    tick = Decimal(inst.tick_size)
    lot = Decimal(inst.lot_size)
    out: dict[str, list[float]] = {k: [] for k in futures_columns(c)}

    def put(k: str, v: float) -> None:
        out[k].append(v)

    def last(kind: int, until: int) -> tuple | None:
        seen = [r for r in rows if r[1] == kind and r[0] <= until]
        return seen[-1] if seen else None

    for T in sample_ts:
        m = last(Kind.MARK_PRICE, T)
        put("fut_has_mark", 1.0 if m else 0.0)
        put("fut_mark_price", m[7] if m else NAN)
        index = float(m[6] * tick) if m and m[6] != NO_ID else NAN
        put("fut_index_price", index)
        put("fut_premium_bps", (m[7] / index - 1) * 1e4 if m and not math.isnan(index) and index else NAN)
        f = last(Kind.FUNDING_RATE, T)
        put("fut_has_funding", 1.0 if f else 0.0)
        put("fut_funding_rate", f[7] if f else NAN)
        nxt = f[5] if f and f[5] != NO_ID else -1
        put("fut_next_funding_ts", nxt)
        put("fut_time_to_funding_s", (nxt - T) / NS if nxt >= 0 else NAN)
        o = last(Kind.OPEN_INTEREST, T)
        put("fut_has_oi", 1.0 if o else 0.0)
        put("fut_open_interest", o[7] if o else NAN)
        for w in c.oi_windows_ns:
            b = last(Kind.OPEN_INTEREST, T - w)
            put(f"fut_oi_change_{window_label(w)}", o[7] - b[7] if o and b else NAN)
            put(f"fut_oi_change_pct_{window_label(w)}", (o[7] - b[7]) / b[7] * 100 if o and b and b[7] else NAN)
        liqs = [r for r in rows if r[1] == Kind.LIQUIDATION]
        known = c.liquidations if c.liquidations is not None else bool(liqs) and liqs[0][0] <= T
        put("fut_has_liquidations", 1.0 if known else 0.0)
        for w in c.liq_windows_ns:
            win = [r for r in liqs if T - w < r[0] <= T]

            def notional(r: tuple) -> float:
                if inst.inverse:
                    return float(r[4] * lot) * inst.multiplier
                return float(r[4] * lot) * (r[7] if r[7] > 0 else float(r[3] * tick))

            lab = window_label(w)
            put(f"fut_liq_count_{lab}", float(len(win)) if known else NAN)
            put(f"fut_liq_buy_quote_{lab}", sum(notional(r) for r in win if r[2] > 0) if known else NAN)
            put(f"fut_liq_sell_quote_{lab}", sum(notional(r) for r in win if r[2] < 0) if known else NAN)
    return out
