"""Kraken spot recordings -> normalized events, through :class:`~flowbook.venues.kraken.KrakenFeed`.

Two recording formats:

- flowbook's own (``flowbook record``): ``<local_ns> <raw JSON>`` lines, gzip or plain, one file set
  per symbol, each frame a Kraken v2 message.  The files are merged by receive time.
- cryptofeed's raw-data recording of Kraken v1 (``KRAKEN.ws.<n>.<n>`` per connection, ``KRAKEN.0``
  with the AssetPairs REST answer): given any of its files, the siblings in the same folder are read.
  Received lines are ``<epoch seconds>: <json>``; connection, sent and REST lines are skipped.
  Instruments come from AssetPairs (tick ``10**-pair_decimals``, lot ``10**-lot_decimals``).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from ..events import Instrument
from ..venues.kraken import KrakenFeed, SyncError, instrument_of
from ..venues.kraken.parser import v2_symbol
from .cryptofeed import is_cryptofeed, parse_ts_ns
from .raw import is_raw_format, iter_frames, order_files
from .sources import Loaded, _feed_result

__all__ = ["asset_pairs", "is_kraken", "kraken_frames", "load_kraken"]

_CRYPTOFEED_NAME = re.compile(r"^KRAKEN\.(?:0|ws\.\d+\.\d+)$")
_V2_CHANNEL = re.compile(rb'^\{(?:"channel":"(?:book|trade|ticker|instrument|status|heartbeat)"'
                         rb'|"method":"subscribe","result":\{"channel":"(?:book|trade|ticker|instrument)")')
_V2_KRAKEN = re.compile(rb'"symbol":"[A-Z0-9]+/[A-Z0-9]+"|"api_version":"v2"')

Frame = tuple[int, bytes, str]  # ts_local ns, payload, "file:line"


class _Pair(msgspec.Struct):
    wsname: str = ""
    pair_decimals: int = -1
    lot_decimals: int = -1


class _AssetPairs(msgspec.Struct):
    result: dict[str, _Pair] = {}


_asset_pairs = msgspec.json.Decoder(_AssetPairs)


def _is_cryptofeed_kraken(path: Path) -> bool:
    return bool(_CRYPTOFEED_NAME.match(path.name)) and is_cryptofeed(path)


def is_kraken(path: Path) -> bool:
    """Whether the file is a Kraken recording: cryptofeed's ``KRAKEN.*`` files, or ``<ns> <json>`` lines
    whose first messages are Kraken v2 channels (content probe)."""
    if _is_cryptofeed_kraken(path):
        return True
    if not is_raw_format(path):
        return False
    for n, fr in enumerate(iter_frames([path])):
        if _V2_CHANNEL.match(fr.payload) and _V2_KRAKEN.search(fr.payload):
            return True
        if n >= 20:
            break
    return False


def _cryptofeed_siblings(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """``(metadata files, websocket files)`` of the cryptofeed recordings the paths belong to."""
    folders = sorted({p.parent for p in paths if _CRYPTOFEED_NAME.match(p.name)})
    files = sorted(q for d in folders for q in d.iterdir() if _CRYPTOFEED_NAME.match(q.name))
    return [q for q in files if q.name == "KRAKEN.0"], [q for q in files if q.name != "KRAKEN.0"]


def _cryptofeed_lines(path: Path, errors: list[str], strict: bool) -> Iterator[tuple[str, int, bytes, bytes]]:
    """``(kind, ts, url, payload)`` of each line; kind ``recv`` (``<ts>: <json>``) or ``rest``
    (``<url> -> <ts>: <body>``).  Connection and sent lines are skipped, bad lines reported."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\r\n")
            where = f"{path}:{lineno}"
            try:
                if line[:1].isdigit():
                    ts, sep, payload = line.partition(b": ")
                    if not sep:
                        raise ValueError("received line without '<ts>: <json>'")
                    yield "recv", parse_ts_ns(ts), b"", payload
                    continue
                url, _, rest = line.partition(b" ")
                arrow, _, rest = rest.partition(b" ")
                if arrow == b"->":
                    ts, _, body = rest.partition(b": ")
                    yield "rest", parse_ts_ns(ts), url, body
            except ValueError as exc:
                text = f"{where}: {exc}"
                if strict:
                    raise SyncError(text) from None
                errors.append(text)


def asset_pairs(files: list[Path], errors: list[str], strict: bool = False) -> dict[str, Instrument]:
    """Instruments by v2 symbol from the AssetPairs answers in cryptofeed's ``KRAKEN.0``."""
    out: dict[str, Instrument] = {}
    for path in files:
        for kind, _, url, body in _cryptofeed_lines(path, errors, strict):
            if kind != "rest" or b"AssetPairs" not in url:
                continue
            try:
                pairs = _asset_pairs.decode(body).result
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                errors.append(f"{path}: malformed AssetPairs answer ({exc})")
                continue
            for p in pairs.values():
                if p.wsname and p.pair_decimals >= 0 and p.lot_decimals >= 0:
                    sym = v2_symbol(p.wsname)
                    out[sym] = instrument_of(sym, p.pair_decimals, p.lot_decimals)
    return out


def _cryptofeed_frames(path: Path, errors: list[str], strict: bool) -> Iterator[Frame]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw[:1].isdigit():
                continue  # connection and sent lines
            ts, sep, payload = raw.rstrip(b"\r\n").partition(b": ")
            try:
                if not sep or not payload:
                    raise ValueError("received line without '<ts>: <json>'")
                yield parse_ts_ns(ts), payload, f"{path}:{lineno}"
            except ValueError as exc:
                text = f"{path}:{lineno}: {exc}"
                if strict:
                    raise SyncError(text) from None
                errors.append(text)


def kraken_frames(paths: list[Path], errors: list[str], strict: bool = False) -> tuple[Iterator[Frame],
                                                                                       dict[str, Instrument]]:
    """Every frame of the recordings, merged by receive time (each file's lines kept in file order),
    and the instruments the recording defines."""
    raw = [p for p in paths if not _is_cryptofeed_kraken(p)]
    meta, ws = _cryptofeed_siblings(paths)
    instruments = asset_pairs(meta, errors, strict)
    streams: list[Iterator[Frame]] = [_cryptofeed_frames(p, errors, strict) for p in ws]
    streams += [((fr.ts_local, fr.payload, fr.where) for fr in iter_frames([p], errors)) for p in order_files(raw)]
    return heapq.merge(*streams, key=lambda f: f[0]), instruments


def load_kraken(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None,
                depth: int = 10) -> Loaded:
    """Load Kraken recordings (flowbook v2 recordings and/or cryptofeed v1 captures).

    ``depth`` is the subscribed book depth of v2 recordings that hold no subscribe answer (v1 channel
    names carry theirs)."""
    errors: list[str] = []
    frames, instruments = kraken_frames(paths, errors, strict)
    feed = KrakenFeed(strict=strict, instruments=instruments or None, depth=depth)
    for n, (ts, payload, where) in enumerate(frames, 1):
        feed.on_frame(ts, payload, where)
        if progress is not None and n % 20000 == 0:
            progress(20000)
    if strict and errors:
        raise SyncError(errors[0])
    return _feed_result(feed, errors)  # type: ignore[arg-type]
