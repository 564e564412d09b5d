"""Heatmap (``flowbook.heatmap``, ``flowbook.cli_heatmap``): cells equal the book's depth at sample times
(``ReferenceBook``), trade volume per cell, Parquet export, a PNG of the expected size with real content."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from flowbook.book import ReferenceBook
from flowbook.cli_heatmap import add_parser, run_heatmap
from flowbook.events import Kind
from flowbook.heatmap import NO_PRICE, Heatmap, build, render, to_parquet
from flowbook.replay.sources import load

USDM = "hftbacktest/usdm/btcusdt_20240808.gz"


@pytest.fixture(scope="module")
def usdm(data_dir: Path):  # noqa: ANN201
    loaded = load([data_dir / USDM], None, False)
    return loaded.events, loaded.instruments[0]


@pytest.fixture(scope="module")
def hm(usdm) -> Heatmap:  # noqa: ANN001
    ev, inst = usdm
    return build(ev, inst, step_ns=1_000_000_000, bin_ticks=3, max_bins=300)


def test_cells_equal_reference_book_depth(usdm, hm: Heatmap) -> None:  # noqa: ANN001
    ev, _ = usdm
    clk = ev["ts_local"].tolist()
    want = sorted({0, 1, len(hm.ts) // 3, len(hm.ts) // 2, len(hm.ts) - 1})
    book, synced, i = ReferenceBook(), False, 0
    rows = ev.tolist()
    for j in want:
        while i < len(rows) and clk[i] <= hm.ts[j]:  # sample j: every event before the first later one
            k, side, flags, _, _, _, p, q = rows[i][:8]
            if k == Kind.BOOK_SET and side != 0:
                book.set(side, p, q)
            elif k == Kind.BOOK_CLEAR:
                book.clear()
                synced = False
            if k == Kind.BOOK_SET and flags & 4:
                synced = True
            i += 1
        assert synced
        for b in range(hm.bid.shape[1]):
            ticks = range(hm.lo + b * hm.bin_ticks, hm.lo + (b + 1) * hm.bin_ticks)
            assert hm.bid[j, b] == sum(book.bids.get(x, 0) for x in ticks)
            assert hm.ask[j, b] == sum(book.asks.get(x, 0) for x in ticks)
        assert (hm.best_bid[j], hm.best_ask[j]) == (book.best_bid, book.best_ask)
    assert hm.bid.sum() > 0 and hm.ask.sum() > 0


def test_trade_volume_per_cell(usdm, hm: Heatmap) -> None:  # noqa: ANN001
    ev, _ = usdm
    tr = ev[ev["kind"] == Kind.TRADE]
    step = int(hm.ts[1] - hm.ts[0])
    j = np.searchsorted(hm.ts, tr["ts_local"], side="left")  # first sample with ts >= t
    b = (tr["price"] - hm.lo) // hm.bin_ticks
    keep = (j < len(hm.ts)) & (tr["ts_local"] > hm.ts[0] - step) & (b >= 0) & (b < hm.bid.shape[1])
    for side, grid in ((1, hm.buy), (-1, hm.sell)):
        want = np.zeros_like(grid)
        m = keep & (tr["side"] == side)
        np.add.at(want, (j[m], b[m]), tr["qty"][m])
        assert (grid == want).all()
    assert hm.buy.sum() > 0 and hm.sell.sum() > 0


def test_parquet_and_png(hm: Heatmap, tmp_path: Path) -> None:
    n = to_parquet(hm, tmp_path / "h.parquet")
    t = pq.read_table(tmp_path / "h.parquet").to_pandas()
    assert len(t) == n == int(((hm.bid | hm.ask | hm.buy | hm.sell) != 0).sum())
    assert t["bid_lots"].sum() == hm.bid.sum() and t["sell_lots"].sum() == hm.sell.sum()
    assert t["price"].min() >= hm.bin_low[0] - 1e-9 and t["best_bid"].notna().all()
    render(hm, tmp_path / "h.png", 1200, 700)
    import matplotlib.image as mpimg

    img = mpimg.imread(tmp_path / "h.png")
    assert img.shape[:2] == (700, 1200)
    rgb = (img[:, :, :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 200  # a colormap, dots and lines, not a blank canvas
    assert rgb.std() > 20


def _cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers(dest="command"))
    return run_heatmap(ap.parse_args(["heatmap", *argv]))


def test_cli_writes_png_and_parquet(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, pqf = tmp_path / "heat.png", tmp_path / "heat.parquet"
    assert _cli([str(data_dir / USDM), "--out", str(out), "--step", "5s", "--bin-ticks", "10",
                 "--parquet", str(pqf), "--size", "800x500"]) == 0
    assert out.stat().st_size > 10_000 and pqf.stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli([str(tmp_path / "missing.gz"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such recording" in err
    assert _cli([str(tmp_path / "missing.gz"), "--out", "x.png", "--bin-ticks", "0"]) == 2
    assert _cli([str(tmp_path / "missing.gz"), "--out", "x.png", "--size", "big"]) == 2


def test_unsynced_and_bad_arguments(usdm) -> None:  # noqa: ANN001
    ev, inst = usdm
    with pytest.raises(ValueError):
        build(ev[ev["kind"] == Kind.TRADE], inst)  # no snapshot
    with pytest.raises(ValueError):
        build(ev, inst, step_ns=0)
    small = build(ev[:20_000], inst, step_ns=100_000_000, bin_ticks=1, max_bins=50)
    assert small.bid.shape[1] <= 50 and (small.best_bid[small.bid.sum(1) > 0] != NO_PRICE).all()
