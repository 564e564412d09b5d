"""Pure pieces of the live path, without sockets or clocks: backoff, REST weight budget, connection
plans, latency windows, snapshot iterators."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from flowbook.live import FeatureSnapshot, SnapshotStream
from flowbook.live.values import LatencyBook
from flowbook.venues import registry
from flowbook.venues.binance.live import LiveConfig, LiveError, plan_connections
from flowbook.venues.binance.rest import Backoff, WeightLimiter, stream_key


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    b = Backoff(base=0.5, cap=8.0, rng=random.Random(1))
    delays = [b.delay(n) for n in range(8)]
    for n, d in enumerate(delays):
        top = min(8.0, 0.5 * 2**n)
        assert top / 2 <= d <= top
    assert len(set(delays)) == len(delays)  # jittered
    again = Backoff(0.5, 8.0, random.Random(1))
    assert [again.delay(n) for n in range(8)] == delays  # reproducible from the rng
    with pytest.raises(ValueError):
        Backoff(base=0)


def test_weight_limiter_keeps_a_sliding_minute_budget() -> None:
    now = [1000.0]
    lim = WeightLimiter(100, clock=lambda: now[0])
    for _ in range(5):
        assert lim.delay(20) == 0
        lim.spend(20)
    assert lim.used == 100
    assert lim.delay(20) == pytest.approx(60.0)  # the first 20 leave the window a minute after they came
    now[0] += 30
    lim.spend(0)
    assert lim.delay(20) == pytest.approx(30.0)
    now[0] += 30.5
    assert lim.delay(20) == 0 and lim.used == 0
    lim.block_until(now[0] + 5)  # a 429 with Retry-After: 5
    assert lim.delay(1) == pytest.approx(5.0)


def test_weight_limiter_paces_requests() -> None:
    async def go() -> float:
        lim = WeightLimiter(10)
        loop = asyncio.get_running_loop()
        t = loop.time()
        await lim.acquire(10)
        return loop.time() - t

    assert asyncio.run(go()) < 1.0  # within budget: no wait


def test_connections_split_by_route_and_stream_limit() -> None:
    usdm, spot = registry.get("binance-usdm"), registry.get("binance")
    syms = [f"S{i}USDT" for i in range(150)]
    plan = plan_connections(usdm, syms, LiveConfig(ws_url="ws://h:1"))
    public = [p for p in plan if "/public/" in p[0]]
    market = [p for p in plan if "/market/" in p[0]]
    assert sum(len(p[1]) for p in public) == 300 and sum(len(p[1]) for p in market) == 600  # + @ticker
    assert all(len(p[1]) <= 200 for p in plan) and len(plan) == 2 + 3
    for url, streams, symbols in plan:  # a symbol's streams of one route share one connection
        assert url.endswith("streams=" + "/".join(streams))
        assert {s.split("@")[0].upper() for s in streams} == set(symbols)
    flat = plan_connections(usdm, ["BTCUSDT"], LiveConfig(route_streams=False, depth_speed="0ms"))
    assert flat == [("wss://fstream.binance.com/stream?streams=btcusdt@depth@0ms/btcusdt@trade/btcusdt@bookTicker/"
                     "btcusdt@ticker/btcusdt@forceOrder/btcusdt@markPrice@1s", flat[0][1], ["BTCUSDT"])]
    sp = plan_connections(spot, ["BTCUSDT"], LiveConfig(depth_speed="1000ms", trades="aggTrade", book_ticker=False,
                                                        ticker=False))
    assert sp[0][1] == ["btcusdt@depth", "btcusdt@aggTrade"]
    with pytest.raises(LiveError, match="not offered"):
        plan_connections(spot, ["BTCUSDT"], LiveConfig(depth_speed="0ms"))


def test_stream_key_reads_the_envelope_head() -> None:
    assert stream_key(b'{"stream":"btcusdt@depth@100ms","data":{}}') == (b"btcusdt", b"depth")
    assert stream_key(b'{"stream":"btcusdt@trade","data":{}}') == (b"btcusdt", b"trade")
    assert stream_key(b'{"result":null,"id":1}') is None
    assert stream_key(b'{"stream":"btc') is None


def test_latency_book_is_bounded_per_symbol() -> None:
    w = LatencyBook(3, size=100)
    assert np.isnan(w.percentiles_ms(0)[0])
    one = lambda n: np.ones(n, np.int64)  # noqa: E731
    w.add(one(1000), np.full(1000, 5_000_000, np.int64))
    # one batch for two symbols, interleaved: each keeps its own samples in order
    w.add(np.tile([1, 2], 50), np.repeat(np.arange(50, dtype=np.int64) * 1_000_000, 2))
    p50, p99 = w.percentiles_ms(1)
    assert w.buf.shape == (3, 100) and p50 == 5.0 and 40 < p99 < 49  # the last 100 samples only
    assert w.percentiles_ms(2) == (24.5, 48.51)
    assert np.isnan(w.percentiles_ms(0)[1])
    w.add(one(100), np.full(100, 1_000_000, np.int64))
    assert w.percentiles_ms(1) == (1.0, 1.0)


def _snap(sym: str, u: int) -> FeatureSnapshot:
    return FeatureSnapshot("binance", sym, u, u, u, MappingProxyType({"mid": float(u)}))


def test_snapshots_are_immutable_and_streams_conflate() -> None:
    s = _snap("BTCUSDT", 1)
    with pytest.raises(AttributeError):
        s.update_id = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.values["mid"] = 0.0  # type: ignore[index]

    async def go() -> tuple[list[int], int, list[int], int]:
        conflated = SnapshotStream()
        queued = SnapshotStream(["ethusdt"], conflate=False, maxsize=2)
        for u in range(5):
            for st in (conflated, queued):
                st.push(_snap("BTCUSDT", u))
                st.push(_snap("ETHUSDT", 10 + u))
        conflated.close()
        queued.close()
        return ([x.update_id async for x in conflated], conflated.skipped,
                [x.update_id async for x in queued], queued.skipped)

    got, skipped, q, qskipped = asyncio.run(go())
    assert got == [4, 14] and skipped == 8
    assert q == [13, 14] and qskipped == 3


def test_file_symbol_from_recorder_file_names(tmp_path: Path) -> None:
    import gzip

    from flowbook.replay.raw import file_symbol

    for name in ("aaausdt_20240808_23.gz", "aaausdt_20240808_235415000000.gz", "btc_usd_perp_20240808_23.1.gz"):
        p = tmp_path / name
        with gzip.open(p, "wb") as f:  # a polled recording: REST answers only, no stream names
            f.write(b'1723161255000000000 {"lastUpdateId":1,"bids":[],"asks":[]}\n')
        assert file_symbol(p) == name.rsplit("_", 2)[0].upper()


def test_recorder_paths_of_symbols_with_slashes(tmp_path) -> None:  # noqa: ANN001
    """Kraken's ``BTC/USD`` is a folder name ``BTC_USD``; the frames keep the venue's spelling."""
    import gzip

    from flowbook.live.recorder import Recorder, path_name

    assert path_name("BTC/USD") == "BTC_USD" and path_name("BTC-USDT-SWAP") == "BTC-USDT-SWAP"
    rec = Recorder(tmp_path, "kraken")
    rec.write("BTC/USD", 1_700_000_000_000_000_000, b'{"channel":"book","data":[{"symbol":"BTC/USD"}]}')
    rec.close()
    (path,) = rec.files
    assert path.parent == tmp_path / "kraken" / "BTC_USD" and path.name.startswith("btc_usd_")
    with gzip.open(path) as fh:
        assert fh.read().endswith(b'"symbol":"BTC/USD"}]}\n')


def test_split_batch_groups_symbols_stably_and_times_depth_and_trades() -> None:
    from flowbook.events import EVENT_DTYPE
    from flowbook.live.batchnb import NEED_SYMBOLS, split_batch

    ev = np.zeros(7, EVENT_DTYPE)
    ev["symbol"] = [4, 2, 4, 9, 2, 4, 2]
    ev["kind"] = [1, 3, 1, 3, 1, 3, 1]
    ev["flags"] = [0, 0, 8, 0, 9, 0, 8]  # 2's second row closes a snapshot message: not timed
    ev["ts_exchange"] = 1_000
    ev["ts_local"] = 1_000 + np.arange(7) * 100
    ev["id"] = np.arange(7)
    lat = LatencyBook(3, size=16)
    bufs = [np.empty(7, EVENT_DTYPE), *(np.full(7, -9, np.int64) for _ in range(4))]
    before = ev.copy()
    # symbol 9 is not indexed yet: nothing happens
    sid_index = np.full(5, -2, np.int64)
    sid_index[[2, 4]] = [1, 0]
    assert split_batch(ev, bufs[0], sid_index, np.array([3, -1, -1]), lat.buf, lat.count, *bufs[1:]) == (NEED_SYMBOLS, 0)
    assert lat.count.sum() == 0
    sid_index = np.full(10, -1, np.int64)  # 9 is not ours
    sid_index[[2, 4]] = [1, 0]
    runs, flags = split_batch(ev, bufs[0], sid_index, np.array([3, -1, -1]), lat.buf, lat.count, *bufs[1:])
    out, starts, ends, sidx, engine = bufs
    assert runs == 3 and flags == 3  # a snapshot row; symbol index 1 has no engine
    assert out["id"].tolist() == [0, 2, 5, 1, 4, 6, 3]  # first appearance order, each symbol's rows in order
    assert starts[:3].tolist() == [0, 3, 6] and ends[:3].tolist() == [3, 6, 7]
    assert sidx[:3].tolist() == [0, 1, -1] and engine[:3].tolist() == [3, -1, -1]
    np.testing.assert_array_equal(ev, before)  # the input is left as it was
    assert sorted(lat.samples(0).tolist()) == [200, 500]  # its depth message end and its trade
    assert sorted(lat.samples(1).tolist()) == [100, 600]  # the trade and the diff; not the snapshot
