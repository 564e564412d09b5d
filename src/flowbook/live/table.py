"""The terminal table of ``flowbook live`` / ``flowbook record`` (rich)."""

from __future__ import annotations

import math

from rich.table import Table

from .runner import LiveRunner
from .values import FeatureSnapshot

__all__ = ["OfiAccumulator", "live_table"]


class OfiAccumulator:
    """Sum of the per-message OFI of each symbol since the table was last drawn."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.shown: dict[str, float] = {}

    def __call__(self, snap: FeatureSnapshot) -> None:
        v = snap.values["ofi"]
        if not math.isnan(v):
            self.sums[snap.symbol] = self.sums.get(snap.symbol, 0.0) + v

    def roll(self) -> None:
        self.shown, self.sums = self.sums, {}


def _num(x: float | None, fmt: str = ",.2f") -> str:
    return "-" if x is None or math.isnan(x) else format(x, fmt)


def _lat(p50: float, p99: float) -> str:
    return "-" if math.isnan(p50) else f"{p50:.1f}/{p99:.1f}"


def live_table(runner: LiveRunner, ofi: OfiAccumulator | None = None, features: bool = True) -> Table:
    title = f"{runner.venue.name} live" + (f" (recording to {runner.recorder.root})" if runner.recorder else "")
    t = Table(title=title)
    cols = ["symbol", "sync"]
    if features:
        cols += ["mid", "spread bps", "imbalance", "OFI", "CVD", "bid/ask depth"]
    cols += ["ex→rx ms p50/p99", "rx→feat ms p50/p99" if features else "", "msgs", "gaps", "resyncs", "dropped"]
    for c in cols:
        if c:
            t.add_column(c, justify="left" if c in ("symbol", "sync") else "right")
    for sym, st in runner.status().items():
        # a book is kept across a reconnect; the first diff after it proves or breaks the chain
        sync = "[red]down[/]" if not st.connected else "[green]synced[/]" if st.synced else "[yellow]syncing[/]"
        row = [sym, sync]
        if features:
            snap = runner.latest(sym)
            v = snap.values if snap is not None else {}
            row += [_num(v.get("mid")), _num(v.get("spread_bps")), _num(v.get("imbalance_n"), "+.3f"),
                    _num(ofi.shown.get(sym) if ofi else None, "+,.3f"), _num(v.get("cvd"), "+,.3f"),
                    f"{_num(v.get('bid_depth_n'), ',.3f')} / {_num(v.get('ask_depth_n'), ',.3f')}"]
        row.append(_lat(st.exchange_to_receive_p50_ms, st.exchange_to_receive_p99_ms))
        if features:
            row.append(_lat(st.receive_to_features_p50_ms, st.receive_to_features_p99_ms))
        row += [f"{st.messages:,}", str(st.gaps), str(st.resyncs), f"{st.dropped:,}"]
        t.add_row(*row)
    return t
