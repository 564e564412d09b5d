"""The bot API against the simulator: async iterator of immutable snapshots, per-event callbacks with
immutable values, book views and status; a bot's exception never stops the feed."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path

import pytest

from flowbook.events import Event, Kind
from flowbook.live import BookView, FeatureSnapshot, LiveFeed, SymbolStatus
from flowbook.testing import write_recording
from flowbook.testing.simulator import BinanceSimulator, wait_caught_up
from flowbook.venues.binance.live import LiveConfig


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("api") / "aaausdt.gz"
    write_recording(p, 5000, 41, symbol="AAAUSDT")
    return p


def test_async_iterator_callbacks_and_views(recording: Path) -> None:
    async def go() -> tuple[list[FeatureSnapshot], list[tuple[str, Event]], BookView, SymbolStatus, int, LiveFeed]:
        async with BinanceSimulator([recording], speed=5.0, min_streams=5) as sim:
            cfg = LiveConfig(ws_url=sim.ws_url, rest_url=sim.url, weight_budget=1e9, resync_idle=0.2)
            events: list[tuple[str, Event]] = []
            async with LiveFeed("binance-usdm:AAAUSDT", config=cfg) as feed:
                feed.on_event(lambda sym, ev: events.append((sym, ev)), kinds=[Kind.TRADE])
                feed.on_features(lambda snap: 1 / 0)  # a buggy bot
                stream = feed.snapshots(["AAAUSDT"], conflate=False, maxsize=100_000)
                got: list[FeatureSnapshot] = []

                async def take(n: int) -> None:
                    async for snap in stream:
                        got.append(snap)
                        if len(got) == n:
                            break

                await asyncio.wait_for(take(200), 30)
                await wait_caught_up(feed, sim)
                book = feed.book("AAAUSDT", depth=10)
                status = feed.status()["AAAUSDT"]
                ex, ft = feed.latency_samples("AAAUSDT")
                assert len(ft) == min(status.rows, 4096) and len(ex) > 0 and (ft > 0).all()
                feed.reset_latencies(16)
                assert [len(x) for x in feed.latency_samples("AAAUSDT")] == [0, 0]
                assert math.isnan(feed.status()["AAAUSDT"].receive_to_features_p50_ms)
            rest = [s async for s in stream]  # the iterator ends once the feed is closed
            return got + rest, events, book, status, feed.callback_errors, feed

    snaps, events, book, status, errors, feed = asyncio.run(go())
    assert len(snaps) == status.rows > 200
    assert [s.update_id for s in snaps] == sorted(s.update_id for s in snaps)
    s = snaps[-1]
    assert s.symbol == "AAAUSDT" and s.venue == "binance-usdm" and s["best_bid"] < s["best_ask"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.ts_local = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.values["mid"] = 1.0  # type: ignore[index]
    assert events and all(sym == "AAAUSDT" and ev.kind is Kind.TRADE and ev.qty > 0 for sym, ev in events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0][1].qty = 0  # type: ignore[misc]
    assert feed.price("AAAUSDT", events[0][1].price) > 0
    assert book.synced and len(book.bids) == len(book.asks) == 10 and book.bids[0][0] < book.asks[0][0]
    assert float(book.bids[0][0]) == s["best_bid"] and book.update_id == s.update_id
    assert book.trusted_bid is not None and book.trusted_bid <= book.bids[-1][0]
    assert status.synced and status.gaps == 0 and status.messages > 0 and status.queue_depth == 0
    assert not math.isnan(status.exchange_to_receive_p99_ms) and not math.isnan(status.receive_to_features_p50_ms)
    assert errors == status.rows  # every call of the buggy callback failed, and nothing else did
