"""What every venue feed shares: symbols, instruments, event rows, counters, resync requests.

A venue feed (``BybitFeed``, ``OkxFeed``, ...) parses a frame with its own parser, applies its venue's
sync rule, and then calls the emitters here to write normalized events (:data:`~flowbook.events.EVENT_DTYPE`
rows).  The emitters convert the exchange's decimal strings to integer ticks and lots exactly, keep the
index of every depth message's closing event (for error locations and ``--every-event`` rows), and count.

Book states of a symbol: it starts unsynced; :meth:`FeedCore.snapshot` makes it synced; :meth:`FeedCore.lose`
(a gap, a checksum mismatch, a bad depth message) clears it (a ``BOOK_CLEAR`` event), marks it unsynced and
asks the transport for a new snapshot of that symbol only (:meth:`FeedCore.pop_resyncs`).  Deltas of an
unsynced symbol are dropped and counted, never applied.  In strict mode ``lose`` raises :class:`SyncError`.

Messages seen before a symbol's instrument is known (a trade before the first snapshot) wait in the
symbol's ``pending`` list and are converted once the instrument is defined (see :meth:`FeedCore.defer`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
from numba import njit

from ..events import EVENT_DTYPE, NO_ID, DecimalGrid, Flag, Instrument, Kind, PriceNotOnGrid, infer_step

__all__ = ["BookSymbol", "EventRows", "FeedCore", "FeedStats", "RecentIds", "SyncError", "decimals_step"]

_EOM = int(Flag.END_OF_MESSAGE)
_SNAP = int(Flag.SNAPSHOT | Flag.INCOMPLETE)
_SET = int(Kind.BOOK_SET)
_MAX_PENDING = 10_000


class SyncError(RuntimeError):
    """Strict mode: the book cannot be trusted (gap, checksum mismatch, crossed book, bad message)."""


@dataclass
class FeedStats:
    """Counters of one feed (all symbols).  Integer fields go to the replay summary as they are."""

    messages: int = 0
    snapshots: int = 0
    diffs_applied: int = 0
    diffs_unsynced: int = 0  # deltas that arrived while the symbol had no book: dropped
    diffs_duplicate: int = 0  # deltas already applied (sequence not newer): dropped
    levels_applied: int = 0
    gaps: int = 0
    checksum_failures: int = 0
    checksums_verified: int = 0
    resyncs: int = 0  # snapshots that restored a book lost to a gap or checksum failure
    trades: int = 0
    trades_duplicate: int = 0
    liquidations: int = 0
    funding: int = 0
    open_interest: int = 0
    book_tickers: int = 0
    tickers: int = 0
    other: int = 0  # acks, heartbeats, channels flowbook does not use
    bad_messages: int = 0
    issues: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.issues) < 1000:
            self.issues.append(text)


@dataclass
class BookSymbol:
    """One symbol of a feed.  ``state`` is the venue's own sequencing state (last ``u``, a checksum book,
    ...); the feed core never looks inside it."""

    sid: int
    name: str
    inst: Instrument | None = None
    px: DecimalGrid | None = None
    qty: DecimalGrid | None = None
    synced: bool = False
    lost: bool = False  # the book was lost since its last snapshot (the next snapshot is a resync)
    pending: list[Callable[[], None]] = field(default_factory=list)
    seen_prices: list[str] = field(default_factory=list)
    seen_qtys: list[str] = field(default_factory=list)
    state: object = None


class RecentIds:
    """The last ``window`` trade ids of one symbol, for dropping repeats when ids are not ordered (Bybit's
    UUIDs, Coinbase's strings): an id seen within the window is a repeat."""

    __slots__ = ("_order", "_seen")

    def __init__(self, window: int = 4096) -> None:
        self._order: deque[str] = deque(maxlen=window)
        self._seen: set[str] = set()

    def admit(self, tid: str) -> bool:
        """True for an id not seen within the window (and remember it); False for a repeat."""
        if tid in self._seen:
            return False
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(tid)
        self._seen.add(tid)
        return True


class EventRows:
    """Events accumulated as runs: the rows of one run (the levels of one depth message, or one event) share
    every column but side, price and qty, and every flag but the last row's.  :meth:`take` builds the
    array in one compiled pass over the runs (every venue feed writes its events through one of these)."""

    __slots__ = ("runs", "values", "side", "price", "qty", "n")

    def __init__(self) -> None:
        self.runs: list[int] = []  # per run, flat: rows, kind, flags, last row's flags, symbol, ts_ex, ts_local, ids
        self.values: list[float] = []
        self.side: list[int] = []
        self.price: list[int] = []
        self.qty: list[int] = []
        self.n = 0

    def one(self, kind: int, side: int, flags: int, sid: int, ts_ex: int, ts_local: int, price: int, qty: int,
            id1: int, id2: int, value: float) -> None:
        self.runs.extend((1, kind, flags, flags, sid, ts_ex, ts_local, id1, id2))
        self.values.append(value)
        self.side.append(side)
        self.price.append(price)
        self.qty.append(qty)
        self.n += 1

    def append(self, row: tuple) -> None:
        """One event as an ``EVENT_DTYPE`` tuple (kind, side, flags, symbol, ts_exchange, ts_local, price,
        qty, id, id2, value)."""
        self.one(*row)

    def run(self, kind: int, flags: int, last: int, sid: int, ts_ex: int, ts_local: int, id1: int, id2: int,
            side: Sequence[int], price: Sequence[int], qty: Sequence[int]) -> None:
        self.runs.extend((len(side), kind, flags, last, sid, ts_ex, ts_local, id1, id2))
        self.values.append(0.0)
        self.side.extend(side)
        self.price.extend(price)
        self.qty.extend(qty)
        self.n += len(side)

    def __len__(self) -> int:
        return self.n

    def take(self) -> np.ndarray:
        out = np.empty(self.n, EVENT_DTYPE)
        if self.n:
            _fill_runs(out, np.array(self.runs, np.int64).reshape(-1, 9), np.array(self.values), np.array(self.side, np.int64),
                       np.array(self.price, np.int64), np.array(self.qty, np.int64))
            self.runs, self.values, self.side, self.price, self.qty, self.n = [], [], [], [], [], 0
        return out


@njit(cache=True)
def _fill_runs(out, runs, values, side, price, qty):
    """:meth:`EventRows.take`'s rows, run by run (a batch is a few hundred rows: one compiled pass costs less
    than the NumPy calls of a column-by-column build)."""
    k = 0
    for r in range(runs.shape[0]):
        for j in range(k, k + runs[r, 0]):
            e = out[j]
            e["kind"] = runs[r, 1]
            e["flags"] = runs[r, 2]
            e["symbol"] = runs[r, 4]
            e["ts_exchange"] = runs[r, 5]
            e["ts_local"] = runs[r, 6]
            e["id"] = runs[r, 7]
            e["id2"] = runs[r, 8]
            e["value"] = values[r]
            e["side"] = side[j]
            e["price"] = price[j]
            e["qty"] = qty[j]
        if runs[r, 0] > 0:
            k += runs[r, 0]
            out[k - 1]["flags"] = runs[r, 3]


def decimals_step(texts: Iterable[str]) -> str:
    """The finest step the strings are written in (``["1.50", "2"]`` -> ``"0.01"``)."""
    d = max((len(t.partition(".")[2]) for t in texts), default=0)
    return "1" if d == 0 else "0." + "0" * (d - 1) + "1"


class FeedCore:
    """Bookkeeping and event emitters shared by venue feeds.

    Parameters
    ----------
    venue:
        the registered venue name, written into each :class:`~flowbook.events.Instrument`.
    strict:
        raise :class:`SyncError` at the first lost book or bad message instead of counting it.
    instruments:
        known instruments by symbol (from the venue's instrument endpoint); others are inferred from
        the first snapshot (tick = gcd of its prices, lot = the precision its sizes are written in).
    """

    def __init__(self, venue: str, strict: bool = False, instruments: dict[str, Instrument] | None = None) -> None:
        self.venue = venue
        self.strict = strict
        self.known = dict(instruments or {})
        self.stats = FeedStats()
        self.symbols: dict[str, BookSymbol] = {}
        self._rows = EventRows()
        self._resync: list[str] = []
        self.depth_msg_end: list[int] = []  # event index closing each applied depth message
        self.depth_msg_where: list[str] = []

    # -- the interface the replay loaders and the live adapters use
    def on_frame(self, ts_local: int, payload: bytes, where: str, symbol_hint: str | None = None,
                 **context: object) -> None:
        """Process one received frame: the venue's :meth:`decode`, then its :meth:`dispatch`.  ``where``
        names the frame in errors (``file:line``); ``context`` goes to ``dispatch`` (e.g. the connection
        a Coinbase frame came on).  A frame that cannot be decoded, or whose prices or sizes are off the
        instrument's grid, is a bad message (:meth:`bad`); one the venue's parser ignores counts as
        ``other``."""
        self.stats.messages += 1
        try:
            msg = self.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.bad(where, f"malformed message ({exc})")
            return
        if msg is None:
            self.stats.other += 1
            return
        try:
            self.dispatch(ts_local, msg, where, **context)
        except (PriceNotOnGrid, ValueError) as exc:
            self.bad(where, str(exc))

    def decode(self, payload: bytes) -> object | None:
        """The venue's parser: a frame -> a typed message (``None``: nothing flowbook uses)."""
        raise NotImplementedError

    def dispatch(self, ts_local: int, msg: object, where: str, **context: object) -> None:
        """Apply one decoded message (the venue's sync rule and the emitters)."""
        raise NotImplementedError

    @property
    def instruments(self) -> list[Instrument | None]:
        out: list[Instrument | None] = [None] * len(self.symbols)
        for s in self.symbols.values():
            out[s.sid] = s.inst
        return out

    def take_events(self) -> np.ndarray:
        """Events produced so far (and forget them)."""
        return self._rows.take()

    def synced(self, name: str) -> bool:
        s = self.symbols.get(name)
        return s is not None and s.synced

    def pop_resyncs(self) -> list[str]:
        """Symbols whose book was lost since the last call: the transport asks for a new snapshot."""
        out, self._resync = self._resync, []
        return out

    def finish(self) -> None:
        """End of input: define instruments for symbols that never got a snapshot, note unsynced books."""
        for s in self.symbols.values():
            if s.inst is None and s.pending:
                self.define(s, s.seen_prices or ["1"], s.seen_qtys or ["1"])
            if not s.synced:
                self.stats.note(f"{s.name}: book not synced at the end of the input")

    # -- symbols and instruments
    def symbol(self, name: str) -> BookSymbol:
        s = self.symbols.get(name)
        if s is None:
            s = self.symbols[name] = BookSymbol(sid=len(self.symbols), name=name)
            inst = self.known.get(name)
            if inst is not None:
                self._set_instrument(s, inst)
        return s

    def define(self, s: BookSymbol, prices: list[str], qtys: list[str], multiplier: float = 1.0,
               inverse: bool = False) -> None:
        """Infer the instrument from sample strings (a snapshot), then run what waited for it."""
        if s.inst is None:
            self._set_instrument(s, Instrument(self.venue, s.name, infer_step(prices), decimals_step(qtys),
                                               multiplier, inverse))

    def _set_instrument(self, s: BookSymbol, inst: Instrument) -> None:
        s.inst, s.px, s.qty = inst, inst.price_grid(), inst.qty_grid()
        pending, s.pending = s.pending, []
        s.seen_prices, s.seen_qtys = [], []
        for run in pending:
            run()

    def defer(self, s: BookSymbol, run: Callable[[], None], prices: Iterable[str] = (),
              qtys: Iterable[str] = ()) -> bool:
        """Before the instrument is known: keep ``run`` for later and return True.  Otherwise False
        (the caller converts now).  After too many waiting messages the instrument is inferred from the
        strings seen so far."""
        if s.inst is not None:
            return False
        s.pending.append(run)
        s.seen_prices.extend(prices)
        s.seen_qtys.extend(qtys)
        if len(s.pending) > _MAX_PENDING:
            self.define(s, s.seen_prices or ["1"], s.seen_qtys or ["1"])
        return True

    # -- problems
    def bad(self, where: str, why: str) -> None:
        """A message that cannot be used (malformed, off the price grid, ...)."""
        self.stats.bad_messages += 1
        text = f"{where}: {why}"
        if self.strict:
            raise SyncError(text)
        self.stats.note(text)

    def lose(self, s: BookSymbol, where: str, why: str, kind: str = "gap") -> None:
        """The symbol's book can no longer be trusted: clear it, unsync, ask for a new snapshot.

        ``kind`` is ``"gap"`` (sequence), ``"checksum"`` or ``"bad"`` (a depth message that could not be
        applied); it picks the counter.  ``why`` names the update ids so the summary can be checked.
        """
        if kind == "gap":
            self.stats.gaps += 1
        elif kind == "checksum":
            self.stats.checksum_failures += 1
        else:
            self.stats.bad_messages += 1
        text = f"{where}: {s.name}: {why}"
        if self.strict:
            raise SyncError(text)
        self.stats.note(text)
        was = s.synced
        s.synced = False
        s.lost = True
        if was:
            self._rows.append((int(Kind.BOOK_CLEAR), 0, _EOM, s.sid, 0, 0, 0, 0, NO_ID, NO_ID, 0.0))
        if s.name not in self._resync:
            self._resync.append(s.name)

    def desync(self, s: BookSymbol) -> None:
        """Forget the book without counting a fault (the transport resubscribes, e.g. after a reconnect
        or a dropped frame): clear it, and reset the venue's sequencing state (``s.state.reset()`` where
        it has one) so that only a new snapshot syncs the symbol again."""
        if s.synced:
            self._rows.append((int(Kind.BOOK_CLEAR), 0, _EOM, s.sid, 0, 0, 0, 0, NO_ID, NO_ID, 0.0))
        s.synced = False
        reset = getattr(s.state, "reset", None)
        if reset is not None:
            reset()

    # -- emitters (the instrument must be known)
    def _levels(self, s: BookSymbol, side: int, levels: Iterable[tuple[str, str]]) -> list[tuple[int, int, int]]:
        p2i, q2i = s.px.to_int, s.qty.to_int  # type: ignore[union-attr]
        return [(side, p2i(p), q2i(q)) for p, q in levels]

    def snapshot(self, s: BookSymbol, ts_exchange: int, ts_local: int, bids: Iterable[tuple[str, str]],
                 asks: Iterable[tuple[str, str]], update_id: int, where: str, aux_id: int = NO_ID) -> bool:
        """Replace the book with a full snapshot (``[(price, size), ...]`` strings, any order).
        ``aux_id`` goes into ``id2`` (a venue's second sequence, e.g. Bybit's cross sequence).

        Every level is converted before anything is written: a snapshot off the price grid leaves the
        feed untouched and returns False (counted as a bad message)."""
        bids, asks = list(bids), list(asks)
        if s.inst is None:
            self.define(s, [p for p, _ in bids[:500]] + [p for p, _ in asks[:500]],
                        [q for _, q in bids[:200]] + [q for _, q in asks[:200]])
        try:
            levels = self._levels(s, 1, bids) + self._levels(s, -1, asks)
        except PriceNotOnGrid as exc:
            self.bad(where, f"{s.name}: snapshot {update_id}: {exc}")
            return False
        self.stats.snapshots += 1
        if s.lost:
            self.stats.resyncs += 1
            s.lost = False
        rows, sid = self._rows, s.sid
        begin, end = int(Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN), int(Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE)
        if not levels:  # an empty book: the clear is the whole message
            rows.one(int(Kind.BOOK_CLEAR), 0, begin | end, sid, ts_exchange, ts_local, 0, 0, update_id, aux_id, 0.0)
        else:
            rows.one(int(Kind.BOOK_CLEAR), 0, begin, sid, ts_exchange, ts_local, 0, 0, update_id, aux_id, 0.0)
            side, tick, lots = zip(*levels, strict=True)
            rows.run(_SET, _SNAP, _SNAP | end, sid, ts_exchange, ts_local, update_id, aux_id, side, tick, lots)
        s.synced = True
        self.depth_msg_end.append(len(rows) - 1)
        self.depth_msg_where.append(where)
        return True

    def delta(self, s: BookSymbol, ts_exchange: int, ts_local: int, bids: Iterable[tuple[str, str]],
              asks: Iterable[tuple[str, str]], update_id: int, prev_id: int, where: str) -> bool:
        """Apply one depth message (absolute sizes, ``"0"`` deletes) to a synced book.

        Returns False, having lost the book (:meth:`lose`), when a level is off the price grid."""
        try:
            levels = self._levels(s, 1, bids) + self._levels(s, -1, asks)
        except PriceNotOnGrid as exc:
            self.lose(s, where, f"update {update_id}: {exc}", kind="bad")
            return False
        rows, sid = self._rows, s.sid
        if levels:
            side, tick, lots = zip(*levels, strict=True)
            rows.run(_SET, 0, _EOM, sid, ts_exchange, ts_local, update_id, prev_id, side, tick, lots)
        else:  # an empty message still advances the update id
            rows.one(_SET, 0, _EOM, sid, ts_exchange, ts_local, 0, 0, update_id, prev_id, 0.0)
        self.stats.diffs_applied += 1
        self.stats.levels_applied += max(len(levels), 1)
        self.depth_msg_end.append(len(rows) - 1)
        self.depth_msg_where.append(where)
        return True

    def trade(self, s: BookSymbol, ts_exchange: int, ts_local: int, side: int, price: str, qty: str,
              trade_id: int = NO_ID, forced: bool = False) -> None:
        """A trade; ``side`` is the aggressor's (+1 buy, -1 sell)."""
        flags = _EOM | (int(Flag.FORCED) if forced else 0)
        self._rows.append((int(Kind.TRADE), side, flags, s.sid, ts_exchange, ts_local, s.px.to_int(price),  # type: ignore[union-attr]
                           s.qty.to_int(qty), trade_id, NO_ID, 0.0))  # type: ignore[union-attr]
        self.stats.trades += 1

    def bbo(self, s: BookSymbol, ts_exchange: int, ts_local: int, bid: tuple[str, str], ask: tuple[str, str],
            update_id: int = NO_ID) -> None:
        """Best bid and offer (``(price, size)`` each)."""
        p2i, q2i = s.px.to_int, s.qty.to_int  # type: ignore[union-attr]
        self._rows.append((int(Kind.BBO), 1, 0, s.sid, ts_exchange, ts_local, p2i(bid[0]), q2i(bid[1]),
                           update_id, NO_ID, 0.0))
        self._rows.append((int(Kind.BBO), -1, _EOM, s.sid, ts_exchange, ts_local, p2i(ask[0]), q2i(ask[1]),
                           update_id, NO_ID, 0.0))
        self.stats.book_tickers += 1

    def liquidation(self, s: BookSymbol, ts_exchange: int, ts_local: int, side: int, price: str, qty: str) -> None:
        """A forced order; ``side`` is the forced order's side (+1 buy: a short was liquidated)."""
        self._rows.append((int(Kind.LIQUIDATION), side, _EOM, s.sid, ts_exchange, ts_local,
                           s.px.to_int(price), s.qty.to_int(qty), NO_ID, NO_ID, float(price)))  # type: ignore[union-attr]
        self.stats.liquidations += 1

    def mark_price(self, s: BookSymbol, ts_exchange: int, ts_local: int, mark: float) -> None:
        self._rows.append((int(Kind.MARK_PRICE), 0, _EOM, s.sid, ts_exchange, ts_local, 0, 0, NO_ID, NO_ID,
                           float(mark)))

    def funding(self, s: BookSymbol, ts_exchange: int, ts_local: int, rate: float, next_funding_ns: int) -> None:
        self._rows.append((int(Kind.FUNDING_RATE), 0, _EOM, s.sid, ts_exchange, ts_local, 0, 0, next_funding_ns,
                           NO_ID, float(rate)))
        self.stats.funding += 1

    def open_interest(self, s: BookSymbol, ts_exchange: int, ts_local: int, value: float) -> None:
        self._rows.append((int(Kind.OPEN_INTEREST), 0, _EOM, s.sid, ts_exchange, ts_local, 0, 0, NO_ID, NO_ID,
                           float(value)))
        self.stats.open_interest += 1
