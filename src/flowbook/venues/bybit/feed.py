"""Bybit v5 frames -> normalized events, per symbol (spot ``bybit``, USDT perpetuals ``bybit-linear``).

Used by replay (frames from files) and by the live transport (frames from the socket), one frame at a time.

- ``orderbook.{depth}.{symbol}``: snapshots and deltas through :class:`~.sequencer.BookSequencer`.  Events
  carry ``u`` in ``id`` and ``seq`` (cross sequence) in ``id2``; exchange time is ``cts`` (matching engine)
  when present, else ``ts``.  A symbol follows the first depth it is seen with; pushes of another depth of
  the same symbol are counted (``depth_other``) and not applied.
- ``publicTrade.{symbol}``: ``TRADE`` events, side = taker side, exchange time ``T``.  Repeated trade ids
  (``i``) are dropped per symbol.  ``i`` becomes the event ``id`` by :func:`trade_id`.  Block trades
  (``BT``) are trades on the tape and are kept (counted in ``trades_block``).
- ``allLiquidation.{symbol}``: ``LIQUIDATION`` events.  Bybit's ``S`` is the liquidated *position's* side,
  so the forced order's side is the opposite (``S = Buy``, a long liquidated -> side -1).
- ``tickers.{symbol}``: the latest full ticker per symbol in :attr:`BybitFeed.tickers` (deltas merged into
  the last state).  On ``bybit-linear`` each push also gives ``MARK_PRICE`` (when ``markPrice`` is in it),
  ``FUNDING_RATE`` (``fundingRate`` or ``nextFundingTime`` in it; value = rate, ``id`` = next funding time
  in ns) and ``OPEN_INTEREST`` (``openInterest`` in it, base coin).  Spot tickers give no event.
- Operation answers and pongs count as ``other``; a refused one (``success: false``) is a bad message
  naming Bybit's ``ret_msg``.  An instruments-info REST answer defines tick and lot sizes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import msgspec

from ...events import NO_ID, Instrument, PriceNotOnGrid
from ..common import BookSymbol, FeedCore, FeedStats, RecentIds
from .messages import Ack, AllLiquidation, BookData, InstrumentsInfo, OrderBook, PublicTrade, Ticker, Trade
from .parser import decode
from .sequencer import Action, BookSequencer

__all__ = ["VENUES", "BybitFeed", "BybitStats", "trade_id"]

VENUES = {"spot": "bybit", "linear": "bybit-linear"}
_MS = 1_000_000
_ID_MASK = (1 << 63) - 1


@dataclass
class BybitStats(FeedStats):
    snapshots_restart: int = 0  # snapshots with u == 1 that replaced a later u (service restart)
    snapshots_repeat: int = 0  # snapshots repeating the previous u (level-1 streams, nothing changed)
    depth_other: int = 0  # book pushes of a second depth of a symbol: not applied
    trades_block: int = 0  # block trades (BT), kept as trades


def trade_id(text: str) -> int:
    """Bybit trade id ``i`` -> event ``id``: an id of digits that fits int64 as itself (spot), anything
    else (the UUIDs of derivatives) as the first 63 bits of its BLAKE2b digest, the same in every run."""
    if text.isdigit() and int(text) <= _ID_MASK:
        return int(text)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & _ID_MASK


def _step(text: str) -> str:
    return format(Decimal(text).normalize(), "f")


class BybitFeed(FeedCore):
    """Turns Bybit v5 public frames of one market into events for any number of symbols.

    Parameters
    ----------
    market:
        ``"linear"`` (USDT perpetuals, venue ``bybit-linear``) or ``"spot"`` (venue ``bybit``).
    strict:
        raise :class:`~flowbook.venues.common.SyncError` at the first gap or bad message.
    instruments:
        known instruments by symbol (tick and lot from ``/v5/market/instruments-info``); others are
        inferred from the symbol's first snapshot.
    """

    def __init__(self, market: str = "linear", strict: bool = False,
                 instruments: dict[str, Instrument] | None = None) -> None:
        if market not in VENUES:
            raise ValueError(f"unknown Bybit market {market!r}; known: {', '.join(VENUES)}")
        super().__init__(VENUES[market], strict, instruments)
        self.market = market
        self.stats: BybitStats = BybitStats()
        self.tickers: dict[str, tuple[int, Ticker]] = {}  # symbol -> (receive time ns, merged full ticker)
        self._trade_ids: dict[str, RecentIds] = {}

    # -- the feed interface
    decode = staticmethod(decode)

    def dispatch(self, ts_local: int, msg: object, where: str, **context: object) -> None:
        if isinstance(msg, OrderBook):
            self._on_book(ts_local, msg, where)
        elif isinstance(msg, PublicTrade):
            self._on_trades(ts_local, msg, where)
        elif isinstance(msg, AllLiquidation):
            self._on_liquidations(ts_local, msg, where)
        elif isinstance(msg, Ticker):
            self._on_ticker(ts_local, msg)
        elif isinstance(msg, Ack):
            self._on_ack(msg, where)
        elif isinstance(msg, InstrumentsInfo):
            self._on_instruments(msg, where)
        else:
            self.stats.other += 1

    def finish(self) -> None:
        """End of input: symbols seen only in tickers get an instrument from their ticker prices."""
        for s in self.symbols.values():
            if s.inst is None and not s.pending:
                self.define(s, s.seen_prices or ["1"], s.seen_qtys or ["1"])
        super().finish()

    # -- books
    def _sequencer(self, s: BookSymbol) -> BookSequencer:
        if s.state is None:
            s.state = BookSequencer()
        return s.state  # type: ignore[return-value]

    def _on_book(self, ts_local: int, m: OrderBook, where: str) -> None:
        d = m.data
        s = self.symbol(d.s)
        seq = self._sequencer(s)
        depth = m.depth
        if seq.depth is None:
            seq.depth = depth
        elif depth != seq.depth:
            self.stats.depth_other += 1
            return
        ts_ex = (m.cts if m.cts else m.ts) * _MS
        if m.type == "snapshot":
            self._on_snapshot(s, seq, ts_ex, ts_local, d, where)
        elif m.type == "delta":
            self._on_delta(s, seq, ts_ex, ts_local, d, where)
        else:
            self.bad(where, f"{d.s}: unknown book message type {m.type!r}")

    def _on_snapshot(self, s: BookSymbol, seq: BookSequencer, ts_ex: int, ts_local: int, d: BookData,
                     where: str) -> None:
        if s.inst is None:
            self.define(s, [p for p, _ in d.b[:500]] + [p for p, _ in d.a[:500]],
                        [q for _, q in d.b[:200]] + [q for _, q in d.a[:200]])
        why = self._off_grid(s, d)
        if why is not None:  # the book this snapshot replaces is out of date: lose it
            seq.reset()
            self.lose(s, where, f"snapshot u={d.u}: {why}", kind="bad")
            return
        v = seq.on_snapshot(d.u, d.seq)
        self.stats.snapshots_restart += v.restart
        self.stats.snapshots_repeat += v.repeat
        # the cross sequence goes into id2, as on deltas
        self.snapshot(s, ts_ex, ts_local, d.b, d.a, d.u, where, NO_ID if d.seq is None else d.seq)

    def _on_delta(self, s: BookSymbol, seq: BookSequencer, ts_ex: int, ts_local: int, d: BookData,
                  where: str) -> None:
        last = seq.last_u
        v = seq.on_delta(d.u, d.seq)
        if v.action is Action.APPLY:
            if not self.delta(s, ts_ex, ts_local, d.b, d.a, d.u, NO_ID if d.seq is None else d.seq, where):
                seq.reset()  # a level off the price grid: the feed core lost the book
        elif v.action is Action.DUPLICATE:
            self.stats.diffs_duplicate += 1
        elif v.action is Action.UNSYNCED:
            self.stats.diffs_unsynced += 1
        else:
            self.lose(s, where, f"gap: expected u={v.expected}, got u={d.u} (previous u={last})")

    @staticmethod
    def _off_grid(s: BookSymbol, d: BookData) -> str | None:
        p2i, q2i = s.px.to_int, s.qty.to_int  # type: ignore[union-attr]
        try:
            for p, q in d.b:
                p2i(p), q2i(q)
            for p, q in d.a:
                p2i(p), q2i(q)
        except PriceNotOnGrid as exc:
            return str(exc)
        return None

    # -- trades and liquidations (converted once the instrument is known)
    def _later(self, s: BookSymbol, where: str, run: partial, prices: tuple[str, ...], qtys: tuple[str, ...]) -> None:
        guarded = partial(self._guarded, run, where)
        if not self.defer(s, guarded, prices, qtys):
            guarded()

    def _guarded(self, run: partial, where: str) -> None:
        try:
            run()
        except PriceNotOnGrid as exc:
            self.bad(where, str(exc))

    def _on_trades(self, ts_local: int, m: PublicTrade, where: str) -> None:
        for t in m.data:
            ids = self._trade_ids.get(t.s)
            if ids is None:
                ids = self._trade_ids[t.s] = RecentIds()
            if not ids.admit(t.i):
                self.stats.trades_duplicate += 1
                continue
            if t.S not in ("Buy", "Sell"):
                self.bad(where, f"{t.s}: trade {t.i}: unknown taker side {t.S!r}")
                continue
            self.stats.trades_block += t.BT
            s = self.symbol(t.s)
            self._later(s, where, partial(self._trade, s, ts_local, t), (t.p,), (t.v,))

    def _trade(self, s: BookSymbol, ts_local: int, t: Trade) -> None:
        self.trade(s, t.T * _MS, ts_local, 1 if t.S == "Buy" else -1, t.p, t.v, trade_id(t.i))

    def _on_liquidations(self, ts_local: int, m: AllLiquidation, where: str) -> None:
        for q in m.data:
            if q.S not in ("Buy", "Sell"):
                self.bad(where, f"{q.s}: liquidation: unknown position side {q.S!r}")
                continue
            s = self.symbol(q.s)
            side = -1 if q.S == "Buy" else 1  # a long (Buy) position liquidated: the forced order sells
            self._later(s, where, partial(self.liquidation, s, q.T * _MS, ts_local, side, q.p, q.v), (q.p,), (q.v,))

    # -- tickers
    def _on_ticker(self, ts_local: int, m: Ticker) -> None:
        self.stats.tickers += 1
        d = m.data
        prev = self.tickers.get(d.symbol)
        if m.type == "delta" and prev is not None:  # absent fields did not change
            changed = {f: getattr(d, f) for f in d.__struct_fields__ if getattr(d, f) is not None}
            merged = msgspec.structs.replace(prev[1], data=msgspec.structs.replace(prev[1].data, **changed),
                                             ts=m.ts, type="snapshot", cs=m.cs)
        else:
            merged = m
        self.tickers[d.symbol] = (ts_local, merged)
        if self.market != "linear":
            return
        s = self.symbol(d.symbol)
        if s.inst is None:
            s.seen_prices.extend(p for p in (d.markPrice, d.lastPrice, d.indexPrice) if p)
        ts_ex, full = m.ts * _MS, merged.data
        if d.markPrice is not None:
            self.mark_price(s, ts_ex, ts_local, float(d.markPrice))
        if (d.fundingRate is not None or d.nextFundingTime is not None) and full.fundingRate and full.nextFundingTime:
            self.funding(s, ts_ex, ts_local, float(full.fundingRate), int(full.nextFundingTime) * _MS)
        if d.openInterest is not None:
            self.open_interest(s, ts_ex, ts_local, float(d.openInterest))

    # -- operation answers and instruments
    def _on_ack(self, m: Ack, where: str) -> None:
        if m.success:
            self.stats.other += 1
        else:
            self.bad(where, f"{m.op or 'request'} refused by Bybit: {m.ret_msg or '(no ret_msg)'}")

    def _on_instruments(self, m: InstrumentsInfo, where: str) -> None:
        self.stats.other += 1
        if m.category != self.market:
            self.stats.note(f"{where}: instruments of category {m.category!r} ignored by the {self.venue} feed")
            return
        for info in m.items:
            lot = info.lotSizeFilter.qtyStep or info.lotSizeFilter.basePrecision
            if lot is None:
                continue
            inst = Instrument(self.venue, info.symbol, _step(info.priceFilter.tickSize), _step(lot))
            self.known[info.symbol] = inst
            s = self.symbols.get(info.symbol)
            if s is not None and s.inst is None:
                self._set_instrument(s, inst)
            elif s is not None and s.inst != inst:
                self.stats.note(f"{where}: {info.symbol}: instrument info {inst.tick_size}/{inst.lot_size} came "
                                f"after the book was defined on {s.inst.tick_size}/{s.inst.lot_size}: kept")  # type: ignore[union-attr]
