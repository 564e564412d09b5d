"""Volume profile: exact binning of trades and candles, POC, value area, volume nodes, sessions.

Integer ticks and lots throughout.  Row ``b`` holds the ticks ``[b·k, b·k + k − 1]`` with
``k = bin_ticks`` (``b = tick // k``).  A trade adds its lots to its row.  A candle spreads its lots
uniformly over its ticks ``low..high`` (``n`` of them): each tick gets ``V // n`` lots and the
``r = V % n`` remaining lots go one each to evenly spaced ticks (tick ``j`` gets one when
``⌊(j+1)r/n⌋ > ⌊jr/n⌋``), so a candle profile is whole lots and its total is exactly the candle's
volume.  Internally a trade is a candle with ``open = high = low = close``.

Kernels (numba, ``cache=True``): :func:`spread_items`, :func:`levels`, :func:`profile_series_nb`,
:func:`session_ids`, :func:`extrema`.  Plain-Python twin: :mod:`flowbook.features.reference_analytics`
(``ref_*``).  Formulas, parameters, edge cases and tests: ``docs/analytics.md`` (reference §A.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numba import njit

__all__ = ["NS_DAY", "NO_ROW", "Bias", "Items", "MarketProfile", "NakedPoc", "Nodes", "Profile", "ProfileConfig",
           "ProfileLevels", "ProfileSeries", "candles", "trades", "profile_series", "naked_pocs", "trading_bias",
           "market_profile", "spread_items", "levels", "profile_series_nb", "session_ids", "extrema", "smooth"]

NS_HOUR = 3_600_000_000_000
NS_DAY = 24 * NS_HOUR
NO_ROW = -(2**62)  # "no row": empty profile


# ---- kernels ----------------------------------------------------------------------------------
@njit(cache=True)
def _spread_one(vol, lo_bin, k, low, high, v, sign):
    """Add ``sign`` × (``v`` lots spread over ticks low..high) to ``vol`` (row ``b`` at ``b - lo_bin``)."""
    b0 = low // k
    b1 = high // k
    if b0 == b1:
        vol[b0 - lo_bin] += sign * v
        return
    n = high - low + 1
    q = v // n
    r = v % n
    for b in range(b0, b1 + 1):
        a = max(low, b * k) - low  # tick offsets [a, e) of the candle inside row b
        e = min(high, b * k + k - 1) - low + 1
        vol[b - lo_bin] += sign * (q * (e - a) + (e * r) // n - (a * r) // n)


@njit(cache=True)
def spread_items(low, high, vol, k, lo_bin, out):
    """Add every item's lots to ``out`` (rows from ``lo_bin``).  Twin: ``ref_profile``."""
    for i in range(low.shape[0]):
        _spread_one(out, lo_bin, k, low[i], high[i], vol[i], 1)


@njit(cache=True)
def levels(vol, lo, hi, num, den, rows, tie_upper):
    """POC and value area of ``vol[lo..hi]``: ``(poc, val, vah, va_lots, total)`` as indices into ``vol``.

    POC: the largest row; ties go to the row nearest the middle of the traded range, then to the
    lower row.  Value area: start at the POC and add the larger of the next ``rows`` rows above or
    below (``tie_upper``: ties go up) until ``va_lots·den ≥ num·total``.  Empty: ``NO_ROW``s and 0.
    Twin: ``ref_levels``.
    """
    first = lo
    while first <= hi and vol[first] == 0:
        first += 1
    last = hi
    while last >= first and vol[last] == 0:
        last -= 1
    if first > last:
        return NO_ROW, NO_ROW, NO_ROW, 0, 0
    total = 0
    poc = first
    for i in range(first, last + 1):
        total += vol[i]
        if vol[i] > vol[poc] or (vol[i] == vol[poc] and abs(2 * i - first - last) < abs(2 * poc - first - last)):
            poc = i
    a = poc
    b = poc
    acc = vol[poc]
    while acc * den < num * total:
        n_up = min(rows, last - b)
        n_dn = min(rows, a - first)
        if n_up == 0 and n_dn == 0:
            break
        up = vol[b + 1: b + 1 + n_up].sum()
        dn = vol[a - n_dn: a].sum()
        if n_dn == 0 or (n_up > 0 and (up > dn or (up == dn and tie_upper))):
            b += n_up
            acc += up
        else:
            a -= n_dn
            acc += dn
    return poc, a, b, acc, total


@njit(cache=True)
def session_ids(ts, open_, close, day_off, gap, out):
    """Session number of each item: a new session when the UTC day (shifted by ``day_off`` ns)
    changes or when ``|open_i − close_{i−1}| > gap`` (``gap > 0``).  Twin: ``ref_session_ids``."""
    s = -1
    day = NO_ROW
    for i in range(ts.shape[0]):
        d = (ts[i] - day_off) // NS_DAY
        if i == 0 or d != day or (gap > 0 and abs(open_[i] - close[i - 1]) > gap):
            s += 1
            day = d
        out[i] = s


@njit(cache=True)
def profile_series_nb(ts, low, high, vol, sess, sample_ts, lo_bin, nbins, k, ref2, window, day_off,
                      num, den, rows, tie_upper, out_i, out_f):
    """Session (``window == 0``, sessions from ``sess``) or rolling (last ``window`` ns) profile at
    each sample time ``T``: the items with ``ts ≤ T`` of the current session, or with
    ``T − window < ts ≤ T``.  A session also ends when the sample's UTC day moves past it.
    ``out_i[s]`` = POC, VAL, VAH rows (absolute), VA lots, total lots; ``out_f[s]`` = VWAP in ticks
    (typical price ``(low + high)/2`` for a candle).  Twin: ``ref_profile_series``."""
    prof = np.zeros(nbins, np.int64)
    n = ts.shape[0]
    i = 0
    j = 0
    tlo = nbins
    thi = -1
    cur = -1
    cur_day = NO_ROW
    dev = 0  # Σ (low + high − ref2)·lots: exact VWAP numerator around a reference price
    tot = 0
    for s in range(sample_ts.shape[0]):
        t = sample_ts[s]
        while i < n and ts[i] <= t:
            if window == 0 and sess[i] != cur:
                prof[max(tlo, 0):thi + 1] = 0
                tlo, thi, dev, tot = nbins, -1, 0, 0
                cur = sess[i]
                cur_day = (ts[i] - day_off) // NS_DAY
            _spread_one(prof, lo_bin, k, low[i], high[i], vol[i], 1)
            tlo = min(tlo, low[i] // k - lo_bin)
            thi = max(thi, high[i] // k - lo_bin)
            dev += (low[i] + high[i] - ref2) * vol[i]
            tot += vol[i]
            i += 1
        if window > 0:
            while j < i and ts[j] <= t - window:
                _spread_one(prof, lo_bin, k, low[j], high[j], vol[j], -1)
                dev -= (low[j] + high[j] - ref2) * vol[j]
                tot -= vol[j]
                j += 1
        elif cur_day != NO_ROW and (t - day_off) // NS_DAY != cur_day:
            prof[max(tlo, 0):thi + 1] = 0
            tlo, thi, dev, tot = nbins, -1, 0, 0
            cur_day = NO_ROW
        poc, a, b, acc, total = levels(prof, max(tlo, 0), thi, num, den, rows, tie_upper)
        off = 0 if poc == NO_ROW else lo_bin  # NO_ROW stays NO_ROW
        out_i[s, 0], out_i[s, 1], out_i[s, 2] = poc + off, a + off, b + off
        out_i[s, 3], out_i[s, 4] = acc, total
        out_f[s] = (ref2 + dev / tot) / 2.0 if tot > 0 else np.nan


@njit(cache=True)
def smooth(vol, h, out):
    """``out[i] = Σ vol[j]`` for ``|j − i| ≤ h`` (rows outside the profile count as 0)."""
    n = vol.shape[0]
    for i in range(n):
        out[i] = vol[max(0, i - h): min(n, i + h + 1)].sum()


@njit(cache=True)
def extrema(s, maxima, out):
    """Local maxima (or minima) of ``s``, plateaus included: a run of equal values whose neighbours
    are both lower (higher); outside the array counts as 0.  Writes the run's middle index
    (lower middle for an even run); returns the count.  Twin: ``ref_nodes``."""
    n = s.shape[0]
    m = 0
    i = 0
    while i < n:
        e = i
        while e + 1 < n and s[e + 1] == s[i]:
            e += 1
        left = s[i - 1] if i > 0 else 0
        right = s[e + 1] if e + 1 < n else 0
        if (maxima and left < s[i] and right < s[i]) or (not maxima and left > s[i] and right > s[i]):
            out[m] = (i + e) // 2
            m += 1
        i = e + 1
    return m


# ---- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Items:
    """Trades or candles as int64 arrays: time (ns), open/high/low/close ticks, volume lots."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    vol: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def part(self, a: int, b: int) -> Items:
        """Items ``a`` to ``b − 1``."""
        return Items(self.ts[a:b], self.open[a:b], self.high[a:b], self.low[a:b], self.close[a:b], self.vol[a:b])


def trades(ts: np.ndarray, price: np.ndarray, qty: np.ndarray) -> Items:
    """Trades (time order) as items: every price field is the trade price."""
    p = np.asarray(price, np.int64)
    return Items(np.asarray(ts, np.int64), p, p, p, p, np.asarray(qty, np.int64))


def candles(ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
            vol: np.ndarray) -> Items:
    """OHLCV candles (``ts`` = close time, when the candle is known); raises on ``low > high``."""
    it = Items(*(np.asarray(a, np.int64) for a in (ts, open_, high, low, close, vol)))
    if np.any(it.low > it.high) or np.any(it.vol < 0):
        raise ValueError("candles need low <= high and volume >= 0")
    return it


# ---- results -------------------------------------------------------------------------------------
class Bias(IntEnum):
    BEARISH = -1
    NEUTRAL = 0
    BULLISH = 1


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """Profile parameters (``docs/analytics.md``).  ``window_ns`` 0: session profile; > 0: rolling."""

    bin_ticks: int = 1
    value_area_pct: float = 0.70
    va_rows: int = 2  # rows compared per step: 2 dual-row (CBOT), 1 single-row
    va_tie: str = "upper"  # which side wins equal sums: "upper" or "lower"
    session_hour_utc: float = 0.0  # daily reset time
    gap_ticks: int = 0  # new session when |open − previous close| > gap_ticks; 0 = off
    window_ns: int = 0
    smooth_rows: int = 3  # odd width of the node smoothing window
    hvn_pct: float = 0.80
    lvn_pct: float = 0.20
    bias_band: float = 0.25  # neutral band around the POC, as a fraction of the value-area width

    def __post_init__(self) -> None:
        if self.bin_ticks < 1 or self.va_rows < 1 or self.smooth_rows < 1 or self.smooth_rows % 2 == 0:
            raise ValueError("bin_ticks and va_rows must be >= 1; smooth_rows odd and >= 1")
        if not 0 < self.value_area_pct <= 1 or self.va_tie not in ("upper", "lower"):
            raise ValueError("value_area_pct must be in (0, 1]; va_tie 'upper' or 'lower'")
        if self.window_ns < 0 or self.gap_ticks < 0 or not 0 <= self.session_hour_utc < 24:
            raise ValueError("window_ns, gap_ticks >= 0; session_hour_utc in [0, 24)")

    @property
    def va_fraction(self) -> tuple[int, int]:
        return round(self.value_area_pct * 10_000), 10_000

    @property
    def day_offset_ns(self) -> int:
        return round(self.session_hour_utc * NS_HOUR)


@dataclass(frozen=True, slots=True)
class ProfileLevels:
    """POC and value-area rows (``NO_ROW`` when empty), value-area and total lots."""

    poc: int
    val: int
    vah: int
    va_lots: int
    total: int


@dataclass(frozen=True, slots=True)
class Nodes:
    """Rows of high- and low-volume nodes (ascending) and the thresholds used (smoothed lots)."""

    hvn: tuple[int, ...]
    lvn: tuple[int, ...]
    hvn_threshold: int
    lvn_threshold: int


@dataclass(frozen=True, slots=True)
class Profile:
    """A volume profile: ``vol[i]`` lots in row ``first_row + i``, trimmed to the traded range."""

    bin_ticks: int
    first_row: int
    vol: np.ndarray
    vwap_ticks: float

    @classmethod
    def build(cls, items: Items, bin_ticks: int) -> Profile:
        k = int(bin_ticks)
        if len(items) == 0 or not items.vol.any():
            return cls(k, 0, np.zeros(0, np.int64), math.nan)
        lo, hi = int(items.low.min()) // k, int(items.high.max()) // k
        vol = np.zeros(hi - lo + 1, np.int64)
        spread_items(items.low, items.high, items.vol, k, lo, vol)
        nz = np.flatnonzero(vol)
        tot = int(items.vol.sum())
        ref2 = int(items.low[0] + items.high[0])
        dev = int(((items.low + items.high - ref2) * items.vol).sum())
        return cls(k, lo + int(nz[0]), vol[nz[0]: nz[-1] + 1].copy(), (ref2 + dev / tot) / 2.0)

    def row_low(self, row: int) -> int:
        """Lowest tick of ``row``."""
        return row * self.bin_ticks

    def row_high(self, row: int) -> int:
        """Highest tick of ``row``."""
        return row * self.bin_ticks + self.bin_ticks - 1

    def levels(self, cfg: ProfileConfig) -> ProfileLevels:
        num, den = cfg.va_fraction
        poc, a, b, acc, tot = levels(self.vol, 0, len(self.vol) - 1, num, den, cfg.va_rows, cfg.va_tie == "upper")
        if poc == NO_ROW:
            return ProfileLevels(NO_ROW, NO_ROW, NO_ROW, 0, 0)
        r0 = self.first_row
        return ProfileLevels(poc + r0, a + r0, b + r0, int(acc), int(tot))

    def nodes(self, cfg: ProfileConfig) -> Nodes:
        """HVN: local maxima of the smoothed profile at or above its ``hvn_pct`` nearest-rank
        percentile; LVN: local minima at or below the ``lvn_pct`` percentile (rows, ascending)."""
        n = len(self.vol)
        if n == 0:
            return Nodes((), (), 0, 0)
        s = np.zeros(n, np.int64)
        smooth(self.vol, cfg.smooth_rows // 2, s)
        srt = np.sort(s)
        hi_t = int(srt[max(1, -(-round(cfg.hvn_pct * 10_000) * n // 10_000)) - 1])
        lo_t = int(srt[max(1, -(-round(cfg.lvn_pct * 10_000) * n // 10_000)) - 1])
        idx = np.zeros(n, np.int64)
        m = extrema(s, True, idx)
        hvn = tuple(int(i) + self.first_row for i in idx[:m] if s[i] >= hi_t)
        m = extrema(s, False, idx)
        lvn = tuple(int(i) + self.first_row for i in idx[:m] if s[i] <= lo_t)
        return Nodes(hvn, lvn, hi_t, lo_t)


@dataclass(frozen=True, slots=True)
class ProfileSeries:
    """:func:`profile_series` output, one entry per sample time; rows are ``NO_ROW`` when empty."""

    ts: np.ndarray
    poc: np.ndarray
    val: np.ndarray
    vah: np.ndarray
    va_lots: np.ndarray
    total: np.ndarray
    vwap_ticks: np.ndarray


def profile_series(items: Items, sample_ts: np.ndarray, cfg: ProfileConfig) -> ProfileSeries:
    """Session or rolling profile levels at each sample time (point-in-time: items with ts ≤ T)."""
    t = np.asarray(sample_ts, np.int64)
    n = len(t)
    out_i = np.zeros((n, 5), np.int64)
    out_f = np.full(n, np.nan)
    k = cfg.bin_ticks
    if len(items) and n:
        if np.any(np.diff(t) < 0) or np.any(np.diff(items.ts) < 0):
            raise ValueError("items and sample times must be in time order")
        lo, hi = int(items.low.min()) // k, int(items.high.max()) // k
        sess = np.zeros(len(items), np.int64)
        session_ids(items.ts, items.open, items.close, cfg.day_offset_ns, cfg.gap_ticks, sess)
        num, den = cfg.va_fraction
        profile_series_nb(items.ts, items.low, items.high, items.vol, sess, t, lo, hi - lo + 1, k,
                          int(items.low[0] + items.high[0]), cfg.window_ns, cfg.day_offset_ns, num, den,
                          cfg.va_rows, cfg.va_tie == "upper", out_i, out_f)
    else:
        out_i[:, :3] = NO_ROW
    return ProfileSeries(t, *(out_i[:, c].copy() for c in range(5)), out_f)


# ---- sessions, naked POCs, bias, summary ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NakedPoc:
    """An earlier session's POC row that no later item has traded in (up to the query time)."""

    session: int
    start_ts: int
    end_ts: int
    poc_row: int
    poc_lots: int


def naked_pocs(items: Items, cfg: ProfileConfig, until_ts: int | None = None) -> list[NakedPoc]:
    """Sessions' POCs not revisited by ``until_ts``: no later item with ``low ≤ row ≤ high`` (rows).

    Only sessions that ended before the last item at or before ``until_ts`` count; the current
    session's POC is never naked.
    """
    if until_ts is not None:
        items = items.part(0, int(np.searchsorted(items.ts, until_ts, side="right")))
    if len(items) == 0:
        return []
    sess = np.zeros(len(items), np.int64)
    session_ids(items.ts, items.open, items.close, cfg.day_offset_ns, cfg.gap_ticks, sess)
    k = cfg.bin_ticks
    lo_rows, hi_rows = items.low // k, items.high // k
    starts = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]])
    ends = np.r_[starts[1:], len(items)]
    out: list[NakedPoc] = []
    for s, (a, b) in enumerate(zip(starts[:-1], ends[:-1], strict=True)):
        prof = Profile.build(items.part(a, b), k)
        lv = prof.levels(cfg)
        if lv.poc == NO_ROW:
            continue
        if not ((lo_rows[b:] <= lv.poc) & (hi_rows[b:] >= lv.poc)).any():
            out.append(NakedPoc(s, int(items.ts[a]), int(items.ts[b - 1]), lv.poc,
                                int(prof.vol[lv.poc - prof.first_row])))
    return out


def trading_bias(price_ticks: int, prof: Profile, lv: ProfileLevels, cfg: ProfileConfig) -> Bias:
    """Bullish above the value area, bearish below; inside it, bullish/bearish when the price is
    more than ``bias_band`` × (VA width) above/below the POC row's middle, else neutral."""
    if lv.poc == NO_ROW:
        return Bias.NEUTRAL
    lo, hi = prof.row_low(lv.val), prof.row_high(lv.vah)
    if price_ticks > hi:
        return Bias.BULLISH
    if price_ticks < lo:
        return Bias.BEARISH
    mid2 = prof.row_low(lv.poc) + prof.row_high(lv.poc)  # twice the POC row's middle tick
    band2 = cfg.bias_band * 2 * (hi - lo + 1)
    d2 = 2 * price_ticks - mid2
    return Bias.BULLISH if d2 > band2 else Bias.BEARISH if d2 < -band2 else Bias.NEUTRAL


@dataclass(frozen=True, slots=True)
class MarketProfile:
    """Price against the profile (ticks; distances in bps of the price). ``None``/NaN when undefined."""

    price: int
    vwap: float
    poc_mid: float
    val: int | None
    vah: int | None
    vs_vwap_bps: float
    vs_poc_bps: float
    inside_value_area: bool
    bias: Bias
    support: float | None  # middle tick of the nearest HVN row whose middle is at or below the price
    resistance: float | None  # middle tick of the nearest HVN row whose middle is above the price


def market_profile(price_ticks: int, prof: Profile, cfg: ProfileConfig) -> MarketProfile:
    """Market-profile summary of ``price_ticks`` against ``prof`` (see docs/analytics.md)."""
    lv = prof.levels(cfg)
    nodes = prof.nodes(cfg)
    p = int(price_ticks)
    if lv.poc == NO_ROW:
        return MarketProfile(p, math.nan, math.nan, None, None, math.nan, math.nan, False, Bias.NEUTRAL,
                             None, None)
    poc_mid = (prof.row_low(lv.poc) + prof.row_high(lv.poc)) / 2
    val, vah = prof.row_low(lv.val), prof.row_high(lv.vah)
    mids = [(prof.row_low(r) + prof.row_high(r)) / 2 for r in nodes.hvn]
    sup = [m for m in mids if m <= p]
    res = [m for m in mids if m > p]
    return MarketProfile(p, prof.vwap_ticks, poc_mid, val, vah, (p / prof.vwap_ticks - 1) * 1e4,
                         (p / poc_mid - 1) * 1e4, val <= p <= vah, trading_bias(p, prof, lv, cfg),
                         max(sup) if sup else None, min(res) if res else None)
