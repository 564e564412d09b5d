"""Analytics on the real captures: the figures of docs/analytics.md and fast-path vs twin timings.

    python bench/bench_analytics.py [--data ../shared/data] [--quick]

For each capture (Binance USD-M and spot, BTC and ETH): volume profile (POC, value area, nodes,
naked POCs, market-profile summary; trades and 1-minute candles), VPIN in the three modes, the cost
of 1 BTC (10 ETH) and $1M on both sides at four times, Kyle's lambda, Amihud, effective and
realized spreads; then the time of each fast path and of its plain-Python twin.  Prints only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from flowbook.events import Kind
from flowbook.features import impact as im
from flowbook.features import profile as pf
from flowbook.features import reference_analytics as ra
from flowbook.features.vpin import VpinConfig, vpin
from flowbook.replay.sources import load

CAPTURES = {
    "usdm BTCUSDT": (["usdm/btcusdt_20240808.gz"], "1", 5.0),
    "usdm ETHUSDT": (["usdm/ethusdt_20240808.gz"], "10", 0.5),
    "spot BTCUSDT": (["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz"], "1", 5.0),
    "spot ETHUSDT": (["spot/ethusdt_20240808.gz", "spot/ethusdt_20240809.gz"], "10", 0.5),
}
SEC = 1_000_000_000


def timed(fn, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def minute_candles(it: pf.Items) -> pf.Items:
    b = it.ts // (60 * SEC)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    ends = np.r_[starts[1:], len(b)]
    hi = np.maximum.reduceat(it.high, starts)
    lo = np.minimum.reduceat(it.low, starts)
    return pf.candles((b[starts] + 1) * 60 * SEC, it.open[starts], hi, lo, it.close[ends - 1],
                      np.add.reduceat(it.vol, starts))


def report(name: str, paths: list[Path], size: str, row_usd: float, quick: bool) -> dict[str, float]:
    loaded = load(paths, None, False)
    ev, inst = loaded.events, loaded.instruments[0]
    tick, lot = float(inst.tick_size), float(inst.lot_size)
    tr = ev[ev["kind"] == Kind.TRADE]
    it = pf.trades(tr["ts_exchange"], tr["price"], tr["qty"])
    k = round(row_usd / tick)
    cfg = pf.ProfileConfig(bin_ticks=k)
    print(f"\n## {name}: {len(tr)} trades, {tr['qty'].sum() * lot:,.3f} base, "
          f"tick {inst.tick_size}, rows of {row_usd} ({k} ticks)")
    prof = pf.Profile.build(it, k)
    lv = prof.levels(cfg)
    nodes = prof.nodes(cfg)

    def px(t: float) -> str:
        return f"{t * tick:,.2f}"

    print(f"whole capture: POC {px(prof.row_low(lv.poc))}-{px(prof.row_high(lv.poc))}  VA "
          f"{px(prof.row_low(lv.val))}-{px(prof.row_high(lv.vah))} ({lv.va_lots / lv.total:.1%} of volume), "
          f"{len(prof.vol)} rows, HVN {[px(prof.row_low(r)) for r in nodes.hvn]}, "
          f"LVN {[px(prof.row_low(r)) for r in nodes.lvn]}")
    s = pf.profile_series(it, [int(it.ts[-1])], cfg)
    print(f"session at the end (00:00 UTC reset): POC {px(s.poc[0] * k)}, VA {px(s.val[0] * k)}-"
          f"{px(s.vah[0] * k + k - 1)}, {s.total[0] * lot:,.3f} base")
    roll = pf.profile_series(it, [int(it.ts[-1])], pf.ProfileConfig(bin_ticks=k, window_ns=60 * SEC))
    print(f"rolling 60 s at the end: POC {px(roll.poc[0] * k)}, VA {px(roll.val[0] * k)}-{px(roll.vah[0] * k + k - 1)}")
    nk = pf.naked_pocs(it, cfg)
    print(f"naked POCs: {[(n.session, px(n.poc_row * k)) for n in nk] or 'none'}")
    mp = pf.market_profile(int(it.close[-1]), prof, cfg)
    print(f"market profile at the last trade {px(mp.price)}: vs VWAP {mp.vs_vwap_bps:+.2f} bps, vs POC "
          f"{mp.vs_poc_bps:+.2f} bps, inside VA {mp.inside_value_area}, bias {mp.bias.name}, support "
          f"{px(mp.support) if mp.support is not None else None}, resistance "
          f"{px(mp.resistance) if mp.resistance is not None else None}")
    cp = pf.Profile.build(minute_candles(it), k)
    clv = cp.levels(cfg)
    print(f"1-minute candles: POC {px(cp.row_low(clv.poc))}, VA {px(cp.row_low(clv.val))}-{px(cp.row_high(clv.vah))}")

    total = int(tr["qty"].sum())
    for mode in ("bvc", "tick", "aggressor"):
        v = vpin(tr["ts_exchange"], tr["price"], tr["qty"], tr["side"],
                 VpinConfig(bucket_lots=total // 50, n_buckets=10, mode=mode, bar_ns=SEC, sigma_bars=60))
        print(f"VPIN {mode:9s} (V = 1/50 of the capture, n = 10, 1 s bars): "
              f"{np.nanmin(v.vpin):.3f} .. {np.nanmax(v.vpin):.3f}, median {np.nanmedian(v.vpin):.3f}")

    t = ev["ts_local"]
    samples = np.linspace(t[0], t[-1], 5).astype(np.int64)[1:]
    for sz, unit in ((size, "base"), ("1000000", "quote")):
        for c, ts in zip(im.cost_series(ev, inst, samples, sz, unit), samples, strict=True):
            assert c is not None
            when = time.strftime("%H:%M:%S", time.gmtime(int(ts) // SEC))
            print(f"cost {sz:>7s} {unit:5s} at {when} (mid {c.mid:,.2f}): buy {c.buy.slippage_mid_bps:6.2f} bps "
                  f"({c.buy.levels} lv, ${c.buy.cost_vs_mid:,.2f}, {c.buy.category}{', EXHAUSTED' if c.buy.exhausted else ''})"
                  f" | sell {c.sell.slippage_mid_bps:6.2f} bps ({c.sell.levels} lv, ${c.sell.cost_vs_mid:,.2f}, "
                  f"{c.sell.category}{', EXHAUSTED' if c.sell.exhausted else ''})")

    mts, mid = im.mid_series(ev, inst)
    grid = np.arange(mts[0], mts[-1], SEC)
    signed, _, notional = im.interval_flow(tr["ts_local"], tr["qty"], tr["side"], tr["price"], grid)
    m = im.mid_at(grid, mts, mid)
    kl = im.kyle_lambda(np.diff(m), signed * lot, 60, 5, price=m[1:])
    am = im.amihud(np.diff(np.log(m)), notional * tick * lot, 60)
    print(f"Kyle lambda (1 s, 60-interval windows): median {np.nanmedian(kl['bps_per_million']):.2f} bps per $1M, "
          f"median NW t {np.nanmedian(kl['t_nw']):.1f}, median R2 {np.nanmedian(kl['r2']):.2f}; "
          f"Amihud median {np.nanmedian(am):.3g} per $1M")
    for h in (1, 10, 60):
        sp = im.trade_spreads(tr["ts_local"], tr["price"] * tick, tr["qty"], tr["side"], mts, mid, h * SEC)
        print(f"spreads, horizon {h:2d} s: effective {sp.mean_es_bps:.3f} bps, realized {sp.mean_rs_bps:+.3f} bps, "
              f"impact {sp.mean_pi_bps:+.3f} bps (quantity-weighted)")

    # ---- timings: fast path vs twin
    out: dict[str, float] = {}
    samp = np.linspace(it.ts[0], it.ts[-1], 20).astype(np.int64)
    _, out["profile_series 20 samples"] = timed(pf.profile_series, it, samp, cfg)
    tuples = list(zip(*(a.tolist() for a in (it.ts, it.open, it.high, it.low, it.close, it.vol)), strict=True))
    if not quick:
        _, out["twin"] = timed(ra.ref_profile_series, tuples, samp.tolist(), k)
    trl = list(zip(*(tr[c].tolist() for c in ("ts_exchange", "price", "qty", "side")), strict=True))
    vc = VpinConfig(bucket_lots=total // 50, n_buckets=10, bar_ns=SEC, sigma_bars=60)
    _, out["vpin bvc"] = timed(vpin, tr["ts_exchange"], tr["price"], tr["qty"], tr["side"], vc)
    _, out["vpin twin"] = timed(ra.ref_vpin, trl, vc.bucket_lots, 10, "bvc", SEC, 60)
    _, out["cost_series 4 samples x 2 sides"] = timed(im.cost_series, ev, inst, samples, "1000000", "quote")
    if not quick:
        _, out["cost twin"] = timed(ra.ref_cost_series, ev, inst, samples.tolist(), "1000000", "quote")
    print("timings (s): " + ", ".join(f"{a} {b:.3f}" for a, b in out.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--quick", action="store_true", help="skip the slowest twins")
    a = ap.parse_args()
    for name, (files, size, row) in CAPTURES.items():
        report(name, [a.data / "hftbacktest" / f for f in files], size, row, a.quick)


if __name__ == "__main__":
    main()
