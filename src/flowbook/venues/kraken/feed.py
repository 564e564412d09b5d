"""Kraken spot frames -> normalized events, per symbol, guarded by the book checksum.

Used by replay (frames from files) and by the live transport (frames from the socket), one frame at a
time.  Reads WebSocket v2 (``book``, ``trade``, ``ticker``, ``instrument``, request answers, heartbeats,
status) and, for the recorded captures, v1 (``book-<depth>``, ``trade``, ``ticker``, events).

Kraken sends no sequence numbers, so the checksum of every book message is the only loss detector (see
:mod:`.sequencer`).  A mismatch loses that symbol's book (``lose(kind="checksum")``): the transport
resubscribes it, and its next snapshot restores it.  The ``id`` of a depth event is the number of book
messages received for that symbol so far (``id2`` the previous one).

Symbols are written as v2 writes them (``BTC/USD``); v1 names are converted (``XBT/USD`` -> ``BTC/USD``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ...events import NO_ID, Instrument, PriceNotOnGrid
from ..common import BookSymbol, FeedCore, SyncError
from .checksum import fixed
from .messages import (
    BookData,
    BookMessage,
    BookUpdateV1,
    EventV1,
    InstrumentMessage,
    LevelV1,
    MethodResponse,
    TickerMessage,
    TickerV1,
    TradeMessage,
    TradesV1,
)
from .parser import decode, epoch_ns, parse_rfc3339_ns, v2_symbol
from .sequencer import ChecksumBook, Level

__all__ = ["KrakenFeed", "SyncError", "instrument_of"]

Texts = list[tuple[str, str]]  # (price, qty) decimal strings


def _step(places: int) -> str:
    return "1" if places <= 0 else "0." + "0" * (places - 1) + "1"


def _places(step: str) -> int:
    return len(step.partition(".")[2])


def instrument_of(symbol: str, price_precision: int, qty_precision: int) -> Instrument:
    """The instrument of a pair from its precisions (the ``instrument`` channel, AssetPairs
    ``pair_decimals`` / ``lot_decimals``): tick ``10**-price_precision``, lot ``10**-qty_precision``."""
    return Instrument("kraken", symbol, _step(price_precision), _step(qty_precision))


def _decimals(values: list[Decimal]) -> int:
    return max((max(0, -int(v.as_tuple().exponent)) for v in values), default=0)


@dataclass
class _State:
    book: ChecksumBook
    messages: int = 0  # book messages received for the symbol: the events' update id

    def reset(self) -> None:
        """The feed core forgets the book (a reconnect or a dropped frame): wait for a snapshot."""
        self.book.reset()


class KrakenFeed(FeedCore):
    """Turns Kraken spot frames (v2, or v1 captures) into events for any number of symbols.

    Parameters
    ----------
    strict:
        raise :class:`SyncError` at the first checksum mismatch or bad message.
    instruments:
        known instruments by v2 symbol; the tick and lot must be ``10**-price_precision`` and
        ``10**-qty_precision``, since their decimals format the v2 checksum.  The ``instrument`` channel
        defines the others; failing that, a snapshot's decimals are used (and noted).
    depth:
        the subscribed book depth (a subscribe answer or a v1 channel name ``book-<depth>`` overrides it
        per symbol): the book is truncated to it after every message.
    """

    def __init__(self, strict: bool = False, instruments: dict[str, Instrument] | None = None,
                 depth: int = 10) -> None:
        super().__init__("kraken", strict, instruments)
        self.depth = depth
        self.tickers: dict[str, tuple[int, object]] = {}  # symbol -> (receive time ns, latest ticker)

    # -- public
    decode = staticmethod(decode)

    def dispatch(self, ts_local: int, msg: object, where: str, **context: object) -> None:
        self._dispatch(ts_local, msg, where)

    def book(self, name: str) -> ChecksumBook | None:
        """The checksum book of a symbol (Kraken's view: truncated to the depth)."""
        s = self.symbols.get(name)
        return s.state.book if s is not None and isinstance(s.state, _State) else None

    # -- dispatch
    def _dispatch(self, ts_local: int, msg: object, where: str) -> None:
        if isinstance(msg, BookMessage):
            for d in msg.data:
                self._book_v2(ts_local, msg.type == "snapshot", d, where)
        elif isinstance(msg, BookUpdateV1):
            self._book_v1(ts_local, msg, where)
        elif isinstance(msg, TradeMessage):
            for t in msg.data:
                self._trade(self.symbol(t.symbol), parse_rfc3339_ns(t.timestamp) if t.timestamp else ts_local,
                            ts_local, 1 if t.side == "buy" else -1, format(t.price, "f"), format(t.qty, "f"),
                            t.trade_id)
        elif isinstance(msg, TradesV1):
            s = self.symbol(v2_symbol(msg.pair))
            for t in msg.trades:
                self._trade(s, epoch_ns(t.time), ts_local, 1 if t.side == "b" else -1, t.price, t.volume, NO_ID)
        elif isinstance(msg, TickerMessage):
            for tk in msg.data:
                self.stats.tickers += 1
                self.tickers[tk.symbol] = (ts_local, tk)
        elif isinstance(msg, TickerV1):
            self.stats.tickers += 1
            self.tickers[v2_symbol(msg.pair)] = (ts_local, msg)
        elif isinstance(msg, InstrumentMessage):
            self.stats.other += 1
            for p in msg.data.pairs:
                self._instrument(instrument_of(p.symbol, p.price_precision, p.qty_precision))
        elif isinstance(msg, MethodResponse):
            self._answer(msg, where)
        elif isinstance(msg, EventV1):
            self._event_v1(msg, where)

    def _state(self, s: BookSymbol) -> _State:
        if not isinstance(s.state, _State):
            s.state = _State(ChecksumBook(self.depth))
        return s.state

    def _instrument(self, inst: Instrument) -> None:
        self.known[inst.symbol] = inst
        s = self.symbols.get(inst.symbol)
        if s is not None and s.inst is None:
            self._set_instrument(s, inst)

    def _answer(self, msg: MethodResponse, where: str) -> None:
        if not msg.success:
            self.bad(where, f"{msg.method} {msg.symbol or ''} rejected: {msg.error}")
            return
        self.stats.other += 1
        r = msg.result
        if r is not None and r.channel == "book" and r.symbol and r.depth:
            self._state(self.symbol(r.symbol)).book.depth = r.depth

    def _event_v1(self, msg: EventV1, where: str) -> None:
        if msg.status == "error":
            self.bad(where, f"{msg.event} {msg.pair or ''} {msg.channelName}: {msg.errorMessage}")
            return
        self.stats.other += 1
        if msg.event == "subscriptionStatus" and msg.pair and msg.channelName.startswith("book-"):
            self._state(self.symbol(v2_symbol(msg.pair))).book.depth = int(msg.channelName[5:])

    # -- book
    def _book_v2(self, ts_local: int, is_snapshot: bool, d: BookData, where: str) -> None:
        s = self.symbol(d.symbol)
        st = self._state(s)
        st.messages += 1
        if not is_snapshot and not st.book.synced:
            self.stats.diffs_unsynced += 1
            return
        if s.inst is None:  # no instrument channel yet: the snapshot's decimals stand in for the precisions
            pp = _decimals([lv.price for lv in d.bids + d.asks])
            qp = _decimals([lv.qty for lv in d.bids + d.asks])
            self.stats.note(f"{where}: {s.name}: precisions not known, taken from the snapshot "
                            f"(price {pp}, qty {qp} decimals)")
            self._instrument(instrument_of(s.name, pp, qp))
        assert s.inst is not None
        pp, qp = _places(s.inst.tick_size), _places(s.inst.lot_size)
        try:
            bids = [(fixed(lv.price, pp), fixed(lv.qty, qp)) for lv in d.bids]
            asks = [(fixed(lv.price, pp), fixed(lv.qty, qp)) for lv in d.asks]
        except ValueError as exc:
            self._unusable(s, st, where, is_snapshot, f"{exc} (pair precisions {pp}/{qp})")
            return
        ts_ex = parse_rfc3339_ns(d.timestamp) if d.timestamp else ts_local
        if is_snapshot:
            self._snapshot(s, st, ts_ex, ts_local, bids, asks, d.checksum, where)
        else:
            self._update(s, st, ts_ex, ts_local, bids, asks, d.checksum, where)

    def _book_v1(self, ts_local: int, msg: BookUpdateV1, where: str) -> None:
        s = self.symbol(v2_symbol(msg.pair))
        st = self._state(s)
        st.messages += 1
        if msg.channel_name.startswith("book-") and msg.channel_name[5:].isdigit():
            st.book.depth = int(msg.channel_name[5:])
        levels: list[LevelV1] = []
        bids: list[LevelV1] = []
        asks: list[LevelV1] = []
        checksum: int | None = None
        is_snapshot = False
        for part in msg.parts:  # in array order (asks object, then bids object carrying "c")
            if part.as_ or part.bs:
                is_snapshot = True
            asks += part.as_ or part.a
            bids += part.bs or part.b
            levels += part.as_ + part.bs + part.a + part.b
            if part.c is not None:
                checksum = int(part.c)
        if not is_snapshot and not st.book.synced:
            self.stats.diffs_unsynced += 1
            return
        ts_ex = max((epoch_ns(lv.timestamp) for lv in levels), default=ts_local)
        bid_t = [(lv.price, lv.volume) for lv in bids]
        ask_t = [(lv.price, lv.volume) for lv in asks]
        if is_snapshot:
            self._snapshot(s, st, ts_ex, ts_local, bid_t, ask_t, checksum, where)
        else:
            self._update(s, st, ts_ex, ts_local, bid_t, ask_t, checksum, where)

    def _ticks(self, s: BookSymbol, texts: Texts) -> list[Level]:
        p2i, q2i = s.px.to_int, s.qty.to_int  # type: ignore[union-attr]
        return [(p2i(p), q2i(q), p, q) for p, q in texts]

    def _unusable(self, s: BookSymbol, st: _State, where: str, is_snapshot: bool, why: str) -> None:
        st.book.reset()
        if is_snapshot:
            self.bad(where, f"{s.name}: snapshot: {why}")
        else:
            self.lose(s, where, f"update {st.messages}: {why}", kind="bad")

    def _snapshot(self, s: BookSymbol, st: _State, ts_ex: int, ts_local: int, bids: Texts, asks: Texts,
                  checksum: int | None, where: str) -> None:
        # 1. A snapshot replaces the book (levels beyond the depth are not kept).
        if s.inst is None:
            self.define(s, [p for p, _ in bids[:500] + asks[:500]], [q for _, q in bids[:200] + asks[:200]])
        try:
            bl, al = self._ticks(s, bids), self._ticks(s, asks)
        except PriceNotOnGrid as exc:
            self._unusable(s, st, where, True, str(exc))
            return
        st.book.load_snapshot(bl, al)
        if checksum is not None:  # v2 snapshots carry one (4.)
            got = st.book.checksum()
            if got != checksum:
                st.book.failed += 1
                st.book.reset()
                self.lose(s, where, f"snapshot {st.messages}: checksum {got} computed, {checksum} sent",
                          kind="checksum")
                return
            st.book.verified += 1
            self.stats.checksums_verified += 1
        kept_bids, kept_asks = st.book.kept()
        self.snapshot(s, ts_ex, ts_local, kept_bids, kept_asks, st.messages, where)

    def _update(self, s: BookSymbol, st: _State, ts_ex: int, ts_local: int, bids: Texts, asks: Texts,
                checksum: int | None, where: str) -> None:
        try:
            bl, al = self._ticks(s, bids), self._ticks(s, asks)
        except PriceNotOnGrid as exc:
            self._unusable(s, st, where, False, str(exc))
            return
        # 2.-3. Apply the levels in order, then truncate to the depth.
        gone_bids, gone_asks = st.book.apply(bl, al)
        if checksum is not None:
            # 4. Compare the checksum of the top 10 levels.
            got = st.book.checksum()
            if got != checksum:
                # 5. Mismatch: the book is lost; the transport resubscribes this symbol only.
                st.book.failed += 1
                st.book.reset()
                self.lose(s, where, f"update {st.messages}: checksum {got} computed, {checksum} sent",
                          kind="checksum")
                return
            st.book.verified += 1
            self.stats.checksums_verified += 1
        # the levels truncated away leave flowbook's book too (Kraken sends no delete for them)
        self.delta(s, ts_ex, ts_local, bids + [(p, "0") for _, p in gone_bids],
                   asks + [(p, "0") for _, p in gone_asks], st.messages, st.messages - 1, where)

    # -- trades
    def _trade(self, s: BookSymbol, ts_ex: int, ts_local: int, side: int, price: str, qty: str, tid: int) -> None:
        def run() -> None:
            self.trade(s, ts_ex, ts_local, side, price, qty, tid)

        if not self.defer(s, run, (price,), (qty,)):
            run()
