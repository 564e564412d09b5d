"""Recording formats -> normalized events.  Each loader returns a :class:`Loaded`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..events import Instrument
from ..venues.binance import BinanceFeed
from ..venues.common import FeedCore
from .raw import is_raw_format, iter_frames, order_files

__all__ = ["Loaded", "detect_format", "load", "FORMATS"]


@dataclass
class Loaded:
    events: np.ndarray
    instruments: list[Instrument]
    stats: dict[str, int] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)
    # event index closing each depth message, and where that message came from
    msg_end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    msg_where: list[str] = field(default_factory=list)

    def where(self, event_index: int) -> str:
        """Source location of the depth message containing ``event_index``."""
        j = int(np.searchsorted(self.msg_end, event_index))
        return self.msg_where[j] if j < len(self.msg_where) else "?"


def _feed_result(feed: BinanceFeed | FeedCore, errors: list[str]) -> Loaded:
    feed.finish()
    events = feed.take_events()
    insts = feed.instruments
    missing = [s.name for s in feed.symbols.values() if s.inst is None]
    if missing:
        errors.append(f"no instrument could be defined for {', '.join(missing)} (no snapshot, no trades)")
    st = feed.stats
    stats = {k: v for k, v in vars(st).items() if isinstance(v, int)}
    return Loaded(
        events=events,
        instruments=[i for i in insts if i is not None],
        stats=stats,
        issues=errors + st.issues,
        msg_end=np.asarray(feed.depth_msg_end, np.int64),
        msg_where=feed.depth_msg_where,
    )


def load_binance_raw(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None) -> Loaded:
    feed = BinanceFeed(strict=strict)
    errors: list[str] = []
    for n, fr in enumerate(iter_frames(order_files(paths), errors), 1):
        feed.on_frame(fr.ts_local, fr.payload, fr.where, fr.symbol_hint)
        if progress is not None and n % 20000 == 0:
            progress(20000)
    if strict and errors:
        from ..venues.binance import SyncError

        raise SyncError(errors[0])
    return _feed_result(feed, errors)


FORMATS: dict[str, Callable[..., Loaded]] = {"binance-raw": load_binance_raw}


def detect_format(paths: list[Path]) -> str:
    """The recording format of the files, from their content."""
    for fmt, probe in _PROBES:
        if all(probe(p) for p in paths):
            return fmt
    names = ", ".join(str(p) for p in paths[:3])
    raise ValueError(f"cannot tell the recording format of {names}; pass --format ({', '.join(FORMATS)})")


_PROBES: list[tuple[str, Callable[[Path], bool]]] = [("binance-raw", is_raw_format)]


def register(name: str, loader: Callable[..., Loaded], probe: Callable[[Path], bool]) -> None:
    """Add a recording format (loader plus content probe)."""
    FORMATS[name] = loader
    _PROBES.append((name, probe))


def load(paths: list[Path], fmt: str | None, strict: bool,
         progress: Callable[[int], None] | None = None) -> Loaded:
    fmt = fmt or detect_format(paths)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return FORMATS[fmt](paths, strict=strict, progress=progress)


def _register_builtin() -> None:
    from .bybit import is_bybit, load_bybit
    from .coinbase import is_coinbase, load_coinbase
    from .cryptofeed import is_cryptofeed, load_cryptofeed
    from .kraken import is_kraken, load_kraken
    from .lobster_l2 import is_lobster, load_lobster
    from .okx import is_okx, load_okx

    # venue formats first: the Binance raw probe and the cryptofeed probe also accept their files
    for name, loader, probe in (("okx", load_okx, is_okx), ("coinbase", load_coinbase, is_coinbase),
                                 ("bybit", load_bybit, is_bybit), ("kraken", load_kraken, is_kraken)):
        FORMATS[name] = loader
        _PROBES.insert(0, (name, probe))
    register("lobster", load_lobster, is_lobster)
    register("cryptofeed", load_cryptofeed, is_cryptofeed)


_register_builtin()
