"""LOBSTER reader and L3 book, checked row by row against LOBSTER's own orderbook file.

Seed choice: the L3 book is seeded with the state *before* message 0 (``LobsterData.initial_book``:
orderbook row 0 with message 0 undone; message 0 is a type-1 add, so its size comes off its level)
and every message, from message 0 on, is applied.  Row ``k`` of the orderbook file is then compared
with the book after message ``k``.

What the book can know.  LOBSTER's message file only carries events "in the requested price range"
(lobsterdata.com, data structure page): in this sample every message's price lies inside the previous
row's 10-level window.  A level that drops out of the window therefore changes silently (row 12: the
seeded ask 587.65 x 1160 vanishes without a message; message 447 executes order 13419503, 50 @ 585.40,
which was never in view while its level was deep).  So "every level at or better than the seed's worst
level" is NOT knowable for the whole sample.  ``L3Book(window=10)`` tracks what is: its known range
starts as the seed's and tightens to the 10th level whenever more than 10 known levels exist (the rest
leaves the window).  Inside the known range the book must equal the file exactly, for every row.
With ``learn=True`` the test also feeds back, after each row's check, the file levels beyond the
book's known range (``seed_levels``), i.e. "any level it has seen since"; the next rows verify them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from flowbook.book.l3 import L3Book, L3BookError
from flowbook.events.dtype import EVENT_DTYPE, Flag, Kind, Side, empty_events
from flowbook.replay.lobster import LobsterData, parse_time_ns, read_lobster

_STEM = "AAPL_2012-06-21_34200000_57600000"
_DEPTH = 10


def _data_dir() -> Path:
    env = os.environ.get("FLOWBOOK_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return base / "lobster_aapl_head"


@pytest.fixture(scope="module")
def data() -> LobsterData:
    d = _data_dir()
    msg, ob = d / f"{_STEM}_message_10.csv", d / f"{_STEM}_orderbook_10.csv"
    if not (msg.is_file() and ob.is_file()):
        pytest.skip(f"LOBSTER sample not found in {d} (set FLOWBOOK_SHARED_DATA to the shared data dir)")
    return read_lobster(msg, ob)


def _file_levels(row: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Levels of one orderbook row in ticks, best first, LOBSTER placeholders dropped."""
    out: dict[int, list[tuple[int, int]]] = {Side.BID: [], Side.ASK: []}
    for lvl in range(len(row) // 4):
        ap, aq, bp, bq = (int(v) for v in row[4 * lvl : 4 * lvl + 4])
        if aq > 0:
            out[Side.ASK].append((ap // 100, aq))
        if bq > 0:
            out[Side.BID].append((bp // 100, bq))
    return out


def _better_or_equal(side: int, p: int, ref: int) -> bool:
    return p >= ref if side == Side.BID else p <= ref


# ---------------------------------------------------------------------------------------- reader
def test_reader_content(data: LobsterData) -> None:
    ev = data.events
    assert ev.dtype == EVENT_DTYPE
    assert data.instrument.venue == "lobster" and data.instrument.symbol == "AAPL"
    assert data.instrument.tick_size == "0.01" and data.instrument.lot_size == "1"
    assert data.orderbook is not None and data.orderbook.shape == (999, 40)
    assert len(data.row_end) == 999 and data.n_halts == 0
    counts = {k: int((ev["kind"] == k).sum()) for k in Kind}
    assert counts[Kind.ORDER_ADD] == 471 and counts[Kind.ORDER_DELETE] == 369
    assert counts[Kind.ORDER_EXEC] == 98 and counts[Kind.TRADE] == 98 + 61
    assert int((ev["flags"] & Flag.HIDDEN != 0).sum()) == 61
    assert int((ev["flags"] & Flag.END_OF_MESSAGE != 0).sum()) == 999
    # first message: 34200.004241176,1,16113575,18,5853300,1 on 2012-06-21 (UTC midnight base)
    e0 = ev[0]
    assert int(e0["ts_exchange"]) == 1_340_236_800 * 10**9 + 34_200_004_241_176
    assert int(e0["ts_local"]) == int(e0["ts_exchange"])
    assert (int(e0["kind"]), int(e0["side"]), int(e0["price"]), int(e0["qty"]), int(e0["id"])) == (
        Kind.ORDER_ADD,
        1,
        58533,
        18,
        16113575,
    )
    assert int(ev["ts_exchange"][-1]) == 1_340_236_800 * 10**9 + 34_249_086_375_027
    assert np.all(np.diff(ev["ts_exchange"]) >= 0)
    # every visible execution is followed by its trade, aggressor opposite to the resting order
    ix = np.flatnonzero(ev["kind"] == Kind.ORDER_EXEC)
    assert np.all(ev["kind"][ix + 1] == Kind.TRADE)
    assert np.all(ev["side"][ix + 1] == -ev["side"][ix])
    assert np.all(ev["flags"][ix] & Flag.END_OF_MESSAGE == 0)
    assert np.all(data.msg_rows[ix] == data.msg_rows[ix + 1])


def test_initial_book_is_row0_without_message0(data: LobsterData) -> None:
    ib = data.initial_book
    assert ib is not None and data.orderbook is not None
    row0 = _file_levels(data.orderbook[0])
    # message 0 added the only order at 585.33: the bid side before it lacks that level
    assert list(zip(ib.bid_prices.tolist(), ib.bid_qtys.tolist(), strict=True)) == row0[Side.BID][1:]
    assert list(zip(ib.ask_prices.tolist(), ib.ask_qtys.tolist(), strict=True)) == row0[Side.ASK]


# ------------------------------------------------------------------------------ replay vs file
def _replay(data: LobsterData, learn: bool) -> tuple[int, int, int, int]:
    """Replay against the file.

    Returns (levels compared, rows whose every file level was compared, levels learned, events
    the book ignored as beyond its known range).
    """
    ib, rows = data.initial_book, data.orderbook
    assert ib is not None and rows is not None
    book = L3Book(window=_DEPTH)
    book.seed_levels(Side.BID, ib.bid_prices, ib.bid_qtys)
    book.seed_levels(Side.ASK, ib.ask_prices, ib.ask_qtys)
    assert book.known_limit(Side.BID) == int(ib.bid_prices[-1])
    assert book.known_limit(Side.ASK) == int(ib.ask_prices[-1])
    start = compared = full_rows = learned = 0
    for k, end in enumerate(data.row_end.tolist()):
        book.apply(data.events[start:end])
        start = end
        file = _file_levels(rows[k])
        whole = True
        for side in (Side.BID, Side.ASK):
            mine = book.levels(side)
            inside = [lv for lv in file[side] if book.is_known(side, lv[0])]
            # the known range is a prefix of the file's levels and equals the book level by level
            assert inside == file[side][: len(inside)], (k, side)
            assert mine == inside, (k, side, mine, inside)
            compared += len(mine)
            whole &= len(mine) == len(file[side])
            if learn:
                new = file[side][len(inside) :]
                complete = len(file[side]) < _DEPTH
                if new or (complete and book.known_limit(side) is not None):
                    book.seed_levels(side, [p for p, _ in new], [q for _, q in new], complete=complete)
                    learned += len(new)
        full_rows += whole
    assert k + 1 == len(rows) == 999
    return compared, full_rows, learned, book.n_ignored


def test_l3_replay_matches_orderbook_file_seed_only(data: LobsterData) -> None:
    assert _replay(data, learn=False) == (6423, 21, 0, 338)


def test_l3_replay_matches_orderbook_file_learning(data: LobsterData) -> None:
    compared, full_rows, learned, ignored = _replay(data, learn=True)
    assert data.orderbook is not None
    n_file_levels = int((data.orderbook[:, 1::2] > 0).sum())
    # every file level is compared except the ones learned from that very row; those are exactly the
    # 318 levels entering the 10th place from outside the window (see the L2 transition test)
    assert n_file_levels == 19_980 and compared + learned == n_file_levels
    assert (compared, full_rows, learned, ignored) == (19_662, 681, 318, 0)


def test_message_file_covers_only_the_window(data: LobsterData) -> None:
    """Why the book needs ``window=10``: deep levels change without messages."""
    rows = data.orderbook
    assert rows is not None
    ev = data.events
    order = ev[(ev["kind"] != Kind.TRADE)]
    order_rows = data.msg_rows[ev["kind"] != Kind.TRADE]
    for e, k in zip(order, order_rows.tolist(), strict=True):
        if k == 0:
            continue
        prev = _file_levels(rows[k - 1])[int(e["side"])]
        assert len(prev) == _DEPTH and _better_or_equal(int(e["side"]), int(e["price"]), prev[-1][0]), k
    # the seeded ask level 587.65 x 1160 is 11th after message 11 and gone after message 12, which
    # deletes an order at 585.92: no message ever touched 587.65
    assert (58765, 1160) in _file_levels(rows[0])[Side.ASK]
    assert all(58765 not in dict(_file_levels(rows[k])[Side.ASK]) for k in (11, 12))
    assert _file_levels(rows[12])[Side.ASK][-1] == (58790, 500)
    assert not np.any(ev["price"][ev["side"] == Side.ASK] == 58765)


def _apply_l2(levels: dict[int, dict[int, int]], ev: np.ndarray) -> None:
    """Apply one message's order events to a 10-level L2 window (deep reductions ignored)."""
    for e in ev:
        k, s, p, q = int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"])
        lv = levels[s]
        if k == Kind.ORDER_ADD:
            lv[p] = lv.get(p, 0) + q
        elif k in (Kind.ORDER_REDUCE, Kind.ORDER_DELETE, Kind.ORDER_EXEC):
            if p not in lv:
                continue  # outside the window
            lv[p] -= q
            assert lv[p] >= 0
            if lv[p] == 0:
                del lv[p]


def test_l2_transitions_reproduce_readme_figure(data: LobsterData) -> None:
    rows = data.orderbook
    assert rows is not None
    same = 0
    hidden_rows = 0
    for k in range(1, len(rows)):
        prev = _file_levels(rows[k - 1])
        levels = {s: dict(v) for s, v in prev.items()}
        seg = data.events[data.row_end[k - 1] : data.row_end[k]]
        _apply_l2(levels, seg)
        pred = {s: sorted(levels[s].items(), reverse=(s == Side.BID))[:_DEPTH] for s in (Side.BID, Side.ASK)}
        file = _file_levels(rows[k])
        if pred == file:
            same += 1
        else:
            for s in (Side.BID, Side.ASK):
                assert pred[s][: _DEPTH - 1] == file[s][: _DEPTH - 1], (k, s)
        if len(seg) == 1 and int(seg["flags"][0]) & Flag.HIDDEN:
            hidden_rows += 1
            assert np.array_equal(rows[k], rows[k - 1]), k
    assert (same, len(rows) - 1) == (680, 998)
    assert hidden_rows == 61


# ------------------------------------------------------------------------- reader unit tests
@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("34200.004241176", 34_200_004_241_176),
        ("34200.00426064", 34_200_004_260_640),
        ("34200.1", 34_200_100_000_000),
        ("34200", 34_200_000_000_000),
        ("57599.999999999", 57_599_999_999_999),
        ("0.000000001", 1),
    ],
)
def test_parse_time_exact(text: str, ns: int) -> None:
    assert parse_time_ns(text) == ns


@pytest.mark.parametrize("text", ["34200.0000000001", "-1.5", "1e3", "34200.", ""])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time_ns(text)


def _write(tmp_path: Path, lines: list[str], name: str = f"{_STEM}_message_10.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines))  # no trailing newline, like the sample
    return p


def test_reader_small_file(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        [
            "34200.5,1,7,10,1000000,-1",
            "34201.000000001,4,7,4,1000000,-1",
            "34202,7,0,0,-1,-1",
            "34203.25,5,0,3,999900,1",
            "34204,6,-1,500,1000100,-1",
            "34205,3,7,6,1000000,-1",
        ],
    )
    d = read_lobster(p, symbol=3)
    ev = d.events
    assert d.n_halts == 1 and d.initial_book is None and d.orderbook is None
    assert ev["kind"].tolist() == [
        Kind.ORDER_ADD,
        Kind.ORDER_EXEC,
        Kind.TRADE,
        Kind.TRADE,
        Kind.TRADE,
        Kind.ORDER_DELETE,
    ]
    assert ev["side"].tolist() == [-1, -1, 1, -1, 0, -1]
    assert ev["price"].tolist() == [10000, 10000, 10000, 9999, 10001, 10000]
    assert ev["qty"].tolist() == [10, 4, 4, 3, 500, 6]
    assert ev["symbol"].tolist() == [3] * 6
    assert ev["flags"].tolist() == [8, 0, 8, 8 | 32, 8, 8]
    base = 1_340_236_800 * 10**9
    assert (ev["ts_exchange"] - base).tolist() == [
        34_200_500_000_000,
        34_201_000_000_001,
        34_201_000_000_001,
        34_203_250_000_000,
        34_204_000_000_000,
        34_205_000_000_000,
    ]
    assert d.msg_rows.tolist() == [0, 1, 1, 3, 4, 5]
    assert d.row_end.tolist() == [1, 3, 3, 4, 5, 6]
    book = L3Book()
    book.apply(ev)
    assert len(book) == 0 and book.best_ask() is None


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("34200.1,1,8,10,1000050,1", r"message_10\.csv:2: price 1000050 .*not a multiple of 0\.01"),
        ("34200.1,1,8,10,1000000", r"message_10\.csv:2: expected 6 fields"),
        ("34200.1,9,8,10,1000000,1", r"message_10\.csv:2: unknown message type 9"),
        ("34200.1,1,8,10,1000000,0", r"message_10\.csv:2: direction"),
        ("34200.1x,1,8,10,1000000,1", r"message_10\.csv:2: bad time"),
        ("34200.1,1,8,-5,1000000,1", r"message_10\.csv:2: size"),
    ],
)
def test_reader_bad_row(tmp_path: Path, bad: str, match: str) -> None:
    p = _write(tmp_path, ["34200.0,1,7,10,1000000,1", bad])
    with pytest.raises(ValueError, match=match):
        read_lobster(p)


def test_reader_bad_name_and_row_count(tmp_path: Path) -> None:
    p = _write(tmp_path, ["34200.0,1,7,10,1000000,1"], name="foo.csv")
    with pytest.raises(ValueError, match="not a LOBSTER file name"):
        read_lobster(p)
    d = read_lobster(p, ticker="XYZ", date="2020-01-02")
    assert d.instrument.symbol == "XYZ" and d.date_ns == 1_577_923_200 * 10**9
    ob = _write(tmp_path, ["1000100,5,1000000,10", "1000100,5,1000000,10"], name=f"{_STEM}_orderbook_1.csv")
    with pytest.raises(ValueError, match="2 rows but foo.csv has 1 messages"):
        read_lobster(p, ob, ticker="XYZ", date="2020-01-02")


# --------------------------------------------------------------------------- L3Book unit tests
def _ev(rows: list[tuple[Kind, int, int, int, int]], flags: int = 0) -> np.ndarray:
    ev = empty_events(len(rows))
    for i, (k, s, p, q, oid) in enumerate(rows):
        ev[i]["kind"], ev[i]["side"], ev[i]["price"], ev[i]["qty"], ev[i]["id"] = k, s, p, q, oid
        ev[i]["flags"] = flags
    return ev


def test_l3_add_cancel_delete_exec() -> None:
    b = L3Book()
    b.apply(
        _ev(
            [
                (Kind.ORDER_ADD, 1, 100, 5, 1),
                (Kind.ORDER_ADD, 1, 100, 7, 2),
                (Kind.ORDER_ADD, 1, 99, 1, 3),
                (Kind.ORDER_ADD, -1, 102, 4, 4),
                (Kind.ORDER_ADD, -1, 101, 2, 5),
            ]
        )
    )
    assert b.levels(Side.BID) == [(100, 12), (99, 1)] and b.levels(Side.ASK, 1) == [(101, 2)]
    assert b.best_bid() == (100, 12) and b.best_ask() == (101, 2) and len(b) == 5
    b.apply(_ev([(Kind.ORDER_REDUCE, 1, 100, 3, 2)]))  # partial cancel
    assert b.orders[2] == (1, 100, 4) and b.level_qty(Side.BID, 100) == 9
    b.apply(_ev([(Kind.ORDER_DELETE, 1, 100, 5, 1)]))
    assert 1 not in b.orders and b.levels(Side.BID) == [(100, 4), (99, 1)]
    b.apply(_ev([(Kind.ORDER_EXEC, -1, 101, 2, 5), (Kind.TRADE, 1, 101, 2, 5)]))  # full exec removes
    assert 5 not in b.orders and b.best_ask() == (102, 4)
    b.apply(_ev([(Kind.ORDER_EXEC, 1, 100, 4, 2)]))
    assert b.best_bid() == (99, 1) and b.level_qty(Side.BID, 100) == 0


def test_l3_trades_and_hidden_exec_do_nothing() -> None:
    b = L3Book()
    b.add(1, Side.ASK, 101, 3)
    before = (dict(b.orders), b.levels(Side.ASK), b.levels(Side.BID))
    b.apply(_ev([(Kind.TRADE, 1, 101, 50, 0)], flags=Flag.HIDDEN | Flag.END_OF_MESSAGE))
    b.apply(_ev([(Kind.TRADE, 0, 101, 50, -1)]))
    assert (dict(b.orders), b.levels(Side.ASK), b.levels(Side.BID)) == before


def test_l3_negative_quantity_raises() -> None:
    b = L3Book()
    b.add(1, Side.BID, 100, 5)
    with pytest.raises(L3BookError, match="exceeds its remaining quantity 5"):
        b.apply(_ev([(Kind.ORDER_EXEC, 1, 100, 6, 1)]))
    assert b.orders[1] == (1, 100, 5)  # unchanged
    with pytest.raises(L3BookError, match="added twice"):
        b.add(1, Side.BID, 100, 1)
    with pytest.raises(L3BookError, match="unknown"):
        b.reduce(99, 1, Side.BID, 100)  # not seeded: nothing anonymous to reduce


def test_l3_seeded_levels() -> None:
    b = L3Book()
    b.seed_levels(Side.ASK, np.array([101, 102, 105]), np.array([10, 20, 5]))
    b.add(7, Side.ASK, 102, 3)
    assert b.known_limit(Side.ASK) == 105 and b.levels(Side.ASK) == [(101, 10), (102, 23), (105, 5)]
    b.reduce(50, 4, Side.ASK, 102)  # unknown order: off the seeded quantity of 102
    assert b.level_qty(Side.ASK, 102) == 19 and b.orders[7] == (-1, 102, 3)
    b.delete(51, 10, Side.ASK, 101)
    assert b.best_ask() == (102, 19)
    with pytest.raises(L3BookError, match="holds only 16"):
        b.reduce(52, 17, Side.ASK, 102)  # only 16 of the 19 are anonymous
    b.delete(53, 8, Side.ASK, 110)  # beyond the seeded depth: a level the book never knew
    assert b.n_ignored == 1 and b.levels(Side.ASK) == [(102, 19), (105, 5)]
    with pytest.raises(L3BookError, match="inside the known range"):
        b.seed_levels(Side.ASK, [104], [1])
    b.seed_levels(Side.ASK, [106, 108], [2, 2])  # extends the known range
    assert b.known_limit(Side.ASK) == 108 and b.is_known(Side.ASK, 107) and not b.is_known(Side.ASK, 109)
    b.seed_levels(Side.ASK, [], [], complete=True)
    assert b.known_limit(Side.ASK) is None
    with pytest.raises(L3BookError, match="side must be"):
        b.levels(0)


def test_l3_window_tightens_known_range() -> None:
    b = L3Book(window=2)
    b.add(1, Side.BID, 100, 1)
    b.add(2, Side.BID, 99, 1)
    assert b.known_limit(Side.BID) is None  # two levels: the whole side is still in view
    b.add(3, Side.BID, 101, 1)  # 99 leaves the window: its later changes are not reported
    assert b.known_limit(Side.BID) == 100 and 2 not in b.orders
    assert b.levels(Side.BID) == [(101, 1), (100, 1)]
    b.add(4, Side.BID, 98, 5)  # beyond the known range: ignored
    b.delete(2, 1, Side.BID, 99)  # an order the book dropped: ignored
    assert b.n_ignored == 2 and len(b) == 2
    b.delete(3)
    assert b.levels(Side.BID) == [(100, 1)] and b.known_limit(Side.BID) == 100
    b.seed_levels(Side.BID, [99], [7])  # learned from a snapshot
    b.reduce(2, 1, Side.BID, 99)
    assert b.levels(Side.BID) == [(100, 1), (99, 6)] and b.known_limit(Side.BID) == 99


def test_reader_orderbook_and_initial_book(tmp_path: Path) -> None:
    msg = _write(tmp_path, ["34200.0,3,7,10,1000000,1", "34200.5,7,0,0,-1,-1"], name=f"{_STEM}_message_1.csv")
    ob = _write(tmp_path, ["1000100,5,999900,3", "1000100,5,999900,3"], name=f"{_STEM}_orderbook_1.csv")
    d = read_lobster(msg, ob)
    ib = d.initial_book
    assert ib is not None and d.n_halts == 1 and d.row_end.tolist() == [1, 1]
    # message 0 deleted 10 @ 100.00, which is better than row 0's only bid: it comes back
    assert ib.bid_prices.tolist() == [10000, 9999] and ib.bid_qtys.tolist() == [10, 3]
    assert ib.ask_prices.tolist() == [10001] and ib.ask_qtys.tolist() == [5]
    bad = _write(tmp_path, ["1000100,5,999900,3", "1000100,5,99990x,3"], name=f"{_STEM}_orderbook_1.csv")
    with pytest.raises(ValueError, match=r"orderbook_1\.csv:2: invalid literal"):
        read_lobster(msg, bad)
    odd = _write(tmp_path, ["1000100,5,999950,3", "1000100,5,999900,3"], name=f"{_STEM}_orderbook_1.csv")
    with pytest.raises(ValueError, match=r"orderbook_1\.csv:1: price 999950"):
        read_lobster(msg, odd)
