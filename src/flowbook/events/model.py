"""Typed, immutable event objects for the edges (API, callbacks, tests).

The hot path never builds these; :func:`to_array` and :func:`from_array` are the one place where
objects and the flat :data:`~flowbook.events.dtype.EVENT_DTYPE` rows are converted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .dtype import NO_ID, Flag, Kind, empty_events

__all__ = ["Event", "to_array", "from_array"]


@dataclass(frozen=True, slots=True)
class Event:
    """One normalized market event.

    ``price`` is in ticks and ``qty`` in lots of the instrument ``symbol`` indexes.
    """

    kind: Kind
    ts_exchange: int
    ts_local: int
    side: int = 0
    price: int = 0
    qty: int = 0
    id: int = NO_ID
    id2: int = NO_ID
    value: float = 0.0
    flags: Flag = Flag.NONE
    symbol: int = 0


def to_array(events: Sequence[Event] | Iterable[Event]) -> np.ndarray:
    """Flat event array from event objects."""
    items = list(events)
    out = empty_events(len(items))
    for i, e in enumerate(items):
        out[i] = (
            int(e.kind),
            e.side,
            int(e.flags),
            e.symbol,
            e.ts_exchange,
            e.ts_local,
            e.price,
            e.qty,
            e.id,
            e.id2,
            e.value,
        )
    return out


def from_array(arr: np.ndarray) -> list[Event]:
    """Event objects from a flat event array (for the edges only: slow by design)."""
    return [
        Event(
            kind=Kind(int(r["kind"])),
            ts_exchange=int(r["ts_exchange"]),
            ts_local=int(r["ts_local"]),
            side=int(r["side"]),
            price=int(r["price"]),
            qty=int(r["qty"]),
            id=int(r["id"]),
            id2=int(r["id2"]),
            value=float(r["value"]),
            flags=Flag(int(r["flags"])),
            symbol=int(r["symbol"]),
        )
        for r in arr
    ]
