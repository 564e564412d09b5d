"""``flowbook summary``: a real capture, a synthetic recording, the numbers it prints, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowbook.cli import main
from flowbook.cli_summary import parse_at
from flowbook.replay.sources import load
from flowbook.signals import SignalConfig, base_unit, panel, panel_row, synthesize

USDM = "hftbacktest/usdm/btcusdt_20240808.gz"
AT = "2024-08-08T23:57:00"
AT_NS = 1_723_161_420_000_000_000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowbook.cli", "summary", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "100"})


def test_summary_of_the_real_capture(data_dir: Path) -> None:
    rec = data_dir / USDM
    r = _cli(str(rec), "--at", AT, "--symbol", "btcusdt")
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "BTCUSDT (binance-usdm) at 2024-08-08 23:57:00.000 UTC" in out
    for label in ("last price", "spread", "imbalance L1", "OFI 10 s", "CVD 5 min", "VWAP", "POC", "VAH", "VAL",
                  "VPIN", "detector events", "signal", "flags:", "feed: 0 gaps"):
        assert label in out, label
    # the numbers are those of the panel and the synthesizer at that time
    loaded = load([rec], None, False)
    ev, inst = loaded.events, loaded.instruments[0]
    row = panel_row(panel(ev, inst, np.array([AT_NS])), 0)
    sig = synthesize(row, SignalConfig(), base_unit(inst), AT_NS)
    assert f"{row['mid']:,.1f}" in out and f"{row['poc']:,.1f}" in out
    assert f"{row['cvd_300s']:+,.4g} BTC" in out
    assert f"signal {sig.decision.name} strength {sig.strength:.2f}" in out
    for reason in sig.reasons:
        assert reason[:40] in out.replace("\n│   ", " ")


def test_summary_of_a_synthetic_recording(tmp_path: Path) -> None:
    rec = tmp_path / "syn.gz"
    r = subprocess.run([sys.executable, "-m", "flowbook.cli", "synth", "--out", str(rec), "--updates", "20000",
                        "--seed", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = _cli(str(rec), "--at", "end-2s", "--events", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "SYNUSDT (binance-usdm)" in r.stdout and "OFI 10 s" in r.stdout
    assert any(f"signal {d}" in r.stdout for d in ("LONG", "SHORT", "HOLD"))
    early = _cli(str(rec), "--at", "start+1ns")  # the snapshot, no trade yet: flagged, not a quiet HOLD
    assert early.returncode == 0, early.stderr[-2000:]
    # trade components (2.0 of 5.0) skipped, momentum (0.5) has no 60 s history: 50 % of the weight left
    assert "no_trades" in early.stdout and "momentum_undefined" in early.stdout and "data 50%" in early.stdout


def test_before_the_snapshot_is_not_valid(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(data_dir / USDM), "--at", "start+1ms"]) == 0
    out = capsys.readouterr().out
    assert "NOT VALID" in out and "book_unsynced" in out and "insufficient_data" in out
    assert "no signal: only" in out


def test_parse_at() -> None:
    assert parse_at(AT, 0, 1) == AT_NS
    assert parse_at(AT + "Z", 0, 1) == AT_NS == parse_at(str(AT_NS), 0, 1)
    assert parse_at("start+90s", 10, 99) == 10 + 90 * 10**9 and parse_at("+1ms", 10, 99) == 10 + 10**6
    assert parse_at("end-30s", 0, 40 * 10**9) == 10 * 10**9 == parse_at("-30s", 0, 40 * 10**9)
    with pytest.raises(ValueError, match="not a time"):
        parse_at("yesterday", 0, 1)


@pytest.fixture(scope="module")
def synth_rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flowbook.testing import write_recording

    rec = tmp_path_factory.mktemp("summary") / "syn.gz"
    write_recording(rec, 3000, 7)
    return rec


@pytest.mark.parametrize(("args", "message"), [
    (["{missing}"], "no such recording: "),
    (["{rec}", "--at", "soon"], "--at 'soon': not a time"),
    (["{rec}", "--at", "2030-01-01T00:00:00"], "is outside the recording"),
    (["{rec}", "--symbol", "ETHUSDT"], "symbol 'ETHUSDT' not in the recording (SYNUSDT)"),
    (["{rec}", "--config", "{bad_toml}"], "bad.toml: not valid TOML"),
    (["{rec}", "--config", "{bad_key}"], "key.toml: unknown signal component 'nope'"),
    (["{text}"], "cannot tell the recording format"),
])
def test_bad_input_is_one_line(args: list[str], message: str, synth_rec: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.toml").write_text("entry = \n")
    (tmp_path / "key.toml").write_text("[components.nope]\nweight = 1\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    paths = {"rec": synth_rec, "missing": tmp_path / "none.gz", "bad_toml": tmp_path / "bad.toml",
             "bad_key": tmp_path / "key.toml", "text": tmp_path / "notes.txt"}
    code = main(["summary", *(a.format(**paths) for a in args)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("flowbook summary: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_help_stays_light() -> None:
    code = "import sys, flowbook.cli as c; c._parser(); print(sorted(m for m in ('numba', 'polars', 'rich') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "flowbook.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert "summary" in r.stdout
