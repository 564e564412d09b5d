"""Futures context (``flowbook.features.futures``): values from constructed event arrays, the
reference's illustrative Binance USD-M ``forceOrder`` / ``markPriceUpdate`` messages (reference
§B.1.2) through the Binance feed, missing streams on the real captures (which carry none of these
streams), and the fast path against ``reference_micro.ref_futures`` on hypothesis-generated arrays."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_micro import INVERSE, LINEAR, NS, Stream, assert_columns_match

from flowbook.events import EVENT_DTYPE, NO_ID, Instrument, Kind
from flowbook.features.futures import FuturesConfig, futures_columns, futures_series, window_label
from flowbook.features.reference_micro import ref_futures
from flowbook.replay.sources import load
from flowbook.venues.binance.feed import BinanceFeed

MIN = 60 * NS
CFG = FuturesConfig(oi_windows_ns=(MIN,), liq_windows_ns=(MIN, 5 * MIN))


def constructed() -> np.ndarray:
    s = Stream(NS)  # times in seconds
    s.add(Kind.MARK_PRICE, 10, value=100.5, id2=1003)  # index 100.3 (tick 0.1)
    s.add(Kind.FUNDING_RATE, 10, ident=3600 * NS, value=0.0001)
    s.add(Kind.OPEN_INTEREST, 20, value=1000.0)
    s.add(Kind.LIQUIDATION, 30, side=-1, price=1000, qty=2000, value=99.5)  # a long closed: 2.0 at 99.5
    s.add(Kind.OPEN_INTEREST, 80, value=1100.0)
    s.add(Kind.LIQUIDATION, 100, side=1, price=1010, qty=1000)  # no average price: the order price 101.0
    s.add(Kind.MARK_PRICE, 110, value=101.0)  # index unknown
    return s.array()


def test_constructed_values() -> None:
    out = futures_series(constructed(), LINEAR, np.array([5, 30, 100, 110]) * NS, CFG)
    assert tuple(out) == futures_columns(CFG)
    assert out["fut_has_mark"].tolist() == [0, 1, 1, 1] and math.isnan(out["fut_mark_price"][0])
    assert out["fut_mark_price"][1:].tolist() == [100.5, 100.5, 101.0]
    assert out["fut_index_price"][1] == pytest.approx(100.3) and math.isnan(out["fut_index_price"][3])
    assert out["fut_premium_bps"][1] == pytest.approx((100.5 / 100.3 - 1) * 1e4)
    assert out["fut_funding_rate"][1] == 0.0001 and out["fut_next_funding_ts"].tolist() == [-1] + [3600 * NS] * 3
    assert out["fut_next_funding_ts"].dtype == np.int64
    assert out["fut_time_to_funding_s"][2] == 3500.0
    assert out["fut_open_interest"][2] == 1100.0 and math.isnan(out["fut_oi_change_1m"][1])
    assert out["fut_oi_change_1m"][2] == 100.0 and out["fut_oi_change_pct_1m"][2] == pytest.approx(10.0)
    assert out["fut_oi_change_1m"][3] == 100.0  # at 50 s (60 s before 110 s) the 20 s value was in force
    assert out["fut_has_liquidations"].tolist() == [0, 1, 1, 1] and math.isnan(out["fut_liq_count_1m"][0])
    assert out["fut_liq_count_1m"][1:].tolist() == [1, 1, 1]  # (T − 60 s, T]: the 30 s one drops out at 100 s
    assert out["fut_liq_sell_quote_1m"][1:].tolist() == [199.0, 0.0, 0.0]
    assert out["fut_liq_buy_quote_1m"][2] == pytest.approx(101.0) and out["fut_liq_count_5m"][3] == 2
    assert_columns_match(out, ref_futures(constructed(), LINEAR, [5 * NS, 30 * NS, 100 * NS, 110 * NS], CFG))
    declared = futures_series(constructed(), LINEAR, np.array([5 * NS]), FuturesConfig(liquidations=True))
    assert declared["fut_liq_count_1m"].tolist() == [0.0] and declared["fut_has_liquidations"][0] == 1
    absent = futures_series(constructed(), LINEAR, np.array([200 * NS]), FuturesConfig(liquidations=False))
    assert np.isnan(absent["fut_liq_count_5m"]).all()


def test_inverse_liquidation_notional_is_contracts_times_multiplier() -> None:
    s = Stream()
    s.add(Kind.LIQUIDATION, 1, side=1, price=60_000, qty=7, value=30_000.0)
    out = futures_series(s.array(), INVERSE, np.array([1]), CFG)
    assert out["fut_liq_buy_quote_1m"][0] == 700.0


def test_reference_usdm_messages_through_the_binance_feed() -> None:
    # reference §B.1.2's illustrative USD-M messages (a snapshot first, so the instrument is defined)
    frames = [
        b'{"lastUpdateId":5100,"E":1767225600100,"T":1767225600100,"bids":[["64000.0","3.210"]],'
        b'"asks":[["64000.1","0.500"]]}',
        b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1767225600200,"T":1767225600198,'
        b'"s":"BTCUSDT","U":5100,"u":5107,"pu":5099,"b":[["64000.0","3.210"]],"a":[["64000.1","0"]]}}',
        b'{"e":"forceOrder","E":1767225601000,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.500",'
        b'"p":"63850.0","ap":"63912.4","X":"FILLED","l":"0.500","z":"0.500","T":1767225600999}}',
        b'{"e":"markPriceUpdate","E":1767225603000,"s":"BTCUSDT","p":"64001.52","i":"63998.77",'
        b'"P":"63995.10","r":"0.00010000","T":1767254400000}',
    ]
    feed = BinanceFeed()
    for n, f in enumerate(frames):
        feed.on_frame(1767225600_000_000_000 + n * NS, f, f"msg:{n}", "BTCUSDT")
    feed.finish()
    ev, inst = feed.take_events(), feed.instruments[0]
    assert inst is not None
    t = 1767225603_000_000_000
    out = futures_series(ev, inst, np.array([t]), clock="ts_exchange")
    assert out["fut_mark_price"][0] == 64001.52 and out["fut_funding_rate"][0] == 0.0001
    assert out["fut_next_funding_ts"][0] == 1767254400000 * 1_000_000
    assert out["fut_time_to_funding_s"][0] == pytest.approx(28797.0)
    assert out["fut_liq_sell_quote_1m"][0] == pytest.approx(0.5 * 63912.4) and out["fut_liq_buy_quote_1m"][0] == 0
    assert out["fut_has_oi"][0] == 0 and math.isnan(out["fut_open_interest"][0])


def test_missing_streams_on_the_real_captures(data_dir: Path) -> None:
    for path in ("usdm/btcusdt_20240808.gz", "cm/btcusd_perp_20240808.gz"):
        loaded = load([data_dir / "hftbacktest" / path], None, False)
        ev = loaded.events
        assert not np.isin(ev["kind"], [Kind.MARK_PRICE, Kind.FUNDING_RATE, Kind.OPEN_INTEREST, Kind.LIQUIDATION]).any()
        samples = np.linspace(ev["ts_local"][0], ev["ts_local"][-1], 50).astype(np.int64)
        out = futures_series(ev, loaded.instruments[0], samples)
        for k, v in out.items():
            if k.startswith("fut_has_"):
                assert (v == 0).all(), k
            elif k == "fut_next_funding_ts":
                assert (v == -1).all()
            else:
                assert np.isnan(v).all(), k
    empty = futures_series(np.zeros(0, EVENT_DTYPE), LINEAR, np.zeros(0, np.int64))
    assert all(len(v) == 0 for v in empty.values())


def test_window_labels_and_config() -> None:
    assert [window_label(w) for w in (NS, 90 * NS, MIN, 3600 * NS, 7)] == ["1s", "90s", "1m", "1h", "7ns"]
    assert "fut_oi_change_pct_5m" in futures_columns() and "fut_liq_sell_quote_1h" in futures_columns()
    with pytest.raises(ValueError):
        FuturesConfig(liq_windows_ns=(MIN, 60 * NS))
    with pytest.raises(ValueError):
        FuturesConfig(oi_windows_ns=(0,))


@st.composite
def futures_events(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    s = Stream()
    t = 1_000
    for _ in range(draw(st.integers(0, 30))):
        t += draw(st.integers(0, 4))
        when = t - draw(st.sampled_from([0, 0, 0, 2]))  # sometimes the clock steps back
        k = draw(st.sampled_from([Kind.MARK_PRICE, Kind.FUNDING_RATE, Kind.OPEN_INTEREST, Kind.LIQUIDATION,
                                  Kind.TRADE]))
        if k == Kind.MARK_PRICE:
            s.add(k, when, value=draw(st.floats(90, 110)), id2=draw(st.sampled_from([NO_ID, 995, 1000])))
        elif k == Kind.FUNDING_RATE:
            s.add(k, when, ident=draw(st.sampled_from([NO_ID, 2_000, 5_000])), value=draw(st.floats(-1e-3, 1e-3)))
        elif k == Kind.OPEN_INTEREST:
            s.add(k, when, value=draw(st.sampled_from([0.0, 10.0, 12.5, 11.0])))
        elif k == Kind.LIQUIDATION:
            s.add(k, when, side=draw(st.sampled_from([1, -1])), price=draw(st.integers(900, 1100)),
                  qty=draw(st.integers(1, 50)), value=draw(st.sampled_from([0.0, 99.5, 100.25])))
        else:
            s.trade(when, 1, 1000, 1)
    samples = sorted(draw(st.lists(st.integers(990, t + 5), max_size=8)))
    return s.array(), samples


FUT_CFGS = st.builds(FuturesConfig, oi_windows_ns=st.sampled_from([(3,), (1, 10)]),
                     liq_windows_ns=st.sampled_from([(5,), (2, 20)]), liquidations=st.sampled_from([None, True, False]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=futures_events(), cfg=FUT_CFGS, inst=st.sampled_from([LINEAR, INVERSE]),
       clock=st.sampled_from(["ts_local", "ts_exchange"]))
def test_futures_matches_twin(data: tuple[np.ndarray, list[int]], cfg: FuturesConfig, inst: Instrument,
                              clock: str) -> None:
    ev, samples = data
    got = futures_series(ev, inst, np.array(samples, np.int64), cfg, clock)
    assert_columns_match(got, ref_futures(ev, inst, samples, cfg, clock))
