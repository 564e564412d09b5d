"""The full feature catalog against the core features: ``replay --features all`` vs ``--features core``.

Both replays run in this process from the event archive (the JSON is parsed once, before timing), so
the figure compares the feature work itself: book + core features + Parquet output, with and without
the catalog's groups and the detectors.  Medians over ``--runs`` interleaved runs; the target is a
ratio of at most 3.

    python bench/bench_catalog.py             # USD-M capture (when ../shared/data exists) + synthetic
    python bench/bench_catalog.py --runs 9
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent.parent / "shared" / "data" / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--synthetic-updates", type=int, default=2_000_000)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    from flowbook.features.catalog import resolve_groups
    from flowbook.replay import replay
    from flowbook.testing import write_recording

    work = Path(tempfile.mkdtemp(prefix="flowbook-catalog-"))
    inputs = {}
    if CAPTURE.exists():
        inputs["usdm"] = CAPTURE
    syn = work / "synusdt.gz"
    write_recording(syn, args.synthetic_updates, 7)
    inputs["synthetic"] = syn
    groups = resolve_groups("all")
    res: dict = {"started": time.strftime("%Y%m%dT%H%M%S"), "loadavg_start": os.getloadavg(), "groups": groups,
                 "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                             "python": platform.python_version()}, "data": {}}
    for name, path in inputs.items():
        times: dict[str, list[float]] = {"core": [], "all": []}
        for mode in ("core", "all"):  # warm-up: archive written, kernels compiled
            replay([path], work / f"{name}_{mode}.parquet", groups=groups if mode == "all" else None)
        for _ in range(args.runs):
            for mode in ("core", "all"):
                t0 = time.perf_counter()
                s = replay([path], work / f"{name}_{mode}.parquet", groups=groups if mode == "all" else None)
                times[mode].append(time.perf_counter() - t0)
        core, full = statistics.median(times["core"]), statistics.median(times["all"])
        res["data"][name] = {"rows": s.rows, "level_updates": s.levels_applied, "detections": s.detections,
                             "core_s": core, "all_s": full, "ratio": full / core, "runs": times}
        print(f"{name}: {s.rows:,} rows, {s.levels_applied:,} level updates: core {core:.3f} s, "
              f"all {full:.3f} s, ratio {full / core:.2f} (target <= 3)")
    shutil.rmtree(work, ignore_errors=True)
    res["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"catalog_{res['started']}.json"
    path.write_text(json.dumps(res, indent=1))
    print(f"written {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
