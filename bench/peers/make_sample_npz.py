"""Write a random but valid sample input for ``run_peers.py`` and print reference figures.

The file follows the npz contract described in ``bench/peers/README.md``:

* ``snap_bid_px``, ``snap_bid_qty``, ``snap_ask_px``, ``snap_ask_qty`` (float64): initial snapshot;
* ``side`` (int8, +1 bid / -1 ask), ``price`` (float64), ``qty`` (float64, 0 = delete level): updates;
* ``msg_end`` (int64): exclusive end index of each exchange message into the updates.

The stream is built around a drifting mid price so bids always stay below asks. It contains size changes,
level adds, deletes of existing levels and deletes of levels that are not in the book (which consumers must
ignore). About 90% of the activity is near the top of book, the rest is spread over the whole depth.

After writing, the file is replayed with a tiny pure-Python ``dict`` reference book (independent of the
generator's own state) and the reference ``checksum`` / ``top5_qty_sum`` are printed as JSON, so the peers
(and flowbook) can be checked against them.

Runs under any Python >= 3.10 with numpy (the project's interpreter or the peer venv)::

    python bench/peers/make_sample_npz.py --out /tmp/sample.npz --updates 200000 --seed 1
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from pathlib import Path

import numpy as np

TICK_DIV = 10.0  # price = tick / TICK_DIV, i.e. a 0.1 tick size
TOP_N = 5


def _px(tick: int) -> float:
    return tick / TICK_DIV


def _qty(rng: random.Random) -> float:
    # three decimals, strictly positive
    return rng.randint(1, 5000) / 1000.0


def generate(n_updates: int, depth: int, seed: int) -> dict[str, np.ndarray]:
    """Generate a snapshot plus ``n_updates`` level updates grouped into exchange messages."""
    rng = random.Random(seed)
    mid = 500_000  # mid tick => price 50_000.0; bids have ticks < mid, asks have ticks > mid
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    for i in range(1, depth + 1):
        if i <= 5 or rng.random() < 0.8:  # ~80% occupancy, the top 5 levels always present
            bids[mid - i] = _qty(rng)
        if i <= 5 or rng.random() < 0.8:
            asks[mid + i] = _qty(rng)
    snap_bid = sorted(bids.items(), reverse=True)
    snap_ask = sorted(asks.items())

    side: list[int] = []
    price: list[float] = []
    qty: list[float] = []
    msg_end: list[int] = []

    def emit(s: int, tick: int, q: float) -> None:
        side.append(s)
        price.append(_px(tick))
        qty.append(q)

    while len(side) < n_updates:
        # occasionally the mid moves: levels now on the wrong side of the mid are deleted
        if rng.random() < 0.05:
            mid += rng.choice((-3, -2, -1, 1, 2, 3))
            for t in [t for t in bids if t >= mid]:
                del bids[t]
                emit(1, t, 0.0)
            for t in [t for t in asks if t <= mid]:
                del asks[t]
                emit(-1, t, 0.0)
        n_in_msg = min(int(rng.expovariate(1 / 8)) + 1, 60)
        for _ in range(n_in_msg):
            s = 1 if rng.random() < 0.5 else -1
            near_top = rng.random() < 0.9
            off = min(int(rng.expovariate(1 / 6)) + 1, depth) if near_top else rng.randint(1, depth)
            tick = mid - off if s == 1 else mid + off
            book = bids if s == 1 else asks
            if tick in book:
                if rng.random() < 0.7:
                    q = _qty(rng)
                    book[tick] = q
                    emit(s, tick, q)
                else:
                    del book[tick]
                    emit(s, tick, 0.0)
            elif rng.random() < 0.8:
                q = _qty(rng)
                book[tick] = q
                emit(s, tick, q)
            else:
                emit(s, tick, 0.0)  # delete of a level that is not in the book: must be ignored
        msg_end.append(len(side))

    return {
        "snap_bid_px": np.array([_px(t) for t, _ in snap_bid], dtype=np.float64),
        "snap_bid_qty": np.array([q for _, q in snap_bid], dtype=np.float64),
        "snap_ask_px": np.array([_px(t) for t, _ in snap_ask], dtype=np.float64),
        "snap_ask_qty": np.array([q for _, q in snap_ask], dtype=np.float64),
        "side": np.array(side, dtype=np.int8),
        "price": np.array(price, dtype=np.float64),
        "qty": np.array(qty, dtype=np.float64),
        "msg_end": np.array(msg_end, dtype=np.int64),
    }


def validate(arrays: dict[str, np.ndarray]) -> None:
    """Check the contract invariants; raise ValueError on violation."""
    side = arrays["side"]
    msg_end = arrays["msg_end"]
    n = len(side)
    if not (len(arrays["price"]) == len(arrays["qty"]) == n):
        raise ValueError("side/price/qty lengths differ")
    if len(msg_end) == 0 or int(msg_end[-1]) != n:
        raise ValueError("msg_end[-1] must equal len(side)")
    if np.any(np.diff(msg_end) < 0) or int(msg_end[0]) < 0:
        raise ValueError("msg_end must be non-decreasing and non-negative")
    if not np.all(np.isin(side, (1, -1))):
        raise ValueError("side must be +1 or -1")
    if np.any(arrays["qty"] < 0):
        raise ValueError("qty must be >= 0")


def reference(arrays: dict[str, np.ndarray]) -> dict[str, float | int]:
    """Replay with plain dicts; same accumulation order as run_peers.py (left fold, best level first)."""
    bids: dict[float, float] = dict(
        zip(arrays["snap_bid_px"].tolist(), arrays["snap_bid_qty"].tolist(), strict=True)
    )
    asks: dict[float, float] = dict(
        zip(arrays["snap_ask_px"].tolist(), arrays["snap_ask_qty"].tolist(), strict=True)
    )
    side = arrays["side"].tolist()
    price = arrays["price"].tolist()
    qty = arrays["qty"].tolist()
    checksum = 0.0
    top5 = 0.0
    crossed = 0
    missing_deletes = 0
    start = 0
    for end in arrays["msg_end"].tolist():
        for j in range(start, end):
            book = bids if side[j] > 0 else asks
            if qty[j] == 0.0:
                if book.pop(price[j], None) is None:
                    missing_deletes += 1
            else:
                book[price[j]] = qty[j]
        start = end
        top_b = heapq.nlargest(TOP_N, bids)
        top_a = heapq.nsmallest(TOP_N, asks)
        bb = top_b[0] if top_b else 0.0
        ba = top_a[0] if top_a else 0.0
        if top_b and top_a and bb >= ba:
            crossed += 1
        checksum += bb + ba
        s = 0.0
        for p in top_b:
            s += bids[p]
        for p in top_a:
            s += asks[p]
        top5 += s
    return {
        "checksum": checksum,
        "top5_qty_sum": top5,
        "crossed_messages": crossed,
        "ignored_deletes": missing_deletes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output .npz path")
    ap.add_argument("--updates", type=int, default=200_000, help="approximate number of level updates")
    ap.add_argument("--depth", type=int, default=1000, help="snapshot depth (ticks per side)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-reference", action="store_true", help="skip the pure-Python reference replay")
    args = ap.parse_args(argv)

    arrays = generate(args.updates, args.depth, args.seed)
    validate(arrays)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)  # type: ignore[arg-type]
    qty = arrays["qty"]
    info: dict[str, object] = {
        "file": str(args.out),
        "seed": args.seed,
        "snapshot_levels": [len(arrays["snap_bid_px"]), len(arrays["snap_ask_px"])],
        "updates": len(arrays["side"]),
        "messages": len(arrays["msg_end"]),
        "deletes": int(np.count_nonzero(qty == 0.0)),
    }
    if not args.no_reference:
        info["reference"] = reference(arrays)
    json.dump(info, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
