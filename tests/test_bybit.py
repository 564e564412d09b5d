"""Bybit v5: golden messages, replays of the real captures, sync faults, recording round trip."""

from __future__ import annotations

import gzip
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from flowbook.events import NO_ID, Flag, Instrument, Kind
from flowbook.replay.bybit import is_bybit, is_bybit_cryptofeed, is_bybit_data, is_bybit_raw, load_bybit
from flowbook.replay.cryptofeed import parse_ts_ns
from flowbook.venues.bybit import Action, BookSequencer, BybitFeed, SyncError, trade_id

XRP = "nautilus_trader/bybit/xrpusdt-ob500.data.zip"
CF = "cryptofeed/v3-branch_28655106"
MS = 1_000_000
EOM = int(Flag.END_OF_MESSAGE)


def xrp_lines(data_dir: Path) -> list[bytes]:
    with zipfile.ZipFile(data_dir / XRP) as z:
        return z.read(z.namelist()[0]).splitlines()


def cf_frames(path: Path) -> list[tuple[int, bytes, str]]:
    out = []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if line[:1].isdigit():
            ts, _, payload = line.partition(b": ")
            out.append((parse_ts_ns(ts), payload, f"{path.name}:{n}"))
    return out


def run(feed: BybitFeed, lines: list[bytes], name: str = "x") -> np.ndarray:
    for n, line in enumerate(lines, 1):
        feed.on_frame(json.loads(line)["ts"] * MS, line, f"{name}:{n}")
    return feed.take_events()


def book_of(events: np.ndarray, sid: int = 0) -> dict[tuple[int, int], int]:
    """Replay BOOK events of one symbol into ``{(side, tick): lots}``; asserts it never crosses."""
    book: dict[tuple[int, int], int] = {}
    for e in events[events["symbol"] == sid]:
        if e["kind"] == Kind.BOOK_CLEAR:
            book.clear()
        elif e["kind"] == Kind.BOOK_SET and e["side"] != 0:
            key = (int(e["side"]), int(e["price"]))
            if e["qty"]:
                book[key] = int(e["qty"])
            else:
                book.pop(key, None)
        if e["flags"] & EOM and e["kind"] == Kind.BOOK_SET:
            bids = [t for s, t in book if s == 1]
            asks = [t for s, t in book if s == -1]
            assert not bids or not asks or max(bids) < min(asks), "crossed book"
    return book


# -- golden messages
def test_golden_orderbook_500_delta(data_dir: Path) -> None:
    lines = xrp_lines(data_dir)
    feed = BybitFeed("linear")
    run(feed, lines[:1])
    ev = run(feed, lines[1:2])
    assert feed.instruments == [Instrument("bybit-linear", "XRPUSDT", "0.0001", "1")]
    assert len(ev) == 13 + 22  # every level of the delta, bids then asks
    first = tuple(ev[0].tolist())
    assert first == (int(Kind.BOOK_SET), 1, 0, 0, 1733011200691 * MS, 1733011200693 * MS, 19531, 6198, 20254870,
                     130020239261, 0.0)
    assert tuple(ev[12].tolist())[6:8] == (19328, 7208)  # last bid ["1.9328","7208"]
    assert tuple(ev[13].tolist())[1:8] == (-1, 0, 0, 1733011200691 * MS, 1733011200693 * MS, 19535, 8415)
    assert ev["flags"].tolist() == [0] * 34 + [EOM]
    assert set(ev["id"]) == {20254870} and set(ev["id2"]) == {130020239261}


def test_golden_orderbook_1_snapshots(data_dir: Path) -> None:
    # linear BANDUSDT (ws.1.0 line 6) and spot OPUSDC (ws.2.0 line 9), instruments from instruments-info
    linear = BybitFeed("linear", instruments={"BANDUSDT": Instrument("bybit-linear", "BANDUSDT", "0.0001", "0.1")})
    t, payload, where = cf_frames(data_dir / CF / "BYBIT.ws.1.0")[0]
    linear.on_frame(t, payload, where)
    ev = linear.take_events()
    t0 = parse_ts_ns("1749833474.2851315")
    snap = int(Flag.SNAPSHOT | Flag.INCOMPLETE)
    assert [tuple(e.tolist()) for e in ev] == [
        (int(Kind.BOOK_CLEAR), 0, int(Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN), 0, 1749833474768 * MS, t0, 0, 0,
         24042997, 209972815373, 0.0),
        (int(Kind.BOOK_SET), 1, snap, 0, 1749833474768 * MS, t0, 6131, 179, 24042997, 209972815373, 0.0),
        (int(Kind.BOOK_SET), -1, snap | int(Flag.SNAPSHOT_END) | EOM, 0, 1749833474768 * MS, t0, 6134, 354,
         24042997, 209972815373, 0.0),
    ]
    spot = BybitFeed("spot", instruments={"OPUSDC": Instrument("bybit", "OPUSDC", "0.0001", "0.01")})
    frames = cf_frames(data_dir / CF / "BYBIT.ws.2.0")
    for t, payload, where in frames[:2]:  # a subscribe ack, then the snapshot
        spot.on_frame(t, payload, where)
    ev = spot.take_events()
    assert spot.stats.other == 1 and spot.stats.snapshots == 1
    assert [(int(e["side"]), int(e["price"]), int(e["qty"])) for e in ev[1:]] == [(1, 5790, 388645), (-1, 5800, 404362)]
    assert int(ev[0]["ts_exchange"]) == 1749833472901 * MS  # cts, not ts


def test_trades_liquidations_tickers_documented_examples() -> None:
    feed = BybitFeed("linear", instruments={"BTCUSDT": Instrument("bybit-linear", "BTCUSDT", "0.10", "0.001")})
    trade = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
             b'"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
             b'"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}')
    feed.on_frame(1, trade, "t:1")
    feed.on_frame(2, trade, "t:2")  # the same trade id again: dropped
    liq = (b'{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,'
           b'"s":"BTCUSDT","S":"Buy","v":"0.020","p":"16000.00"}]}')
    feed.on_frame(3, liq, "l:1")
    snap = (b'{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1673853746003,"cs":1,"data":{"symbol":"BTCUSDT",'
            b'"markPrice":"17217.33","openInterest":"68744.761","fundingRate":"-0.000212",'
            b'"nextFundingTime":"1673280000000","lastPrice":"17216.00"}}')
    delta = (b'{"topic":"tickers.BTCUSDT","type":"delta","ts":1673853746103,"cs":2,"data":{"symbol":"BTCUSDT",'
             b'"fundingRate":"-0.000100"}}')
    feed.on_frame(4, snap, "k:1")
    feed.on_frame(5, delta, "k:2")
    ev = feed.take_events()
    kinds = [Kind(int(k)) for k in ev["kind"]]
    assert kinds == [Kind.TRADE, Kind.LIQUIDATION, Kind.MARK_PRICE, Kind.FUNDING_RATE, Kind.OPEN_INTEREST,
                     Kind.FUNDING_RATE]
    t = ev[0]
    assert (int(t["side"]), int(t["price"]), int(t["qty"]), int(t["ts_exchange"])) == (1, 165785, 1, 1672304486865 * MS)
    assert int(t["id"]) == trade_id("20f43950-d8dd-5b31-9112-a178eb6023af") >= 0
    assert feed.stats.trades == 1 and feed.stats.trades_duplicate == 1
    assert int(ev[1]["side"]) == -1 and int(ev[1]["price"]) == 160000  # a long liquidated: the forced order sells
    assert ev[3]["value"] == -0.000212 and int(ev[3]["id"]) == 1673280000000 * MS
    assert ev[5]["value"] == -0.0001 and int(ev[5]["id"]) == 1673280000000 * MS  # next time kept from the snapshot
    assert feed.tickers["BTCUSDT"][1].data.markPrice == "17217.33"  # merged state
    assert feed.tickers["BTCUSDT"][1].data.fundingRate == "-0.000100"
    assert trade_id("2290000000036455162") == 2290000000036455162


def test_acks_unknown_topics_and_refusals() -> None:
    feed = BybitFeed("spot")
    feed.on_frame(1, b'{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}', "a:1")
    feed.on_frame(2, b'{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1,"data":[]}', "a:2")
    feed.on_frame(3, b'{"success":false,"ret_msg":"error:handler not found,topic:orderbook.40.BTCUSDT",'
                     b'"conn_id":"c","req_id":"","op":"subscribe"}', "a:3")
    assert feed.stats.other == 2 and feed.stats.bad_messages == 1
    assert "handler not found" in feed.stats.issues[0] and feed.stats.issues[0].startswith("a:3")
    info = (b'{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[{"symbol":"BTCUSDT",'
            b'"priceFilter":{"tickSize":"0.01"},"lotSizeFilter":{"basePrecision":"0.000001"}}]}}')
    feed.on_frame(4, info, "i:1")
    assert feed.symbol("BTCUSDT").inst == Instrument("bybit", "BTCUSDT", "0.01", "0.000001")


# -- replays of the real captures
def test_replay_xrpusdt_ob500(data_dir: Path) -> None:
    loaded = load_bybit([data_dir / XRP], strict=True)
    st = loaded.stats
    assert (st["messages"], st["snapshots"], st["diffs_applied"], st["gaps"], st["bad_messages"]) == (50, 1, 49, 0, 0)
    assert st["levels_applied"] == 2966 and len(loaded.msg_end) == 50
    (inst,) = loaded.instruments
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("bybit-linear", "XRPUSDT", "0.0001", "1")
    book = book_of(loaded.events)  # never crosses
    plain: dict[tuple[int, Decimal], Decimal] = {}  # the same file through a plain dict
    for line in xrp_lines(data_dir):
        m = json.loads(line)
        if m["type"] == "snapshot":
            plain.clear()
        for side, key in ((1, "b"), (-1, "a")):
            for p, q in m["data"][key]:
                if Decimal(q):
                    plain[(side, Decimal(p))] = Decimal(q)
                else:
                    plain.pop((side, Decimal(p)), None)
    px, qty = inst.price_grid(), inst.qty_grid()
    assert {(s, px.to_decimal(t)): qty.to_decimal(q) for (s, t), q in book.items()} == plain
    assert len(plain) == 1000


CF_COUNTS = {"BANDUSDT": 45, "RADUSDT": 18, "SNTUSDT": 107, "AIOZUSDT": 28,
             "OPUSDC": 30, "TUSDUSDT": 11, "KCSUSDT": 19, "CPOOLUSDT": 14, "ARBUSDC": 54, "MASAUSDT": 11}


def test_replay_cryptofeed_v5_captures(data_dir: Path) -> None:
    paths = [data_dir / CF / "BYBIT.ws.1.0", data_dir / CF / "BYBIT.ws.2.0"]
    loaded = load_bybit(paths, strict=True)
    st = loaded.stats
    assert (st["messages"], st["snapshots"], st["other"], st["gaps"], st["bad_messages"]) == (347, 337, 10, 0, 0)
    assert st["snapshots_repeat"] == 61  # level-1 snapshots repeating the previous u
    names = [i.symbol for i in loaded.instruments]
    venues = {i.symbol: i.venue for i in loaded.instruments}
    assert venues["BANDUSDT"] == "bybit-linear" and venues["OPUSDC"] == "bybit"
    assert {i.symbol: i.tick_size for i in loaded.instruments}["SNTUSDT"] == "0.00001"  # not 0.00002 (first pair)
    ev = loaded.events
    snaps = ev[(ev["kind"] == Kind.BOOK_CLEAR) & (ev["flags"] & int(Flag.SNAPSHOT_BEGIN) > 0)]
    sids, counts = np.unique(snaps["symbol"], return_counts=True)
    assert {names[s]: int(n) for s, n in zip(sids, counts, strict=True)} == CF_COUNTS
    last: dict[str, dict] = {}
    for p in paths:
        for _, payload, _ in cf_frames(p):
            m = json.loads(payload)
            if "topic" in m:
                last[m["data"]["s"]] = m["data"]
    for sid, name in enumerate(names):
        inst = loaded.instruments[sid]
        book = book_of(ev, sid)
        (bid,) = [(t, q) for (s, t), q in book.items() if s == 1]
        (ask,) = [(t, q) for (s, t), q in book.items() if s == -1]
        px, qty = inst.price_grid(), inst.qty_grid()
        assert (px.to_int(last[name]["b"][0][0]), qty.to_int(last[name]["b"][0][1])) == bid
        assert (px.to_int(last[name]["a"][0][0]), qty.to_int(last[name]["a"][0][1])) == ask


def test_probes(data_dir: Path) -> None:
    assert is_bybit_data(data_dir / XRP) and is_bybit(data_dir / XRP)
    assert is_bybit_cryptofeed(data_dir / CF / "BYBIT.ws.2.0")
    assert not is_bybit(data_dir / "cryptofeed" / "BYBIT.ws.25.0")  # retired v1/v2 API
    assert not is_bybit(data_dir / "hftbacktest" / "usdm" / "btcusdt_20240808.gz")
    assert not is_bybit(data_dir / "cryptofeed" / "OKX.ws.1.0")


# -- faults on real messages
def mixed(data_dir: Path, xrp: list[bytes]) -> tuple[BybitFeed, np.ndarray]:
    """XRPUSDT deltas interleaved with BANDUSDT level-1 snapshots, one linear feed."""
    band = [p for _, p, _ in cf_frames(data_dir / CF / "BYBIT.ws.1.0") if b"BANDUSDT" in p and b"topic" in p]
    feed = BybitFeed("linear", instruments={"XRPUSDT": Instrument("bybit-linear", "XRPUSDT", "0.0001", "1"),
                                            "BANDUSDT": Instrument("bybit-linear", "BANDUSDT", "0.0001", "0.1")})
    for n, line in enumerate(xrp, 1):
        feed.on_frame(n, line, f"xrp.data:{n}")
        feed.on_frame(n, band[n % len(band)], f"band:{n}")
    return feed, feed.take_events()


def test_gap_loses_that_symbol_only(data_dir: Path) -> None:
    lines = xrp_lines(data_dir)
    feed, ev = mixed(data_dir, lines[:20] + lines[21:])  # the snapshot, 19 deltas, delta u=20254889 dropped
    st = feed.stats
    assert st.gaps == 1 and st.diffs_applied == 19 and st.diffs_unsynced == 49 - 19 - 1 - 1
    assert not feed.synced("XRPUSDT") and feed.synced("BANDUSDT") and feed.pop_resyncs() == ["XRPUSDT"]
    assert "xrp.data:21: XRPUSDT: gap: expected u=20254889, got u=20254890" in st.issues[0]
    xrp = feed.symbols["XRPUSDT"].sid
    clears = ev[(ev["kind"] == Kind.BOOK_CLEAR) & (ev["symbol"] == xrp)]
    assert len(clears) == 2 and clears[-1]["flags"] == EOM  # the snapshot's clear, then the gap's
    band_sid = feed.symbols["BANDUSDT"].sid
    assert st.snapshots == 1 + 49 and book_of(ev, band_sid)  # BANDUSDT kept every snapshot
    feed.on_frame(99, lines[0], "again:1")  # a new snapshot resyncs
    assert feed.synced("XRPUSDT") and feed.stats.resyncs == 1


def test_malformed_and_duplicate_lose_nothing(data_dir: Path) -> None:
    lines = xrp_lines(data_dir)
    clean = book_of(load_bybit([data_dir / XRP], strict=False).events)
    feed, ev = mixed(data_dir, lines[:10] + [lines[10][:57]] + lines[10:30] + [lines[29]] + lines[30:])
    st = feed.stats
    assert st.bad_messages == 1 and st.gaps == 0 and st.diffs_duplicate == 1 and st.diffs_applied == 49
    assert "xrp.data:11: malformed message" in st.issues[0] and feed.synced("XRPUSDT")
    assert book_of(ev, feed.symbols["XRPUSDT"].sid) == clean


def test_strict_mode_names_file_line_and_u(data_dir: Path) -> None:
    lines = xrp_lines(data_dir)
    feed = BybitFeed("linear", strict=True)
    with pytest.raises(SyncError, match=r"x:6: XRPUSDT: gap: expected u=20254874, got u=20254875"):
        run(feed, lines[:5] + lines[6:])


def test_sequencer_worked_example() -> None:
    seq = BookSequencer()
    assert seq.on_delta(5, None).action is Action.UNSYNCED
    seq.on_snapshot(100, 7)
    assert seq.on_delta(101, 8).action is Action.APPLY
    assert seq.on_delta(101, 8).action is Action.DUPLICATE
    v = seq.on_snapshot(1, 9)  # service restart
    assert v.restart and seq.last_u == 1
    assert seq.on_delta(2, 10).action is Action.APPLY
    assert seq.on_snapshot(2, 10).repeat  # level-1: same u again
    v = seq.on_delta(5, 11)
    assert v.action is Action.GAP and v.expected == 3 and not seq.synced
    seq.on_snapshot(40, 12)
    assert seq.on_delta(1, 13).action is Action.GAP  # a restart must come as a snapshot


def test_recording_round_trip(data_dir: Path, tmp_path: Path) -> None:
    lines = xrp_lines(data_dir)
    folder = tmp_path / "bybit-linear" / "XRPUSDT"
    folder.mkdir(parents=True)
    path = folder / "xrpusdt_20241201_00.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'0000000000000000001 {"success":true,"ret_msg":"","conn_id":"c","req_id":"","op":"subscribe"}\n')
        for line in lines:
            fh.write(b"%d %s\n" % (json.loads(line)["ts"] * MS, line))
    assert is_bybit_raw(path) and not is_bybit_data(path)
    got = load_bybit([path], strict=True)
    want = load_bybit([data_dir / XRP], strict=True)
    assert np.array_equal(got.events, want.events)
    assert got.instruments == want.instruments and got.stats["other"] == 1
    assert got.where(int(got.msg_end[3])).endswith("xrpusdt_20241201_00.gz:5")
    assert int(got.events[-1]["id"]) == 20254918 and int(got.events[0]["id2"]) != NO_ID
