"""Bybit v5 recordings -> events, through :class:`~flowbook.venues.bybit.BybitFeed`.

Three kinds of files are read (any mix; content probe :func:`is_bybit`):

- flowbook recordings of Bybit frames: ``<local_ns> <raw JSON>`` lines, gzip or plain, laid out by
  ``flowbook record`` as ``<dir>/<venue>/<SYMBOL>/...`` (the venue folder, ``bybit`` or ``bybit-linear``,
  names the market);
- Bybit's public historical order-book files (``2024-12-01_XRPUSDT_ob500.data``, plain, gzip or inside a
  ``.zip``): one push per line and no receive time, so the push's ``ts`` is taken as the receive time;
- cryptofeed's raw recordings of a Bybit v5 connection (``BYBIT.ws.1.0``): ``<url> <-> <ts>`` opens the
  connection (its URL names the market: ``/v5/public/linear`` or ``/spot``), ``<url> <- <ts>: <json>`` is a
  sent request, ``<ts>: <json>`` a received frame; ``ts`` is epoch seconds as text.

Tick and lot sizes: a recording seldom carries Bybit's instrument list, and a level-1 book's first snapshot
(one bid, one ask) cannot tell the tick.  So the files are read twice: first every price and size of each
symbol is collected (the tick is their greatest common step, the lot the finest precision a size is written
in; an instruments-info answer in the recording is folded in), then the frames go through the feed with
those instruments, so every value converts exactly.
"""

from __future__ import annotations

import heapq
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from math import gcd
from pathlib import Path

import msgspec
import numpy as np

from ..events import EVENT_DTYPE, Instrument
from ..venues.bybit import VENUES, BybitFeed, SyncError, decode
from ..venues.bybit.messages import AllLiquidation, InstrumentsInfo, OrderBook, PublicTrade
from .cryptofeed import parse_ts_ns
from .raw import head_lines, is_raw_format, iter_frames, open_recording, order_files
from .sources import Loaded, _feed_result

__all__ = ["is_bybit", "is_bybit_cryptofeed", "is_bybit_data", "is_bybit_raw", "load_bybit", "scan_instruments"]

Frame = tuple[int, bytes, str]  # receive time ns, payload, "file:line"

_TOPIC = re.compile(rb'"topic"\s*:\s*"(?:orderbook|publicTrade|tickers|allLiquidation)\.')
_CF_CONNECT = re.compile(rb"^wss://stream(?:-testnet)?\.bybit\.com/v5/public/([a-z]+)\S* <-> \d")
_TS_FIELD = re.compile(rb'"ts"\s*:\s*(\d+)')
_MS = 1_000_000


# -- reading files
def _first_lines(path: Path, n: int = 20) -> list[bytes]:
    out: list[bytes] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if not members:
                    return out
                with z.open(members[0]) as fh:
                    return [fh.readline(1 << 20) for _ in range(n)]
        return head_lines(path, n)
    except (OSError, EOFError, zipfile.BadZipFile):
        pass
    return out


def is_bybit_raw(path: Path) -> bool:
    """A flowbook recording (``<local_ns> <json>`` lines) whose frames are Bybit v5 topic pushes."""
    return is_raw_format(path) and any(_TOPIC.search(line) for line in _first_lines(path))


def is_bybit_data(path: Path) -> bool:
    """A Bybit historical order-book file (JSON lines of ``orderbook.*`` pushes), plain, gzip or zipped."""
    head = _first_lines(path, 1)
    return bool(head) and head[0].lstrip().startswith(b"{") and bool(_TOPIC.search(head[0][:200]))


def is_bybit_cryptofeed(path: Path) -> bool:
    """A cryptofeed raw recording of a Bybit v5 public connection (first line ``wss://stream.bybit.com/v5/...
    <-> <ts>``).  The retired v1/v2 captures (``realtime`` URLs) are not."""
    head = _first_lines(path, 1)
    return bool(head) and _CF_CONNECT.match(head[0]) is not None


def is_bybit(path: Path) -> bool:
    """Content probe: any of the three Bybit recording kinds."""
    return is_bybit_cryptofeed(path) or is_bybit_data(path) or is_bybit_raw(path)


def _data_frames(path: Path, errors: list[str]) -> Iterator[Frame]:
    """Lines of a historical ``.data`` file (or of every member of a ``.zip``); ``ts`` is the receive time."""
    def lines(fh, name: str) -> Iterator[Frame]:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            m = _TS_FIELD.search(line)
            if m is None:
                errors.append(f"{name}:{lineno}: no 'ts' in the line")
                continue
            yield int(m.group(1)) * _MS, line, f"{name}:{lineno}"

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if not member.endswith("/"):
                    with z.open(member) as fh:
                        yield from lines(fh, f"{path}!{member}")
        return
    with open_recording(path) as fh:
        yield from lines(fh, str(path))


def _cryptofeed_frames(path: Path, errors: list[str]) -> Iterator[Frame]:
    """Received frames (``<ts>: <json>``) and REST answers of one cryptofeed connection file."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if line[:1].isdigit():
                ts, sep, payload = line.partition(b": ")
            else:
                _, sep, rest = line.partition(b" ")
                arrow, _, rest = rest.partition(b" ")
                if arrow in (b"<-", b"<->"):  # a sent request, the connection opening
                    continue
                ts, sep, payload = rest.partition(b": ") if arrow == b"->" else (b"", b"", b"")
            if not sep or not payload:
                errors.append(f"{where}: not a cryptofeed raw-data line")
                continue
            try:
                yield parse_ts_ns(ts), payload, where
            except ValueError as exc:
                errors.append(f"{where}: {exc}")


def _market_of(path: Path, kind: str) -> str:
    if kind == "cryptofeed":
        m = _CF_CONNECT.match(_first_lines(path, 1)[0])
        market = m.group(1).decode() if m else ""
        if market not in VENUES:
            raise ValueError(f"{path}: Bybit {market or '?'} connection; flowbook reads spot and linear")
        return market
    if kind == "raw":
        for market, venue in VENUES.items():  # flowbook record: <dir>/<venue>/<SYMBOL>/<file>
            if path.parent.parent.name == venue:
                return market
    return "linear"  # historical order-book files and unlabelled recordings: USDT perpetuals


def _kind_of(path: Path) -> str:
    if is_bybit_cryptofeed(path):
        return "cryptofeed"
    if is_bybit_raw(path):
        return "raw"
    if is_bybit_data(path):
        return "data"
    raise ValueError(f"{path}: not a Bybit v5 recording (flowbook raw lines, historical .data, cryptofeed BYBIT)")


def _group_frames(items: list[tuple[str, Path]], errors: list[str]) -> Iterator[Frame]:
    """Frames of one market's files: flowbook recordings chained per symbol in time order, then the others
    merged by receive time (each file's lines in file order)."""
    raw = [p for k, p in items if k == "raw"]
    streams: list[Iterator[Frame]] = []
    if raw:
        streams.append((f.ts_local, f.payload, f.where) for f in iter_frames(order_files(raw), errors))
    for kind, p in items:
        if kind == "data":
            streams.append(_data_frames(p, errors))
        elif kind == "cryptofeed":
            streams.append(_cryptofeed_frames(p, errors))
    return streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda f: f[0])


# -- instruments
@dataclass
class _Grid:
    """Greatest common step of prices (``gcd``) and finest written precision of sizes (``decimals``)."""

    scale: int = 0
    units: int = 0
    decimals: int = 0

    def add_price(self, text: str) -> None:
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0")
        if len(frac) <= self.scale and self.units == 1:
            return
        if len(frac) > self.scale:
            self.units *= 10 ** (len(frac) - self.scale)
            self.scale = len(frac)
        self.units = gcd(self.units, int(whole or "0") * 10**self.scale + int(frac.ljust(self.scale, "0") or "0"))

    def add_size(self, text: str) -> None:
        self.decimals = max(self.decimals, len(text.partition(".")[2].rstrip("0")))

    def instrument(self, venue: str, symbol: str) -> Instrument:
        tick = format(Decimal(self.units or 1).scaleb(-self.scale).normalize(), "f")
        lot = "1" if self.decimals == 0 else "0." + "0" * (self.decimals - 1) + "1"
        return Instrument(venue, symbol, tick, lot)


@dataclass
class _Scan:
    grids: dict[str, _Grid] = field(default_factory=dict)

    def grid(self, symbol: str) -> _Grid:
        g = self.grids.get(symbol)
        if g is None:
            g = self.grids[symbol] = _Grid()
        return g


def scan_instruments(frames: Iterator[Frame], venue: str) -> dict[str, Instrument]:
    """Instruments whose grids hold every price and size of the frames (the first pass of a replay)."""
    scan = _Scan()
    for _, payload, _ in frames:
        try:
            msg = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # the feed reports it in the second pass
        if isinstance(msg, OrderBook):
            g = scan.grid(msg.data.s)
            for levels in (msg.data.b, msg.data.a):
                for p, q in levels:
                    g.add_price(p)
                    g.add_size(q)
        elif isinstance(msg, (PublicTrade, AllLiquidation)):
            for t in msg.data:
                g = scan.grid(t.s)
                g.add_price(t.p)
                g.add_size(t.v)
        elif isinstance(msg, InstrumentsInfo) and VENUES.get(msg.category) == venue:
            for info in msg.items:
                g = scan.grid(info.symbol)
                g.add_price(info.priceFilter.tickSize)
                g.add_size(info.lotSizeFilter.qtyStep or info.lotSizeFilter.basePrecision or "1")
    return {sym: g.instrument(venue, sym) for sym, g in scan.grids.items() if g.units}


# -- loading
def load_bybit(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None,
               market: str | None = None) -> Loaded:
    """Load Bybit v5 recordings (any mix of the three kinds).  ``market`` (``"linear"``/``"spot"``)
    overrides the market told by the files; files of both markets give one feed each, merged by time."""
    groups: dict[str, list[tuple[str, Path]]] = {}
    for p in paths:
        kind = _kind_of(p)
        groups.setdefault(market or _market_of(p, kind), []).append((kind, p))
    errors: list[str] = []
    runs: list[tuple[BybitFeed, Iterator[Frame]]] = []
    for mk, items in groups.items():
        instruments = scan_instruments(_group_frames(items, []), VENUES[mk])
        runs.append((BybitFeed(mk, strict, instruments), _group_frames(items, errors)))
    if len(runs) == 1:
        feed, frames = runs[0]
        for n, (ts, payload, where) in enumerate(frames, 1):
            feed.on_frame(ts, payload, where)
            if progress is not None and n % 20000 == 0:
                progress(20000)
        if strict and errors:
            raise SyncError(errors[0])
        return _feed_result(feed, errors)
    return _load_merged(runs, errors, strict, progress)


def _load_merged(runs: list[tuple[BybitFeed, Iterator[Frame]]], errors: list[str], strict: bool,
                 progress: Callable[[int], None] | None) -> Loaded:
    """Several markets: one feed each, frames in receive-time order, symbol ids offset per feed."""
    def tag(k: int, frames: Iterator[Frame]) -> Iterator[tuple[int, int, bytes, str]]:
        for ts, payload, where in frames:
            yield ts, k, payload, where

    tagged = [tag(k, frames) for k, (_, frames) in enumerate(runs)]
    parts: list[tuple[int, np.ndarray]] = []
    ends: list[int] = []
    wheres: list[str] = []
    total = 0

    def take(k: int) -> None:
        nonlocal total
        feed = runs[k][0]
        ev = feed.take_events()
        ends.extend(total + i for i in feed.depth_msg_end)
        wheres.extend(feed.depth_msg_where)
        feed.depth_msg_end.clear()
        feed.depth_msg_where.clear()
        if len(ev):
            parts.append((k, ev))
            total += len(ev)

    for n, (ts, k, payload, where) in enumerate(heapq.merge(*tagged, key=lambda f: f[0]), 1):
        runs[k][0].on_frame(ts, payload, where)
        take(k)
        if progress is not None and n % 20000 == 0:
            progress(20000)
    if strict and errors:
        raise SyncError(errors[0])
    offsets, instruments, stats, issues = [], [], {}, list(errors)
    for k, (feed, _) in enumerate(runs):
        feed.finish()
        take(k)
        offsets.append(len(instruments))
        instruments.extend(i for i in feed.instruments if i is not None)
        for key, v in vars(feed.stats).items():
            if isinstance(v, int):
                stats[key] = stats.get(key, 0) + v
        issues.extend(feed.stats.issues)
    for k, ev in parts:
        ev["symbol"] += offsets[k]
    events = np.concatenate([ev for _, ev in parts]) if parts else np.zeros(0, EVENT_DTYPE)
    return Loaded(events=events, instruments=instruments, stats=stats, issues=issues,
                  msg_end=np.asarray(ends, np.int64), msg_where=wheres)
