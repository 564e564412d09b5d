"""Model feature vectors: fixed, versioned, documented rows of numbers a model can rely on.

Two vectors (definitions, ranges and defaults in ``docs/signals.md``):

* ``book_v1`` (115 values): the top 20 levels of each side as distance from the mid in bps and size
  as ``log1p(size / median size of those 40 levels)``, the cumulative imbalance by depth, and book
  summary values.  For a CNN over the book.
* ``state_v1`` (41 values): spread, imbalances, OFI, trade imbalance (CVD change over volume),
  microprice offset, VPIN, volume-profile position, trade intensity, returns and volatility over
  windows, data-quality flags.  For a small dense model or an RL state.

Guarantees:

* **Finite and in range.** Every value is clipped to its column's documented ``[lo, hi]``; a value
  that cannot be computed (NaN, no book, no trade, window longer than the history) is replaced by the
  column's documented default, and flag columns (``valid``, ``book_valid``, ``trades_valid``,
  ``vpin_ready``, ``warm``, level counts) say which values are real.
* **Point in time.** The vector at sample time ``T`` uses only the events of the arrival-ordered
  stream up to the last one whose running-maximum receive time (``ts_local``) is ≤ ``T``; computing
  it from the event array truncated there gives the same numbers.
* **Versioned.** :class:`VectorSchema` carries names, dtypes, ranges, defaults, a version and a
  stable hash; a changed definition needs a new version (``tests/test_vectors.py`` pins v1).

:func:`flowbook.features.panel.panel` computes the raw (unnormalised) point-in-time values that
``state_v1`` normalises; the signal synthesizer and ``flowbook summary`` read the same panel.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..book import L2Book, readnb, window_for
from ..events import Instrument, Kind
from .panel import FLOW_WINDOWS_S, LEVELS, NS, monotone, panel, sample_ends, synced_after

__all__ = ["ColumnSpec", "VectorSchema", "BOOK_V1", "STATE_V1", "SCHEMAS", "BookLevels", "book_levels",
           "book_v1", "state_v1", "state_from_panel", "build", "sample_grid", "write_parquet", "read_schema"]

TRADE_STALE_S = 60.0  # state_v1 trades_valid: a trade within this many seconds


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a vector: values are clipped to ``[lo, hi]``; ``default`` replaces a missing value."""

    name: str
    lo: float
    hi: float
    default: float
    doc: str
    dtype: str = "float32"


@dataclass(frozen=True, slots=True)
class VectorSchema:
    """Names, dtypes, ranges, defaults and version of a feature vector; ``hash`` identifies the definition."""

    name: str
    version: int
    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def width(self) -> int:
        return len(self.columns)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "columns": [asdict(c) for c in self.columns]}

    @property
    def hash(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON of the definition (docs excluded)."""
        cols = [[c.name, c.dtype, float(c.lo), float(c.hi), float(c.default)] for c in self.columns]
        text = json.dumps([self.name, self.version, cols], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def finalize(self, raw: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Stack ``raw`` columns in schema order: missing/non-finite -> default, then clip to the range."""
        out = np.empty((n, self.width), np.float32)
        for j, c in enumerate(self.columns):
            v = np.asarray(raw[c.name], np.float64)
            out[:, j] = np.clip(np.where(np.isfinite(v), v, c.default), c.lo, c.hi)
        return out


# ---- book_v1 -------------------------------------------------------------------------------------
MAX_BPS = 250.0
SIZE_MAX = 10.0


def _book_columns() -> tuple[ColumnSpec, ...]:
    cols: list[ColumnSpec] = []
    for side, sign in (("bid", -1.0), ("ask", 1.0)):
        cols += [ColumnSpec(f"{side}_dist_{i}", -MAX_BPS, MAX_BPS, sign * MAX_BPS,
                            f"(price of {side} level {i} - mid) / mid x 1e4; missing level: {sign * MAX_BPS:+g}")
                 for i in range(1, LEVELS + 1)]
        cols += [ColumnSpec(f"{side}_size_{i}", 0.0, SIZE_MAX, 0.0,
                            f"log1p(size of {side} level {i} / median size of the top levels); missing: 0")
                 for i in range(1, LEVELS + 1)]
    cols += [ColumnSpec(f"cum_imbalance_{i}", -1.0, 1.0, 0.0,
                        f"(bid size - ask size) / (bid + ask size) over the best {i} levels of each side")
             for i in range(1, LEVELS + 1)]
    cols += [
        ColumnSpec("spread_bps", 0.0, 100.0, 0.0, "(best ask - best bid) / mid x 1e4"),
        ColumnSpec("microprice_offset_bps", -50.0, 50.0, 0.0, "(weighted mid - mid) / mid x 1e4"),
        ColumnSpec("bid_levels", 0.0, 1.0, 0.0, "bid levels present / 20 (levels beyond are defaults)"),
        ColumnSpec("ask_levels", 0.0, 1.0, 0.0, "ask levels present / 20"),
        ColumnSpec("log_size_ref", 0.0, 12.0, 0.0, "log10(1 + quote notional of the median level size)"),
        ColumnSpec("log_bid_notional", 0.0, 12.0, 0.0, "log10(1 + quote notional of the top-20 bids)"),
        ColumnSpec("log_ask_notional", 0.0, 12.0, 0.0, "log10(1 + quote notional of the top-20 asks)"),
        ColumnSpec("log_bid_notional_10bps", 0.0, 12.0, 0.0, "log10(1 + notional of all bids within 10 bps)"),
        ColumnSpec("log_ask_notional_10bps", 0.0, 12.0, 0.0, "log10(1 + notional of all asks within 10 bps)"),
        ColumnSpec("log_bid_notional_50bps", 0.0, 12.0, 0.0, "log10(1 + notional of all bids within 50 bps)"),
        ColumnSpec("log_ask_notional_50bps", 0.0, 12.0, 0.0, "log10(1 + notional of all asks within 50 bps)"),
        ColumnSpec("band_imbalance_10bps", -1.0, 1.0, 0.0, "(bid - ask size) / (bid + ask size) within 10 bps"),
        ColumnSpec("band_imbalance_50bps", -1.0, 1.0, 0.0, "(bid - ask size) / (bid + ask size) within 50 bps"),
        ColumnSpec("crossed", 0.0, 1.0, 0.0, "1 when best bid >= best ask"),
        ColumnSpec("valid", 0.0, 1.0, 0.0, "1 when the book is synced and two-sided; else every column is its default"),
    ]
    return tuple(cols)


BOOK_V1 = VectorSchema("book_v1", 1, _book_columns())


@dataclass(frozen=True, slots=True)
class BookLevels:
    """Top ``n`` levels per side at each sample (ticks and lots, best first, 0 where absent)."""

    bid_px: np.ndarray
    bid_q: np.ndarray
    ask_px: np.ndarray
    ask_q: np.ndarray
    n_bid: np.ndarray
    n_ask: np.ndarray
    synced: np.ndarray
    band: np.ndarray  # (samples, 4): bid lots within 10 bps, ask 10, bid 50, ask 50
    band_notional: np.ndarray  # same, Σ lots·ticks


def book_levels(events: np.ndarray, sample_ts: np.ndarray, n: int = LEVELS) -> BookLevels:
    """Replay one instrument's events into an :class:`L2Book` and read the best ``n`` levels per side
    (and the depth within 10 and 50 bps of the mid) at each sample time, point in time."""
    events = monotone(events)
    ends = sample_ends(events, sample_ts)
    s = len(ends)
    px = [np.zeros((s, n), np.int64) for _ in range(2)]
    q = [np.zeros((s, n), np.int64) for _ in range(2)]
    cnt = [np.zeros(s, np.int64) for _ in range(2)]
    band, band_n = np.zeros((s, 4)), np.zeros((s, 4))
    synced_ev = synced_after(events)
    synced = (ends > 0) & synced_ev[np.maximum(ends - 1, 0)] if len(events) else np.zeros(s, bool)
    book = L2Book(window=window_for(events))
    clears = np.flatnonzero(events["kind"] == Kind.BOOK_CLEAR)
    pos = 0
    for j, end in enumerate(ends.tolist()):
        if end > pos:
            start = pos
            for c in clears[np.searchsorted(clears, pos):np.searchsorted(clears, end)].tolist():
                book.apply(events[start:c])
                book.clear()
                start = c + 1
            book.apply(events[start:end])
            book.recenter_if_needed()
            pos = end
        if not synced[j]:
            continue
        for k, side in enumerate((1, -1)):
            cnt[k][j] = readnb.top_levels(*book.arrays, side, n, px[k][j], q[k][j])
        bb, ba = book.best_bid, book.best_ask
        if bb is None or ba is None:
            continue
        mid = (bb + ba) / 2.0
        for k, bps in enumerate((10.0, 50.0)):
            lo = math.ceil(mid * (1 - bps * 1e-4) - 1e-9)
            hi = math.floor(mid * (1 + bps * 1e-4) + 1e-9)
            band[j, 2 * k], band_n[j, 2 * k] = book.depth_to(1, lo)
            band[j, 2 * k + 1], band_n[j, 2 * k + 1] = book.depth_to(-1, hi)
    return BookLevels(px[0], q[0], px[1], q[1], cnt[0], cnt[1], synced, band, band_n)


def _quote(lots: np.ndarray, tick_lots: np.ndarray, inst: Instrument) -> np.ndarray:
    """Quote notional of ``lots`` at price ticks (``tick_lots`` = Σ lots·ticks for linear instruments)."""
    tick, lot = inst.tick, inst.lot
    if inst.inverse:
        return np.asarray(lots, float) * lot * inst.multiplier
    return np.asarray(tick_lots, float) * tick * lot


def book_v1(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray) -> np.ndarray:
    """``book_v1`` vectors (``[samples, 115]`` float32) of one instrument at the sample times."""
    lv = book_levels(events, sample_ts)
    s = len(lv.synced)
    valid = lv.synced & (lv.n_bid > 0) & (lv.n_ask > 0)
    bb = lv.bid_px[:, 0].astype(float)
    ba = lv.ask_px[:, 0].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = np.where(valid, (bb + ba) / 2.0, np.nan)
        raw: dict[str, np.ndarray] = {}
        sizes = np.concatenate([lv.bid_q, lv.ask_q], axis=1).astype(float)
        present = np.concatenate([np.arange(LEVELS)[None, :] < lv.n_bid[:, None],
                                  np.arange(LEVELS)[None, :] < lv.n_ask[:, None]], axis=1)
        ref = np.array([np.median(sizes[j][present[j]]) if valid[j] else np.nan for j in range(s)])
        for side, p, qq, n in (("bid", lv.bid_px, lv.bid_q, lv.n_bid), ("ask", lv.ask_px, lv.ask_q, lv.n_ask)):
            here = np.arange(LEVELS)[None, :] < n[:, None]
            dist = np.where(here, (p - mid[:, None]) / mid[:, None] * 1e4, np.nan)
            size = np.where(here, np.log1p(qq / ref[:, None]), np.nan)
            for i in range(LEVELS):
                raw[f"{side}_dist_{i + 1}"] = dist[:, i]
                raw[f"{side}_size_{i + 1}"] = size[:, i]
        cb, ca = np.cumsum(lv.bid_q, axis=1).astype(float), np.cumsum(lv.ask_q, axis=1).astype(float)
        cum = (cb - ca) / (cb + ca)
        for i in range(LEVELS):
            raw[f"cum_imbalance_{i + 1}"] = cum[:, i]
        qb, qa = lv.bid_q[:, 0].astype(float), lv.ask_q[:, 0].astype(float)
        raw["spread_bps"] = (ba - bb) / mid * 1e4
        micro = np.where(bb < ba, (qb * ba + qa * bb) / (qb + qa), np.nan)
        raw["microprice_offset_bps"] = (micro - mid) / mid * 1e4
        raw["bid_levels"], raw["ask_levels"] = lv.n_bid / LEVELS, lv.n_ask / LEVELS
        raw["log_size_ref"] = np.log10(1 + _quote(ref, ref * mid, inst))
        for side, p, qq in (("bid", lv.bid_px, lv.bid_q), ("ask", lv.ask_px, lv.ask_q)):
            raw[f"log_{side}_notional"] = np.log10(1 + _quote(qq.sum(1), (qq * p).sum(1), inst))
        for k, name in enumerate(("bid_notional_10bps", "ask_notional_10bps", "bid_notional_50bps",
                                  "ask_notional_50bps")):
            raw[f"log_{name}"] = np.log10(1 + _quote(lv.band[:, k], lv.band_notional[:, k], inst))
        for k, bps in enumerate((10, 50)):
            b, a = lv.band[:, 2 * k], lv.band[:, 2 * k + 1]
            raw[f"band_imbalance_{bps}bps"] = (b - a) / (b + a)
        raw["crossed"] = (bb >= ba).astype(float)
        raw["valid"] = valid.astype(float)
    for name in raw:  # an invalid book gives every column its default
        raw[name] = np.where(valid, raw[name], np.nan)
    return BOOK_V1.finalize(raw, s)


# ---- the raw panel and state_v1 ------------------------------------------------------------------
def _spec(name: str, lo: float, hi: float, default: float, doc: str) -> ColumnSpec:
    return ColumnSpec(name, float(lo), float(hi), float(default), doc)


STATE_V1 = VectorSchema("state_v1", 1, (
    _spec("spread_bps", 0, 100, 0, "(best ask - best bid) / mid x 1e4"),
    _spec("microprice_offset_bps", -50, 50, 0, "(weighted mid - mid) / mid x 1e4"),
    _spec("imbalance_1", -1, 1, 0, "best-level queue imbalance"),
    _spec("imbalance_20", -1, 1, 0, "top-20-level imbalance"),
    _spec("imbalance_dw", -1, 1, 0, "distance-weighted imbalance (10 bps decay)"),
    _spec("log_depth_ratio", -5, 5, 0, "ln(top-20 bid size / top-20 ask size)"),
    _spec("band_imbalance_10bps", -1, 1, 0, "(bid - ask size) / (bid + ask size) within 10 bps"),
    _spec("large_order_presence", 0, 1, 0, "share of top-20 size in levels >= 1 % of it"),
    _spec("log_depth_notional", 0, 12, 0, "log10(1 + top-20 notional of both sides)"),
    *(_spec(f"ofi_{w}s", -10, 10, 0, f"slog(OFI over {w} s / mean best-level size)") for w in (1, 10, 60)),
    *(_spec(f"mlofi_{m}_10s", -10, 10, 0, f"slog(level-{m} OFI over 10 s / mean best-level size)")
      for m in range(2, 6)),
    *(_spec(f"trade_imbalance_{w}s", -1, 1, 0, f"CVD change over {w} s / volume over {w} s")
      for w in (10, 60, 300)),
    _spec("trade_rate_10s", 0, 10, 0, "log1p(trades per second over 10 s)"),
    _spec("trade_rate_60s", 0, 10, 0, "log1p(trades per second over 60 s)"),
    _spec("volume_surge", -5, 5, 0, "ln(volume rate over 10 s / volume rate over 300 s)"),
    _spec("vwap_offset_bps", -500, 500, 0, "(mid - session VWAP) / VWAP x 1e4"),
    _spec("last_trade_offset_bps", -50, 50, 0, "(last trade price - mid) / mid x 1e4"),
    *(_spec(f"return_{w}s_bps", -500, 500, 0, f"mid return over {w} s, bps") for w in (10, 60, 300)),
    *(_spec(f"volatility_{w}s_bps", 0, 100, 0, f"RMS of 1 s mid log returns over {w} s, bps") for w in (60, 300)),
    _spec("vpin", 0, 1, 0, "VPIN (bulk volume classification, catalog calibration)"),
    _spec("vpin_ready", 0, 1, 0, "1 once VPIN is defined"),
    _spec("poc_offset_bps", -500, 500, 0, "(mid - session POC) / POC x 1e4"),
    _spec("value_area_position", -1, 2, 0.5, "(mid - VAL) / (VAH - VAL + 1 tick); 0..1 inside the value area"),
    _spec("inside_value_area", 0, 1, 0, "1 when VAL <= mid <= VAH"),
    _spec("book_valid", 0, 1, 0, "1 when the book is synced and two-sided"),
    _spec("trades_valid", 0, 1, 0, f"1 when a trade arrived in the last {TRADE_STALE_S:g} s"),
    _spec("book_age_s", 0, 10, 10, "log1p(seconds since the last depth message)"),
    _spec("trade_age_s", 0, 10, 10, "log1p(seconds since the last trade)"),
    _spec("warm", 0, 1, 0, f"1 once {max(FLOW_WINDOWS_S)} s of history exist (every window is full)"),
    _spec("tod_sin", -1, 1, 0, "sin(2 pi x UTC time of day / 24 h)"),
    _spec("tod_cos", -1, 1, 1, "cos(2 pi x UTC time of day / 24 h)"),
))

SCHEMAS: dict[str, VectorSchema] = {BOOK_V1.name: BOOK_V1, STATE_V1.name: STATE_V1}


def _slog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def state_from_panel(p: dict[str, np.ndarray]) -> np.ndarray:
    """``state_v1`` from a :func:`panel` (normalisation only; see ``docs/signals.md``)."""
    n = len(p["ts"])
    book = (p["book_synced"] > 0) & np.isfinite(p["mid"])
    with np.errstate(invalid="ignore", divide="ignore"):
        raw: dict[str, np.ndarray] = {
            c: p[c] for c in ("spread_bps", "microprice_offset_bps", "imbalance_1", "imbalance_dw",
                              "large_order_presence")}
        raw["imbalance_20"] = p["imbalance_n"]
        raw["log_depth_ratio"] = np.log(p["depth_ratio"])
        raw["band_imbalance_10bps"] = p["band_imbalance"]
        raw["log_depth_notional"] = np.log10(1 + p["depth_notional"])
        for w in (1, 10, 60):
            raw[f"ofi_{w}s"] = _slog(p[f"ofi_norm_{w}s"])
        for m in range(2, 6):
            raw[f"mlofi_{m}_10s"] = _slog(p[f"mlofi_norm_{m}_10s"])
        for w in (10, 60, 300):
            raw[f"trade_imbalance_{w}s"] = p[f"cvd_{w}s"] / p[f"volume_{w}s"]
        raw["trade_rate_10s"] = np.log1p(p["trades_10s"] / 10)
        raw["trade_rate_60s"] = np.log1p(p["trades_60s"] / 60)
        raw["volume_surge"] = np.log((p["volume_10s"] / 10) / (p["volume_300s"] / 300))
        raw["vwap_offset_bps"] = (p["mid"] / p["vwap"] - 1) * 1e4
        raw["last_trade_offset_bps"] = (p["last_price"] / p["mid"] - 1) * 1e4
        for w in (10, 60, 300):
            raw[f"return_{w}s_bps"] = p[f"return_{w}s_bps"]
        for w in (60, 300):
            raw[f"volatility_{w}s_bps"] = p[f"volatility_{w}s_bps"]
        raw["vpin"] = p["vpin"]
        raw["vpin_ready"] = np.isfinite(p["vpin"]).astype(float)
        raw["poc_offset_bps"] = (p["mid"] / p["poc"] - 1) * 1e4
        raw["value_area_position"] = (p["mid"] - p["val"]) / (p["vah"] - p["val"] + p["tick"])
        raw["inside_value_area"] = np.where(np.isfinite(p["val"]), (p["mid"] >= p["val"]) & (p["mid"] <= p["vah"]), np.nan)
        raw["book_valid"] = book.astype(float)
        raw["trades_valid"] = (p["trade_age_s"] <= TRADE_STALE_S).astype(float)
        raw["book_age_s"] = np.log1p(p["book_age_s"])
        raw["trade_age_s"] = np.log1p(p["trade_age_s"])
        raw["warm"] = (p["history_s"] >= max(FLOW_WINDOWS_S)).astype(float)
        day = (p["ts"] % (86400 * NS)) / (86400 * NS) * 2 * np.pi
        raw["tod_sin"], raw["tod_cos"] = np.sin(day), np.cos(day)
    book_cols = ("spread_bps", "microprice_offset_bps", "imbalance_1", "imbalance_20", "imbalance_dw",
                 "log_depth_ratio", "band_imbalance_10bps", "large_order_presence", "log_depth_notional",
                 "ofi_1s", "ofi_10s", "ofi_60s", *(f"mlofi_{m}_10s" for m in range(2, 6)))
    for c in book_cols:  # never describe a book that is not there
        raw[c] = np.where(book, raw[c], np.nan)
    return STATE_V1.finalize(raw, n)


def state_v1(events: np.ndarray, inst: Instrument, sample_ts: np.ndarray) -> np.ndarray:
    """``state_v1`` vectors (``[samples, 41]`` float32) of one instrument at the sample times."""
    return state_from_panel(panel(events, inst, sample_ts))


def build(name: str, events: np.ndarray, inst: Instrument, sample_ts: np.ndarray) -> np.ndarray:
    """The vectors ``name`` (``book_v1`` or ``state_v1``) at the sample times."""
    if name == "book_v1":
        return book_v1(events, inst, sample_ts)
    if name == "state_v1":
        return state_v1(events, inst, sample_ts)
    raise ValueError(f"unknown feature vector {name!r}; known: {', '.join(SCHEMAS)}")


def sample_grid(events: np.ndarray, step_ns: int = NS) -> np.ndarray:
    """Multiples of ``step_ns`` from the first synced depth message to the last event (receive clock)."""
    ev = monotone(events)
    ok = np.flatnonzero(synced_after(ev))
    if not len(ok):
        return np.zeros(0, np.int64)
    t0 = -(-int(ev["ts_local"][ok[0]]) // step_ns) * step_ns
    return np.arange(t0, int(ev["ts_local"][-1]) + 1, step_ns, dtype=np.int64)


META_KEY = b"flowbook.vector"


def write_parquet(path: Path | str, vectors: np.ndarray, schema: VectorSchema, ts: np.ndarray,
                  symbol: str | list[str] = "") -> None:
    """Write vectors as Parquet: ``ts`` (int64 ns), ``symbol`` (one for all rows, or one per row),
    then one float32 column per schema column; the schema (with its hash) is stored in the file's
    key-value metadata under ``flowbook.vector``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if vectors.shape[1] != schema.width or len(vectors) != len(ts):
        raise ValueError(f"{schema.name}: expected [{len(ts)}, {schema.width}] values, got {list(vectors.shape)}")
    syms = [symbol] * len(ts) if isinstance(symbol, str) else list(symbol)
    if len(syms) != len(ts):
        raise ValueError(f"{schema.name}: {len(syms)} symbols for {len(ts)} rows")
    cols = {"ts": pa.array(np.asarray(ts, np.int64)), "symbol": pa.array(syms, pa.string())}
    for j, name in enumerate(schema.names):
        cols[name] = pa.array(vectors[:, j].astype(np.float32))
    table = pa.table(cols)
    meta = dict(schema.to_dict(), hash=schema.hash)
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, str(path))


def read_schema(path: Path | str) -> VectorSchema:
    """The :class:`VectorSchema` stored in a file written by :func:`write_parquet` (hash checked)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(str(path)).metadata or {}
    if META_KEY not in meta:
        raise ValueError(f"{path}: no flowbook vector schema in the Parquet metadata")
    d = json.loads(meta[META_KEY])
    schema = VectorSchema(d["name"], int(d["version"]), tuple(ColumnSpec(**c) for c in d["columns"]))
    if schema.hash != d["hash"]:
        raise ValueError(f"{path}: schema hash {d['hash']} does not match its columns ({schema.hash})")
    return schema
