"""The one flat event dtype of the hot path, its kinds and flags.

Every source (live venue parsers, file readers, the synthetic generator) produces arrays of
:data:`EVENT_DTYPE`; the book and feature kernels consume them.  Prices are integer ticks and
quantities integer lots of the event's instrument (see :mod:`flowbook.events.instrument`), so the
book never holds a binary-float rounding of an exchange decimal.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

import numpy as np

__all__ = ["EVENT_DTYPE", "Kind", "Flag", "Side", "NO_ID", "empty_events"]


class Kind(IntEnum):
    """What an event is.  Stored in the ``kind`` field (uint8)."""

    BOOK_SET = 1  # L2 level set: price, qty (absolute; 0 deletes the level)
    BOOK_CLEAR = 2  # drop every level of the instrument's book (start of a snapshot or a resync)
    TRADE = 3  # side = aggressor side, id = trade id
    BBO = 4  # best bid/offer update: side +1 bid, -1 ask (one event per side), id = update id
    LIQUIDATION = 5  # forced order: side = side of the forced order, price, qty
    MARK_PRICE = 6  # value = mark price (float), id2 = index price tick if known
    FUNDING_RATE = 7  # value = funding rate, id = next funding time (ns)
    OPEN_INTEREST = 8  # value = open interest (base or contracts)
    ORDER_ADD = 9  # L3: id = order id, side, price, qty
    ORDER_REDUCE = 10  # L3: id = order id, qty = quantity removed (partial cancel)
    ORDER_DELETE = 11  # L3: id = order id (whole order leaves the book)
    ORDER_EXEC = 12  # L3: id = order id, qty = executed quantity of a resting order


class Flag(IntFlag):
    """Bit flags in the ``flags`` field (uint16)."""

    NONE = 0
    SNAPSHOT = 1  # event belongs to a snapshot
    SNAPSHOT_BEGIN = 2
    SNAPSHOT_END = 4
    END_OF_MESSAGE = 8  # last event of one exchange message: the book is consistent after it
    INCOMPLETE = 16  # book depth beyond this event's snapshot is unknown
    HIDDEN = 32  # execution against hidden liquidity (L3 sources)
    FORCED = 64  # trade from a liquidation / insurance fund


class Side(IntEnum):
    BID = 1
    ASK = -1
    NONE = 0


NO_ID = -1

EVENT_DTYPE = np.dtype(
    [
        ("kind", "u1"),
        ("side", "i1"),
        ("flags", "u2"),
        ("symbol", "u4"),  # index into the run's instrument table
        ("ts_exchange", "i8"),  # ns since the epoch, exchange clock
        ("ts_local", "i8"),  # ns since the epoch, local receive clock
        ("price", "i8"),  # integer ticks
        ("qty", "i8"),  # integer lots
        ("id", "i8"),  # trade id / last update id (Binance `u`) / order id
        ("id2", "i8"),  # first update id (Binance `U`) / previous update id / aux
        ("value", "f8"),  # non-grid values: mark price, funding rate, open interest
    ],
    align=True,
)


def empty_events(n: int) -> np.ndarray:
    """A zeroed event array of length ``n``."""
    out = np.zeros(n, dtype=EVENT_DTYPE)
    out["id"] = NO_ID
    out["id2"] = NO_ID
    return out
