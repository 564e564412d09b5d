"""``flowbook summary RECORDING... [--symbol S] [--at TIME]``: one screen on a symbol's order flow.

Shows, at time ``T`` (default: the end of the recording), computed only from the events known at
``T``: last price, spread, imbalances, OFI, CVD, session VWAP / POC / value area, VPIN, volatility,
the latest detector events, the signal with its reasons, and data-quality flags.  Definitions:
``docs/signals.md``.  Only the standard library is imported here; numba, polars and rich load when
the command runs, so ``flowbook --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .cli import _utc

__all__ = ["add_parser", "run_summary", "parse_at"]

_AT_HELP = "ISO 8601 UTC (2024-08-08T23:58:00), epoch nanoseconds, start+90s or end-30s"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    sp = subparsers.add_parser("summary", help="one-screen text summary of a symbol's order flow in a recording")
    sp.add_argument("recordings", nargs="+", type=Path, metavar="RECORDING")
    sp.add_argument("--symbol", default=None, help="instrument (default: the first)")
    sp.add_argument("--at", default=None, metavar="TIME", help=f"summary time (default: the end); {_AT_HELP}")
    sp.add_argument("--config", type=Path, default=None, metavar="TOML", help="signal thresholds and weights")
    sp.add_argument("--format", default=None, help="recording format (default: detected)")
    sp.add_argument("--events", type=int, default=6, metavar="N", help="detector events shown (default 6)")
    return sp


def run_summary(args: argparse.Namespace) -> int:
    """Print the summary; a user error is one line on stderr and exit code 2."""
    try:
        return _run(args)
    except (OSError, ValueError) as exc:
        print(f"flowbook summary: error: {exc}", file=sys.stderr)
        return 2


def parse_at(text: str, first_ns: int, last_ns: int) -> int:
    """``--at`` to epoch nanoseconds (``ValueError`` naming the accepted forms)."""
    from .cli import _duration_ns

    t = text.strip().lower()
    for word, base in (("start", "+"), ("end", "-")):
        if t.startswith(word) and t[len(word):len(word) + 1] == base:
            t = t[len(word):]
    try:
        if t[:1] in "+-" and t[1:2].isdigit() and not t[1:].isdigit():
            d = _duration_ns(t[1:])
            return first_ns + d if t[0] == "+" else last_ns - d
        if t.isdigit():
            return int(t)
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        return int(round(dt.timestamp() * 1e6)) * 1000
    except (ValueError, argparse.ArgumentTypeError):
        raise ValueError(f"--at {text!r}: not a time ({_AT_HELP})") from None




def _num(x: float, fmt: str = ",.2f", suffix: str = "") -> str:
    return "-" if not math.isfinite(x) else format(x, fmt) + suffix


def _run(args: argparse.Namespace) -> int:
    if args.events < 0:
        raise ValueError("--events must be >= 0")
    for p in args.recordings:
        if not p.is_file():
            raise ValueError(f"no such recording: {p}")
    from .signals import SignalConfig

    cfg = SignalConfig.from_toml(args.config) if args.config is not None else SignalConfig()
    import numpy as np

    from .features.panel import monotone
    from .replay.sources import load
    from .signals import base_unit, panel, panel_row, synthesize

    loaded = load(list(args.recordings), args.format, False)
    names = [i.symbol for i in loaded.instruments]
    if not names:
        raise ValueError(f"{args.recordings[0]}: the recording holds no instrument")
    sym = args.symbol.upper() if args.symbol else names[0]
    if sym not in names:
        raise ValueError(f"symbol {args.symbol!r} not in the recording ({', '.join(names)})")
    idx = names.index(sym)
    inst = loaded.instruments[idx]
    ev = monotone(loaded.events[loaded.events["symbol"] == idx])
    known = ev["ts_local"][ev["ts_local"] > 0]
    if not len(known):
        raise ValueError(f"{sym}: no events with a receive time")
    first, last = int(known[0]), int(known[-1])
    at = last if args.at is None else parse_at(args.at, first, last)
    if not first <= at <= last:
        raise ValueError(f"--at {args.at}: {_utc(at)} is outside the recording ({_utc(first)} .. {_utc(last)} UTC)")
    prefix = ev[: int(np.searchsorted(ev["ts_local"], at, side="right"))]
    p = panel(prefix, inst, np.array([at], np.int64))
    row = panel_row(p, 0)
    unit = base_unit(inst)
    sig = synthesize(row, cfg, unit, at)
    dets = _detections(prefix, inst, args.events)
    _render(sym, inst, at, first, row, sig, dets, loaded, unit)
    return 0


def _detections(prefix: Any, inst: Any, n: int) -> list[Any]:
    """The last ``n`` detector events known at the summary time (detectors run on the prefix only)."""
    from .detectors import detect
    from .events import Kind

    scalable = (prefix["kind"] == Kind.TRADE) | ((prefix["kind"] == Kind.BOOK_SET) & (prefix["qty"] > 0))
    if n == 0 or not scalable.any():  # nothing to scale the detectors' thresholds on yet
        return []
    return detect(prefix, inst)[-n:]


def _render(sym: str, inst: Any, at: int, first: int, r: dict[str, float], sig: Any, dets: list[Any],
            loaded: Any, unit: str) -> None:
    from decimal import Decimal

    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table

    exp = Decimal(inst.tick_size).normalize().as_tuple().exponent
    px = f",.{max(0, -exp) if isinstance(exp, int) else 2}f"

    def grid(title: str, rows: list[tuple[str, str]]) -> Table:
        t = Table(title=title, show_header=False, box=None, pad_edge=False, title_justify="left",
                  title_style="bold")
        t.add_column(style="dim", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        for k, v in rows:
            t.add_row(k, v)
        return t

    book = grid("book", [
        ("last price", _num(r["last_price"], px)),
        ("mid", _num(r["mid"], px)),
        ("spread", _num(r["spread_bps"], ".2f", " bps")),
        ("imbalance L1", _num(r["imbalance_1"], "+.2f")),
        ("imbalance 20 lv", _num(r["imbalance_n"], "+.2f")),
        ("microprice", _num(r["microprice_offset_bps"], "+.2f", " bps")),
        ("book age", _num(r["book_age_s"], ".2f", " s")),
    ])
    flow = grid("flow", [
        ("OFI 10 s", _num(r["ofi_10s"], "+,.4g", f" {unit}")),
        ("OFI 60 s", _num(r["ofi_60s"], "+,.4g", f" {unit}")),
        ("CVD 1 min", _num(r["cvd_60s"], "+,.4g", f" {unit}")),
        ("CVD 5 min", _num(r["cvd_300s"], "+,.4g", f" {unit}")),
        ("CVD all", _num(r["cvd"], "+,.4g", f" {unit}")),
        ("volume 5 min", _num(r["volume_300s"], ",.4g", f" {unit}")),
        ("trades/s 1 min", _num(r["trades_60s"] / 60, ".1f")),
    ])
    inside = math.isfinite(r["val"]) and r["val"] <= r["mid"] <= r["vah"]
    prof = grid("profile (UTC day)", [
        ("VWAP", _num(r["vwap"], px)),
        ("POC", _num(r["poc"], px)),
        ("VAH", _num(r["vah"], px)),
        ("VAL", _num(r["val"], px)),
        ("mid vs value area", ("inside" if inside else "outside") if math.isfinite(r["val"]) else "-"),
    ])
    risk = grid("risk", [
        ("VPIN", _num(r["vpin"], ".2f")),
        ("volatility 1 min", _num(r["volatility_60s_bps"], ".2f", " bps/s")),
        ("return 1 min", _num(r["return_60s_bps"], "+.1f", " bps")),
        ("return 5 min", _num(r["return_300s_bps"], "+.1f", " bps")),
    ])
    top = Table.grid(padding=(0, 4))
    top.add_row(book, flow)
    top.add_row("", "")
    top.add_row(prof, risk)
    colour = {"LONG": "green", "SHORT": "red", "HOLD": "yellow"}[sig.decision.name]
    head = f"signal [bold {colour}]{sig.decision.name}[/] strength {sig.strength:.2f} (score {sig.score:+.2f}, " \
           f"data {sig.coverage:.0%})" + ("" if sig.valid else " [bold red]NOT VALID[/]")
    reasons = Table.grid()
    for line in sig.reasons or ("-",):
        reasons.add_row(f"  - {line}")
    det = Table(title="detector events (latest)", title_justify="left", title_style="bold", box=None,
                pad_edge=False)
    for c in ("exchange time", "detector", "description"):
        det.add_column(c, style="dim" if c != "description" else None)
    for d in dets:
        det.add_row(_utc(d.ts)[11:], d.kind.name.lower(), d.description)
    if not dets:
        det.add_row("-", "none", "")
    st = loaded.stats
    feed = ", ".join(f"{st.get(k, 0)} {k.replace('_', ' ')}" for k in ("gaps", "resyncs", "stale_snapshots"))
    feed += f", {len(loaded.issues)} feed issue(s)"
    body = Group(top, "", head, reasons, "", det, "",
                 f"flags: {', '.join(sig.flags) if sig.flags else 'none'}", f"feed: {feed}")
    title = f"{sym} ({inst.venue}) at {_utc(at)} UTC, {(at - first) / 1e9:,.0f} s into the recording"
    Console(highlight=False).print(Panel(body, title=title, title_align="left"))
