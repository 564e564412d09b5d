"""Binance frames -> normalized events, per symbol, through the sequencer.

Used by replay (frames from files) and by the live adapter (frames from the socket and REST), so a
recording replays through exactly the code that processed it live.

Besides depth, trades, book tickers, liquidations and mark prices, the feed reads REST open interest
(``OPEN_INTEREST`` events), REST recent trades (``TRADE`` events, deduplicated by trade id like the
stream trades: see :mod:`.dedup`) and 24 h tickers (no event: the latest per symbol in
:attr:`BinanceFeed.tickers`).  A symbol that never receives a diff is a polled book: each newer REST
snapshot replaces it (see :meth:`BinanceFeed._replace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np

from ...events import NO_ID, DecimalGrid, Flag, Instrument, Kind, PriceNotOnGrid
from ..common import EventRows
from .dedup import TradeIds
from .instruments import instrument_for
from .messages import (
    AggTrade,
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    ForceOrder,
    MarkPrice,
    OpenInterest,
    RecentTrades,
    Ticker,
    Trade,
)
from .parser import Market, decode, market_of
from .sequencer import Action, DepthSequencer

__all__ = ["BinanceFeed", "FeedStats", "SyncError"]

_MS = 1_000_000
_EOM = int(Flag.END_OF_MESSAGE)
_MAX_PENDING = 10_000
_SET, _CLEAR, _TRADE = int(Kind.BOOK_SET), int(Kind.BOOK_CLEAR), int(Kind.TRADE)
_SNAP = int(Flag.SNAPSHOT | Flag.INCOMPLETE)


class SyncError(RuntimeError):
    """Strict mode: the book cannot be trusted (gap, stale snapshot, crossed book, bad message)."""


@dataclass
class FeedStats:
    messages: int = 0
    diffs_applied: int = 0
    diffs_stale: int = 0
    diffs_duplicate: int = 0  # u <= the last applied u: dropped
    levels_applied: int = 0
    snapshots: int = 0
    snapshots_unused: int = 0
    gaps: int = 0
    resyncs: int = 0
    stale_snapshots: int = 0
    trades: int = 0
    trades_duplicate: int = 0  # trade id seen already on that stream: dropped
    trades_late: int = 0  # trade id below the highest seen, not seen before (reordered): kept
    book_tickers: int = 0
    tickers: int = 0
    open_interest: int = 0
    snapshots_replaced: int = 0  # polled books: a newer snapshot replaced the book
    other: int = 0
    bad_messages: int = 0
    issues: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.issues) < 1000:
            self.issues.append(text)


@dataclass
class _Symbol:
    sid: int
    name: str
    market: Market | None
    seq: DepthSequencer | None = None
    inst: Instrument | None = None
    px: DecimalGrid | None = None
    qty: DecimalGrid | None = None
    pending: list[tuple[int, object, str]] = field(default_factory=list)
    seen_prices: list[str] = field(default_factory=list)
    seen_qtys: list[str] = field(default_factory=list)
    had_gap: bool = False
    diffs_seen: bool = False  # False while the book is only polled (snapshots, no diffs)
    poll_levels: dict[tuple[int, int], int] | None = None  # (side, tick) -> lots of the last polled book
    trade_ids: dict[str, TradeIds] = field(default_factory=dict)


class BinanceFeed:
    """Turns Binance frames into events for any number of symbols.

    Parameters
    ----------
    strict:
        raise :class:`SyncError` on the first gap, stale snapshot or bad message instead of
        reporting it and resyncing at the next snapshot.
    tick_sizes:
        optional ``{symbol: tick}`` overrides (e.g. from exchangeInfo).
    contract_sizes:
        optional ``{symbol: contract size}`` of COIN-M contracts (exchangeInfo ``contractSize``).
    locations:
        keep :attr:`depth_msg_end` and :attr:`depth_msg_where` (replay's per-message source locations);
        the live adapter has no use for them.
    """

    def __init__(self, strict: bool = False, tick_sizes: dict[str, str] | None = None,
                 contract_sizes: dict[str, float] | None = None, locations: bool = True) -> None:
        self.strict = strict
        self.tick_sizes = dict(tick_sizes or {})
        self.contract_sizes = dict(contract_sizes or {})
        self.stats = FeedStats()
        self.symbols: dict[str, _Symbol] = {}
        self.tickers: dict[str, tuple[int, Ticker]] = {}  # symbol -> (receive time ns, latest 24 h ticker)
        self.open_interest: dict[str, tuple[int, OpenInterest]] = {}  # symbol -> (receive time ns, latest)
        self._rows = EventRows()
        self._grids: dict[str, DecimalGrid] = {}
        self.locations = locations
        self.depth_msg_end: list[int] = []  # event index closing each applied depth message
        self.depth_msg_where: list[str] = []

    # -- public
    @property
    def instruments(self) -> list[Instrument | None]:
        out: list[Instrument | None] = [None] * len(self.symbols)
        for s in self.symbols.values():
            out[s.sid] = s.inst
        return out

    def take_events(self) -> np.ndarray:
        """Events produced so far (and forget them)."""
        return self._rows.take()

    def on_frame(self, ts_local: int, payload: bytes, where: str, symbol_hint: str | None = None) -> None:
        """Process one received frame.  ``where`` names it in errors (``file:line``)."""
        self.stats.messages += 1
        try:
            msg = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._bad(where, f"malformed message ({exc})")
            return
        if msg is None:
            self.stats.other += 1
            return
        try:
            self._dispatch(ts_local, msg, where, symbol_hint)
        except (PriceNotOnGrid, ValueError) as exc:
            self._bad(where, str(exc))

    def finish(self) -> None:
        """End of input: convert what is still pending (symbols that never got a snapshot)."""
        for s in self.symbols.values():
            if s.inst is None and s.pending:
                self._define(s, s.seen_prices, s.seen_qtys)
            if s.seq is not None and not s.seq.synced:
                self.stats.note(f"{s.name}: book never synced (no usable snapshot)")

    # -- internals
    def _bad(self, where: str, why: str) -> None:
        self.stats.bad_messages += 1
        text = f"{where}: {why}"
        if self.strict:
            raise SyncError(text)
        self.stats.note(text)

    def _symbol(self, name: str, market: Market | None) -> _Symbol:
        s = self.symbols.get(name)
        if s is None:
            s = _Symbol(sid=len(self.symbols), name=name, market=market)
            self.symbols[name] = s
        if s.market is None and market is not None:
            s.market = market
        if s.seq is None and s.market is not None:
            s.seq = DepthSequencer(futures=s.market != "spot")
        return s

    def _define(self, s: _Symbol, prices: list[str], qtys: list[str]) -> None:
        market: Market = s.market or "spot"
        s.inst = instrument_for(market, s.name, prices or ["1"], qtys or ["1"], self.tick_sizes.get(s.name),
                                self.contract_sizes.get(s.name))
        s.px, s.qty = self._grid(s.inst.tick_size), self._grid(s.inst.lot_size)
        pending, s.pending = s.pending, []
        s.seen_prices, s.seen_qtys = [], []
        for ts_local, m, where in pending:
            self._convert(s, ts_local, m, where)

    def _grid(self, step: str) -> DecimalGrid:
        """Symbols with the same step share a grid, and so its cache of conversions: fewer, warmer caches."""
        g = self._grids.get(step)
        if g is None:
            g = self._grids[step] = DecimalGrid(step)
        return g

    def _dispatch(self, ts_local: int, msg: object, where: str, hint: str | None) -> None:
        if isinstance(msg, DepthSnapshot):
            name = msg.symbol or hint
            if name is None:
                self._bad(where, "depth snapshot without a symbol (no stream in this file names one)")
                return
            s = self._symbol(name, market_of(msg))
            self._on_snapshot(s, ts_local, msg, where)
            return
        if isinstance(msg, DepthUpdate):
            s = self._symbol(msg.s, market_of(msg))
            self._on_diff(s, ts_local, msg, where)
            return
        if isinstance(msg, Ticker):  # statistics, not an event: keep the latest
            self.stats.tickers += 1
            self.tickers[msg.s] = (ts_local, msg)
            return
        if isinstance(msg, RecentTrades):
            if hint is None:
                self._bad(where, "recent trades without a symbol (no stream in this file names one)")
                return
            name = hint
        elif isinstance(msg, ForceOrder):
            name = msg.o.s
        elif isinstance(msg, OpenInterest):
            name = msg.symbol
        else:
            name = msg.s  # type: ignore[attr-defined]
        s = self._symbol(name, None)
        if s.inst is None:
            if isinstance(msg, (Trade, AggTrade)):
                s.seen_prices.append(msg.p)
                s.seen_qtys.append(msg.q)
            elif isinstance(msg, RecentTrades):
                s.seen_prices.extend(t.price for t in msg.trades)
                s.seen_qtys.extend(t.qty for t in msg.trades)
            s.pending.append((ts_local, msg, where))
            if len(s.pending) > _MAX_PENDING:  # no snapshot coming: infer from what was seen
                self._define(s, s.seen_prices, s.seen_qtys)
            return
        self._convert(s, ts_local, msg, where)

    def _on_snapshot(self, s: _Symbol, ts_local: int, snap: DepthSnapshot, where: str) -> None:
        self.stats.snapshots += 1
        assert s.seq is not None
        if s.inst is None or s.px is None:
            # a lot precision needs sample quantities; the snapshot has plenty
            self._define(
                s,
                [p for p, _ in snap.bids[:500]] + [p for p, _ in snap.asks[:500]],
                [q for _, q in snap.bids[:50]] + [q for _, q in snap.asks[:50]],
            )
        px, qg = s.px, s.qty
        assert px is not None and qg is not None
        try:  # convert every level first: a bad snapshot must leave the sequencer untouched
            levels = [(side, px.to_int(p), qg.to_int(q)) for side, lv in ((1, snap.bids), (-1, snap.asks))
                      for p, q in lv]
        except PriceNotOnGrid as exc:
            self._bad(where, f"snapshot lastUpdateId={snap.lastUpdateId}: {exc}")
            return
        if s.seq.synced and not s.diffs_seen:
            self._replace(s, ts_local, snap, levels)
            return
        dup0 = s.seq.duplicates
        accepted, diffs, issue = s.seq.on_snapshot(snap)
        self.stats.diffs_duplicate += s.seq.duplicates - dup0  # repeats met in the buffer
        if not accepted:
            if issue is not None:
                self.stats.stale_snapshots += 1
                self._issue(s, where, f"stale snapshot: lastUpdateId {issue.got_first} older than the "
                            f"first buffered diff U={issue.expected}")
            else:
                self.stats.snapshots_unused += 1
            return
        if s.had_gap:
            self.stats.resyncs += 1
        ts_ex = (snap.E or 0) * _MS if snap.E else ts_local
        self._emit_snapshot(s, ts_local, ts_ex, snap.lastUpdateId, levels)
        s.poll_levels = None if s.diffs_seen else {(side, tick): lots for side, tick, lots in levels}
        for d, tag in diffs:
            self._apply_diff(s, d, tag)
        if issue is not None:
            self._on_gap(s, where, issue)

    def _replace(self, s: _Symbol, ts_local: int, snap: DepthSnapshot, levels: list[tuple[int, int, int]]) -> None:
        """A polled book (no diffs): a newer snapshot replaces it, written as one depth message that sets
        every level of the new snapshot and deletes every other level of the previous one.  The book
        then holds exactly the snapshot's levels, and OFI sees consecutive states of one book."""
        assert s.seq is not None
        prev = s.seq.last_u
        if not s.seq.advance(snap.lastUpdateId):  # not newer than the book: nothing to do
            self.stats.snapshots_unused += 1
            return
        self.stats.snapshots_replaced += 1
        new = {(side, tick): lots for side, tick, lots in levels}
        old = s.poll_levels or {}
        lid = snap.lastUpdateId
        ts_ex = snap.E * _MS if snap.E else ts_local
        changed = [(side, tick, 0) for side, tick in sorted(old.keys() - new.keys())]
        changed += [(side, tick, lots) for (side, tick), lots in new.items() if old.get((side, tick)) != lots]
        # unchanged: the message still advances the update id
        sides, ticks, lots = zip(*changed, strict=True) if changed else ((0,), (0,), (0,))
        self._rows.run(_SET, 0, _EOM, s.sid, ts_ex, ts_local, lid, prev, sides, ticks, lots)
        s.poll_levels = new
        self.stats.levels_applied += len(sides)
        self._located(f"snapshot lastUpdateId={lid}")

    def _on_diff(self, s: _Symbol, ts_local: int, d: DepthUpdate, where: str) -> None:
        assert s.seq is not None
        s.diffs_seen = True
        s.poll_levels = None
        action, issue = s.seq.on_diff(d, (ts_local, where))
        if action is Action.APPLY:
            self._apply_diff(s, d, (ts_local, where))
        elif action is Action.DUPLICATE:
            self.stats.diffs_duplicate += 1
        elif action is Action.STALE:
            self.stats.diffs_stale += 1
        elif action is Action.GAP:
            assert issue is not None
            self._on_gap(s, where, issue)
            s.seq.on_diff(d, (ts_local, where))  # buffer it for the next snapshot

    def _on_gap(self, s: _Symbol, where: str, issue: object) -> None:
        self.stats.gaps += 1
        s.had_gap = True
        self._issue(s, where, f"gap: expected {'pu' if s.market != 'spot' else 'U'}="
                    f"{issue.expected}, got U={issue.got_first} u={issue.got_last}"  # type: ignore[attr-defined]
                    + (f" pu={issue.prev}" if issue.prev is not None else ""))  # type: ignore[attr-defined]
        # the book is invalid until the next snapshot
        self._rows.one(_CLEAR, 0, _EOM, s.sid, 0, 0, 0, 0, NO_ID, NO_ID, 0.0)

    def _issue(self, s: _Symbol, where: str, text: str) -> None:
        msg = f"{where}: {s.name}: {text}"
        if self.strict:
            raise SyncError(msg)
        self.stats.note(msg)

    def _located(self, where: str) -> None:
        """The depth message just emitted ends at the last row (replay's source locations)."""
        if self.locations:
            self.depth_msg_end.append(self._rows.n - 1)
            self.depth_msg_where.append(where)

    def _emit_snapshot(self, s: _Symbol, ts_local: int, ts_ex: int, lid: int,
                       levels: list[tuple[int, int, int]]) -> None:
        end = _SNAP | int(Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE)
        if levels:
            self._rows.one(_CLEAR, 0, int(Flag.SNAPSHOT | Flag.SNAPSHOT_BEGIN), s.sid, ts_ex, ts_local, 0, 0, lid,
                           NO_ID, 0.0)
            self._rows.run(_SET, _SNAP, end, s.sid, ts_ex, ts_local, lid, NO_ID, *zip(*levels, strict=True))
        else:  # the clear is the whole message
            self._rows.one(_CLEAR, 0, end, s.sid, ts_ex, ts_local, 0, 0, lid, NO_ID, 0.0)
        self._located(f"snapshot lastUpdateId={lid}")

    def _apply_diff(self, s: _Symbol, d: DepthUpdate, tag: object) -> None:
        ts_local, where = tag  # type: ignore[misc]
        px, qg = s.px, s.qty
        assert px is not None and qg is not None
        ts_ex, sid, levels = d.E * _MS, s.sid, d.b + d.a
        sides = [1] * len(d.b) + [-1] * len(d.a)
        if levels:
            ps, qs = zip(*levels, strict=True)
            try:
                ticks, lots = px.to_ints(ps), qg.to_ints(qs)
            except PriceNotOnGrid:  # as level by level: the levels before the bad one are out, then it raises
                for side, (p, q) in zip(sides, levels, strict=True):
                    self._rows.one(_SET, side, 0, sid, ts_ex, ts_local, px.to_int(p), qg.to_int(q), d.u, d.U, 0.0)
                raise
        else:  # an empty diff still advances the update id
            sides, ticks, lots = [0], [0], [0]
        self._rows.run(_SET, 0, _EOM, sid, ts_ex, ts_local, d.u, d.U, sides, ticks, lots)
        self.stats.diffs_applied += 1
        self.stats.levels_applied += len(sides)
        self._located(where)

    def _convert(self, s: _Symbol, ts_local: int, m: object, where: str) -> None:
        px, qg = s.px, s.qty
        assert px is not None and qg is not None
        sid = s.sid
        rows = self._rows
        if isinstance(m, Trade):
            if self._admit(s, "trade", m.t):
                self.stats.trades += 1
                rows.one(_TRADE, -1 if m.m else 1, _EOM, sid, m.T * _MS, ts_local, px.to_int(m.p),
                         qg.to_int(m.q), m.t, NO_ID, 0.0)
        elif isinstance(m, AggTrade):
            if self._admit(s, "aggTrade", m.a):
                self.stats.trades += 1
                rows.one(_TRADE, -1 if m.m else 1, _EOM, sid, m.T * _MS, ts_local, px.to_int(m.p),
                         qg.to_int(m.q), m.a, m.f, 0.0)
        elif isinstance(m, RecentTrades):
            ids = s.trade_ids.setdefault("rest", TradeIds())
            for t in m.trades:  # the overlap with the previous poll is expected, not counted
                if ids.admit(t.id):
                    self.stats.trades += 1
                    rows.one(_TRADE, -1 if t.isBuyerMaker else 1, _EOM, sid, t.time * _MS, ts_local,
                             px.to_int(t.price), qg.to_int(t.qty), t.id, NO_ID, 0.0)
        elif isinstance(m, OpenInterest):
            self.stats.open_interest += 1
            self.open_interest[s.name] = (ts_local, m)
            rows.one(int(Kind.OPEN_INTEREST), 0, _EOM, sid, m.time * _MS, ts_local, 0, 0, NO_ID, NO_ID,
                     float(m.openInterest))
        elif isinstance(m, BookTicker):
            self.stats.book_tickers += 1
            ts_ex = (m.E or 0) * _MS
            rows.one(int(Kind.BBO), 1, 0, sid, ts_ex, ts_local, px.to_int(m.b), qg.to_int(m.B), m.u,
                     NO_ID, 0.0)
            rows.one(int(Kind.BBO), -1, _EOM, sid, ts_ex, ts_local, px.to_int(m.a), qg.to_int(m.A), m.u,
                     NO_ID, 0.0)
        elif isinstance(m, ForceOrder):
            o = m.o
            rows.one(int(Kind.LIQUIDATION), 1 if o.S == "BUY" else -1, _EOM, sid, o.T * _MS, ts_local,
                     px.to_int(o.p), qg.to_int(o.q), NO_ID, NO_ID, float(o.ap))
        elif isinstance(m, MarkPrice):
            ts_ex = m.E * _MS
            if m.r == "":  # delivery contracts carry no funding rate
                rows.one(int(Kind.MARK_PRICE), 0, _EOM, sid, ts_ex, ts_local, 0, 0, NO_ID, NO_ID, float(m.p))
            else:
                rows.one(int(Kind.MARK_PRICE), 0, 0, sid, ts_ex, ts_local, 0, 0, NO_ID, NO_ID, float(m.p))
                rows.one(int(Kind.FUNDING_RATE), 0, _EOM, sid, ts_ex, ts_local, 0, 0, m.T * _MS, NO_ID,
                         float(m.r))

    def _admit(self, s: _Symbol, stream: str, tid: int) -> bool:
        """Whether a stream trade is new (or late); a repeat is dropped and counted."""
        ids = s.trade_ids.get(stream)
        if ids is None:  # (setdefault would build a TradeIds for every trade)
            ids = s.trade_ids[stream] = TradeIds()
        got = ids.admit(tid)
        if got == 0:
            self.stats.trades_duplicate += 1
        elif got == 2:
            self.stats.trades_late += 1
        return got != 0
