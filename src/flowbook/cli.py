"""The one ``flowbook`` command.  Heavy imports happen inside subcommands, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _duration_ns(text: str) -> int:
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
             "h": 3_600_000_000_000}
    t = text.strip().lower()
    for u in sorted(units, key=len, reverse=True):
        if t.endswith(u):
            num = t[: -len(u)]
            try:
                v = float(num)
            except ValueError:
                break
            if v <= 0:
                break
            return int(round(v * units[u]))
    raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 100ms, 1s, 5m)")


def _utc(ns: int | float) -> str:
    """Epoch nanoseconds as ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC); ``-`` for 0."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if ns else "-"


def _store_error() -> type[Exception]:
    """The store's error type, imported only when an exception is being matched."""
    from .store.errors import StoreError

    return StoreError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="flowbook", description="Order-book and order-flow analytics for crypto markets.")
    ap.add_argument("--version", action="store_true", help="print the version and exit")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    rp = sub.add_parser("replay", help="replay recordings through the book and core features into Parquet")
    rp.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="recording files (formats are detected)")
    rp.add_argument("--out", required=True, type=Path, help="features output file (.parquet)")
    g = rp.add_mutually_exclusive_group()
    g.add_argument("--interval", type=_duration_ns, help="one row per clock tick (e.g. 100ms, 1s)")
    g.add_argument("--every-event", action="store_true", help="one row per applied depth message (default)")
    rp.add_argument("--clock", choices=["local", "exchange"], default="local",
                    help="time used for --interval sampling (default: local receive time)")
    rp.add_argument("--strict", action="store_true", help="stop at the first gap, stale snapshot, crossed book or bad line")
    rp.add_argument("--format", dest="fmt", help="force the recording format (e.g. binance-raw, cryptofeed, lobster)")
    rp.add_argument("--depth-levels", type=int, default=20, help="N for top-N features (default 20)")
    rp.add_argument("--band-bps", type=float, default=10.0, help="band around the mid for depth (default 10 bps)")
    rp.add_argument("--features", default="core", metavar="GROUPS",
                    help="core (default), all, or groups such as profile,vpin,cost,detectors "
                         "(the catalog: docs/analytics.md)")
    rp.add_argument("--no-archive", action="store_true", help="do not read or write the event archive")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    rp.add_argument("--store", metavar="URI",
                    help="also write events and features into a store: parquet:DIR or postgresql://… "
                         "(see docs/storage.md)")

    qp = sub.add_parser("query", help="run SQL on the store (DuckDB over Parquet, or PostgreSQL)")
    qp.add_argument("sql", metavar="SQL", help='e.g. "SELECT symbol, count(*) FROM trades GROUP BY 1"')
    qp.add_argument("--store", metavar="URI",
                    help="parquet:DIR or postgresql://… (default: $FLOWBOOK_STORE, else the default directory)")
    qp.add_argument("--format", dest="out_format", choices=["table", "csv", "parquet"], default="table",
                    help="output format (default table)")
    qp.add_argument("--out", type=Path, help="output file (required for parquet; csv goes to stdout without it)")
    qp.add_argument("--max-rows", type=int, default=100, help="rows printed by --format table (default 100)")

    from .cli_heatmap import add_parser as add_heatmap
    from .cli_live import add_parsers as add_live
    from .cli_summary import add_parser as add_summary
    from .cli_vectors import add_parser as add_vectors

    add_live(sub)
    add_heatmap(sub)
    add_summary(sub)
    add_vectors(sub)

    sp = sub.add_parser("synth", help="write a synthetic recording in flowbook's raw format")
    sp.add_argument("--out", required=True, type=Path, help="output file (.gz)")
    sp.add_argument("--updates", type=int, default=200_000, help="level updates (default 200000)")
    sp.add_argument("--seed", type=int, default=1)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"flowbook {__version__}")
        return 0
    if args.command is None:
        ap.print_help()
        return 0
    try:
        if args.command == "replay":
            from .cli_replay import run_replay

            return run_replay(args)
        if args.command in ("record", "live"):
            from .cli_live import run

            return run(args)
        if args.command == "heatmap":
            from .cli_heatmap import run_heatmap

            return run_heatmap(args)
        if args.command == "vectors":
            from .cli_vectors import run_vectors

            return run_vectors(args)
        if args.command == "summary":
            from .cli_summary import run_summary

            return run_summary(args)
        if args.command == "query":
            from .store.cli import run_query

            return run_query(args)
        if args.command == "synth":
            from .testing.synthetic import write_recording

            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_recording(args.out, args.updates, args.seed)
            print(f"wrote {args.out}")
            return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, _store_error()) as exc:  # user errors: one line, no traceback
        print(f"flowbook: error: {exc}", file=sys.stderr)
        return 2
    ap.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
