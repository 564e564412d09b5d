"""``flowbook record`` and ``flowbook live``.

Wiring (cli.py): call :func:`add_parsers` with the subparsers object, and :func:`run` for the commands
``record`` and ``live``.  Only the standard library is imported here; the network stack, numba and rich
load when a command runs, so ``flowbook --help`` stays fast.  ``python -m flowbook.cli_live`` runs the
two commands on their own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "main", "run", "run_live", "run_record"]

_SPEEDS = ["0ms", "100ms", "250ms", "500ms", "1000ms"]


def _seconds(text: str) -> float:
    """A duration (``30s``, ``5m``, ``2h``, ``500ms``) in seconds."""
    from .cli import _duration_ns

    return _duration_ns(text) / 1e9


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="VENUE:SYMBOLS",
                   help="venue and symbols, e.g. binance-usdm:BTCUSDT,ETHUSDT or kraken:BTC/USD (venues: binance, "
                        "binance-usdm, binance-coinm, bybit, bybit-linear, okx, kraken, coinbase)")
    p.add_argument("--base-url", metavar="URL",
                   help="REST and WebSocket base of a mirror or the simulator, e.g. http://127.0.0.1:8765")
    p.add_argument("--ws-url", metavar="URL", help="WebSocket base only (default: the venue's)")
    p.add_argument("--rest-url", metavar="URL", help="REST base only (default: the venue's)")
    p.add_argument("--depth-speed", choices=_SPEEDS, help="Binance diff-depth update speed (default 100ms)")
    p.add_argument("--trades", choices=["trade", "aggTrade", "none"], default="trade",
                   help="trade stream (default trade; subscribing both would count every trade twice)")
    p.add_argument("--snapshot-limit", type=int,
                   help="Binance: levels per side of REST snapshots (default 1000); venues that push the book "
                        "(Bybit, OKX, Kraken): the book depth subscribed (default: the venue's, docs/venues.md)")
    p.add_argument("--duration", type=_seconds, help="stop after this long (e.g. 30s, 2h); default: until Ctrl-C")
    p.add_argument("--poll", type=_seconds, metavar="INTERVAL",
                   help="REST polling instead of WebSockets: a depth snapshot (--snapshot-limit, default 20) "
                        "and recent trades (unless --trades none) per symbol every INTERVAL, e.g. 1s")
    p.add_argument("--store", metavar="URI",
                   help="also write events (and, for live, feature rows) into a store: parquet:DIR or "
                        "postgresql://… (written in the background; see docs/storage.md)")
    p.add_argument("--spill-dir", type=Path, metavar="DIR",
                   help="where rows wait while the store is unavailable (default: under the flowbook data dir)")
    p.add_argument("--verbose", action="store_true", help="log connections, resyncs and errors to stderr")


def add_parsers(sub: Any) -> None:
    """Add ``record`` and ``live`` to a ``flowbook`` subparsers object."""
    rp = sub.add_parser("record", help="record raw WebSocket frames and REST snapshots into gzip files")
    _common(rp)
    rp.add_argument("--out", required=True, type=Path, help="directory (files: OUT/VENUE/SYMBOL/*.gz, hourly)")
    lp = sub.add_parser("live", help="live order-book features per symbol in a terminal table")
    _common(lp)
    lp.add_argument("--record", type=Path, metavar="DIR", help="also record raw frames into DIR")
    lp.add_argument("--refresh", type=float, default=0.5, help="table refresh interval in seconds (default 0.5)")


def run(args: argparse.Namespace) -> int:
    """Run the ``record`` or ``live`` command parsed by :func:`add_parsers`."""
    return run_record(args) if args.command == "record" else run_live(args)


def run_record(args: argparse.Namespace) -> int:
    return _run(args, record=args.out, features=False)


def run_live(args: argparse.Namespace) -> int:
    return _run(args, record=args.record, features=True)


def _fail(exc: BaseException | str) -> int:
    print(f"flowbook: error: {exc}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, record: Path | None, features: bool) -> int:
    import asyncio
    import logging

    from .venues.registry import UnknownVenue, parse_target

    try:
        venue, symbols = parse_target(args.target)
    except UnknownVenue as exc:
        return _fail(exc)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    ws, rest = args.ws_url, args.rest_url
    if args.base_url:
        base = args.base_url.rstrip("/")
        rest = rest or base
        ws = ws or ("ws" + base[4:] if base.startswith("http") else base)
    try:
        return asyncio.run(_main(args, venue, symbols, ws, rest, record, features))
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        print("interrupted", file=sys.stderr)
        return 130


async def _main(args: argparse.Namespace, venue: Any, symbols: list[str], ws: str | None, rest: str | None,
                record: Path | None, features: bool) -> int:
    import asyncio
    import signal

    from rich.console import Console
    from rich.live import Live

    from .live import LiveRunner
    from .live.storesink import describe
    from .live.table import OfiAccumulator, live_table
    from .store.errors import StoreError
    from .venues.binance.live import LiveConfig, LiveError
    from .venues.binance.rest import UnknownSymbol

    try:
        cfg = LiveConfig(depth_speed=args.depth_speed, trades=args.trades, ws_url=ws, rest_url=rest,
                         snapshot_limit=args.snapshot_limit, poll_interval=getattr(args, "poll", None))
        runner = LiveRunner(venue=venue, symbols=symbols, config=cfg, compute_features=features, record=record,
                            store=args.store, store_options={"spill_dir": args.spill_dir})
    except (LiveError, ValueError, OSError, StoreError) as exc:
        return _fail(exc)
    loop = asyncio.get_running_loop()

    def on_signal() -> None:  # the first Ctrl-C closes cleanly, a second one interrupts
        runner.request_stop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(s)

    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, on_signal)
    try:
        await runner.start()
    except (LiveError, UnknownSymbol) as exc:
        return _fail(exc)
    console = Console(stderr=not features)
    if not console.is_terminal:  # a pipe or a file: one wide table at the end
        console = Console(stderr=not features, width=220)
    ofi = OfiAccumulator()
    if features:
        runner.on_features(ofi)
    deadline = None if args.duration is None else loop.time() + args.duration
    refresh = getattr(args, "refresh", 1.0)
    view: Any = (Live(live_table(runner, ofi, features), console=console, auto_refresh=False)
                 if console.is_terminal else _NoView())
    try:
        with view:
            while True:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    break
                if await runner.wait(refresh if left is None else min(refresh, left)):
                    break
                ofi.roll()
                view.update(live_table(runner, ofi, features), refresh=True)
        if not console.is_terminal:  # the state just before closing
            ofi.roll()
            console.print(live_table(runner, ofi, features))
    finally:
        await runner.stop()
    if runner.store is not None and runner.store_report is not None:
        print(describe(runner.store_report, runner.store.uri, runner.store.spill_dir), file=sys.stderr)
    if runner.recorder is not None:
        print(f"recorded {runner.recorder.lines:,} lines into {len(runner.recorder.files)} files under "
              f"{runner.recorder.root}", file=sys.stderr)
    return 0


class _NoView:
    def __enter__(self) -> _NoView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *args: object, **kwargs: object) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="flowbook")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_parsers(sub)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
