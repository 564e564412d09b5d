"""Microstructure features at sample times: VWAP deviation, depth imbalance classes, buy pressure,
aggressive/passive ratio, trade-size distribution, order-flow intensity, liquidity consumption.

One compiled pass (:func:`flowbook.features.tape.tape_nb`, numba) replays one instrument's book and
records what the features need: the book at each sample time (touch, depth within bands of the
mid), for each trade the resting depth on the side it hit, for each level set the lots added at or
inside the touch.  Windowed sums over trades and additions are then prefix sums looked up with
``searchsorted``.  The tape is shared with :mod:`flowbook.features.liquidity` and the catalog's book
walks (:mod:`flowbook.features.bookpass`).

Time is the chosen clock made non-decreasing (running maximum in stream order), so a value at
sample time ``T`` sees exactly the events that arrived before the first event later than ``T``.
Plain-Python twin: :mod:`flowbook.features.reference_micro`.  Docs: ``docs/analytics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from ..book import nb as bk
from ..events import Instrument, Kind
from .tape import Tape, band_limits, book_tape, effective_clock, tape_nb

__all__ = ["MICRO_COLUMNS", "MicroConfig", "Tape", "book_tape", "tape_nb", "micro_series", "micro_from_tape",
           "catalog_columns", "effective_clock", "window_sums", "band_limits", "quote_per_lot", "classify_imbalance"]

NS = 1_000_000_000
NS_HOUR = 3600 * NS
NS_DAY = 24 * NS_HOUR


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
    return micro_from_tape(events, inst, T, tape, cfg)


def micro_from_tape(events: np.ndarray, inst: Instrument, T: np.ndarray, tape: Tape, cfg: MicroConfig) -> dict[
        str, np.ndarray]:
    """:func:`micro_series` from a tape of ``events`` at the samples ``T`` (band 0: ``imbalance_bps``;
    trade depths with ``consume_levels``/``consume_bps``)."""
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
