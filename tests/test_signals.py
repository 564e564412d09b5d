"""The signal synthesizer: known answers on constructed rows, graceful degradation with explicit flags,
the TOML config, and a run on the real USD-M capture (point in time, consistent decisions)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from flowbook.events import Kind
from flowbook.features.vectors import sample_grid
from flowbook.replay.sources import load
from flowbook.signals import (
    DEFAULT_COMPONENTS,
    ComponentConfig,
    Decision,
    SignalConfig,
    base_unit,
    counts,
    panel,
    signals,
    synthesize,
    synthesize_panel,
)

TOTAL_W = sum(c.weight for c in DEFAULT_COMPONENTS.values())  # 5.0


def neutral(**over: float) -> dict[str, float]:
    """A fresh, synced, two-sided panel row where every component's statistic is 0."""
    row = {"ts": 1.0, "book_synced": 1.0, "book_age_s": 0.1, "mid": 100.0, "imbalance_n": 0.0,
           "ofi_10s": 0.0, "ofi_norm_10s": 0.0, "microprice_half_spreads": 0.0, "cvd_300s": 0.0,
           "volume_300s": 100.0, "return_60s_bps": 0.0, "vwap": 100.0, "val": 99.0, "vah": 101.0,
           "trade_age_s": 1.0, "vpin": 0.3, "history_s": 1000.0}
    row.update(over)
    return row


def test_neutral_row_is_a_real_hold() -> None:
    s = synthesize(neutral())
    assert s.decision is Decision.HOLD and s.valid and s.strength == 0 and s.coverage == 1
    assert s.flags == () and s.reasons == ("no component past its threshold",)
    assert {v.name for v in s.votes} == set(DEFAULT_COMPONENTS) and all(v.vote == 0 for v in s.votes)


def test_imbalance_and_cvd_give_long_with_reasons() -> None:
    s = synthesize(neutral(imbalance_n=0.6, cvd_300s=50.0), unit="BTC")
    # imbalance 0.6 = saturation -> vote 1 (weight 1); CVD 50/100 = 0.5 = saturation -> vote 1 (weight 1)
    assert s.decision is Decision.LONG and s.score == pytest.approx(2 / TOTAL_W) and s.strength == s.score
    assert set(s.reasons) == {"bid imbalance 0.60 over 20 levels (threshold 0.30)",
                              "CVD +50 BTC over 5 min (+50% of 100 traded, threshold 15%)"}
    mirror = synthesize(neutral(imbalance_n=-0.6, cvd_300s=-50.0), unit="BTC")
    assert mirror.decision is Decision.SHORT and mirror.score == pytest.approx(-2 / TOTAL_W)
    assert "ask imbalance 0.60 over 20 levels (threshold 0.30)" in mirror.reasons


def test_votes_scale_below_saturation_and_stop_below_threshold() -> None:
    s = synthesize(neutral(imbalance_n=0.45, ofi_norm_10s=6.0, ofi_10s=12.5))
    # 0.45/0.6 = 0.75 and 6/12 = 0.5, weights 1 and 1: score 1.25/5 = 0.25 < entry 0.30
    assert s.score == pytest.approx(1.25 / TOTAL_W) and s.decision is Decision.HOLD and s.valid
    assert s.reasons[0] == "score +0.25 inside +-0.30" and len(s.reasons) == 3
    weak = synthesize(neutral(imbalance_n=0.29))  # below the 0.30 threshold: no vote at all
    assert weak.score == 0 and weak.reasons == ("no component past its threshold",)
    assert [v.value for v in weak.votes if v.name == "imbalance"] == [0.29]


def test_value_area_and_vwap_and_momentum() -> None:
    s = synthesize(neutral(mid=102.0, vah=101.0, return_60s_bps=20.0))
    # above VAH: +1 x 0.5; vwap +200 bps: +1 x 0.5; momentum 20 bps: +1 x 0.5 -> 1.5/5
    assert s.decision is Decision.LONG and s.score == pytest.approx(1.5 / TOTAL_W)
    assert "mid above the value-area high 101" in s.reasons
    assert "mid 200.0 bps above the session VWAP 100 (threshold 5 bps)" in s.reasons


def test_toxic_vpin_damps_the_score() -> None:
    s = synthesize(neutral(imbalance_n=0.6, cvd_300s=50.0, vpin=0.8))
    assert s.score == pytest.approx(0.5 * 2 / TOTAL_W) and s.decision is Decision.HOLD  # 0.2 < 0.3
    assert "toxic_flow" in s.flags and s.reasons[-1] == "VPIN 0.80 >= 0.70: toxic flow, score x 0.5"


def test_unsynced_book_is_never_a_silent_hold() -> None:
    row = neutral(book_synced=0.0, mid=math.nan, cvd_300s=50.0)
    s = synthesize(row)
    # book components (imbalance, ofi, microprice, momentum, vwap, value area) skipped: 1.0 of 5.0 left
    assert s.decision is Decision.HOLD and not s.valid and s.coverage == pytest.approx(1 / TOTAL_W)
    assert {"book_unsynced", "insufficient_data"} <= set(s.flags)
    assert s.reasons[0].startswith("no signal: only 20% of the component weight has data") and \
        "book unsynced" in s.reasons[0]
    skipped = {v.name: v.skipped for v in s.votes}
    assert skipped["imbalance"] == "book unsynced" and skipped["cvd"] == ""
    # with a lower coverage floor the trade component alone decides, and the flag stays
    lenient = synthesize(row, SignalConfig(min_coverage=0.1))
    assert lenient.decision is Decision.LONG and lenient.score == 1.0 and lenient.valid
    assert "book_unsynced" in lenient.flags


def test_stale_and_missing_data_flags() -> None:
    s = synthesize(neutral(book_age_s=9.0, imbalance_n=0.6))
    assert "book_stale" in s.flags and all(v.skipped for v in s.votes if v.name == "imbalance")
    t = synthesize(neutral(trade_age_s=math.nan, cvd_300s=math.nan, imbalance_n=0.6))
    # cvd, vwap and value area need trades: imbalance, ofi, microprice, momentum keep 3.0 of 5.0
    assert "no_trades" in t.flags and t.valid
    assert t.coverage == pytest.approx(3 / TOTAL_W) and t.score == pytest.approx(1 / 3)
    u = synthesize(neutral(trade_age_s=300.0))
    assert "trades_stale" in u.flags
    w = synthesize(neutral(return_60s_bps=math.nan, history_s=30.0, vpin=math.nan))
    assert {"momentum_undefined", "warming_up", "vpin_warming"} <= set(w.flags)


def test_deterministic_and_configurable(tmp_path: Path) -> None:
    row = neutral(imbalance_n=0.5, ofi_norm_10s=-4.0, cvd_300s=20.0)
    assert synthesize(row) == synthesize(dict(row))
    cfg_file = tmp_path / "signals.toml"
    cfg_file.write_text("entry = 0.2\n[components.imbalance]\nthreshold = 0.1\nsaturation = 0.5\n"
                        "[components.momentum]\nenabled = false\n")
    cfg = SignalConfig.from_toml(cfg_file)
    assert cfg.entry == 0.2 and cfg.components["imbalance"] == ComponentConfig(1.0, 0.1, 0.5)
    assert cfg.components["ofi"] == DEFAULT_COMPONENTS["ofi"]
    s = synthesize(row, cfg)
    assert "momentum" not in {v.name for v in s.votes}
    total = TOTAL_W - DEFAULT_COMPONENTS["momentum"].weight
    assert s.score == pytest.approx((1.0 - 4 / 12 + 20 / 100 / 0.5) / total)
    for text, match in [("entry = 2\n", "entry must be"), ("[components.nope]\nweight = 1\n", "unknown signal component"),
                        ("colour = 1\n", "unknown signal setting"), ("[components.ofi]\nthreshold = 20\n", "threshold"),
                        ("[components.ofi]\nspeed = 1\n", "settings are"), ("entry = \n", "not valid TOML")]:
        cfg_file.write_text(text)
        with pytest.raises(ValueError, match=match) as info:
            SignalConfig.from_toml(cfg_file)
        assert str(cfg_file) in str(info.value)


# ---- the real capture -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def usdm(data_dir: Path):  # noqa: ANN201
    loaded = load([data_dir / "hftbacktest/usdm/btcusdt_20240808.gz"], None, False)
    return loaded.events, loaded.instruments[0]


def test_real_capture_signals(usdm) -> None:  # noqa: ANN001
    ev, inst = usdm
    grid = sample_grid(ev)
    p = panel(ev, inst, grid)
    sigs = synthesize_panel(p, unit=base_unit(inst))
    c = counts(sigs)
    assert c["LONG"] + c["SHORT"] + c["HOLD"] == len(grid) and c["invalid"] == 0
    assert c["LONG"] > 0 and c["SHORT"] > 0 and c["HOLD"] > 0
    entry = SignalConfig().entry
    for s in sigs:
        assert 0 <= s.strength <= 1 and s.reasons and s.valid
        assert (s.decision is Decision.LONG) == (s.score >= entry)
        assert (s.decision is Decision.SHORT) == (s.score <= -entry)
        assert not {"book_unsynced", "book_stale", "no_trades"} & set(s.flags)
    assert any("BTC over 5 min" in r for s in sigs for r in s.reasons)
    # point in time: the signal at t from the events known at t is the same
    for j in (30, 200, len(grid) - 1):
        t = int(grid[j])
        cut = ev[np.maximum.accumulate(ev["ts_local"]) <= t]
        assert signals(cut, inst, np.array([t])) == [sigs[j]]


def test_real_capture_without_the_book(usdm) -> None:  # noqa: ANN001
    ev, inst = usdm
    trades = ev[ev["kind"] == Kind.TRADE]
    grid = sample_grid(ev)[::20]
    sigs = signals(trades, inst, grid)
    for s in sigs:
        assert "book_unsynced" in s.flags and not s.valid and s.decision is Decision.HOLD
        used = {v.name for v in s.votes if not v.skipped}
        assert used <= {"cvd"}
