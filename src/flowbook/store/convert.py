"""Normalized events and feature rows -> store batches; :func:`write_replay` for ``replay --store``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol

import numpy as np

from ..events import NO_ID, Flag, Instrument, Kind
from .errors import StoreError
from .schema import FEATURE_NAMES, Batch

__all__ = ["event_batches", "feature_batches", "config_hash", "write_replay", "StoreLike"]


class StoreLike(Protocol):
    kind: str
    replay_tables: tuple[str, ...]

    def write(self, batches: Batch | Sequence[Batch], batch_id: str | None = None) -> int: ...


class _Rows:
    """Columns of chosen rows of an event array, gathered one field at a time (no structured copy)."""

    def __init__(self, events: np.ndarray, rows: np.ndarray | None) -> None:
        self.events, self.rows = events, rows  # rows: indices into events, None for all of them

    def __call__(self, name: str) -> np.ndarray:
        col = self.events[name]
        return np.ascontiguousarray(col) if self.rows is None else col[self.rows]

    def __len__(self) -> int:
        return len(self.events) if self.rows is None else len(self.rows)

    def at(self, pos: np.ndarray) -> _Rows:
        """The rows at positions ``pos`` of these."""
        return _Rows(self.events, pos if self.rows is None else self.rows[pos])

    def where(self, mask: np.ndarray) -> _Rows:
        """The rows (of these) where ``mask`` (one value per row of these) holds."""
        return self.at(np.flatnonzero(mask))

    def kind(self, *kinds: Kind) -> _Rows:
        k = self("kind")
        return self.where(np.isin(k, np.array(kinds, np.uint8)) if len(kinds) > 1 else k == kinds[0])


def _common(e: _Rows) -> dict[str, np.ndarray]:
    return {"ts_exchange": e("ts_exchange"), "ts_local": e("ts_local")}


def _trades(ev: _Rows) -> dict[str, Any]:
    e = ev.kind(Kind.TRADE)
    return {**_common(e), "trade_id": e("id"), "side": e("side"), "price": e("price"), "qty": e("qty"),
            "flags": e("flags")}


def _liquidations(ev: _Rows) -> dict[str, Any]:
    e = ev.kind(Kind.LIQUIDATION)
    return {**_common(e), "side": e("side"), "price": e("price"), "qty": e("qty"), "avg_price": e("value")}


def _funding(ev: _Rows) -> dict[str, Any]:
    i = np.flatnonzero(ev("kind") == Kind.FUNDING_RATE)
    e, p = ev.at(i), ev.at(np.maximum(i - 1, 0))  # each funding row and the row before it (same symbol)
    # Binance sends mark price and funding rate in one message: a MARK_PRICE row just before, same time
    ok = (i > 0) & (p("kind") == Kind.MARK_PRICE) & (p("ts_exchange") == e("ts_exchange"))
    nxt = e("id")
    return {**_common(e), "funding_rate": e("value"), "mark_price": np.where(ok, p("value"), np.nan),
            "next_funding_time": np.where(nxt == NO_ID, 0, nxt)}


def _open_interest(ev: _Rows) -> dict[str, Any]:
    e = ev.kind(Kind.OPEN_INTEREST)
    return {**_common(e), "open_interest": e("value")}


def _book_deltas(ev: _Rows) -> dict[str, Any]:
    e = ev.kind(Kind.BOOK_SET, Kind.BOOK_CLEAR)
    return {**_common(e), "update_id": e("id"), "first_update_id": e("id2"), "kind": e("kind"),
            "side": e("side"), "price": e("price"), "qty": e("qty"), "flags": e("flags")}


def _book_snapshots(ev: _Rows, levels: int) -> dict[str, Any]:
    """Top ``levels`` of each snapshot (events from SNAPSHOT_BEGIN to SNAPSHOT_END), best first."""
    flags = ev("flags")
    begins = np.flatnonzero(flags & Flag.SNAPSHOT_BEGIN)
    ends = np.flatnonzero(flags & Flag.SNAPSHOT_END)
    rows = np.arange(len(ev)) if ev.rows is None else ev.rows
    parts: list[dict[str, np.ndarray]] = []
    for b in begins:
        j = np.searchsorted(ends, b)
        if j == len(ends):
            break  # an unfinished snapshot
        e_end = int(ends[j])
        s = ev.events[rows[b:e_end + 1]]
        s = s[(s["kind"] == Kind.BOOK_SET) & (s["qty"] > 0) & (s["side"] != 0)]
        last = ev.events[rows[e_end]]
        for side in (1, -1):
            lv = s[s["side"] == side]
            lv = lv[np.argsort(-side * lv["price"], kind="stable")][:levels]
            k = len(lv)
            parts.append({"ts_local": np.full(k, last["ts_local"]), "ts_exchange": np.full(k, last["ts_exchange"]),
                          "update_id": np.full(k, last["id"]), "side": np.full(k, side, np.int16),
                          "level": np.arange(k, dtype=np.int16), "price": lv["price"], "qty": lv["qty"]})
    names = ("ts_local", "ts_exchange", "update_id", "side", "level", "price", "qty")
    return {n: np.concatenate([p[n] for p in parts]) if parts else np.zeros(0, np.int64) for n in names}


def event_batches(events: np.ndarray, instruments: Sequence[Instrument], tables: Sequence[str],
                  snapshot_levels: int = 20) -> list[Batch]:
    """Batches of the requested tables (events, trades, liquidations, funding_rates, open_interest,
    book_deltas, book_snapshots) from an ``EVENT_DTYPE`` array whose ``symbol`` indexes ``instruments``."""
    makers = {"trades": _trades, "liquidations": _liquidations, "funding_rates": _funding,
              "open_interest": _open_interest, "book_deltas": _book_deltas,
              "book_snapshots": lambda e: _book_snapshots(e, snapshot_levels)}
    out: list[Batch] = []
    sym = events["symbol"]
    single = len(events) > 0 and int(sym.min()) == int(sym.max())
    for sid, inst in enumerate(instruments):
        ev = _Rows(events, None) if single and int(sym[0]) == sid else _Rows(events, np.flatnonzero(sym == sid))
        if len(ev) == 0:
            continue
        for name in tables:
            if name == "events":
                cols = {n: ev(n) for n in events.dtype.names or () if n != "symbol"}
            elif name in makers:
                cols = makers[name](ev)
            else:
                raise StoreError(f"table {name!r} is not made from events")
            b = Batch.make(name, inst, cols)
            if b.rows:
                out.append(b)
    return out


def config_hash(config: object) -> int:
    """A stable 63-bit id of a feature configuration (dataclass fields, JSON, SHA-256)."""
    fields = asdict(config) if is_dataclass(config) and not isinstance(config, type) else dict(vars(config))
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def feature_batches(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], instruments: Sequence[Instrument],
                    columns: Sequence[str], interval_ns: int, cfg_hash: int) -> list[Batch]:
    """Feature rows of the engine (``(symbol, f, ii)`` with ``f`` in ``columns`` order and ``ii`` =
    time, exchange time, update id) as ``features`` batches."""
    if tuple(columns) != FEATURE_NAMES:
        raise StoreError("the engine's feature columns differ from the store's features table "
                         f"({sorted(set(columns) ^ set(FEATURE_NAMES))}); the store needs a migration")
    by_symbol = {i.symbol: i for i in instruments}
    out: list[Batch] = []
    for sym, f, ii in rows:
        if len(ii) == 0:
            continue
        cols: dict[str, Any] = {"ts": ii[:, 0], "ts_exchange": ii[:, 1], "update_id": ii[:, 2],
                                "interval_ns": np.full(len(ii), interval_ns, np.int64),
                                "config_hash": np.full(len(ii), cfg_hash, np.int64)}
        for j, name in enumerate(columns):
            cols[name] = f[:, j].astype(np.int64) if name == "trade_count" else f[:, j]
        out.append(Batch.make("features", by_symbol[sym], cols))
    return out


def write_replay(store: StoreLike, events: np.ndarray, instruments: Sequence[Instrument],
                 feature_rows: Sequence[tuple[str, np.ndarray, np.ndarray]], config: Any,
                 columns: Sequence[str], key: str) -> dict[str, int]:
    """Write a replay's events (the tables the store keeps) and feature rows, one table at a time.

    Returns the rows each table received that it did not hold yet.  ``key`` identifies the inputs
    (the replay fingerprint): a second run over the same inputs and configuration adds nothing.
    """
    h = config_hash(config)
    batches = event_batches(events, instruments, store.replay_tables)
    batches += feature_batches(feature_rows, instruments, columns, int(config.interval_ns), h)
    counts: dict[str, int] = {}
    for name in dict.fromkeys(b.table.name for b in batches):
        group = [b for b in batches if b.table.name == name]
        counts[name] = store.write(group, batch_id=key if name != "features" else f"{key}-{h:016x}")
    return counts
