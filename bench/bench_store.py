"""flowbook store benchmark: ingest rows/s (Parquet, PostgreSQL COPY) and typical query latency.

Run on demand (not a test)::

    python bench/bench_store.py [--quick] [--runs 5] [--query-runs 20] [--pg-dsn DSN]

Data: a day of two synthetic symbols from ``flowbook.testing.synthetic_market`` (seeds 1 and 2; the
generator's clock stretched to 24 h), their core features computed by ``FeatureEngine`` (one row per
depth message).  Every figure is the median of its runs (min and max kept); ingest runs start from an
empty store each time.  Results: ``bench/results/store_<time>.json`` and a markdown table on stdout.
See bench/README.md ("Store benchmark").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from flowbook.events import Kind  # noqa: E402
from flowbook.features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine  # noqa: E402
from flowbook.store import Batch, ParquetStore, PostgresStore, event_batches, feature_batches  # noqa: E402
from flowbook.store.convert import config_hash  # noqa: E402
from flowbook.testing.synthetic import SyntheticParams, synthetic_market  # noqa: E402

DAY0 = 1_723_075_200_000_000_000  # 2024-08-08T00:00:00Z
DAY_NS = 86_400 * 10**9


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def day_of_symbol(symbol: str, seed: int, updates: int) -> tuple[np.ndarray, Any]:
    """Events of one symbol, the generator's clock stretched so the run spans one UTC day."""
    mk = synthetic_market(updates, seed, SyntheticParams(p_trade=1.0), symbol)
    ev = mk.events()
    for col in ("ts_local", "ts_exchange"):
        t = ev[col].astype(np.float64)
        t0, span = t.min(), t.max() - t.min()
        ev[col] = DAY0 + ((t - t0) * ((DAY_NS - 10**9) / span)).astype(np.int64)
    return ev, mk.instrument


def dataset(quick: bool) -> dict[str, Any]:
    t = time.perf_counter()
    sizes = [("SYNAUSDT", 1, 2_000_000 if quick else 10_000_000), ("SYNBUSDT", 2, 400_000 if quick else 2_000_000)]
    events, insts, feats = [], [], []
    cfg = FeatureConfig()
    for sid, (sym, seed, n) in enumerate(sizes):
        ev, inst = day_of_symbol(sym, seed, n)
        eng = FeatureEngine(inst, cfg)
        eng.process(ev)
        eng.finish()
        f, ii = eng.take()
        ev["symbol"] = sid
        events.append(ev)
        insts.append(inst)
        feats.append((sym, f, ii))
    ev = np.concatenate(events)
    return {"events": ev, "instruments": insts, "features": feats, "config": cfg,
            "seconds": time.perf_counter() - t,
            "rows": {"events": len(ev), "trades": int((ev["kind"] == Kind.TRADE).sum()),
                     "book_deltas": int(((ev["kind"] == Kind.BOOK_SET) | (ev["kind"] == Kind.BOOK_CLEAR)).sum()),
                     "features": sum(len(ii) for _, _, ii in feats)}}


def timed(fn: Callable[[], Any], runs: int, setup: Callable[[], Any] | None = None) -> list[float]:
    out = []
    for _ in range(runs):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def query_figure(fn: Callable[[], Any], runs: int) -> dict[str, Any]:
    """One warm-up run (which gives the row count), then ``runs`` timed runs."""
    df = fn()
    return {"rows_returned": df.height, "seconds": summary(timed(fn, runs))}


def rate(rows: int, secs: list[float]) -> dict[str, float]:
    s = summary(secs)
    return {"rows": rows, "rows_per_s": rows / s["median"], "best_rows_per_s": rows / s["min"],
            "worst_rows_per_s": rows / s["max"], "seconds": s}


def bench_parquet(data: dict[str, Any], work: Path, runs: int, qruns: int) -> dict[str, Any]:
    ev, insts = data["events"], data["instruments"]
    res: dict[str, Any] = {}
    root = work / "pq"
    h = config_hash(data["config"])
    groups = {
        "events": event_batches(ev, insts, ["events"]),
        "trades": event_batches(ev, insts, ["trades"]),
        "features": feature_batches(data["features"], insts, FEATURE_COLUMNS, 0, h),
    }
    for name, batches in groups.items():
        rows = sum(b.rows for b in batches)
        secs = timed(lambda b=batches: ParquetStore(root).write(b), runs, lambda: shutil.rmtree(root, ignore_errors=True))
        res[f"ingest_{name}"] = rate(rows, secs)
    secs = timed(lambda: ParquetStore(root).write(event_batches(ev, insts, ["events"])), runs,
                 lambda: shutil.rmtree(root, ignore_errors=True))
    res["ingest_events_from_event_array"] = rate(len(ev), secs)
    for batches in groups.values():  # the store the queries read: everything once
        ParquetStore(root).write(batches)
    res["bytes_on_disk"] = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    st = ParquetStore(root)
    sym = insts[0].symbol
    since = DAY0 + DAY_NS - 15 * 60 * 10**9  # "now" is the end of the day
    q1 = ("SELECT * FROM features WHERE venue = ? AND symbol = ? AND ts >= make_timestamp_ns(?) ORDER BY ts",
          [insts[0].venue, sym, since])
    # the bars API: the 1-minute bar fragments written with the trades, merged per minute by the view
    venue = insts[0].venue
    res["query_trades_1min_bars_day"] = query_figure(lambda: st.bars(sym, DAY0, DAY0 + DAY_NS, "1m", venue), qruns)
    # for reference: the same bars aggregated from the raw trades on the fly
    q2 = ("SELECT date_trunc('minute', ts_exchange) AS minute, arg_min(price, ts_exchange) AS open, "
          "max(price) AS high, min(price) AS low, arg_max(price, ts_exchange) AS close, sum(qty) AS volume, "
          "count(*) AS trades FROM trades WHERE symbol = ? AND date = DATE '2024-08-08' GROUP BY minute ORDER BY minute",
          [sym])
    res["query_features_last_15min"] = query_figure(lambda: st.query(*q1), qruns)
    res["query_trades_1min_bars_day_from_trades"] = query_figure(lambda: st.query(*q2), qruns)
    # a new process-like first query: fresh connection, views created, then the query
    secs = timed(lambda: ParquetStore(root).query(*q1), max(5, qruns // 4))
    res["query_features_last_15min_cold_connection"] = {"seconds": summary(secs)}
    st.close()
    return res


def bench_postgres(data: dict[str, Any], dsn: str, runs: int, qruns: int) -> dict[str, Any]:
    ev, insts = data["events"], data["instruments"]
    schema = f"fb_bench_{os.getpid()}"
    res: dict[str, Any] = {}
    stores = [PostgresStore(dsn, schema)]
    st = stores[0]
    res["server"] = st.query("SELECT version() AS v")["v"][0]
    res["timescaledb"] = st.timescale()
    h = config_hash(data["config"])
    deltas = event_batches(ev[ev["symbol"] == 0], insts[:1], ["book_deltas"])[0]
    n = min(deltas.rows, 2_000_000)
    deltas = deltas.slice(slice(0, n))
    groups: dict[str, list[Batch]] = {
        "book_deltas": [deltas],
        "trades": event_batches(ev, insts, ["trades"]),
        "features": feature_batches(data["features"], insts, FEATURE_COLUMNS, 0, h),
    }

    def reset() -> None:  # a fresh, migrated schema
        stores[0].conn().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        stores[0].close()
        stores[0] = PostgresStore(dsn, schema)

    try:
        for name, batches in groups.items():
            rows = sum(b.rows for b in batches)
            # a first import: every day is new, so each day is bulk-loaded (primary key built once)
            secs = timed(lambda b=batches: stores[0].write(b), runs, reset)
            res[f"ingest_{name}"] = rate(rows, secs)
            secs = timed(lambda b=batches: stores[0].write(b), runs)  # all stored: staged + ON CONFLICT
            res[f"reimport_{name}_all_duplicates"] = rate(rows, secs)
            # the live path: the days exist, rows arrive in time order in writes of 200,000 rows
            # (each its own transaction; the primary key is kept up row by row)
            ordered = [b.slice(np.argsort(b.columns[b.table.time], kind="stable")) for b in batches]
            head = [b.slice(slice(0, 1000)) for b in ordered]
            tail = [b.slice(slice(1000, None)) for b in ordered]

            def appends(tail: list[Batch] = tail) -> None:
                for b in tail:
                    for lo in range(0, b.rows, 200_000):
                        stores[0].write(b.slice(slice(lo, lo + 200_000)))

            def reset_head(head: list[Batch] = head) -> None:
                reset()
                stores[0].write(head)

            secs = timed(appends, runs, reset_head)
            res[f"append_{name}_existing_days_200k_writes"] = rate(sum(b.rows for b in tail), secs)
        reset()
        st = stores[0]
        for batches in groups.values():
            st.write(batches)
        st.conn().execute(f"ANALYZE {schema}.features; ANALYZE {schema}.trades; ANALYZE {schema}.trade_bars_1m")
        iid = st.query("SELECT instrument_id FROM instruments WHERE symbol = %s", (insts[0].symbol,))["instrument_id"][0]
        since = DAY0 + DAY_NS - 15 * 60 * 10**9
        q1 = ("SELECT * FROM features WHERE instrument_id = %s AND config_hash = %s AND ts >= %s ORDER BY ts",
              (iid, h, since))
        # open/close by index lookups of each minute's first and last trade: on PostgreSQL about twice
        # as fast as (array_agg(price ORDER BY ts))[1]
        q2 = ("WITH g AS (SELECT ts_exchange / 60000000000 AS minute, min(ts_exchange) AS t0, max(ts_exchange) AS t1, "
              "max(price) AS high, min(price) AS low, sum(qty) AS volume, count(*) AS trades FROM trades "
              "WHERE instrument_id = %(i)s AND ts_exchange >= %(a)s AND ts_exchange < %(b)s GROUP BY 1) "
              "SELECT g.minute, o.price AS open, high, low, c.price AS close, volume, trades FROM g "
              "JOIN LATERAL (SELECT price FROM trades WHERE instrument_id = %(i)s AND ts_exchange = g.t0 "
              "ORDER BY trade_id LIMIT 1) o ON true JOIN LATERAL (SELECT price FROM trades WHERE instrument_id = "
              "%(i)s AND ts_exchange = g.t1 ORDER BY trade_id DESC LIMIT 1) c ON true ORDER BY 1",
              {"i": iid, "a": DAY0, "b": DAY0 + DAY_NS})
        sym = insts[0].symbol
        res["query_features_last_15min"] = query_figure(lambda: st.query(*q1), qruns)
        # the same query through psycopg's fetchall (one Python object per value): the path before
        res["query_features_last_15min_fetchall"] = query_figure(lambda: st._query(*q1, copy=False),
                                                                 max(5, qruns // 4))
        # the bars API: trade_bars_1m, kept at ingest in the trades' transaction
        res["query_trades_1min_bars_day"] = query_figure(lambda: st.bars(sym, DAY0, DAY0 + DAY_NS, "1m"), qruns)
        # for reference: aggregated from the raw trades on the fly
        res["query_trades_1min_bars_day_from_trades"] = query_figure(lambda: st.query(*q2), max(5, qruns // 4))
    finally:
        stores[0].conn().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        stores[0].close()
    return res


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    vers = {p: version(p) for p in ("numpy", "pyarrow", "polars", "duckdb", "psycopg")}
    return {"cpu_model": model, "logical_cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "platform": platform.platform(), "python": platform.python_version(), **vers}


def table(res: dict[str, Any]) -> str:
    pq_, pg = res["parquet"], res.get("postgres", {})
    lines = ["| figure | Parquet + DuckDB | PostgreSQL |", "|---|---:|---:|"]

    def r(d: dict[str, Any], k: str) -> str:
        return f"{d[k]['rows_per_s'] / 1e6:.2f} M rows/s" if k in d else "-"

    def q(d: dict[str, Any], k: str) -> str:
        return f"{d[k]['seconds']['median'] * 1e3:.1f} ms ({d[k]['rows_returned']:,} rows)" if k in d else "-"

    rows = res["dataset"]["rows"]
    deltas = pg.get("ingest_book_deltas", {}).get("rows", 0)
    lines += [
        f"| ingest normalized events ({rows['events']:,} rows, EVENT_DTYPE) | {r(pq_, 'ingest_events')} | - |",
        f"| ingest book deltas (first {deltas:,} rows), new day | - | {r(pg, 'ingest_book_deltas')} |",
        f"| ingest trades ({rows['trades']:,} rows, exact decimals, + 1-minute bars), new day | "
        f"{r(pq_, 'ingest_trades')} | {r(pg, 'ingest_trades')} |",
        f"| ingest feature samples ({rows['features']:,} rows, 44 columns), new day | {r(pq_, 'ingest_features')} | "
        f"{r(pg, 'ingest_features')} |",
        f"| ingest events with conversion from the EVENT_DTYPE array | {r(pq_, 'ingest_events_from_event_array')} | - |",
        f"| append book deltas to existing days, 200k-row writes | - | {r(pg, 'append_book_deltas_existing_days_200k_writes')} |",
        f"| append trades to existing days, 200k-row writes | - | {r(pg, 'append_trades_existing_days_200k_writes')} |",
        f"| append features to existing days, 200k-row writes | - | {r(pg, 'append_features_existing_days_200k_writes')} |",
        f"| re-import of trades already stored (ON CONFLICT) | - | {r(pg, 'reimport_trades_all_duplicates')} |",
        f"| last 15 min of features, one symbol | {q(pq_, 'query_features_last_15min')} | "
        f"{q(pg, 'query_features_last_15min')} |",
        f"| ... the same through psycopg fetchall (before) | - | {q(pg, 'query_features_last_15min_fetchall')} |",
        f"| a day of 1-minute bars, one symbol (bars kept at ingest) | {q(pq_, 'query_trades_1min_bars_day')} | "
        f"{q(pg, 'query_trades_1min_bars_day')} |",
        f"| ... aggregated from the day's raw trades instead | {q(pq_, 'query_trades_1min_bars_day_from_trades')} | "
        f"{q(pg, 'query_trades_1min_bars_day_from_trades')} |",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a fifth of the data")
    ap.add_argument("--runs", type=int, default=5, help="timed ingest runs per figure (default 5)")
    ap.add_argument("--query-runs", type=int, default=20, help="timed runs per query (default 20)")
    ap.add_argument("--pg-dsn", default=os.environ.get("FLOWBOOK_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    started = time.strftime("%Y%m%dT%H%M%S")
    res: dict[str, Any] = {"started": started, "loadavg_start": os.getloadavg(), "machine": machine(),
                           "settings": vars(args) | {"out": str(args.out)}}
    data = dataset(args.quick)
    res["dataset"] = {"rows": data["rows"], "build_seconds": data["seconds"], "symbols": 2,
                      "source": "synthetic_market seeds 1 and 2, p_trade=1.0, clock stretched to 2024-08-08 UTC"}
    print(f"dataset: {data['rows']} ({data['seconds']:.1f} s)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="flowbook-bench-store-") as work:
        res["parquet"] = bench_parquet(data, Path(work), args.runs, args.query_runs)
    print("parquet done", file=sys.stderr)
    if not args.no_postgres:
        res["postgres"] = bench_postgres(data, args.pg_dsn, args.runs, args.query_runs)
    res["loadavg_end"] = os.getloadavg()
    res["table"] = table(res)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"store_{started}{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(res, indent=1, default=str))
    print(res["table"])
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
