"""``flowbook vectors RECORDING... --out FILE.parquet``: model feature vectors of a recording.

Writes one row per clock step (default 1 s) and symbol with the versioned vector ``book_v1`` or
``state_v1`` (:mod:`flowbook.features.vectors`); the schema and its hash travel in the Parquet
metadata (:func:`flowbook.features.vectors.read_schema`).  Only the standard library is imported at
module level, so ``flowbook --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_vectors"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from .cli import _duration_ns

    vp = sub.add_parser("vectors", help="model feature vectors (book_v1, state_v1) of a recording into Parquet")
    vp.add_argument("recordings", nargs="+", type=Path, metavar="RECORDING", help="recording files")
    vp.add_argument("--out", required=True, type=Path, help="output file (.parquet)")
    vp.add_argument("--vector", default="state_v1", choices=["book_v1", "state_v1"],
                    help="which vector (default state_v1; docs/signals.md)")
    vp.add_argument("--every", type=_duration_ns, default=1_000_000_000, metavar="STEP",
                    help="sampling step on the receive clock (default 1s)")
    vp.add_argument("--symbol", default=None, help="one instrument (default: every one in the recording)")
    vp.add_argument("--format", default=None, help="recording format (default: detected)")
    return vp


def run_vectors(args: argparse.Namespace) -> int:
    """Write the vectors; a user error is one line on stderr and exit code 2."""
    try:
        return _run(args)
    except (OSError, ValueError) as exc:
        print(f"flowbook vectors: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    for p in args.recordings:
        if not p.is_file():
            raise ValueError(f"no such recording: {p}")
    import numpy as np

    from .features.vectors import SCHEMAS, build, read_schema, sample_grid, write_parquet
    from .replay.sources import load

    loaded = load(list(args.recordings), args.format, False)
    names = [i.symbol for i in loaded.instruments]
    wanted = [args.symbol.upper()] if args.symbol else names
    missing = [s for s in wanted if s not in names]
    if missing:
        raise ValueError(f"symbol {missing[0]!r} not in the recording ({', '.join(names) or 'none'})")
    schema = SCHEMAS[args.vector]
    parts: list[tuple[str, np.ndarray, np.ndarray]] = []
    for sym in wanted:
        sid = names.index(sym)
        ev = loaded.events[loaded.events["symbol"] == sid]
        ts = sample_grid(ev, args.every)
        parts.append((sym, ts, build(args.vector, ev, loaded.instruments[sid], ts)))
    rows = sum(len(ts) for _, ts, _ in parts)
    if rows == 0:
        raise ValueError("no synced book in the recording: no vector to write")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ts = np.concatenate([t for _, t, _ in parts])
    order = np.argsort(ts, kind="stable")  # several symbols: merged by time
    syms = np.concatenate([np.full(len(t), sym, dtype=object) for sym, t, _ in parts])[order].tolist()
    vec = np.concatenate([v for _, _, v in parts])[order]
    write_parquet(args.out, vec, schema, ts[order], syms)
    read_schema(args.out)  # the file carries a schema whose hash checks
    print(f"wrote {rows:,} {schema.name} vectors ({schema.width} values, schema {schema.hash}) to {args.out}")
    return 0
