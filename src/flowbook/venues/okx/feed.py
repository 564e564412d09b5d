"""OKX v5 frames -> normalized events, frame by frame, per instrument (``instId``).

The same code runs in replay (frames from recordings) and live (frames from the socket): a frame is
decoded (:mod:`.parser`), a ``books`` message goes through the sequencer (:mod:`.sequencer`) and the
checksum (:mod:`.checksum`), and events are written only through the :class:`FeedCore` emitters.

Channels and what they become:

- ``books``: snapshot -> ``BOOK_CLEAR`` + levels; update -> levels (size ``"0"`` deletes).  A gap in
  seqId/prevSeqId or a checksum mismatch loses **that** symbol's book until its next snapshot.
- ``books5``: each push replaces the book (5 levels), unless the symbol has a ``books`` stream.
- ``bbo-tbt``: ``BBO`` events (best bid and ask).
- ``trades``: ``TRADE`` (side = taker side, id = ``tradeId``).
- ``funding-rate`` -> ``FUNDING_RATE``, ``open-interest`` -> ``OPEN_INTEREST`` (contracts),
  ``mark-price`` -> ``MARK_PRICE``, ``liquidation-orders`` -> ``LIQUIDATION`` (only for instruments the
  feed already follows: the channel pushes every instrument of a type).
- ``tickers``: no event; the latest per symbol is kept in :attr:`OkxFeed.tickers`.
- Acks and other events, and the text ``pong``, count as ``other``; ``error`` events are bad messages
  (with OKX's ``code`` and ``msg``).

Instruments: derivatives' sizes are contracts.  With instrument info (:func:`instrument_from_info`,
from ``GET /api/v5/public/instruments``) the tick is ``tickSz``, the lot ``lotSz`` and the multiplier
``ctVal`` (× ``ctMult``).  Without it the tick and lot are inferred from the first snapshot, the
multiplier is 1 (a size stays a count of contracts) and ``-USD-`` derivatives are marked inverse.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ...events import NO_ID, Instrument, PriceNotOnGrid
from ..common import BookSymbol, FeedCore, FeedStats, SyncError
from .checksum import DEPTH, book_checksum
from .messages import BookData, EventMessage, InstrumentInfo, LiquidationOrders, Ticker, Trade
from .parser import PONG, Push, decode
from .sequencer import Action, BookSequencer

__all__ = ["OkxFeed", "FeedStats", "SyncError", "instrument_from_info", "is_inverse_id"]

VENUE = "okx"
_MS = 1_000_000
_SIDES = {"buy": 1, "sell": -1}


def _ms(text: str) -> int:
    return int(text) * _MS if text else 0


def is_inverse_id(inst_id: str) -> bool:
    """Coin-margined derivative by its name: ``BTC-USD-SWAP``, ``BTC-USD-220527`` (not ``BTC-USDT``)."""
    parts = inst_id.split("-")
    return len(parts) >= 3 and parts[1] == "USD"


def instrument_from_info(info: InstrumentInfo) -> Instrument:
    """The flowbook instrument of an OKX instrument description (multiplier = ``ctVal`` × ``ctMult``)."""
    mult = 1.0
    if info.ctVal:
        mult = float(Decimal(info.ctVal) * Decimal(info.ctMult or "1"))
    tick = format(Decimal(info.tickSz).normalize(), "f")
    lot = format(Decimal(info.lotSz).normalize(), "f")
    return Instrument(VENUE, info.instId, tick, lot, mult, info.ctType == "inverse")


def _pairs(levels: list[list[str]]) -> list[tuple[str, str]]:
    out = []
    for lv in levels:
        if len(lv) < 2:
            raise ValueError(f"book level {lv!r} has no size")
        out.append((lv[0], lv[1]))
    return out


class OkxFeed(FeedCore):
    """Turns OKX v5 public frames into events for any number of instruments.

    Parameters
    ----------
    strict:
        raise :class:`SyncError` at the first gap, checksum mismatch or bad message.
    instruments:
        known instruments by ``instId`` (see :func:`instrument_from_info`); others are inferred.
    """

    def __init__(self, strict: bool = False, instruments: dict[str, Instrument] | None = None) -> None:
        super().__init__(VENUE, strict, instruments)
        self.tickers: dict[str, tuple[int, Ticker]] = {}  # instId -> (receive time ns, latest ticker)

    # -- the interface replay and the live transport use
    decode = staticmethod(decode)

    def dispatch(self, ts_local: int, msg: object, where: str, **context: object) -> None:
        if msg == PONG:
            self.stats.other += 1
        elif isinstance(msg, EventMessage):
            self._on_event(msg, where)
        else:
            assert isinstance(msg, Push)
            self._dispatch(ts_local, msg, where)

    def finish(self) -> None:
        """End of input: every symbol gets an instrument (inferred from what it saw), unsynced books noted."""
        for s in self.symbols.values():
            if s.inst is None:
                self.define(s, s.seen_prices or ["1"], s.seen_qtys or ["1"])
        super().finish()

    def define(self, s: BookSymbol, prices: list[str], qtys: list[str], multiplier: float = 1.0,
               inverse: bool = False) -> None:
        super().define(s, prices, qtys, multiplier, inverse or is_inverse_id(s.name))

    # -- dispatch
    def _on_event(self, msg: EventMessage, where: str) -> None:
        if msg.event == "error":
            self.bad(where, f"OKX error {msg.code}: {msg.msg}")
            return
        self.stats.other += 1
        if msg.event == "notice":
            self.stats.note(f"{where}: OKX notice {msg.code}: {msg.msg}")

    def _dispatch(self, ts_local: int, push: Push, where: str) -> None:
        ch = push.channel
        if ch == "tickers":
            for t in push.data:
                self.stats.tickers += 1
                self.tickers[t.instId] = (ts_local, t)
            return
        if ch == "liquidation-orders":
            for liq in push.data:
                self._on_liquidation(ts_local, liq, where)
            return
        if ch == "trades":
            for t in push.data:
                self._on_trade(ts_local, t, where)
            return
        if ch in ("books", "books5", "bbo-tbt"):
            if not push.inst_id:
                self.bad(where, f"`{ch}` push without instId")
                return
            s = self.symbol(push.inst_id)
            if s.state is None:
                s.state = BookSequencer()
            for d in push.data:
                if ch == "books":
                    self._on_books(s, ts_local, push.action, d, where)
                elif ch == "books5":
                    self._on_books5(s, ts_local, d, where)
                else:
                    self._on_bbo(s, ts_local, d, where)
            return
        for d in push.data:  # funding-rate, open-interest, mark-price: no price grid involved
            s = self.symbol(d.instId)
            if ch == "funding-rate":
                self.funding(s, _ms(d.ts), ts_local, float(d.fundingRate), _ms(d.fundingTime))
            elif ch == "open-interest":
                self.open_interest(s, _ms(d.ts), ts_local, float(d.oi))
            else:
                self.mark_price(s, _ms(d.ts), ts_local, float(d.markPx))

    # -- books
    def _on_books(self, s: BookSymbol, ts_local: int, action: str | None, d: BookData, where: str) -> None:
        seq: BookSequencer = s.state  # type: ignore[assignment]
        seq.full = True
        bids, asks = _pairs(d.bids), _pairs(d.asks)
        if action == "snapshot" or (action is None and d.prevSeqId == -1):
            if not self.snapshot(s, _ms(d.ts), ts_local, bids, asks, _id(d.seqId), where):
                return
            px = s.px.to_int  # type: ignore[union-attr]
            seq.book.replace([(px(p), p, q) for p, q in bids], [(px(p), p, q) for p, q in asks])
            seq.on_snapshot(d.seqId)
            self._verify(s, seq, d, where)
            return
        act = seq.on_update(s.synced, d.prevSeqId, d.seqId, len(bids) + len(asks))
        if act is Action.UNSYNCED:
            self.stats.diffs_unsynced += 1
            return
        if act is Action.GAP:
            self.lose(s, where, f"update prevSeqId={d.prevSeqId} seqId={d.seqId} does not follow the last "
                                f"applied seqId={seq.last_seq}", kind="gap")
            return
        if act is Action.DUPLICATE:
            self.stats.diffs_duplicate += 1
            return
        if act is Action.HEARTBEAT:
            self.stats.other += 1
            return
        if not self.delta(s, _ms(d.ts), ts_local, bids, asks, _id(d.seqId), _id(d.prevSeqId), where):
            return  # off the price grid: the book is lost already
        px, book = s.px.to_int, seq.book  # type: ignore[union-attr]
        for p, q in bids:
            book.set(1, px(p), p, q)
        for p, q in asks:
            book.set(-1, px(p), p, q)
        self._verify(s, seq, d, where)

    def _verify(self, s: BookSymbol, seq: BookSequencer, d: BookData, where: str) -> None:
        # 7. A non-zero checksum is the CRC32 of the best 25 levels per side after applying the message;
        #    a mismatch loses the book.  0 (every JSON push since 23 Jun 2026) is not checked.
        if d.checksum == 0:
            return
        bids, asks = seq.book.top(DEPTH)
        got = book_checksum(bids, asks)
        if got != d.checksum:
            self.lose(s, where, f"checksum {got} != {d.checksum} (seqId={d.seqId}, ts={d.ts})", kind="checksum")
            return
        self.stats.checksums_verified += 1

    def _on_books5(self, s: BookSymbol, ts_local: int, d: BookData, where: str) -> None:
        seq: BookSequencer = s.state  # type: ignore[assignment]
        if seq.full:  # the 400-level stream owns the book
            self.stats.other += 1
            return
        self.snapshot(s, _ms(d.ts), ts_local, _pairs(d.bids), _pairs(d.asks), _id(d.seqId), where)

    def _on_bbo(self, s: BookSymbol, ts_local: int, d: BookData, where: str) -> None:
        bids, asks = _pairs(d.bids), _pairs(d.asks)
        if not bids or not asks:
            self.stats.other += 1
            return
        bid, ask = bids[0], asks[0]
        self._emit(s, where, lambda: self.bbo(s, _ms(d.ts), ts_local, bid, ask, _id(d.seqId)),
                   [bid[0], ask[0]], [bid[1], ask[1]])

    # -- trades, liquidations
    def _on_trade(self, ts_local: int, t: Trade, where: str) -> None:
        side = _SIDES.get(t.side)
        if side is None:
            self.bad(where, f"{t.instId}: trade {t.tradeId} has side {t.side!r}")
            return
        s = self.symbol(t.instId)
        tid = int(t.tradeId)
        self._emit(s, where, lambda: self.trade(s, _ms(t.ts), ts_local, side, t.px, t.sz, tid), [t.px], [t.sz])

    def _on_liquidation(self, ts_local: int, liq: LiquidationOrders, where: str) -> None:
        if liq.instId not in self.symbols and liq.instId not in self.known:
            self.stats.other += 1  # an instrument this feed does not follow
            return
        s = self.symbol(liq.instId)
        for det in liq.details:
            side = _SIDES.get(det.side)
            if side is None or not det.bkPx:
                self.bad(where, f"{liq.instId}: liquidation without side or bkPx ({det.side!r}, {det.bkPx!r})")
                continue
            self._emit(s, where, lambda det=det, side=side: self.liquidation(s, _ms(det.ts), ts_local, side,
                                                                               det.bkPx, det.sz),
                       [det.bkPx], [det.sz])

    def _emit(self, s: BookSymbol, where: str, run: Callable[[], None], prices: list[str], qtys: list[str]) -> None:
        """Emit now, or once the instrument is known; a price off the grid is a bad message either way."""
        def guarded() -> None:
            try:
                run()
            except PriceNotOnGrid as exc:
                self.bad(where, f"{s.name}: {exc}")

        if not self.defer(s, guarded, prices, qtys):
            guarded()


def _id(v: int | None) -> int:
    return NO_ID if v is None else v
