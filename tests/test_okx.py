"""OKX v5: checksum worked examples, the real capture (cryptofeed OKX.ws.1.0), golden events, faults,
seqId rules on constructed messages, and a round trip through flowbook's own recording format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from flowbook.book.reference import ReferenceBook
from flowbook.events import NO_ID, Flag, Kind
from flowbook.features import FeatureConfig
from flowbook.replay.cryptofeed import parse_ts_ns
from flowbook.replay.okx import is_okx, load_okx
from flowbook.replay.run import run_symbol
from flowbook.venues.common import SyncError
from flowbook.venues.okx import OkxFeed, book_checksum, checksum_string, instrument_from_info, signed_crc32
from flowbook.venues.okx.messages import InstrumentInfo

EOM, SNAP = int(Flag.END_OF_MESSAGE), int(Flag.SNAPSHOT)
SYMBOLS = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")
# per instrument of OKX.ws.1.0: (books updates, trades), counted in the file
COUNTS = {"BTC-USD-220527": (98, 4), "UNI-USD-SWAP": (92, 1), "BTC-USDT": (97, 69)}


def _capture(data_dir: Path) -> Path:
    return data_dir / "cryptofeed" / "OKX.ws.1.0"


def _frames(data_dir: Path) -> list[tuple[int, bytes, str]]:
    """Received frames of the capture: (local ns, payload, 'OKX.ws.1.0:<line>')."""
    out = []
    with open(_capture(data_dir), "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line[:1].isdigit():
                ts, _, payload = line.rstrip(b"\n").partition(b": ")
                out.append((parse_ts_ns(ts), payload, f"OKX.ws.1.0:{lineno}"))
    return out


def _run(frames, feed: OkxFeed | None = None) -> OkxFeed:
    feed = feed or OkxFeed()
    for ts, payload, where in frames:
        feed.on_frame(ts, payload, where)
    return feed


def _is_update(payload: bytes, sym: str) -> bool:
    return b'"action":"update"' in payload and f'"instId":"{sym}"'.encode() in payload[:80]


# -- checksum: the reference's worked examples
def test_checksum_test_vectors() -> None:
    assert signed_crc32("3366.1:7:3366.8:9:3366:6:3368:8") == -1881014294
    assert signed_crc32("3366.1:7:3366.8:9:3368:8:3372:8") == 831078360


def test_checksum_string_alternates_and_skips_missing_levels() -> None:
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]
    assert checksum_string(bids, asks) == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert book_checksum(bids, asks) == -1881014294
    # one bid, three asks: the asks' remaining levels follow in order
    assert checksum_string([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]) == \
        "3366.1:7:3366.8:9:3368:8:3372:8"
    # only the best 25 per side count
    many = [(str(100 - i), "1") for i in range(30)]
    assert checksum_string(many, []).split(":")[-2] == "76"


# -- the real capture
def test_capture_verifies_every_checksum(data_dir: Path) -> None:
    loaded = load_okx([_capture(data_dir)], strict=True)
    st = loaded.stats
    assert st["snapshots"] == 3 and st["diffs_applied"] == 287
    assert st["checksums_verified"] == 290 and st["checksum_failures"] == 0
    assert st["gaps"] == 0 and st["bad_messages"] == 0 and st["diffs_unsynced"] == 0
    assert st["trades"] == 74 and st["tickers"] == 28
    assert [i.symbol for i in loaded.instruments] == list(SYMBOLS)
    # tick sizes and contract values from OKX.0
    by = {i.symbol: i for i in loaded.instruments}
    assert (by["BTC-USD-220527"].tick_size, by["BTC-USD-220527"].multiplier, by["BTC-USD-220527"].inverse) == \
        ("0.1", 100.0, True)
    assert (by["UNI-USD-SWAP"].tick_size, by["UNI-USD-SWAP"].multiplier) == ("0.001", 10.0)
    assert (by["BTC-USDT"].lot_size, by["BTC-USDT"].multiplier, by["BTC-USDT"].inverse) == ("0.00000001", 1.0, False)
    ev = loaded.events
    for sid, sym in enumerate(SYMBOLS):
        e = ev[ev["symbol"] == sid]
        depth_msgs = int(((e["kind"] == Kind.BOOK_SET) & ((e["flags"] & EOM) != 0)).sum())
        assert depth_msgs == COUNTS[sym][0] + 1, sym  # updates + the snapshot
        assert int((e["kind"] == Kind.TRADE).sum()) == COUNTS[sym][1], sym


def test_capture_book_never_crosses_and_events_rebuild_the_checked_book(data_dir: Path) -> None:
    feed = _run(_frames(data_dir))
    ev = feed.take_events()
    feed.finish()
    for sid, inst in enumerate(feed.instruments):
        assert inst is not None
        idx = np.flatnonzero(ev["symbol"] == sid)
        eng = run_symbol(inst, ev[idx], FeatureConfig())
        f, _ = eng.take()
        assert eng.stats.crossed == 0, inst.symbol
        assert len(f) == COUNTS[inst.symbol][0] + 1 and (f[:, 0] < f[:, 2]).all()
        # the events rebuild exactly the string book the last checksum was verified on
        ref = ReferenceBook()
        for e in ev[idx]:
            if e["kind"] == Kind.BOOK_CLEAR:
                ref.clear()
            elif e["kind"] == Kind.BOOK_SET and e["side"] != 0:
                ref.set(int(e["side"]), int(e["price"]), int(e["qty"]))
        book = feed.symbols[inst.symbol].state.book
        lots = inst.qty_grid().to_int
        assert ref.bids == {t: lots(q) for t, (_, q) in book.bids.items()}
        assert ref.asks == {t: lots(q) for t, (_, q) in book.asks.items()}


# -- golden: real messages -> exact events
def test_golden_snapshot_update_trade(data_dir: Path) -> None:
    frames = _frames(data_dir)
    byline = {w.rsplit(":", 1)[1]: (ts, p, w) for ts, p, w in frames}
    feed = OkxFeed()
    ts29, snap, w29 = byline["29"]
    feed.on_frame(ts29, snap, w29)
    ev = feed.take_events()
    msg = json.loads(snap)["data"][0]
    assert len(ev) == 1 + len(msg["bids"]) + len(msg["asks"])
    assert ev[0]["kind"] == Kind.BOOK_CLEAR and ev[0]["flags"] == SNAP | int(Flag.SNAPSHOT_BEGIN)
    assert ev[-1]["flags"] & int(Flag.SNAPSHOT_END) and ev[-1]["flags"] & EOM
    first_bid = ev[1]
    assert (first_bid["side"], first_bid["price"], first_bid["qty"]) == \
        (1, round(float(msg["bids"][0][0]) * 10), int(msg["bids"][0][1]))
    ts32, upd, w32 = byline["32"]
    feed.on_frame(ts32, upd, w32)
    got = [tuple(r) for r in feed.take_events()[["kind", "side", "flags", "symbol", "ts_exchange", "ts_local",
                                                   "price", "qty", "id", "id2"]].tolist()]
    ex = 1652459225464 * 1_000_000
    assert got == [
        (1, 1, 0, 0, ex, ts32, 301826, 452, NO_ID, NO_ID),
        (1, -1, 0, 0, ex, ts32, 302494, 0, NO_ID, NO_ID),
        (1, -1, 0, 0, ex, ts32, 302610, 4, NO_ID, NO_ID),
        (1, -1, EOM, 0, ex, ts32, 303103, 19, NO_ID, NO_ID),
    ]
    assert feed.stats.checksums_verified == 2
    trade = OkxFeed()
    for line in ("31", "50"):  # the BTC-USDT snapshot defines the instrument, then its first trade
        trade.on_frame(*byline[line])
    row = trade.take_events()[-1]
    assert trade.instruments[0].tick_size == "0.1" and trade.instruments[0].lot_size == "0.00000001"
    assert tuple(row[["kind", "side", "flags", "ts_exchange", "ts_local", "price", "qty", "id"]].tolist()) == \
        (int(Kind.TRADE), 1, EOM, 1652459226050 * 1_000_000, byline["50"][0], 302435, 100000, 338476308)


# -- faults on real messages
def test_dropped_update_loses_that_symbol_only_until_its_snapshot(data_dir: Path) -> None:
    frames = _frames(data_dir)
    sym = "UNI-USD-SWAP"
    ups = [i for i, (_, p, _) in enumerate(frames) if _is_update(p, sym)]
    dropped = ups[5]
    feed = _run(frames[:dropped] + frames[dropped + 1:])
    st = feed.stats
    assert st.checksum_failures == 1 and st.gaps == 0
    assert not feed.synced(sym) and feed.synced("BTC-USDT") and feed.synced("BTC-USD-220527")
    assert feed.pop_resyncs() == [sym] and feed.pop_resyncs() == []
    # the mismatching update is applied then cleared; every later update of that symbol is dropped
    assert st.diffs_unsynced == len(ups) - 7
    assert st.checksums_verified == 290 - 1 - (len(ups) - 6)
    ev = feed.take_events()
    clears = ev[(ev["kind"] == Kind.BOOK_CLEAR) & (ev["flags"] == EOM)]
    assert len(clears) == 1 and clears[0]["symbol"] == feed.symbols[sym].sid
    # a new snapshot of that symbol restores it
    snap = next(f for f in frames if b'"snapshot"' in f[1] and sym.encode() in f[1][:80])
    feed.on_frame(*snap)
    assert feed.synced(sym) and feed.stats.resyncs == 1 and feed.stats.checksum_failures == 1


def test_wrong_checksum_is_one_failure(data_dir: Path) -> None:
    frames = _frames(data_dir)
    i = next(i for i, (_, p, _) in enumerate(frames) if _is_update(p, "BTC-USDT"))
    ts, payload, where = frames[i]
    msg = json.loads(payload)
    msg["data"][0]["checksum"] += 1
    frames[i] = (ts, json.dumps(msg).encode(), where)
    feed = _run(frames)
    assert feed.stats.checksum_failures == 1 and feed.stats.gaps == 0
    assert not feed.synced("BTC-USDT") and feed.synced("UNI-USD-SWAP")
    assert any(where in text and "checksum" in text for text in feed.stats.issues)


def test_malformed_json_is_one_bad_message_nothing_lost(data_dir: Path) -> None:
    frames = _frames(data_dir)
    frames.insert(100, (frames[99][0], b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd', "x:1"))
    feed = _run(frames)
    assert feed.stats.bad_messages == 1 and feed.stats.issues[0].startswith("x:1: malformed")
    assert feed.stats.checksums_verified == 290 and feed.stats.gaps == 0 and feed.stats.checksum_failures == 0
    assert all(feed.synced(s) for s in SYMBOLS)


def test_strict_mode_raises_naming_file_and_line(data_dir: Path, tmp_path: Path) -> None:
    frames = _frames(data_dir)
    ups = [i for i, (_, p, _) in enumerate(frames) if _is_update(p, "BTC-USD-220527")]
    frames.pop(ups[3])
    path = tmp_path / "okx_btc.gz"
    with gzip.open(path, "wb") as fh:
        for ts, payload, _ in frames:
            fh.write(b"%d %s\n" % (ts, payload))
    with pytest.raises(SyncError, match=r"okx_btc\.gz:\d+: BTC-USD-220527: checksum"):
        load_okx([path], strict=True)


# -- seqId rules on constructed messages (real levels, seqIds added, checksum 0 as since Jun 2026)
def _books(action: str, prev: int, seq: int, bids=(), asks=(), checksum: int = 0) -> bytes:
    data = {"asks": [list(a) for a in asks], "bids": [list(b) for b in bids], "ts": "1652459225464",
            "checksum": checksum, "prevSeqId": prev, "seqId": seq}
    return json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": action,
                       "data": [data]}).encode()


def test_seqid_chain_heartbeat_maintenance_and_gap() -> None:
    bids = [("30243.4", "3", "0", "2"), ("30243.1", "5", "0", "1")]
    asks = [("30243.5", "1", "0", "1"), ("30244", "8", "0", "1")]
    feed = OkxFeed()
    feed.on_frame(1, _books("snapshot", -1, 100, bids, asks), "t:1")
    feed.on_frame(2, _books("update", 100, 101, bids=[("30243.4", "0", "0", "0")]), "t:2")
    n = len(feed.take_events())
    feed.on_frame(3, _books("update", 101, 101), "t:3")  # heartbeat: no levels, seqId == prevSeqId
    assert len(feed.take_events()) == 0 and feed.stats.other == 1 and feed.synced("BTC-USDT-SWAP")
    feed.on_frame(4, _books("update", 101, 5, asks=[("30245", "2", "0", "1")]), "t:4")  # maintenance reset
    feed.on_frame(5, _books("update", 5, 6, bids=[("30243", "1", "0", "1")]), "t:5")
    assert feed.stats.diffs_applied == 3 and feed.stats.gaps == 0 and n == 5 + 1
    feed.on_frame(6, _books("update", 7, 8, bids=[("30242", "1", "0", "1")]), "t:6")  # 7 != last seqId 6
    assert feed.stats.gaps == 1 and not feed.synced("BTC-USDT-SWAP")
    assert "t:6" in feed.stats.issues[-1] and "prevSeqId=7" in feed.stats.issues[-1]
    feed.on_frame(7, _books("update", 8, 9, bids=[("30242", "2", "0", "1")]), "t:7")
    assert feed.stats.diffs_unsynced == 1 and feed.stats.diffs_applied == 3
    book = feed.symbols["BTC-USDT-SWAP"].state.book
    # the string book holds what the 2 applied updates left before the loss
    assert book.top(25) == ([("30243.1", "5"), ("30243", "1")], [("30243.5", "1"), ("30244", "8"), ("30245", "2")])
    feed.on_frame(8, _books("snapshot", -1, 50, bids, asks), "t:8")
    assert feed.synced("BTC-USDT-SWAP") and feed.stats.resyncs == 1
    with pytest.raises(SyncError, match="t:9"):
        strict = OkxFeed(strict=True)
        strict.on_frame(1, _books("snapshot", -1, 100, bids, asks), "t:1")
        strict.on_frame(2, _books("update", 99, 101, bids=[("30243", "1", "0", "1")]), "t:9")


def test_nonzero_checksum_on_constructed_snapshot_is_checked() -> None:
    bids, asks = [("3366.1", "7", "0", "1"), ("3366", "6", "0", "1")], [("3366.8", "9", "0", "1"), ("3368", "8", "0", "1")]
    feed = OkxFeed()
    feed.on_frame(1, _books("snapshot", -1, 1, bids, asks, checksum=-1881014294), "t:1")
    # the documented second example: 3366 bid removed, 3372 ask added
    feed.on_frame(2, _books("update", 1, 2, bids=[("3366", "0", "0", "0")], asks=[("3372", "8", "0", "1")],
                            checksum=831078360), "t:2")
    assert feed.stats.checksums_verified == 2 and feed.stats.checksum_failures == 0


# -- the other channels and events
def test_other_channels_events_and_acks() -> None:
    feed = OkxFeed(instruments={"BTC-USDT-SWAP": instrument_from_info(InstrumentInfo(
        instId="BTC-USDT-SWAP", instType="SWAP", tickSz="0.1", lotSz="1", ctType="linear", ctVal="0.01"))})
    frames = [
        b'pong',
        b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"connId":"a4d3ae55"}',
        b'{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}',
        b'{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP","instId":'
        b'"BTC-USDT-SWAP","method":"current_period","fundingRate":"0.0001","nextFundingRate":"",'
        b'"fundingTime":"1700726400000","nextFundingTime":"1700755200000","ts":"1700724675402"}]}',
        b'{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",'
        b'"instId":"BTC-USDT-SWAP","oi":"5000","oiCcy":"50","oiUsd":"1500000","ts":"1597026383085"}]}',
        b'{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",'
        b'"instId":"BTC-USDT-SWAP","markPx":"42310.6","ts":"1630049139746"}]}',
        b'{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0",'
        b'"bkPx":"42000.5","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],'
        b'"instId":"BTC-USDT-SWAP","instType":"SWAP","uly":"BTC-USDT"},{"details":[{"bkPx":"0.007831",'
        b'"side":"buy","sz":"13","ts":"1692266434010"}],"instId":"IOST-USDT-SWAP","instType":"SWAP"}]}',
        b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[["42001","3","0","1"]],'
        b'"bids":[["42000.9","5","0","2"]],"ts":"1630049139746","seqId":7}]}',
    ]
    for i, payload in enumerate(frames):
        feed.on_frame(i, payload, f"t:{i}")
    st = feed.stats
    assert st.other == 3 and st.bad_messages == 1  # pong, ack, unfollowed liquidation; the error event
    assert "OKX error 60012: Invalid request" in st.issues[0]
    ev = feed.take_events()
    assert [Kind(k) for k in ev["kind"]] == [Kind.FUNDING_RATE, Kind.OPEN_INTEREST, Kind.MARK_PRICE,
                                             Kind.LIQUIDATION, Kind.BBO, Kind.BBO]
    assert ev[0]["value"] == 0.0001 and ev[0]["id"] == 1700726400000 * 1_000_000
    assert ev[1]["value"] == 5000.0 and ev[2]["value"] == 42310.6
    assert (ev[3]["side"], ev[3]["price"], ev[3]["qty"]) == (1, 420005, 13)
    assert (ev[4]["price"], ev[4]["qty"], ev[5]["price"], ev[5]["id"]) == (420009, 5, 420010, 7)
    assert list(feed.symbols) == ["BTC-USDT-SWAP"] and feed.instruments[0].multiplier == 0.01


def test_books5_replaces_the_book_unless_books_streams() -> None:
    b5 = (b'{"arg":{"channel":"books5","instId":"ETH-USDT"},"data":[{"asks":[["2000.5","1","0","1"]],'
          b'"bids":[["2000.1","2","0","1"]],"instId":"ETH-USDT","ts":"1597026383085"}]}')
    feed = OkxFeed()
    feed.on_frame(1, b5, "t:1")
    feed.on_frame(2, b5, "t:2")
    assert feed.stats.snapshots == 2 and feed.synced("ETH-USDT")
    feed.on_frame(3, _books("snapshot", -1, 1, [("1", "1", "0", "1")], [("2", "1", "0", "1")]), "t:3")
    feed.on_frame(4, b5.replace(b"ETH-USDT", b"BTC-USDT-SWAP"), "t:4")
    assert feed.stats.snapshots == 3 and feed.stats.other == 1


# -- flowbook's own recording format
def test_round_trip_of_a_flowbook_recording(data_dir: Path, tmp_path: Path) -> None:
    frames = _frames(data_dir)
    path = tmp_path / "okx_20220513_16.gz"
    with gzip.open(path, "wb") as fh:
        for ts, payload, _ in frames:
            fh.write(b"%d %s\n" % (ts, payload))
    assert is_okx(path) and is_okx(_capture(data_dir)) and not is_okx(data_dir / "cryptofeed" / "BINANCE.ws.1.0")
    loaded = load_okx([path], strict=True)
    direct = _run(frames)
    direct.finish()
    assert loaded.stats["checksums_verified"] == 290 and loaded.stats["messages"] == len(frames)
    assert np.array_equal(loaded.events, direct.take_events())
    assert loaded.instruments == [i for i in direct.instruments if i is not None]
    first_snapshot = [w for *_, w in frames].index("OKX.ws.1.0:29") + 1
    assert loaded.msg_where[0] == f"{path}:{first_snapshot}"
