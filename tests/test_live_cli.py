"""``flowbook record`` / ``flowbook live`` against the simulator, and their one-line errors."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flowbook.cli_live import add_parsers, run
from flowbook.replay.raw import iter_frames
from flowbook.testing import write_recording
from flowbook.testing.simulator import SimulatorThread


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("cli_src")
    out = []
    for seed, sym in enumerate(["AAAUSDT", "BBBUSDT"], 31):
        p = d / f"{sym.lower()}.gz"
        write_recording(p, 4000, seed, symbol=sym)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def sim(recordings: list[Path]):  # noqa: ANN201
    with SimulatorThread(recordings, speed=2.0, reject_symbols=["BBBUSDT"]) as s:
        yield s


def _args(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="flowbook")
    add_parsers(ap.add_subparsers(dest="command"))
    return ap.parse_args(list(argv))


def test_record_writes_a_recording_replay_reads(sim, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    rc = run(_args("record", "binance-usdm:aaausdt", "--out", str(tmp_path), "--base-url", sim.url,
                   "--duration", "1500ms"))
    assert rc == 0
    files = sorted((tmp_path / "binance-usdm" / "AAAUSDT").glob("*.gz"))
    assert files
    frames = list(iter_frames(files))
    assert any(f.payload.startswith(b'{"lastUpdateId"') for f in frames)
    assert any(b"@depth@100ms" in f.payload[:40] for f in frames)
    assert "recorded" in capsys.readouterr().err


def test_live_prints_the_table(sim, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    assert run(_args("live", "binance-usdm:AAAUSDT", "--base-url", sim.url, "--duration", "1s")) == 0
    out = capsys.readouterr().out
    for word in ("AAAUSDT", "synced", "mid", "imbalance", "OFI", "CVD", "depth", "gaps", "resyncs"):
        assert word in out


def test_live_poll_mode_prints_the_table(sim, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    """``--poll``: no WebSocket, REST snapshots (20 levels) and trades; the table as usual."""
    assert run(_args("live", "binance-usdm:AAAUSDT", "--base-url", sim.url, "--poll", "200ms",
                     "--duration", "1500ms")) == 0
    out = capsys.readouterr().out
    assert "AAAUSDT" in out and "synced" in out
    assert sim.stats["trades_requests"] >= 2


@pytest.mark.parametrize("argv, message", [
    (["live", "kucoin:BTC-USDT"], "unknown venue 'kucoin'"),
    (["live", "kraken:XBTUSD"], "not a symbol: 'XBTUSD' (kraken writes symbols like BTC/USD)"),
    (["live", "binance-usdm"], "expected VENUE:SYMBOL"),
    (["live", "binance-usdm:BTCUSDT", "--poll", "1s", "--snapshot-limit", "30"], "snapshot limit 30 not offered"),
    (["live", "binance-usdm:BTC-USDT"], "not a symbol"),
    (["live", "binance-usdm:FOOUSDT", "--base-url", "SIM"], "unknown symbol FOOUSDT on binance-usdm"),
    (["live", "binance-usdm:BBBUSDT", "--base-url", "SIM"], "subscription rejected"),
    (["record", "binance:BTCUSDT", "--out", "OUT", "--base-url", "http://127.0.0.1:9"], "cannot reach"),
    (["live", "binance:BTCUSDT", "--depth-speed", "0ms", "--base-url", "http://127.0.0.1:9"],
     "depth speed '0ms' not offered by binance"),
    (["live", "binance-usdm:BTCUSDT", "--snapshot-limit", "300"], "snapshot limit 300 not offered"),
])
def test_errors_are_one_line_and_exit_2(sim, tmp_path: Path, capsys: pytest.CaptureFixture,  # noqa: ANN001
                                        argv: list[str], message: str) -> None:
    argv = [sim.url if a == "SIM" else str(tmp_path) if a == "OUT" else a for a in argv]
    assert run(_args(*argv)) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowbook: error: ") and message in lines[0], err
    assert "Traceback" not in err


def test_ctrl_c_closes_cleanly(sim, tmp_path: Path) -> None:  # noqa: ANN001
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flowbook.cli_live", "live", "binance-usdm:AAAUSDT",
                             "--base-url", sim.url, "--record", str(tmp_path), "--verbose"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the book is synced, then press Ctrl-C
        if "event=synced" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "AAAUSDT" in out
    files = sorted(tmp_path.rglob("*.gz"))
    assert files and list(iter_frames(files))


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = ("import sys, flowbook.cli_live as c, argparse; ap = argparse.ArgumentParser(); "
            "c.add_parsers(ap.add_subparsers()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'numpy', 'numba', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
