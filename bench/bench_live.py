"""flowbook live benchmark: how many symbols of ``depth@100ms`` + trades one process keeps up with in real
time, against the exchange simulator running in another process on 127.0.0.1.

Run on demand (not a test)::

    python bench/bench_live.py --symbols 50 200 [--seconds 20] [--warmup 5] [--profile DIR]

For each symbol count: synthetic USD-M recordings (``flowbook.testing.write_recording``) stretched so
that each symbol sends a depth diff every 100 ms on average (about 10 level updates each) and a trade
message in about one diff in ten; the simulator (its own process, so its CPU is not counted) replays
them at real time.  The client is one ``LiveRunner`` (books and the feature kernel for every symbol)
subscribing ``<s>@depth@100ms`` and ``<s>@trade`` only.  After every book is synced and ``--warmup``
seconds, it measures for ``--seconds``:

- CPU: the client process's user+system CPU time over wall time (100 % = one core);
- memory: the client's RSS at the end;
- latency: receive -> features (wall time when the feature row was computed minus the frame's receive
  time) over every row of the window, p50/p99/p99.9/max, and exchange -> receive (the simulator stamps
  ``E`` at send time, so this is socket + client queueing);
- keeping up: frames dropped, gaps, and the consumer queue at the end (a client that falls behind
  shows a growing exchange -> receive latency and a queue that does not drain).

``--profile DIR`` also writes a cProfile of the client over the measurement window
(``DIR/live_<symbols>.prof``; read it with ``python -m pstats``); the profiler itself costs CPU, so a
profiled run's CPU figure is not comparable with an unprofiled one.

Target (issue): 500 symbols under 50 % of one core, receive -> features p99 under 2 ms.  Results:
``bench/results/live_<time>.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import flowbook  # noqa: E402
from flowbook.live import LiveRunner  # noqa: E402

DIFF_MS = 100.0


# ------------------------------------------------------------------------------------------ simulator side
def _source(n: int, seconds: float, tmp: Path) -> Any:
    from flowbook.testing import write_recording
    from flowbook.testing.simulator import SimSource, load_source

    paths = []
    for i in range(n):
        p = tmp / f"b{i:03d}usdt.gz"
        # about 9 level updates a message: messages ~ updates / 9; a little more than needed
        write_recording(p, int(seconds * 1000 / DIFF_MS * 10) + 200, 1000 + i, symbol=f"B{i:03d}USDT")
        paths.append(p)
    src = load_source(paths)
    out = []
    for sym in src.symbols:  # stretch each symbol's clock: one diff per DIFF_MS on average
        fr = [f for f in src.frames if f.symbol == sym]
        t0 = fr[0].ts
        depth = [f.ts for f in fr if f.kind == "depth"]
        k = DIFF_MS * 1e6 * (len(depth) - 1) / max(1, depth[-1] - depth[0])
        out += [replace(f, ts=t0 + int((f.ts - t0) * k)) for f in fr]
    out.sort(key=lambda f: f.ts)
    return SimSource(tuple(out), src.symbols, src.futures, src.market)


async def _serve(n: int, seconds: float) -> None:
    from flowbook.testing.simulator import BinanceSimulator

    with tempfile.TemporaryDirectory() as d:
        src = _source(n, seconds, Path(d))
        async with BinanceSimulator(src, speed=1.0, min_streams=2 * n, chunk=256) as sim:
            print(json.dumps({"port": sim.port, "frames": len(src.broadcast())}), flush=True)
            await sim.done.wait()
            print(json.dumps({"done": True, "cpu_s": _cpu()}), flush=True)
            await asyncio.sleep(3600)  # until the client kills us


# -------------------------------------------------------------------------------------------- client side
def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _client(port: int, n: int, seconds: float, warmup: float,
                  profile: Path | None = None) -> dict[str, Any]:
    from flowbook.venues.binance.live import LiveConfig

    syms = [f"B{i:03d}USDT" for i in range(n)]
    cfg = LiveConfig(ws_url=f"ws://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}", depth_speed="100ms",
                     book_ticker=False, force_order=False, mark_price=False, ticker=False,
                     open_interest_interval=None, weight_budget=1e9, resync_idle=1.0)
    runner = LiveRunner(venue="binance-usdm", symbols=syms, config=cfg)
    await runner.start()
    try:
        t_sync = time.monotonic()
        while not all(runner.adapter.synced(s) for s in syms):
            if time.monotonic() - t_sync > 120:
                raise RuntimeError("symbols did not sync within 120 s")
            await asyncio.sleep(0.1)
        sync_s = time.monotonic() - t_sync
        await asyncio.sleep(warmup)
        # fresh latency windows large enough for the whole measurement
        size = int(seconds * 1000 / DIFF_MS * 4) + 4096
        runner.reset_latencies(size)
        st0 = {s: (x.messages, x.dropped, x.gaps) for s, x in runner.adapter.stats.items()}
        prof = cProfile.Profile() if profile is not None else None
        c0, w0 = _cpu(), time.monotonic()
        if prof is not None:
            prof.enable()
        await asyncio.sleep(seconds)
        if prof is not None:
            prof.disable()
        c1, w1 = _cpu(), time.monotonic()
        if prof is not None and profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            prof.dump_stats(profile / f"live_{n}.prof")
        queue_end = runner.adapter.queue_depth
        kept = [runner.latency_samples(s) for s in syms]
        feat = [k[1] for k in kept]
        exr = np.concatenate([k[0] for k in kept])
        stats = runner.adapter.stats
        msgs = sum(stats[s].messages - st0[s][0] for s in syms)
        dropped = sum(stats[s].dropped - st0[s][1] for s in syms)
        gaps = sum(stats[s].gaps - st0[s][2] for s in syms)
    finally:
        await runner.stop()
    lat = np.concatenate(feat) / 1e6
    ex = exr / 1e6
    pct = lambda a, q: float(np.percentile(a, q)) if len(a) else math.nan  # noqa: E731
    return {
        "symbols": n, "seconds": round(w1 - w0, 2), "sync_seconds": round(sync_s, 2),
        "cpu_percent_one_core": round(100 * (c1 - c0) / (w1 - w0), 1),
        "rss_mb": round(_rss_mb(), 1),
        "frames_per_second": round(msgs / (w1 - w0), 1),
        "feature_rows": int(len(lat)),
        "receive_to_features_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "p99_9": pct(lat, 99.9),
                                   "max": float(lat.max()) if len(lat) else math.nan},
        "exchange_to_receive_ms": {"p50": pct(ex, 50), "p99": pct(ex, 99), "max": float(ex.max()) if len(ex) else
                                   math.nan},
        "dropped": dropped, "gaps": gaps, "queue_at_end": queue_end,
    }


def run_one(n: int, seconds: float, warmup: float, profile: Path | None = None) -> dict[str, Any]:
    total = seconds + warmup + 30 + n * 0.05  # recording long enough for sync, warm-up and the window
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    sim = subprocess.Popen([sys.executable, __file__, "--serve", str(n), "--sim-seconds", str(total)],
                           stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert sim.stdout is not None
        head = json.loads(sim.stdout.readline())
        res = asyncio.run(_client(head["port"], n, seconds, warmup, profile))
        res["simulator_frames"] = head["frames"]
        return res
    finally:
        sim.kill()
        sim.wait()


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    vers = {d: version(d) for d in ("numpy", "numba", "aiohttp", "msgspec")}
    return {"cpu_model": model, "logical_cores": os.cpu_count(), "loadavg_end": os.getloadavg(),
            "platform": platform.platform(), "python": platform.python_version(), **vers,
            "flowbook": flowbook.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window per symbol count")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--profile", type=Path, metavar="DIR", help="write a cProfile of the client to DIR")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sim-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.sim_seconds))
        return
    from flowbook.features import FeatureEngine
    from flowbook.testing import synthetic_events  # compile the kernels before any clock starts

    ev, inst = synthetic_events(200, 1)
    FeatureEngine(inst).process(ev)
    runs = [run_one(n, args.seconds, args.warmup, args.profile) for n in args.symbols]
    out = {"benchmark": "live", "diff_interval_ms": DIFF_MS, "machine": machine(), "runs": runs,
           "profiled": args.profile is not None}
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = HERE / "results" / f"live_{stamp}.json"
    path.write_text(json.dumps(out, indent=2))
    print("| symbols | frames/s | CPU % of one core | RSS MB | rx→features p50 / p99 / p99.9 ms | "
          "ex→rx p50 / p99 ms | dropped | gaps |")
    print("|---:|---:|---:|---:|---|---|---:|---:|")
    for r in runs:
        f, e = r["receive_to_features_ms"], r["exchange_to_receive_ms"]
        print(f"| {r['symbols']} | {r['frames_per_second']:,.0f} | {r['cpu_percent_one_core']} | {r['rss_mb']:.0f} | "
              f"{f['p50']:.2f} / {f['p99']:.2f} / {f['p99_9']:.2f} | {e['p50']:.2f} / {e['p99']:.2f} | "
              f"{r['dropped']} | {r['gaps']} |")
    print(f"written {path}")


if __name__ == "__main__":
    main()
