"""Comparing a live push-venue client with the :class:`~.push.PushSimulator`'s truth (for tests and demos).

- :func:`live_config`: a :class:`~flowbook.venues.binance.rest.LiveConfig` for the simulator (fast
  reconnects and resyncs, a queue that never fills unless a test wants it to);
- :func:`differences`: symbols whose live book differs from the truth's best ``depth`` levels;
- :func:`wait_books`: after the broadcast, wait until the client is idle and its books equal the truth;
- :func:`push_session`: one simulator + :class:`~flowbook.live.LiveRunner` session, as the venue tests
  run it.

Waiting compares books, not update ids: Kraken's ids count messages and Coinbase's number a connection's
messages, so only the books are comparable across venues.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...venues.binance.rest import LiveConfig

if TYPE_CHECKING:
    from ...live import FeatureSnapshot, LiveRunner
    from .push import PushSimulator

__all__ = ["FULL", "differences", "live_config", "push_session", "wait_books"]

FULL = 1_000_000_000  # a depth meaning "every level" (Coinbase's level2 is the whole book)


def live_config(ws_url: str, **kw: Any) -> LiveConfig:
    """Options for a client of the simulator: reconnects and resyncs in tens of milliseconds, and no pacing
    to the venue's request rates (a fault test resyncs hundreds of times a minute)."""
    base: dict[str, Any] = dict(ws_url=ws_url, reconnect_base=0.02, reconnect_cap=0.2, resync_idle=0.3,
                                queue_size=10**6, pace=False)
    base.update(kw)
    return LiveConfig(**base)


def differences(runner: LiveRunner, sim: PushSimulator, depth: int) -> list[str]:
    """Symbols whose live book differs from the truth's best ``depth`` levels a side (or is unsynced)."""
    out = []
    for s in runner.symbols:
        view = runner.book(s, depth)
        if not view.synced:
            out.append(f"{s}: not synced")
            continue
        for side, live in ((1, view.bids), (-1, view.asks)):
            true = sim.truth.levels(s, side, depth)
            if list(live) != true:
                out.append(f"{s} side {side}: {len(live)} live vs {len(true)} true levels, e.g. "
                           f"{sorted(set(live) ^ set(true))[:3]}")
    return out


async def wait_books(runner: LiveRunner, sim: PushSimulator, depth: int, timeout: float = 30.0,
                     check_depth: int | None = None) -> list[str]:
    """Wait for the end of the broadcast, then until the client is idle (nothing queued, due or awaiting an
    answer), every symbol synced, and its books equal the truth at ``check_depth`` (default ``depth``) for
    two looks 0.1 s apart.  Returns the differences at ``depth`` then (at ``timeout``: what still differs).

    ``check_depth`` below ``depth`` is for venues whose loss detection covers only the best levels
    (Kraken's checksum: the top 10)."""
    deadline = time.monotonic() + timeout
    await asyncio.wait_for(sim.done.wait(), timeout)
    ad = runner.adapter
    look = depth if check_depth is None else check_depth

    def calm() -> bool:
        return ad.idle and all(ad.synced(s) for s in runner.symbols) and not differences(runner, sim, look)

    while time.monotonic() < deadline:
        if calm():
            await asyncio.sleep(0.1)
            if calm():
                break
        await asyncio.sleep(0.02)
    return differences(runner, sim, depth)


Wait = Callable[["LiveRunner", "PushSimulator"], Awaitable[list[str]]]


async def push_session(sim: contextlib.AbstractAsyncContextManager[PushSimulator], venue: str, symbols: list[str],
                       depth: int, *, path: str | None = None, during: Callable[..., object] | None = None,
                       record: Path | None = None, cfg_kw: dict | None = None, timeout: float = 40.0,
                       wait: Wait | None = None,
                       ) -> tuple[LiveRunner, PushSimulator, list[FeatureSnapshot], list[str]]:
    """Serve ``sim`` (a simulator not yet started), run a :class:`LiveRunner` of ``venue`` against it,
    call ``during(sim, runner)`` (may be a coroutine function) once the runner started, wait (``wait``,
    default :func:`wait_books` at ``depth``) and stop.  Returns the runner, the simulator, every feature
    row delivered and the book differences left."""
    from ...live import LiveRunner

    async with sim as s:
        runner = LiveRunner(venue=venue, symbols=symbols, config=live_config(s.ws_url(path), **(cfg_kw or {})),
                            record=record)
        rows: list[FeatureSnapshot] = []
        runner.on_features(rows.append)
        await runner.start()
        try:
            if during is not None:
                r = during(s, runner)
                if asyncio.iscoroutine(r):
                    await r
            diffs = await (wait(runner, s) if wait is not None else wait_books(runner, s, depth, timeout))
        finally:
            await runner.stop()
    return runner, s, rows, diffs
