"""Symbols that never get an instrument (no snapshot, no trades) must not shift other symbols' ids."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from flowbook.events import Kind
from flowbook.replay.sources import load

T0 = 1_723_161_255_030_314_667  # ns, as in the real captures


def _frame(ts: int, stream: str, data: dict) -> str:
    return f"{ts} {json.dumps({'stream': stream, 'data': data})}"


def test_symbol_without_instrument_does_not_shift_ids(tmp_path: Path) -> None:
    def diff(sym: str, U: int, u: int, pu: int, bids: list, asks: list) -> dict:
        return {"e": "depthUpdate", "E": 1, "T": 1, "s": sym, "U": U, "u": u, "pu": pu, "b": bids, "a": asks}

    eth = [  # one diff, never a snapshot nor a trade -> no instrument can be defined
        _frame(T0 + 1_000, "ethusdt@depth@0ms", diff("ETHUSDT", 5, 6, 4, [["2500.10", "1.000"]], [])),
    ]
    snap = {"lastUpdateId": 100, "E": 1, "T": 1, "bids": [["61000.00", "1.000"]], "asks": [["61000.20", "2.000"]]}
    btc = [
        _frame(T0 + 2_000, "btcusdt@depth@0ms", diff("BTCUSDT", 99, 101, 98, [["61000.10", "0.500"]], [])),
        f"{T0 + 3_000} {json.dumps(snap)}",
        _frame(T0 + 4_000, "btcusdt@depth@0ms", diff("BTCUSDT", 102, 103, 101, [], [["61000.30", "0.700"]])),
    ]
    paths = []
    for name, lines in (("ethusdt_20240808.gz", eth), ("btcusdt_20240808.gz", btc)):
        paths.append(tmp_path / name)
        with gzip.open(paths[-1], "wt") as f:
            f.write("\n".join(lines) + "\n")
    loaded = load(paths, None, False)
    assert [i.symbol for i in loaded.instruments] == ["BTCUSDT"]
    book = loaded.events[loaded.events["kind"] == Kind.BOOK_SET]
    assert len(book) > 0
    assert set(book["symbol"].tolist()) == {0}  # BTCUSDT is instrument 0
    assert any("ETHUSDT" in s for s in loaded.issues)
