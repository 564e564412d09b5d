"""Reader for cryptofeed's raw-data recordings of the Binance family (spot, Binance.US, USD-M, COIN-M).

cryptofeed's ``AsyncFileCallback`` writes one text file per connection, named ``<uuid>.<rotation>``:
``BINANCE.0`` (exchange metadata: the exchangeInfo REST response and a ``configuration:`` line),
``BINANCE.http.0.0`` (REST depth snapshots) and ``BINANCE.ws.1.0`` (one websocket connection).  Lines:

- ``<url> <-> <ts>``: connection opened;  ``<url> <- <ts>: <json>``: a message we sent;
- ``<ts>: <json>``: a message received;  ``<url> -> <ts>: <body>``: a REST response;
- ``configuration: <json>``: the recorder's setup.

``ts`` is local epoch seconds written as a float (``1633998512.0633569``); it is converted to integer
nanoseconds from its text, never through a float.  All frames of the recording (REST snapshots and
websocket messages) are merged by receive time, each file's lines kept in file order, and fed to one
:class:`~flowbook.venues.binance.BinanceFeed` with tick sizes from the exchangeInfo.
"""

from __future__ import annotations

import dataclasses
import heapq
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec

from ..events import infer_step
from ..venues.binance import BinanceFeed, SyncError
from ..venues.binance.messages import DepthSnapshot
from .sources import Loaded, _feed_result

__all__ = ["SUPPORTED_EXCHANGES", "Recording", "exchange_info", "feed_recording", "is_cryptofeed",
           "load_cryptofeed", "parse_ts_ns", "recording_files"]

SUPPORTED_EXCHANGES: tuple[str, ...] = ("BINANCE", "BINANCE_US", "BINANCE_FUTURES", "BINANCE_DELIVERY")

# <uuid>.<rotation>, uuid = EXCHANGE or EXCHANGE.<kind>.<connection id>
_NAME = re.compile(r"^([A-Za-z0-9_\-]+)(?:\.([a-z]+)\.([A-Za-z0-9_\-]+))?\.(\d+)$")
_TS = re.compile(rb"\d+(?:\.\d+)?")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_HEAD = re.compile(rb"^(?:\S+ <-> \d+(?:\.\d+)?\s*$|\S+ -> \d+(?:\.\d+)?: |configuration: [{\[])")
_NS = Decimal("1e-9")

Frame = tuple[int, bytes, str, str | None]  # ts_local ns, payload, "file:line", symbol hint


class _Filter(msgspec.Struct):
    filterType: str = ""
    tickSize: str | None = None


class _SymbolInfo(msgspec.Struct):
    symbol: str
    filters: list[_Filter] = []
    contractSize: float | None = None


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_SymbolInfo] = []


_exchange_info = msgspec.json.Decoder(_ExchangeInfo)
_snapshot = msgspec.json.Decoder(DepthSnapshot)


class _BadLine(ValueError):
    pass


def parse_ts_ns(text: str | bytes) -> int:
    """cryptofeed timestamp text (float epoch seconds) -> integer nanoseconds, exactly.

    ``parse_ts_ns("1633998512.0633569") == 1633998512063356900``.  Digits beyond the nanosecond are
    rounded half-even.  Raises ``ValueError`` for anything but ``<digits>[.<digits>]``.
    """
    raw = text.encode() if isinstance(text, str) else text
    if not _TS.fullmatch(raw):
        raise ValueError(f"bad timestamp {raw[:40].decode(errors='replace')!r}")
    whole, _, frac = raw.decode().partition(".")
    if len(frac) <= 9:
        return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0"))
    with localcontext(prec=len(whole) + 12):  # room for the nanoseconds, whatever the input's digits
        return int(Decimal(f"{whole}.{frac}").quantize(_NS, rounding=ROUND_HALF_EVEN).scaleb(9))


def is_cryptofeed(path: Path) -> bool:
    """Whether the file's first line is ``<url> <-> <ts>`` or ``<url> -> <ts>: ...`` (content probe)."""
    try:
        with open(path, "rb") as fh:
            head = fh.readline(1 << 18)  # a connect line lists every stream in its URL
    except OSError:
        return False
    return bool(_HEAD.match(head.rstrip(b"\r\n")))


def _exchange_of(path: Path) -> str:
    m = _NAME.match(path.name)
    if m is None:
        raise ValueError(f"{path}: not a cryptofeed raw-data file name (<EXCHANGE>.0, <EXCHANGE>.http.<n>.<n>, "
                         f"<EXCHANGE>.ws.<n>.<n>)")
    ex = m.group(1)
    if ex not in SUPPORTED_EXCHANGES:
        raise ValueError(f"{path}: exchange {ex} is not supported by the cryptofeed reader "
                         f"(it reads {', '.join(SUPPORTED_EXCHANGES)})")
    return ex


def recording_files(paths: list[Path]) -> tuple[str, list[Path], list[list[Path]]]:
    """``(exchange, metadata files, streams)`` of the recording the files belong to.

    Sibling files of the same exchange in the same folder are added.  Each stream is one connection's
    files (``.http.<id>.*`` or ``.ws.<id>.*``) in rotation order.
    """
    if not paths:
        raise ValueError("no cryptofeed files given")
    found: dict[tuple[str, str], Path] = {}
    exchange = ""
    for p in paths:
        ex = _exchange_of(p)
        if exchange and ex != exchange:
            raise ValueError(f"{p}: belongs to {ex}, the other files to {exchange}; load one recording at a time")
        exchange = ex
        for q in [p, *p.parent.glob(f"{ex}.*")]:
            m = _NAME.match(q.name)
            if q.is_file() and m is not None and m.group(1) == ex:
                found[(str(q.parent), q.name)] = q
    meta: list[tuple[int, Path]] = []
    streams: dict[tuple[str, str, str], list[tuple[int, Path]]] = {}
    for (folder, _), q in sorted(found.items()):
        m = _NAME.match(q.name)
        assert m is not None
        _, kind, conn, rot = m.groups()
        if kind is None:
            meta.append((int(rot), q))
        else:
            streams.setdefault((folder, kind, conn), []).append((int(rot), q))
    return (exchange, [q for _, q in sorted(meta)],
            [[q for _, q in sorted(group)] for _, group in sorted(streams.items())])


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield lineno, line


def _classify(line: bytes) -> tuple[str, int, bytes, bytes]:
    """``(kind, ts_ns, url, payload)``; kind in recv | rest | sent | connect | config."""
    if line[:1].isdigit():
        ts, sep, payload = line.partition(b": ")
        if not sep or not payload:
            raise _BadLine("received message without '<ts>: <json>'")
        return "recv", _ts(ts), b"", payload
    if line.startswith(b"configuration: "):
        return "config", 0, b"", line[15:]
    url, sep, rest = line.partition(b" ")
    arrow, _, rest = rest.partition(b" ")
    if not sep or arrow not in (b"->", b"<-", b"<->"):
        raise _BadLine("not a cryptofeed raw-data line (<ts>: <json>, <url> -> <ts>: <body>, <url> <-> <ts>)")
    if arrow == b"<->":
        return "connect", _ts(rest.strip()), url, b""
    ts, sep, payload = rest.partition(b": ")
    if not sep:
        raise _BadLine(f"'{arrow.decode()}' line without '<ts>: <body>'")
    return ("rest" if arrow == b"->" else "sent"), _ts(ts), url, payload


def _ts(text: bytes) -> int:
    try:
        return parse_ts_ns(text)
    except ValueError as exc:
        raise _BadLine(str(exc)) from None


def _report(errors: list[str], strict: bool, where: str, why: str) -> None:
    text = f"{where}: {why}"
    if strict:
        raise SyncError(text)
    errors.append(text)


def _symbol_hint(url: bytes) -> str | None:
    values = parse_qs(urlsplit(url.decode(errors="replace")).query).get("symbol")
    return values[0].upper() if values else None


def _classified(files: list[Path], errors: list[str], strict: bool) -> Iterator[tuple[str, str, int, bytes, bytes]]:
    """``(where, kind, ts, url, payload)`` of every line of ``files``; bad lines are reported and skipped."""
    for path in files:
        for lineno, line in _lines(path):
            where = f"{path}:{lineno}"
            try:
                kind, ts, url, payload = _classify(line)
            except _BadLine as exc:
                _report(errors, strict, where, str(exc))
                continue
            yield where, kind, ts, url, payload


def _stream_frames(files: list[Path], errors: list[str], strict: bool) -> Iterator[Frame]:
    """Received frames and REST responses of one connection, in file order."""
    for where, kind, ts, url, payload in _classified(files, errors, strict):
        if kind == "recv":
            yield ts, payload, where, None
        elif kind == "rest":
            yield ts, payload, where, _symbol_hint(url)


def exchange_info(files: list[Path], errors: list[str], strict: bool = False) -> tuple[dict[str, str], dict[str, float]]:
    """``({symbol: tick size}, {symbol: contract size})`` from the exchangeInfo responses in ``files``."""
    ticks: dict[str, str] = {}
    sizes: dict[str, float] = {}
    for where, kind, _, url, body in _classified(files, errors, strict):
        if kind != "rest" or not urlsplit(url.decode(errors="replace")).path.endswith("exchangeInfo"):
            continue
        try:
            info = _exchange_info.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _report(errors, strict, where, f"malformed exchangeInfo response ({exc})")
            continue
        for s in info.symbols:
            for f in s.filters:
                if f.filterType == "PRICE_FILTER" and f.tickSize is not None:
                    if not _DECIMAL.fullmatch(f.tickSize) or not Decimal(f.tickSize):
                        _report(errors, strict, where, f"{s.symbol}: bad tickSize {f.tickSize!r}")
                        continue
                    ticks[s.symbol] = format(Decimal(f.tickSize).normalize(), "f")
            if s.contractSize:
                sizes[s.symbol] = float(s.contractSize)
    return ticks, sizes


@dataclass
class Recording:
    """A recording fed through a :class:`BinanceFeed` (not yet finished)."""

    exchange: str
    feed: BinanceFeed
    errors: list[str]  # bad lines (``file:line: why``) and notes
    contract_sizes: dict[str, float]


def _fit_tick(feed: BinanceFeed, sym: str, payload: bytes, where: str, notes: list[str]) -> None:
    """Widen an exchangeInfo tick to the grid of a symbol's first snapshot when that is finer.

    Binance keeps orders resting at the old prices when it raises a tick size, so a snapshot can hold
    prices off the current tick (BINANCE.http.0.0 NKNUSDT: 34 bids on 0.00001 with tick 0.0001).
    """
    s, tick = feed.symbols.get(sym), feed.tick_sizes.get(sym)
    if tick is None or (s is not None and s.inst is not None):
        return
    try:
        snap = _snapshot.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return  # the feed reports it
    prices = [p for p, _ in snap.bids] + [p for p, _ in snap.asks]
    step = infer_step([tick, *prices])
    if Decimal(step) != Decimal(tick):
        off = sum(1 for p in prices if Decimal(p) % Decimal(tick))
        feed.tick_sizes[sym] = step
        notes.append(f"{where}: {sym}: {off} snapshot prices are off exchangeInfo's tick {tick} (orders resting "
                     f"from before a tick change); prices are held on a {step} grid")


def feed_recording(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None) -> Recording:
    """Feed every frame of the recording the files belong to through one :class:`BinanceFeed`."""
    exchange, meta, streams = recording_files(paths)
    errors: list[str] = []
    ticks, sizes = exchange_info(meta, errors, strict)
    feed = BinanceFeed(strict=strict, tick_sizes=ticks or None)
    merged = heapq.merge(*(_stream_frames(files, errors, strict) for files in streams), key=lambda f: f[0])
    for n, (ts, payload, where, hint) in enumerate(merged, 1):
        if hint is not None and feed.tick_sizes:
            _fit_tick(feed, hint, payload, where, errors)
        feed.on_frame(ts, payload, where, hint)
        if progress is not None and n % 20000 == 0:
            progress(20000)
    return Recording(exchange, feed, errors, sizes)


def load_cryptofeed(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None) -> Loaded:
    """Load a cryptofeed Binance-family recording given any of its files (the siblings are found)."""
    rec = feed_recording(paths, strict, progress)
    loaded = _feed_result(rec.feed, rec.errors)
    venue = "binance-us" if rec.exchange == "BINANCE_US" else None
    loaded.instruments = [  # Binance.US is not Binance; COIN-M contract sizes from exchangeInfo
        dataclasses.replace(i, venue=venue or i.venue,
                            multiplier=rec.contract_sizes.get(i.symbol, i.multiplier) if i.inverse else i.multiplier)
        for i in loaded.instruments
    ]
    return loaded
