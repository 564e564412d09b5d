"""The catalog's book groups (``micro``, ``liquidity``, ``cost``) from one shared book pass.

Each of these groups reads the book at its own times: ``micro`` at every row, ``liquidity`` (walls,
score) and ``cost`` (book walks) at each multiple of their refresh clock, a row carrying the values of
the latest such time at or before it.  Rather than replaying the book once per group, one tape
(:func:`flowbook.features.tape.run_tape`) samples the union of those times, each sample flagged with
what it needs (the best ``wall_levels`` levels, a walk of ``cost_quote`` on both sides), and each
group's columns are computed from its own samples of that tape by the group module's ``*_from_tape``
function.  The columns are those of the separate passes, bit for bit
(``tests/test_catalog_shared.py``):

* a time sample sits before the first event whose clock (made non-decreasing) is later than it, as
  in :func:`flowbook.features.tape.book_tape`; a walk sits after the events whose raw clock is at or
  before its time, located by ``searchsorted`` as :func:`flowbook.features.impact.cost_series` does;
* a walk reads the best 256 levels and four times more while it takes all it read, as
  :func:`flowbook.features.impact.book_cost` does, and its result becomes a
  :class:`~flowbook.features.impact.Walk` through the same :func:`~flowbook.features.impact.walk_record`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from ..book import nb as bk
from ..events import Instrument
from .tape import LEVELS, W_FIELDS, WALK, effective_clock, messages_before, run_tape, sample_positions

if TYPE_CHECKING:
    from .catalog import CatalogConfig

__all__ = ["BOOK_GROUPS", "COST_COLUMNS", "book_columns", "grid_times", "on_rows"]

BOOK_GROUPS = ("micro", "liquidity", "cost")
COST_COLUMNS = ("cost_buy_bps", "cost_sell_bps", "cost_buy_levels", "cost_sell_levels")
_W = {name: k for k, name in enumerate(W_FIELDS)}


def grid_times(sample_ts: np.ndarray, step: int) -> np.ndarray:
    """The multiples of ``step`` from the first sample time (rounded up) to the last."""
    t = np.asarray(sample_ts, np.int64)
    first = -(-int(t[0]) // step) * step if len(t) else 0
    return np.arange(first, int(t[-1]) + 1 if len(t) else 0, step, dtype=np.int64)


def on_rows(grid: np.ndarray, cols: dict[str, np.ndarray], sample_ts: np.ndarray) -> dict[str, np.ndarray]:
    """Columns at the ``grid`` times carried to the samples: each sample takes the values of the latest
    grid time at or before it (NaN, or −1 for integers, before the first)."""
    t = np.asarray(sample_ts, np.int64)
    at = np.searchsorted(grid, t, side="right") - 1
    ok = at >= 0
    out = {}
    for name, col in cols.items():
        col = np.asarray(col)
        fill = -1 if col.dtype.kind in "iu" else np.nan
        o = np.full(len(t), fill, dtype=col.dtype if col.dtype.kind in "iuf" else np.float64)
        o[ok] = col[at[ok]]
        out[name] = o
    return out


def _cost_columns(tape_rows: np.ndarray, synced: np.ndarray, bb: np.ndarray, ba: np.ndarray, walks: np.ndarray,
                  want: int, size: float, inst: Instrument) -> dict[str, np.ndarray]:
    """The ``cost`` columns at the walk samples: :func:`walk_record` of each side's walk (NaN unsynced)."""
    from .impact import walk_record

    n = len(tape_rows)
    cols = {c: np.full(n, np.nan) for c in COST_COLUMNS}
    buy_bps, sell_bps, buy_lv, sell_lv = (cols[c] for c in COST_COLUMNS)
    w = walks.tolist()
    for j, (ok, b, a) in enumerate(zip(synced.tolist(), bb.tolist(), ba.tolist(), strict=True)):
        if not ok:
            continue
        mid2 = b + a if b != bk.NO_BID and a != bk.NO_ASK else None
        got = []
        for side, r in ((1, w[j][0]), (-1, w[j][1])):
            if r[_W["too_large"]] or (mid2 is not None and mid2 <= 0):
                raise ValueError("book walk: mid must be positive and the book notional below 2**62 tick·lots")
            got.append(walk_record(side, size, "quote", inst, want, *r[:_W["too_large"]], mid2))
        buy_bps[j], sell_bps[j] = got[0].slippage_mid_bps, got[1].slippage_mid_bps
        buy_lv[j], sell_lv[j] = got[0].levels, got[1].levels
    return cols


def book_columns(groups: Sequence[str], events: np.ndarray, inst: Instrument, sample_ts: np.ndarray, clock: str,
                 cfg: CatalogConfig) -> dict[str, dict[str, np.ndarray]]:
    """The columns of the book groups among ``groups`` at ``sample_ts``, per group, from one tape."""
    from .impact import walk_units
    from .liquidity import LiquidityConfig, liquidity_from_tape, walls_fn
    from .micro import MicroConfig, micro_from_tape

    T = np.asarray(sample_ts, np.int64)
    want = [g for g in BOOK_GROUPS if g in groups]
    mcfg, lcfg = MicroConfig(), LiquidityConfig()
    t = effective_clock(events, clock)
    grid_l = grid_times(T, cfg.liquidity_every_ns)
    grid_c = grid_times(T, cfg.cost_every_ns)
    walks = "cost" in want and not inst.inverse and len(events) > 0
    units = walk_units(cfg.cost_quote, "quote", inst) if walks else 0
    pos: list[np.ndarray] = []
    flag: list[np.ndarray] = []

    def request(at: np.ndarray, f: int) -> slice:
        start = sum(len(p) for p in pos)
        pos.append(np.asarray(at, np.int64))
        flag.append(np.full(len(at), f, np.int64))
        return slice(start, start + len(at))

    s_m = request(sample_positions(t, T), 0) if "micro" in want else None
    s_l = request(sample_positions(t, grid_l), LEVELS) if "liquidity" in want else None
    # the walks' place: cost_series' searchsorted on the raw clock; the book never goes back
    s_c = request(np.maximum.accumulate(np.searchsorted(events[clock], grid_c, side="right")) if len(grid_c)
                  else np.zeros(0, np.int64), WALK) if walks else None
    allpos = np.concatenate(pos) if pos else np.zeros(0, np.int64)
    at, inv = np.unique(allpos, return_inverse=True)
    inv = inv.reshape(-1)
    flags = np.zeros(len(at), np.int64)
    np.bitwise_or.at(flags, inv, np.concatenate(flag) if flag else np.zeros(0, np.int64))
    bands = tuple(dict.fromkeys(([mcfg.imbalance_bps] if s_m else []) + ([lcfg.depth_bps] if s_l else [])))
    # depth pressure looks up the last message at each liquidity time and a window before it
    need = (messages_before(events, np.r_[allpos[s_l], sample_positions(t, grid_l - lcfg.pressure_window_ns)])
            if s_l is not None else np.zeros(len(events), np.int8))
    tape = run_tape(events, t, at, flags, bands, lcfg.wall_levels if s_l else 0, mcfg.consume_levels,
                    mcfg.consume_bps, lcfg.pressure_bps, walls_fn(lcfg) if s_l else None, units, msg_need=need)
    out: dict[str, dict[str, np.ndarray]] = {}
    if s_m is not None:
        out["micro"] = micro_from_tape(events, inst, T, tape.pick(inv[s_m], bands.index(mcfg.imbalance_bps)), mcfg)
    if s_l is not None:
        rows = inv[s_l]
        lrank = np.cumsum(flags & LEVELS != 0) - 1
        sub = tape.pick(rows, bands.index(lcfg.depth_bps), lrank[rows])
        out["liquidity"] = on_rows(grid_l, liquidity_from_tape(events, inst, grid_l, sub, lcfg), T)
    if "cost" in want:
        if s_c is not None:
            rows = inv[s_c]
            wrank = np.cumsum(flags & WALK != 0) - 1
            g = _cost_columns(rows, tape.synced[rows], tape.bb[rows], tape.ba[rows], tape.walk[wrank[rows]], units,
                              float(Decimal(str(cfg.cost_quote))), inst)
        else:
            g = {c: np.full(len(grid_c), np.nan) for c in COST_COLUMNS}
        out["cost"] = on_rows(grid_c, g, T)
    return out
