"""``flowbook query``: SQL on the store, printed as a table or written as CSV / Parquet."""

from __future__ import annotations

import argparse
import sys

import polars as pl

from .errors import StoreError
from .uri import open_store

__all__ = ["run_query"]


def run_query(args: argparse.Namespace) -> int:
    if args.out_format == "parquet" and args.out is None:
        raise StoreError("--format parquet needs --out FILE")
    store = open_store(args.store)
    try:
        df = store.query(args.sql)
    finally:
        store.close()
    if args.out_format == "table":
        with pl.Config(tbl_rows=max(1, args.max_rows), tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60,
                       tbl_hide_dataframe_shape=True):
            text = str(df.head(args.max_rows))
        print(text)
        more = f", showing {args.max_rows}" if df.height > args.max_rows else ""
        print(f"({df.height:,} rows{more})", file=sys.stderr)
        if args.out is not None:
            args.out.write_text(text + "\n")
        return 0
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out_format == "csv":
        if args.out is None:
            sys.stdout.write(_csv_ready(df).write_csv())
        else:
            _csv_ready(df).write_csv(args.out)
    else:
        df.write_parquet(args.out, compression="zstd")
    if args.out is not None:
        print(f"wrote {df.height:,} rows to {args.out}", file=sys.stderr)
    return 0


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    """Nested columns (lists, structs) as their text: CSV holds only scalars."""
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    return df.with_columns(pl.col(c).map_elements(str, return_dtype=pl.String) for c in nested) if nested else df
