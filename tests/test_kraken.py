"""Kraken spot feed: checksum construction, the v1 captures, v2 messages built from real levels, faults,
and the flowbook recording round trip."""

from __future__ import annotations

import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from flowbook.book.reference import ReferenceBook
from flowbook.events import Flag, Kind
from flowbook.replay.kraken import asset_pairs, is_kraken, kraken_frames, load_kraken
from flowbook.venues.kraken import KrakenFeed, SyncError, instrument_of
from flowbook.venues.kraken.checksum import (
    book_checksum,
    checksum_string,
    fixed,
    level_fragment,
    strip_number,
)
from flowbook.venues.kraken.parser import decode, v2_symbol

TOY_ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.54582015"), ("45286.6", "1.00000000")]
TOY_BIDS = [("45283.5", "0.00100000"), ("45283.4", "1.54582015"), ("45282.1", "0.07850000")]
TOY_STRING = "4528521000004528641545820154528661000000004528351000004528341545820154528217850000"

# book update messages (each carrying "c") per pair in KRAKEN.ws.50.0, counted from the file
V1_UPDATES = {"WAVES/EUR": 576, "XMR/USD": 846, "KSM/BTC": 335, "GRT/ETH": 20, "SC/EUR": 818, "ETH/CHF": 317,
              "OCEAN/BTC": 148, "OMG/USD": 573, "BTC/CHF": 289, "ADA/BTC": 347}


# -- the reference's worked examples -----------------------------------------------------------------------


def test_toy_checksum_vector() -> None:
    assert checksum_string(TOY_ASKS, TOY_BIDS) == TOY_STRING
    assert book_checksum(TOY_ASKS, TOY_BIDS) == 3840037297


def test_doc_formatting_example() -> None:
    assert strip_number("45285.2") == "452852"
    assert strip_number("0.00100000") == "100000"
    # a v2 JSON number loses its trailing zeros; the pair's precision puts them back
    assert fixed(Decimal("0.001"), 8) == "0.00100000"
    assert level_fragment(fixed(Decimal("45285.2"), 1), fixed(Decimal("0.001"), 8)) == "452852100000"
    with pytest.raises(ValueError):
        fixed(Decimal("45285.25"), 1)


def test_toy_vector_through_the_feed() -> None:
    """The toy book as a v2 snapshot: accepted with checksum 3840037297, exact events."""
    feed = KrakenFeed(instruments={"BTC/USD": instrument_of("BTC/USD", 1, 8)})
    snap = {"channel": "book", "type": "snapshot", "data": [{
        "symbol": "BTC/USD", "checksum": 3840037297,
        "bids": [{"price": 45283.5, "qty": 0.001}, {"price": 45283.4, "qty": 1.54582015},
                 {"price": 45282.1, "qty": 0.0785}],
        "asks": [{"price": 45285.2, "qty": 0.001}, {"price": 45286.4, "qty": 1.54582015},
                 {"price": 45286.6, "qty": 1.0}]}]}
    feed.on_frame(7, json.dumps(snap).encode(), "t:1")
    ev = feed.take_events()
    assert feed.stats.checksums_verified == 1 and feed.synced("BTC/USD")
    got = [(int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"])) for e in ev]
    assert got == [(2, 0, 0, 0), (1, 1, 452835, 100000), (1, 1, 452834, 154582015), (1, 1, 452821, 7850000),
                   (1, -1, 452852, 100000), (1, -1, 452864, 154582015), (1, -1, 452866, 100000000)]
    assert ev["flags"][-1] & Flag.END_OF_MESSAGE and ev["flags"][-1] & Flag.SNAPSHOT_END
    # an update: the best ask leaves, a bid is added; checksum by the slow builder below
    bids = {Decimal("45283.5"): Decimal("0.001"), Decimal("45283.4"): Decimal("1.54582015"),
            Decimal("45282.1"): Decimal("0.0785"), Decimal("45284"): Decimal("2")}
    asks = {Decimal("45286.4"): Decimal("1.54582015"), Decimal("45286.6"): Decimal("1")}
    upd = {"channel": "book", "type": "update", "data": [{
        "symbol": "BTC/USD", "checksum": _slow_checksum(bids, asks, 1, 8),
        "bids": [{"price": 45284.0, "qty": 2}], "asks": [{"price": 45285.2, "qty": 0}],
        "timestamp": "2023-10-06T17:35:55.440295Z"}]}
    feed.on_frame(8, json.dumps(upd).encode(), "t:2")
    ev = feed.take_events()
    assert [(int(e["side"]), int(e["price"]), int(e["qty"]), int(e["flags"])) for e in ev] == [
        (1, 452840, 200000000, 0), (-1, 452852, 0, int(Flag.END_OF_MESSAGE))]
    assert int(ev["ts_exchange"][0]) == 1696613755440295000 and int(ev["id"][0]) == 2
    assert feed.stats.checksums_verified == 2 and feed.stats.checksum_failures == 0


def test_status_acks_and_errors() -> None:
    feed = KrakenFeed()
    frames = [b'{"channel":"heartbeat"}',
              b'{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online"}]}',
              b'{"method":"subscribe","result":{"channel":"book","depth":25,"snapshot":true,"symbol":"ETH/USD"},'
              b'"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}',
              b'{"event":"heartbeat"}']
    for i, f in enumerate(frames):
        feed.on_frame(i, f, f"t:{i}")
    assert feed.stats.other == 4 and feed.stats.bad_messages == 0
    assert feed.book("ETH/USD").depth == 25
    feed.on_frame(9, b'{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,'
                     b'"symbol":"XBT/USD"}', "t:9")
    assert feed.stats.bad_messages == 1 and "Currency pair not supported" in feed.stats.issues[-1]
    assert v2_symbol("XBT/USD") == "BTC/USD" and v2_symbol("XDG/EUR") == "DOGE/EUR"


# -- the v1 captures -------------------------------------------------------------------------------------------


def _capture(data_dir: Path) -> list[Path]:
    return [data_dir / "cryptofeed" / n for n in ("KRAKEN.0", "KRAKEN.ws.48.0", "KRAKEN.ws.49.0", "KRAKEN.ws.50.0")]


def _frames(data_dir: Path) -> tuple[list[tuple[int, bytes, str]], dict]:
    errors: list[str] = []
    frames, insts = kraken_frames(_capture(data_dir), errors)
    out = list(frames)
    assert errors == []
    return out, insts


def _run(frames: list[tuple[int, bytes, str]], insts: dict) -> tuple[KrakenFeed, np.ndarray]:
    feed = KrakenFeed(instruments=insts)
    parts = []
    for ts, payload, where in frames:
        feed.on_frame(ts, payload, where)
        parts.append(feed.take_events())
    feed.finish()
    return feed, np.concatenate(parts)


def _books_never_cross(events: np.ndarray, nsym: int) -> dict[int, ReferenceBook]:
    books = {i: ReferenceBook() for i in range(nsym)}
    for e in events:
        b = books[int(e["symbol"])]
        if e["kind"] == Kind.BOOK_CLEAR:
            b.clear()
        elif e["kind"] == Kind.BOOK_SET:
            b.set(int(e["side"]), int(e["price"]), int(e["qty"]))
        if e["kind"] in (Kind.BOOK_SET, Kind.BOOK_CLEAR) and e["flags"] & Flag.END_OF_MESSAGE and b.bids and b.asks:
            assert b.best_bid < b.best_ask
    return books


def test_v1_capture_every_checksum_verifies(data_dir: Path) -> None:
    frames, insts = _frames(data_dir)
    feed, events = _run(frames, insts)
    st = feed.stats
    assert (st.checksums_verified, st.checksum_failures, st.snapshots, st.diffs_applied) == (4269, 0, 10, 4269)
    assert (st.gaps, st.bad_messages, st.diffs_unsynced, st.trades, st.tickers) == (0, 0, 0, 10, 18)
    assert {n: feed.book(n).verified for n in V1_UPDATES} == V1_UPDATES
    assert all(feed.book(n).depth == 1000 and feed.synced(n) for n in V1_UPDATES)
    books = _books_never_cross(events, len(feed.symbols))
    # the events' book equals the checksum book at the end, level for level
    for name, s in feed.symbols.items():
        cb, px, qg = feed.book(name), s.px, s.qty
        bids, asks = cb.kept()
        assert books[s.sid].bids == {px.to_int(p): qg.to_int(q) for p, q in bids}
        assert books[s.sid].asks == {px.to_int(p): qg.to_int(q) for p, q in asks}
    # and the loader gives the same figures
    loaded = load_kraken([data_dir / "cryptofeed" / "KRAKEN.ws.50.0"], strict=False)
    assert loaded.stats["checksums_verified"] == 4269 and len(loaded.events) == len(events)
    assert [i.symbol for i in loaded.instruments][:3] == ["WAVES/EUR", "XMR/USD", "KSM/BTC"]
    assert insts["BTC/CHF"].tick_size == "0.1" and insts["BTC/CHF"].lot_size == "0.00000001"


def test_probe(data_dir: Path) -> None:
    assert is_kraken(data_dir / "cryptofeed" / "KRAKEN.ws.50.0") and is_kraken(data_dir / "cryptofeed" / "KRAKEN.0")
    assert not is_kraken(data_dir / "cryptofeed" / "KRAKEN_FUTURES.0")
    assert not is_kraken(data_dir / "hftbacktest" / "spot" / "btcusdt_20240808.gz")


# -- faults on the v1 captures ---------------------------------------------------------------------------------


def _pair_updates(frames: list, pair: str) -> list[int]:
    """Indexes of the v1 book updates of one pair (v1 name), in order."""
    return [i for i, (_, p, _) in enumerate(frames) if p.startswith(b"[") and b'"c":' in p
            and p.endswith(f'"book-1000","{pair}"]'.encode())]


def test_dropped_update_resyncs_that_pair_only(data_dir: Path) -> None:
    frames, insts = _frames(data_dir)
    clean, _ = _run(frames, insts)
    idx = _pair_updates(frames, "XMR/USD")
    cs = [decode(frames[i][1]).parts[-1].c for i in idx]
    k = next(j for j in range(10, len(idx)) if cs[j] != cs[j - 1])  # an update that changes the top 10
    feed, events = _run(frames[:idx[k]] + frames[idx[k] + 1:], insts)
    st = feed.stats
    assert st.checksum_failures == 1 and feed.pop_resyncs() == ["XMR/USD"] and not feed.synced("XMR/USD")
    assert feed.book("XMR/USD").verified == k and st.diffs_unsynced == len(idx) - k - 2
    for n in V1_UPDATES:
        if n != "XMR/USD":
            assert feed.book(n).verified == clean.book(n).verified and feed.synced(n)
    sid = feed.symbols["XMR/USD"].sid
    clears = events[(events["kind"] == Kind.BOOK_CLEAR) & (events["flags"] & Flag.SNAPSHOT == 0)]
    assert list(clears["symbol"]) == [sid]
    assert f"{frames[idx[k + 1]][2]}: XMR/USD: update" in st.issues[0]


def test_wrong_checksum_and_malformed_json(data_dir: Path) -> None:
    frames, insts = _frames(data_dir)
    i = _pair_updates(frames, "SC/EUR")[100]
    ts, payload, where = frames[i]
    c = decode(payload).parts[-1].c
    bad_sum = frames[:i] + [(ts, payload.replace(f'"c":"{c}"'.encode(), b'"c":"12345"'), where)] + frames[i + 1:]
    feed, _ = _run(bad_sum, insts)
    assert feed.stats.checksum_failures == 1 and feed.book("SC/EUR").verified == 100
    assert "checksum" in feed.stats.issues[0] and "12345 sent" in feed.stats.issues[0]
    # malformed JSON: a bad message, nothing lost
    j = _pair_updates(frames, "ADA/XBT")[5]
    broken = frames[:j] + [(frames[j][0], b'[2320,{"a":[["0.0000', "x:1")] + frames[j:]
    feed, _ = _run(broken, insts)
    assert feed.stats.bad_messages == 1 and feed.stats.checksum_failures == 0
    assert feed.stats.checksums_verified == 4269 and feed.pop_resyncs() == []


def test_strict_names_file_and_line(data_dir: Path, tmp_path: Path) -> None:
    src = (data_dir / "cryptofeed" / "KRAKEN.ws.50.0").read_bytes().split(b"\n")
    n = next(k for k, line in enumerate(src) if b'"c":"' in line and k > 200)
    src[n] = src[n].replace(b'"c":"', b'"c":"9')
    path = tmp_path / "KRAKEN.ws.50.0"
    path.write_bytes(b"\n".join(src))
    with pytest.raises(SyncError, match=f"{path}:{n + 1}: .*checksum"):
        load_kraken([path], strict=True)
    assert load_kraken([path], strict=False).stats["checksum_failures"] == 1


# -- v2 messages built from the real v1 levels -----------------------------------------------------------------


def _slow_checksum(bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal], pp: int, qp: int) -> int:
    """Reference string builder: integers of the scaled decimals, from sorted lists."""
    def part(levels: list[tuple[Decimal, Decimal]]) -> str:
        return "".join(str(int(p.scaleb(pp))) + str(int(q.scaleb(qp))) for p, q in levels[:10])
    text = part(sorted(asks.items())) + part(sorted(bids.items(), reverse=True))
    return zlib.crc32(text.encode())


def _num(d: Decimal) -> str:
    """A decimal as a v2 JSON number (trailing zeros lost)."""
    text = format(d.normalize(), "f")
    return text if "." in text else text + ".0"


def _book_frame(kind: str, sym: str, bids: list, asks: list, checksum: int) -> bytes:
    def side(levels: list) -> str:
        return "[" + ",".join(f'{{"price":{_num(p)},"qty":{_num(q)}}}' for p, q in levels) + "]"
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{sym}","bids":{side(bids)},'
            f'"asks":{side(asks)},"checksum":{checksum}}}]}}').encode()


def _v2_session(frames: list, insts: dict, depth: int) -> tuple[list[bytes], dict[str, tuple[dict, dict]], int]:
    """v2 frames for every pair: a depth-``depth`` snapshot, then one update per v1 message that changes
    the top-``depth`` view.  Returns the frames, the final views and how many updates rely on truncation."""
    full: dict[str, tuple[dict, dict]] = {}
    view: dict[str, tuple[dict, dict]] = {}
    out = [json.dumps({"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": [
        {"symbol": s, "price_precision": len(i.tick_size.partition(".")[2]),
         "qty_precision": len(i.lot_size.partition(".")[2])} for s, i in insts.items()]}}).encode()]
    truncating = 0
    for _, payload, _ in frames:
        msg = decode(payload)
        if type(msg).__name__ != "BookUpdateV1":
            continue
        sym = v2_symbol(msg.pair)
        inst = insts[sym]
        pp, qp = len(inst.tick_size.partition(".")[2]), len(inst.lot_size.partition(".")[2])
        bids, asks = full.setdefault(sym, ({}, {}))
        for part in msg.parts:
            for side, levels in ((bids, part.bs + part.b), (asks, part.as_ + part.a)):
                for lv in levels:
                    if Decimal(lv.volume) == 0:
                        side.pop(Decimal(lv.price), None)
                    else:
                        side[Decimal(lv.price)] = Decimal(lv.volume)
        new = (dict(sorted(bids.items(), reverse=True)[:depth]), dict(sorted(asks.items())[:depth]))
        old = view.get(sym)
        changes: tuple[list, list] = ([], [])
        if old is not None:
            for k in range(2):
                changes[k].extend((p, q) for p, q in new[k].items() if old[k].get(p) != q)
                # levels pushed out by a better one get no message: truncation removes them
                changes[k].extend((p, Decimal(0)) for p in old[k] if p not in new[k] and p not in full[sym][k])
                truncating += any(p not in new[k] and p in full[sym][k] for p in old[k])
            if not changes[0] and not changes[1]:
                continue
        view[sym] = new
        bids_l, asks_l = (list(new[0].items()), list(new[1].items())) if old is None else changes
        out.append(_book_frame("snapshot" if old is None else "update", sym, bids_l, asks_l,
                               _slow_checksum(new[0], new[1], pp, qp)))
    return out, view, truncating


@pytest.mark.parametrize("depth", [10, 25])
def test_v2_from_real_levels(data_dir: Path, depth: int) -> None:
    frames, insts = _frames(data_dir)
    v2, views, truncating = _v2_session(frames, insts, depth)
    feed = KrakenFeed(depth=depth)  # precisions from the instrument channel
    parts = []
    for n, payload in enumerate(v2):
        feed.on_frame(n, payload, f"v2:{n + 1}")
        parts.append(feed.take_events())
    events = np.concatenate(parts)
    st = feed.stats
    assert st.checksum_failures == 0 and st.bad_messages == 0 and truncating > 0
    assert st.checksums_verified == len(v2) - 1 and st.snapshots == 10 and st.diffs_applied == len(v2) - 11
    books = _books_never_cross(events, len(feed.symbols))
    for name, (bids, asks) in views.items():  # the engine's book is Kraken's depth-limited view
        s = feed.symbols[name]
        assert books[s.sid].bids == {s.px.to_int(format(p, "f")): s.qty.to_int(format(q, "f")) for p, q in bids.items()}
        assert books[s.sid].asks == {s.px.to_int(format(p, "f")): s.qty.to_int(format(q, "f")) for p, q in asks.items()}


def test_v2_lost_update_resyncs_with_a_new_snapshot(data_dir: Path) -> None:
    frames, insts = _frames(data_dir)
    v2, _, _ = _v2_session(frames, insts, 10)
    sc = [i for i, f in enumerate(v2) if b'"SC/EUR"' in f and b'"update"' in f]
    feed = KrakenFeed(instruments=insts)
    drop = sc[20]
    resnap = None
    for n, payload in enumerate(v2):
        if n == drop:
            continue
        feed.on_frame(n, payload, f"v2:{n + 1}")
        if feed.pop_resyncs() == ["SC/EUR"]:
            resnap = n
            # the transport resubscribes: a snapshot of Kraken's current view comes back
            bids, asks = _view_after(v2[:n + 1], "SC/EUR")
            pp, qp = (len(insts["SC/EUR"].tick_size) - 2, len(insts["SC/EUR"].lot_size) - 2)
            feed.on_frame(n, _book_frame("snapshot", "SC/EUR", list(bids.items()), list(asks.items()),
                                         _slow_checksum(bids, asks, pp, qp)), "resubscribe")
    st = feed.stats
    assert resnap is not None and resnap > drop
    assert st.checksum_failures == 1 and st.resyncs == 1 and feed.synced("SC/EUR")
    assert st.checksums_verified == len(v2) - 1 - 1 - 1 + 1  # all but the dropped and the failed, plus the resnap


def _view_after(v2: list[bytes], sym: str) -> tuple[dict, dict]:
    """Kraken's view of ``sym`` after the frames: replay them through a plain dict book of depth 10."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for payload in v2:
        msg = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
        if msg.get("channel") != "book" or msg["data"][0]["symbol"] != sym:
            continue
        d = msg["data"][0]
        if msg["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, levels in ((bids, d["bids"]), (asks, d["asks"])):
            for lv in levels:
                if lv["qty"] == 0:
                    side.pop(lv["price"], None)
                else:
                    side[lv["price"]] = lv["qty"]
        bids = dict(sorted(bids.items(), reverse=True)[:10])
        asks = dict(sorted(asks.items())[:10])
    return bids, asks


# -- flowbook recording round trip ------------------------------------------------------------------------------


def test_flowbook_recording_round_trip(data_dir: Path, tmp_path: Path) -> None:
    frames, insts = _frames(data_dir)
    v2, _, _ = _v2_session(frames, insts, 10)
    v2 = [b'{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online"}]}'] + v2
    t0 = 1_700_000_000_000_000_000
    path = tmp_path / "kraken" / "ALL" / "all_20231114_22.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wb") as fh:
        for n, payload in enumerate(v2):
            fh.write(b"%d %s\n" % (t0 + n * 1000, payload))
    assert is_kraken(path)
    loaded = load_kraken([path], strict=True)
    direct = KrakenFeed()
    for n, payload in enumerate(v2):
        direct.on_frame(t0 + n * 1000, payload, f"x:{n}")
    expect = direct.take_events()
    assert len(expect) > 1000 and np.array_equal(loaded.events, expect)
    assert loaded.stats["checksums_verified"] == direct.stats.checksums_verified and loaded.stats["other"] == 2
    assert loaded.msg_where[0] == f"{path}:3"  # line 1 status, line 2 instrument, line 3 the first snapshot
    assert asset_pairs([], []) == {}
