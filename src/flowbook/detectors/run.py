"""Run the detectors over one instrument's events: the Python side of ``detectors.nb.run``."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..book import L2Book
from ..book.l2 import window_for
from ..events import Instrument
from . import nb
from .model import Detection, DetectorConfig, DetectorKind, Resolved, Scale, resolve

__all__ = ["detect", "detect_rows", "to_detections", "counts", "describe"]

_SIDE = {1: "buy", -1: "sell", 0: "two-sided"}
_PASSIVE = {1: "bid", -1: "ask"}


def detect_rows(events: np.ndarray, res: Resolved) -> tuple[np.ndarray, np.ndarray]:
    """Raw detection rows ``(int rows [ts, kind, side, price, lots, count], confidence)`` in emission order.

    ``events``: one instrument's :data:`EVENT_DTYPE` array in arrival order.
    """
    book = L2Book(window=window_for(events))
    state = nb.new_state(int(res.ip[nb.P_TW]))
    cap = 4096
    oi, of = np.zeros((cap, 6), np.int64), np.zeros(cap)
    parts_i, parts_f = [], []
    i, n = 0, 0
    while True:
        status, i, n = nb.run(events, i, *book.arrays, *state, res.ip, res.fp, oi, of, n)
        if status == nb.NEED_GROW:
            book.grow()
        elif status == nb.NEED_ROOM:
            parts_i.append(oi[:n].copy())
            parts_f.append(of[:n].copy())
            n = 0
        else:
            break
    s, fs, _, ring = state[:4]
    n = nb.flush(s, fs, ring, res.ip, res.fp, oi, of, n)
    parts_i.append(oi[:n].copy())
    parts_f.append(of[:n].copy())
    return np.concatenate(parts_i), np.concatenate(parts_f)


def describe(kind: DetectorKind, side: int, price: float, volume: float, notional: float, count: int) -> str:
    """One human-readable line for a detection."""
    if kind == DetectorKind.SWEEP:
        return f"{_SIDE[side]} sweep through {count} price levels to {price:g}: {volume:g} ({notional:,.0f} quote)"
    if kind == DetectorKind.ABSORPTION:
        return f"{_PASSIVE[side]} at {price:g} absorbed {volume:g} of aggressive volume and held"
    if kind == DetectorKind.BLOCK_TRADE:
        return f"{_SIDE[side]} block of {volume:g} at {price:g} ({notional:,.0f} quote, {count} fills)"
    if kind == DetectorKind.MOMENTUM_TRADE:
        return f"{_SIDE[side]} order of {notional:,.0f} quote with the move ({count} ticks) at {price:g}"
    if kind == DetectorKind.ICEBERG:
        return f"{_PASSIVE[side]} iceberg at {price:g}: {volume:g} executed, {count} refills"
    if kind == DetectorKind.HFT_BURST:
        return f"{count} small trades in a burst, net {_SIDE[side]}, {volume:g} total, last at {price:g}"
    if kind == DetectorKind.WALL_PULLED:
        return f"{_PASSIVE[side]} wall of {volume:g} at {price:g} ({count} ticks from the touch) pulled without trades"
    return f"{count} forced {_SIDE[side]} orders in a cascade, {volume:g} ({notional:,.0f} quote), last at {price:g}"


_KIND_OF = {int(k): k for k in DetectorKind}  # a dict lookup; calling the enum costs microseconds per row


def to_detections(rows: np.ndarray, conf: np.ndarray, res: Resolved) -> list[Detection]:
    """Rows of :func:`detect_rows` as immutable :class:`Detection` records."""
    out = []
    lin, inv = res.fp[nb.F_LIN], res.fp[nb.F_INV]
    for r, c in zip(rows.tolist(), conf.tolist(), strict=True):
        ts, kind, side, p, lots, count = r
        k = _KIND_OF[kind]
        price, volume, notional = p * res.tick, lots * res.lot, lots * (lin * p + inv)
        out.append(Detection(ts, k, side, p, lots, count, float(c), price, volume, notional,
                             describe(k, side, price, volume, notional, count)))
    return out


def detect(events: np.ndarray, inst: Instrument, cfg: DetectorConfig | None = None,
           scale: Scale | None = None) -> list[Detection]:
    """All detections of one instrument's events (arrival order), in emission order.

    ``scale`` defaults to :meth:`Scale.from_events` on ``events`` (see its look-ahead note).
    """
    cfg = cfg or DetectorConfig()
    res = resolve(cfg, inst, scale or Scale.from_events(events))
    rows, conf = detect_rows(events, res)
    return to_detections(rows, conf, res)


def counts(detections: list[Detection]) -> dict[str, int]:
    """Detections per detector name (every detector listed, zeros included)."""
    c = Counter(d.kind for d in detections)
    return {k.name.lower(): c.get(k, 0) for k in DetectorKind}
