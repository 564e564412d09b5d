"""``flowbook heatmap RECORDING... --out heat.png``: render a Bookmap-style heatmap of a recording.

``add_parser`` is wired into ``cli.py``; ``run_heatmap`` returns the exit code (2 with one line on
stderr for a user error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run_heatmap"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .cli import _duration_ns

    hp = subparsers.add_parser("heatmap", help="render a Bookmap-style liquidity heatmap of a recording to PNG")
    hp.add_argument("recordings", nargs="+", type=Path, metavar="RECORDING")
    hp.add_argument("--out", type=Path, required=True, help="PNG to write")
    hp.add_argument("--step", type=_duration_ns, default=1_000_000_000, help="time step (default 1s)")
    hp.add_argument("--bin-ticks", type=int, default=1, help="price bin height in ticks (default 1)")
    hp.add_argument("--max-bins", type=int, default=400, help="most price bins (default 400)")
    hp.add_argument("--parquet", type=Path, default=None, help="also write the non-empty cells to this Parquet file")
    hp.add_argument("--symbol", default=None, help="instrument to draw (default: the first)")
    hp.add_argument("--format", default=None, help="recording format (default: detected)")
    hp.add_argument("--size", default="1600x900", help="PNG size in pixels, WxH (default 1600x900)")
    return hp


def run_heatmap(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (OSError, ValueError) as exc:
        print(f"flowbook heatmap: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .heatmap import build, render, to_parquet
    from .replay.sources import load

    if args.bin_ticks < 1 or args.max_bins < 1:
        raise ValueError("--bin-ticks and --max-bins must be at least 1")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 1600x900, got {args.size!r}") from None
    if not 100 <= width <= 10000 or not 100 <= height <= 10000:
        raise ValueError("--size: each side must be within 100..10000 pixels")
    for p in args.recordings:
        if not p.is_file():
            raise ValueError(f"no such recording: {p}")
    loaded = load(list(args.recordings), args.format, False)
    names = [i.symbol for i in loaded.instruments]
    if not names:
        raise ValueError("the recordings hold no instrument")
    sym = args.symbol or names[0]
    if sym not in names:
        raise ValueError(f"symbol {sym!r} not in the recordings ({', '.join(names)})")
    idx = names.index(sym)
    ev = loaded.events[loaded.events["symbol"] == idx]
    hm = build(ev, loaded.instruments[idx], step_ns=args.step, bin_ticks=args.bin_ticks, max_bins=args.max_bins)
    render(hm, args.out, width, height)
    msg = f"wrote {args.out} ({len(hm.ts)} steps x {hm.bid.shape[1]} bins of {args.bin_ticks} tick(s), {sym})"
    if args.parquet is not None:
        n = to_parquet(hm, args.parquet)
        msg += f"; {args.parquet} ({n} cells)"
    print(msg)
    return 0
