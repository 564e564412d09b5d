"""Detectors (``flowbook.detectors``): synthetic scenarios with a known answer — each detector fires
where it should and stays silent where it should not.  Reference §A.8 for sweep, absorption, iceberg."""

from __future__ import annotations

import numpy as np
import pytest

from flowbook.detectors import DetectorConfig, DetectorKind, Scale, detect
from flowbook.events import EVENT_DTYPE, Instrument, Kind

INST = Instrument("test", "BTCUSDT", "0.1", "0.001")  # one lot at 60 000.0 = 60 quote
SCALE = Scale(trade_lots=10.0, level_lots=100.0, price_ticks=600_000)
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
SNAP, EOM, SNAP_END = 1, 8, 4
K = DetectorKind


def events(rows: list[tuple[int, int, int, int, int, int]]) -> np.ndarray:
    """``(kind, side, flags, t_ms, price, qty)`` rows -> EVENT_DTYPE (both clocks = T0 + t_ms)."""
    out = np.zeros(len(rows), EVENT_DTYPE)
    for n, (kind, side, flags, t, p, q) in enumerate(rows):
        out[n] = (kind, side, flags, 0, T0 + int(t * MS), T0 + int(t * MS), p, q, -1, -1, 0.0)
    return out


def book(levels: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int, int, int]]:
    """A snapshot at t=0 of ``(side, price, qty)`` levels (best bid 599999, best ask 600001 by default)."""
    lv = levels or [(1, 599_999, 50), (-1, 600_001, 50)]
    rows = [(Kind.BOOK_SET, s, SNAP, 0, p, q) for s, p, q in lv]
    k, s, _, t, p, q = rows[-1]
    rows[-1] = (k, s, SNAP | SNAP_END | EOM, t, p, q)
    return rows


def run(rows: list[tuple[int, int, int, int, int, int]], **cfg: float) -> list:  # noqa: ANN401
    return detect(events(rows), INST, DetectorConfig(**cfg), SCALE)


def kinds(dets: list) -> list[DetectorKind]:  # noqa: ANN401
    return [d.kind for d in dets]


def trade(t: float, side: int, p: int, q: int) -> tuple[int, int, int, int, int, int]:
    return (Kind.TRADE, side, EOM, t, p, q)


def level(t: float, side: int, p: int, q: int) -> tuple[int, int, int, int, int, int]:
    return (Kind.BOOK_SET, side, EOM, t, p, q)


def test_sweep_fires_on_a_multi_level_burst_only() -> None:
    # 5 levels, 200 lots each = 1 BTC = 60 000 quote within 10 ms: one buy sweep (>= 3 levels, >= 50 000)
    burst = [trade(1000 + 2 * j, 1, 600_001 + j, 200) for j in range(5)]
    d = [x for x in run(book([]) + burst) if x.kind == K.SWEEP]
    assert len(d) == 1 and (d[0].side, d[0].price_ticks, d[0].lots, d[0].count) == (1, 600_005, 1000, 5)
    assert d[0].ts == T0 + 1000 * MS and 0.5 <= d[0].confidence <= 1 and "sweep" in d[0].description
    one_level = [trade(1000 + 2 * j, 1, 600_001, 200) for j in range(5)]
    slow = [trade(1000 + 200 * j, 1, 600_001 + j, 200) for j in range(5)]  # 200 ms apart: not one burst
    small = [trade(1000 + 2 * j, 1, 600_001 + j, 100) for j in range(5)]  # 30 000 quote
    mixed = [trade(1000 + 2 * j, 1 if j % 2 else -1, 600_001 + j, 200) for j in range(5)]
    for rows in (one_level, slow, small, mixed):
        assert K.SWEEP not in kinds(run(book([]) + rows))


def test_block_trade_threshold_and_fills_of_one_order() -> None:
    d = run(book([]) + [trade(1000, -1, 599_999, 2000)])  # 2 BTC = 120 000 quote
    assert kinds(d) == [K.BLOCK_TRADE] and d[0].side == -1 and d[0].notional == pytest.approx(119_999.8)
    two = run(book([]) + [trade(1000, 1, 600_001, 1000), trade(1000, 1, 600_002, 1000)])  # same time: one order
    assert [(x.kind, x.count, x.lots) for x in two if x.kind == K.BLOCK_TRADE] == [(K.BLOCK_TRADE, 2, 2000)]
    assert K.BLOCK_TRADE not in kinds(run(book([]) + [trade(1000, 1, 600_001, 1500)]))  # 90 000 quote
    assert K.BLOCK_TRADE in kinds(run(book([]) + [trade(1000, 1, 600_001, 1500)], block_min_notional=80_000))
    apart = [trade(1000, 1, 600_001, 1000), trade(1001, 1, 600_001, 1000)]  # 1 ms apart: two orders
    assert K.BLOCK_TRADE not in kinds(run(book([]) + apart))


def test_momentum_trade_follows_the_move() -> None:
    rise = [trade(100 * j, 1, 600_000 + 40 * j, 5) for j in range(10)]  # +360 ticks (6 bps) over 0.9 s
    d = [x for x in run(book([]) + rise + [trade(1000, 1, 600_400, 500)]) if x.kind == K.MOMENTUM_TRADE]
    assert len(d) == 1 and d[0].side == 1 and d[0].count == 400  # 30 000 quote with a 400-tick move
    assert K.MOMENTUM_TRADE not in kinds(run(book([]) + rise + [trade(1000, -1, 600_400, 500)]))  # against
    assert K.MOMENTUM_TRADE not in kinds(run(book([]) + rise + [trade(1000, 1, 600_400, 100)]))  # small
    flat = [trade(100 * j, 1, 600_000 + j, 5) for j in range(10)]
    assert K.MOMENTUM_TRADE not in kinds(run(book([]) + flat + [trade(1000, 1, 600_010, 500)]))


def test_absorption_fires_when_the_level_holds() -> None:
    # threshold max(50 x 10 lots, 100 000 quote = 1667 lots) = 1667; 10 buys of 200 at the ask 600 001
    hits = [trade(1000 + 10 * j, 1, 600_001, 200) for j in range(10)]
    held = book([(1, 599_999, 50), (-1, 600_001, 5000)]) + hits + [level(1200, -1, 600_001, 3000)]
    d = [x for x in run(held) if x.kind == K.ABSORPTION]
    assert len(d) == 1 and (d[0].side, d[0].price_ticks, d[0].lots) == (-1, 600_001, 2000)
    broken = book([(1, 599_999, 50), (-1, 600_001, 5000)]) + hits + [level(1200, -1, 600_001, 0),
                                                                     level(1201, -1, 600_003, 40)]
    assert K.ABSORPTION not in kinds(run(broken))  # the level gave way: price moved through it
    few = book([(1, 599_999, 50), (-1, 600_001, 5000)]) + hits[:5] + [level(1200, -1, 600_001, 3000)]
    assert K.ABSORPTION not in kinds(run(few))


def test_iceberg_refill_heuristic_of_reference_a8() -> None:
    # §A.8 refill rule: executed volume at p within w exceeds the max displayed size at p while the level
    # never disappears; flag when refill cycles >= N (3) and executed / visible >= r (2).
    # Display 100 lots at the ask; each cycle: a 100-lot buy, then the level shows 100 again.
    rows = book([(1, 599_999, 50), (-1, 600_001, 100)])
    for c in range(4):
        rows += [trade(1000 + 100 * c, 1, 600_001, 100), level(1000 + 100 * c + 5, -1, 600_001, 100)]
    d = [x for x in run(rows) if x.kind == K.ICEBERG]
    # after 3 refills: 300 executed >= 2 x 100 visible, >= 10 x typical trade: fires once, at the third refill
    assert len(d) == 1 and (d[0].side, d[0].price_ticks, d[0].lots, d[0].count) == (-1, 600_001, 300, 3)
    assert d[0].ts == T0 + 1205 * MS
    drain = book([(1, 599_999, 50), (-1, 600_001, 400)])
    for c in range(4):  # executions simply eat the display: no refill
        drain += [trade(1000 + 100 * c, 1, 600_001, 100), level(1000 + 100 * c + 5, -1, 600_001, 300 - 100 * c)]
    assert K.ICEBERG not in kinds(run(drain))
    gone = book([(1, 599_999, 50), (-1, 600_001, 100)])
    for c in range(4):  # the level disappears for 500 ms between cycles: a new episode each time
        gone += [trade(1000 + 1000 * c, 1, 600_001, 100), level(1000 + 1000 * c + 5, -1, 600_001, 0),
                 level(1000 + 1000 * c + 505, -1, 600_001, 100)]
    assert K.ICEBERG not in kinds(run(gone))


def test_hft_burst_many_small_trades() -> None:
    fast = [trade(1000 + 2 * j, 1 if j % 3 else -1, 600_001, 5) for j in range(25)]  # 25 in 48 ms
    d = [x for x in run(book([]) + fast) if x.kind == K.HFT_BURST]
    assert len(d) == 1 and d[0].count == 20 and d[0].side == 1 and d[0].lots == 100
    spread = [trade(1000 + 10 * j, 1, 600_001, 5) for j in range(25)]  # at most 11 per 100 ms
    big = [trade(1000 + 2 * j, 1, 600_001, 50) for j in range(25)]  # not small
    for rows in (spread, big):
        assert K.HFT_BURST not in kinds(run(book([]) + rows))


def test_hft_burst_sums_stay_exact_when_the_ring_overflows() -> None:
    # 5000 small trades at one instant overflow the 4096-slot ring: the trades that leave must be
    # the oldest ones (1 and 3 lots first), so a later burst of 20 x 5 lots reports exactly 100
    first = [trade(1000, 1, 600_001, 1), trade(1000, 1, 600_001, 3)] + [trade(1000, 1, 600_001, 5)] * 4998
    later = [trade(1200, 1, 600_001, 5) for _ in range(20)]
    d = [x for x in run(book([]) + first + later) if x.kind == K.HFT_BURST]
    assert d[-1].count == 20 and d[-1].lots == 100 and d[-1].side == 1


def test_wall_pulled_near_the_touch_without_trades() -> None:
    # wall: >= max(20 x 100 lots, 100 000 quote) = 2000 lots, within 5 bps (300 ticks) of the touch
    base = book([(1, 599_995, 5000), (1, 599_999, 50), (-1, 600_001, 50), (1, 599_000, 5000)])
    d = [x for x in run(base + [level(1000, 1, 599_995, 0)]) if x.kind == K.WALL_PULLED]
    assert len(d) == 1 and (d[0].side, d[0].price_ticks, d[0].lots, d[0].count) == (1, 599_995, 5000, 4)
    assert K.WALL_PULLED in kinds(run(base + [level(1000, 1, 599_995, 900)]))  # cut to 18 %
    assert K.WALL_PULLED not in kinds(run(base + [level(1000, 1, 599_995, 1500)]))  # 30 % left
    traded = base + [trade(900, -1, 599_995, 100), level(1000, 1, 599_995, 0)]
    assert K.WALL_PULLED not in kinds(run(traded))  # executions at the price within 1 s
    assert K.WALL_PULLED not in kinds(run(base + [level(1000, 1, 599_000, 0)]))  # 999 ticks away
    assert K.WALL_PULLED not in kinds(run(base + [level(1000, 1, 599_999, 0)]))  # small level


def test_liquidation_cascade_growing_forced_orders() -> None:
    def liq(t: float, q: int, side: int = -1) -> tuple[int, int, int, int, int, int]:
        return (Kind.LIQUIDATION, side, EOM, t, 600_000, q)

    d = [x for x in run([liq(0, 300), liq(2000, 400), liq(4000, 500), liq(5000, 600)])
         if x.kind == K.LIQUIDATION_CASCADE]
    assert len(d) == 1 and (d[0].side, d[0].count, d[0].lots) == (-1, 3, 1200)  # once per cascade
    assert not run([liq(0, 500), liq(2000, 400), liq(4000, 300)])  # shrinking
    assert not run([liq(0, 300), liq(15_000, 400), liq(30_000, 500)])  # spread beyond the 10 s window
    assert not run([liq(0, 300, -1), liq(2000, 400, 1), liq(4000, 500, -1)])  # mixed sides
    again = [liq(0, 300), liq(2000, 400), liq(4000, 500), liq(30_000, 300), liq(31_000, 400), liq(32_000, 500)]
    assert len(run(again)) == 2  # a quiet gap longer than the window starts a new cascade


def test_unsynced_book_and_config_errors() -> None:
    # without a snapshot the book-based detectors stay silent; trade-only ones still work
    rows = [trade(1000 + 100 * c, 1, 600_001, 100) for c in range(4)] + [trade(2000, 1, 600_001, 3000)]
    assert kinds(run(rows)) == [K.BLOCK_TRADE]
    for bad in ({"clock": "wall"}, {"track_ticks": 1000}, {"sweep_min_levels": 0}, {"wall_keep_frac": 1.0}):
        with pytest.raises(ValueError):
            DetectorConfig(**bad)
    with pytest.raises(ValueError):
        Scale.from_events(events([]))
