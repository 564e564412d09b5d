"""Replay of OKX v5 recordings through :class:`~flowbook.venues.okx.OkxFeed`.

Two recording formats are read:

- flowbook's own (``flowbook record``): ``<local_ns> <raw frame>`` lines, gzip or plain, one file set
  per symbol (read with :func:`flowbook.replay.raw.iter_frames`);
- cryptofeed's raw-data files: ``OKX.ws.<id>.<n>`` (``<ts>: <json>`` received lines, ``<url> <- <ts>: ...``
  sent, ``<url> <-> <ts>`` connect) and ``OKX.<n>``, the metadata file with the REST
  ``/api/v5/public/instruments`` answers, from which tick sizes, lot sizes and contract values are taken.
  Sibling files of the same folder are found from any one of them; several websocket connections are
  merged by receive time.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from ..events import Instrument
from ..venues.common import SyncError
from ..venues.okx import OkxFeed, decode_instruments, instrument_from_info
from .cryptofeed import parse_ts_ns
from .raw import head_lines, iter_frames, order_files
from .sources import Loaded, _feed_result

__all__ = ["is_okx", "load_okx", "okx_instruments"]

_CF_NAME = re.compile(r"^OKX(?:\.([a-z]+)\.([A-Za-z0-9_\-]+))?\.(\d+)$")
_OKX_FRAME = re.compile(rb'^\{"(?:arg"\s*:\s*\{\s*"channel"|event"\s*:\s*"[a-z]+"\s*,\s*"arg")')

Frame = tuple[int, bytes, str]  # local ns, payload, "file:line"


def is_okx(path: Path) -> bool:
    """Whether ``path`` is an OKX recording: a cryptofeed ``OKX.*`` file, or ``<ns> <frame>`` lines of
    OKX v5 frames (``{"arg":{"channel":...`` or a subscription ack)."""
    head = [line[:4096] for line in head_lines(path, 20)]
    if not head:
        return False
    if _CF_NAME.match(path.name):
        return b"okx.com" in head[0] or b"okex.com" in head[0]
    for line in head:
        ts, _, payload = line.partition(b" ")
        if ts.isdigit() and _OKX_FRAME.match(payload.lstrip()):
            return True
    return False


def _cf_lines(path: Path, errors: list[str], strict: bool) -> Iterator[tuple[str, str, int, bytes, bytes]]:
    """``(where, kind, ts_ns, url, payload)`` of a cryptofeed file; kind: recv | rest | sent | connect."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip(b"\r\n")
            if not line.strip() or line.startswith(b"configuration: "):
                continue
            where = f"{path}:{lineno}"
            try:
                if line[:1].isdigit():
                    ts, sep, payload = line.partition(b": ")
                    if not sep:
                        raise ValueError("received line without '<ts>: <json>'")
                    yield where, "recv", parse_ts_ns(ts), b"", payload
                    continue
                url, _, rest = line.partition(b" ")
                arrow, _, rest = rest.partition(b" ")
                if arrow == b"<->":
                    yield where, "connect", parse_ts_ns(rest.strip()), url, b""
                    continue
                ts, sep, payload = rest.partition(b": ")
                if arrow not in (b"->", b"<-") or not sep:
                    raise ValueError("not a cryptofeed raw-data line")
                yield where, ("rest" if arrow == b"->" else "sent"), parse_ts_ns(ts), url, payload
            except ValueError as exc:
                _report(errors, strict, where, str(exc))


def _report(errors: list[str], strict: bool, where: str, why: str) -> None:
    if strict:
        raise SyncError(f"{where}: {why}")
    errors.append(f"{where}: {why}")


def okx_instruments(files: list[Path], errors: list[str], strict: bool = False) -> dict[str, Instrument]:
    """Instruments of every ``/api/v5/public/instruments`` answer in cryptofeed metadata ``files``."""
    out: dict[str, Instrument] = {}
    for path in files:
        for where, kind, _, url, body in _cf_lines(path, errors, strict):
            if kind != "rest" or b"/public/instruments" not in url:
                continue
            try:
                infos = decode_instruments(body)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                _report(errors, strict, where, f"malformed instruments answer ({exc})")
                continue
            for info in infos:
                try:
                    out[info.instId] = instrument_from_info(info)
                except ArithmeticError:
                    _report(errors, strict, where, f"{info.instId}: bad tickSz/lotSz/ctVal")
    return out


def _cryptofeed_set(paths: list[Path]) -> tuple[list[Path], list[list[Path]]]:
    """``(metadata files, websocket connections)`` of the cryptofeed recordings the files belong to."""
    found: dict[Path, re.Match[str]] = {}
    for p in paths:
        for q in [p, *p.parent.glob("OKX.*")]:
            m = _CF_NAME.match(q.name)
            if m is not None and q.is_file():
                found[q] = m
    meta = sorted((int(m.group(3)), q) for q, m in found.items() if m.group(1) is None)
    streams: dict[tuple[Path, str], list[tuple[int, Path]]] = {}
    for q, m in found.items():
        if m.group(1) == "ws":
            streams.setdefault((q.parent, m.group(2)), []).append((int(m.group(3)), q))
    return [q for _, q in meta], [[q for _, q in sorted(v)] for _, v in sorted(streams.items())]


def _cf_frames(files: list[Path], errors: list[str], strict: bool) -> Iterator[Frame]:
    for path in files:
        for where, kind, ts, _, payload in _cf_lines(path, errors, strict):
            if kind == "recv":
                yield ts, payload, where


def load_okx(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None) -> Loaded:
    """Load OKX recordings (flowbook's ``<ns> <json>`` files and/or a cryptofeed ``OKX.*`` set)."""
    errors: list[str] = []
    cf = [p for p in paths if _CF_NAME.match(p.name)]
    own = [p for p in paths if not _CF_NAME.match(p.name)]
    meta, streams = _cryptofeed_set(cf) if cf else ([], [])
    feed = OkxFeed(strict=strict, instruments=okx_instruments(meta, errors, strict) or None)
    sources: list[Iterator[Frame]] = [heapq.merge(*(_cf_frames(f, errors, strict) for f in streams),
                                                  key=lambda f: f[0])]
    if own:
        sources.append((fr.ts_local, fr.payload, fr.where) for fr in iter_frames(order_files(own), errors))
    n = 0
    for source in sources:
        for ts, payload, where in source:
            feed.on_frame(ts, payload, where)
            n += 1
            if progress is not None and n % 20000 == 0:
                progress(20000)
    if strict and errors:
        raise SyncError(errors[0])
    return _feed_result(feed, errors)
