"""Coinbase frames -> normalized events: Advanced Trade ``level2``/``market_trades`` and the Exchange feed.

Used by replay (frames from files) and by a live transport (frames from the socket), frame by frame.
Symbols are product ids (``BTC-USD``).  The sync rules are the numbered steps of :mod:`.sequencer`.

Connections: Advanced Trade numbers messages per connection (``sequence_num``), so :meth:`CoinbaseFeed.on_frame`
takes a keyword ``connection`` naming the socket a frame came on.  ``symbol_hint`` is not used for it: one
connection carries many products.  Without ``connection`` every frame counts as one connection (``""``),
which is right for a transport with one socket and for a recording file (one file holds one connection).

Trade sides (reference A.7): Exchange ``match``/``last_match`` ``side`` is the maker's, so the aggressor
is the opposite side.  Advanced Trade ``market_trades`` ``side`` is taken as the taker's side
(:attr:`CoinbaseFeed.market_trades_side_is_taker`; see ``docs/venues-coinbase.md`` for the sources and
the caveat).  Trades from before the subscription (the ``market_trades`` snapshot, ``last_match``) only
seed the deduplication: they are history, not events.

Tickers are no events: the latest per product is kept in :attr:`CoinbaseFeed.tickers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...events import NO_ID, Instrument, PriceNotOnGrid
from ..common import BookSymbol, FeedCore, FeedStats, SyncError
from .messages import (
    ExchangeError,
    ExchangeL2Update,
    ExchangeLastMatch,
    ExchangeMatch,
    ExchangeSnapshot,
    ExchangeTicker,
    L2Data,
    L2Event,
    MarketTrades,
    Ticker,
    TickerEntry,
)
from .parser import decode, parse_time_ns
from .sequencer import ConnectionSequencer, MatchSequence, RecentIds, Verdict

__all__ = ["CoinbaseFeed", "CoinbaseStats", "SyncError"]

VENUE = "coinbase"
_BOOK_SIDE = {"bid": 1, "offer": -1, "ask": -1, "buy": 1, "sell": -1}
_SIDE = {"buy": 1, "sell": -1}


@dataclass
class CoinbaseStats(FeedStats):
    """:class:`FeedStats` plus what only Coinbase has."""

    frames_duplicate: int = 0  # Advanced Trade messages whose sequence_num was not newer: dropped
    connections_restarted: int = 0  # numbering started over under one connection key (a reconnect)
    matches_missed: int = 0  # Exchange trade ids skipped over between two matches of a product
    trades_history: int = 0  # trades from before the subscription (not events)


@dataclass
class _Product:
    """Per product trade bookkeeping (``BookSymbol.state``)."""

    matches: MatchSequence = field(default_factory=MatchSequence)
    trade_ids: RecentIds = field(default_factory=RecentIds)


class CoinbaseFeed(FeedCore):
    """Turns Coinbase frames into events for any number of products.

    Parameters
    ----------
    strict:
        raise :class:`SyncError` at the first lost book or bad message.
    instruments:
        known instruments by product id (tick = ``quote_increment``, lot = ``base_increment``); others
        are inferred from their first snapshot.
    """

    market_trades_side_is_taker: bool = True

    def __init__(self, strict: bool = False, instruments: dict[str, Instrument] | None = None) -> None:
        super().__init__(VENUE, strict, instruments)
        self.stats: CoinbaseStats = CoinbaseStats()
        self.sequencer = ConnectionSequencer()
        self.tickers: dict[str, tuple[int, ExchangeTicker | TickerEntry]] = {}  # product -> (recv ns, latest)

    # -- the interface replay and live use
    decode = staticmethod(decode)

    def dispatch(self, ts_local: int, msg: object, where: str, connection: object = None, **context: object) -> None:
        """``connection`` names the socket the frame came on (Advanced Trade sequence numbers are per
        connection; see :meth:`FeedCore.on_frame`)."""
        if hasattr(msg, "sequence_num"):  # Advanced Trade envelope
            self._advanced(ts_local, msg, where, str(connection or ""))
        else:
            self._exchange(ts_local, msg, where)

    def reset_connection(self, connection: str) -> list[str]:
        """A connection closed: forget its numbering and the books that came on it (no fault counted);
        returns those products, which the transport subscribes again."""
        names = self.sequencer.reset(connection)
        for name in names:
            self.desync(self.symbol(name))
        return names

    # -- Advanced Trade
    def _advanced(self, ts_local: int, msg: object, where: str, conn: str) -> None:
        seq: int = msg.sequence_num  # type: ignore[attr-defined]
        verdict, expected = self.sequencer.check(conn, seq)
        if verdict is Verdict.RESTART:
            # 8. A new connection under the same key (a recording that spans a reconnect): its books wait
            # for their new snapshots, as the transport's reset_connection does live.
            self.stats.connections_restarted += 1
            self.stats.note(f"{where}: connection {conn!r}: sequence_num {seq} after {expected - 1}: new connection")
            self.reset_connection(conn)
            verdict, expected = self.sequencer.check(conn, seq)
        if verdict is Verdict.DUPLICATE:
            # 6. Repeated or reordered: drop the whole message.
            self.stats.frames_duplicate += 1
            if isinstance(msg, L2Data):
                self.stats.diffs_duplicate += 1
            self.stats.note(f"{where}: connection {conn!r}: sequence_num {seq} is not above {expected - 1}: dropped")
            return
        if verdict is Verdict.GAP:
            self._connection_gap(conn, where, f"sequence_num {seq}, expected {expected}")
        stamp: str = msg.timestamp  # type: ignore[attr-defined]
        ts_ex = parse_time_ns(stamp) if stamp else ts_local
        if isinstance(msg, L2Data):
            for ev in msg.events:
                self._l2_event(ts_local, ts_ex, seq, ev, where, conn)
        elif isinstance(msg, MarketTrades):
            self._market_trades(ts_local, ts_ex, msg, where)
        elif isinstance(msg, Ticker):
            for tev in msg.events:
                for t in tev.tickers:
                    self.tickers[t.product_id] = (ts_local, t)
                    self.stats.tickers += 1
        else:  # heartbeats, subscriptions
            self.stats.other += 1

    def _connection_gap(self, conn: str, where: str, why: str) -> None:
        # 5. Messages were lost: every product whose book came on this connection is lost (each counted
        # once: a product already waiting for its new snapshot is not lost again).
        names = self.sequencer.products(conn)
        lost = [s for s in map(self.symbol, names) if s.synced or not s.lost]
        if names and not lost:
            self.stats.note(f"{where}: connection {conn!r}: {why} (its books wait for their snapshots already)")
            return
        if not lost:  # a lost message may have been a first snapshot: counted, nothing to clear
            self.stats.gaps += 1
            text = f"{where}: connection {conn!r}: {why} (no book on it yet)"
            if self.strict:
                raise SyncError(text)
            self.stats.note(text)
            return
        for s in lost:
            self.lose(s, where, f"connection {conn!r}: {why}", kind="gap")

    def _l2_event(self, ts_local: int, ts_ex: int, seq: int, ev: L2Event, where: str, conn: str) -> None:
        s = self.symbol(ev.product_id)
        self.sequencer.add_product(conn, ev.product_id)
        bids: list[tuple[str, str]] = []
        asks: list[tuple[str, str]] = []
        latest = 0
        for u in ev.updates:
            side = _BOOK_SIDE.get(u.side)
            if side is None:
                self._bad_depth(s, where, f"{s.name}: unknown level side {u.side!r}")
                return
            (bids if side > 0 else asks).append((u.price_level, u.new_quantity))
            if u.event_time:
                latest = max(latest, parse_time_ns(u.event_time))
        if ev.type == "snapshot":
            # 3. A snapshot replaces the book: the product is synced.
            self.snapshot(s, ts_ex, ts_local, bids, asks, seq, where)
        elif ev.type == "update":
            # 4. Updates apply to a synced book only.
            if not s.synced:
                self.stats.diffs_unsynced += 1
                return
            self.delta(s, latest or ts_ex, ts_local, bids, asks, seq, NO_ID, where)
        else:
            self._bad_depth(s, where, f"{s.name}: unknown l2_data event type {ev.type!r}")

    def _bad_depth(self, s: BookSymbol, where: str, why: str) -> None:
        if s.synced:
            self.lose(s, where, why, kind="bad")
        else:
            self.bad(where, why)

    def _market_trades(self, ts_local: int, ts_ex: int, msg: MarketTrades, where: str) -> None:
        sign = 1 if self.market_trades_side_is_taker else -1
        for ev in msg.events:
            history = ev.type == "snapshot"
            for t in ev.trades:
                side = _SIDE.get(t.side.lower())
                if side is None:
                    self.bad(where, f"{t.product_id}: trade {t.trade_id}: unknown side {t.side!r}")
                    continue
                s = self.symbol(t.product_id)
                if not self._product(s).trade_ids.admit(t.trade_id):
                    self.stats.trades_duplicate += 1
                    continue
                if history:
                    self.stats.trades_history += 1
                    continue
                tid = int(t.trade_id) if t.trade_id.isdigit() else NO_ID
                ts = parse_time_ns(t.time) if t.time else ts_ex
                self._trade(s, ts, ts_local, sign * side, t.price, t.size, tid, where)

    # -- Exchange (legacy ws-feed)
    def _exchange(self, ts_local: int, msg: object, where: str) -> None:
        if isinstance(msg, ExchangeL2Update):
            s = self.symbol(msg.product_id)
            if not s.synced:
                self.stats.diffs_unsynced += 1
                return
            bids: list[tuple[str, str]] = []
            asks: list[tuple[str, str]] = []
            for side_text, price, size in msg.changes:
                side = _SIDE.get(side_text)
                if side is None:
                    self._bad_depth(s, where, f"{s.name}: unknown change side {side_text!r}")
                    return
                (bids if side > 0 else asks).append((price, size))
            ts = parse_time_ns(msg.time) if msg.time else ts_local
            self.delta(s, ts, ts_local, bids, asks, NO_ID, NO_ID, where)
        elif isinstance(msg, ExchangeSnapshot):
            s = self.symbol(msg.product_id)
            # the legacy snapshot has no time: the receive time stands in
            self.snapshot(s, parse_time_ns(msg.time) if msg.time else ts_local, ts_local, msg.bids, msg.asks,
                          NO_ID, where)
        elif isinstance(msg, ExchangeMatch):
            self._match(ts_local, msg, where)
        elif isinstance(msg, ExchangeTicker):
            self.tickers[msg.product_id] = (ts_local, msg)
            self.stats.tickers += 1
        elif isinstance(msg, ExchangeError):
            self.bad(where, f"error from the exchange: {msg.message} {msg.reason}".rstrip())
        else:  # heartbeat, subscriptions
            self.stats.other += 1

    def _match(self, ts_local: int, m: ExchangeMatch, where: str) -> None:
        s = self.symbol(m.product_id)
        keep, missed = self._product(s).matches.admit(m.sequence, m.trade_id)
        if not keep:
            self.stats.trades_duplicate += 1
            self.stats.note(f"{where}: {s.name}: match {m.trade_id} sequence {m.sequence} is not newer: dropped")
            return
        if missed:
            self.stats.matches_missed += missed
            self.stats.note(f"{where}: {s.name}: {missed} match(es) missed before trade {m.trade_id}")
        if isinstance(m, ExchangeLastMatch):
            self.stats.trades_history += 1
            return
        side = _SIDE.get(m.side)
        if side is None:
            self.bad(where, f"{s.name}: match {m.trade_id}: unknown side {m.side!r}")
            return
        # side is the maker's: the aggressor took the other side
        ts = parse_time_ns(m.time) if m.time else ts_local
        self._trade(s, ts, ts_local, -side, m.price, m.size, m.trade_id, where)

    # -- helpers
    def _product(self, s: BookSymbol) -> _Product:
        if s.state is None:
            s.state = _Product()
        return s.state  # type: ignore[return-value]

    def _trade(self, s: BookSymbol, ts_ex: int, ts_local: int, side: int, price: str, size: str, tid: int,
               where: str) -> None:
        def run() -> None:  # may run later, when the product's first snapshot defines the instrument
            try:
                self.trade(s, ts_ex, ts_local, side, price, size, tid)
            except PriceNotOnGrid as exc:
                self.bad(where, f"{s.name}: trade {tid}: {exc}")

        if not self.defer(s, run, [price], [size]):
            run()
