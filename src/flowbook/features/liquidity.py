"""Liquidity at sample times: a liquidity score in [0, 1] (spread, depth, volume), liquidity walls and
clusters among the visible levels, and depth pressure (signed change of bid vs ask depth in a band).

The book comes from the tape (:mod:`flowbook.features.tape`, one compiled replay); walls and
clusters are marked by :func:`mark_nb` (numba) on the best ``wall_levels`` levels of each side, and
the score's rolling medians by :func:`rolling_median_nb`.  Plain-Python twin:
:mod:`flowbook.features.reference_micro` (``ref_liquidity``).  Docs: ``docs/analytics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..book import L2Book
from ..book import nb as bk
from ..events import Instrument, Kind
from .micro import NS, quote_per_lot, window_sums
from .tape import Tape, book_tape

__all__ = ["LIQUIDITY_COLUMNS", "LiquidityConfig", "Wall", "Cluster", "mark_nb", "rolling_median_nb", "book_walls",
           "liquidity_series", "liquidity_from_tape", "walls_fn", "catalog_columns", "component_score"]

NO_PX = -(2**62)


@dataclass(frozen=True, slots=True)
class LiquidityConfig:
    """Parameters of :func:`liquidity_series` (defaults and meaning: ``docs/analytics.md``)."""

    depth_bps: float = 10.0  # depth band around the mid for the depth component
    volume_window_ns: int = 60 * NS  # traded quote volume for the volume component
    baseline_ns: int = 1800 * NS  # rolling-median window of the components (sample times)
    spread_ref_bps: float | None = None  # fixed references instead of the rolling medians
    depth_ref_quote: float | None = None
    volume_ref_quote: float | None = None
    weights: tuple[float, float, float] = (0.4, 0.4, 0.2)  # spread, depth, volume
    wall_levels: int = 50  # visible levels per side searched for walls; "typical" is their median size
    wall_min_levels: int = 5  # fewer visible levels: no walls, no clusters
    wall_mult: float = 10.0
    cluster_mult: float = 3.0
    cluster_gap_ticks: int = 1  # neighbouring large levels at most this many ticks apart form a cluster
    cluster_min_levels: int = 2
    pressure_bps: float = 10.0
    pressure_window_ns: int = 10 * NS

    def __post_init__(self) -> None:
        if min(self.volume_window_ns, self.baseline_ns, self.pressure_window_ns) <= 0:
            raise ValueError("windows must be positive")
        if any(w < 0 for w in self.weights) or abs(sum(self.weights) - 1.0) > 1e-9:
            raise ValueError("weights must be >= 0 and sum to 1")
        if self.wall_levels < self.wall_min_levels or self.wall_min_levels < 1 or self.cluster_min_levels < 2:
            raise ValueError("need 1 <= wall_min_levels <= wall_levels and cluster_min_levels >= 2")
        if self.wall_mult <= 0 or self.cluster_mult <= 0 or self.cluster_gap_ticks < 1:
            raise ValueError("wall_mult, cluster_mult > 0 and cluster_gap_ticks >= 1")
        if self.depth_bps <= 0 or self.pressure_bps <= 0:
            raise ValueError("depth_bps and pressure_bps must be > 0")


# ---- walls and clusters -----------------------------------------------------------------------------
@njit(cache=True)
def mark_nb(px, q, m, min_levels, mult, cmult, gap, min_run, wall, cluster):
    """Mark walls and clusters among the levels ``px[:m]``/``q[:m]`` of one side (best first).

    ``typical`` = median of ``q[:m]``.  ``wall[j]`` = 1 when ``q[j] ≥ mult·typical``.  A cluster is
    a maximal run of consecutive levels with ``q ≥ cmult·typical`` whose neighbours are at most
    ``gap`` ticks apart, of at least ``min_run`` levels: ``cluster[j]`` = its number (0, 1, ...),
    −1 outside clusters.  Returns ``typical`` (NaN and nothing marked when ``m < min_levels``).
    Twin: ``reference_micro.ref_walls``.
    """
    wall[:m] = 0
    cluster[:m] = -1
    if m < min_levels or m == 0:
        return np.nan
    typ = np.median(q[:m].astype(np.float64))
    nc = 0
    j = 0
    while j < m:
        if q[j] >= mult * typ:
            wall[j] = 1
        if q[j] >= cmult * typ:
            e = j
            while e + 1 < m and q[e + 1] >= cmult * typ and abs(px[e + 1] - px[e]) <= gap:
                e += 1
                if q[e] >= mult * typ:
                    wall[e] = 1
            if e - j + 1 >= min_run:
                cluster[j:e + 1] = nc
                nc += 1
            j = e + 1
        else:
            j += 1
    return typ


@njit(cache=True)
def _summary(px, q, m, mid2, min_levels, mult, cmult, gap, min_run, wall, cluster, out):
    """One side's columns: typical, wall tick, lots, multiple, distance (bps of the mid), count,
    cluster low tick, high tick, lots, levels.  The largest wall / cluster wins; ties: nearest."""
    out[:] = np.nan
    typ = mark_nb(px, q, m, min_levels, mult, cmult, gap, min_run, wall, cluster)
    out[0] = typ
    if math.isnan(typ):
        return
    nw = 0
    for j in range(m):
        if wall[j] == 1:
            nw += 1
            if nw == 1 or q[j] > out[2]:
                out[1], out[2], out[3] = px[j], q[j], q[j] / typ
                out[4] = abs(2.0 * px[j] - mid2) / mid2 * 1e4 if mid2 > 0 else np.nan
    out[5] = nw
    j = 0
    while j < m:
        if cluster[j] < 0:
            j += 1
            continue
        e, tot = j, 0
        while e < m and cluster[e] == cluster[j]:
            tot += q[e]
            e += 1
        if math.isnan(out[8]) or tot > out[8]:
            out[6], out[7], out[8], out[9] = min(px[j], px[e - 1]), max(px[j], px[e - 1]), tot, e - j
        j = e


@njit(cache=True)
def _walls_rows(bb, ba, bpx, bq, apx, aq, nlv, min_levels, mult, cmult, gap, min_run, out):
    n, k = bpx.shape
    wall = np.zeros(max(k, 1), np.int64)
    cluster = np.zeros(max(k, 1), np.int64)
    for s in range(n):
        two = bb[s] != bk.NO_BID and ba[s] != bk.NO_ASK
        mid2 = float(bb[s] + ba[s]) if two else -1.0
        _summary(bpx[s], bq[s], nlv[s, 0], mid2, min_levels, mult, cmult, gap, min_run, wall, cluster, out[s, :10])
        _summary(apx[s], aq[s], nlv[s, 1], mid2, min_levels, mult, cmult, gap, min_run, wall, cluster, out[s, 10:])


@dataclass(frozen=True, slots=True)
class Wall:
    """A visible level at least ``wall_mult`` × the typical level size (prices quote, size base)."""

    side: int
    price: float
    size: float
    multiple: float
    distance_bps: float  # from the mid; NaN on a one-sided book


@dataclass(frozen=True, slots=True)
class Cluster:
    """A run of adjacent large levels: price span, total size, level count."""

    side: int
    low: float
    high: float
    size: float
    levels: int


def book_walls(book: L2Book, inst: Instrument, cfg: LiquidityConfig | None = None) -> tuple[list[Wall], list[Cluster]]:
    """Every wall and cluster of the current book (bids then asks, best first)."""
    cfg = cfg or LiquidityConfig()
    px_u, lot = inst.tick, inst.lot
    bb, ba = book.best_bid, book.best_ask
    mid2 = bb + ba if bb is not None and ba is not None else None
    walls: list[Wall] = []
    clusters: list[Cluster] = []
    for side in (1, -1):
        lv = book.levels(side, cfg.wall_levels)
        px = np.array([p for p, _ in lv], np.int64)
        q = np.array([v for _, v in lv], np.int64)
        w, c = np.zeros(max(len(lv), 1), np.int64), np.zeros(max(len(lv), 1), np.int64)
        typ = mark_nb(px, q, len(lv), cfg.wall_min_levels, cfg.wall_mult, cfg.cluster_mult, cfg.cluster_gap_ticks,
                      cfg.cluster_min_levels, w, c)
        for j in np.flatnonzero(w[: len(lv)]):
            d = abs(2 * int(px[j]) - mid2) / mid2 * 1e4 if mid2 else math.nan
            walls.append(Wall(side, int(px[j]) * px_u, int(q[j]) * lot, int(q[j]) / typ, d))
        for cid in range(int(c[: len(lv)].max(initial=-1)) + 1):
            idx = np.flatnonzero(c[: len(lv)] == cid)
            clusters.append(Cluster(side, int(px[idx].min()) * px_u, int(px[idx].max()) * px_u,
                                    int(q[idx].sum()) * lot, len(idx)))
    return walls, clusters


# ---- score -------------------------------------------------------------------------------------------
@njit(cache=True)
def _kth(tree, size, k):
    """The smallest rank whose prefix count reaches ``k`` (1-based) in a Fenwick tree of counts."""
    pos = 0
    step = 1
    while step * 2 <= size:
        step *= 2
    while step > 0:
        nxt = pos + step
        if nxt <= size and tree[nxt] < k:
            pos = nxt
            k -= tree[nxt]
        step //= 2
    return pos  # 0-based rank (tree index pos + 1)


@njit(cache=True)
def rolling_median_nb(t, x, window, out):
    """``out[s]`` = median of the non-NaN ``x[j]`` with ``t[s] − window < t[j] ≤ t[s]`` (NaN if none).

    The values are ranked once (a sort); the window is a Fenwick tree of counts over the ranks, so a
    value entering or leaving is O(log n) and the median is found by binary lifting in O(log n),
    whatever the number of samples in the window (a day of 0.1 s samples: 864,000)."""
    n = t.shape[0]
    order = np.argsort(x, kind="mergesort")  # NaN sort last
    m_ok = 0
    for i in range(n):
        if not math.isnan(x[i]):
            m_ok += 1
    rank = np.full(n, -1, np.int64)
    vals = np.empty(max(m_ok, 1))
    for r in range(m_ok):
        rank[order[r]] = r
        vals[r] = x[order[r]]
    tree = np.zeros(m_ok + 1, np.int64)
    m = 0
    a = 0
    b = 0
    for s in range(n):
        while b < n and t[b] <= t[s]:
            r = rank[b]
            if r >= 0:
                i = r + 1
                while i <= m_ok:
                    tree[i] += 1
                    i += i & (-i)
                m += 1
            b += 1
        while a < b and t[a] <= t[s] - window:
            r = rank[a]
            if r >= 0:
                i = r + 1
                while i <= m_ok:
                    tree[i] -= 1
                    i += i & (-i)
                m -= 1
            a += 1
        if m == 0:
            out[s] = np.nan
        elif m % 2 == 1:
            out[s] = vals[_kth(tree, m_ok, m // 2 + 1)]
        else:
            out[s] = (vals[_kth(tree, m_ok, m // 2)] + vals[_kth(tree, m_ok, m // 2 + 1)]) / 2.0


def component_score(x: np.ndarray, ref: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """``x/(x + ref)`` (or ``ref/(x + ref)``): 0.5 when ``x`` equals its reference, in [0, 1];
    0/0 gives 0.5; NaN in, NaN out."""
    x = np.maximum(x, 0.0)
    num = x if higher_is_better else ref
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(x + ref > 0, num / np.where(x + ref > 0, x + ref, 1.0), 0.5)
    return np.where(np.isnan(x) | np.isnan(ref), np.nan, s)


LIQUIDITY_COLUMNS: tuple[str, ...] = (
    "liq_spread_bps", "liq_depth_quote", "liq_volume_quote", "liq_spread_score", "liq_depth_score",
    "liq_volume_score", "liq_score",
    *(f"liq_{s}_{c}" for s in ("bid", "ask") for c in (
        "typical", "wall_price", "wall_size", "wall_mult", "wall_dist_bps", "walls",
        "cluster_low", "cluster_high", "cluster_size", "cluster_levels")),
    "liq_bid_depth_band", "liq_ask_depth_band", "liq_depth_pressure",
)


def _at(t: np.ndarray, v: np.ndarray, when: np.ndarray) -> np.ndarray:
    j = np.searchsorted(t, when, side="right") - 1
    return np.where(j >= 0, v[np.maximum(j, 0)] if len(v) else np.nan, np.nan)


def liquidity_series(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, cfg: LiquidityConfig | None = None,
                     clock: str = "ts_local") -> dict[str, np.ndarray]:
    """Every :data:`LIQUIDITY_COLUMNS` column at each sample time, for one instrument's events."""
    cfg = cfg or LiquidityConfig()
    T = np.asarray(sample_ts, np.int64)
    tape = book_tape(events, T, clock, (cfg.depth_bps,), cfg.wall_levels, pressure_bps=cfg.pressure_bps,
                     level_fn=walls_fn(cfg))
    return liquidity_from_tape(events, inst, T, tape, cfg)


def walls_fn(cfg: LiquidityConfig) -> Callable[..., np.ndarray]:
    """The tape's ``level_fn`` of the liquidity columns: each sample's best levels -> the 20 wall and
    cluster values of :func:`_walls_rows`."""

    def level_fn(bb: np.ndarray, ba: np.ndarray, bpx: np.ndarray, bq: np.ndarray, apx: np.ndarray, aq: np.ndarray,
                 nlv: np.ndarray) -> np.ndarray:
        out = np.full((len(bb), 20), np.nan)
        _walls_rows(bb, ba, bpx, bq, apx, aq, nlv, cfg.wall_min_levels, cfg.wall_mult, cfg.cluster_mult,
                    cfg.cluster_gap_ticks, cfg.cluster_min_levels, out)
        return out

    return level_fn


def liquidity_from_tape(events: np.ndarray, inst: Instrument, T: np.ndarray, tape: Tape,
                        cfg: LiquidityConfig) -> dict[str, np.ndarray]:
    """:func:`liquidity_series` from a tape of ``events`` at the samples ``T`` (band 0: ``depth_bps``;
    levels: :func:`walls_fn`'s rows, one per sample; messages with ``pressure_bps``)."""
    px, lot = inst.tick, inst.lot
    qa, qb = quote_per_lot(inst)
    two = (tape.synced != 0) & (tape.bb != bk.NO_BID) & (tape.ba != bk.NO_ASK)
    mid2 = np.where(two, (tape.bb + tape.ba).astype(float), np.nan)
    spread_bps = (tape.ba - tape.bb) * 2.0 / mid2 * 1e4
    band = tape.band[:, 0, :]
    depth_q = qa * (band[:, 2] + band[:, 3]) + qb * (band[:, 0] + band[:, 1])
    tm = events["kind"] == Kind.TRADE
    quote = events["qty"][tm] * (qa * events["price"][tm] + qb)
    vol_q = window_sums(tape.t[tm], quote, T - cfg.volume_window_ns, T)
    comps = []
    for x, ref, hib in ((spread_bps, cfg.spread_ref_bps, False), (depth_q, cfg.depth_ref_quote, True),
                        (vol_q, cfg.volume_ref_quote, True)):
        r = np.full(len(T), np.nan)
        x = np.maximum(x, 0.0)  # a crossed book's negative spread counts as 0
        if ref is None:
            rolling_median_nb(T, x.astype(np.float64), cfg.baseline_ns, r)
        else:
            r[:] = ref
        comps.append(component_score(x, r, hib))
    w = cfg.weights
    score = w[0] * comps[0] + w[1] * comps[1] + w[2] * comps[2]
    lv = tape.levels if len(tape.levels) else np.full((len(T), 20), np.nan)
    cols: dict[str, np.ndarray] = {
        "liq_spread_bps": spread_bps, "liq_depth_quote": depth_q, "liq_volume_quote": vol_q,
        "liq_spread_score": comps[0], "liq_depth_score": comps[1], "liq_volume_score": comps[2], "liq_score": score,
    }
    size = lot  # base units (contracts for an inverse instrument)
    for k, s in enumerate(("bid", "ask")):
        o = lv[:, 10 * k: 10 * k + 10]
        cols.update({
            f"liq_{s}_typical": o[:, 0] * size, f"liq_{s}_wall_price": o[:, 1] * px, f"liq_{s}_wall_size": o[:, 2] * size,
            f"liq_{s}_wall_mult": o[:, 3], f"liq_{s}_wall_dist_bps": o[:, 4],
            f"liq_{s}_walls": np.where(np.isnan(o[:, 0]), np.nan, o[:, 5]),
            f"liq_{s}_cluster_low": o[:, 6] * px, f"liq_{s}_cluster_high": o[:, 7] * px,
            f"liq_{s}_cluster_size": o[:, 8] * size,
            f"liq_{s}_cluster_levels": np.where(np.isnan(o[:, 0]), np.nan, np.nan_to_num(o[:, 9])),
        })
    b1, a1 = _at(tape.msg_t, tape.msg_bid, T), _at(tape.msg_t, tape.msg_ask, T)
    b0 = _at(tape.msg_t, tape.msg_bid, T - cfg.pressure_window_ns)
    a0 = _at(tape.msg_t, tape.msg_ask, T - cfg.pressure_window_ns)
    den = b1 + a1 + b0 + a0
    with np.errstate(invalid="ignore", divide="ignore"):
        pressure = np.where(den > 0, ((b1 - b0) - (a1 - a0)) / np.where(den > 0, den, 1.0), np.nan)
    cols.update({"liq_bid_depth_band": b1 * lot, "liq_ask_depth_band": a1 * lot, "liq_depth_pressure": pressure})
    assert tuple(cols) == LIQUIDITY_COLUMNS
    return {k: np.asarray(v, np.float64) for k, v in cols.items()}


def catalog_columns(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str = "ts_local",
                    cfg: object | None = None) -> dict[str, np.ndarray]:
    """The ``liquidity`` group of the feature catalog: :func:`liquidity_series` with default parameters."""
    return liquidity_series(events, inst, sample_ts, LiquidityConfig(), clock)
