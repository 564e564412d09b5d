"""Coinbase: the legacy Exchange capture (shared/data/cryptofeed/COINBASE.*, data README section 2) and
Advanced Trade frames built from the documented schema (reference B.2.1, B.2.2, A.7)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from flowbook.book.reference import ReferenceBook
from flowbook.events import NO_ID, Flag, Instrument, Kind
from flowbook.replay.coinbase import is_coinbase, load_coinbase
from flowbook.replay.cryptofeed import parse_ts_ns
from flowbook.venues.coinbase import CoinbaseFeed, SyncError, parse_time_ns

EOM = int(Flag.END_OF_MESSAGE)
SKL = {"SKL-USD": Instrument("coinbase", "SKL-USD", "0.0001", "0.1"),
       "DASH-BTC": Instrument("coinbase", "DASH-BTC", "0.00000001", "0.001")}


@pytest.fixture(scope="module")
def ws(data_dir: Path) -> Path:
    path = data_dir / "cryptofeed" / "COINBASE.ws.28.0"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def loaded(ws: Path):  # noqa: ANN201
    return load_coinbase([ws], strict=True)


def _received(ws: Path) -> list[tuple[int, str, dict]]:
    """``(line number, ts text, message)`` of every received message, read independently of flowbook."""
    out = []
    with open(ws) as fh:
        for n, line in enumerate(fh, 1):
            if line[:1].isdigit():
                ts, _, payload = line.rstrip("\n").partition(": ")
                out.append((n, ts, json.loads(payload)))
    return out


def _line(ws: Path, n: int) -> tuple[int, bytes]:
    with open(ws, "rb") as fh:
        for i, line in enumerate(fh, 1):
            if i == n:
                ts, _, payload = line.rstrip(b"\n").partition(b": ")
                return parse_ts_ns(ts), payload
    raise AssertionError(n)


def _rows(events: np.ndarray) -> list[tuple]:
    f = ("kind", "side", "flags", "symbol", "ts_exchange", "ts_local", "price", "qty", "id", "id2")
    return [tuple(int(e[k]) for k in f) for e in events]


# -- the real capture
def test_capture_figures(loaded, ws: Path) -> None:
    st = loaded.stats
    assert (st["snapshots"], st["diffs_applied"], st["trades"]) == (10, 9719, 97)  # data README
    assert st["tickers"] == 107 and st["trades_history"] == 10  # 10 last_match seed the match order
    assert st["gaps"] == st["bad_messages"] == st["diffs_unsynced"] == st["matches_missed"] == 0
    assert st["trades_duplicate"] == 0 and loaded.issues == []
    msgs = _received(ws)
    updates = Counter(m["product_id"] for _, _, m in msgs if m["type"] == "l2update")
    matches = Counter(m["product_id"] for _, _, m in msgs if m["type"] == "match")
    names = [i.symbol for i in loaded.instruments]
    ev = loaded.events
    depth_ends = ev[(ev["kind"] == Kind.BOOK_SET) & (ev["flags"] == EOM)]
    assert {names[k]: v for k, v in Counter(depth_ends["symbol"].tolist()).items()} == updates
    assert updates["SKL-USD"] == 2592 and updates["NU-GBP"] == 76
    trades = ev[ev["kind"] == Kind.TRADE]
    assert {names[k]: v for k, v in Counter(trades["symbol"].tolist()).items()} == matches
    assert matches["SKL-USD"] == 52 and sum(matches.values()) == 97


def test_capture_book_never_crosses_and_ends_as_the_messages_say(loaded, ws: Path) -> None:
    books = [ReferenceBook() for _ in loaded.instruments]
    crossed = checked = 0
    for e in loaded.events:
        b = books[e["symbol"]]
        if e["kind"] == Kind.BOOK_CLEAR:
            b.clear()
        elif e["kind"] == Kind.BOOK_SET and e["side"] != 0:
            b.set(int(e["side"]), int(e["price"]), int(e["qty"]))
        if e["kind"] == Kind.BOOK_SET and e["flags"] & EOM and b.bids and b.asks:
            checked += 1
            crossed += b.best_bid >= b.best_ask
    assert checked == 9729 and crossed == 0
    # the final books, rebuilt from the raw JSON with Decimal, equal the event books level for level
    want: dict[str, dict[int, dict[Decimal, Decimal]]] = {}
    for _, _, m in _received(ws):
        if m["type"] == "snapshot":
            want[m["product_id"]] = {1: {Decimal(p): Decimal(q) for p, q in m["bids"]},
                                     -1: {Decimal(p): Decimal(q) for p, q in m["asks"]}}
        elif m["type"] == "l2update":
            for side, p, q in m["changes"]:
                levels = want[m["product_id"]][1 if side == "buy" else -1]
                levels[Decimal(p)] = Decimal(q)
    for inst, b in zip(loaded.instruments, books, strict=True):
        tick, lot = Decimal(inst.tick_size), Decimal(inst.lot_size)
        for side, got in ((1, b.bids), (-1, b.asks)):
            ref = {int(p / tick): int(q / lot) for p, q in want[inst.symbol][side].items() if q}
            assert got == ref, inst.symbol


def test_capture_match_order_and_aggressor_side(loaded, ws: Path) -> None:
    msgs = [m for _, _, m in _received(ws) if m["type"] in ("match", "last_match")]
    last: dict[str, tuple[int, int]] = {}
    jumps = 0
    for m in msgs:  # reference B.2.1: sequence increases per product; trade ids run on by one
        if m["product_id"] in last:
            seq, tid = last[m["product_id"]]
            assert m["sequence"] > seq and m["trade_id"] == tid + 1
            jumps += m["sequence"] > seq + 1
        last[m["product_id"]] = (m["sequence"], m["trade_id"])
    assert jumps == 97  # the sequence counts every order event: it jumps between every two trades
    matches = [m for m in msgs if m["type"] == "match"]
    trades = loaded.events[loaded.events["kind"] == Kind.TRADE]
    assert trades["id"].tolist() == [m["trade_id"] for m in matches]
    # side is the maker's (A.7): maker sell -> the aggressor bought
    assert trades["side"].tolist() == [1 if m["side"] == "sell" else -1 for m in matches]


def test_golden_exchange_messages(ws: Path) -> None:
    """NU-GBP: snapshot (line 14), last_match (16), two l2updates (45, 70), a match (2797)."""
    inst = Instrument("coinbase", "NU-GBP", "0.0001", "0.000001")
    feed = CoinbaseFeed(strict=True, instruments={"NU-GBP": inst})
    for n in (14, 16, 45, 70, 2797):
        ts, payload = _line(ws, n)
        feed.on_frame(ts, payload, f"{ws}:{n}")
    ev = feed.take_events()
    snap_ts = parse_ts_ns("1618677817.08014")
    snap = ev[ev["flags"] & int(Flag.SNAPSHOT) != 0]
    assert _rows(snap[:2]) == [
        (Kind.BOOK_CLEAR, 0, Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN, 0, snap_ts, snap_ts, 0, 0, NO_ID, NO_ID),
        (Kind.BOOK_SET, 1, Flag.SNAPSHOT | Flag.INCOMPLETE, 0, snap_ts, snap_ts, 4385, 548_398226, NO_ID, NO_ID),
    ]
    assert len(snap) == 1 + 118 + 452  # the clear, 118 bids, 452 asks
    asks = snap[snap["side"] == -1]
    assert _rows(asks[:1])[0][6:8] == (4394, 2000_000000)
    assert int(snap[-1]["flags"]) == Flag.SNAPSHOT | Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE | Flag.INCOMPLETE
    rest = ev[len(snap):]
    assert _rows(rest) == [
        (Kind.BOOK_SET, 1, EOM, 0, parse_time_ns("2021-04-17T16:43:37.080304Z"),
         parse_ts_ns("1618677817.129375"), 4312, 0, NO_ID, NO_ID),
        (Kind.BOOK_SET, 1, EOM, 0, parse_time_ns("2021-04-17T16:43:37.100411Z"),
         parse_ts_ns("1618677817.129689"), 4325, 9182_000000, NO_ID, NO_ID),
        (Kind.TRADE, 1, EOM, 0, 1618677826_345172000, parse_ts_ns("1618677826.3400478"), 4393, 805_131000,
         563679, NO_ID),
    ]
    assert feed.stats.trades_history == 1 and feed.stats.matches_missed == 0


# -- Advanced Trade, built from the documented schema with SKL-USD prices of the capture
def _env(channel: str, seq: int, events: list[dict], ts: str = "2021-04-17T16:43:37.121358Z") -> bytes:
    return json.dumps({"channel": channel, "client_id": "", "timestamp": ts, "sequence_num": seq,
                       "events": events}).encode()


def _l2(seq: int, kind: str, product: str, updates: list[tuple[str, str, str]]) -> bytes:
    ups = [{"side": s, "event_time": "2021-04-17T16:43:37.1Z", "price_level": p, "new_quantity": q}
           for s, p, q in updates]
    return _env("l2_data", seq, [{"type": kind, "product_id": product, "updates": ups}])


def _trades(seq: int, kind: str, trades: list[tuple[str, str, str, str]], product: str = "SKL-USD") -> bytes:
    rows = [{"trade_id": t, "product_id": product, "price": p, "size": q, "side": s,
             "time": "2021-04-17T16:43:37.140491Z"} for t, p, q, s in trades]
    return _env("market_trades", seq, [{"type": kind, "trades": rows}])


SESSION = [
    _env("subscriptions", 0, [{"subscriptions": {"level2": ["SKL-USD"], "market_trades": ["SKL-USD"]}}]),
    _l2(1, "snapshot", "SKL-USD", [("bid", "0.7910", "450.0"), ("bid", "0.7905", "1200"),
                                   ("offer", "0.7912", "1787"), ("offer", "0.7920", "30.5")]),
    _trades(2, "snapshot", [("1568267", "0.7912", "10", "BUY")]),
    _l2(3, "update", "SKL-USD", [("offer", "0.7912", "0"), ("bid", "0.7911", "5.5")]),
    _trades(4, "update", [("1568268", "0.7912", "1787", "BUY"), ("1568269", "0.7910", "450", "SELL")]),
    _trades(5, "update", [("1568269", "0.7910", "450", "SELL")]),  # the same trade again
    _env("ticker", 6, [{"type": "update", "tickers": [{"type": "ticker", "product_id": "SKL-USD", "price": "0.7910",
                                                       "best_bid": "0.7911", "best_ask": "0.7920"}]}]),
    _env("heartbeats", 7, [{"current_time": "2021-04-17 16:43:37.2 +0000 UTC", "heartbeat_counter": 7}]),
]


def test_golden_advanced_trade() -> None:
    feed = CoinbaseFeed(strict=True, instruments=SKL)
    for n, payload in enumerate(SESSION, 1):
        feed.on_frame(1000 + n, payload, f"session:{n}")
    t0, t1 = parse_time_ns("2021-04-17T16:43:37.121358Z"), parse_time_ns("2021-04-17T16:43:37.1Z")
    tt = parse_time_ns("2021-04-17T16:43:37.140491Z")
    snap, s_end = int(Flag.SNAPSHOT | Flag.INCOMPLETE), int(Flag.SNAPSHOT | Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE
                                                           | Flag.INCOMPLETE)
    assert _rows(feed.take_events()) == [
        (Kind.BOOK_CLEAR, 0, Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN, 0, t0, 1002, 0, 0, 1, NO_ID),
        (Kind.BOOK_SET, 1, snap, 0, t0, 1002, 7910, 4500, 1, NO_ID),
        (Kind.BOOK_SET, 1, snap, 0, t0, 1002, 7905, 12000, 1, NO_ID),
        (Kind.BOOK_SET, -1, snap, 0, t0, 1002, 7912, 17870, 1, NO_ID),
        (Kind.BOOK_SET, -1, s_end, 0, t0, 1002, 7920, 305, 1, NO_ID),
        (Kind.BOOK_SET, 1, 0, 0, t1, 1004, 7911, 55, 3, NO_ID),  # bids first, then asks
        (Kind.BOOK_SET, -1, EOM, 0, t1, 1004, 7912, 0, 3, NO_ID),
        # market_trades side is the taker's: BUY at the offer is a buy, SELL at the bid a sell
        (Kind.TRADE, 1, EOM, 0, tt, 1005, 7912, 17870, 1568268, NO_ID),
        (Kind.TRADE, -1, EOM, 0, tt, 1005, 7910, 4500, 1568269, NO_ID),
    ]
    st = feed.stats
    assert (st.trades, st.trades_history, st.trades_duplicate, st.tickers, st.other) == (2, 1, 1, 1, 2)
    assert feed.tickers["SKL-USD"][1].best_bid == "0.7911" and feed.synced("SKL-USD")


def test_trade_before_snapshot_waits_for_the_instrument() -> None:
    feed = CoinbaseFeed()
    feed.on_frame(1, _trades(0, "update", [("7", "0.7912", "1787", "SELL")]), "t:1")
    assert len(feed.take_events()) == 0
    feed.on_frame(2, SESSION[1], "t:2")
    ev = feed.take_events()
    assert _rows(ev[:1])[0][:2] == (Kind.TRADE, -1) and feed.instruments[0].tick_size == "0.0001"


# -- faults
def _two_connections() -> CoinbaseFeed:
    feed = CoinbaseFeed(instruments=SKL)
    feed.on_frame(1, _l2(10, "snapshot", "SKL-USD", [("bid", "0.7910", "1"), ("offer", "0.7912", "1")]), "a:1",
                  connection="A")
    feed.on_frame(2, _l2(11, "snapshot", "SKL-BTC", [("bid", "0.00001305", "985"), ("offer", "0.00001306", "5")]),
                  "a:2", connection="A")
    feed.on_frame(3, _l2(50, "snapshot", "DASH-BTC", [("bid", "0.00421", "1.5"), ("offer", "0.00422", "2")]),
                  "b:1", connection="B")
    feed.take_events()
    return feed


def test_sequence_gap_resyncs_the_connections_products_only() -> None:
    feed = _two_connections()
    feed.on_frame(4, _l2(13, "update", "SKL-USD", [("bid", "0.7911", "2")]), "a:3", connection="A")  # 12 lost
    ev = feed.take_events()
    assert ev["kind"].tolist() == [Kind.BOOK_CLEAR, Kind.BOOK_CLEAR]  # both A products, the update dropped
    assert sorted(feed.pop_resyncs()) == ["SKL-BTC", "SKL-USD"] and feed.stats.gaps == 2
    assert feed.stats.diffs_unsynced == 1 and not feed.synced("SKL-USD") and not feed.synced("SKL-BTC")
    assert "a:3" in feed.stats.issues[0] and "sequence_num 13, expected 12" in feed.stats.issues[0]
    feed.on_frame(5, _l2(51, "update", "DASH-BTC", [("bid", "0.00421", "0")]), "b:2", connection="B")
    assert feed.synced("DASH-BTC") and _rows(feed.take_events())[0][6:8] == (421000, 0)
    feed.on_frame(6, _l2(15, "update", "SKL-BTC", [("bid", "0.00001305", "0")]), "a:4", connection="A")  # gap 2
    assert feed.stats.gaps == 2 and feed.pop_resyncs() == []  # books waiting for a snapshot: not lost twice
    feed.on_frame(7, _l2(16, "snapshot", "SKL-USD", [("bid", "0.7910", "3"), ("offer", "0.7912", "1")]), "a:5",
                  connection="A")
    assert feed.synced("SKL-USD") and feed.stats.resyncs == 1 and not feed.synced("SKL-BTC")


def test_duplicate_sequence_num_is_dropped() -> None:
    feed = _two_connections()
    upd = _l2(12, "update", "SKL-USD", [("bid", "0.7911", "2")])
    feed.on_frame(4, upd, "a:3", connection="A")
    feed.on_frame(5, upd, "a:4", connection="A")  # repeated
    feed.on_frame(6, _l2(9, "update", "SKL-USD", [("bid", "0.7900", "2")]), "a:5", connection="A")  # reordered
    assert len(feed.take_events()) == 1 and feed.stats.diffs_applied == 1
    assert (feed.stats.frames_duplicate, feed.stats.diffs_duplicate, feed.stats.gaps) == (2, 2, 0)
    feed.on_frame(7, _l2(13, "update", "SKL-USD", [("bid", "0.7911", "0")]), "a:6", connection="A")
    assert feed.synced("SKL-USD") and feed.stats.diffs_applied == 2 and feed.pop_resyncs() == []


def test_closed_connection_forgets_its_numbering_and_books() -> None:
    feed = _two_connections()
    assert feed.reset_connection("A") == ["SKL-BTC", "SKL-USD"] and feed.stats.gaps == 0
    assert not feed.synced("SKL-USD") and feed.synced("DASH-BTC")
    feed.on_frame(4, _l2(0, "snapshot", "SKL-USD", [("bid", "0.7910", "1"), ("offer", "0.7912", "1")]), "a2:1",
                  connection="A")  # the new socket numbers from 0 again: no duplicate, no gap
    assert feed.synced("SKL-USD") and feed.stats.frames_duplicate == 0 and feed.stats.gaps == 0


def test_malformed_json_is_a_bad_message_and_loses_nothing() -> None:
    feed = _two_connections()
    feed.on_frame(4, b'{"channel":"l2_data","sequence_num":12,"events":[{"type":"upd', "a:3", connection="A")
    feed.on_frame(5, b'{"type":"match","trade_id":"x"}', "a:4", connection="A")
    assert feed.stats.bad_messages == 2 and feed.stats.gaps == 0 and len(feed.take_events()) == 0
    assert all(feed.synced(s) for s in ("SKL-USD", "SKL-BTC", "DASH-BTC")) and feed.pop_resyncs() == []
    assert feed.stats.issues[0].startswith("a:3: malformed message")


def test_missed_and_repeated_matches_are_counted() -> None:
    feed = CoinbaseFeed(instruments=SKL)
    base = {"type": "match", "side": "buy", "size": "1", "price": "0.7910", "product_id": "SKL-USD",
            "time": "2021-04-17T16:43:37.1Z"}
    for n, (tid, seq) in enumerate([(10, 100), (11, 120), (11, 120), (14, 150), (13, 140)], 1):
        feed.on_frame(n, json.dumps({**base, "trade_id": tid, "sequence": seq}).encode(), f"m:{n}")
    ev = feed.take_events()
    assert ev["id"].tolist() == [10, 11, 14] and set(ev["side"].tolist()) == {-1}  # maker buy: taker sold
    assert (feed.stats.trades_duplicate, feed.stats.matches_missed) == (2, 2)


def _decimal_events(ld) -> list[tuple]:  # noqa: ANN001
    """Events with prices and sizes as decimals and symbols by name (independent of the tick and lot)."""
    insts = ld.instruments
    return [(int(e["kind"]), int(e["side"]), int(e["flags"]), insts[e["symbol"]].symbol, int(e["ts_exchange"]),
             int(e["ts_local"]), Decimal(insts[e["symbol"]].tick_size) * int(e["price"]),
             Decimal(insts[e["symbol"]].lot_size) * int(e["qty"]), int(e["id"])) for e in ld.events]


def _write_gz(path: Path, lines: list[tuple[int, bytes]]) -> Path:
    with gzip.open(path, "wb") as fh:
        for ts, payload in lines:
            fh.write(b"%d %s\n" % (ts, payload))
    return path


def test_strict_mode_raises_naming_file_and_line(tmp_path: Path) -> None:
    frames = [(1618677817_000000000 + n, p) for n, p in enumerate(SESSION[:4])]
    frames[3] = (frames[3][0], frames[3][1].replace(b'"sequence_num": 3', b'"sequence_num": 9'))
    path = _write_gz(tmp_path / "skl-usd_20210417_16.gz", frames)
    with pytest.raises(SyncError, match=f"{path}:4: SKL-USD: connection .*sequence_num 9, expected 3"):
        load_coinbase([path], strict=True)
    lenient = load_coinbase([path], strict=False)
    assert lenient.stats["gaps"] == 1 and lenient.stats["diffs_unsynced"] == 1


# -- round trips of flowbook recordings
def test_round_trip_of_the_capture_as_a_flowbook_recording(loaded, ws: Path, tmp_path: Path) -> None:
    with open(ws, "rb") as fh:  # the received frames, byte for byte
        lines = [(parse_ts_ns(ts), payload) for ts, _, payload in
                 (line.rstrip(b"\n").partition(b": ") for line in fh if line[:1].isdigit())]
    path = _write_gz(tmp_path / "coinbase_20210417_16.gz", lines)
    assert is_coinbase(path)
    again = load_coinbase([path], strict=True)  # no COINBASE.0 beside it: ticks and lots are inferred
    assert _decimal_events(again) == _decimal_events(loaded)
    assert again.stats["diffs_applied"] == 9719 and again.stats["trades"] == 97


def test_round_trip_of_advanced_trade_frames_across_rotated_files(tmp_path: Path) -> None:
    direct = CoinbaseFeed()
    for n, payload in enumerate(SESSION, 1):
        direct.on_frame(1618677817_000000000 + n, payload, f"s:{n}")
    frames = [(1618677817_000000000 + n, p) for n, p in enumerate(SESSION, 1)]
    a = _write_gz(tmp_path / "skl-usd_20210417_16.gz", frames[:4])
    b = _write_gz(tmp_path / "skl-usd_20210417_170000000000.gz", frames[4:])
    got = load_coinbase([b, a], strict=True)  # chained in time order as one connection: no gap
    assert np.array_equal(got.events, direct.take_events()) and got.stats["gaps"] == 0
    assert got.stats["trades"] == 2 and got.msg_where[-1] == f"{a}:4"


def test_probe(data_dir: Path) -> None:
    cf = data_dir / "cryptofeed"
    assert is_coinbase(cf / "COINBASE.ws.28.0") and is_coinbase(cf / "COINBASE.0")
    assert not is_coinbase(cf / "BINANCE.ws.1.0")
    assert not is_coinbase(data_dir / "hftbacktest" / "spot" / "btcusdt_20240808.gz")


def test_parse_time_ns_is_exact() -> None:
    assert parse_time_ns("2023-02-09T20:32:50.714964855Z") == 1675974770_714964855
    assert parse_time_ns("2021-04-17T16:43:37.121358Z") == parse_ts_ns("1618677817.121358")
    assert parse_time_ns("1970-01-01T00:00:00Z") == 0
    for bad in ("2021-04-17 16:43:37Z", "2021-04-17T16:43:37.12+00:00", "yesterday"):
        with pytest.raises(ValueError):
            parse_time_ns(bad)
