"""Reader for flowbook's raw recording format (``<local_ns> <raw JSON>`` lines, gzip or plain).

This is the format of the Binance captures in ``shared/data/hftbacktest`` and of ``flowbook record``:
one received frame per line, REST depth snapshots as bare JSON lines.  Several files of one capture
(e.g. across the UTC date rollover) are chained in time order.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RawFrame", "iter_frames", "file_symbol", "head_lines", "is_raw_format", "open_recording", "order_files"]

_STREAM = re.compile(rb'"stream"\s*:\s*"([a-z0-9_]+)@')
_SYMBOL = re.compile(rb'"s"\s*:\s*"([A-Z0-9_]+)"')


@dataclass(frozen=True, slots=True)
class RawFrame:
    ts_local: int
    payload: bytes
    where: str  # "file:line"
    symbol_hint: str | None


class BadLine(ValueError):
    pass


def open_recording(path: Path):  # noqa: ANN201 - a binary file object
    """A recording file for reading bytes, gzip or plain (told from its first two bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def head_lines(path: Path, n: int = 50) -> list[bytes]:
    """The first ``n`` lines of a recording (fewer, or none, when it is shorter or unreadable)."""
    out: list[bytes] = []
    try:
        with open_recording(path) as fh:
            for line in fh:
                out.append(line)
                if len(out) >= n:
                    break
    except (EOFError, OSError, zlib.error):
        pass
    return out


def is_raw_format(path: Path) -> bool:
    """Whether the file's first line looks like ``<digits> {json}``."""
    head = head_lines(path, 1)
    if not head:
        return False
    ts, _, rest = head[0].partition(b" ")
    return ts.isdigit() and len(ts) >= 16 and rest.lstrip().startswith((b"{", b"["))


# the recorder's file names: <symbol>_<YYYYMMDD>_<HH>.gz, or ..._<HHMMSSffffff>.gz when files rotate
# more often than hourly (live/recorder.py)
_FILE_SYMBOL = re.compile(r"^([a-z0-9_]+?)_\d{8}_\d{2}(?:\d{10})?(?:\.\d+)?\.gz$")


def file_symbol(path: Path) -> str | None:
    """The symbol a one-symbol recording file is about (from its first stream names)."""
    for line in head_lines(path, 200):
        m = _STREAM.search(line)
        if m:
            return m.group(1).decode().upper()
        m = _SYMBOL.search(line)
        if m:
            return m.group(1).decode()
    # a REST-polled recording names no stream: the recorder's file name does
    m = _FILE_SYMBOL.match(path.name)
    return m.group(1).upper() if m else None


def _first_ts(path: Path) -> int:
    head = head_lines(path, 1)
    try:
        return int(head[0].partition(b" ")[0]) if head else 0
    except ValueError:
        return 0


def order_files(paths: list[Path]) -> list[Path]:
    """Chain files per symbol in time order (first timestamp), symbols one after the other."""
    return sorted(paths, key=lambda p: (file_symbol(p) or "", _first_ts(p), str(p)))


def iter_frames(paths: list[Path], errors: list[str] | None = None) -> Iterator[RawFrame]:
    """Frames of the files in the order given.

    A line that is not ``<int> <json>`` is reported into ``errors`` (``file:line: why``) and skipped;
    a truncated gzip tail (a killed recorder) ends that file after its last complete line.
    """
    for path in paths:
        hint = file_symbol(path)
        name = str(path)
        lineno = 0
        try:
            with open_recording(path) as fh:
                for raw in fh:
                    lineno += 1
                    ts, sep, payload = raw.partition(b" ")
                    payload = payload.rstrip(b"\r\n")
                    if not sep or not ts.isdigit() or not payload:
                        if raw.strip() and errors is not None:
                            errors.append(f"{name}:{lineno}: not a '<local_ns> <json>' line")
                        continue
                    yield RawFrame(int(ts), payload, f"{name}:{lineno}", hint)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if errors is not None:
                errors.append(f"{name}:{lineno + 1}: truncated or corrupt file after line {lineno} ({exc})")
