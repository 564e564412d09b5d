"""``flowbook replay``: progress bar and closing summary around :func:`flowbook.replay.replay`."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli import _utc
from .features import FeatureConfig
from .replay import ReplaySummary, replay
from .venues.binance import SyncError

__all__ = ["run_replay", "summary_table"]




def summary_table(s: ReplaySummary) -> Table:
    t = Table(title="replay summary", show_header=False)
    span = (s.ts_last - s.ts_first) / 1e9 if s.ts_last else 0.0
    rows = [
        ("format", s.format + (" (from event archive)" if s.from_archive else "")),
        ("symbols", ", ".join(s.symbols) or "-"),
        ("events", f"{s.events:,}"),
        ("diffs applied", f"{s.diffs_applied:,}"),
        ("level updates", f"{s.levels_applied:,}"),
        ("trades", f"{s.trades:,}"),
        ("gaps", str(s.gaps)),
        ("resyncs", str(s.resyncs)),
        ("crossed", str(s.crossed)),
        *([("checksums", f"{s.checksums_verified:,} verified, {s.checksum_failures:,} failed")]
          if s.checksums_verified or s.checksum_failures else []),
        ("rows written", f"{s.rows:,}"),
        ("time span", f"{_utc(s.ts_first)} → {_utc(s.ts_last)} UTC ({span:,.1f} s)"),
        ("wall time", f"{s.seconds:.2f} s (parse {s.parse_seconds:.2f} s)"),
        ("rate", f"{s.rate:,.0f} level updates/s"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def run_replay(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    cfg = FeatureConfig(
        interval_ns=args.interval or 0,
        clock=args.clock,
        depth_levels=args.depth_levels,
        band_bps=args.band_bps,
    )
    from .features.catalog import resolve_groups

    groups = resolve_groups(getattr(args, "features", "core"))  # an unknown group: ValueError, one line
    for p in args.paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} {task.fields[unit]}"),
                  TimeElapsedColumn(), console=console, disable=args.quiet or not console.is_terminal) as prog:
        tasks: dict[str, int] = {}

        def progress(phase: str, n: int) -> None:
            if phase not in tasks:
                tasks[phase] = prog.add_task(phase, total=None, unit="frames" if phase == "parse" else "events")
            prog.advance(tasks[phase], n)

        try:
            s = replay(args.paths, args.out, cfg, strict=args.strict, fmt=args.fmt,
                       use_archive=not args.no_archive, progress=progress, store=getattr(args, "store", None),
                       groups=groups)
        except SyncError as exc:
            console.print(f"flowbook: strict mode stopped: {exc}", markup=False, highlight=False)
            return 3
    console.print(summary_table(s))
    for line in s.issues[:20]:
        console.print(f"  issue: {line}", markup=False, highlight=False)
    if len(s.issues) > 20:
        console.print(f"  ... and {len(s.issues) - 20} more issues")
    print(f"wrote {s.rows:,} rows to {args.out}", file=sys.stdout)
    if s.detections >= 0:
        from .replay.run import detections_path

        print(f"wrote {s.detections:,} detector events to {detections_path(args.out)}", file=sys.stdout)
    if s.stored:
        print(f"stored {', '.join(f'{t} {n:,}' for t, n in s.stored.items())} rows into {s.store}")
    return 0
