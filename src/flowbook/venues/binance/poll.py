"""Periodic REST requests of the live adapter: open interest, and the REST-polling mode.

Every answer is handed to the adapter's consumer as it came (``BinanceLive.deliver``), so it goes through
the same feed as the socket frames and into the recording, in processing order: a recording of a polled
session replays like any other.

**Open interest** (futures): ``GET openInterest?symbol=`` (weight 1) every ``open_interest_interval``
seconds per symbol, spread evenly over the interval; each answer becomes one ``OPEN_INTEREST`` event
(value = open interest in base asset on USD-M, contracts on COIN-M; exchange time = its ``time``).

**Polling mode** (``poll_interval``, for users who cannot hold a WebSocket open): no socket at all.
Every interval each symbol gets ``GET depth?limit=`` (default 20 levels) and, unless trades are off,
``GET trades?limit=``.  The feed lets each newer snapshot replace the book (``BinanceFeed._replace``),
and keeps each REST trade once (by trade id; the overlap of two polls is dropped).  Before starting, the
interval is stretched so that one round of requests fits the REST weight budget:
``interval >= (depth weight + trades weight) x symbols x 60 / budget``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .rest import RestError

if TYPE_CHECKING:
    from .live import BinanceLive

__all__ = ["RestPoller", "poll_interval"]

log = logging.getLogger("flowbook.live.binance")


def poll_interval(wanted: float, weight_per_round: int, budget: float) -> float:
    """The polling interval that keeps one round of requests every interval within ``budget`` weight/min."""
    return max(wanted, weight_per_round * 60.0 / budget)


class RestPoller:
    """The periodic REST tasks of one :class:`~.live.BinanceLive`."""

    def __init__(self, live: BinanceLive) -> None:
        self.live = live
        self.rounds = 0  # completed polling rounds
        self.interval = 0.0  # the polling interval in use (after the weight budget)

    def tasks(self) -> list[asyncio.Task]:
        live, cfg, caps = self.live, self.live.config, self.live.venue.capabilities
        out = []
        if cfg.open_interest_interval and caps.open_interest_weight and live.venue.market != "spot":
            out.append(asyncio.create_task(self._open_interest(cfg.open_interest_interval), name="binance-oi"))
        if cfg.poll_interval:
            assert live.rest is not None
            per_symbol = caps.snapshot_weight(live.snapshot_limit) + (caps.trades_weight if cfg.trades != "none"
                                                                       else 0)
            self.interval = poll_interval(cfg.poll_interval, per_symbol * len(live.symbols), live.rest.limiter.budget)
            if self.interval > cfg.poll_interval:
                log.warning("event=poll_slowed venue=%s symbols=%d interval=%.2f wanted=%.2f reason=weight_budget",
                            live.venue.name, len(live.symbols), self.interval, cfg.poll_interval)
            out.append(asyncio.create_task(self._poll(), name="binance-poll"))
        return out

    async def _every(self, interval: float, symbol_index: int, count: int) -> float:
        """Seconds until this symbol's next slot: symbols are spread evenly over the interval."""
        now = time.monotonic()
        offset = interval * symbol_index / max(1, count)
        k = (now - offset) // interval + 1
        return max(0.0, k * interval + offset - now)

    async def _open_interest(self, interval: float) -> None:
        live = self.live
        n = len(live.symbols)
        await asyncio.gather(*(self._oi_loop(s, interval, i, n) for i, s in enumerate(live.symbols)))

    async def _oi_loop(self, sym: str, interval: float, i: int, n: int) -> None:
        live = self.live
        assert live.rest is not None
        while not live.stopping:
            await asyncio.sleep(await self._every(interval, i, n))
            try:
                ts, body = await live.rest.open_interest(sym)
            except RestError as exc:  # 429/418 block the limiter itself; the next slot tries again
                live.stats[sym].rest_errors += 1
                log.warning("event=open_interest_failed venue=%s symbol=%s error=%s", live.venue.name, sym, exc)
                continue
            live.deliver(sym, ts, body, "rest")

    async def _poll(self) -> None:
        live = self.live
        while not live.stopping:
            t0 = time.monotonic()
            await asyncio.gather(*(self._poll_one(s) for s in live.symbols))
            self.rounds += 1
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - t0)))

    async def _poll_one(self, sym: str) -> None:
        live = self.live
        assert live.rest is not None
        st = live.stats[sym]
        try:
            snap = await live.rest.depth(sym, live.snapshot_limit)
            trades = (await live.rest.recent_trades(sym, live.config.poll_trades_limit)
                      if live.config.trades != "none" else None)
        except RestError as exc:
            st.rest_errors += 1
            st.connected = False
            log.warning("event=poll_failed venue=%s symbol=%s error=%s", live.venue.name, sym, exc)
            return
        st.connected = True
        live.deliver(sym, *snap, "poll")
        if trades is not None:
            live.deliver(sym, *trades, "rest")
