"""`replay`: recordings -> events (or their archive) -> book + features -> Parquet, with a summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..events import Instrument
from ..features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine
from ..venues.binance import SyncError
from .archive import archive_path, fingerprint, read_archive, write_archive
from .sources import Loaded, load

__all__ = ["ReplaySummary", "replay", "features_frame", "detections_path"]


@dataclass
class ReplaySummary:
    files: int = 0
    format: str = ""
    events: int = 0
    diffs_applied: int = 0
    levels_applied: int = 0
    book_messages: int = 0
    gaps: int = 0
    resyncs: int = 0
    crossed: int = 0
    checksums_verified: int = 0  # venues whose book messages carry a checksum (OKX, Kraken)
    checksum_failures: int = 0
    trades: int = 0
    rows: int = 0
    symbols: list[str] = field(default_factory=list)
    ts_first: int = 0
    ts_last: int = 0
    seconds: float = 0.0
    parse_seconds: float = 0.0
    from_archive: bool = False
    issues: list[str] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)  # rows new to the --store, per table
    detections: int = -1  # detector events written (-1: detectors not run)
    store: str = ""  # that store's URI (no password)

    @property
    def rate(self) -> float:
        """Level updates per second of wall time for the whole run."""
        return self.levels_applied / self.seconds if self.seconds > 0 else 0.0


def features_frame(rows: list[tuple[str, np.ndarray, np.ndarray]], interval: bool,
                   extras: list[dict[str, np.ndarray]] | None = None) -> pl.DataFrame:
    """Feature rows of several symbols as one DataFrame sorted by time; ``extras`` (one dict per
    symbol) adds the catalog's columns (:mod:`flowbook.features.catalog`)."""
    frames = []
    for k, (sym, f, ii) in enumerate(rows):
        cols: dict[str, object] = {
            "ts_local": ii[:, 0],
            "ts_exchange": ii[:, 1],
            "symbol": [sym] * len(ii),
            "update_id": ii[:, 2],
        }
        for j, name in enumerate(FEATURE_COLUMNS):
            cols[name] = f[:, j]
        if extras:
            cols.update(extras[k])
        frames.append(pl.DataFrame(cols))
    if not frames:
        schema = {"ts_local": pl.Int64, "ts_exchange": pl.Int64, "symbol": pl.Utf8, "update_id": pl.Int64}
        schema.update({c: pl.Float64 for c in FEATURE_COLUMNS})
        return pl.DataFrame(schema=schema)
    # merge symbols by time, keeping each symbol's rows in application order (buffered diffs applied
    # after a snapshot carry earlier receive times than the snapshot)
    df = pl.concat(frames)
    df = df.with_columns(pl.col("ts_local").cum_max().over("symbol").alias("_order"))
    df = df.sort(["_order", "symbol"], maintain_order=True).drop("_order")
    df = df.with_columns(pl.col("trade_count").cast(pl.Int64))
    if interval:
        df = df.rename({"ts_local": "ts"})
    return df


def replay(
    paths: list[Path],
    out: Path,
    config: FeatureConfig | None = None,
    strict: bool = False,
    fmt: str | None = None,
    use_archive: bool = True,
    progress: Callable[[str, int], None] | None = None,
    store: str | Path | object | None = None,
    groups: list[str] | None = None,
) -> ReplaySummary:
    """Replay recordings through the book and the core features into ``out`` (Parquet).

    ``store`` (a store URI such as ``parquet:DIR`` / ``postgresql://…``, or an open store) also
    receives the normalized events and the feature rows (see ``docs/storage.md``); it is opened
    first, so an unreachable database fails the run before any work.  ``groups`` adds feature groups
    of the catalog (:func:`flowbook.features.catalog.resolve_groups`); with ``"detectors"`` among them
    the detectors' events go to ``<out>.detections.parquet``.
    """
    cfg = config or FeatureConfig()
    t0 = time.perf_counter()
    summary = ReplaySummary(files=len(paths))
    sink = None
    if store is not None:
        from ..store import open_store

        sink = open_store(store) if isinstance(store, str | Path) else store
    fp = fingerprint(paths, f"{fmt}|{strict}")
    apath = archive_path(out, fp)
    loaded: Loaded | None = None
    if use_archive and apath.exists():
        events, insts, meta = read_archive(apath)
        loaded = Loaded(events, insts, meta.get("stats", {}), meta.get("issues", []),
                        np.asarray(meta.get("msg_end", []), np.int64), meta.get("msg_where", []))
        summary.format = meta.get("format", "?")
        summary.from_archive = True
    else:
        from .sources import detect_format

        summary.format = fmt or detect_format(paths)
        loaded = load(paths, summary.format, strict,
                      (lambda n: progress("parse", n)) if progress else None)
        if use_archive:
            write_archive(apath, loaded.events, loaded.instruments, {
                "format": summary.format, "stats": loaded.stats, "issues": loaded.issues[:1000],
                "msg_end": loaded.msg_end.tolist(), "msg_where": loaded.msg_where,
            })
    summary.parse_seconds = time.perf_counter() - t0
    ev = loaded.events
    summary.events = len(ev)
    summary.diffs_applied = int(loaded.stats.get("diffs_applied", 0))
    summary.levels_applied = int(loaded.stats.get("levels_applied", 0))
    summary.gaps = int(loaded.stats.get("gaps", 0))
    summary.resyncs = int(loaded.stats.get("resyncs", 0))
    summary.checksums_verified = int(loaded.stats.get("checksums_verified", 0))
    summary.checksum_failures = int(loaded.stats.get("checksum_failures", 0))
    summary.trades = int(loaded.stats.get("trades", 0))
    summary.issues = list(loaded.issues)
    if len(ev):
        summary.ts_first = int(ev["ts_local"][ev["ts_local"] > 0].min())
        summary.ts_last = int(ev["ts_local"].max())
    rows = []
    extras: list[dict[str, np.ndarray]] = []
    found: list[pl.DataFrame] = []
    det_insts: list[Instrument] = []
    for sid, inst in enumerate(loaded.instruments):
        idx = np.flatnonzero(ev["symbol"] == sid)
        if idx.size == 0:
            continue
        summary.symbols.append(inst.symbol)
        eng = run_symbol(inst, ev[idx], cfg)
        if eng.stats.crossed:
            where = loaded.where(int(idx[eng.stats.first_crossed_event]))
            text = f"{where}: {inst.symbol}: crossed book ({eng.stats.crossed} messages left best bid >= best ask)"
            if strict:
                raise SyncError(text)
            summary.issues.append(text)
        summary.crossed += eng.stats.crossed
        summary.book_messages += eng.stats.book_messages
        f, ii = eng.take()
        rows.append((inst.symbol, f, ii))
        if groups:
            from ..features import catalog

            clock = "ts_exchange" if cfg.interval_ns > 0 and cfg.clock == "exchange" else "ts_local"
            # the time each row was known: buffered diffs applied after a snapshot carry earlier receive
            # times than the snapshot, so a row's knowledge time is the running maximum
            known = np.maximum.accumulate(ii[:, 0])
            # the symbol's events once for every group: a view when they are contiguous (one symbol)
            sym_ev = ev[idx[0]: idx[-1] + 1] if idx[-1] - idx[0] + 1 == idx.size else ev[idx]
            extras.append(catalog.columns(groups, sym_ev, inst, known, clock))
            if "detectors" in groups:
                found.append(catalog.detections(sym_ev, inst))
                det_insts.append(inst)
        if progress:
            progress("features", int(idx.size))
    df = features_frame(rows, interval=cfg.interval_ns > 0, extras=extras if groups else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out, compression="zstd")
    if groups and "detectors" in groups:
        from ..features.catalog import DETECTION_SCHEMA

        det = pl.concat(found).sort("ts", maintain_order=True) if found else pl.DataFrame(schema=DETECTION_SCHEMA)
        det.write_parquet(detections_path(out), compression="zstd")
        summary.detections = det.height
    summary.rows = df.height
    if sink is not None:
        from ..store import write_replay

        summary.stored = write_replay(sink, ev, loaded.instruments, rows, cfg, FEATURE_COLUMNS, fp)
        if found:
            from ..features.catalog import detection_batch

            batches = [detection_batch(d, i) for d, i in zip(found, det_insts, strict=True) if d.height]
            summary.stored["detector_events"] = sink.write(batches, batch_id=f"{fp}-detectors") if batches else 0
        summary.store = str(getattr(sink, "uri", ""))
        if sink is not store:
            sink.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def detections_path(out: Path) -> Path:
    """Where ``replay`` writes the detectors' events for the features file ``out``."""
    return out.with_name(out.stem + ".detections.parquet")


def run_symbol(inst: Instrument, events: np.ndarray, cfg: FeatureConfig) -> FeatureEngine:
    eng = FeatureEngine(inst, cfg)
    eng.process(events)
    eng.finish()
    return eng
