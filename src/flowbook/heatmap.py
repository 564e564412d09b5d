"""Bookmap-style heatmap: resting liquidity on a time x price grid, with traded volume per cell.

``build`` replays one instrument's events through the compiled L2 book (``flowbook.book.nb``) and, at
each sample time ``ts[j]``, reads the lots resting in every price bin (``bin_ticks`` ticks per bin)
on each side; trades with ``ts[j-1] < t <= ts[j]`` add to the buy/sell volume of their bin at ``j``.
``to_parquet`` writes the non-empty cells, ``render`` a PNG.  Definition: docs/detectors.md#heatmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from .book import L2Book
from .book import nb as bk
from .book import readnb as rd
from .book.l2 import window_for
from .events import Instrument, Kind

__all__ = ["Heatmap", "build", "to_parquet", "render", "NO_PRICE"]

NO_PRICE = -1


@njit(cache=True)
def heat_nb(ev, clock, i, j, ts, step, lo, k, st, lb, la, hkb, hvb, hka, hva, sync, bid, ask, buy, sell, bb, ba):
    """Fill samples ``j..`` from events ``i..``; returns ``(status, i, j)`` (``NEED_GROW``: grow, resume)."""
    nb_ = bid.shape[1]
    n, m = ev.shape[0], ts.shape[0]
    while i <= n and j < m:
        t = (ev[i]["ts_exchange"] if clock == 0 else ev[i]["ts_local"]) if i < n else ts[m - 1] + 1
        while j < m and t > ts[j]:  # sample j: the book after every event before this one
            if sync[0] == 1:
                bb[j], ba[j] = st[bk.ST_BEST_BID], st[bk.ST_BEST_ASK]
                for b in range(nb_):
                    for x in range(lo + b * k, lo + (b + 1) * k):
                        bid[j, b] += rd.get_level(st, lb, la, hkb, hvb, hka, hva, 1, x)
                        ask[j, b] += rd.get_level(st, lb, la, hkb, hvb, hka, hva, -1, x)
            j += 1
        if i == n or j == m:
            break
        e = ev[i]
        kind = e["kind"]
        if kind == 1:
            if e["side"] != 0 and bk.set_level(st, lb, la, hkb, hvb, hka, hva, e["side"], e["price"],
                                               e["qty"]) == bk.NEED_GROW:
                return bk.NEED_GROW, i, j
            if e["flags"] & 4:
                sync[0] = 1
            if e["flags"] & 8 and bk.maybe_recenter(st, lb, la, hkb, hvb, hka, hva) == bk.NEED_GROW:
                return bk.NEED_GROW, i + 1, j
        elif kind == 2:
            bk.book_clear(st, lb, la, hkb, hvb, hka, hva)
            sync[0] = 0
        elif kind == 3 and (j > 0 or t > ts[0] - step):
            b = (e["price"] - lo) // k
            if 0 <= b < nb_:
                if e["side"] > 0:
                    buy[j, b] += e["qty"]
                else:
                    sell[j, b] += e["qty"]
        i += 1
    return bk.OK, i, j


@dataclass(frozen=True)
class Heatmap:
    """The grid.  Row ``j`` is sample time ``ts[j]``; column ``b`` holds ticks ``[lo + b·k, lo + (b+1)·k)``.

    ``bid``/``ask``: lots resting in the bin at ``ts[j]`` (zero rows while the book is unsynced);
    ``buy``/``sell``: lots traded by buy/sell aggressors in ``(ts[j-1], ts[j]]`` (row 0: ``t <= ts[0]``
    from ``ts[0] - step`` on); ``best_bid``/``best_ask``: ticks at ``ts[j]`` or ``NO_PRICE``.
    """

    ts: np.ndarray
    lo: int
    bin_ticks: int
    bid: np.ndarray
    ask: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    tick: float
    lot: float
    symbol: str

    @property
    def liquidity(self) -> np.ndarray:
        return self.bid + self.ask

    @property
    def bin_low(self) -> np.ndarray:
        """Lowest price of each bin."""
        return (self.lo + self.bin_ticks * np.arange(self.bid.shape[1])) * self.tick


def _price_range(events: np.ndarray, bin_ticks: int, max_bins: int) -> tuple[int, int]:
    tr = events["price"][events["kind"] == Kind.TRADE]
    px = tr if len(tr) else events["price"][(events["kind"] == Kind.BOOK_SET) & (events["qty"] > 0)]
    if not len(px):
        raise ValueError("no trades and no book levels: nothing to draw")
    a, b = int(px.min()), int(px.max())
    pad = max((b - a) // 4, 10 * bin_ticks)
    a, b = a - pad, b + pad
    nbins = min(max_bins, (b - a) // bin_ticks + 1)
    mid = (a + b) // 2
    lo = (mid - nbins * bin_ticks // 2) // bin_ticks * bin_ticks
    return lo, nbins


def build(events: np.ndarray, inst: Instrument, step_ns: int = 1_000_000_000, bin_ticks: int = 1,
          lo: int | None = None, n_bins: int | None = None, max_bins: int = 400,
          clock: str = "ts_local") -> Heatmap:
    """The heatmap of one instrument's events (arrival order) on a clock of ``step_ns``.

    Sample times run from the first ``SNAPSHOT_END`` rounded up to the step to the last event.  The
    price range defaults to the traded range plus a quarter of it each side, at most ``max_bins`` bins.
    """
    if step_ns <= 0 or bin_ticks <= 0:
        raise ValueError("step and bin size must be positive")
    if clock not in ("ts_local", "ts_exchange"):
        raise ValueError(f"clock must be ts_local or ts_exchange, got {clock!r}")
    ends = np.flatnonzero((events["kind"] == Kind.BOOK_SET) & (events["flags"] & 4 != 0))
    if not ends.size:
        raise ValueError("the events hold no complete book snapshot")
    clk = events[clock]
    t0 = -(-int(clk[ends[0]]) // step_ns) * step_ns
    ts = np.arange(t0, int(clk.max()) + 1, step_ns, dtype=np.int64)
    if not len(ts):
        ts = np.array([t0], np.int64)
    if lo is None or n_bins is None:
        lo2, nb2 = _price_range(events, bin_ticks, max_bins)
        lo, n_bins = lo if lo is not None else lo2, n_bins if n_bins is not None else nb2
    book = L2Book(window=window_for(events))
    shape = (len(ts), n_bins)
    bid, ask, buy, sell = (np.zeros(shape, np.int64) for _ in range(4))
    bb, ba = np.full(len(ts), NO_PRICE, np.int64), np.full(len(ts), NO_PRICE, np.int64)
    sync = np.zeros(1, np.int64)
    i = j = 0
    c = 0 if clock == "ts_exchange" else 1
    while True:
        status, i, j = heat_nb(events, c, i, j, ts, step_ns, lo, bin_ticks, *book.arrays, sync, bid, ask, buy, sell, bb, ba)
        if status != bk.NEED_GROW:
            break
        book.grow()
    bb[bb == bk.NO_BID] = NO_PRICE
    ba[ba == bk.NO_ASK] = NO_PRICE
    return Heatmap(ts, lo, bin_ticks, bid, ask, buy, sell, bb, ba, inst.tick,
                   inst.lot, inst.symbol)


def to_parquet(hm: Heatmap, path: Path | str) -> int:
    """Write one row per non-empty cell; returns the row count.

    Columns: ``ts`` (ns), ``bin_low_tick``, ``price`` (bin's lowest price), ``bid_lots``, ``ask_lots``,
    ``buy_lots``, ``sell_lots``, ``bid_qty``/``ask_qty``/``buy_qty``/``sell_qty`` (base units),
    ``best_bid``/``best_ask`` (price at ``ts``, null when unknown).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    nz = (hm.bid | hm.ask | hm.buy | hm.sell) != 0
    jj, bb = np.nonzero(nz)
    cols: dict[str, np.ndarray] = {"ts": hm.ts[jj], "bin_low_tick": hm.lo + bb * hm.bin_ticks,
                                   "price": (hm.lo + bb * hm.bin_ticks) * hm.tick}
    for name in ("bid", "ask", "buy", "sell"):
        v = getattr(hm, name)[jj, bb]
        cols[f"{name}_lots"], cols[f"{name}_qty"] = v, v * hm.lot
    table = pa.table(cols)
    for name, v in (("best_bid", hm.best_bid[jj]), ("best_ask", hm.best_ask[jj])):
        table = table.append_column(name, pa.array(v * hm.tick, mask=v == NO_PRICE))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return len(jj)


def render(hm: Heatmap, path: Path | str, width: int = 1600, height: int = 900) -> None:
    """A PNG of ``width`` x ``height`` pixels: log-scaled liquidity, trades as dots, best bid/ask lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    fig.patch.set_facecolor("black")
    ax.set_facecolor("black")
    step = (hm.ts[1] - hm.ts[0]) / 1e9 if len(hm.ts) > 1 else 1.0
    x = (hm.ts - hm.ts[0]) / 1e9
    liq = hm.liquidity.T * hm.lot
    y0, y1 = hm.lo * hm.tick, (hm.lo + hm.bin_ticks * liq.shape[0]) * hm.tick
    pos = liq[liq > 0]
    if pos.size:
        norm = LogNorm(vmin=float(np.percentile(pos, 5)), vmax=float(max(np.percentile(pos, 99.5), pos.min() * 1.01)))
        img = ax.imshow(np.ma.masked_less_equal(liq, 0), origin="lower", aspect="auto", cmap="inferno", norm=norm,
                        extent=(x[0] - step, x[-1], y0, y1), interpolation="nearest")
        cb = fig.colorbar(img, ax=ax, pad=0.01)
        cb.set_label("resting liquidity (base units, log)", color="white")
        cb.ax.yaxis.set_tick_params(color="white", labelcolor="white")
    centers = (hm.lo + hm.bin_ticks * (np.arange(liq.shape[0]) + 0.5)) * hm.tick
    vmax = max(int(hm.buy.max()), int(hm.sell.max()), 1)
    for vol, color in ((hm.buy, "#2ee66b"), (hm.sell, "#ff4b4b")):
        jj, bb = np.nonzero(vol)
        ax.scatter(x[jj] - step / 2, centers[bb], s=6 + 300 * np.sqrt(vol[jj, bb] / vmax), c=color, alpha=0.75,
                   edgecolors="white", linewidths=0.3, zorder=3)
    for best, color in ((hm.best_bid, "#3ec1ff"), (hm.best_ask, "#ffd23e")):
        yv = np.where(best == NO_PRICE, np.nan, best * hm.tick)
        ax.step(x, yv, where="post", color=color, linewidth=1.0, zorder=4)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(f"seconds from {np.datetime64(int(hm.ts[0]), 'ns')} UTC", color="white")
    ax.set_ylabel("price", color="white")
    ax.set_title(f"{hm.symbol}: resting liquidity, trades (green buy / red sell), best bid (blue) / ask (yellow)"
                 f" — bin {hm.bin_ticks} tick(s), step {step:g} s", color="white")
    ax.tick_params(colors="white")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor=fig.get_facecolor())
    plt.close(fig)
