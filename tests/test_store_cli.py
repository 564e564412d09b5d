"""``flowbook replay --store`` and ``flowbook query`` end to end, on both stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from store_fixtures import CLOSED_DSN, SRC

from flowbook.cli import main
from flowbook.events import Kind
from flowbook.replay.sources import load
from flowbook.testing import write_recording


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "syn.gz"
    write_recording(path, 20_000, seed=4)
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_replay_into_parquet_store_then_query(recording: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store, out = f"parquet:{tmp_path / 'store'}", tmp_path / "f.parquet"
    rc, text, _ = _run(capsys, "replay", str(recording), "--out", str(out), "--store", store, "--quiet")
    assert rc == 0 and "stored events" in text
    ev = load([recording], None, False).events
    n_trades = int((ev["kind"] == Kind.TRADE).sum())
    rc, csv, _ = _run(capsys, "query", "SELECT (SELECT count(*) FROM trades) AS t, (SELECT count(*) FROM events) AS e, "
                                       "(SELECT count(*) FROM features) AS f", "--store", store, "--format", "csv")
    assert rc == 0 and csv.splitlines() == ["t,e,f", f"{n_trades},{len(ev)},{pl.read_parquet(out).height}"]
    # the stored features are the replay's features
    res = tmp_path / "q.parquet"
    rc, _, _ = _run(capsys, "query", "SELECT epoch_ns(ts) AS ts_local, ofi, mid FROM features ORDER BY ts, seq",
                    "--store", store, "--format", "parquet", "--out", str(res))
    assert rc == 0
    want = pl.read_parquet(out).select("ts_local", "ofi", "mid").sort("ts_local", maintain_order=True)
    assert pl.read_parquet(res).equals(want)
    rc, table, _ = _run(capsys, "query", "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol", "--store", store)
    assert rc == 0 and "SYNUSDT" in table and str(n_trades) in table
    # the same replay again adds nothing
    rc, text, _ = _run(capsys, "replay", str(recording), "--out", str(out), "--store", store, "--quiet")
    assert rc == 0 and "stored events 0, trades 0, features 0 rows" in text


def test_replay_into_postgres_then_query(recording: Path, tmp_path: Path, pg_dsn: str, pg_schema: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store, out = f"{pg_dsn}?schema={pg_schema}", tmp_path / "f.parquet"
    rc, text, _ = _run(capsys, "replay", str(recording), "--out", str(out), "--store", store, "--quiet")
    assert rc == 0 and "book_deltas" in text
    ev = load([recording], None, False).events
    deltas = int(((ev["kind"] == Kind.BOOK_SET) | (ev["kind"] == Kind.BOOK_CLEAR)).sum())
    rc, csv, _ = _run(capsys, "query", "SELECT (SELECT count(*) FROM book_deltas) AS d, "
                                       "(SELECT count(*) FROM features_v WHERE symbol = 'SYNUSDT') AS f",
                      "--store", store, "--format", "csv")
    assert rc == 0 and csv.splitlines() == ["d,f", f"{deltas},{pl.read_parquet(out).height}"]
    rc, text, _ = _run(capsys, "replay", str(recording), "--out", str(out), "--store", store, "--quiet")
    assert rc == 0 and "book_deltas 0" in text and "features 0" in text


@pytest.mark.parametrize("argv, message", [
    (["query", "SELEC nonsense", "--store", "parquet:{tmp}"], "syntax error"),
    (["query", "SELECT * FROM no_such_table", "--store", "parquet:{tmp}"], "no_such_table"),
    (["query", "SELECT 1", "--store", "parquet:{tmp}", "--format", "parquet"], "needs --out"),
    (["query", "SELECT 1", "--store", CLOSED_DSN], "cannot connect to PostgreSQL"),
    (["query", "SELECT 1", "--store", "mysql://x/y"], "unknown store URI"),
])
def test_query_errors_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("flowbook: error: ") and message in err


def test_replay_with_unreachable_store_fails_before_work(recording: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.parquet"
    rc, _, err = _run(capsys, "replay", str(recording), "--out", str(out), "--store", CLOSED_DSN, "--quiet")
    assert rc == 2 and "cannot connect to PostgreSQL" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_flowbook_command(tmp_path: Path) -> None:
    """The real entry point in a fresh process: output, exit codes, no traceback."""
    env_cmd = [sys.executable, "-m", "flowbook.cli", "query"]
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FLOWBOOK_HOME": str(tmp_path)}
    ok = subprocess.run([*env_cmd, "SELECT 41 + 1 AS answer", "--format", "csv"], capture_output=True, text=True,
                        env=env, timeout=120)
    assert ok.returncode == 0 and ok.stdout.splitlines() == ["answer", "42"]
    bad = subprocess.run([*env_cmd, "SELECT FROM WHERE"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("flowbook: error:")
