from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_DSN = os.environ.get("FLOWBOOK_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def shared_data() -> Path:
    env = os.environ.get("FLOWBOOK_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data()
    if not d.is_dir():
        pytest.skip(f"real recordings not found at {d} (set FLOWBOOK_SHARED_DATA to the shared/data folder)")
    return d


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The real PostgreSQL of the store tests (skips with the reason when it is not reachable)."""
    import psycopg

    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN} ({str(exc).splitlines()[0]}); "
                    "run .ci/run, which starts it, or set FLOWBOOK_TEST_PG_DSN")
    return PG_DSN


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A fresh schema name for one test, dropped afterwards."""
    import psycopg

    name = f"fbt_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# the three Binance captures the analytics twins are checked on (spot chained across 00:00 UTC)
CAPTURES = {"usdm": ["usdm/btcusdt_20240808.gz"], "spot": ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"],
            "cm": ["cm/btcusd_perp_20240808.gz"]}


@pytest.fixture(scope="module", params=sorted(CAPTURES))
def capture(request: pytest.FixtureRequest, data_dir: Path):  # noqa: ANN201
    """``(events, instrument)`` of each capture in turn."""
    from flowbook.replay.sources import load

    loaded = load([data_dir / "hftbacktest" / p for p in CAPTURES[request.param]], None, False)
    return loaded.events, loaded.instruments[0]
