"""The point-in-time panel: raw values at sample times shared by ``state_v1``, the signal synthesizer
and ``flowbook summary``.

Everything is on the receive clock ``ts_local``, made non-decreasing (:func:`monotone`), so the values
at ``T`` come from the prefix of the arrival-ordered events with time ≤ ``T``.  Sources: the core
feature rows of :class:`~flowbook.features.FeatureEngine` (event mode, one row per depth message),
the trades themselves, and the catalog's session profile and VPIN (docs/analytics.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..events import Flag, Instrument, Kind
from .engine import FEATURE_COLUMNS, FeatureConfig, FeatureEngine

__all__ = ["LEVELS", "FLOW_WINDOWS_S", "NS", "monotone", "sample_ends", "synced_after", "panel"]

LEVELS = 20  # N of the top-N book values
FLOW_WINDOWS_S = (1, 10, 60, 300)  # trailing windows (seconds)
NS = 1_000_000_000
_COL = {name: j for j, name in enumerate(FEATURE_COLUMNS)}


def monotone(events: np.ndarray) -> np.ndarray:
    """``events`` with ``ts_local`` replaced by its running maximum: the time each event became known.

    Buffered diffs applied after a snapshot carry earlier receive times than the snapshot; with the
    running maximum, "events with time ≤ T" is a prefix of the arrival order.  Already-ordered input
    is returned as it is (no copy); otherwise a copy.  Callers only read the result."""
    t = events["ts_local"]
    if len(t) < 2 or bool(np.all(t[1:] >= t[:-1])):
        return events
    out = events.copy()
    out["ts_local"] = np.maximum.accumulate(t)
    return out


def sample_ends(events: np.ndarray, sample_ts: np.ndarray) -> np.ndarray:
    """Per sample, the end of the prefix of ``events`` (monotone ``ts_local``) with time ≤ the sample."""
    t = np.asarray(sample_ts, np.int64)
    if np.any(np.diff(t) < 0):
        raise ValueError("sample times must be in time order")
    return np.searchsorted(events["ts_local"], t, side="right")


def synced_after(events: np.ndarray) -> np.ndarray:
    """Per event: is the book synced after it (last SNAPSHOT_END not followed by a BOOK_CLEAR)."""
    kind = events["kind"]
    mark = np.full(len(events), -1, np.int8)
    mark[(kind == Kind.BOOK_SET) & ((events["flags"] & Flag.SNAPSHOT_END) != 0)] = 1
    mark[kind == Kind.BOOK_CLEAR] = 0
    last = np.maximum.accumulate(np.where(mark >= 0, np.arange(len(events)), -1)) if len(events) else mark
    return np.where(last >= 0, mark[np.maximum(last, 0)], 0).astype(bool)



def _window_sum(cs: np.ndarray, t_rows: np.ndarray, t: np.ndarray, w_ns: int) -> np.ndarray:
    """Σ of a per-row value over rows with time in ``(t − w, t]``, from its cumulative sum ``cs`` (len n+1)."""
    return cs[np.searchsorted(t_rows, t, side="right")] - cs[np.searchsorted(t_rows, t - w_ns, side="right")]


def panel(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray) -> dict[str, np.ndarray]:
    """Raw point-in-time values at each sample time (receive clock ``ts_local``), in instrument units.

    Keys (one float array each): ``ts``; book state at the last applied depth message: ``book_synced``,
    ``book_age_s``, ``mid``, ``spread_bps``, ``microprice_offset_bps``, ``microprice_half_spreads``
    (offset over half the spread), ``imbalance_1``, ``imbalance_n`` (20 levels), ``imbalance_dw``,
    ``depth_ratio``, ``band_imbalance`` (10 bps), ``large_order_presence``, ``depth_notional``;
    flow over trailing windows ``w`` of :data:`FLOW_WINDOWS_S` seconds: ``ofi_{w}s`` (size),
    ``ofi_norm_{w}s`` (OFI over the mean best-level size of the window's rows), ``mlofi_{m}_10s`` and
    ``mlofi_norm_{m}_10s`` (m = 2..5), ``cvd_{w}s`` (signed base units), ``volume_{w}s``,
    ``trades_{w}s``, ``return_{w}s_bps`` (mid), ``volatility_{w}s_bps`` (RMS of 1 s log returns of the
    mid on the whole-second grid, w ≥ 60); trades: ``last_price``, ``trade_age_s``, ``cvd`` (since the
    first event); session profile (00:00 UTC): ``vwap``, ``poc``, ``val``, ``vah``; ``vpin`` (catalog
    calibration); ``history_s``; ``tick`` (tick size).  Sample times must be in time order.
    NaN where a value is undefined (no book, no trade, window before the first event).
    """
    from . import catalog

    events = monotone(events)
    t = np.asarray(sample_ts, np.int64)
    ends = sample_ends(events, t)
    n = len(t)
    tick, lot = inst.tick, inst.lot
    out: dict[str, np.ndarray] = {"ts": t.astype(float)}
    eng = FeatureEngine(inst, FeatureConfig(depth_levels=LEVELS))
    if len(events):
        eng.process(events)
    eng.finish()
    f, ii = eng.take()
    rt = ii[:, 0]  # a row's time: the (monotone) receive time of its depth message
    j = np.searchsorted(rt, t, side="right") - 1
    synced_ev = synced_after(events)
    synced = (ends > 0) & synced_ev[np.maximum(ends - 1, 0)] if len(events) else np.zeros(n, bool)
    out["book_synced"] = synced.astype(float)
    out["book_age_s"] = (t - _pick(rt, j)) / NS
    # book values only from a row written since the last snapshot (a source whose snapshot end
    # closes no message would otherwise show the book from before the resync)
    snap = np.flatnonzero((events["kind"] == Kind.BOOK_SET) & ((events["flags"] & Flag.SNAPSHOT_END) != 0))
    k_snap = np.searchsorted(snap, ends) - 1
    snap_ts = _pick(events["ts_local"][snap], k_snap)
    jb = np.where(synced & (_pick(rt, j) >= snap_ts), j, -1)

    def row(col: str) -> np.ndarray:
        return _pick(f[:, _COL[col]], jb)

    mid = row("mid")
    out["mid"] = mid
    out["spread_bps"] = row("spread_bps")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["microprice_offset_bps"] = (row("microprice") - mid) / mid * 1e4
        out["microprice_half_spreads"] = (row("microprice") - mid) / (row("spread") / 2)
        for c in ("imbalance_1", "imbalance_n", "imbalance_dw", "depth_ratio", "large_order_presence"):
            out[c] = row(c)
        b, a = row("bid_depth_bps"), row("ask_depth_bps")
        out["band_imbalance"] = (b - a) / (b + a)
        out["depth_notional"] = row("bid_notional_n") + row("ask_notional_n")
    # flow over trailing windows: per-row OFI and best-level size, cumulated
    d1 = np.nan_to_num((f[:, _COL["best_bid_qty"]] + f[:, _COL["best_ask_qty"]]) / 2)
    cs_d1 = np.r_[0.0, np.cumsum(d1)]
    cs_n = np.r_[0.0, np.cumsum(np.ones(len(f)))]
    for w in FLOW_WINDOWS_S:
        cols = ["ofi"] + ([f"mlofi_{m}" for m in range(2, 6)] if w == 10 else [])
        with np.errstate(invalid="ignore", divide="ignore"):
            depth = _window_sum(cs_d1, rt, t, w * NS) / _window_sum(cs_n, rt, t, w * NS)
        for c in cols:
            s = _window_sum(np.r_[0.0, np.cumsum(np.nan_to_num(f[:, _COL[c]]))], rt, t, w * NS)
            out[f"{c}_{w}s"] = s
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{c.replace('ofi', 'ofi_norm')}_{w}s"] = s / depth
    # trades
    tr = events[events["kind"] == Kind.TRADE]
    tt = tr["ts_local"]
    signed = tr["side"].astype(float) * tr["qty"] * lot
    vol = tr["qty"].astype(float) * lot
    k = np.searchsorted(tt, t, side="right") - 1
    out["last_price"] = _pick(tr["price"], k) * tick
    out["trade_age_s"] = (t - _pick(tt, k)) / NS
    out["cvd"] = np.r_[0.0, np.cumsum(signed)][k + 1]
    known = events["ts_local"][events["ts_local"] > 0]
    first = float(known[0]) if len(known) else np.nan
    out["history_s"] = (t - first) / NS
    m_grid = _mid_grid(rt, f[:, _COL["mid"]], t)
    for w in FLOW_WINDOWS_S:
        out[f"cvd_{w}s"] = _window_sum(np.r_[0.0, np.cumsum(signed)], tt, t, w * NS)
        out[f"volume_{w}s"] = _window_sum(np.r_[0.0, np.cumsum(vol)], tt, t, w * NS)
        out[f"trades_{w}s"] = _window_sum(np.r_[0.0, np.cumsum(np.ones(len(tt)))], tt, t, w * NS)
        jw = np.searchsorted(rt, t - w * NS, side="right") - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"return_{w}s_bps"] = (mid / _pick(f[:, _COL["mid"]], jw) - 1) * 1e4
        if w >= 60:
            out[f"volatility_{w}s_bps"] = m_grid(w)
    prof = catalog.columns(["profile", "vpin"], events, inst, t, clock="ts_local")
    out["vwap"] = prof["profile_vwap"]
    out["poc"], out["val"], out["vah"] = prof["profile_poc"], prof["profile_val"], prof["profile_vah"]
    out["vpin"] = prof["vpin"]
    out["tick"] = np.full(n, tick)
    return out


def _pick(values: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``values[j]`` as floats where ``j >= 0``, NaN elsewhere (everywhere when ``values`` is empty)."""
    out = np.full(len(j), np.nan)
    ok = j >= 0
    if len(values):
        out[ok] = values[j[ok]]
    return out


def _mid_grid(rt: np.ndarray, mid: np.ndarray, t: np.ndarray) -> Callable[[int], np.ndarray]:
    """RMS of the 1 s log returns of the mid on the whole-second grid, over windows ending at each sample."""
    if not len(rt) or not len(t):
        return lambda w: np.full(len(t), np.nan)
    g0 = -(-int(rt[0]) // NS) * NS
    grid = np.arange(g0, max(int(t[-1]), g0) + 1, NS, dtype=np.int64)
    jg = np.searchsorted(rt, grid, side="right") - 1
    mg = np.where(jg >= 0, mid[np.maximum(jg, 0)], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.diff(np.log(mg)) * 1e4  # return ending at grid[i + 1]
    ok = np.isfinite(r)
    cs2, csn = np.r_[0.0, np.cumsum(np.where(ok, r * r, 0.0))], np.r_[0.0, np.cumsum(ok)]
    ends = grid[1:]

    def vol(w: int) -> np.ndarray:
        num = _window_sum(cs2, ends, t, w * NS)
        cnt = _window_sum(csn, ends, t, w * NS)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cnt > 0, np.sqrt(num / cnt), np.nan)

    return vol
