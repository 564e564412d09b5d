"""VPIN (volume-synchronized probability of informed trading) with volume buckets.

Three ways to split volume into buy and sell (``mode``):

- ``"bvc"``: bulk volume classification (reference §A.4) on time bars of ``bar_ns``: a bar's buy
  share is ``Z(ΔP/σ)``, ``Z`` the standard-normal CDF, ``ΔP`` the change of the last trade price
  from the previous non-empty bar, ``σ`` the sample standard deviation (ddof 1) of the last
  ``sigma_bars`` bar changes up to and including this bar.  Fewer than two changes, ``σ = 0`` and
  the first bar give ``Z = 0.5``.
- ``"tick"``: the tick rule per trade (reference §A.7): uptick buy, downtick sell, zero tick
  repeats the previous direction; 1/2 and 1/2 until the first non-zero tick.
- ``"aggressor"``: the exchange's aggressor flag per trade (side +1 buy, −1 sell, 0 half and half).

Buckets hold ``bucket_lots`` lots each and fill in time order; a bar or trade that overflows a
bucket is split pro rata (its buy share applies to each part).  The last, partly filled bucket is
not reported.  ``VPIN_τ = Σ |S − B| / (n·V)`` over buckets ``τ − n + 1 .. τ`` (NaN for the first
``n − 1``).  A bucket's time is that of the bar end (``"bvc"``) or trade that completed it.

Kernels: :func:`bars_nb`, :func:`bvc_nb`, :func:`tick_rule_nb`, :func:`buckets_nb` (numba).
Twin: ``flowbook.features.reference_analytics.ref_vpin``.  Docs: ``docs/analytics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["VpinConfig", "Vpin", "vpin", "bars_nb", "bvc_nb", "tick_rule_nb", "buckets_nb", "bucket_lots_for"]

MODES = ("bvc", "tick", "aggressor")


@njit(cache=True)
def bars_nb(ts, price, qty, bar_ns, out_end, out_vol, out_last):
    """Non-empty time bars ``[j·bar_ns, (j+1)·bar_ns)``: end time, lots, last trade price; count."""
    m = -1
    cur = 0
    for i in range(ts.shape[0]):
        b = ts[i] // bar_ns
        if m < 0 or b != cur:
            m += 1
            cur = b
            out_end[m] = (b + 1) * bar_ns
            out_vol[m] = 0
        out_vol[m] += qty[i]
        out_last[m] = price[i]
    return m + 1


@njit(cache=True)
def bvc_nb(last, sigma_bars, out):
    """Buy share ``Z(ΔP/σ)`` of each bar (see the module docstring)."""
    n = last.shape[0]
    for i in range(n):
        out[i] = 0.5
        if i == 0:
            continue
        a = max(1, i - sigma_bars + 1)
        c = i - a + 1
        if c < 2:
            continue
        mean = 0.0
        for t in range(a, i + 1):
            mean += last[t] - last[t - 1]
        mean /= c
        var = 0.0
        for t in range(a, i + 1):
            var += (last[t] - last[t - 1] - mean) ** 2
        sd = math.sqrt(var / (c - 1))
        if sd > 0:
            out[i] = 0.5 * (1.0 + math.erf((last[i] - last[i - 1]) / sd / math.sqrt(2.0)))


@njit(cache=True)
def tick_rule_nb(price, out):
    """Buy share by the tick rule: 1 uptick, 0 downtick, zero tick repeats, 0.5 before any move."""
    d = 0.5
    for i in range(price.shape[0]):
        if i > 0 and price[i] > price[i - 1]:
            d = 1.0
        elif i > 0 and price[i] < price[i - 1]:
            d = 0.0
        out[i] = d


@njit(cache=True)
def buckets_nb(ts, vol, buy_share, size, out_ts, out_buy):
    """Fill buckets of ``size`` lots from pieces (``vol`` lots, buy share); returns the full count."""
    m = 0
    fill = 0
    buy = 0.0
    for i in range(vol.shape[0]):
        v = vol[i]
        while v > 0:
            take = min(v, size - fill)
            buy += take * buy_share[i]
            fill += take
            v -= take
            if fill == size:
                out_ts[m] = ts[i]
                out_buy[m] = buy
                m += 1
                fill = 0
                buy = 0.0
    return m


@dataclass(frozen=True, slots=True)
class VpinConfig:
    """``bucket_lots`` V (lots per bucket), ``n_buckets`` n, ``mode``, BVC ``bar_ns`` and ``sigma_bars``."""

    bucket_lots: int
    n_buckets: int = 50
    mode: str = "bvc"
    bar_ns: int = 60_000_000_000
    sigma_bars: int = 100

    def __post_init__(self) -> None:
        if self.bucket_lots < 1 or self.n_buckets < 1 or self.bar_ns < 1 or self.sigma_bars < 2:
            raise ValueError("bucket_lots, n_buckets, bar_ns >= 1 and sigma_bars >= 2")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")


@dataclass(frozen=True, slots=True)
class Vpin:
    """Completed buckets: time, buy and sell lots, and VPIN (NaN for the first ``n − 1``)."""

    ts: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    vpin: np.ndarray
    config: VpinConfig

    def at(self, t: np.ndarray) -> np.ndarray:
        """VPIN in force at each time (last bucket completed at or before it; NaN before)."""
        j = np.searchsorted(self.ts, np.asarray(t, np.int64), side="right") - 1
        return np.where(j >= 0, self.vpin[np.maximum(j, 0)] if len(self.vpin) else np.nan, np.nan)


def bucket_lots_for(volume_lots: int, span_ns: int, buckets_per_day: int = 50) -> int:
    """Bucket size from a sample: the volume per day (scaled from ``span_ns``) / ``buckets_per_day``."""
    if span_ns <= 0 or volume_lots <= 0:
        raise ValueError("need a positive volume and span")
    return max(1, round(volume_lots * 86_400_000_000_000 / span_ns / buckets_per_day))


def vpin(ts: np.ndarray, price: np.ndarray, qty: np.ndarray, side: np.ndarray, cfg: VpinConfig) -> Vpin:
    """VPIN of trades (time order; ticks, lots, aggressor side) — see the module docstring."""
    t, p, q = (np.asarray(a, np.int64) for a in (ts, price, qty))
    n = len(t)
    if np.any(np.diff(t) < 0):
        raise ValueError("trades must be in time order")
    if cfg.mode == "bvc":
        end, vol, last = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        m = bars_nb(t, p, q, cfg.bar_ns, end, vol, last)
        end, vol = end[:m], vol[:m]
        share = np.empty(m)
        bvc_nb(last[:m].astype(float), cfg.sigma_bars, share)
        pieces_t = end
    else:
        share = np.empty(n)
        if cfg.mode == "tick":
            tick_rule_nb(p, share)
        else:
            share = (np.sign(np.asarray(side, float)) + 1.0) / 2.0
        pieces_t, vol = t, q
    cap = int(vol.sum()) // cfg.bucket_lots + 1
    out_t, out_b = np.zeros(cap, np.int64), np.zeros(cap)
    k = buckets_nb(pieces_t, vol, share, cfg.bucket_lots, out_t, out_b)
    buy = out_b[:k]
    sell = cfg.bucket_lots - buy
    imb = np.abs(sell - buy)
    cs = np.r_[0.0, np.cumsum(imb)]
    nb_ = cfg.n_buckets
    v = np.full(k, np.nan)
    if k >= nb_:
        v[nb_ - 1:] = (cs[nb_:] - cs[:-nb_]) / (nb_ * cfg.bucket_lots)
    return Vpin(out_t[:k], buy, sell, v, cfg)
