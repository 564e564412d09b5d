from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data() -> Path:
    env = os.environ.get("FLOWBOOK_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data()
    if not d.is_dir():
        pytest.skip(f"real recordings not found at {d} (set FLOWBOOK_SHARED_DATA to the shared/data folder)")
    return d
