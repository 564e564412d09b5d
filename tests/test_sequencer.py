"""Binance sync rules (reference B.1.1 spot, B.1.2 futures) on hand-made message sequences."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from flowbook.events import Kind
from flowbook.venues.binance import Action, BinanceFeed, DepthSequencer, SyncError
from flowbook.venues.binance.messages import DepthSnapshot, DepthUpdate


def diff(U: int, u: int, pu: int | None = None, b=(("100.0", "1"),), a=(("101.0", "1"),)) -> DepthUpdate:
    return DepthUpdate(E=1, s="XUSDT", U=U, u=u, b=list(b), a=list(a), pu=pu)


def snap(lid: int) -> DepthSnapshot:
    return DepthSnapshot(lastUpdateId=lid, bids=[("100.0", "1")], asks=[("101.0", "1")])


def test_spot_buffers_until_snapshot_then_applies_from_first_valid_event() -> None:
    s = DepthSequencer(futures=False)
    for U, u in ((1, 5), (6, 9), (10, 12), (13, 15)):
        assert s.on_diff(diff(U, u))[0] is Action.BUFFER
    ok, out, issue = s.on_snapshot(snap(10))
    assert ok and issue is None and s.synced
    # u <= 10 dropped; first applied must have U <= 11 <= u
    assert [d.u for d, _ in out] == [12, 15]
    assert s.on_diff(diff(16, 20))[0] is Action.APPLY
    assert s.on_diff(diff(18, 20))[0] is Action.DUPLICATE  # u <= last applied u: already in the book


def test_spot_gap_resets_and_next_snapshot_resyncs() -> None:
    s = DepthSequencer(futures=False)
    s.on_snapshot(snap(10))
    assert s.on_diff(diff(11, 12))[0] is Action.APPLY
    action, issue = s.on_diff(diff(14, 15))
    assert action is Action.GAP and issue is not None
    assert (issue.expected, issue.got_first, issue.got_last) == (13, 14, 15)
    assert not s.synced
    assert s.on_diff(diff(16, 18))[0] is Action.BUFFER
    ok, out, _ = s.on_snapshot(snap(16))
    assert ok and [d.u for d, _ in out] == [18]


def test_futures_first_event_rule_has_no_plus_one_and_chains_on_pu() -> None:
    s = DepthSequencer(futures=True)
    s.on_diff(diff(90, 99, pu=80))  # u < lastUpdateId: dropped
    s.on_diff(diff(100, 120, pu=99))  # U <= 100 <= u: first event (spot would need U <= 101 <= u too)
    s.on_diff(diff(130, 140, pu=120))
    ok, out, issue = s.on_snapshot(snap(100))
    assert ok and issue is None and [d.u for d, _ in out] == [120, 140]
    # futures ids are not contiguous; continuity is pu == previous u
    assert s.on_diff(diff(200, 210, pu=140))[0] is Action.APPLY
    assert s.on_diff(diff(300, 310, pu=205))[0] is Action.GAP


def test_futures_keeps_event_whose_u_equals_last_update_id() -> None:
    s = DepthSequencer(futures=True)
    s.on_diff(diff(95, 100, pu=90))
    ok, out, _ = s.on_snapshot(snap(100))
    assert [d.u for d, _ in out] == [100]


def test_stale_snapshot_is_refused() -> None:
    s = DepthSequencer(futures=False)
    s.on_diff(diff(50, 60))
    ok, out, issue = s.on_snapshot(snap(10))
    assert not ok and issue is not None and issue.kind == "stale_snapshot"
    assert not s.synced


def _frame(stream: str, data: dict) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


def _depth(U: int, u: int, pu: int, bids, asks) -> bytes:
    return _frame("xusdt@depth@0ms", {"e": "depthUpdate", "E": 1, "T": 1, "s": "XUSDT", "U": U, "u": u,
                                      "pu": pu, "b": bids, "a": asks})


def _snapshot(lid: int) -> bytes:
    return json.dumps({"lastUpdateId": lid, "E": 1, "T": 1,
                       "bids": [["100.0", "1.000"], ["99.9", "2.000"]],
                       "asks": [["100.1", "1.000"], ["100.2", "3.000"]]}).encode()


def test_feed_reports_gap_with_location_and_resyncs_at_next_snapshot() -> None:
    feed = BinanceFeed()
    feed.on_frame(1, _depth(10, 12, 9, [["100.0", "1.500"]], []), "f:1", "XUSDT")
    feed.on_frame(2, _snapshot(11), "f:2", "XUSDT")
    feed.on_frame(3, _depth(13, 15, 12, [], [["100.1", "0"]]), "f:3", "XUSDT")
    feed.on_frame(4, _depth(20, 22, 18, [], []), "f:4", "XUSDT")  # pu 18 != 15: gap
    feed.on_frame(5, _snapshot(30), "f:5", "XUSDT")
    feed.on_frame(6, _depth(29, 31, 22, [["99.9", "0"]], []), "f:6", "XUSDT")
    st = feed.stats
    assert (st.gaps, st.resyncs, st.snapshots, st.diffs_applied) == (1, 1, 2, 3)
    assert any(i.startswith("f:4: XUSDT: gap: expected pu=15, got U=20 u=22 pu=18") for i in st.issues)
    ev = feed.take_events()
    clears = ev[ev["kind"] == Kind.BOOK_CLEAR]
    assert len(clears) == 3  # snapshot, gap, snapshot


def test_feed_strict_mode_stops_at_gap_naming_file_line_and_ids() -> None:
    feed = BinanceFeed(strict=True)
    feed.on_frame(1, _snapshot(11), "rec.gz:7", "XUSDT")
    feed.on_frame(2, _depth(10, 12, 9, [], []), "rec.gz:8", "XUSDT")
    with pytest.raises(SyncError, match=r"rec.gz:9: XUSDT: gap: expected pu=12, got U=20 u=22 pu=19"):
        feed.on_frame(3, _depth(20, 22, 19, [], []), "rec.gz:9", "XUSDT")


def test_bad_json_is_reported_and_nothing_accepted_is_lost() -> None:
    feed = BinanceFeed()
    feed.on_frame(1, _snapshot(11), "f:1", "XUSDT")
    feed.on_frame(2, b'{"stream":"xusdt@depth@0ms","data":{"e":"depthUp', "f:2", "XUSDT")
    feed.on_frame(3, _depth(10, 12, 9, [["100.0", "5.000"]], []), "f:3", "XUSDT")
    assert feed.stats.bad_messages == 1 and feed.stats.diffs_applied == 1
    assert feed.stats.issues[0].startswith("f:2: malformed message")
    with pytest.raises(SyncError, match="f:2: malformed"):
        BinanceFeed(strict=True).on_frame(2, b"{oops", "f:2", "XUSDT")


def test_off_grid_price_is_a_clear_error() -> None:
    feed = BinanceFeed(strict=True, tick_sizes={"XUSDT": "0.1"})
    feed.on_frame(1, _snapshot(11), "f:1", "XUSDT")
    with pytest.raises(SyncError, match=r"f:2: '100.05' is not a multiple of step 0.1"):
        feed.on_frame(2, _depth(10, 12, 9, [["100.05", "1.000"]], []), "f:2", "XUSDT")


def test_replay_of_a_capture_with_a_missing_line(tmp_path: Path, data_dir: Path) -> None:
    """Drop one diff from the real USD-M capture: default mode reports it, strict mode stops."""
    from flowbook.replay.sources import load

    src = data_dir / "hftbacktest" / "usdm" / "ethusdt_20240808.gz"
    with gzip.open(src, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    depth_lines = [i for i, ln in enumerate(lines) if b"depthUpdate" in ln]
    drop = depth_lines[len(depth_lines) // 2]
    u_next = json.loads(lines[depth_lines[len(depth_lines) // 2 + 1]].split(b" ", 1)[1])["data"]["u"]
    bad = tmp_path / "ethusdt_gap.gz"
    with gzip.open(bad, "wb") as fh:
        fh.writelines(lines[:drop] + lines[drop + 1:])
    loaded = load([bad], None, strict=False)
    assert loaded.stats["gaps"] == 1
    assert any(f"ethusdt_gap.gz:{depth_lines[len(depth_lines) // 2 + 1]}: ETHUSDT: gap" in i
               and f"u={u_next}" in i for i in loaded.issues)
    with pytest.raises(SyncError, match=rf"ethusdt_gap.gz:{depth_lines[len(depth_lines) // 2 + 1]}: ETHUSDT: gap"):
        load([bad], None, strict=True)


def test_exact_duplicate_diff_is_dropped_not_a_gap() -> None:
    """A repeated futures diff (same U/u/pu as one applied) and a late copy of an older one are
    duplicates: dropped, the chain goes on, no resync.  Spot: the same for u <= last applied u."""
    fut = DepthSequencer(futures=True)
    fut.on_snapshot(snap(100))
    for d in (diff(95, 105, pu=90), diff(106, 110, pu=105)):
        assert fut.on_diff(d)[0] is Action.APPLY
    assert fut.on_diff(diff(106, 110, pu=105))[0] is Action.DUPLICATE  # exact repeat
    assert fut.on_diff(diff(95, 105, pu=90))[0] is Action.DUPLICATE  # a late copy of an older one
    assert fut.synced and fut.last_u == 110 and not fut.issues
    assert fut.on_diff(diff(111, 120, pu=110))[0] is Action.APPLY
    spot = DepthSequencer(futures=False)
    spot.on_snapshot(snap(10))
    assert spot.on_diff(diff(11, 12))[0] is Action.APPLY
    assert spot.on_diff(diff(11, 12))[0] is Action.DUPLICATE
    assert spot.on_diff(diff(13, 14))[0] is Action.APPLY and spot.synced


def _trade(t: int, stream: str = "xusdt@trade") -> bytes:
    return _frame(stream, {"e": "trade", "E": 1, "T": 1, "s": "XUSDT", "t": t, "p": "100.0", "q": "1.000",
                           "m": False})


def test_feed_counts_duplicate_diffs_and_drops_duplicate_trades() -> None:
    feed = BinanceFeed()
    feed.on_frame(1, _snapshot(11), "f:1", "XUSDT")
    feed.on_frame(2, _depth(10, 12, 9, [["100.0", "1.500"]], []), "f:2", "XUSDT")
    feed.on_frame(3, _depth(10, 12, 9, [["100.0", "1.500"]], []), "f:3", "XUSDT")  # repeated frame
    feed.on_frame(4, _depth(13, 15, 12, [], []), "f:4", "XUSDT")
    for t in (1, 2, 2, 4, 3, 3, 1, 5):  # 2 repeated, 4 before 3 (reordered), 3 and 1 repeated
        feed.on_frame(5, _trade(t), "f:5", "XUSDT")
    st = feed.stats
    assert (st.gaps, st.diffs_applied, st.diffs_duplicate) == (0, 2, 1)
    assert (st.trades, st.trades_duplicate, st.trades_late) == (5, 3, 1)
    ev = feed.take_events()
    assert ev["id"][ev["kind"] == Kind.TRADE].tolist() == [1, 2, 4, 3, 5]


def test_trade_ids_bounded_memory() -> None:
    from flowbook.venues.binance.dedup import TradeIds

    ids = TradeIds(window=100)
    assert ids.admit(10) == 1 and ids.admit(10_000) == 1
    assert len(ids.holes) == 100  # only the last `window` skipped ids are remembered
    assert ids.admit(9_950) == 2 and ids.admit(9_950) == 0 and ids.admit(50) == 0
    for t in range(10_001, 20_000, 3):
        ids.admit(t)
    assert len(ids.holes) <= 2 * ids.window
