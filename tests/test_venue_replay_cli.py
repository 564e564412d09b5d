"""``flowbook replay`` on each venue's real capture, with no options: the format is told from the content,
the book syncs without gaps, checksums (where the venue sends them) all verify, the book never crosses,
and feature rows come out for every symbol."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flowbook.cli import main

# (capture, format, symbols, checksums verified); figures from shared/data/README.md and docs/venues-*.md
CAPTURES = [
    ("cryptofeed/OKX.ws.1.0", "okx", 3, 290),
    ("cryptofeed/KRAKEN.ws.50.0", "kraken", 10, 4269),
    ("cryptofeed/COINBASE.ws.28.0", "coinbase", 10, 0),
    ("cryptofeed/v3-branch_28655106/BYBIT.ws.1.0", "bybit", 4, 0),
    ("nautilus_trader/bybit/xrpusdt-ob500.data.zip", "bybit", 1, 0),
]


@pytest.mark.parametrize(("capture", "fmt", "n_symbols", "checksums"), CAPTURES, ids=[c[1] + ":" + c[0].split("/")[-1]
                                                                                    for c in CAPTURES])
def test_replay_of_each_venue_capture(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      capture: str, fmt: str, n_symbols: int, checksums: int) -> None:
    out = tmp_path / "f.parquet"
    rc = main(["replay", str(data_dir / capture), "--out", str(out), "--every-event"])
    text = capsys.readouterr()
    summary = text.out + text.err
    assert rc == 0, summary
    assert fmt in summary
    rows = pl.read_parquet(out)
    assert rows["symbol"].n_unique() == n_symbols
    ok = rows.filter(pl.col("best_bid").is_not_null() & pl.col("best_ask").is_not_null())
    assert len(ok) > 0 and (ok["best_bid"] < ok["best_ask"]).all()
    for label in ("gaps", "crossed"):
        line = next(x for x in summary.splitlines() if f" {label} " in x)
        assert line.split("│")[2].strip() == "0", line
    if checksums:
        assert f"{checksums:,} verified, 0 failed" in summary
    else:
        assert "checksums" not in summary
