"""Binance raw captures (shared/data/hftbacktest): sync, continuity, BBO cross-check, no crossing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flowbook.events import Kind
from flowbook.features import FeatureConfig
from flowbook.replay.run import run_symbol
from flowbook.replay.sources import load

CAPTURES = {
    "usdm_btc": ["usdm/btcusdt_20240808.gz"],
    "usdm_eth": ["usdm/ethusdt_20240808.gz"],
    "spot_btc": ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"],
    "spot_eth": ["spot/ethusdt_20240808.gz", "spot/ethusdt_20240809.gz"],
    "cm_btc": ["cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"],
    "cm_eth": ["cm/ethusd_perp_20240808.gz", "cm/ethusd_perp_20240809.gz"],
}
# depth diffs in the files (data README), and diffs that precede the snapshot's lastUpdateId
DIFFS_IN_FILES = {"usdm_btc": 6551, "usdm_eth": 6586, "spot_btc": 3451 + 3044, "spot_eth": 3434 + 3036,
                  "cm_btc": 26847 + 17948, "cm_eth": 22909 + 16246}

_cache: dict[str, object] = {}


def _load(data_dir: Path, name: str):
    if name not in _cache:
        paths = [data_dir / "hftbacktest" / f for f in CAPTURES[name]]
        loaded = load(paths, None, strict=True)
        inst = loaded.instruments[0]
        eng = run_symbol(inst, loaded.events, FeatureConfig())
        f, ii = eng.take()
        _cache[name] = (loaded, eng, f, ii)
    return _cache[name]


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_capture_syncs_without_gaps_and_never_crosses(data_dir: Path, name: str) -> None:
    loaded, eng, f, ii = _load(data_dir, name)
    st = loaded.stats
    assert st["gaps"] == 0 and st["resyncs"] == 0 and st["bad_messages"] == 0
    assert st["snapshots"] == 1
    # every diff is either applied, or older than the snapshot (dropped by the sync rule)
    assert st["diffs_applied"] + st["diffs_stale"] <= DIFFS_IN_FILES[name]
    assert st["diffs_applied"] > 0.99 * DIFFS_IN_FILES[name]
    assert eng.stats.crossed == 0
    assert (f[:, 0] < f[:, 2]).all(), "best bid < best ask after every applied message"
    # one row per applied diff plus the snapshot row
    assert len(f) == st["diffs_applied"] + 1


def test_spot_chain_across_rollover_applies_every_diff_after_sync(data_dir: Path) -> None:
    loaded, *_ = _load(data_dir, "spot_btc")
    # data README: 6493 diffs leave the book uncrossed after syncing (all applied diffs)
    assert loaded.stats["diffs_applied"] == 6493


def _bbo_matches(loaded, f: np.ndarray, ii: np.ndarray, price_div: float, qty_div: float) -> tuple[int, int]:
    """Compare each bookTicker with the book when its ``u`` equals the last applied diff's ``u``."""
    ev = loaded.events
    row_of_id = {int(u): r for r, u in enumerate(ii[:, 2])}
    last_u = None
    matches = mismatches = 0
    kinds = ev["kind"]
    is_eom = (ev["flags"] & 8) != 0
    bid = None
    for j in range(len(ev)):
        k = kinds[j]
        if k == Kind.BOOK_SET and is_eom[j]:
            last_u = int(ev["id"][j])
        elif k == Kind.BBO:
            if ev["side"][j] == 1:
                bid = ev[j]
                continue
            ask = ev[j]
            if bid is not None and last_u is not None and int(ask["id"]) == last_u:
                r = row_of_id[last_u]
                want = (bid["price"] / price_div, bid["qty"] / qty_div, ask["price"] / price_div, ask["qty"] / qty_div)
                got = (f[r, 0], f[r, 1], f[r, 2], f[r, 3])
                if np.allclose(want, got, rtol=0, atol=1e-12):
                    matches += 1
                else:
                    mismatches += 1
    return matches, mismatches


@pytest.mark.parametrize(("name", "expected"), [("usdm_btc", 126), ("usdm_eth", 80)])
def test_usdm_book_equals_bookticker_with_same_update_id(data_dir: Path, name: str, expected: int) -> None:
    loaded, _, f, ii = _load(data_dir, name)
    inst = loaded.instruments[0]
    price_div = 1 / inst.tick
    qty_div = 1 / inst.lot
    matches, mismatches = _bbo_matches(loaded, f, ii, price_div, qty_div)
    assert mismatches == 0
    assert matches == expected


def test_usdm_every_coinciding_bookticker_matches(data_dir: Path) -> None:
    """Stronger than the stream-order check: any bookTicker whose u equals an applied diff's u."""
    loaded, _, f, ii = _load(data_dir, "usdm_btc")
    ev = loaded.events
    bbo = ev[ev["kind"] == Kind.BBO]
    bids, asks = bbo[bbo["side"] == 1], bbo[bbo["side"] == -1]
    row_of_id = {int(u): r for r, u in enumerate(ii[:, 2])}
    n = 0
    for b, a in zip(bids, asks, strict=True):
        r = row_of_id.get(int(a["id"]))
        if r is None:
            continue
        n += 1
        assert (b["price"], a["price"]) == (round(f[r, 0] * 10), round(f[r, 2] * 10))
        assert (b["qty"], a["qty"]) == (round(f[r, 1] * 1000), round(f[r, 3] * 1000))
    assert n >= 126


def test_instruments_are_exact(data_dir: Path) -> None:
    loaded, *_ = _load(data_dir, "cm_btc")
    inst = loaded.instruments[0]
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size, inst.inverse) == (
        "binance-coinm", "BTCUSD_PERP", "0.1", "1", True)
    loaded, *_ = _load(data_dir, "spot_btc")
    assert (loaded.instruments[0].tick_size, loaded.instruments[0].lot_size) == ("0.01", "0.00000001")
