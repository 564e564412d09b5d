"""Normalized events -> store batches: every kind lands in its table, per instrument, in order."""

from __future__ import annotations

import numpy as np

from flowbook.events import NO_ID, Flag, Instrument, Kind, empty_events
from flowbook.store import event_batches

A = Instrument("binance-usdm", "AAAUSDT", "0.1", "0.001")
B = Instrument("binance-usdm", "BBBUSDT", "0.01", "1")


def _events() -> np.ndarray:
    rows = [  # kind, side, flags, symbol, ts_exchange, price, qty, id, id2, value
        (Kind.BOOK_CLEAR, 0, Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN, 0, 100, 0, 0, 50, NO_ID, 0.0),
        (Kind.BOOK_SET, 1, Flag.SNAPSHOT, 0, 100, 999, 5, 50, NO_ID, 0.0),
        (Kind.BOOK_SET, 1, Flag.SNAPSHOT, 0, 100, 1000, 7, 50, NO_ID, 0.0),
        (Kind.BOOK_SET, -1, Flag.SNAPSHOT, 0, 100, 1002, 0, 50, NO_ID, 0.0),  # qty 0: not a level
        (Kind.BOOK_SET, -1, Flag.SNAPSHOT | Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE, 0, 100, 1001, 3, 50, NO_ID, 0.0),
        (Kind.MARK_PRICE, 0, 0, 1, 200, 0, 0, NO_ID, NO_ID, 12.5),  # symbol B
        (Kind.MARK_PRICE, 0, 0, 0, 200, 0, 0, NO_ID, NO_ID, 100.05),
        (Kind.FUNDING_RATE, 0, Flag.END_OF_MESSAGE, 0, 200, 0, 0, 28_800 * 10**9, NO_ID, 0.0001),
        (Kind.FUNDING_RATE, 0, Flag.END_OF_MESSAGE, 1, 210, 0, 0, NO_ID, NO_ID, -0.0002),  # no mark before it
        (Kind.LIQUIDATION, -1, Flag.END_OF_MESSAGE, 0, 300, 998, 40, NO_ID, NO_ID, 99.81),
        (Kind.OPEN_INTEREST, 0, 0, 1, 400, 0, 0, NO_ID, NO_ID, 123456.0),
        (Kind.TRADE, 1, Flag.END_OF_MESSAGE, 0, 500, 1001, 2, 77, NO_ID, 0.0),
        (Kind.BOOK_SET, 1, Flag.END_OF_MESSAGE, 0, 600, 1000, 0, 51, 51, 0.0),
    ]
    ev = empty_events(len(rows))
    for j, r in enumerate(rows):
        for name, v in zip(("kind", "side", "flags", "symbol", "ts_exchange", "price", "qty", "id", "id2", "value"),
                           r, strict=True):
            ev[j][name] = v
    ev["ts_local"] = ev["ts_exchange"] + 5
    return ev


def test_every_kind_reaches_its_table() -> None:
    ev = _events()
    tables = ["events", "trades", "liquidations", "funding_rates", "open_interest", "book_deltas", "book_snapshots"]
    got = {(b.table.name, b.instrument.symbol): b.columns for b in event_batches(ev, [A, B], tables)}
    assert len(got[("events", "AAAUSDT")]["kind"]) == 10 and len(got[("events", "BBBUSDT")]["kind"]) == 3
    f = got[("funding_rates", "AAAUSDT")]
    assert f["mark_price"].tolist() == [100.05] and f["next_funding_time"].tolist() == [28_800 * 10**9]
    fb = got[("funding_rates", "BBBUSDT")]
    assert np.isnan(fb["mark_price"][0]) and fb["next_funding_time"].tolist() == [0] and fb["funding_rate"][0] == -0.0002
    liq = got[("liquidations", "AAAUSDT")]
    assert liq["side"].tolist() == [-1] and liq["price"].tolist() == [998] and liq["avg_price"].tolist() == [99.81]
    assert got[("open_interest", "BBBUSDT")]["open_interest"].tolist() == [123456.0]
    assert got[("trades", "AAAUSDT")]["trade_id"].tolist() == [77]
    d = got[("book_deltas", "AAAUSDT")]
    assert d["kind"].tolist() == [2, 1, 1, 1, 1, 1] and d["seq"].tolist() == [0, 1, 2, 3, 4, 0]
    s = got[("book_snapshots", "AAAUSDT")]
    assert list(zip(s["side"].tolist(), s["level"].tolist(), s["price"].tolist(), s["qty"].tolist(), strict=True)) == [
        (1, 0, 1000, 7), (1, 1, 999, 5), (-1, 0, 1001, 3)]
    assert ("trades", "BBBUSDT") not in got  # no empty batches


def test_one_symbol_fast_path_equals_general_path() -> None:
    ev = _events()
    ev["symbol"] = 0
    one = event_batches(ev, [A], ["events", "book_deltas"])
    ev2 = np.concatenate([ev, ev[:1]])
    ev2["symbol"][-1] = 1  # a second symbol forces the gather path
    two = [b for b in event_batches(ev2, [A, B], ["events", "book_deltas"]) if b.instrument is A]
    for x, y in zip(one, two, strict=True):
        for k in x.columns:
            np.testing.assert_array_equal(x.columns[k], y.columns[k])
