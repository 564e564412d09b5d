"""The signal synthesizer: panel rows -> LONG / SHORT / HOLD, a strength in [0, 1], reasons and flags.

Rule (``docs/signals.md``): each available component votes ``v = sign(x)·min(1, |x|/saturation)`` when
``|x| ≥ threshold`` (else 0); the score is ``S = Σ w·v / Σ w`` over the *available* components, damped
by ``vpin_damping`` when VPIN ≥ ``vpin_toxic``; LONG when ``S ≥ entry``, SHORT when ``S ≤ −entry``,
HOLD otherwise; strength ``|S|``.  A component whose data is missing, stale or unsynced is skipped,
and a flag says why.  When less than ``min_coverage`` of the enabled weight is available, the result
is a HOLD with ``valid = False`` and the flag ``insufficient_data``: never a silent HOLD.

Deterministic: the same row and config give the same signal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..events import Instrument
from ..features.panel import FLOW_WINDOWS_S
from .components import COMPONENTS, Row
from .config import SignalConfig

__all__ = ["Decision", "Vote", "Signal", "synthesize", "synthesize_panel", "panel_row", "counts", "base_unit",
           "signals"]


class Decision(IntEnum):
    SHORT = -1
    HOLD = 0
    LONG = 1


@dataclass(frozen=True, slots=True)
class Vote:
    """One component's statistic ``value``, its vote in [−1, 1] and weight; ``skipped`` says why it
    did not count ("" when it did)."""

    name: str
    value: float
    vote: float
    weight: float
    skipped: str = ""


@dataclass(frozen=True, slots=True)
class Signal:
    """The synthesizer's output at ``ts``: ``score`` in [−1, 1] (after VPIN damping), ``strength = |score|``,
    ``coverage`` the share of the enabled weight that was computable, ``valid`` coverage ≥ the minimum."""

    ts: int
    decision: Decision
    strength: float
    score: float
    coverage: float
    valid: bool
    reasons: tuple[str, ...]
    flags: tuple[str, ...]
    votes: tuple[Vote, ...]


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _quality(row: Row, cfg: SignalConfig) -> tuple[dict[str, str], list[str]]:
    """Unavailable data kinds (``{"book": why, "trades": why}``) and the data-quality flags."""
    missing: dict[str, str] = {}
    flags: list[str] = []
    age = row.get("book_age_s", math.nan)
    if not row.get("book_synced", 0.0):
        missing["book"] = "book unsynced"
        flags.append("book_unsynced")
    elif not _finite(row.get("mid", math.nan)):
        missing["book"] = "book one-sided"
        flags.append("book_one_sided")
    elif not _finite(age) or age > cfg.book_stale_s:
        missing["book"] = f"book stale ({age:.1f} s)" if _finite(age) else "book stale"
        flags.append("book_stale")
    t_age = row.get("trade_age_s", math.nan)
    if not _finite(t_age):
        missing["trades"] = "no trades"
        flags.append("no_trades")
    elif t_age > cfg.trade_stale_s:
        missing["trades"] = f"trades stale ({t_age:.0f} s)"
        flags.append("trades_stale")
    if not _finite(row.get("vpin", math.nan)):
        flags.append("vpin_warming")
    if row.get("history_s", 0.0) < max(FLOW_WINDOWS_S):
        flags.append("warming_up")
    return missing, flags


def synthesize(row: Row, cfg: SignalConfig | None = None, unit: str = "", ts: int | None = None) -> Signal:
    """The signal for one panel row (:func:`panel_row`); ``unit`` names the base asset in reasons."""
    cfg = cfg or SignalConfig()
    missing, flags = _quality(row, cfg)
    votes: list[Vote] = []
    used: list[tuple[float, str]] = []
    total_w = avail_w = acc = 0.0
    for name, cc in cfg.enabled().items():
        comp = COMPONENTS[name]
        total_w += cc.weight
        lacking = [missing[k] for k in comp.needs if k in missing]
        if lacking:
            votes.append(Vote(name, math.nan, 0.0, cc.weight, "; ".join(lacking)))
            continue
        x = comp.value(row)
        if not _finite(x):
            votes.append(Vote(name, math.nan, 0.0, cc.weight, "undefined"))
            flags.append(f"{name}_undefined")
            continue
        v = math.copysign(min(1.0, abs(x) / cc.saturation), x) if abs(x) >= cc.threshold else 0.0
        votes.append(Vote(name, x, v, cc.weight))
        avail_w += cc.weight
        acc += cc.weight * v
        if v:
            used.append((abs(cc.weight * v), comp.reason(row, x, cc, unit)))
    coverage = avail_w / total_w if total_w else 0.0
    score = acc / avail_w if avail_w else 0.0
    reasons = [text for _, text in sorted(used, key=lambda u: -u[0])]
    vpin = row.get("vpin", math.nan)
    if _finite(vpin) and vpin >= cfg.vpin_toxic:
        score *= cfg.vpin_damping
        flags.append("toxic_flow")
        reasons.append(f"VPIN {vpin:.2f} >= {cfg.vpin_toxic:.2f}: toxic flow, score x {cfg.vpin_damping:g}")
    valid = avail_w > 0 and coverage >= cfg.min_coverage
    if not valid:
        flags.append("insufficient_data")
        skipped = [*missing.values(), *(f"{v.name} undefined" for v in votes if v.skipped == "undefined")]
        reasons = [f"no signal: only {coverage:.0%} of the component weight has data "
                   f"(minimum {cfg.min_coverage:.0%}): {', '.join(skipped) or 'no component enabled'}"]
        decision, score = Decision.HOLD, 0.0
    elif score >= cfg.entry:
        decision = Decision.LONG
    elif score <= -cfg.entry:
        decision = Decision.SHORT
    else:
        decision = Decision.HOLD
        reasons.insert(0, f"score {score:+.2f} inside +-{cfg.entry:.2f}" if used else
                       "no component past its threshold")
    score = max(-1.0, min(1.0, score))
    stamp = int(row.get("ts", 0)) if ts is None else ts
    return Signal(stamp, decision, abs(score), score, coverage, valid, tuple(reasons), tuple(flags), tuple(votes))


def panel_row(p: Mapping[str, np.ndarray], i: int) -> dict[str, float]:
    """Row ``i`` of a :func:`~flowbook.features.panel.panel` as plain floats."""
    return {k: float(v[i]) for k, v in p.items()}


def synthesize_panel(p: Mapping[str, np.ndarray], cfg: SignalConfig | None = None, unit: str = "") -> list[Signal]:
    """:func:`synthesize` for every row of a panel."""
    ts = np.asarray(p["ts"], np.int64)
    return [synthesize(panel_row(p, i), cfg, unit, int(ts[i])) for i in range(len(ts))]


def counts(sigs: Iterable[Signal]) -> dict[str, int]:
    """Signals per decision, plus ``invalid`` (HOLDs without enough data, also counted in HOLD)."""
    out = {"LONG": 0, "SHORT": 0, "HOLD": 0, "invalid": 0}
    for s in sigs:
        out[s.decision.name] += 1
        out["invalid"] += not s.valid
    return out


_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH")


def base_unit(inst: Instrument) -> str:
    """The size unit used in reasons: contracts for inverse instruments, else the base asset of the symbol."""
    if inst.inverse:
        return "contracts"
    sym = inst.symbol.upper().replace("-", "").replace("_", "").split("PERP")[0]
    for q in _QUOTES:
        if sym.endswith(q) and len(sym) > len(q):
            return sym[: -len(q)]
    return "units"


def signals(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray,
            cfg: SignalConfig | None = None) -> list[Signal]:
    """Signals of one instrument's events at the sample times (receive clock, point in time)."""
    from ..features.panel import panel

    return synthesize_panel(panel(events, inst, sample_ts), cfg, base_unit(inst))
