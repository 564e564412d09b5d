"""Replay an order-book update stream through the comparison peers and report throughput as JSON.

Peers:

* ``order-book``: bmoscon's C extension (PyPI ``order-book``, import ``order_book``), 1.0.x line
  (Python >= 3.12). Driven as its README documents: a side is loaded by assigning a dict
  (``ob.bids = {...}``), levels are set with ``ob.bids[price] = size`` and removed with
  ``del ob.bids[price]``, and levels are read by position with ``ob.bids.index(n)`` which returns
  ``(price, size)``. Deleting a level that is absent raises ``KeyError``, which is caught and ignored.
* ``sortedcontainers``: one ``sortedcontainers.SortedDict`` per side (prices ascending for both sides),
  loaded from the snapshot dict, ``book[price] = size`` / ``book.pop(price, None)`` for updates, and the top
  of each side read from a ``keys()`` view slice (``bid_keys[-5:]``, ``ask_keys[:5]``) plus size look-ups.

After every exchange message both peers do the same reads: best bid price and size, best ask price and
size, and the top-5 sizes of each side. Two figures are accumulated so the work cannot be skipped and
results can be cross-checked (exactly, same float operation order in every implementation):

* ``checksum = checksum + (best_bid_px + best_ask_px)`` per message;
* ``top5_qty_sum = top5_qty_sum + ((((0.0 + b0) + b1) + ... + b4) + a0) + ... + a4)`` per message, sizes
  taken best level first, bids then asks (an explicit left fold: Python 3.12's ``sum()`` uses compensated
  summation and would not match a plain loop).

An empty side contributes 0.0 as its best price; a side with fewer than 5 levels contributes the levels it
has. Only the apply+read loop is timed; building the book from the snapshot is timed separately. The
arrays are converted to Python lists (``ndarray.tolist()``) before timing, as a feed handler would hand
Python floats to these libraries.

Run under the peer venv (see ``setup_peer_env.sh``)::

    bench/.venv-peers/bin/python bench/peers/run_peers.py INPUT.npz [--runs 5] [--peers order-book,sortedcontainers]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

TOP_N = 5
REQUIRED_ARRAYS: dict[str, type] = {
    "snap_bid_px": np.float64,
    "snap_bid_qty": np.float64,
    "snap_ask_px": np.float64,
    "snap_ask_qty": np.float64,
    "side": np.int8,
    "price": np.float64,
    "qty": np.float64,
    "msg_end": np.int64,
}


@dataclass(frozen=True)
class Stream:
    """The benchmark input as plain Python objects (converted once, outside every timing)."""

    snap_bids: dict[float, float]
    snap_asks: dict[float, float]
    side: list[int]
    price: list[float]
    qty: list[float]
    counts: list[int]  # number of updates in each exchange message

    @property
    def n_updates(self) -> int:
        return len(self.side)

    @property
    def n_messages(self) -> int:
        return len(self.counts)


def load_stream(path: Path) -> Stream:
    """Load and validate the npz contract (see README.md)."""
    with np.load(path) as npz:
        missing = [k for k in REQUIRED_ARRAYS if k not in npz.files]
        if missing:
            raise SystemExit(f"{path}: missing arrays {missing}")
        arr = {k: npz[k] for k in REQUIRED_ARRAYS}
    for key, dtype in REQUIRED_ARRAYS.items():
        if arr[key].dtype != dtype or arr[key].ndim != 1:
            raise SystemExit(
                f"{path}: {key} must be a 1-d {np.dtype(dtype).name} array, got {arr[key].dtype}"
            )
    n = len(arr["side"])
    if len(arr["price"]) != n or len(arr["qty"]) != n:
        raise SystemExit(f"{path}: side/price/qty lengths differ")
    for px_key, qty_key in (("snap_bid_px", "snap_bid_qty"), ("snap_ask_px", "snap_ask_qty")):
        if len(arr[px_key]) != len(arr[qty_key]):
            raise SystemExit(f"{path}: {px_key} and {qty_key} lengths differ")
    msg_end = arr["msg_end"]
    if len(msg_end) == 0 or int(msg_end[-1]) != n:
        raise SystemExit(f"{path}: msg_end[-1] must equal len(side) ({n})")
    counts = np.diff(msg_end, prepend=0)
    if np.any(counts < 0):
        raise SystemExit(f"{path}: msg_end must be non-decreasing and >= 0")
    if not np.all((arr["side"] == 1) | (arr["side"] == -1)):
        raise SystemExit(f"{path}: side must be +1 (bid) or -1 (ask)")
    return Stream(
        snap_bids=dict(zip(arr["snap_bid_px"].tolist(), arr["snap_bid_qty"].tolist(), strict=True)),
        snap_asks=dict(zip(arr["snap_ask_px"].tolist(), arr["snap_ask_qty"].tolist(), strict=True)),
        side=arr["side"].tolist(),
        price=arr["price"].tolist(),
        qty=arr["qty"].tolist(),
        counts=counts.tolist(),
    )


# --------------------------------------------------------------------------------------------------
# order-book (bmoscon, C extension)
# --------------------------------------------------------------------------------------------------


def ob_build(stream: Stream) -> Any:
    from order_book import OrderBook

    ob = OrderBook()
    ob.bids = stream.snap_bids  # documented bulk load: assigning a dict replaces the side
    ob.asks = stream.snap_asks
    # order-book sorts lazily on the first read after the load (~20 us for 800 levels); force it here so
    # the sort is counted in the build time, as SortedDict's eager sort is.
    if len(ob.bids):
        ob.bids.index(0)
    if len(ob.asks):
        ob.asks.index(0)
    return ob


def _ob_read_slow(bids: Any, asks: Any) -> tuple[float, float]:
    """Reads for a book where a side has fewer than TOP_N levels (same float operation order)."""
    nb = min(len(bids), TOP_N)
    na = min(len(asks), TOP_N)
    px = (bids.index(0)[0] if nb else 0.0) + (asks.index(0)[0] if na else 0.0)
    x = 0.0
    for i in range(nb):
        x += bids.index(i)[1]
    for i in range(na):
        x += asks.index(i)[1]
    return px, x


def ob_replay(ob: Any, stream: Stream) -> tuple[float, float]:
    bids = ob.bids
    asks = ob.asks
    books = (bids, bids, asks)  # books[+1] -> bids, books[-1] -> asks
    bidx = bids.index
    aidx = asks.index
    checksum = 0.0
    top5 = 0.0
    it = zip(stream.side, stream.price, stream.qty, strict=True)
    for n in stream.counts:
        for s, p, q in islice(it, n):
            if q:
                books[s][p] = q
            else:
                # try/except, not contextlib.suppress: entering a context manager per delete is slower
                try:  # noqa: SIM105
                    del books[s][p]
                except KeyError:  # deleting an absent level is normal in feeds
                    pass
        try:
            bb, bq = bidx(0)
            ba, aq = aidx(0)
            x = (
                bq + bidx(1)[1] + bidx(2)[1] + bidx(3)[1] + bidx(4)[1]
                + aq + aidx(1)[1] + aidx(2)[1] + aidx(3)[1] + aidx(4)[1]
            )  # fmt: skip
            px = bb + ba
        except IndexError:  # a side has fewer than 5 levels
            px, x = _ob_read_slow(bids, asks)
        checksum += px
        top5 += x
    return checksum, top5


# --------------------------------------------------------------------------------------------------
# sortedcontainers.SortedDict, one per side
# --------------------------------------------------------------------------------------------------


def sc_build(stream: Stream) -> Any:
    from sortedcontainers import SortedDict

    return SortedDict(stream.snap_bids), SortedDict(stream.snap_asks)


def sc_replay(book: Any, stream: Stream) -> tuple[float, float]:
    bids, asks = book
    books = (bids, bids, asks)  # books[+1] -> bids, books[-1] -> asks
    bkeys = bids.keys()  # SortedKeysView: supports positional indexing / slicing
    akeys = asks.keys()
    checksum = 0.0
    top5 = 0.0
    it = zip(stream.side, stream.price, stream.qty, strict=True)
    for n in stream.counts:
        for s, p, q in islice(it, n):
            if q:
                books[s][p] = q
            else:
                books[s].pop(p, None)  # absent level: ignored
        bk = bkeys[-TOP_N:]  # ascending, best bid last
        ak = akeys[:TOP_N]
        checksum += (bk[-1] if bk else 0.0) + (ak[0] if ak else 0.0)
        x = 0.0
        for k in reversed(bk):
            x += bids[k]
        for k in ak:
            x += asks[k]
        top5 += x
    return checksum, top5


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    name: str
    dist: str  # distribution name for the version report
    build: Callable[[Stream], Any]
    replay: Callable[[Any, Stream], tuple[float, float]]
    method: str


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer(
            "order-book",
            "order-book",
            ob_build,
            ob_replay,
            "OrderBook(); ob.bids = snapshot_dict; ob.bids[px] = qty; del ob.bids[px] (KeyError ignored); "
            "reads ob.bids.index(0..4) / ob.asks.index(0..4)",
        ),
        Peer(
            "sortedcontainers",
            "sortedcontainers",
            sc_build,
            sc_replay,
            "SortedDict per side (ascending); sd[px] = qty; sd.pop(px, None); "
            "reads keys()[-5:] (bids) / keys()[:5] (asks) + sd[px]",
        ),
    )
}


def _pkg_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _one_run(peer: Peer, stream: Stream) -> tuple[float, float, tuple[float, float]]:
    """Returns (build seconds, replay seconds, (checksum, top5_qty_sum))."""
    t0 = time.perf_counter()
    book = peer.build(stream)
    t1 = time.perf_counter()
    result = peer.replay(book, stream)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark order-book peers on an npz update stream.")
    ap.add_argument("input", type=Path, help="input .npz (see bench/peers/README.md for the contract)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per peer (default 5)")
    ap.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated subset of {','.join(PEERS)} (default: all)",
    )
    ap.add_argument("--indent", type=int, default=2, help="JSON indent (0 for one line)")
    args = ap.parse_args(argv)

    if sys.version_info < (3, 12):
        print("warning: order-book 1.0.x needs Python >= 3.12; run under bench/.venv-peers", file=sys.stderr)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        ap.error(f"unknown peers {unknown}; choose from {list(PEERS)}")
    peers = [PEERS[n] for n in names]

    stream = load_stream(args.input)

    # Warm-up once per peer (imports, allocator, caches); result kept to check run-to-run stability.
    expected: dict[str, tuple[float, float]] = {p.name: _one_run(p, stream)[2] for p in peers}
    builds: dict[str, list[float]] = {p.name: [] for p in peers}
    rates: dict[str, list[float]] = {p.name: [] for p in peers}
    for _ in range(args.runs):
        for p in peers:  # interleaved so slow drift on the machine hits every peer alike
            gc.collect()
            b, r, result = _one_run(p, stream)
            if result != expected[p.name]:
                raise SystemExit(f"{p.name}: result changed between runs: {result} != {expected[p.name]}")
            builds[p.name].append(b)
            rates[p.name].append(stream.n_updates / r)

    report: dict[str, Any] = {
        "input": {
            "file": str(args.input),
            "updates": stream.n_updates,
            "messages": stream.n_messages,
            "snapshot_levels": {"bid": len(stream.snap_bids), "ask": len(stream.snap_asks)},
        },
        "machine": {
            "cpu_model": _cpu_model(),
            "logical_cores": os.cpu_count(),
            "platform": platform.platform(),
        },
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "numpy_version": np.__version__,
        "runs": args.runs,
        "warmup_runs": 1,
        "timed": "apply+read loop only (time.perf_counter); build from snapshot reported separately; "
        "gc enabled, gc.collect() before each run",
        "reads_per_message": "best bid px+size, best ask px+size, top-5 sizes per side",
        "peers": {},
    }
    for p in peers:
        checksum, top5 = expected[p.name]
        report["peers"][p.name] = {
            "package": p.dist,
            "package_version": _pkg_version(p.dist),
            "python_version": platform.python_version(),
            "method": p.method,
            "updates_per_s": _summary(rates[p.name]),
            "build_s": _summary(builds[p.name]),
            "checksum": checksum,
            "top5_qty_sum": top5,
        }
    results = {expected[p.name] for p in peers}
    report["peers_agree"] = len(results) == 1
    with open("/proc/self/status") as status:  # peak RSS of this process image (ru_maxrss counts the parent's)
        hwm = [int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")]
    report["vm_hwm_mb"] = hwm[0] if hwm else float("nan")
    json.dump(report, sys.stdout, indent=args.indent or None)
    sys.stdout.write("\n")
    return 0 if report["peers_agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
