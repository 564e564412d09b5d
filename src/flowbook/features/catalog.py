"""The feature catalog beyond the core row: column groups computed at the core rows' sample times.

``flowbook replay --features all`` (or a list such as ``--features profile,vpin``) adds these groups'
columns to every feature row, and writes the detectors' events beside the features file.  Each group
is a function ``(events, instrument, sample_ts, clock) -> {column: array}`` over one instrument's
events (arrival order) that uses only events whose ``clock`` time is ≤ each sample time; the
functions are the analytics modules' own series entry points (docs/analytics.md), so the catalog
adds no formula of its own.

Groups and columns (prices in quote units, sizes in base units):

* ``profile``: session volume profile of the trades (reset at 00:00 UTC): ``profile_poc``,
  ``profile_val``, ``profile_vah`` (the lowest price of the row; one row = one tick by default),
  ``profile_vwap``, ``profile_volume``.
* ``vpin``: intraday VPIN (bulk volume classification on 1 s bars, 50 buckets per value).  The
  bucket volume is a tenth of the volume traded in the first ``vpin_calibration_ns`` (1 min), so a
  value spans about 5 minutes of typical flow (the daily convention, 50 buckets a day, needs days of
  data: use :func:`flowbook.features.vpin.vpin` with ``bucket_lots_for``).  Samples before the
  calibration ends are NaN: the size is known only then, so there is no look-ahead.
* ``cost``: walking the book for ``cost_quote`` of quote currency each way: ``cost_buy_bps``,
  ``cost_sell_bps`` (slippage against the mid), ``cost_buy_levels``, ``cost_sell_levels``.  The walk
  is taken on the book at each multiple of ``cost_every_ns`` (1 s) of the clock, and a row carries the
  walk of the latest such time at or before it (a walk costs tens of microseconds; one per row would
  dominate the replay).  NaN before the first refresh, while the book is unsynced, and for inverse
  instruments (book walks are defined for linear ones).
* ``micro``, ``liquidity``, ``futures``: the microstructure, liquidity and futures-context modules
  (:mod:`flowbook.features.micro`, ``liquidity``, ``futures``).  ``liquidity`` (score, walls,
  clusters, depth pressure) is refreshed each ``liquidity_every_ns`` (1 s) like ``cost``: a wall
  search per row would dominate the replay.

The book groups (``micro``, ``liquidity``, ``cost``) share one book pass over the union of their
sample times (:mod:`flowbook.features.bookpass`); their columns are those of separate passes.

Detector events (``detectors``) are not columns: :func:`detections` returns them as a table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ..events import Instrument, Kind

if TYPE_CHECKING:
    from ..store.schema import Batch

__all__ = ["GROUPS", "CatalogConfig", "DETECTION_SCHEMA", "resolve_groups", "columns", "detections", "detection_batch"]

NS_MIN = 60_000_000_000


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    cost_quote: float = 100_000.0  # size of the book walk, quote currency
    cost_every_ns: int = 1_000_000_000  # the walk's refresh clock
    liquidity_every_ns: int = 1_000_000_000  # the liquidity group's refresh clock (walls, score)
    vpin_calibration_ns: int = NS_MIN  # the bucket size is set from this first stretch of trades
    vpin_buckets_per_calibration: int = 10  # bucket volume = calibration volume / this
    vpin_buckets: int = 50  # buckets per VPIN value
    vpin_bar_ns: int = 1_000_000_000  # bulk-volume-classification bars


GroupFn = Callable[[np.ndarray, Instrument, np.ndarray, str, CatalogConfig], dict[str, np.ndarray]]


def _trades(events: np.ndarray, clock: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = events[events["kind"] == Kind.TRADE]
    ts = t[clock].astype(np.int64)
    order = np.argsort(ts, kind="stable")  # the exchange clock of trades may step back across streams
    return ts[order], t["price"][order].astype(np.int64), t["qty"][order].astype(np.int64), \
        t["side"][order].astype(np.int64)


def _profile(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str,
             cfg: CatalogConfig) -> dict[str, np.ndarray]:
    from .profile import NO_ROW, ProfileConfig, profile_series, trades

    pc = ProfileConfig()
    ts, price, qty, _ = _trades(events, clock)
    s = profile_series(trades(ts, price, qty), sample_ts, pc)
    px = inst.tick

    def row_price(rows: np.ndarray) -> np.ndarray:
        return np.where(rows == NO_ROW, np.nan, rows * pc.bin_ticks * px)

    return {"profile_poc": row_price(s.poc), "profile_val": row_price(s.val), "profile_vah": row_price(s.vah),
            "profile_vwap": s.vwap_ticks * px, "profile_volume": s.total * inst.lot}


def _vpin(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str,
          cfg: CatalogConfig) -> dict[str, np.ndarray]:
    from .vpin import VpinConfig, vpin

    out = np.full(len(sample_ts), np.nan)
    ts, price, qty, side = _trades(events, clock)
    if len(ts):
        cal_end = int(ts[0]) + cfg.vpin_calibration_ns
        cal = ts <= cal_end
        lots = int(qty[cal].sum())
        if lots > 0:
            size = max(1, lots // cfg.vpin_buckets_per_calibration)
            v = vpin(ts, price, qty, side, VpinConfig(bucket_lots=size, n_buckets=cfg.vpin_buckets,
                                                      bar_ns=cfg.vpin_bar_ns))
            out = np.where(np.asarray(sample_ts) >= cal_end, v.at(sample_ts), np.nan)
    return {"vpin": out}


def _lazy(module: str) -> GroupFn:
    """The ``catalog_columns`` group of an analytics module, imported when first used."""

    def group(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str,
              cfg: CatalogConfig) -> dict[str, np.ndarray]:
        return importlib.import_module(module).catalog_columns(events, inst, sample_ts, clock, cfg)

    return group


def _book(name: str) -> GroupFn:
    """A book group alone (:mod:`flowbook.features.bookpass`; :func:`columns` runs them together)."""

    def group(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str,
              cfg: CatalogConfig) -> dict[str, np.ndarray]:
        from .bookpass import book_columns

        return book_columns([name], events, inst, sample_ts, clock, cfg)[name]

    return group


_GROUPS: dict[str, GroupFn] = {
    "profile": _profile,
    "vpin": _vpin,
    "cost": _book("cost"),
    "micro": _book("micro"),
    "liquidity": _book("liquidity"),
    "futures": _lazy("flowbook.features.futures"),
}
GROUPS: tuple[str, ...] = (*_GROUPS, "detectors")


def resolve_groups(spec: str | Sequence[str]) -> list[str]:
    """``"core"`` -> [], ``"all"`` -> every available group, else the named groups (checked)."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    available = list(GROUPS)
    if names in (["core"], []):
        return []
    if names == ["all"]:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown feature group(s) {', '.join(unknown)}: choose from core, all, "
                         f"{', '.join(available)}")
    return names


def columns(groups: Sequence[str], events: np.ndarray, inst: Instrument, sample_ts: np.ndarray,
            clock: str = "ts_local", cfg: CatalogConfig | None = None) -> dict[str, np.ndarray]:
    """The columns of ``groups`` (detectors excluded) at ``sample_ts`` for one instrument's events."""
    from .bookpass import BOOK_GROUPS, book_columns

    cfg = cfg or CatalogConfig()
    out: dict[str, np.ndarray] = {}
    t = np.asarray(sample_ts, np.int64)
    book = [g for g in groups if g in BOOK_GROUPS]
    shared = book_columns(book, events, inst, t, clock, cfg) if book else {}  # one book pass for them all
    for g in groups:
        if g == "detectors":
            continue
        for name, col in (shared[g] if g in shared else _GROUPS[g](events, inst, t, clock, cfg)).items():
            if len(col) != len(t):
                raise RuntimeError(f"feature group {g}: column {name} has {len(col)} values for {len(t)} samples")
            out[name] = np.asarray(col)
    return out


DETECTION_SCHEMA = {"ts": pl.Int64, "symbol": pl.Utf8, "detector": pl.Utf8, "side": pl.Int8, "price": pl.Float64,
                    "volume": pl.Float64, "notional": pl.Float64, "count": pl.Int64, "confidence": pl.Float64,
                    "description": pl.Utf8, "price_ticks": pl.Int64, "lots": pl.Int64}


def detections(events: np.ndarray, inst: Instrument) -> pl.DataFrame:
    """The detectors' events of one instrument as a table (docs/detectors.md)."""
    from ..detectors import detect

    rows = detect(events, inst)
    return pl.DataFrame({
        "ts": [d.ts for d in rows], "symbol": [inst.symbol] * len(rows), "detector": [d.kind.name.lower() for d in rows],
        "side": [d.side for d in rows], "price": [d.price for d in rows], "volume": [d.volume for d in rows],
        "notional": [d.notional for d in rows], "count": [d.count for d in rows],
        "confidence": [d.confidence for d in rows], "description": [d.description for d in rows],
        "price_ticks": [d.price_ticks for d in rows], "lots": [d.lots for d in rows],
    }, schema=DETECTION_SCHEMA)


def detection_batch(frame: pl.DataFrame, inst: Instrument) -> Batch:
    """A :func:`detections` frame as rows of the store's ``detector_events`` table (``ts`` and
    ``ts_exchange``: the detectors' clock, exchange time by default; price and size exact)."""
    from ..store.schema import Batch

    ts = frame["ts"].to_numpy()
    return Batch.make("detector_events", inst, {
        "ts": ts, "ts_exchange": ts, "detector": frame["detector"].to_list(), "side": frame["side"].to_numpy(),
        "price": frame["price_ticks"].to_numpy(), "qty": frame["lots"].to_numpy(),
        "score": frame["confidence"].to_numpy(), "details": frame["description"].to_list()})
