"""Seeded synthetic L2 market: normalized events and a Binance USD-M raw recording of one process.

Model (ticks and lots, one symbol).  A target best bid ``b*`` walks +-1 tick before a message with
probability ``p_move`` (reflected in a 65536-tick range); the target best ask is ``b* + 1``.  A message
holds ``Geometric`` (mean ``mean_msg_updates``) random level updates, each side with probability 1/2,
bids before asks as in a ``depthUpdate``.  **The book never crosses, even inside a message**, because
each update respects the touch when applied: a side first deletes its levels beyond the target touch (a
down-move deletes the old best bid, an up-move the old best ask; an up-move so leaves a 2-tick spread
for one message), refills the empty target touch level unless the other side blocks it, then puts its
random updates at or behind ``top = min(b*, best ask - 1)`` (bids) / ``max(b* + 1, best bid + 1)``.
The distance from ``top`` is ``Geometric - 1`` ticks (mean ~``mean_distance``); levels more than
``depth`` ticks behind the target touch are deleted as it moves away.  Operations follow ``shares`` =
(add, modify, delete, delete-missing, far): add = first empty tick at that distance or deeper; modify /
delete = first live level there (deeper, else nearer), add vs delete weighted ``add * levels`` :
``delete * live`` so the live count reverts to ``levels``; delete-missing = size 0 for an empty tick (a
no-op consumers must tolerate); far = resize one of 4 far-from-mid levels a side (bids ``start - 65536``
ticks, 1/2, 1/12, 1/60 of the start price, e.g. 5000.0 and 1000.0 like the real BTC capture; asks
``start + 65536``, 1.5x, 2x, 10x).  Sizes ``1 + int(exp(N(5.3, 1.2)))`` lots (far 100x).  After a
message, with probability ``p_trade``, 1-3 trades hit the touch: aggressor +-1 with probability 1/2, a
buy at the best ask, a sell at the best bid, up to the resting size (``Geometric``, mean 20 lots); the
next message reduces or deletes that level.  ``N_PRE`` messages precede the snapshot, the full book then
(<= ``depth + 5`` levels a side: within Binance's 1000-level REST snapshot); ``n_updates`` counts the
level updates after it, exactly; no trade in the first ``N_BUFFERED`` messages after it.  Ids as on
Binance futures (global across symbols): ``U = previous u + 1 + gap``, ``u = U + span``,
``pu = previous u``; the snapshot's ``lastUpdateId`` lies in ``[U, u)`` of the first message after it.
Local times step >= 1 ms; exchange times (ms) run 1.27 s ahead, as in the real capture.

The recording writes the ``N_PRE`` stale diffs and the first ``N_BUFFERED`` diffs after the snapshot
before the bare REST snapshot line, like the real capture, so a consumer must buffer.  The process is a
compiled (numba) loop; ids, clocks, the event array and the final book are vectorised numpy.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from ..events import EVENT_DTYPE, NO_ID, Flag, Instrument, Kind

__all__ = ["SyntheticParams", "SyntheticMarket", "synthetic_market", "synthetic_events", "write_recording"]

N_PRE = 3  # messages before the snapshot (stale, buffered diffs in the recording)
N_BUFFERED = 2  # messages after the snapshot that the recording writes before the snapshot line
_W = 1 << 16  # simulated ladder width (ticks) around the start price
_K, _LIMIT, _BB, _BA, _NB, _NA = range(6)  # kernel state slots
_OFFSET_NS = 1_270_000_000  # exchange clock minus local clock
_T0_NS = 1_723_161_255_000_000_000  # 2024-08-08 23:54:15 UTC


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    mean_msg_updates: float = 10.0
    mean_distance: float = 30.0
    depth: int = 900
    levels: int = 500
    p_move: float = 0.1
    p_trade: float = 0.1
    shares: tuple[float, float, float, float, float] = (0.24, 0.46, 0.24, 0.04, 0.02)
    start_tick: int = 600_000  # 60000.0 at tick 0.1

    def __post_init__(self) -> None:
        if self.start_tick <= 2 * _W or not 10 <= self.levels <= self.depth <= 990 or abs(sum(self.shares) - 1) > 1e-9:
            raise ValueError("need start_tick > 131072, 10 <= levels <= depth <= 990, shares summing to 1")


@njit(cache=True)
def _emit(st, out, side, t, q):
    k = st[_K]
    if k >= st[_LIMIT]:  # refused at the update limit
        return False
    out[0, k], out[1, k], out[2, k] = side, t, q
    st[_K] = k + 1
    return True


@njit(cache=True)
def _set(st, out, lad, lo, side, t, q):
    """Emit ``(side, t, q)`` and apply it to the ladder and the touch."""
    if not _emit(st, out, side, t, q):
        return False
    i = t - lo
    old = lad[i]
    lad[i] = q
    c, b = (_NB, _BB) if side > 0 else (_NA, _BA)
    st[c] += (1 if q != 0 else 0) - (1 if old != 0 else 0)
    if q != 0 and (t - st[b]) * side > 0:
        st[b] = t
    elif q == 0 and old != 0 and t == st[b]:
        while 0 <= i < lad.shape[0] and lad[i] == 0:
            i -= side
        st[b] = lo + i  # lo - 1 / lo + W: empty side
    return True


@njit(cache=True)
def _find(lad, lo, p0, out, top, limit, live):
    """First tick from ``p0`` outward (step ``out``) to ``limit``, then inward to ``top``, whose level
    is live (``live``) or empty; -1 if none."""
    t = p0
    while (limit - t) * out >= 0:
        if (lad[t - lo] != 0) == live:
            return t
        t += out
    t = p0 - out
    while (t - top) * out >= 0:
        if (lad[t - lo] != 0) == live:
            return t
        t -= out
    return -1


@njit(cache=True)
def _qty(scale):
    return (1 + int(np.exp(np.random.normal(5.3, 1.2)))) * scale


@njit(cache=True)
def _simulate(seed, n_updates, prm, shares, bid, ask, lo, far, out, msg_end, tr, snap, counts):
    np.random.seed(seed)
    mean_msg, mean_d, n_lv, p_move, p_trade = prm[0], prm[1], prm[3], prm[4], prm[5]
    depth, bstar = int(prm[2]), int(prm[6])
    st = np.zeros(6, np.int64)
    st[_LIMIT] = out.shape[1]
    for d in range(depth + 1):
        for s in range(2):
            if d < 10 or np.random.random() < n_lv / (depth + 1):
                (bid if s == 0 else ask)[(bstar - d if s == 0 else bstar + 1 + d) - lo] = _qty(1)
                st[_NB + s] += 1
    st[_BB], st[_BA] = bstar, bstar + 1
    pend_px, pend_q = np.zeros(2, np.int64), np.zeros(2, np.int64)  # resting side of the last trades
    m = nt = 0
    while True:
        if m == N_PRE and counts[4] < 0:  # the snapshot: the full book after the earlier messages
            for s in range(2):
                lad, n, i = (bid if s == 0 else ask), 0, st[_BB + s] - lo
                while 0 <= i < _W:
                    if lad[i] != 0:
                        snap[s, 0, n], snap[s, 1, n] = lo + i, lad[i]
                        n += 1
                    i += -1 if s == 0 else 1
                snap[s, :, n:n + far.shape[2]] = far[s]
                counts[2 + s] = n + far.shape[2]
            counts[4] = st[_K]
            st[_LIMIT] = st[_K] + n_updates
        if st[_K] >= st[_LIMIT]:
            break
        mv = 0
        if np.random.random() < p_move:
            mv = 1 if np.random.random() < 0.5 else -1
            if bstar + mv - depth - 8 < lo or bstar + mv + depth + 8 >= lo + _W:
                mv = -mv
        bstar += mv
        nops = min(np.random.geometric(1.0 / mean_msg), int(20 * mean_msg))
        nbid = np.random.binomial(nops, 0.5)
        for s in range(2):
            side, lad = (1, bid) if s == 0 else (-1, ask)
            tgt = bstar if s == 0 else bstar + 1
            while (st[_BB + s] - tgt) * side > 0:  # levels beyond the target touch
                if not _set(st, out, lad, lo, side, st[_BB + s], 0):
                    break
            behind = tgt - side * (depth + 1)  # left more than `depth` behind by the touch
            if mv == side and lad[behind - lo] != 0:
                _set(st, out, lad, lo, side, behind, 0)
            top = min(tgt, st[_BA] - 1) if s == 0 else max(tgt, st[_BB] + 1)
            if top == tgt and lad[tgt - lo] == 0:
                _set(st, out, lad, lo, side, tgt, _qty(1))
            if pend_q[s] > 0 and lad[pend_px[s] - lo] != 0:
                _set(st, out, lad, lo, side, pend_px[s], max(lad[pend_px[s] - lo] - pend_q[s], 0))
            pend_q[s] = 0
            limit = tgt - side * depth
            for _ in range(nbid if s == 0 else nops - nbid):
                u = np.random.random()
                if u < shares[4]:
                    j, q = np.random.randint(0, far.shape[2]), _qty(100)
                    if _emit(st, out, side, far[s, 0, j], q):
                        far[s, 1, j] = q
                    continue
                p0 = top - side * (np.random.geometric(1.0 / mean_d) - 1)
                p0 = max(p0, limit) if s == 0 else min(p0, limit)
                c = shares[4] + shares[1]  # [far | modify | add or delete | delete-missing]
                op = 1 if u < c else 3 if u >= c + shares[0] + shares[2] else 0
                if op == 0:
                    wa, wd = shares[0] * n_lv, shares[2] * st[_NB + s]
                    op = 0 if np.random.random() * (wa + wd) < wa else 2
                t = _find(lad, lo, p0, -side, top, limit, op == 1 or op == 2)
                if t < 0:  # nothing of that kind in range: resize a live level instead
                    op, t = 1, _find(lad, lo, p0, -side, top, limit, True)
                    if t < 0:
                        continue
                q = 0 if op >= 2 else _qty(1)
                _set(st, out, lad, lo, side, t, q + (1 if op == 1 and q == lad[t - lo] else 0))
        if st[_K] == (msg_end[m - 1] if m > 0 else 0):
            continue  # nothing emitted: no message
        msg_end[m] = st[_K]
        m += 1
        if m > N_PRE + N_BUFFERED and st[_K] < st[_LIMIT] and np.random.random() < p_trade:
            for _ in range(min(np.random.geometric(0.6), 3)):
                aggr = 1 if np.random.random() < 0.5 else -1
                r = 1 if aggr > 0 else 0  # resting side
                px = st[_BB + r]
                if not 0 <= px - lo < _W:
                    break
                q = min(np.random.geometric(0.05),
                        (ask if r else bid)[px - lo] - (pend_q[r] if pend_px[r] == px else 0))
                if q <= 0 or nt >= tr.shape[1]:
                    break
                if pend_px[r] != px:
                    pend_px[r], pend_q[r] = px, 0
                pend_q[r] += q
                tr[0, nt], tr[1, nt], tr[2, nt], tr[3, nt] = m - 1, aggr, px, q
                nt += 1
    counts[0], counts[1] = m, nt


@dataclass
class SyntheticMarket:
    """One run of the process (ticks and lots).  Messages ``0..N_PRE-1`` precede the snapshot."""

    instrument: Instrument
    updates: np.ndarray  # (3, n) side, tick, lots of every level update
    msg_end: np.ndarray  # exclusive end of each message in ``updates``
    k0: int  # first update after the snapshot
    snap_bids: np.ndarray  # (2, n) ticks, lots; best first
    snap_asks: np.ndarray
    final_bids: np.ndarray  # the generator's own book after the last message, best first
    final_asks: np.ndarray
    trades: np.ndarray  # (4, n) message it follows, aggressor side, tick, lots
    first_id: np.ndarray  # U per message
    last_id: np.ndarray  # u per message
    ts_local: np.ndarray  # ns per message

    @property
    def last_update_id(self) -> int:
        """The snapshot's ``lastUpdateId``: inside ``[U, u)`` of the first message after it."""
        return int(self.first_id[N_PRE] + (self.last_id[N_PRE] - self.first_id[N_PRE]) // 2)

    @property
    def snapshot_ts(self) -> int:
        """Local receive time of the snapshot line, after the first N_BUFFERED diffs following it."""
        t, j = self.ts_local, min(N_PRE + N_BUFFERED, len(self.ts_local)) - 1
        return int((t[j] + (t[j + 1] if j + 1 < len(t) else t[j] + 1_000_000)) // 2)

    @staticmethod
    def exchange_ms(ts_local: np.ndarray | int) -> np.ndarray:
        return (np.asarray(ts_local) + _OFFSET_NS) // 1_000_000

    def trade_ts(self) -> np.ndarray:
        tm = self.trades[0]
        return self.ts_local[tm] + 50_000 * (np.arange(len(tm)) - np.searchsorted(tm, tm) + 1)

    def trade_ids(self) -> np.ndarray:
        return 5_266_583_935 + np.arange(self.trades.shape[1], dtype=np.int64)

    def events(self) -> np.ndarray:
        """Snapshot, then each message's level updates followed by its trades, as ``EVENT_DTYPE``."""
        k0, nb, na = self.k0, self.snap_bids.shape[1], self.snap_asks.shape[1]
        ends = self.msg_end[N_PRE:] - k0
        g = np.repeat(np.arange(N_PRE, len(self.msg_end)), np.diff(ends, prepend=0))  # message of each
        ts = self.trade_ts()
        head, upd, trd = (np.zeros(n, EVENT_DTYPE) for n in (1 + nb + na, len(g), len(ts)))
        snap_px, snap_q = np.hstack([self.snap_bids, self.snap_asks])
        sflags = np.full(len(head), Flag.SNAPSHOT)
        sflags[0] |= Flag.SNAPSHOT_BEGIN
        sflags[-1] |= Flag.SNAPSHOT_END | Flag.END_OF_MESSAGE
        for arr, cols in (
            (head, {"kind": np.r_[Kind.BOOK_CLEAR, np.full(nb + na, Kind.BOOK_SET)], "flags": sflags,
                    "side": np.r_[0, np.repeat([1, -1], [nb, na])], "price": np.r_[0, snap_px],
                    "qty": np.r_[0, snap_q], "id": self.last_update_id, "id2": NO_ID,
                    "ts_local": self.snapshot_ts, "ts_exchange": (self.exchange_ms(self.snapshot_ts) - 20) * 10**6}),
            (upd, {"kind": Kind.BOOK_SET, "side": self.updates[0, k0:], "price": self.updates[1, k0:],
                   "qty": self.updates[2, k0:], "id": self.last_id[g], "id2": self.first_id[g],
                   "ts_local": self.ts_local[g], "ts_exchange": self.exchange_ms(self.ts_local[g]) * 10**6}),
            (trd, {"kind": Kind.TRADE, "side": self.trades[1], "flags": Flag.END_OF_MESSAGE, "id2": NO_ID,
                   "price": self.trades[2], "qty": self.trades[3], "id": self.trade_ids(), "ts_local": ts,
                   "ts_exchange": self.exchange_ms(ts) * 10**6}),
        ):
            for name, val in cols.items():
                arr[name] = val
        upd["flags"][ends[np.diff(ends, prepend=0) > 0] - 1] = Flag.END_OF_MESSAGE
        ev = np.empty(len(head) + len(upd) + len(trd), EVENT_DTYPE)
        ev[: len(head)] = head
        body = ev[len(head):]
        tpos = ends[self.trades[0] - N_PRE] + np.arange(len(trd))  # each trade after its message
        is_upd = np.ones(len(body), bool)
        is_upd[tpos] = False
        body[is_upd], body[tpos] = upd, trd
        return ev


def synthetic_market(n_updates: int, seed: int, params: SyntheticParams | None = None,
                     symbol: str = "SYNUSDT") -> SyntheticMarket:
    """Run the process for ``n_updates`` level updates after the snapshot (see the module docstring)."""
    p = params or SyntheticParams()
    if n_updates < 1:
        raise ValueError("n_updates must be >= 1")
    lo, s0 = p.start_tick - _W // 2, p.start_tick
    far = np.zeros((2, 2, 4), np.int64)  # side, (tick, lots), level
    far[:, 0] = [[s0 - _W, s0 // 2, s0 // 12, s0 // 60], [s0 + _W, s0 * 3 // 2, 2 * s0, 10 * s0]]
    far[:, 1] = np.random.default_rng(seed).integers(1_000, 700_000, (2, 4))
    out = np.zeros((3, n_updates + N_PRE * (int(20 * p.mean_msg_updates) + 16) + 64), np.int64)
    msg_end = np.zeros(n_updates + N_PRE + 1, np.int64)
    tr, snap = np.zeros((4, n_updates // 2 + 64), np.int64), np.zeros((2, 2, 1000), np.int64)
    counts = np.array([0, 0, 0, 0, -1], np.int64)
    bid, ask = np.zeros(_W, np.int64), np.zeros(_W, np.int64)
    prm = np.array([p.mean_msg_updates, p.mean_distance, p.depth, p.levels, p.p_move, p.p_trade, s0], float)
    _simulate(seed, n_updates, prm, np.array(p.shares), bid, ask, lo, far, out, msg_end, tr, snap, counts)
    m, nt, nsb, nsa, k0 = (int(x) for x in counts)
    rng = np.random.default_rng([seed, 1])
    span = rng.geometric(1 / 40, m)
    last = 5_123_107_800_000 + np.cumsum(rng.geometric(1 / 300, m) + span)
    ib, ia = np.flatnonzero(bid)[::-1], np.flatnonzero(ask)
    return SyntheticMarket(
        instrument=Instrument("binance-usdm", symbol, "0.1", "0.001"),
        updates=out[:, : msg_end[m - 1]], msg_end=msg_end[:m], k0=k0,
        snap_bids=snap[0, :, :nsb], snap_asks=snap[1, :, :nsa],
        final_bids=np.hstack([np.stack([lo + ib, bid[ib]]), far[0]]),
        final_asks=np.hstack([np.stack([lo + ia, ask[ia]]), far[1]]),
        trades=tr[:, :nt], first_id=last - span + 1, last_id=last,
        ts_local=_T0_NS + np.cumsum(1_000_000 + rng.exponential(9e6, m).astype(np.int64)),
    )


def synthetic_events(n_updates: int, seed: int, params: SyntheticParams | None = None,
                     symbol: str = "SYNUSDT") -> tuple[np.ndarray, Instrument]:
    """``n_updates`` level updates after a snapshot, plus trades, as normalized events."""
    mk = synthetic_market(n_updates, seed, params, symbol)
    return mk.events(), mk.instrument


def _px(t: int) -> str:  # tick 0.1, written with 2 decimals like Binance USD-M BTCUSDT
    return f"{t // 10}.{t % 10}0"


def _qs(v: int) -> str:  # lot 0.001
    return f"{v // 1000}.{v % 1000:03d}"


def _levels(px: np.ndarray, q: np.ndarray) -> str:
    return ",".join(f'["{_px(p)}","{_qs(v)}"]' for p, v in zip(px.tolist(), q.tolist(), strict=True))


def write_recording(path: Path | str, n_updates: int, seed: int, symbol: str = "SYNUSDT",
                    market: str = "usdm", params: SyntheticParams | None = None) -> SyntheticMarket:
    """Write the process as a flowbook raw recording (gzip ``<local_ns> <raw JSON>`` lines) of Binance
    USD-M combined streams: ``depthUpdate`` diffs, ``trade`` messages and one bare REST snapshot line."""
    if market != "usdm":
        raise ValueError("only the Binance USD-M ('usdm') stream layout is generated")
    mk = synthetic_market(n_updates, seed, params, symbol)
    low, (side, price, qty) = symbol.lower(), mk.updates
    lv = [f'["{p // 10}.{p % 10}0","{v // 1000}.{v % 1000:03d}"]'  # as _px, _qs
          for p, v in zip(price.tolist(), qty.tolist(), strict=True)]
    split = (mk.msg_end - np.diff(np.r_[0, np.cumsum(side < 0)[mk.msg_end - 1]])).tolist()  # bids, then asks
    e_ms, t_loc, ends = mk.exchange_ms(mk.ts_local).tolist(), mk.ts_local.tolist(), mk.msg_end.tolist()
    first, last = mk.first_id.tolist(), mk.last_id.tolist()
    tmsg, tside, tpx, tq = mk.trades.tolist()
    t_ts, tids = mk.trade_ts().tolist(), mk.trade_ids().tolist()
    t_ms = mk.exchange_ms(mk.trade_ts()).tolist()
    snap_after, j = min(N_PRE + N_BUFFERED, len(ends)) - 1, 0
    with gzip.open(path, "wt", compresslevel=1, encoding="ascii") as fh:
        for m, end in enumerate(ends):
            a, c = ends[m - 1] if m else 0, split[m]
            fh.write(f'{t_loc[m]} {{"stream":"{low}@depth@0ms","data":{{"e":"depthUpdate","E":{e_ms[m]},'
                     f'"T":{e_ms[m] - m % 3},"s":"{symbol}","U":{first[m]},"u":{last[m]},'
                     f'"pu":{last[m - 1] if m else first[m] - 1},"b":[{",".join(lv[a:c])}],'
                     f'"a":[{",".join(lv[c:end])}]}}}}\n')
            if m == snap_after:
                e = int(mk.exchange_ms(mk.snapshot_ts)) - 20
                fh.write(f'{mk.snapshot_ts} {{"lastUpdateId":{mk.last_update_id},"E":{e},"T":{e - 5},'
                         f'"bids":[{_levels(*mk.snap_bids)}],"asks":[{_levels(*mk.snap_asks)}]}}\n')
            while j < len(tmsg) and tmsg[j] == m:
                fh.write(f'{t_ts[j]} {{"stream":"{low}@trade","data":{{"e":"trade","E":{t_ms[j]},'
                         f'"T":{t_ms[j]},"s":"{symbol}","t":{tids[j]},"p":"{_px(tpx[j])}","q":"{_qs(tq[j])}",'
                         f'"X":"MARKET","m":{"true" if tside[j] < 0 else "false"}}}}}\n')
                j += 1
    return mk
