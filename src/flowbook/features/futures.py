"""Futures context at sample times: mark and index price, funding rate and next funding time, open
interest and its change over windows, liquidations (count and quote notional by side) over windows.

Inputs are the events ``MARK_PRICE`` (``value`` mark price, ``id2`` index price in ticks when
known), ``FUNDING_RATE`` (``value`` rate, ``id`` next funding time in ns), ``OPEN_INTEREST``
(``value`` open interest, base units or contracts) and ``LIQUIDATION`` (``side`` of the forced
order, ``price`` order price in ticks, ``qty`` lots, ``value`` average fill price when known) of
:mod:`flowbook.events.dtype`.  Every column is a last-known value or a sum over a window
``(T − w, T]`` of the chosen clock made non-decreasing (as in :mod:`flowbook.features.micro`),
looked up with ``searchsorted`` (vectorised NumPy; there is no per-event state to compile).
A stream absent from the input gives NaN columns and a 0 flag, never an exception.
Plain-Python twin: :func:`flowbook.features.reference_micro.ref_futures`.  Docs: ``docs/analytics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..events import NO_ID, Instrument, Kind
from .micro import NS, effective_clock, window_sums

__all__ = ["FuturesConfig", "futures_columns", "futures_series", "catalog_columns", "window_label"]

NS_MIN = 60 * NS


def window_label(ns: int) -> str:
    """``60 s`` -> ``"1m"``, ``3600 s`` -> ``"1h"``, ``90 s`` -> ``"90s"``: the column-name suffix."""
    for unit, size in (("h", 3600 * NS), ("m", NS_MIN), ("s", NS)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


@dataclass(frozen=True, slots=True)
class FuturesConfig:
    """``oi_windows_ns``/``liq_windows_ns``: windows of the OI change and liquidation columns.
    ``liquidations``: ``None`` infers the stream point in time (NaN before the first liquidation
    event), ``True`` says it was subscribed (zeros are real from the start), ``False`` absent."""

    oi_windows_ns: tuple[int, ...] = (5 * NS_MIN, 60 * NS_MIN)
    liq_windows_ns: tuple[int, ...] = (NS_MIN, 5 * NS_MIN, 60 * NS_MIN)
    liquidations: bool | None = None

    def __post_init__(self) -> None:
        if any(w <= 0 for w in (*self.oi_windows_ns, *self.liq_windows_ns)):
            raise ValueError("windows must be positive")
        labels = [window_label(w) for w in self.oi_windows_ns], [window_label(w) for w in self.liq_windows_ns]
        if any(len(set(x)) != len(x) for x in labels):
            raise ValueError("windows must be distinct")


def futures_columns(cfg: FuturesConfig | None = None) -> tuple[str, ...]:
    """The column list for ``cfg`` (fixed for a given config; the default list is in the docs)."""
    cfg = cfg or FuturesConfig()
    return ("fut_has_mark", "fut_mark_price", "fut_index_price", "fut_premium_bps", "fut_has_funding",
            "fut_funding_rate", "fut_next_funding_ts", "fut_time_to_funding_s", "fut_has_oi", "fut_open_interest",
            *(f"fut_oi_{k}_{window_label(w)}" for w in cfg.oi_windows_ns for k in ("change", "change_pct")),
            "fut_has_liquidations",
            *(f"fut_liq_{k}_{window_label(w)}" for w in cfg.liq_windows_ns for k in ("count", "buy_quote", "sell_quote")))


def _last(t: np.ndarray, v: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last value with time ≤ ``when`` and whether there is one."""
    j = np.searchsorted(t, when, side="right") - 1
    ok = j >= 0
    return (np.where(ok, v[np.maximum(j, 0)], np.nan) if len(v) else np.full(len(when), np.nan)), ok


def futures_series(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, cfg: FuturesConfig | None = None,
                   clock: str = "ts_local") -> dict[str, np.ndarray]:
    """Every :func:`futures_columns` column at each sample time, for one instrument's events.

    ``fut_next_funding_ts`` is int64 ns (−1 when unknown); every other column is float64.
    """
    cfg = cfg or FuturesConfig()
    T = np.asarray(sample_ts, np.int64)
    t = effective_clock(events, clock)
    kind = events["kind"]
    px = inst.tick
    lot = inst.lot
    out: dict[str, np.ndarray] = {}

    m = kind == Kind.MARK_PRICE
    mark, has_m = _last(t[m], events["value"][m], T)
    idx_ticks = events["id2"][m].astype(float)
    index, _ = _last(t[m], np.where(events["id2"][m] == NO_ID, np.nan, idx_ticks * px), T)
    out["fut_has_mark"] = has_m.astype(float)
    out["fut_mark_price"] = mark
    out["fut_index_price"] = index
    with np.errstate(invalid="ignore", divide="ignore"):
        out["fut_premium_bps"] = (mark / index - 1.0) * 1e4

    f = kind == Kind.FUNDING_RATE
    rate, has_f = _last(t[f], events["value"][f], T)
    j = np.searchsorted(t[f], T, side="right") - 1
    nxt = np.where(has_f, events["id"][f][np.maximum(j, 0)] if f.any() else -1, -1).astype(np.int64)
    nxt = np.where(nxt == NO_ID, -1, nxt)
    out["fut_has_funding"] = has_f.astype(float)
    out["fut_funding_rate"] = rate
    out["fut_next_funding_ts"] = nxt
    out["fut_time_to_funding_s"] = np.where(nxt >= 0, (nxt - T) / NS, np.nan)

    o = kind == Kind.OPEN_INTEREST
    oi, has_o = _last(t[o], events["value"][o], T)
    out["fut_has_oi"] = has_o.astype(float)
    out["fut_open_interest"] = oi
    for w in cfg.oi_windows_ns:
        before, _ = _last(t[o], events["value"][o], T - w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"fut_oi_change_{window_label(w)}"] = oi - before
            out[f"fut_oi_change_pct_{window_label(w)}"] = np.where(before != 0, (oi - before) / before * 100, np.nan)

    q = kind == Kind.LIQUIDATION
    lt = t[q]
    if cfg.liquidations is None:
        known = lt[0] <= T if len(lt) else np.zeros(len(T), bool)
    else:
        known = np.full(len(T), cfg.liquidations)
    lots = events["qty"][q].astype(float)
    if inst.inverse:
        notional = lots * lot * inst.multiplier
    else:  # the average fill price when the venue gives one, else the order price
        ap = events["value"][q]
        notional = lots * lot * np.where(ap > 0, ap, events["price"][q] * px)
    side = events["side"][q]
    out["fut_has_liquidations"] = known.astype(float)
    for w in cfg.liq_windows_ns:
        lab = window_label(w)
        for name, x in (("count", np.ones(len(lt))), ("buy_quote", np.where(side > 0, notional, 0.0)),
                        ("sell_quote", np.where(side < 0, notional, 0.0))):
            out[f"fut_liq_{name}_{lab}"] = np.where(known, window_sums(lt, x, T - w, T), np.nan)
    assert tuple(out) == futures_columns(cfg)
    return {k: (v if k == "fut_next_funding_ts" else np.asarray(v, np.float64)) for k, v in out.items()}


def catalog_columns(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str = "ts_local",
                    cfg: object | None = None) -> dict[str, np.ndarray]:
    """The ``futures`` group of the feature catalog: :func:`futures_series` with default parameters."""
    return futures_series(events, inst, sample_ts, FuturesConfig(), clock)
