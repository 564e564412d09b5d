"""Detector records, parameters and their resolution to one instrument's ticks, lots and notional.

Every threshold is a documented parameter of :class:`DetectorConfig`: quote notional, basis points,
multiples of the instrument's typical trade or level size (:class:`Scale`), milliseconds.  ``resolve``
turns them into the integer/float parameter vectors the kernel (``detectors.nb``) and the twin
(``detectors.reference``) read, so both see exactly the same numbers.  Definitions: docs/detectors.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..events import Instrument, Kind

__all__ = ["DetectorKind", "Detection", "DetectorConfig", "Scale", "Resolved", "resolve"]


class DetectorKind(IntEnum):
    SWEEP = 1
    ABSORPTION = 2
    BLOCK_TRADE = 3
    MOMENTUM_TRADE = 4
    ICEBERG = 5
    HFT_BURST = 6
    WALL_PULLED = 7
    LIQUIDATION_CASCADE = 8


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected order-flow event.

    ``side``: +1 buy / bid, -1 sell / ask (which one per detector: docs/detectors.md).  ``price`` and
    ``volume`` in instrument units (``price_ticks``/``lots`` exact), ``notional`` in quote currency,
    ``count`` the detector's main count (levels, refills, trades, forced orders).
    """

    ts: int
    kind: DetectorKind
    side: int
    price_ticks: int
    lots: int
    count: int
    confidence: float
    price: float
    volume: float
    notional: float
    description: str


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Detector thresholds (defaults documented in docs/detectors.md)."""

    clock: str = "ts_exchange"
    track_ticks: int = 1 << 16  # width of the per-tick state window (ticks) around the trading price
    sweep_window_ms: float = 50.0
    sweep_min_levels: int = 3
    sweep_min_notional: float = 50_000.0
    block_min_notional: float = 100_000.0
    momentum_window_ms: float = 5_000.0
    momentum_min_bps: float = 5.0
    momentum_min_notional: float = 25_000.0
    absorption_window_ms: float = 5_000.0
    absorption_min_trade_mult: float = 50.0  # x typical trade lots
    absorption_min_notional: float = 100_000.0
    absorption_max_move_ticks: int = 1
    iceberg_window_ms: float = 10_000.0
    iceberg_min_refills: int = 3
    iceberg_min_ratio: float = 2.0  # executed / max visible
    iceberg_gone_ms: float = 100.0
    iceberg_min_trade_mult: float = 10.0
    hft_window_ms: float = 100.0
    hft_min_trades: int = 20
    hft_small_trade_mult: float = 1.0  # small = lots <= mult x typical trade lots
    wall_level_mult: float = 20.0  # x typical level lots
    wall_min_notional: float = 100_000.0
    wall_max_dist_bps: float = 5.0
    wall_keep_frac: float = 0.2  # pulled = the level drops to <= this share of its size
    wall_trade_window_ms: float = 1_000.0
    liq_window_ms: float = 10_000.0
    liq_min_orders: int = 3
    liq_min_notional: float = 50_000.0

    def __post_init__(self) -> None:
        if self.clock not in ("ts_exchange", "ts_local"):
            raise ValueError(f"clock must be ts_exchange or ts_local, got {self.clock!r}")
        if self.track_ticks < 16 or self.track_ticks & (self.track_ticks - 1):
            raise ValueError("track_ticks must be a power of two >= 16")
        for name in ("sweep_min_levels", "iceberg_min_refills", "hft_min_trades", "liq_min_orders"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0 <= self.wall_keep_frac < 1:
            raise ValueError("wall_keep_frac must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class Scale:
    """The instrument's typical sizes: the unit of the ``*_mult`` parameters.

    ``from_events`` calibrates on the input itself (median trade size, median size of the non-zero
    level sets, first trade price): a run-level constant, so it looks ahead over a recording; live
    callers pass one measured beforehand.
    """

    trade_lots: float
    level_lots: float
    price_ticks: int

    @staticmethod
    def from_events(events: np.ndarray) -> Scale:
        kind, qty = events["kind"], events["qty"]  # field views: no copy of whole records
        tr = np.flatnonzero(kind == Kind.TRADE)
        lv = np.flatnonzero((kind == Kind.BOOK_SET) & (qty > 0))
        if not len(tr) and not len(lv):
            raise ValueError("no trades and no book levels to scale the detectors on")
        price = int(events["price"][tr[0]]) if len(tr) else int(events["price"][lv[len(lv) // 2]])
        return Scale(float(np.median(qty[tr])) if len(tr) else 1.0,
                     float(np.median(qty[lv])) if len(lv) else 1.0, max(price, 1))


# integer parameter slots
(P_CLOCK, P_TW, P_SW_NS, P_SW_LEVELS, P_MO_NS, P_MO_TICKS, P_AB_NS, P_AB_LOTS, P_AB_MOVE, P_IC_NS,
 P_IC_REFILLS, P_IC_GONE_NS, P_IC_LOTS, P_HF_NS, P_HF_N, P_HF_SMALL, P_WL_LOTS, P_WL_DIST, P_WL_NS,
 P_LQ_NS, P_LQ_N, P_NI) = range(22)
# float parameter slots: notional(p, q) = q * (F_LIN * p + F_INV)
(F_LIN, F_INV, F_SW_NOT, F_BLK_NOT, F_MO_NOT, F_IC_RATIO, F_WL_KEEP, F_LQ_NOT, F_NF) = range(9)


@dataclass(frozen=True)
class Resolved:
    """Parameters in the instrument's units, as the kernel and the twin read them."""

    ip: np.ndarray
    fp: np.ndarray
    tick: float
    lot: float


def _ns(ms: float) -> int:
    return int(round(ms * 1_000_000))


def resolve(cfg: DetectorConfig, inst: Instrument, scale: Scale) -> Resolved:
    """Thresholds of ``cfg`` in ticks, lots, ns and quote notional for ``inst`` at ``scale``."""
    tick = inst.tick
    lot = inst.lot
    lin, inv = (0.0, lot * inst.multiplier) if inst.inverse else (tick * lot * inst.multiplier, 0.0)
    lot_quote = scale.price_ticks * lin + inv  # quote value of one lot at the reference price

    def lots_for(notional: float) -> int:
        return max(1, math.ceil(notional / lot_quote))

    ip = np.zeros(P_NI, np.int64)
    ip[P_CLOCK] = 0 if cfg.clock == "ts_exchange" else 1
    ip[P_TW] = cfg.track_ticks
    ip[P_SW_NS], ip[P_SW_LEVELS] = _ns(cfg.sweep_window_ms), cfg.sweep_min_levels
    ip[P_MO_NS] = _ns(cfg.momentum_window_ms)
    ip[P_MO_TICKS] = max(1, math.ceil(cfg.momentum_min_bps * 1e-4 * scale.price_ticks))
    ip[P_AB_NS] = _ns(cfg.absorption_window_ms)
    ip[P_AB_LOTS] = max(math.ceil(cfg.absorption_min_trade_mult * scale.trade_lots),
                        lots_for(cfg.absorption_min_notional))
    ip[P_AB_MOVE] = cfg.absorption_max_move_ticks
    ip[P_IC_NS], ip[P_IC_REFILLS] = _ns(cfg.iceberg_window_ms), cfg.iceberg_min_refills
    ip[P_IC_GONE_NS] = _ns(cfg.iceberg_gone_ms)
    ip[P_IC_LOTS] = max(1, math.ceil(cfg.iceberg_min_trade_mult * scale.trade_lots))
    ip[P_HF_NS], ip[P_HF_N] = _ns(cfg.hft_window_ms), cfg.hft_min_trades
    ip[P_HF_SMALL] = max(1, math.floor(cfg.hft_small_trade_mult * scale.trade_lots))
    ip[P_WL_LOTS] = max(math.ceil(cfg.wall_level_mult * scale.level_lots), lots_for(cfg.wall_min_notional))
    ip[P_WL_DIST] = max(1, math.floor(cfg.wall_max_dist_bps * 1e-4 * scale.price_ticks))
    ip[P_WL_NS] = _ns(cfg.wall_trade_window_ms)
    ip[P_LQ_NS], ip[P_LQ_N] = _ns(cfg.liq_window_ms), cfg.liq_min_orders
    fp = np.zeros(F_NF, np.float64)
    fp[F_LIN], fp[F_INV] = lin, inv
    fp[F_SW_NOT], fp[F_BLK_NOT], fp[F_MO_NOT] = (cfg.sweep_min_notional, cfg.block_min_notional,
                                                 cfg.momentum_min_notional)
    fp[F_IC_RATIO], fp[F_WL_KEEP], fp[F_LQ_NOT] = cfg.iceberg_min_ratio, cfg.wall_keep_frac, cfg.liq_min_notional
    return Resolved(ip, fp, tick, lot)
