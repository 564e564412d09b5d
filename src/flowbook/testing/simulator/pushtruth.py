"""What the push-venue simulator replays and the truth it keeps.

:class:`PushMarket` cuts normalized events (a real recording through ``flowbook.replay.sources.load``, or
the synthetic generator) into steps: one depth message or one trade of one symbol, in time order.
:class:`PushTruth` holds each symbol's full book (tick -> lots per side, plus sorted ticks) and advances
it one step at a time.  The venue sees only the top ``N`` levels of that book, ``N`` being the depth a
client subscribed: :meth:`PushTruth.view` is that window and :meth:`PushTruth.window_delta` the change of
the window across one step (levels entering it are inserts, levels leaving it deletes), which is what
depth-limited channels such as Bybit's ``orderbook.50`` send.

:class:`PushFaultPlan` scripts the faults, by step index (see :meth:`PushMarket.indices`, which selects
by kind and symbol), plus subscription faults (a slow answer, a refusal) in request order.
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from ...events import Flag, Instrument, Kind
from .faults import FaultPlan

__all__ = ["PUSH_FAULTS", "PushFaultPlan", "PushMarket", "PushTruth", "Step", "SubscriptionFault"]

PUSH_FAULTS = ("drop", "duplicate", "reorder", "corrupt", "disconnect", "restart", "unchained", "checksum")
_EOM, _SNAP = int(Flag.END_OF_MESSAGE), int(Flag.SNAPSHOT)
Levels = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Step:
    """One source message: ``kind`` is ``book`` or ``trade``; ``lo:hi`` its events in the symbol's array."""

    symbol: str
    kind: str
    lo: int
    hi: int
    ts: int


class PushMarket:
    """Time-ordered steps over per-symbol event arrays (each symbol's first snapshot is its start book)."""

    def __init__(self, events: np.ndarray, instruments: Sequence[Instrument]) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        names = [i.symbol for i in instruments]
        eom = np.flatnonzero((events["flags"] & _EOM) != 0)
        starts = np.r_[0, eom[:-1] + 1]
        kinds, sids, ts = events["kind"][eom], events["symbol"][eom], events["ts_local"][eom]
        self.events = events
        self.start: dict[str, tuple[int, int]] = {}
        steps: list[Step] = []
        for lo, hi, k, sid, t in zip(starts.tolist(), (eom + 1).tolist(), kinds.tolist(), sids.tolist(),
                                     ts.tolist(), strict=True):
            sym = names[sid]
            if k in (int(Kind.BOOK_SET), int(Kind.BOOK_CLEAR)):
                if sym not in self.start:
                    if events["flags"][lo] & _SNAP:
                        self.start[sym] = (lo, hi)
                    continue  # nothing before the first snapshot is a book the venue could show
                steps.append(Step(sym, "book", lo, hi, t))
            elif k == int(Kind.TRADE) and sym in self.start:
                steps.append(Step(sym, "trade", lo, hi, t))
        steps.sort(key=lambda x: x.ts)  # stable: each symbol keeps its own order (readers chain files per symbol)
        self.steps = steps
        self.symbols = tuple(s for s in names if s in self.start)

    @classmethod
    def from_recordings(cls, paths: Iterable[Path | str], max_steps: int | None = None) -> PushMarket:
        """A real recording's books and trades (any format ``flowbook replay`` reads)."""
        from ...replay.sources import load

        got = load([Path(p) for p in paths], None, False)
        market = cls(got.events, got.instruments)
        if max_steps is not None:
            market.steps = market.steps[:max_steps]
        return market

    @classmethod
    def synthetic(cls, symbols: Sequence[str], n_updates: int, seed: int = 1) -> PushMarket:
        """Independent synthetic markets (``flowbook.testing.synthetic``), one per symbol, merged in time."""
        from ..synthetic import synthetic_events

        parts, insts = [], []
        for k, sym in enumerate(symbols):
            ev, inst = synthetic_events(n_updates, seed + k, symbol=sym)
            ev["symbol"] = k
            parts.append(ev)
            insts.append(inst)
        ev = np.concatenate(parts)
        # merge whole messages by time: stable sort on (time of the message's end, symbol)
        eom = (ev["flags"] & _EOM) != 0
        msg = np.r_[0, np.cumsum(eom)[:-1]]  # message of each event (every part ends a message)
        end_ts = ev["ts_local"][np.flatnonzero(eom)][msg]
        order = np.lexsort((np.arange(len(ev)), end_ts))
        return cls(ev[order], insts)

    def indices(self, kind: str | None = "book", symbol: str | None = None) -> list[int]:
        """Step positions of ``kind`` (and ``symbol``): fault targets."""
        return [i for i, s in enumerate(self.steps)
                if (kind is None or s.kind == kind) and (symbol is None or s.symbol == symbol)]


class _Book:
    __slots__ = ("bids", "asks", "bid_ticks", "ask_ticks")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid_ticks: list[int] = []  # ascending: best bid last
        self.ask_ticks: list[int] = []  # ascending: best ask first

    def clear(self) -> None:
        self.bids.clear(), self.asks.clear(), self.bid_ticks.clear(), self.ask_ticks.clear()

    def set(self, side: int, tick: int, lots: int) -> None:
        d, ticks = (self.bids, self.bid_ticks) if side > 0 else (self.asks, self.ask_ticks)
        if lots == 0:
            if d.pop(tick, None) is not None:
                del ticks[bisect_left(ticks, tick)]
        else:
            if tick not in d:
                insort(ticks, tick)
            d[tick] = lots


class PushTruth:
    """Every symbol's full book, advanced step by step; top-``N`` windows and their deltas."""

    def __init__(self, market: PushMarket) -> None:
        self.market = market
        self.books = {s: _Book() for s in market.symbols}
        self.last_u: dict[str, int] = {}  # u of each symbol's subscribed book topic (kept by the server)
        self.depth: dict[str, int] = {}
        self._fmt: dict[str, tuple[Decimal, Decimal]] = {}
        for sym, (lo, hi) in market.start.items():
            self._apply(sym, lo, hi)

    def _apply(self, sym: str, lo: int, hi: int) -> None:
        ev = self.market.events[lo:hi]
        book = self.books[sym]
        for kind, side, tick, lots in zip(ev["kind"].tolist(), ev["side"].tolist(), ev["price"].tolist(),
                                          ev["qty"].tolist(), strict=True):
            if kind == 2:
                book.clear()
            elif kind == 1 and side != 0:
                book.set(side, tick, lots)

    def apply(self, step: Step) -> None:
        if step.kind == "book":
            self._apply(step.symbol, step.lo, step.hi)

    def view(self, symbol: str, depth: int) -> tuple[dict[int, int], dict[int, int]]:
        """The top ``depth`` levels a side, ``{tick: lots}`` (best first)."""
        b = self.books[symbol]
        bt = b.bid_ticks[-depth:][::-1]
        return {t: b.bids[t] for t in bt}, {t: b.asks[t] for t in b.ask_ticks[:depth]}

    @staticmethod
    def window_delta(old: dict[int, int], new: dict[int, int], side: int) -> Levels:
        """Levels that changed between two windows of one side (0 lots: left the window), best first."""
        out = [(t, q) for t, q in new.items() if old.get(t) != q]
        out += [(t, 0) for t in old if t not in new]
        out.sort(key=lambda x: -side * x[0])
        return out

    def levels(self, symbol: str, side: int, n: int) -> list[tuple[Decimal, Decimal]]:
        """The truth's best ``n`` levels of a side as exact decimals (compare with a live book)."""
        bids, asks = self.view(symbol, n)
        px, qty = self._steps(symbol)
        return [(px * t, qty * q) for t, q in (bids if side > 0 else asks).items()]

    def texts(self, symbol: str, levels: Iterable[tuple[int, int]]) -> list[tuple[str, str]]:
        """Price and size strings as the venue writes them (the instrument's decimals)."""
        px, qty = self._steps(symbol)
        return [(f"{px * t:f}", f"{qty * q:f}") for t, q in levels]

    def price_text(self, symbol: str, tick: int) -> str:
        return f"{self._steps(symbol)[0] * tick:f}"

    def _steps(self, symbol: str) -> tuple[Decimal, Decimal]:
        got = self._fmt.get(symbol)
        if got is None:
            inst = self.market.instruments[symbol]
            got = self._fmt[symbol] = (Decimal(inst.tick_size), Decimal(inst.lot_size))
        return got


@dataclass(frozen=True, slots=True)
class SubscriptionFault:
    """The answer to the next subscribe naming ``symbol`` (None: any): ``slow`` (answered and served after
    ``delay`` seconds) or ``reject`` (refused with ``message``)."""

    kind: str
    symbol: str | None = None
    delay: float = 0.0
    message: str = "error:simulated refusal"


class PushFaultPlan(FaultPlan):
    """Stream faults by step index (:data:`PUSH_FAULTS`) and subscription faults in request order.

    ``unchained``: the symbol's book topic sends a fresh snapshot and then a delta whose ``u`` skips one.
    ``checksum``: the renderer spoils the frame's checksum (venues without one send it unchanged).
    ``restart``: every socket closes, the listener is down for ``downtime`` steps, and every book topic's
    ``u`` starts again at 1.
    """

    def __init__(self, downtime: int = 20) -> None:
        super().__init__(downtime)
        self.subscriptions: deque[SubscriptionFault] = deque()

    def at(self, index: int, kind: str) -> PushFaultPlan:
        if kind not in PUSH_FAULTS:
            raise ValueError(f"unknown stream fault {kind!r}; known: {', '.join(PUSH_FAULTS)}")
        self.frames.setdefault(index, []).append(kind)
        return self

    def slow_ack(self, delay: float, symbol: str | None = None, times: int = 1) -> PushFaultPlan:
        self.subscriptions.extend([SubscriptionFault("slow", symbol, delay)] * times)
        return self

    def reject(self, symbol: str | None = None, times: int = 1,
               message: str = "error:simulated refusal") -> PushFaultPlan:
        self.subscriptions.extend([SubscriptionFault("reject", symbol, message=message)] * times)
        return self

    def next_subscription(self, symbols: Iterable[str]) -> SubscriptionFault | None:
        names = set(symbols)
        for i, f in enumerate(self.subscriptions):
            if f.symbol is None or f.symbol in names:
                del self.subscriptions[i]
                self.applied["subscription_" + f.kind] += 1
                return f
        return None

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self.frames.values()) + len(self.subscriptions)

    @classmethod
    def random(cls, targets: Sequence[int], n: int, seed: int,  # type: ignore[override]
               weights: dict[str, float] | None = None, downtime: int = 10) -> PushFaultPlan:
        """``n`` faults on distinct random steps among ``targets``, kinds drawn by ``weights``."""
        w = weights or {"drop": 4, "duplicate": 2, "reorder": 2, "corrupt": 2, "unchained": 1, "disconnect": 0.05}
        rng = random.Random(seed)
        plan = cls(downtime)
        kinds, probs = list(w), list(w.values())
        for idx in rng.sample(list(targets), min(n, len(targets))):
            plan.at(idx, rng.choices(kinds, probs)[0])
        return plan
