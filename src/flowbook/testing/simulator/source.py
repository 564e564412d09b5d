"""What the simulator replays: frames of raw Binance recordings, merged across files in time order."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ...replay.raw import iter_frames, order_files
from ...venues.binance.messages import DepthUpdate, Envelope

__all__ = ["SimFrame", "SimSource", "load_source"]

_env = msgspec.json.Decoder(Envelope)
_diff = msgspec.json.Decoder(DepthUpdate)


@dataclass(frozen=True, slots=True)
class SimFrame:
    """One recorded message: ``kind`` is the stream kind (``depth``, ``trade``, ...) or ``snapshot``
    for a recorded REST snapshot line (which the simulator never broadcasts).  ``data`` is the stream
    payload without the combined-stream envelope (the whole line for snapshots)."""

    ts: int
    symbol: str
    kind: str
    data: bytes


@dataclass(frozen=True)
class SimSource:
    """Frames of one Binance market, in time order; ``futures`` tells the market's sync rule and
    ``market`` the market (``spot``, ``usdm``, ``coinm``: COIN-M diffs carry the pair ``ps``)."""

    frames: tuple[SimFrame, ...]
    symbols: tuple[str, ...]
    futures: bool
    market: str = ""

    def broadcast(self) -> list[SimFrame]:
        """The frames a client can receive (recorded snapshot lines removed)."""
        return [f for f in self.frames if f.kind != "snapshot"]

    def indices(self, kind: str | None = "depth", symbol: str | None = None) -> list[int]:
        """Positions in :meth:`broadcast` of frames of ``kind`` (and ``symbol``): fault targets."""
        return [i for i, f in enumerate(self.broadcast())
                if (kind is None or f.kind == kind) and (symbol is None or f.symbol == symbol)]


def load_source(paths: Iterable[Path | str], limit: int | None = None) -> SimSource:
    """Read raw recordings (``<local_ns> <json>`` lines, gzip or plain) of one market.

    ``limit`` keeps the first ``limit`` lines of each file.  Files of several symbols are merged by
    receive time (a stable merge: each file keeps its own order).
    """
    per_file: list[list[SimFrame]] = []
    futures: bool | None = None
    coinm = False
    for path in order_files([Path(p) for p in paths]):
        frames: list[SimFrame] = []
        per_file.append(frames)
        for n, fr in enumerate(iter_frames([path]), 1):
            if limit is not None and n > limit:
                break
            p = fr.payload
            if p.startswith(b'{"stream"'):
                env = _env.decode(p)
                sym, _, rest = env.stream.partition("@")
                kind = rest.split("@")[0]
                data = bytes(env.data)
                if kind == "depth" and futures is None:
                    d = _diff.decode(data)
                    futures, coinm = d.pu is not None, d.ps is not None
                frames.append(SimFrame(fr.ts_local, sym.upper(), kind, data))
            elif b'"lastUpdateId"' in p[:40] and fr.symbol_hint:
                frames.append(SimFrame(fr.ts_local, fr.symbol_hint, "snapshot", p))
    # merge by time; each file keeps its own order even where its clock steps back
    merged = tuple(heapq.merge(*per_file, key=lambda f: f.ts))
    if not merged:
        raise ValueError("no frames in the recordings")
    market = "coinm" if coinm else "usdm" if futures else "spot"
    return SimSource(merged, tuple(dict.fromkeys(f.symbol for f in merged)), bool(futures), market)
