"""Coinbase recordings -> events, through :class:`~flowbook.venues.coinbase.CoinbaseFeed`.

Two recording formats:

- flowbook's own (``flowbook record``): ``<local_ns> <raw JSON>`` lines, gzip or plain, of Advanced Trade
  frames.  One file set (``<name>_<YYYYMMDD>_<HH>.gz`` and its rotations) holds one connection: its
  files are chained in time order and fed as one ``connection``, so ``sequence_num`` is checked across
  them.  Several file sets are merged by receive time.
- cryptofeed's raw-data recording of the legacy Exchange feed: ``COINBASE.0`` (the ``/products`` REST
  answer, read for tick and lot sizes, and a ``configuration:`` line) and ``COINBASE.ws.<id>.<rotation>``
  (one websocket connection each; lines ``<url> <-> <ts>``, ``<url> <- <ts>: <sent json>``,
  ``<ts>: <received json>``).  Timestamps are converted with
  :func:`flowbook.replay.cryptofeed.parse_ts_ns` (exact, no float).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec

from ..events import Instrument
from ..venues.coinbase import CoinbaseFeed, SyncError
from .cryptofeed import is_cryptofeed, parse_ts_ns
from .raw import head_lines, iter_frames
from .sources import Loaded, _feed_result

__all__ = ["is_coinbase", "load_coinbase", "products_instruments"]

Frame = tuple[int, bytes, str, str]  # ts_local ns, payload, "file:line", connection

_CF_NAME = re.compile(r"^COINBASE(?:\.([a-z]+)\.([A-Za-z0-9_\-]+))?\.(\d+)$")
_ROTATION = re.compile(r"^(.*?)_\d{8}_\d{2}(?:\d{10})?(?:\.\d+)?(?:\.gz)?$")
_COINBASE_LINE = re.compile(
    rb'"channel"\s*:\s*"(?:l2_data|market_trades|ticker|ticker_batch|heartbeats|subscriptions)"'
    rb'|"type"\s*:\s*"(?:snapshot|l2update|match|last_match)"\s*,\s*"(?:product_id|trade_id)"')


class _Product(msgspec.Struct):
    id: str
    quote_increment: str = ""
    base_increment: str = ""


_products = msgspec.json.Decoder(list[_Product])


def is_coinbase(path: Path) -> bool:
    """Whether the file is a Coinbase recording: a cryptofeed ``COINBASE.*`` file, or ``<local_ns> <json>``
    lines of Coinbase messages (content probe)."""
    if _CF_NAME.match(path.name):
        return is_cryptofeed(path)
    head = head_lines(path, 20)
    if not head:
        return False
    ts, _, rest = head[0].partition(b" ")
    if not (ts.isdigit() and len(ts) >= 16 and rest.lstrip().startswith(b"{")):
        return False
    return any(_COINBASE_LINE.search(line) for line in head)


def _decimal_step(text: str) -> str | None:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return format(d.normalize(), "f") if d > 0 else None


def products_instruments(files: list[Path], errors: list[str]) -> dict[str, Instrument]:
    """Instruments from the ``/products`` answers in cryptofeed metadata files (``COINBASE.0``)."""
    out: dict[str, Instrument] = {}
    for path in files:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                url, sep, rest = raw.rstrip(b"\r\n").partition(b" -> ")
                if not sep or not url.endswith(b"/products"):
                    continue
                body = rest.partition(b": ")[2]
                try:
                    products = _products.decode(body)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    errors.append(f"{path}:{lineno}: malformed /products answer ({exc})")
                    continue
                for p in products:
                    tick, lot = _decimal_step(p.quote_increment), _decimal_step(p.base_increment)
                    if tick and lot:
                        out[p.id] = Instrument("coinbase", p.id, tick, lot)
    return out


def _cryptofeed_frames(files: list[Path], conn: str, errors: list[str]) -> Iterator[Frame]:
    """Received messages of one cryptofeed websocket connection, in file order."""
    for path in files:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                line = raw.rstrip(b"\r\n")
                if not line[:1].isdigit():  # connect, sent, REST and configuration lines
                    continue
                where = f"{path}:{lineno}"
                ts, sep, payload = line.partition(b": ")
                try:
                    ts_ns = parse_ts_ns(ts)
                except ValueError as exc:
                    errors.append(f"{where}: {exc}")
                    continue
                if not sep or not payload:
                    errors.append(f"{where}: received message without '<ts>: <json>'")
                    continue
                yield ts_ns, payload, where, conn


def _first_ts(path: Path) -> int:
    head = head_lines(path, 1)
    ts = head[0].partition(b" ")[0] if head else b""
    return int(ts) if ts.isdigit() else 0


def _raw_frames(files: list[Path], conn: str, errors: list[str]) -> Iterator[Frame]:
    for fr in iter_frames(files, errors):
        yield fr.ts_local, fr.payload, fr.where, conn


def _streams(paths: list[Path], errors: list[str]) -> tuple[list[Path], list[Iterator[Frame]]]:
    """``(metadata files, frame iterators one per connection)`` of the given files."""
    meta: set[Path] = set()
    cf: dict[str, list[tuple[int, Path]]] = {}
    raw: dict[str, list[Path]] = {}
    for p in paths:
        if _CF_NAME.match(p.name):
            for q in [p, *p.parent.glob("COINBASE.*")]:  # the recording's sibling files
                m = _CF_NAME.match(q.name)
                if m is None or not q.is_file():
                    continue
                kind, conn_id, rotation = m.groups()
                if kind is None:
                    meta.add(q)
                elif kind == "ws":
                    group = cf.setdefault(str(q.parent / f"COINBASE.ws.{conn_id}"), [])
                    if (int(rotation), q) not in group:
                        group.append((int(rotation), q))
        else:
            m = _ROTATION.match(p.name)
            raw.setdefault(str(p.parent / (m.group(1) if m else p.name)), []).append(p)
    streams: list[Iterator[Frame]] = []
    for conn, group in sorted(cf.items()):
        streams.append(_cryptofeed_frames([q for _, q in sorted(group)], conn, errors))
    for conn, files in sorted(raw.items()):
        streams.append(_raw_frames(sorted(files, key=lambda f: (_first_ts(f), str(f))), conn, errors))
    return sorted(meta), streams


def load_coinbase(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None) -> Loaded:
    """Load Coinbase recordings (flowbook's Advanced Trade recordings and/or cryptofeed's ``COINBASE.*``).

    Each connection's frames go through one :class:`CoinbaseFeed` in receive-time order; ``strict`` raises
    :class:`~flowbook.venues.common.SyncError` (naming ``file:line``) at the first lost book, bad message or
    unreadable line.
    """
    errors: list[str] = []
    meta, streams = _streams(list(paths), errors)
    feed = CoinbaseFeed(strict=strict, instruments=products_instruments(meta, errors) or None)
    for n, (ts, payload, where, conn) in enumerate(heapq.merge(*streams, key=lambda f: f[0]), 1):
        if strict and errors:
            raise SyncError(errors[0])
        feed.on_frame(ts, payload, where, connection=conn)
        if progress is not None and n % 20000 == 0:
            progress(20000)
    if strict and errors:
        raise SyncError(errors[0])
    return _feed_result(feed, errors)
