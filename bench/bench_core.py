"""flowbook core benchmark: L2 level updates per second on one core, beside the peers, in one run.

Run on demand (not a test)::

    python bench/bench_core.py [--quick] [--runs 5] [--core N]

Every figure is the median of ``--runs`` timed runs after one warm-up, with min and max, measured in
its own subprocess pinned to one CPU (single-threaded libraries) so that its peak RSS is its own.
See bench/README.md for what each figure means.  Results: ``bench/results/core_<time>.json`` and a
markdown table on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import flowbook  # noqa: E402
from flowbook.events import EVENT_DTYPE, Flag, Instrument, Kind  # noqa: E402
from flowbook.features import FeatureConfig, FeatureEngine  # noqa: E402
from flowbook.features import nb as fk  # noqa: E402

CAPTURE = Path("/work/shared/data/hftbacktest/usdm/btcusdt_20240808.gz")
PEER_PY = HERE / ".venv-peers" / "bin" / "python"
ENV_1CORE = {"POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
             "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


# ---------------------------------------------------------------------------------------------- helpers
def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def level_updates(ev: np.ndarray) -> int:
    """BOOK_SET events with a side after the (first) snapshot: the level updates applied."""
    return int(np.count_nonzero((ev["kind"] == Kind.BOOK_SET) & (ev["side"] != 0)
                                & ((ev["flags"] & Flag.SNAPSHOT) == 0)))


def depth_only(ev: np.ndarray) -> np.ndarray:
    return ev[(ev["kind"] == Kind.BOOK_SET) | (ev["kind"] == Kind.BOOK_CLEAR)]


def scale(step: str) -> tuple[float, float]:
    """``(num, den)`` with ``step = num / den``, as the feature kernel converts ticks to prices."""
    d = Decimal(step)
    places = max(0, -int(d.normalize().as_tuple().exponent))
    return float(int(d * 10**places)), float(10**places)


def write_npz(ev: np.ndarray, inst: Instrument, path: Path) -> int:
    """The peers' input contract (bench/peers/README.md) from the snapshot and level updates in ``ev``."""
    snap = (ev["kind"] == Kind.BOOK_SET) & ((ev["flags"] & Flag.SNAPSHOT) != 0)
    if np.count_nonzero(ev["kind"] == Kind.BOOK_CLEAR) != 1:
        raise SystemExit("the peer contract needs exactly one snapshot")
    pn, pd = scale(inst.tick_size)
    qn, qd = scale(inst.lot_size)
    body = ev[np.flatnonzero(snap)[-1] + 1:]
    body = body[body["kind"] == Kind.BOOK_SET]
    eom = np.flatnonzero(body["flags"] & Flag.END_OF_MESSAGE)
    real = body["side"] != 0  # an empty diff is one side-0 event: a message with no update
    msg_end = np.cumsum(real)[eom]
    upd = body[real]
    arrays: dict[str, np.ndarray] = {"side": upd["side"].astype(np.int8), "msg_end": msg_end.astype(np.int64),
                                     "price": upd["price"] * pn / pd, "qty": upd["qty"] * qn / qd}
    for name, s in (("bid", 1), ("ask", -1)):
        lv = ev[snap & (ev["side"] == s)]
        arrays[f"snap_{name}_px"], arrays[f"snap_{name}_qty"] = lv["price"] * pn / pd, lv["qty"] * qn / qd
    np.savez(path, **arrays)
    return len(upd)


def run_engine(ev: np.ndarray, inst: Instrument, interval_ns: int = 0) -> tuple[np.ndarray, np.ndarray]:
    eng = FeatureEngine(inst, FeatureConfig(interval_ns=interval_ns))
    eng.process(ev)
    eng.finish()
    return eng.take()


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def load_events(work: Path, name: str) -> tuple[np.ndarray, Instrument]:
    meta = json.loads((work / f"{name}.json").read_text())
    return np.load(work / f"{name}.npy"), Instrument(**meta)


# ----------------------------------------------------------------------------- phases (in a subprocess)
def phase_engine(work: Path, data: str, runs: int, user: bool, interval_ns: int = 0) -> dict[str, Any]:
    ev, inst = load_events(work, data)
    if user:  # exactly the peers' input: snapshot + level updates
        ev = depth_only(ev)
    n = level_updates(ev)
    times, (f, _) = timed(lambda: run_engine(ev, inst, interval_ns), runs)
    res: dict[str, Any] = {"updates": n, "events": len(ev), "rows": len(f), "seconds": summary(times),
                           "rate": summary([n / t for t in times])}
    if user:  # read-only cross-check: sum of best bid + best ask per message, the snapshot row skipped
        bid, ask = np.nan_to_num(f[1:, fk.C_BEST_BID]), np.nan_to_num(f[1:, fk.C_BEST_ASK])  # empty: 0.0
        checksum = 0.0
        for bb, ba in zip(bid.tolist(), ask.tolist(), strict=True):  # a plain left fold, as the peers
            checksum += bb + ba
        res["checksum"] = checksum
    return res


def phase_e2e(work: Path, data: str, runs: int, archive: bool) -> dict[str, Any]:
    from flowbook.replay.run import replay

    src = CAPTURE if data == "usdm" else work / "synusdt_raw.gz"
    out = work / f"e2e_{data}_{'archive' if archive else 'raw'}" / "features.parquet"
    summaries = []

    def once() -> Any:
        s = replay([src], out, use_archive=archive)
        summaries.append(s)
        return s

    times, s = timed(once, runs)  # with the archive: the warm-up run writes it, timed runs read it
    if s.gaps or s.crossed or s.from_archive != archive:
        raise SystemExit(f"unexpected replay summary: {s}")
    return {"updates": s.levels_applied, "rows": s.rows, "seconds": summary(times),
            "rate": summary([s.levels_applied / t for t in times]),
            "parse_seconds": summary([x.parse_seconds for x in summaries[1:]])}


def phase_compile(work: Path) -> dict[str, Any]:
    ev, inst = load_events(work, "small")
    t0 = time.perf_counter()
    run_engine(ev, inst)
    t1 = time.perf_counter()
    run_engine(ev, inst)
    return {"first_call_s": t1 - t0, "second_call_s": time.perf_counter() - t1,
            "cache_dir": os.environ.get("NUMBA_CACHE_DIR", "")}


# ------------------------------------------------------------------------------------------ the driver
def vm_hwm_mb() -> float:
    """Peak RSS of this process image (``VmHWM``; starts afresh at exec, unlike ``ru_maxrss``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(cmd: list[str], core: int, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run ``cmd`` pinned to ``core``; returns (stdout, peak RSS in MB of that child)."""
    full_env = {**os.environ, **ENV_1CORE, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env,
                             preexec_fn=lambda: os.sched_setaffinity(0, {core}))
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err.read().decode()[-4000:]}")
        return out.read().decode(), usage.ru_maxrss / 1024


def child_phase(args: argparse.Namespace, name: str, **extra: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--work", str(args.work),
           "--runs", str(args.runs)]
    t0 = time.perf_counter()
    out, rss = run_child(cmd, args.core, extra or None)
    res = json.loads(out.strip().splitlines()[-1])
    # the child's own high-water mark: wait4's ru_maxrss also counts the parent's RSS at the fork
    res["peak_rss_mb"], res["wall_s"] = res.pop("vm_hwm_mb", rss), time.perf_counter() - t0
    print(f"  {name}: {json.dumps({k: v for k, v in res.items() if k in ('rate', 'first_call_s')})}",
          file=sys.stderr)
    return res


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Events (.npy), the synthetic raw recording and the peers' .npz files in the work directory."""
    from flowbook.replay.sources import load
    from flowbook.testing import synthetic_events, write_recording

    work: Path = args.work
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    loaded = load([CAPTURE], None, False)
    sets = {"usdm": (loaded.events, loaded.instruments[0])}
    info["usdm_load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sets["synthetic"] = synthetic_events(args.n_engine, 1)
    info["synthetic_generate_s"] = time.perf_counter() - t0
    sets["small"] = synthetic_events(20_000, 3)
    for name, (ev, inst) in sets.items():
        assert ev.dtype == EVENT_DTYPE
        np.save(work / f"{name}.npy", ev)
        (work / f"{name}.json").write_text(json.dumps(asdict(inst)))
        if name != "small":
            d = depth_only(ev)
            msgs = int(np.count_nonzero(d["flags"] & Flag.END_OF_MESSAGE)) - 1
            info[name] = {"instrument": inst.key, "events": len(ev), "level_updates": level_updates(ev),
                          "messages": msgs, "updates_per_message": level_updates(ev) / msgs,
                          "npz_updates": write_npz(d, inst, work / f"{name}.npz")}
    t0 = time.perf_counter()
    write_recording(work / "synusdt_raw.gz", args.n_raw, 2)
    info["synthetic_raw"] = {"level_updates": args.n_raw, "write_s": time.perf_counter() - t0,
                             "bytes": (work / "synusdt_raw.gz").stat().st_size}
    return info


def run_peers(args: argparse.Namespace, data: str) -> dict[str, Any]:
    if not PEER_PY.exists():
        subprocess.run(["bash", str(HERE / "peers" / "setup_peer_env.sh")], check=True)
    out, rss = run_child([str(PEER_PY), str(HERE / "peers" / "run_peers.py"), str(args.work / f"{data}.npz"),
                          "--runs", str(args.runs), "--indent", "0"], args.core)
    res = json.loads(out)
    res["peak_rss_mb"] = res.pop("vm_hwm_mb", rss)  # the peer process, both peers together
    return res


def machine(core: int, peer: dict[str, Any]) -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    vers = {d: version(d) for d in ("numpy", "numba", "polars", "pyarrow", "msgspec")}
    return {"cpu_model": model, "logical_cores": os.cpu_count(), "pinned_core": core,
            "loadavg_end": os.getloadavg(),
            "platform": platform.platform(), "python": platform.python_version(), **vers,
            "flowbook": flowbook.__version__,
            "peer_python": peer["python"]["version"],
            **{f"peer_{k}": v["package_version"] for k, v in peer["peers"].items()}}


def _row(fig: str, data: str, n: int, rate: dict[str, float], rss: float) -> str:
    m = {k: rate[k] / 1e6 for k in ("median", "min", "max")}
    return f"| {fig} | {data} | {n:,} | **{m['median']:.2f}** | {m['min']:.2f} | {m['max']:.2f} | {rss:,.0f} |"


def report(res: dict[str, Any]) -> str:
    mc, info = res["machine"], res["data"]
    names = {"usdm": "USD-M BTCUSDT capture", "synthetic": "synthetic (seed 1)"}
    lines = [
        f"Machine: {mc['cpu_model']}, {mc['logical_cores']} logical cores (pinned to core {mc['pinned_core']}), "
        f"{mc['platform']}; Python {mc['python']}, numpy {mc['numpy']}, numba {mc['numba']}, polars "
        f"{mc['polars']}, pyarrow {mc['pyarrow']}; peers on Python {mc['peer_python']}: order-book "
        f"{mc['peer_order-book']}, sortedcontainers {mc['peer_sortedcontainers']}.  Load average "
        f"(1/5/15 min) {'/'.join(f'{x:.2f}' for x in res['loadavg_start'])} at the start, "
        f"{'/'.join(f'{x:.2f}' for x in mc['loadavg_end'])} at the end.",
        "",
        "Data: " + "; ".join(
            f"{names[d]}: {info[d]['level_updates']:,} level updates in {info[d]['messages']:,} messages "
            f"({info[d]['updates_per_message']:.1f}/message)" for d in ("usdm", "synthetic"))
        + f"; synthetic raw recording (seed 2): {info['synthetic_raw']['level_updates']:,} level updates, "
        f"{info['synthetic_raw']['bytes'] / 1e6:.1f} MB gzip.",
        "",
        f"Level updates per second on one core, M/s: median of {res['runs']} runs after a warm-up (USD-M "
        f"engine rows: {res['runs_small']} runs), min, max; peak RSS of the phase's process.",
        "",
        "| figure | data | level updates | median | min | max | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    figs = [("engine", "engine: book + core features, events in memory"),
            ("engine_100ms", "engine, features sampled every 100 ms (local clock)"),
            ("e2e_raw", "end to end: gzip JSON -> features Parquet"),
            ("e2e_archive", "end to end: event archive (2nd run) -> features Parquet"),
            ("user", "flowbook as a user drives it: FeatureEngine on snapshot + updates")]
    for key, fig in figs:
        for d in ("usdm", "synthetic"):
            r = res[key][d]
            raw = "synthetic raw recording (seed 2)" if d == "synthetic" and key.startswith("e2e") else names[d]
            lines.append(_row(fig, raw, r["updates"], r["rate"], r["peak_rss_mb"]))
            if key == "user":
                p = res["peers"][d]
                for peer, pr in p["peers"].items():
                    lines.append(_row(f"peer {peer} {pr['package_version']}: apply + top-5 reads", names[d],
                                      p["input"]["updates"], pr["updates_per_s"], p["peak_rss_mb"]))
    lines += ["", "| data | flowbook / order-book | flowbook / sortedcontainers | checksum (peers) | "
              "checksum (flowbook) | match |", "|---|---:|---:|---:|---:|---|"]
    for d in ("usdm", "synthetic"):
        r = res["ratios"][d]
        lines.append(f"| {names[d]} | {r['order-book']:.2f}x | {r['sortedcontainers']:.2f}x | "
                     f"{r['peer_checksum']!r} | {r['flowbook_checksum']!r} | {'yes' if r['match'] else 'NO'} |")
    c = res["compile"]
    lines += ["", f"Compile: first FeatureEngine call in a fresh NUMBA_CACHE_DIR {c['cold']['first_call_s']:.2f} s "
              f"(peak RSS {c['cold']['peak_rss_mb']:,.0f} MB); with that cache filled "
              f"{c['cached']['first_call_s']:.2f} s; steady state {c['cached']['second_call_s'] * 1e3:.1f} ms "
              f"(20,000 synthetic updates).  Not included in any figure above (each has a warm-up run)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M synthetic updates (200k raw) instead of 10M (2M)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per figure (>= 5)")
    ap.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)), help="CPU to pin phases to")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:  # worker mode: one phase, JSON on the last stdout line
        kind, _, data = args.phase.partition(":")
        small = max(args.runs, 20) if data == "usdm" else args.runs
        res = (phase_engine(args.work, data, small, user=kind == "user") if kind in ("engine", "user") else
               phase_engine(args.work, data, small, user=False, interval_ns=100_000_000) if kind == "engine_100ms" else
               phase_e2e(args.work, data, args.runs, archive=kind == "e2e_archive") if kind.startswith("e2e")
               else phase_compile(args.work))
        res["vm_hwm_mb"] = vm_hwm_mb()
        print(json.dumps(res))
        return 0
    if args.runs < 5:
        ap.error("--runs must be >= 5")
    args.n_engine, args.n_raw = (1_000_000, 200_000) if args.quick else (10_000_000, 2_000_000)
    args.work = Path(tempfile.mkdtemp(prefix="flowbook-bench-"))
    started = time.strftime("%Y%m%dT%H%M%S")
    try:
        print(f"preparing data in {args.work} ...", file=sys.stderr)
        res: dict[str, Any] = {"started": started, "quick": args.quick, "runs": args.runs,
                               "loadavg_start": os.getloadavg(),
                               "runs_small": max(args.runs, 20), "data": prepare(args)}
        for kind in ("engine", "engine_100ms", "user", "e2e_raw", "e2e_archive"):
            res[kind] = {d: child_phase(args, f"{kind}:{d}") for d in ("usdm", "synthetic")}
        res["peers"] = {d: run_peers(args, d) for d in ("usdm", "synthetic")}
        cache = args.work / "numba-cache"
        res["compile"] = {k: child_phase(args, "compile", NUMBA_CACHE_DIR=str(cache)) for k in ("cold", "cached")}
        res["ratios"] = {}
        for d in ("usdm", "synthetic"):
            fb, peers = res["user"][d], res["peers"][d]["peers"]
            res["ratios"][d] = {name: fb["rate"]["median"] / p["updates_per_s"]["median"] for name, p in peers.items()}
            pc = peers["order-book"]["checksum"]
            res["ratios"][d].update(peer_checksum=pc, flowbook_checksum=fb["checksum"], match=pc == fb["checksum"],
                                    peers_agree=res["peers"][d]["peers_agree"])
        res["machine"] = machine(args.core, res["peers"]["usdm"])
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    table = report(res)
    res["markdown"] = table
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"core_{started}{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(res, indent=1))
    print(table)
    print(f"\nwritten {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
