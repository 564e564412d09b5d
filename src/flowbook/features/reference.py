"""The plain-Python reference twin of the compiled feature kernel (:mod:`flowbook.features.nb`).

:func:`reference_features` computes the rows and columns of :class:`flowbook.features.FeatureEngine`
from the same ``EVENT_DTYPE`` events, on the dict-based :class:`flowbook.book.ReferenceBook`, sorting
the book for every row.  It is slow and obvious on purpose: every formula appears once, in the
words of ``docs/features.md``, and ``tests/test_features_reference.py`` requires the kernel to agree
(relative 1e-9, NaN == NaN) on random streams and on a real capture.

Edge cases settled by the reference document (``shared/reference/formulas-and-protocols.md``); an
earlier kernel differed on each, and the tests at the end of ``tests/test_features_reference.py``
pin them:

- ``microprice`` is NaN on a crossed book (best bid > best ask): reference §A.3, weighted mid,
  "crossed book -> invalid".
- ``imbalance_dw`` weighs each level by ``exp(-|P - M| / M * 1e4 / dw_bps)``, the absolute distance
  of reference §A.3 (a signed distance gives levels through the mid of a crossed book weights > 1).
- ``vwap_k`` divides by the summed quantity of the last K trades, trades without an aggressor side
  (side 0) included.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from ..book import ReferenceBook
from ..events import EVENT_DTYPE, Flag, Instrument, Kind
from .engine import FEATURE_COLUMNS, FeatureConfig

__all__ = ["ROW_INTS", "ReferenceFeatures", "reference_features"]

ROW_INTS = ("ts", "ts_exchange", "update_id")
MLOFI_LEVELS = 5
NAN = math.nan

Level = tuple[float, int]  # (price in ticks, lots); a missing level is (+-inf, 0)


def _bid_flow(before: Level, after: Level) -> int:
    """CKS bid-side term (reference §A.1): up -> +Qb_n, same -> Qb_n - Qb_{n-1}, down -> -Qb_{n-1}."""
    (p0, q0), (p1, q1) = before, after
    return (q1 if p1 >= p0 else 0) - (q0 if p1 <= p0 else 0)


def _ask_flow(before: Level, after: Level) -> int:
    """CKS ask-side term: down -> -Qa_n, same -> -(Qa_n - Qa_{n-1}), up -> +Qa_{n-1}."""
    (p0, q0), (p1, q1) = before, after
    return (q0 if p1 >= p0 else 0) - (q1 if p1 <= p0 else 0)


def _pad(levels: list[tuple[int, int]], n: int, missing: float) -> list[Level]:
    """The best ``n`` levels; a level the book does not have is ``(missing, 0)`` (price at infinity)."""
    out: list[Level] = [(float(p), q) for p, q in levels[:n]]
    return out + [(missing, 0)] * (n - len(out))


@dataclass
class _Flow:
    """Trade and order-flow accumulators (lots, ticks)."""

    ofi: list[int] = field(default_factory=lambda: [0] * MLOFI_LEVELS)  # per level, since the last row
    prev: list[tuple[Level, Level]] | None = None  # (bid, ask) per level after the previous message
    cvd: int = 0  # sum side * qty since the start
    buy: int = 0  # since the last row
    sell: int = 0
    trades: int = 0
    vwap_num: int = 0  # sum qty * price since the start
    vwap_den: int = 0
    last_px: int = 0
    recent: deque[tuple[int, int, int]] = field(default_factory=deque)  # (side, price, qty), last K


class ReferenceFeatures:
    """Streaming twin of :class:`FeatureEngine`: ``process`` events, then ``finish``; rows in ``rows``."""

    def __init__(self, instrument: Instrument, config: FeatureConfig | None = None) -> None:
        self.cfg = cfg = config or FeatureConfig()
        self.tick = float(Decimal(instrument.tick_size))
        self.lot = float(Decimal(instrument.lot_size))
        self.inverse = instrument.inverse
        # notional: price * qty for linear instruments, qty * multiplier (quote per contract) for inverse
        self.mult = instrument.multiplier if instrument.inverse else 1.0
        self.book = ReferenceBook()
        self.flow = _Flow(recent=deque(maxlen=cfg.delta_window))
        self.synced = False
        self.last_ts_exchange = 0
        self.last_update_id = 0
        self.next_sample: int | None = None
        self.last_clock = 0
        self.rows: list[dict[str, float]] = []
        self.stats = {"book_messages": 0, "crossed": 0, "first_crossed_event": -1}
        self._index = 0

    # ---- events --------------------------------------------------------------------------------
    def process(self, events: np.ndarray) -> None:
        if events.dtype != EVENT_DTYPE:
            raise TypeError("events must have flowbook's EVENT_DTYPE")
        for e in events:
            self._event(e)
            self._index += 1

    def _event(self, e: np.void) -> None:
        clock = int(e["ts_exchange"] if self.cfg.clock == "exchange" else e["ts_local"])
        interval = self.cfg.interval_ns
        if interval:
            if self.next_sample is None:  # first sample: the first grid time at or after the first event
                self.next_sample = -(-clock // interval) * interval
            # a sample at T sees exactly the events with clock <= T: take it before a later event
            while self.next_sample < clock:
                self._sample(self.next_sample)
                self.next_sample += interval
        kind = int(e["kind"])
        if kind == Kind.BOOK_SET:
            self._book_set(e)
        elif kind == Kind.BOOK_CLEAR:
            self.book.clear()
            self.synced = False
            self.flow.prev = None
        elif kind == Kind.TRADE:
            self._trade(int(e["side"]), int(e["price"]), int(e["qty"]))
        self.last_clock = clock

    def _book_set(self, e: np.void) -> None:
        side = int(e["side"])
        if side != 0:
            self.book.set(side, int(e["price"]), int(e["qty"]))
        flags = int(e["flags"])
        if flags & Flag.SNAPSHOT_END:
            self.synced = True
            self.flow.prev = None  # OFI restarts: no contribution across a rebuild
        if not flags & Flag.END_OF_MESSAGE:
            return
        self.last_ts_exchange = int(e["ts_exchange"])
        self.last_update_id = int(e["id"])
        if not self.synced:
            return
        self.stats["book_messages"] += 1
        bb, ba = self.book.best_bid, self.book.best_ask
        if bb is not None and ba is not None and bb >= ba:
            if self.stats["crossed"] == 0:
                self.stats["first_crossed_event"] = self._index
            self.stats["crossed"] += 1
        self._ofi_message()
        if not self.cfg.interval_ns:
            self._emit(int(e["ts_local"]))

    def _ofi_message(self) -> None:
        """Add this message's OFI / MLOFI contributions (levels 1..5 of the book after it)."""
        bids = _pad(self.book.levels(1, MLOFI_LEVELS), MLOFI_LEVELS, -math.inf)
        asks = _pad(self.book.levels(-1, MLOFI_LEVELS), MLOFI_LEVELS, math.inf)
        now = list(zip(bids, asks, strict=True))
        if self.flow.prev is not None:
            for m, ((b0, a0), (b1, a1)) in enumerate(zip(self.flow.prev, now, strict=True)):
                self.flow.ofi[m] += _bid_flow(b0, b1) + _ask_flow(a0, a1)
        self.flow.prev = now

    def _trade(self, side: int, price: int, qty: int) -> None:
        f = self.flow
        f.cvd += side * qty
        if side > 0:
            f.buy += qty
        elif side < 0:
            f.sell += qty
        f.trades += 1
        f.vwap_num += qty * price
        f.vwap_den += qty
        f.last_px = price
        f.recent.append((side, price, qty))

    def _sample(self, t: int) -> None:
        if self.synced:
            self._emit(t)

    def finish(self) -> None:
        """End of input: interval samples up to and including the last event's clock."""
        if self.cfg.interval_ns and self.next_sample is not None:
            while self.next_sample <= self.last_clock:
                self._sample(self.next_sample)
                self.next_sample += self.cfg.interval_ns

    # ---- rows ----------------------------------------------------------------------------------
    def _emit(self, ts: int) -> None:
        row: dict[str, float] = {"ts": ts, "ts_exchange": self.last_ts_exchange,
                                 "update_id": self.last_update_id}
        row.update(self._book_columns())
        row.update(self._flow_columns())
        assert set(row) == set(FEATURE_COLUMNS) | set(ROW_INTS)
        self.rows.append(row)
        f = self.flow  # interval quantities restart after each row
        f.ofi = [0] * MLOFI_LEVELS
        f.buy = f.sell = f.trades = 0

    def _flow_columns(self) -> dict[str, float]:
        f, lot, tick = self.flow, self.lot, self.tick
        r: dict[str, float] = {"ofi": f.ofi[0] * lot}
        for m in range(MLOFI_LEVELS):
            r[f"mlofi_{m + 1}"] = f.ofi[m] * lot
        r["cvd"] = f.cvd * lot
        r["buy_volume"] = f.buy * lot
        r["sell_volume"] = f.sell * lot
        r["trade_count"] = f.trades
        r["vwap"] = f.vwap_num / f.vwap_den * tick if f.vwap_den > 0 else NAN
        r["last_price"] = f.last_px * tick if f.vwap_den > 0 else NAN
        r["delta_volume_k"] = sum(s * q for s, _, q in f.recent) * lot
        qty_k = sum(q for _, _, q in f.recent)
        r["vwap_k"] = sum(p * q for _, p, q in f.recent) / qty_k * tick if qty_k > 0 else NAN
        return r

    def _book_columns(self) -> dict[str, float]:
        cfg, tick, lot = self.cfg, self.tick, self.lot
        bids = self.book.levels(1, cfg.depth_levels)  # best first, (ticks, lots)
        asks = self.book.levels(-1, cfg.depth_levels)
        r: dict[str, float] = {}
        r["best_bid"] = bids[0][0] * tick if bids else NAN
        r["best_bid_qty"] = bids[0][1] * lot if bids else NAN
        r["best_ask"] = asks[0][0] * tick if asks else NAN
        r["best_ask_qty"] = asks[0][1] * lot if asks else NAN
        two_sided = bool(bids) and bool(asks)
        mid_t = (bids[0][0] + asks[0][0]) / 2 if two_sided else NAN  # mid in ticks
        crossed = two_sided and bids[0][0] > asks[0][0]
        if two_sided:
            spread_t = asks[0][0] - bids[0][0]
            r["mid"] = mid_t * tick
            r["spread"] = spread_t * tick
            r["spread_bps"] = spread_t / mid_t * 1e4
            r["spread_pct"] = spread_t / mid_t * 1e2
            qb, qa = r["best_bid_qty"], r["best_ask_qty"]
            pb, pa = r["best_bid"], r["best_ask"]
            r["microprice"] = NAN if crossed else (qb * pa + qa * pb) / (qb + qa)
        else:
            for c in ("mid", "spread", "spread_bps", "spread_pct", "microprice"):
                r[c] = NAN
        # imbalance: best level and top N, in lots; one empty side gives +-1, both empty NaN
        b1 = bids[0][1] if bids else 0
        a1 = asks[0][1] if asks else 0
        r["imbalance_1"] = (b1 - a1) / (b1 + a1) if b1 + a1 > 0 else NAN
        bsum = sum(q for _, q in bids)
        asum = sum(q for _, q in asks)
        r["imbalance_n"] = (bsum - asum) / (bsum + asum) if bsum + asum > 0 else NAN
        r["bid_depth_n"] = bsum * lot
        r["ask_depth_n"] = asum * lot
        r["bid_notional_n"] = self._notional(bids)
        r["ask_notional_n"] = self._notional(asks)
        r["total_depth_n"] = (bsum + asum) * lot
        r["depth_ratio"] = bsum / asum if asum > 0 else NAN
        if asum > 0:
            r["depth_ratio_capped"] = min(bsum / asum, cfg.ratio_cap)
        else:
            r["depth_ratio_capped"] = cfg.ratio_cap if bsum > 0 else NAN
        # large-order presence: share of the visible top-N volume held by levels with >= pct of it
        visible = bsum + asum
        if visible > 0:
            threshold = cfg.large_order_pct * visible
            big = sum(q for _, q in bids + asks if q >= threshold)
            r["large_order_presence"] = big / visible
        else:
            r["large_order_presence"] = NAN
        if two_sided:
            r.update(self._around_mid(bids, asks, mid_t))
        else:
            for c in ("imbalance_dw", "bid_depth_bps", "ask_depth_bps", "bid_notional_bps", "ask_notional_bps"):
                r[c] = NAN
        return r

    def _notional(self, levels: list[tuple[int, int]]) -> float:
        """Quote value: sum price * qty (linear) or sum qty * multiplier (inverse contracts)."""
        if self.inverse:
            return sum(q for _, q in levels) * self.lot * self.mult
        return sum(p * self.tick * q * self.lot for p, q in levels) * self.mult

    def _around_mid(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], mid_t: float
                    ) -> dict[str, float]:
        """Distance-weighted imbalance (top N) and the depth within +-band_bps of the mid (all levels)."""
        cfg, lot = self.cfg, self.lot
        r: dict[str, float] = {}

        def weight(p: int) -> float:
            d_bps = abs(p - mid_t) / mid_t * 1e4
            return math.exp(-d_bps / cfg.dw_bps)

        wb = sum(q * weight(p) for p, q in bids)
        wa = sum(q * weight(p) for p, q in asks)
        r["imbalance_dw"] = (wb - wa) / (wb + wa) if wb + wa > 0 else NAN
        band = cfg.band_bps * 1e-4
        lo = math.ceil(mid_t * (1.0 - band) - 1e-9)  # lowest bid tick inside the band
        hi = math.floor(mid_t * (1.0 + band) + 1e-9)  # highest ask tick inside the band
        in_bids = [(p, q) for p, q in self.book.bids.items() if p >= lo]
        in_asks = [(p, q) for p, q in self.book.asks.items() if p <= hi]
        r["bid_depth_bps"] = sum(q for _, q in in_bids) * lot
        r["ask_depth_bps"] = sum(q for _, q in in_asks) * lot
        r["bid_notional_bps"] = self._notional(in_bids)
        r["ask_notional_bps"] = self._notional(in_asks)
        return r


def reference_features(events: np.ndarray, instrument: Instrument,
                       config: FeatureConfig | None = None) -> list[dict[str, float]]:
    """Feature rows of ``events`` (one instrument, time order), as :class:`FeatureEngine` computes them.

    Each row maps every name of ``FEATURE_COLUMNS`` to a float, plus the ints ``ts`` (the message's
    ``ts_local`` in event mode, the sample time in interval mode), ``ts_exchange`` and ``update_id``
    (of the last depth message seen).
    """
    twin = ReferenceFeatures(instrument, config)
    twin.process(events)
    twin.finish()
    return twin.rows
