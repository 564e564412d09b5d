"""The synthetic market: its raw recording replays cleanly and agrees with its normalized events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sortedcontainers import SortedDict

from flowbook.events import EVENT_DTYPE, Flag, Kind
from flowbook.replay.run import replay
from flowbook.replay.sources import load
from flowbook.testing import (
    SyntheticMarket,
    SyntheticParams,
    synthetic_events,
    synthetic_market,
    write_recording,
)
from flowbook.testing.synthetic import N_PRE

N = 40_000
SEED = 11
FIELDS = ["kind", "side", "symbol", "price", "qty", "id", "id2", "ts_local", "ts_exchange"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticMarket]:
    path = tmp_path_factory.mktemp("syn") / "synusdt_20240808.gz"
    return path, write_recording(path, N, SEED)


def test_recording_replays_without_gaps_and_ends_on_the_generators_book(
    recording: tuple[Path, SyntheticMarket], tmp_path: Path
) -> None:
    path, mk = recording
    out = tmp_path / "features.parquet"
    s = replay([path], out, use_archive=False, strict=True)
    assert (s.gaps, s.resyncs, s.crossed, s.issues) == (0, 0, 0, [])
    assert s.levels_applied == N
    assert s.trades == mk.trades.shape[1] > 0
    df = pl.read_parquet(out)
    assert df.height == s.book_messages == 1 + len(mk.msg_end) - N_PRE  # snapshot row + messages after it
    assert (df["best_bid"] < df["best_ask"]).all()
    last = df.row(-1, named=True)
    bid, ask = mk.final_bids[:, 0], mk.final_asks[:, 0]
    assert round(last["best_bid"] * 10) == bid[0] and round(last["best_bid_qty"] * 1000) == bid[1]
    assert round(last["best_ask"] * 10) == ask[0] and round(last["best_ask_qty"] * 1000) == ask[1]
    assert last["update_id"] == mk.last_id[-1]


def test_events_and_recording_agree(recording: tuple[Path, SyntheticMarket]) -> None:
    path, mk = recording
    loaded = load([path], None, strict=True)
    assert loaded.instruments == [mk.instrument]
    assert mk.instrument.tick_size == "0.1" and mk.instrument.lot_size == "0.001"
    ev = mk.events()
    assert ev.dtype == EVENT_DTYPE and len(ev) == len(loaded.events)
    for name in FIELDS:
        assert np.array_equal(ev[name], loaded.events[name]), name
    # the feed marks REST snapshot levels INCOMPLETE (depth beyond 1000 levels unknown)
    assert np.array_equal(ev["flags"], loaded.events["flags"] & ~np.uint16(Flag.INCOMPLETE))


def _replay_reference(ev: np.ndarray) -> tuple[SortedDict, SortedDict, dict[str, int]]:
    """Apply the events to two sorted dicts, checking the book and the trades as it goes."""
    bids, asks = SortedDict(), SortedDict()
    n = {"add": 0, "modify": 0, "delete": 0, "missing": 0, "trades": 0}
    for kind, side, flags, px, q in zip(*(ev[f].tolist() for f in ("kind", "side", "flags", "price", "qty")),
                                        strict=True):
        if kind == Kind.BOOK_CLEAR:
            bids.clear()
            asks.clear()
            continue
        book = bids if side > 0 else asks
        if kind == Kind.TRADE:
            n["trades"] += 1
            touch = asks.peekitem(0) if side > 0 else bids.peekitem(-1)  # aggressor hits the touch
            assert px == touch[0] and 0 < q <= touch[1]
            continue
        assert kind == Kind.BOOK_SET
        if not flags & Flag.SNAPSHOT:
            n["add" if q and px not in book else "modify" if q else "delete" if px in book else "missing"] += 1
        if q:
            book[px] = q
        else:
            book.pop(px, None)
        if bids and asks:  # never crossed, not even inside a message
            assert bids.peekitem(-1)[0] < asks.peekitem(0)[0]
    return bids, asks, n


def test_model_properties() -> None:
    n = 30_000
    mk = synthetic_market(n, 3)
    ev = mk.events()
    head = ev[: 1 + mk.snap_bids.shape[1] + mk.snap_asks.shape[1]]
    assert head["kind"][0] == Kind.BOOK_CLEAR and head["flags"][0] == Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN
    assert (head["flags"][1:-1] == Flag.SNAPSHOT).all()
    assert head["flags"][-1] == Flag.SNAPSHOT | Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE
    assert mk.snap_bids.shape[1] <= 1000 and mk.snap_asks.shape[1] <= 1000
    body = ev[len(head):]
    sets = body[body["kind"] == Kind.BOOK_SET]
    assert len(sets) == n and set(np.unique(body["kind"]).tolist()) == {Kind.BOOK_SET, Kind.TRADE}
    assert (np.diff(sets["id"]) >= 0).all() and np.count_nonzero(sets["flags"]) == len(mk.msg_end) - N_PRE
    assert (body["flags"][body["kind"] == Kind.TRADE] == Flag.END_OF_MESSAGE).all()
    bids, asks, counts = _replay_reference(ev)
    assert dict(bids) == dict(zip(*mk.final_bids.tolist(), strict=True))
    assert dict(asks) == dict(zip(*mk.final_asks.tolist(), strict=True))
    assert all(counts[k] > 0 for k in counts), counts
    assert 0.005 < counts["missing"] / n < 0.1
    assert min(bids) < 0.2 * bids.peekitem(-1)[0]  # far-from-mid levels
    assert max(asks) > 5 * asks.peekitem(0)[0]


def test_deterministic_by_seed() -> None:
    a, inst = synthetic_events(5_000, 5)
    b, _ = synthetic_events(5_000, 5)
    c, _ = synthetic_events(5_000, 6)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert inst.symbol == "SYNUSDT" and inst.venue == "binance-usdm"


def test_params_shape_the_stream() -> None:
    small = synthetic_market(20_000, 1, SyntheticParams(mean_msg_updates=3.0))
    big = synthetic_market(20_000, 1, SyntheticParams(mean_msg_updates=30.0))
    assert len(small.msg_end) > 4 * len(big.msg_end)
    with pytest.raises(ValueError):
        SyntheticParams(shares=(0.5, 0.5, 0.5, 0.0, 0.0))
