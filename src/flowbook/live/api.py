"""The Python API for bots: `LiveFeed`, an async context manager with async iterators and callbacks.

Example::

    from flowbook.live import LiveFeed

    async with LiveFeed("binance-usdm:BTCUSDT,ETHUSDT") as feed:
        feed.on_event(lambda sym, ev: print(sym, ev.kind.name, ev.price, ev.qty))
        async for snap in feed.snapshots():          # newest snapshot per symbol (conflated)
            print(snap.symbol, snap["mid"], snap["imbalance_n"], snap["cvd"])
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable

from .runner import LiveRunner
from .values import FeatureSnapshot

__all__ = ["LiveFeed", "SnapshotStream"]


class SnapshotStream:
    """An async iterator of :class:`FeatureSnapshot`.

    ``conflate=True`` keeps only the newest snapshot per symbol until it is read (a slow bot sees the
    latest state, never a backlog); otherwise up to ``maxsize`` snapshots wait and the oldest are
    dropped when it is full.  ``skipped`` counts snapshots replaced or dropped unread.
    """

    def __init__(self, symbols: Iterable[str] | None = None, conflate: bool = True, maxsize: int = 10_000) -> None:
        self.symbols = None if symbols is None else {s.upper() for s in symbols}
        self.conflate = conflate
        self.skipped = 0
        self._latest: dict[str, FeatureSnapshot] = {}
        self._queue: deque[FeatureSnapshot] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._closed = False

    def push(self, snap: FeatureSnapshot) -> None:
        if self._closed or (self.symbols is not None and snap.symbol not in self.symbols):
            return
        if self.conflate:
            if self._latest.pop(snap.symbol, None) is not None:
                self.skipped += 1
            self._latest[snap.symbol] = snap
        else:
            if len(self._queue) == self._queue.maxlen:
                self.skipped += 1
            self._queue.append(snap)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[FeatureSnapshot]:
        return self

    async def __anext__(self) -> FeatureSnapshot:
        while True:
            if self._latest:
                sym = next(iter(self._latest))
                return self._latest.pop(sym)
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()


class LiveFeed(LiveRunner):
    """:class:`LiveRunner` as an async context manager, with :meth:`snapshots` iterators."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._streams: list[SnapshotStream] = []
        self.on_features(self._fan_out)

    async def __aenter__(self) -> LiveFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def snapshots(self, symbols: Iterable[str] | None = None, conflate: bool = True,
                  maxsize: int = 10_000) -> SnapshotStream:
        """A new iterator over feature snapshots (all symbols, or ``symbols``); it ends at :meth:`stop`."""
        stream = SnapshotStream(symbols, conflate, maxsize)
        self._streams.append(stream)
        return stream

    def _fan_out(self, snap: FeatureSnapshot) -> None:
        for s in self._streams:
            s.push(snap)

    async def stop(self) -> None:
        await super().stop()
        for s in self._streams:
            s.close()
