"""Model feature vectors (``flowbook.features.vectors``): schema pinned by version, values finite and in
range, point in time (truncation), hand-computed book values, defaults without a book, Parquet metadata."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowbook.events import EVENT_DTYPE, Flag, Instrument, Kind
from flowbook.features import vectors as V
from flowbook.replay.sources import load

USDM = "hftbacktest/usdm/btcusdt_20240808.gz"

# ---- golden schemas: a change of names, ranges or defaults must come with a new version -------------
_SIDES = [f"{s}_{k}_{i}" for s in ("bid", "ask") for k in ("dist", "size") for i in range(1, 21)]
GOLDEN: dict[tuple[str, int], tuple[list[str], str]] = {
    ("book_v1", 1): (_SIDES + [f"cum_imbalance_{i}" for i in range(1, 21)] + [
        "spread_bps", "microprice_offset_bps", "bid_levels", "ask_levels", "log_size_ref", "log_bid_notional",
        "log_ask_notional", "log_bid_notional_10bps", "log_ask_notional_10bps", "log_bid_notional_50bps",
        "log_ask_notional_50bps", "band_imbalance_10bps", "band_imbalance_50bps", "crossed", "valid"],
        "5eae603e9daaecac"),
    ("state_v1", 1): ([
        "spread_bps", "microprice_offset_bps", "imbalance_1", "imbalance_20", "imbalance_dw", "log_depth_ratio",
        "band_imbalance_10bps", "large_order_presence", "log_depth_notional", "ofi_1s", "ofi_10s", "ofi_60s",
        "mlofi_2_10s", "mlofi_3_10s", "mlofi_4_10s", "mlofi_5_10s", "trade_imbalance_10s", "trade_imbalance_60s",
        "trade_imbalance_300s", "trade_rate_10s", "trade_rate_60s", "volume_surge", "vwap_offset_bps",
        "last_trade_offset_bps", "return_10s_bps", "return_60s_bps", "return_300s_bps", "volatility_60s_bps",
        "volatility_300s_bps", "vpin", "vpin_ready", "poc_offset_bps", "value_area_position", "inside_value_area",
        "book_valid", "trades_valid", "book_age_s", "trade_age_s", "warm", "tod_sin", "tod_cos"],
        "df4d1a43f3cf1cdc"),
}


@pytest.mark.parametrize("schema", [V.BOOK_V1, V.STATE_V1], ids=lambda s: s.name)
def test_schema_matches_its_golden_version(schema: V.VectorSchema) -> None:
    key = (schema.name, schema.version)
    assert key in GOLDEN, f"{key}: new version; add its golden names and hash here"
    names, digest = GOLDEN[key]
    assert schema.names == names, f"{schema.name} columns changed without a version bump"
    assert schema.hash == digest, f"{schema.name} ranges/defaults/dtypes changed without a version bump"
    assert len(set(schema.names)) == schema.width
    for c in schema.columns:
        assert c.lo <= c.default <= c.hi and c.dtype == "float32" and c.doc, c.name


def test_hash_follows_the_definition() -> None:
    s = V.STATE_V1
    cols = list(s.columns)
    cols[0] = replace(cols[0], hi=cols[0].hi + 1)
    assert V.VectorSchema(s.name, s.version, tuple(cols)).hash != s.hash
    assert V.VectorSchema(s.name, s.version + 1, s.columns).hash != s.hash
    cols = list(s.columns)
    cols[0] = replace(cols[0], doc="reworded")  # documentation is not part of the definition
    assert V.VectorSchema(s.name, s.version, tuple(cols)).hash == s.hash


# ---- hand-built book ------------------------------------------------------------------------------
INST = Instrument("test", "TESTUSDT", "0.1", "1")
T0 = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC


def _ev(kind: int, t: int, side: int = 0, price: int = 0, qty: int = 0, flags: int = 0) -> tuple:
    return (kind, side, flags, 0, t, t, price, qty, 1, -1, 0.0)


def _snapshot(t: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> list[tuple]:
    out = [_ev(Kind.BOOK_CLEAR, t)]
    levels = [(1, p, q) for p, q in bids] + [(-1, p, q) for p, q in asks]
    for j, (side, p, q) in enumerate(levels):
        last = j == len(levels) - 1
        out.append(_ev(Kind.BOOK_SET, t, side, p, q, Flag.SNAPSHOT | (Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE
                                                                       if last else 0)))
    return out


def test_book_v1_by_hand() -> None:
    # bids 99.9 x 10, 99.8 x 30, 99.5 x 20; asks 100.1 x 40, 100.3 x 10: mid 100.0
    ev = np.array(_snapshot(T0, [(999, 10), (998, 30), (995, 20)], [(1001, 40), (1003, 10)]), EVENT_DTYPE)
    row = dict(zip(V.BOOK_V1.names, V.book_v1(ev, INST, np.array([T0, T0 + 1]))[1].tolist(), strict=True))
    ref = 20.0  # median of the five level sizes
    assert row["bid_dist_1"] == pytest.approx(-10.0, rel=1e-6)  # (99.9 - 100) / 100 x 1e4
    assert row["bid_dist_3"] == pytest.approx(-50.0, rel=1e-6)
    assert row["ask_dist_2"] == pytest.approx(30.0, rel=1e-6)
    assert row["bid_dist_4"] == -V.MAX_BPS and row["ask_dist_3"] == V.MAX_BPS  # missing levels
    assert row["bid_size_2"] == pytest.approx(math.log1p(30 / ref), rel=1e-6)
    assert row["ask_size_1"] == pytest.approx(math.log1p(40 / ref), rel=1e-6)
    assert row["ask_size_3"] == 0.0
    assert row["cum_imbalance_1"] == pytest.approx((10 - 40) / 50, rel=1e-6)
    assert row["cum_imbalance_2"] == pytest.approx((40 - 50) / 90, rel=1e-6)
    assert row["cum_imbalance_20"] == pytest.approx((60 - 50) / 110, rel=1e-6)
    assert row["spread_bps"] == pytest.approx(20.0, rel=1e-6)
    assert row["microprice_offset_bps"] == pytest.approx(((10 * 100.1 + 40 * 99.9) / 50 - 100) / 100 * 1e4, rel=1e-5)
    assert (row["bid_levels"], row["ask_levels"], row["valid"], row["crossed"]) == pytest.approx((0.15, 0.1, 1, 0))
    assert row["log_bid_notional"] == pytest.approx(math.log10(1 + 99.9 * 10 + 99.8 * 30 + 99.5 * 20), rel=1e-6)
    assert row["band_imbalance_10bps"] == pytest.approx((10 - 40) / 50, rel=1e-6)  # 99.9 and 100.1: 10 bps away
    assert row["band_imbalance_50bps"] == pytest.approx((60 - 50) / 110, rel=1e-6)


def test_resync_gap_is_flagged_and_the_new_book_used() -> None:
    s = 10**9
    ev = _snapshot(T0, [(999, 10)], [(1001, 40)])
    ev += [_ev(Kind.BOOK_CLEAR, T0 + 2 * s)]  # a gap: the book is dropped until the next snapshot
    ev += _snapshot(T0 + 4 * s, [(995, 50)], [(1005, 50)])
    arr = np.array(ev, EVENT_DTYPE)
    t = np.array([T0 + s, T0 + 3 * s, T0 + 5 * s])
    book = dict(zip(V.BOOK_V1.names, V.book_v1(arr, INST, t).T, strict=True))
    state = dict(zip(V.STATE_V1.names, V.state_v1(arr, INST, t).T, strict=True))
    assert book["valid"].tolist() == [1, 0, 1] and state["book_valid"].tolist() == [1, 0, 1]
    assert book["bid_dist_1"][1] == -V.MAX_BPS and state["spread_bps"][1] == 0  # defaults while unsynced
    assert book["bid_dist_1"][2] == pytest.approx(-50.0, rel=1e-6)  # the rebuilt book, not the old one
    assert state["spread_bps"][2] == pytest.approx(100.0, rel=1e-6)
    assert state["imbalance_1"][0] == pytest.approx(-0.6, rel=1e-6) and state["imbalance_1"][2] == 0


def test_no_book_gives_defaults_and_flags() -> None:
    trades = np.array([_ev(Kind.TRADE, T0 + k * 10**8, 1 if k % 3 else -1, 1000 + k % 2, 5) for k in range(20)],
                      EVENT_DTYPE)
    t = np.array([T0 + 5 * 10**8, T0 + 25 * 10**8])
    book = V.book_v1(trades, INST, t)
    defaults = np.array([c.default for c in V.BOOK_V1.columns], np.float32)
    assert (book == defaults).all()
    state = dict(zip(V.STATE_V1.names, V.state_v1(trades, INST, t)[1].tolist(), strict=True))
    assert state["book_valid"] == 0 and state["spread_bps"] == 0 and state["ofi_10s"] == 0
    assert state["trades_valid"] == 1
    # 20 trades in (T0 - 8 s, T0 + 2.5 s]: signed 5·(13 - 7) of 100
    assert state["trade_imbalance_10s"] == pytest.approx((13 - 7) * 5 / 100, rel=1e-6)
    assert state["book_age_s"] == 10.0  # no depth message ever: the default, not a guess
    assert state["warm"] == 0


# ---- the real capture ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def usdm(data_dir: Path) -> tuple[np.ndarray, Instrument, np.ndarray]:
    loaded = load([data_dir / USDM], None, False)
    ev = loaded.events
    return ev, loaded.instruments[0], V.sample_grid(ev)


def test_vectors_are_finite_and_in_range(usdm) -> None:  # noqa: ANN001
    ev, inst, grid = usdm
    assert len(grid) > 300  # about 5.7 minutes of synced book at 1 s
    for schema in (V.BOOK_V1, V.STATE_V1):
        x = V.build(schema.name, ev, inst, grid)
        assert x.shape == (len(grid), schema.width) and x.dtype == np.float32
        assert np.isfinite(x).all()
        lo = np.array([c.lo for c in schema.columns], np.float32)
        hi = np.array([c.hi for c in schema.columns], np.float32)
        assert ((x >= lo) & (x <= hi)).all()
        cols = dict(zip(schema.names, x.T, strict=True))
        if schema is V.BOOK_V1:
            assert (cols["valid"] == 1).all() and (cols["bid_levels"] == 1).all()
            assert (cols["bid_dist_1"] < 0).all() and (np.diff(x[:, :20], axis=1) < 0).all()  # bids fall away
        else:
            assert (cols["book_valid"] == 1).all() and cols["vpin_ready"].any() and not cols["vpin_ready"].all()
            assert cols["warm"][-1] == 1 and cols["warm"][0] == 0
            assert (np.abs(cols["imbalance_20"]) > 0).mean() > 0.9  # real values, not defaults


def test_vectors_are_point_in_time(usdm) -> None:  # noqa: ANN001
    ev, inst, grid = usdm
    picks = grid[[0, 40, 130, 250, len(grid) - 1]]
    full = {s: V.build(s, ev, inst, picks) for s in V.SCHEMAS}
    known = np.maximum.accumulate(ev["ts_local"])
    for j, t in enumerate(picks.tolist()):
        cut = ev[known <= t]  # the events known at t, in arrival order
        if j:  # after the snapshot, receive times are in order: a plain time filter is the same prefix
            assert len(cut) == int((ev["ts_local"] <= t).sum())
        for s in V.SCHEMAS:
            part = V.build(s, cut, inst, np.array([t]))
            np.testing.assert_array_equal(part[0], full[s][j], err_msg=f"{s} at {t}")
    later = V.build("state_v1", ev, inst, picks + 10**9)  # one second later the vectors move on
    assert not np.array_equal(later, full["state_v1"])


def test_parquet_carries_the_schema(usdm, tmp_path: Path) -> None:  # noqa: ANN001
    ev, inst, grid = usdm
    x = V.state_v1(ev, inst, grid[:50])
    out = tmp_path / "state.parquet"
    V.write_parquet(out, x, V.STATE_V1, grid[:50], inst.symbol)
    assert V.read_schema(out) == V.STATE_V1
    df = pl.read_parquet(out)
    assert df.columns == ["ts", "symbol", *V.STATE_V1.names]
    assert df["ts"].to_list() == grid[:50].tolist()
    assert df.schema["vpin"] == pl.Float32
    np.testing.assert_array_equal(df.select(V.STATE_V1.names).to_numpy(), x)
    with pytest.raises(ValueError, match="expected"):
        V.write_parquet(out, x[:, :5], V.STATE_V1, grid[:50])
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="no flowbook vector schema"):
        V.read_schema(tmp_path / "plain.parquet")
