"""Kernel (``detectors.nb``) vs plain-Python twin (``detectors.reference_flow``) for the absorption,
momentum-trade, HFT-burst and liquidation-cascade detectors: rows and confidence on hypothesis streams,
on ring-wrapping bursts and on the real Binance captures (counts printed with -s)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowbook.detectors import DetectorConfig, Scale, counts, detect_rows, resolve, to_detections
from flowbook.detectors.reference_flow import ref_detect_flow, ref_liquidation_cascade
from flowbook.events import EVENT_DTYPE, Instrument, Kind

FLOW = (2, 4, 6, 8)  # absorption, momentum trade, HFT burst, liquidation cascade
NAMES = {2: "absorption", 4: "momentum_trade", 6: "hft_burst", 8: "liquidation_cascade"}
MS = 1_000_000
INST = Instrument("test", "T", "1", "1")  # one lot at 1000 ticks = 1000 quote
SCALE = Scale(trade_lots=2, level_lots=5, price_ticks=1000)


def kernel_rows(ev: np.ndarray, res, kinds: tuple[int, ...] = FLOW) -> list[tuple]:  # noqa: ANN001
    rows, conf = detect_rows(ev, res)
    assert np.all((conf >= 0) & (conf <= 1))
    return sorted(tuple(r) + (c,) for r, c in zip(rows.tolist(), conf.tolist(), strict=True) if r[1] in kinds)


def assert_same(fast: list[tuple], slow: list[tuple]) -> None:
    """Equal integer rows, confidence within 1e-9."""
    slow = sorted(slow)
    assert [r[:6] for r in fast] == [r[:6] for r in slow]
    assert all(abs(a[6] - b[6]) <= 1e-9 for a, b in zip(fast, slow, strict=True))


def to_events(rows: list[tuple[int, int, int, int, int, int, int]]) -> np.ndarray:
    """``(kind, side, flags, ts_exchange, ts_local, price, qty)`` rows -> EVENT_DTYPE."""
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for n, (k, s, f, te, tl, p, q) in enumerate(rows):
        ev[n] = (k, s, f, 0, te, tl, p, q, -1, -1, 0.0)
    return ev


# time steps hit the windows (10, 20, 50 ms) exactly, one ns either side, and equal timestamps
STEPS = [0, 0, 0, 1, MS, 2 * MS, 5 * MS, 10 * MS - 1, 10 * MS, 10 * MS + 1, 20 * MS, 50 * MS, 300 * MS]


@st.composite
def streams(draw: st.DrawFn) -> np.ndarray:
    """Snapshots (sometimes one-sided or empty), clears with no snapshot after them, level sets inside and
    at the end of multi-event messages, trades (some with no aggressor side, some before any book),
    liquidation bursts.  Depth carries its own exchange time, up to 2 ms off the trades' time."""
    rows: list[tuple[int, int, int, int, int, int, int]] = []
    t = 1_000_000_000
    mid = 1000

    def snapshot() -> None:
        rows.append((Kind.BOOK_CLEAR, 0, 0, t, t, 0, 0))
        shape = draw(st.sampled_from(["both", "both", "both", "bids", "asks", "none"]))
        lv = [(1, mid - j, draw(st.integers(1, 200))) for j in range(1, 6) if shape in ("both", "bids")]
        lv += [(-1, mid + j, draw(st.integers(1, 200))) for j in range(1, 6) if shape in ("both", "asks")]
        lv = lv or [(0, 0, 0)]  # an empty snapshot: only its end marker
        for n, (s, p, q) in enumerate(lv):
            rows.append((Kind.BOOK_SET, s, 1 | (12 if n == len(lv) - 1 else 0), t, t, p, q))

    if draw(st.booleans()):
        snapshot()
    for _ in range(draw(st.integers(0, 150))):
        t += draw(st.sampled_from(STEPS))
        op = draw(st.sampled_from(["set", "set", "msg", "trade", "trade", "trade", "liq", "clear"]))
        side = draw(st.sampled_from([1, -1]))
        p = mid + draw(st.integers(-6, 6))
        if op == "clear":
            if draw(st.integers(0, 3)):
                snapshot()
            else:
                rows.append((Kind.BOOK_CLEAR, 0, 0, t, t, 0, 0))  # unsynced until a snapshot ends
        elif op == "trade":
            for _ in range(draw(st.sampled_from([1, 1, 1, 3, 8]))):  # fills of one taker order share the time
                a = 0 if draw(st.integers(0, 15)) == 0 else side
                rows.append((Kind.TRADE, a, 8, t, t, p, draw(st.sampled_from([1, 2, 5, 20, 21, 40, 100]))))
                p += draw(st.sampled_from([0, 0, side]))
        elif op == "liq":
            for _ in range(draw(st.integers(1, 5))):
                q = draw(st.sampled_from([10, 30, 50, 80, 200]))
                rows.append((Kind.LIQUIDATION, side, 8, t, t, p, q))
                t += draw(st.sampled_from([0, MS, 20 * MS, 50 * MS]))
        else:
            te = t - draw(st.sampled_from([0, 0, 1, MS, 2 * MS]))
            n = 1 if op == "set" else draw(st.integers(2, 4))
            for j in range(n):  # the last event of a message carries END_OF_MESSAGE
                s, pp = draw(st.sampled_from([1, -1])), mid + draw(st.integers(-6, 6))
                q = draw(st.sampled_from([0, 0, 5, 40, 150, 400]))
                rows.append((Kind.BOOK_SET, s, 8 if j == n - 1 else 0, te, t, pp, q))
    return to_events(rows)


CFG = {"absorption_window_ms": 20, "absorption_min_trade_mult": 25, "absorption_min_notional": 1,
       "momentum_window_ms": 20, "momentum_min_bps": 20, "momentum_min_notional": 30_000,
       "hft_window_ms": 10, "hft_small_trade_mult": 10, "liq_window_ms": 50, "liq_min_notional": 100_000}


@settings(max_examples=250, deadline=None)
@given(ev=streams(), tw=st.sampled_from([16, 1 << 10]), clock=st.sampled_from(["ts_exchange", "ts_local"]),
       move=st.integers(0, 2), hft_n=st.integers(2, 5), liq_n=st.integers(1, 4))
def test_kernel_matches_twin_on_random_streams(ev: np.ndarray, tw: int, clock: str, move: int, hft_n: int,
                                               liq_n: int) -> None:
    cfg = DetectorConfig(clock=clock, track_ticks=tw, absorption_max_move_ticks=move, hft_min_trades=hft_n,
                         liq_min_orders=liq_n, **CFG)
    res = resolve(cfg, INST, SCALE)  # absorption 50 lots, momentum 2 ticks, small trade <= 20 lots
    assert_same(kernel_rows(ev, res), ref_detect_flow(ev, res, confidence=True))


def snapshot_rows(t: int, depth: int, q: int) -> list[tuple[int, int, int, int, int, int, int]]:
    rows = [(Kind.BOOK_CLEAR, 0, 0, t, t, 0, 0)]
    rows += [(Kind.BOOK_SET, s, 1, t, t, 1000 - s * j, q) for j in range(1, depth + 1) for s in (1, -1)]
    k, s, _, a, b, p, q = rows[-1]
    rows[-1] = (k, s, 13, a, b, p, q)
    return rows


LOTS = [1, 2, 5, 20, 21, 40, 100]


@st.composite
def bursts(draw: st.DrawFn) -> np.ndarray:
    """Long runs of trades: more than 4096 small trades inside one HFT window (the ring wraps), taker orders
    of more than 4096 fills, more than 64 absorbing levels waiting for one depth message at once."""
    t = 1_000_000_000
    rows = snapshot_rows(t, 90, 500)
    for _ in range(draw(st.integers(1, 3))):
        t += draw(st.sampled_from([0, 1, 10 * MS, 10 * MS + 1, 30 * MS]))
        n, dt = draw(st.sampled_from([40, 4200, 4600])), draw(st.sampled_from([0, 0, 1, 2000]))
        side, shape = draw(st.sampled_from([1, -1])), draw(st.sampled_from(["one", "walk", "walk", "levels"]))
        no_side, lot0 = draw(st.sampled_from([0, 0, 3, 50])), draw(st.integers(0, 6))
        sizes = LOTS[:4] if draw(st.booleans()) else LOTS  # all small (<= 20 lots) or mixed
        for i in range(n):
            p = {"one": 1000, "walk": 1000 + side * (i // 300), "levels": 1000 + side * (1 + i % 80)}[shape]
            a = 0 if no_side and i % no_side == 0 else side
            rows.append((Kind.TRADE, a, 8, t + i * dt, t + i * dt, p, sizes[(lot0 + i) % len(sizes)]))
        t += n * dt
        if draw(st.booleans()):  # one depth message after the run decides the waiting levels
            rows.append((Kind.BOOK_SET, 1, 8, t, t, 999, 500))
    return to_events(rows)


@settings(max_examples=20, deadline=None)
@given(ev=bursts(), hft_n=st.sampled_from([20, 4095, 4096]), move=st.sampled_from([0, 100]))
def test_kernel_matches_twin_when_rings_wrap(ev: np.ndarray, hft_n: int, move: int) -> None:
    cfg = DetectorConfig(track_ticks=1 << 10, hft_min_trades=hft_n, absorption_max_move_ticks=move, **CFG)
    res = resolve(cfg, INST, SCALE)
    assert_same(kernel_rows(ev, res), ref_detect_flow(ev, res, confidence=True))


def test_real_captures_kernel_matches_twin(capture, request: pytest.FixtureRequest) -> None:  # noqa: ANN001
    ev, inst = capture
    name = request.node.callspec.params["capture"]
    res = resolve(DetectorConfig(), inst, Scale.from_events(ev))
    fast, slow = kernel_rows(ev, res), ref_detect_flow(ev, res, confidence=True)
    assert_same(fast, slow)
    rows, conf = detect_rows(ev, res)
    c = counts(to_detections(rows, conf, res))
    twin = [sum(r[1] == k for r in slow) for k in FLOW]
    print(f"\n{name} {inst.symbol} (absorption, momentum, HFT burst, cascade): kernel "
          f"{[c[NAMES[k]] for k in FLOW]} twin {twin}")
    assert c["absorption"] > 0 and c["momentum_trade"] > 0 and c["hft_burst"] > 0
    assert c["liquidation_cascade"] == 0  # no liquidation stream in the captures
    # the same tape with every fourth trade relabelled a forced order: real sizes, prices and timing
    liq = ev.copy()
    tr = np.flatnonzero(liq["kind"] == Kind.TRADE)
    liq["kind"][tr[::4]] = Kind.LIQUIDATION
    lres = resolve(DetectorConfig(liq_min_notional=20_000), inst, Scale.from_events(ev))
    fast = kernel_rows(liq, lres, (8,))
    assert_same(fast, ref_liquidation_cascade(liq, lres))
    print(f"{name} relabelled forced orders: cascades kernel {len(fast)}")
    assert len(fast) > 0


T0 = 1_000_000_000


def at(ms: float, kind: int, side: int, p: int, q: int, flags: int = 8) -> tuple[int, ...]:
    t = T0 + int(ms * MS)
    return (kind, side, flags, t, t, p, q)


def both(rows: list[tuple[int, ...]], **cfg: float) -> list[tuple]:
    """The kernel's rows of the four detectors, checked equal to the twin's."""
    ev = to_events(rows)
    res = resolve(DetectorConfig(**{**CFG, **cfg}), INST, SCALE)
    fast = kernel_rows(ev, res)
    assert_same(fast, ref_detect_flow(ev, res, confidence=True))
    return [r[:6] for r in fast]


def test_absorption_ignores_trades_without_aggressor_side() -> None:
    # 100 lots with no aggressor side at the ask 1001 have no passive side: nothing absorbed (the kernel used
    # to count them on the ask and report an absorption with side 0)
    rows = snapshot_rows(T0, 5, 100) + [at(1, Kind.TRADE, 0, 1001, 100), at(2, Kind.BOOK_SET, 1, 999, 40)]
    assert both(rows) == []
    mixed = rows[:-2] + [at(1, Kind.TRADE, 0, 1001, 40), at(1, Kind.TRADE, 1, 1001, 20), rows[-1]]
    assert both(mixed) == []  # 20 bought lots are below the 50-lot threshold; the 40 do not add to them
    rows[-2] = at(1, Kind.TRADE, 1, 1001, 100)  # the same lots bought from the ask: absorbed, ask side
    assert both(rows) == [(T0 + 2 * MS, 2, -1, 1001, 100, 0)]


def test_absorption_reports_the_lots_of_its_own_episode() -> None:
    # 100 lots into the bid at 999 make it pending; no depth message for 29 ms, so a new 20 ms episode
    # starts at 25 ms and reaches 60 lots; one depth message decides both: 100 and 60 lots (the kernel
    # used to report the newer episode's 60 twice)
    rows = snapshot_rows(T0, 5, 100) + [at(1, Kind.TRADE, -1, 999, 100), at(25, Kind.TRADE, -1, 999, 10),
                                        at(26, Kind.TRADE, -1, 999, 50), at(30, Kind.BOOK_SET, 1, 999, 40)]
    t = T0 + 30 * MS
    assert both(rows) == [(t, 2, 1, 999, 60, 0), (t, 2, 1, 999, 100, 0)]


def test_hft_burst_lots_count_trades_without_aggressor_side() -> None:
    # a 5-lot trade with no side leaves the 10 ms window; the burst of the next two is 10 lots (the kernel
    # used to keep the leaver's lots in its running total: 15)
    rows = [at(0, Kind.TRADE, 0, 1000, 5), at(20, Kind.TRADE, 1, 1000, 5), at(21, Kind.TRADE, 1, 1000, 5)]
    assert both(rows, hft_min_trades=2) == [(T0 + 21 * MS, 6, 1, 1000, 10, 2)]


def test_absorption_waits_for_at_most_64_levels() -> None:
    # 80 ask levels each take 100 bought lots before one depth message: 64 wait and fire, 16 are not kept
    rows = snapshot_rows(T0, 90, 500) + [at(1, Kind.TRADE, 1, 1000 + j, 100) for j in range(1, 81)]
    rows.append(at(2, Kind.BOOK_SET, 1, 999, 500))
    fired = [r for r in both(rows, track_ticks=1 << 10, absorption_max_move_ticks=100) if r[1] == 2]
    assert sorted(r[3] for r in fired) == list(range(1001, 1065))
