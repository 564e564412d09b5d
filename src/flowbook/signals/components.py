"""The synthesizer's components: one signed statistic each (positive = bullish) read from a panel row.

A component names the data it needs (``"book"``, ``"trades"``); when that data is missing, stale or
unsynced, the synthesizer skips it and says so.  Adding a component: write its statistic and reason
here, register it in :data:`COMPONENTS`, and give it defaults in ``config.DEFAULT_COMPONENTS``.
Definitions and defaults: ``docs/signals.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .config import ComponentConfig

__all__ = ["Component", "COMPONENTS", "Row"]

Row = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Component:
    """``value(row)`` is the statistic; ``reason(row, x, cfg, unit)`` one readable line about it."""

    name: str
    needs: tuple[str, ...]
    value: Callable[[Row], float]
    reason: Callable[[Row, float, ComponentConfig, str], str]


def _div(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def _side(x: float, pos: str, neg: str) -> str:
    return pos if x >= 0 else neg


def _imbalance(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    return f"{_side(x, 'bid', 'ask')} imbalance {abs(x):.2f} over 20 levels (threshold {c.threshold:.2f})"


def _ofi(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    return (f"OFI {r['ofi_10s']:+,.4g} {unit} over 10 s ({x:+.1f}x the best-level size, "
            f"threshold {c.threshold:g}x)")


def _micro(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    return (f"microprice {abs(x):.2f} half-spreads {_side(x, 'above', 'below')} the mid "
            f"(threshold {c.threshold:.2f})")


def _cvd(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    return (f"CVD {r['cvd_300s']:+,.4g} {unit} over 5 min ({x:+.0%} of {r['volume_300s']:,.4g} traded, "
            f"threshold {c.threshold:.0%})")


def _momentum(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    return f"mid {x:+.1f} bps over 60 s (threshold {c.threshold:g} bps)"


def _vwap(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    return (f"mid {abs(x):.1f} bps {_side(x, 'above', 'below')} the session VWAP {r['vwap']:,.6g} "
            f"(threshold {c.threshold:g} bps)")


def _va_value(r: Row) -> float:
    mid, val, vah = r["mid"], r["val"], r["vah"]
    if not all(math.isfinite(v) for v in (mid, val, vah)):
        return math.nan
    return 1.0 if mid > vah else -1.0 if mid < val else 0.0


def _va(r: Row, x: float, c: ComponentConfig, unit: str) -> str:
    if x > 0:
        return f"mid above the value-area high {r['vah']:,.6g}"
    if x < 0:
        return f"mid below the value-area low {r['val']:,.6g}"
    return f"mid inside the value area {r['val']:,.6g}-{r['vah']:,.6g}"


COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component("imbalance", ("book",), lambda r: r["imbalance_n"], _imbalance),
    Component("ofi", ("book",), lambda r: r["ofi_norm_10s"], _ofi),
    Component("microprice", ("book",), lambda r: r["microprice_half_spreads"], _micro),
    Component("cvd", ("trades",), lambda r: _div(r["cvd_300s"], r["volume_300s"]), _cvd),
    Component("momentum", ("book",), lambda r: r["return_60s_bps"], _momentum),
    Component("vwap", ("book", "trades"), lambda r: (_div(r["mid"], r["vwap"]) - 1) * 1e4, _vwap),
    Component("value_area", ("book", "trades"), _va_value, _va),
)}
