"""The catalog's shared book pass (``features/bookpass.py``) against the groups' own passes: the columns of
``micro``, ``liquidity`` and ``cost`` are bit-identical to ``micro_series``, ``liquidity_series`` and
``cost_series`` run separately (each refreshed on its grid as the catalog documents)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flowbook.features import catalog
from flowbook.features.engine import FeatureConfig
from flowbook.features.impact import cost_series
from flowbook.features.liquidity import LiquidityConfig, liquidity_series
from flowbook.features.micro import MicroConfig, micro_series
from flowbook.replay.run import run_symbol
from flowbook.replay.sources import load
from flowbook.testing import write_recording

USDM = "hftbacktest/usdm/btcusdt_20240808.gz"
BOOK = ["micro", "liquidity", "cost"]


def rows_and_events(path: Path) -> tuple[np.ndarray, object, np.ndarray]:
    """One instrument's events and its core rows' knowledge times, as ``replay`` computes them."""
    loaded = load([path], None, False)
    ev, inst = loaded.events, loaded.instruments[0]
    ev = ev[ev["symbol"] == 0]
    _, ii = run_symbol(inst, ev, FeatureConfig()).take()
    return ev, inst, np.maximum.accumulate(ii[:, 0])


def on_grid(fn, step: int, T: np.ndarray) -> dict[str, np.ndarray]:  # noqa: ANN001
    """The separate passes' refresh rule: ``fn`` at each multiple of ``step``, carried to the rows."""
    first = -(-int(T[0]) // step) * step if len(T) else 0
    grid = np.arange(first, int(T[-1]) + 1 if len(T) else 0, step, dtype=np.int64)
    g = fn(grid)
    at = np.searchsorted(grid, T, side="right") - 1
    out = {}
    for name, col in g.items():
        o = np.full(len(T), np.nan)
        o[at >= 0] = np.asarray(col)[at[at >= 0]]
        out[name] = o
    return out


def separate(ev: np.ndarray, inst, T: np.ndarray, clock: str, cfg: catalog.CatalogConfig) -> dict:  # noqa: ANN001
    def cost(grid: np.ndarray) -> dict[str, np.ndarray]:
        cols = {c: np.full(len(grid), np.nan) for c in ("cost_buy_bps", "cost_sell_bps", "cost_buy_levels",
                                                         "cost_sell_levels")}
        for j, c in enumerate(cost_series(ev, inst, grid, cfg.cost_quote, "quote", clock=clock)):
            if c is not None:
                cols["cost_buy_bps"][j], cols["cost_sell_bps"][j] = c.buy.slippage_mid_bps, c.sell.slippage_mid_bps
                cols["cost_buy_levels"][j], cols["cost_sell_levels"][j] = c.buy.levels, c.sell.levels
        return cols

    return {
        **micro_series(ev, inst, T, MicroConfig(), clock),
        **on_grid(lambda g: liquidity_series(ev, inst, g, LiquidityConfig(), clock), cfg.liquidity_every_ns, T),
        **on_grid(cost, cfg.cost_every_ns, T),
    }


def assert_identical(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name, w in want.items():
        g = got[name]
        assert g.dtype == np.float64 and g.shape == w.shape, name
        np.testing.assert_array_equal(g, w, err_msg=name)
        assert (np.signbit(g) == np.signbit(w)).all(), name


@pytest.fixture(scope="module")
def usdm(data_dir: Path) -> tuple[np.ndarray, object, np.ndarray]:
    return rows_and_events(data_dir / USDM)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, object, np.ndarray]:
    path = tmp_path_factory.mktemp("syn") / "synusdt.gz"
    write_recording(path, 150_000, 7)
    return rows_and_events(path)


@pytest.mark.parametrize("clock", ["ts_local", "ts_exchange"])
def test_shared_pass_on_the_real_capture(usdm, clock: str) -> None:  # noqa: ANN001
    ev, inst, T = usdm
    cfg = catalog.CatalogConfig()
    got = catalog.columns(BOOK, ev, inst, T, clock, cfg)
    assert np.isfinite(got["cost_buy_bps"]).sum() > len(T) // 2 and np.isfinite(got["liq_bid_wall_price"]).any()
    assert_identical(got, separate(ev, inst, T, clock, cfg))


def test_shared_pass_on_a_synthetic_stream(synthetic) -> None:  # noqa: ANN001
    ev, inst, T = synthetic
    cfg = catalog.CatalogConfig()
    want = separate(ev, inst, T, "ts_local", cfg)
    assert_identical(catalog.columns(BOOK, ev, inst, T, "ts_local", cfg), want)
    # each group alone (its own tape) and other refresh clocks (grids that do not coincide)
    for g in BOOK:
        one = catalog.columns([g], ev, inst, T, "ts_local", cfg)
        assert_identical(one, {k: want[k] for k in one})
    other = catalog.CatalogConfig(cost_every_ns=700_000_000, liquidity_every_ns=2_300_000_000, cost_quote=2e6)
    assert_identical(catalog.columns(["cost", "liquidity", "micro"], ev, inst, T, "ts_local", other),
                     separate(ev, inst, T, "ts_local", other))


def test_shared_pass_on_a_few_rows(synthetic) -> None:  # noqa: ANN001
    ev, inst, T = synthetic
    cfg = catalog.CatalogConfig()
    for part in (T[:1], T[5:9], T[-3:]):
        assert_identical(catalog.columns(BOOK, ev, inst, part, "ts_local", cfg),
                         separate(ev, inst, part, "ts_local", cfg))
    empty = catalog.columns(BOOK, ev, inst, T[:0], "ts_local", cfg)
    assert all(len(v) == 0 for v in empty.values())

