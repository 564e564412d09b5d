"""LOBSTER as a replay source: the order-level (L3) book turned into L2 level events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..book.l3 import L3Book
from ..events import Flag, Kind, empty_events
from .lobster import read_lobster
from .sources import Loaded

__all__ = ["is_lobster", "load_lobster"]

_ORDER_KINDS = (int(Kind.ORDER_ADD), int(Kind.ORDER_REDUCE), int(Kind.ORDER_DELETE), int(Kind.ORDER_EXEC))


def is_lobster(path: Path) -> bool:
    return path.name.endswith(".csv") and ("_message_" in path.name or "_orderbook_" in path.name)


def load_lobster(paths: list[Path], strict: bool, progress: Callable[[int], None] | None = None) -> Loaded:
    """Message file (+ orderbook file for the starting book) -> BOOK_SET/TRADE events."""
    msg = [p for p in paths if "_message_" in p.name]
    if len(msg) != 1:
        raise ValueError("LOBSTER replay needs exactly one *_message_*.csv file (plus its orderbook file)")
    ob = [p for p in paths if "_orderbook_" in p.name]
    if not ob:
        sibling = msg[0].with_name(msg[0].name.replace("_message_", "_orderbook_"))
        ob = [sibling] if sibling.exists() else []
    data = read_lobster(msg[0], ob[0] if ob else None)
    depth = data.orderbook.shape[1] // 4 if data.orderbook is not None else None
    book = L3Book(window=depth)
    ev = data.events
    out = empty_events(len(ev) + 2 * (depth or 0) + 2)
    n = 0
    t0 = int(ev["ts_local"][0]) if len(ev) else 0

    def put(kind: int, side: int, flags: int, price: int, qty: int, ts: int, oid: int) -> None:
        nonlocal n
        r = out[n]
        r["kind"], r["side"], r["flags"], r["price"], r["qty"] = kind, side, flags, price, qty
        r["ts_local"] = r["ts_exchange"] = ts
        r["id"] = oid
        n += 1

    put(int(Kind.BOOK_CLEAR), 0, int(Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN), 0, 0, t0, -1)
    if data.initial_book is not None:
        ib = data.initial_book
        book.seed_levels(1, ib.bid_prices, ib.bid_qtys)
        book.seed_levels(-1, ib.ask_prices, ib.ask_qtys)
        for side, pxs, qs in ((1, ib.bid_prices, ib.bid_qtys), (-1, ib.ask_prices, ib.ask_qtys)):
            for p, q in zip(pxs, qs, strict=True):
                put(1, side, int(Flag.SNAPSHOT | Flag.INCOMPLETE), int(p), int(q), t0, -1)
    put(1, 0, int(Flag.SNAPSHOT | Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE), 0, 0, t0, -1)
    levels = 0
    for j in range(len(ev)):
        e = ev[j : j + 1]
        kind = int(e["kind"][0])
        if kind in _ORDER_KINDS:
            book.apply(e)
            side, price = int(e["side"][0]), int(e["price"][0])
            put(1, side, int(Flag.END_OF_MESSAGE), price, book.level_qty(side, price),
                int(e["ts_local"][0]), int(e["id"][0]))
            levels += 1
        elif kind == int(Kind.TRADE):
            out[n] = e[0]
            n += 1
    from ..events import Instrument

    inst: Instrument = data.instrument
    stats = {"diffs_applied": levels, "levels_applied": levels, "trades": int((ev["kind"] == Kind.TRADE).sum()),
             "gaps": 0, "resyncs": 0, "ignored_outside_window": book.n_ignored}
    result = out[:n]
    msg_end = np.flatnonzero((result["flags"] & int(Flag.END_OF_MESSAGE)) != 0)
    return Loaded(result, [inst], stats, [], msg_end, [f"{msg[0]}:event {i}" for i in range(len(msg_end))])
