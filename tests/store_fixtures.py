"""Helpers of the store tests (the PostgreSQL fixtures ``pg_dsn``/``pg_schema`` are in conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flowbook.events import Instrument
from flowbook.store import Batch

CLOSED_DSN = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
SRC = str(Path(__file__).resolve().parents[1] / "src")
TESTS = str(Path(__file__).resolve().parent)
INST = Instrument("binance-usdm", "BTCUSDT", "0.1", "0.001")
T0 = 1_723_075_200_000_000_000  # 2024-08-08T00:00:00Z


def trades(n: int, start: int = 0, inst: Instrument = INST, t0: int = T0, step_ns: int = 1_000_000) -> Batch:
    """``n`` deterministic trades with ids ``start..start+n-1``, one every ``step_ns``."""
    i = np.arange(start, start + n, dtype=np.int64)
    rng = np.random.default_rng(start)
    return Batch.make("trades", inst, {
        "ts_exchange": t0 + i * step_ns, "ts_local": t0 + i * step_ns + 1_234_567 + (i % 7),
        "trade_id": 1_000_000 + i, "side": np.where(i % 2 == 0, 1, -1),
        "price": 600_000 + rng.integers(-5_000, 5_000, n), "qty": rng.integers(1, 50_000, n),
        "flags": np.full(n, 8)})


def run_script(code: str, *args: str) -> subprocess.Popen:
    """A Python subprocess running ``code`` with flowbook importable, stdout piped line by line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, TESTS, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-u", "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def read_until(proc: subprocess.Popen, count: int, timeout: float = 120.0) -> list[str]:
    """Lines of ``proc`` until ``count`` have arrived (fails if it exits or hangs first)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while len(lines) < count:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"writer exited early (rc={proc.wait()}): {err[-2000:]}")
        lines.append(line.strip())
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("writer too slow")
    return lines


def kill_9(proc: subprocess.Popen, seen: list[str]) -> int:
    """SIGKILL ``proc``; the number of lines it printed in all (those read plus any still in the pipe)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rest = proc.stdout.read() if proc.stdout else ""
    return len(seen) + len(rest.split())
