"""cryptofeed raw-data recordings of the Binance family (shared/data/cryptofeed, data README section 2).

Each recording is ``<EXCHANGE>.0`` (exchangeInfo), ``<EXCHANGE>.http.0.0`` (REST depth snapshots) and
``<EXCHANGE>.ws.1.0`` (the websocket).  README: every symbol syncs with 0 gaps, and the first applicable
diff is index 1..42 of the symbol's diff list.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from flowbook.features import FeatureConfig, FeatureEngine
from flowbook.replay.cryptofeed import (
    exchange_info,
    feed_recording,
    is_cryptofeed,
    load_cryptofeed,
    parse_ts_ns,
    recording_files,
)
from flowbook.venues.binance import SyncError

# exchange -> (symbols, depth diffs in the ws file), data README section 2
EXPECTED = {"BINANCE": (4, 177), "BINANCE_US": (4, 336), "BINANCE_FUTURES": (4, 764),
            "BINANCE_DELIVERY": (10, 2047)}


def _shared() -> Path:
    env = os.environ.get("FLOWBOOK_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def cf() -> Path:
    d = _shared() / "cryptofeed"
    if not d.is_dir():
        pytest.skip(f"cryptofeed recordings not found at {d} (set FLOWBOOK_SHARED_DATA to the shared/data folder)")
    return d


def _diff_lines(ws: Path) -> dict[str, list[str]]:
    """Per symbol, ``file:line`` of each depth diff in the websocket file, in order."""
    out: dict[str, list[str]] = {}
    with open(ws) as fh:
        for n, line in enumerate(fh, 1):
            if line[:1].isdigit() and "@depth" in line[:80]:
                data = json.loads(line.partition(": ")[2])["data"]
                out.setdefault(data["s"], []).append(f"{ws}:{n}")
    return out


@pytest.mark.parametrize("exchange", sorted(EXPECTED))
def test_recording_syncs_every_symbol_without_gaps(cf: Path, exchange: str) -> None:
    n_symbols, n_diffs = EXPECTED[exchange]
    ws = cf / f"{exchange}.ws.1.0"
    rec = feed_recording([ws], strict=True)  # strict: any bad line, gap or stale snapshot raises
    feed = rec.feed
    assert len(feed.symbols) == n_symbols
    assert all(s.seq is not None and s.seq.synced for s in feed.symbols.values())
    st = feed.stats
    assert (st.gaps, st.resyncs, st.stale_snapshots, st.bad_messages) == (0, 0, 0, 0)
    assert st.snapshots == n_symbols
    events = feed.take_events()

    # first applicable diff per symbol: its index in the symbol's diff list (README: 1..42)
    names = {s.sid: s.name for s in feed.symbols.values()}
    diffs = _diff_lines(ws)
    assert sum(map(len, diffs.values())) == n_diffs
    first: dict[str, int] = {}
    for end, where in zip(feed.depth_msg_end, feed.depth_msg_where, strict=True):
        name = names[int(events["symbol"][end])]
        if not where.startswith("snapshot") and name not in first:
            first[name] = diffs[name].index(where)
    assert set(first) == set(diffs)
    assert all(1 <= k <= 42 for k in first.values()), first
    # 0 gaps: every diff from the first applicable one on is applied
    assert st.diffs_applied == n_diffs - sum(first.values())


@pytest.mark.parametrize("exchange", sorted(EXPECTED))
def test_loaded_books_never_cross(cf: Path, exchange: str) -> None:
    loaded = load_cryptofeed([cf / f"{exchange}.http.0.0"], strict=True)
    assert len(loaded.instruments) == EXPECTED[exchange][0]
    assert loaded.stats["gaps"] == 0
    assert not any("never synced" in i for i in loaded.issues)
    ev = loaded.events
    for sid, inst in enumerate(loaded.instruments):
        eng = FeatureEngine(inst, FeatureConfig())
        eng.process(ev[ev["symbol"] == sid])
        eng.finish()
        assert eng.stats.book_messages > 0, inst.symbol
        assert eng.stats.crossed == 0, inst.symbol


def test_siblings_found_from_any_file(cf: Path) -> None:
    for name in ("BINANCE_US.0", "BINANCE_US.http.0.0", "BINANCE_US.ws.1.0"):
        exchange, meta, streams = recording_files([cf / name])
        assert exchange == "BINANCE_US"
        assert meta == [cf / "BINANCE_US.0"]
        assert streams == [[cf / "BINANCE_US.http.0.0"], [cf / "BINANCE_US.ws.1.0"]]
    assert recording_files([cf / "BINANCE.0", cf / "BINANCE.ws.1.0"])[0] == "BINANCE"


def test_probe(cf: Path, tmp_path: Path) -> None:
    for ex in EXPECTED:
        assert all(is_cryptofeed(p) for p in cf.glob(f"{ex}.*"))
    raw = tmp_path / "raw.txt"
    raw.write_text('1723161256299000000 {"stream":"btcusdt@trade","data":{}}\n')
    assert not is_cryptofeed(raw)
    assert not is_cryptofeed(tmp_path / "missing")


def test_tick_sizes_come_from_exchange_info(cf: Path, tmp_path: Path) -> None:
    ticks, sizes = exchange_info([cf / "BINANCE_DELIVERY.0"], [])
    assert ticks["BTCUSD_211231"] == "0.1" and ticks["TRXUSD_PERP"] == "0.00001"
    assert sizes["BTCUSD_211231"] == 100 and sizes["EOSUSD_PERP"] == 10
    assert exchange_info([cf / "BINANCE.0"], [])[0]["NKNUSDT"] == "0.0001"  # "tickSize":"0.00010000"
    # a finer tick in exchangeInfo than the prices need is used as is (inference would say 0.01)
    for name in ("BINANCE_US.http.0.0", "BINANCE_US.ws.1.0"):
        shutil.copy(cf / name, tmp_path / name)
    head, _, body = (cf / "BINANCE_US.0").read_text().partition(": ")
    info_text, nl, rest = body.partition("\n")
    info = json.loads(info_text)
    for s in info["symbols"]:
        if s["symbol"] == "COMPUSDT":
            next(f for f in s["filters"] if f["filterType"] == "PRICE_FILTER")["tickSize"] = "0.00100000"
    (tmp_path / "BINANCE_US.0").write_text(f"{head}: {json.dumps(info)}{nl}{rest}")
    insts = {i.symbol: i for i in load_cryptofeed([tmp_path / "BINANCE_US.ws.1.0"], strict=True).instruments}
    assert insts["COMPUSDT"].tick_size == "0.001"
    assert insts["CRVUSDT"].tick_size == "0.001"
    assert all(i.venue == "binance-us" for i in insts.values())


def test_tick_widened_for_snapshot_prices_off_the_exchange_tick(cf: Path) -> None:
    # NKNUSDT's snapshot holds 34 bids on 0.00001 although exchangeInfo says 0.0001 (tick was raised)
    loaded = load_cryptofeed([cf / "BINANCE.ws.1.0"], strict=True)
    nkn = next(i for i in loaded.instruments if i.symbol == "NKNUSDT")
    assert nkn.tick_size == "0.00001"
    assert loaded.stats["bad_messages"] == 0
    assert any("NKNUSDT: 34 snapshot prices are off exchangeInfo's tick 0.0001" in i for i in loaded.issues)


def test_without_metadata_file_ticks_are_inferred(cf: Path, tmp_path: Path) -> None:
    for name in ("BINANCE_FUTURES.http.0.0", "BINANCE_FUTURES.ws.1.0"):
        shutil.copy(cf / name, tmp_path / name)
    rec = feed_recording([tmp_path / "BINANCE_FUTURES.ws.1.0"], strict=True)
    assert all(s.seq is not None and s.seq.synced for s in rec.feed.symbols.values())
    assert {s.name: s.inst.tick_size for s in rec.feed.symbols.values() if s.inst} == {
        "SUSHIUSDT": "0.001", "AKROUSDT": "0.00001", "KEEPUSDT": "0.0001", "CTKUSDT": "0.00001"}


def test_coinm_quarterlies_are_inverse_with_exchange_contract_sizes(cf: Path) -> None:
    insts = {i.symbol: i for i in load_cryptofeed([cf / "BINANCE_DELIVERY.0"], strict=True).instruments}
    assert {"BTCUSD_211231", "ETHUSD_210924", "BCHUSD_210924", "LINKUSD_211231"} <= set(insts)
    assert all(i.venue == "binance-coinm" and i.inverse for i in insts.values())
    assert insts["BTCUSD_211231"].multiplier == 100 and insts["ETHUSD_210924"].multiplier == 10
    futures = load_cryptofeed([cf / "BINANCE_FUTURES.0"], strict=True).instruments
    assert all(i.venue == "binance-usdm" and not i.inverse for i in futures)


def test_timestamps_are_exact(cf: Path) -> None:
    assert parse_ts_ns("1633998512.0633569") == 1_633_998_512_063_356_900
    assert parse_ts_ns("1626992741.06217") == 1_626_992_741_062_170_000
    assert parse_ts_ns("1626916404") == 1_626_916_404_000_000_000
    assert parse_ts_ns("1.0000000015") == 1_000_000_002  # half-even beyond the nanosecond
    assert int(float("1633998512.0633569") * 1e9) != 1_633_998_512_063_356_900  # what a float would give
    for bad in ("1e9", "-1", "1.", ".5", "", "1.2.3"):
        with pytest.raises(ValueError):
            parse_ts_ns(bad)
    # BINANCE.ws.1.0 line 6: an applied NKNUSDT diff received at 1633998513.0638819
    ws = cf / "BINANCE.ws.1.0"
    loaded = load_cryptofeed([ws], strict=True)
    at = np.flatnonzero(loaded.events["ts_local"] == 1_633_998_513_063_881_900)
    assert at.size and loaded.where(int(at[-1])) == f"{ws}:6"
    # REST snapshot: BINANCE.http.0.0 line 2, BLZETH at 1633998514.6462898
    assert loaded.where(int(np.flatnonzero(loaded.events["ts_local"] == 1_633_998_514_646_289_800)[-1])) \
        == "snapshot lastUpdateId=281916627"


def test_other_exchanges_are_refused_with_one_line(cf: Path) -> None:
    for name in ("KRAKEN.ws.50.0", "COINBASE.0"):
        with pytest.raises(ValueError) as exc:
            load_cryptofeed([cf / name], strict=False)
        text = str(exc.value)
        assert "\n" not in text and str(cf / name) in text
        assert all(ex in text for ex in EXPECTED)


def test_bad_lines_name_file_and_line(cf: Path, tmp_path: Path) -> None:
    for name in ("BINANCE_US.0", "BINANCE_US.http.0.0"):
        shutil.copy(cf / name, tmp_path / name)
    lines = (cf / "BINANCE_US.ws.1.0").read_text().split("\n")
    lines.insert(5, "garbage without a timestamp")  # line 6
    lines.insert(7, '16339982x5.1: {"stream":"x"}')  # line 8: bad timestamp
    lines.insert(9, "1633998275.5: {not json")  # line 10: malformed message (reported by the feed)
    ws = tmp_path / "BINANCE_US.ws.1.0"
    ws.write_text("\n".join(lines))
    loaded = load_cryptofeed([ws], strict=False)
    assert any(i.startswith(f"{ws}:6: not a cryptofeed raw-data line") for i in loaded.issues)
    assert any(i.startswith(f"{ws}:8: bad timestamp") for i in loaded.issues)
    assert any(i.startswith(f"{ws}:10: malformed message") for i in loaded.issues)
    assert loaded.stats["gaps"] == 0 and len(loaded.instruments) == 4
    with pytest.raises(SyncError, match=rf"^{ws}:6: not a cryptofeed raw-data line"):
        load_cryptofeed([ws], strict=True)
