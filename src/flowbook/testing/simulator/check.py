"""Comparisons of a live client against the simulator's truth, and a simulator on its own thread."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from ...features import FEATURE_COLUMNS

if TYPE_CHECKING:
    from ...live import FeatureSnapshot, LiveRunner
    from .server import BinanceSimulator

__all__ = ["BOOK_COLUMNS", "SimulatorThread", "book_differences", "grid_cache_max", "memory_after_warmup", "row_differences",
           "rss_mb", "sample_memory", "wait_caught_up"]

# columns that depend only on the book after the message (OFI needs the previous row, the rest trades)
BOOK_COLUMNS: tuple[str, ...] = tuple(FEATURE_COLUMNS[: FEATURE_COLUMNS.index("ofi")])


async def wait_caught_up(runner: LiveRunner, sim: BinanceSimulator, timeout: float = 30.0) -> None:
    """Wait until the broadcast is over and every symbol is synced at the truth's last update id."""
    deadline = time.monotonic() + timeout
    await asyncio.wait_for(sim.done.wait(), timeout)
    while time.monotonic() < deadline:
        if all(runner.adapter.synced(s) and runner.last_update_id(s) == sim.truth.last_u.get(s)
               for s in runner.symbols):
            return
        await asyncio.sleep(0.02)
    state = {s: (runner.adapter.synced(s), runner.last_update_id(s), sim.truth.last_u.get(s))
             for s in runner.symbols}
    raise AssertionError(f"client did not catch up with the truth in {timeout} s: (synced, last u, truth u) {state}")


def book_differences(runner: LiveRunner, sim: BinanceSimulator, depth: int = 5000) -> list[str]:
    """Levels that differ between the live book and the truth, within the live book's trusted range."""
    out: list[str] = []
    for s in runner.symbols:
        view = runner.book(s, depth)
        if not view.synced or view.trusted_bid is None or view.trusted_ask is None:
            out.append(f"{s}: live book not synced or never built")
            continue
        live_b = [lv for lv in view.bids if lv[0] >= view.trusted_bid]
        live_a = [lv for lv in view.asks if lv[0] <= view.trusted_ask]
        true_b = [lv for lv in sim.truth.decimal_levels(s, 1, depth) if lv[0] >= view.trusted_bid]
        true_a = [lv for lv in sim.truth.decimal_levels(s, -1, depth) if lv[0] <= view.trusted_ask]
        for side, live, true in (("bid", live_b, true_b), ("ask", live_a, true_a)):
            if live != true:
                diff = sorted(set(live) ^ set(true))[:3]
                out.append(f"{s} {side}s: {len(live)} live vs {len(true)} true levels; e.g. {diff}")
        if not live_b or not live_a:
            out.append(f"{s}: empty trusted book")
    return out


def row_differences(rows: Iterable[FeatureSnapshot], sim: BinanceSimulator,
                    columns: tuple[str, ...] = BOOK_COLUMNS) -> list[str]:
    """Live feature rows whose book columns differ from the truth's row at the same update id."""
    idx = [FEATURE_COLUMNS.index(c) for c in columns]
    out: list[str] = []
    for r in rows:
        truth = sim.truth.rows.get(r.symbol, {}).get(r.update_id)
        if truth is None:
            out.append(f"{r.symbol} u={r.update_id}: no truth row (the book was at a state the exchange never had)")
            continue
        got = np.array([r.values[c] for c in columns])
        want = truth[idx]
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        if not same.all():
            bad = [(columns[k], got[k], want[k]) for k in np.flatnonzero(~same)[:3]]
            out.append(f"{r.symbol} u={r.update_id}: {bad}")
    return out


def rss_mb() -> float:
    """This process's resident memory now, in MiB (for soak tests)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def grid_cache_max(symbols: Iterable[Any]) -> int:
    """The largest conversion cache of the feed symbols' price and quantity grids (``px``/``qty``)."""
    grids = [g for s in symbols for g in (s.px, s.qty) if g is not None]
    return max((len(g._cache) for g in grids), default=0)


Sample = tuple[float, float, dict[str, int]]  # share of the broadcast sent, RSS MiB, sizes of the structures


async def sample_memory(sim: Any, runner: LiveRunner, total: int, sizes: Callable[[LiveRunner], dict[str, int]],
                        every: float = 0.5) -> list[Sample]:
    """Until the simulator's broadcast is over, every ``every`` seconds after a collection: how far it is
    (``sim.position / total``), this process's RSS and ``sizes(runner)`` (soak tests)."""
    samples: list[Sample] = []
    while not sim.done.is_set():
        await asyncio.sleep(every)
        gc.collect()
        samples.append((sim.position / total, rss_mb(), sizes(runner)))
    return samples


def memory_after_warmup(samples: list[Sample], warm_from: float = 0.25) -> tuple[list[Sample], list[float], float, float]:
    """The samples from ``warm_from`` of the broadcast on, their RSS, its growth over them (last minus the
    lowest of the first third) and over their second half (last minus the middle one)."""
    warm = [s for s in samples if s[0] >= warm_from]
    rss = [r for _, r, _ in warm]
    if not rss:
        return warm, rss, float("nan"), float("nan")
    return warm, rss, rss[-1] - min(rss[: max(len(rss) // 3, 1)]), rss[-1] - rss[len(rss) // 2]


class SimulatorThread:
    """A simulator (``simulator``: :class:`BinanceSimulator` unless a subclass names another) running on
    its own event loop thread, for synchronous callers such as CLI tests.
    ``with SimulatorThread(paths, speed=...) as sim: sim.url``."""

    simulator: type | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator", daemon=True)
        self.sim: Any = None

    def __enter__(self) -> Any:
        from .server import BinanceSimulator

        self._thread.start()
        fut: Future = asyncio.run_coroutine_threadsafe(self._start(self.simulator or BinanceSimulator), self._loop)
        self.sim = fut.result(timeout=60)
        return self.sim

    async def _start(self, cls: type) -> Any:
        sim = cls(*self._args, **self._kwargs)
        return await sim.start()

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        if self.sim is not None:
            self.call(self.sim.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
