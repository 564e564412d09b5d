"""The exchange simulator speaks Binance's protocol, keeps the recording's book as truth, and injects
exactly the faults it is told to (checked with a raw WebSocket client, not the live adapter)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest

from flowbook.testing import write_recording
from flowbook.testing.simulator import BinanceSimulator, FaultPlan, Truth, load_source
from flowbook.venues.binance.messages import DepthSnapshot


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    p = tmp_path_factory.mktemp("sim") / "synusdt.gz"
    return p, write_recording(p, 3000, 5, symbol="SYNUSDT")


def test_truth_is_the_generators_book(one: tuple[Path, object]) -> None:
    path, mk = one
    src = load_source([path])
    assert src.futures and src.symbols == ("SYNUSDT",)
    assert sum(f.kind == "snapshot" for f in src.frames) == 1 and len(src.broadcast()) == len(src.frames) - 1
    truth = Truth()
    truth.apply([f for f in src.frames if f.kind in ("depth", "snapshot")])
    assert truth.synced("SYNUSDT")
    assert truth.levels("SYNUSDT", 1, 5000) == [tuple(x) for x in mk.final_bids.T.tolist()]  # type: ignore[attr-defined]
    assert truth.levels("SYNUSDT", -1, 5000) == [tuple(x) for x in mk.final_asks.T.tolist()]  # type: ignore[attr-defined]
    assert truth.last_u["SYNUSDT"] == int(mk.last_id[-1])  # type: ignore[attr-defined]


def test_truth_of_a_real_capture_matches_replay(data_dir: Path) -> None:
    from flowbook.replay.sources import load

    path = data_dir / "hftbacktest/spot/btcusdt_20240808.gz"
    src = load_source([path], limit=4000)
    assert not src.futures and src.symbols == ("BTCUSDT",)
    truth = Truth()
    truth.apply([f for f in src.frames if f.kind in ("depth", "snapshot")])
    assert truth.decimals["BTCUSDT"] == (8, 8)
    snap = msgspec.json.decode(truth.render("BTCUSDT", 5, False, 0), type=DepthSnapshot)
    assert snap.E is None and len(snap.bids) == 5
    assert len(snap.bids[0][0].partition(".")[2]) == 8  # the recording's own precision
    loaded = load([path], None, strict=True)
    from flowbook.book import L2Book

    book = L2Book(window=1 << 16)
    ev = loaded.events[loaded.events["ts_local"] <= src.frames[-1].ts]
    book.apply(ev)
    assert book.levels(1, 50) == truth.levels("BTCUSDT", 1, 50)
    assert book.levels(-1, 50) == truth.levels("BTCUSDT", -1, 50)


async def _collect(sim: BinanceSimulator, url: str) -> list[str]:
    """Every text frame until the socket closes, or the broadcast is over and nothing came for 0.3 s."""
    got: list[str] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        while True:
            try:
                msg = await asyncio.wait_for(ws.receive(), 0.3)
            except TimeoutError:
                if sim.done.is_set():
                    break
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            got.append(msg.data)
    return got


def test_stream_rest_and_methods(one: tuple[Path, object]) -> None:
    path, mk = one

    async def go() -> None:
        async with BinanceSimulator([path], speed=math.inf, min_streams=2) as sim, aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{sim.ws_url}/stream") as ws:
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["synusdt@depth@100ms"], "id": 1}))
                assert json.loads((await ws.receive()).data) == {"result": None, "id": 1}
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["synusdt@depth@7ms"], "id": 2}))
                err = json.loads((await ws.receive()).data)
                assert err["id"] == 2 and err["error"]["code"] == 2
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["synusdt@trade"], "id": 3}))
                frames = []
                while len(frames) < 50:
                    data = json.loads((await ws.receive()).data)
                    if "stream" in data:
                        frames.append(data)
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
                while "result" not in (data := json.loads((await ws.receive()).data)):
                    pass
                assert data == {"result": ["synusdt@depth@100ms", "synusdt@trade"], "id": 4}
            assert {f["stream"] for f in frames} <= {"synusdt@depth@100ms", "synusdt@trade"}
            assert abs(frames[0]["data"]["E"] - time.time() * 1000) < 10_000, "re-stamped to now"
            await asyncio.wait_for(sim.done.wait(), 30)
            async with s.get(f"{sim.url}/fapi/v1/depth", params={"symbol": "SYNUSDT", "limit": "5"}) as r:
                assert r.status == 200
                snap = msgspec.json.decode(await r.read(), type=DepthSnapshot)
            assert snap.lastUpdateId == int(mk.last_id[-1])  # type: ignore[attr-defined]
            assert [(round(float(p) * 10), round(float(q) * 1000)) for p, q in snap.bids] == \
                [tuple(x) for x in mk.final_bids.T.tolist()[:5]]  # type: ignore[attr-defined]
            for params, code in [({"symbol": "NOPE", "limit": "5"}, -1121), ({"symbol": "SYNUSDT", "limit": "7"},
                                                                           -1102)]:
                async with s.get(f"{sim.url}/fapi/v1/depth", params=params) as r:
                    assert r.status == 400 and (await r.json())["code"] == code
            async with s.get(f"{sim.url}/api/v3/depth", params={"symbol": "SYNUSDT"}) as r:
                assert r.status == 404  # a futures simulator does not serve spot paths
            async with s.get(f"{sim.url}/fapi/v1/exchangeInfo") as r:
                assert [e["symbol"] for e in (await r.json())["symbols"]] == ["SYNUSDT"]
            async with s.ws_connect(f"{sim.ws_url}/stream?streams=nope@trade") as _:
                pytest.fail("an unknown stream must be refused")

    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        asyncio.run(go())
    assert exc.value.status == 400


def test_stream_faults_are_exact(one: tuple[Path, object]) -> None:
    path, _ = one
    src = load_source([path])
    frames = src.broadcast()
    plan = FaultPlan().at(10, "drop").at(20, "duplicate").at(30, "corrupt")
    plan.at(next(i for i in src.indices("depth") if i > 40), "reorder")

    async def go() -> list[str]:
        async with BinanceSimulator(src, speed=math.inf, faults=plan, min_streams=2, restamp=False) as sim:
            return await _collect(sim, f"{sim.ws_url}/stream?streams=synusdt@depth@0ms/synusdt@trade")

    got = asyncio.run(go())
    want = [f.data.decode() for f in frames]
    data = [g[g.index('"data":') + 7:-1] if g.endswith("}}") else g for g in got]
    r = next(i for i in src.indices("depth") if i > 40)
    r2 = next(i for i in src.indices("depth") if i > r)
    expected = want[:10] + want[11:20] + [want[20]] + want[20:30] + ["CORRUPT"] + want[31:r] + want[r + 1:r2 + 1] \
        + [want[r]] + want[r2 + 1:]
    assert len(data) == len(expected)
    for k, (a, b) in enumerate(zip(data, expected, strict=True)):
        if b == "CORRUPT":
            assert got[k].startswith('{"stream":"synusdt@') and len(got[k]) < len(frames[30].data) + 40
            with pytest.raises(ValueError):
                json.loads(got[k])
        else:
            assert a == b, k


def test_disconnect_refuses_reconnects_for_the_downtime(one: tuple[Path, object]) -> None:
    path, _ = one
    plan = FaultPlan(downtime=10 ** 6).at(5, "disconnect")  # refuse until the end

    async def go() -> tuple[int, int]:
        async with BinanceSimulator([path], speed=math.inf, faults=plan, min_streams=1) as sim:
            got = await _collect(sim, f"{sim.ws_url}/stream?streams=synusdt@depth@0ms")
            async with aiohttp.ClientSession() as s:
                with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                    await s.ws_connect(f"{sim.ws_url}/stream?streams=synusdt@trade")
            return len(got), exc.value.status

    n, status = asyncio.run(go())
    assert n <= 6 and status == 503


def test_routes_are_enforced_silently(one: tuple[Path, object]) -> None:
    path, _ = one

    async def go() -> tuple[list[str], list[str]]:
        async with BinanceSimulator([path], speed=math.inf, min_streams=2, enforce_routes=True) as sim:
            wrong = asyncio.create_task(_collect(sim, f"{sim.ws_url}/public/stream?streams=synusdt@trade"))
            right = asyncio.create_task(_collect(sim, f"{sim.ws_url}/market/stream?streams=synusdt@trade"))
            return await wrong, await right

    wrong, right = asyncio.run(go())
    assert wrong == [] and len(right) > 10
