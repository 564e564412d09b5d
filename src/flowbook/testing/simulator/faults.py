"""Scriptable faults for the exchange simulator.

Stream faults hit one broadcast frame (its index in :meth:`SimSource.broadcast`), for every client
subscribed to it: ``drop``, ``duplicate``, ``reorder`` (held back until after the next frame of the same
symbol and stream), ``corrupt`` (cut mid-JSON), ``disconnect`` (every socket closed after the frame;
connections are refused for ``downtime`` frames) and ``restart`` (listener and sockets down for
``downtime`` frames, then up again on the same port).  REST faults are consumed one per depth request:
an HTTP error, a 429 with ``Retry-After``, a delay, or a snapshot older than the stream (the oldest of
the last four books the simulator keeps every ``history_every`` diffs of the symbol).

Counting frames rather than seconds makes each fault land at the same stream position on every run.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["FRAME_FAULTS", "REST_FAULTS", "FaultPlan", "RestFault"]

FRAME_FAULTS = ("drop", "duplicate", "reorder", "corrupt", "disconnect", "restart")
REST_FAULTS = ("error", "rate_limit", "delay", "stale")


@dataclass(frozen=True, slots=True)
class RestFault:
    """One faulty answer to a depth request (``symbol`` None: whichever symbol asks next)."""

    kind: str
    status: int = 500
    retry_after: float = 0.2
    delay: float = 0.0
    symbol: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in REST_FAULTS:
            raise ValueError(f"unknown REST fault {self.kind!r}; known: {', '.join(REST_FAULTS)}")


class FaultPlan:
    """Faults to inject, by broadcast frame index (stream) or in request order (REST)."""

    def __init__(self, downtime: int = 40) -> None:
        self.downtime = downtime
        self.frames: dict[int, list[str]] = {}
        self.rest: deque[RestFault] = deque()
        self.applied: Counter[str] = Counter()

    def at(self, index: int, kind: str) -> FaultPlan:
        if kind not in FRAME_FAULTS:
            raise ValueError(f"unknown stream fault {kind!r}; known: {', '.join(FRAME_FAULTS)}")
        self.frames.setdefault(index, []).append(kind)
        return self

    def on_rest(self, fault: RestFault, times: int = 1) -> FaultPlan:
        self.rest.extend([fault] * times)
        return self

    def take(self, index: int) -> list[str]:
        got = self.frames.pop(index, [])
        for k in got:
            self.applied[k] += 1
        return got

    def next_rest(self, symbol: str) -> RestFault | None:
        for i, f in enumerate(self.rest):
            if f.symbol is None or f.symbol == symbol:
                del self.rest[i]
                self.applied["rest_" + f.kind] += 1
                return f
        return None

    @property
    def pending(self) -> int:
        return sum(len(v) for v in self.frames.values()) + len(self.rest)

    @classmethod
    def random(cls, targets: Sequence[int], n: int, seed: int,
               weights: dict[str, float] | None = None, rest: int = 0, downtime: int = 20,
               rest_kinds: Sequence[str] = ("error", "rate_limit", "stale", "delay")) -> FaultPlan:
        """``n`` stream faults on random frames among ``targets`` (kinds by ``weights``) plus ``rest``
        REST faults, reproducible from ``seed``."""
        w = weights or {"drop": 4, "duplicate": 2, "reorder": 2, "corrupt": 2, "disconnect": 0.1}
        rng = random.Random(seed)
        plan = cls(downtime)
        kinds, probs = list(w), list(w.values())
        for idx in rng.sample(list(targets), min(n, len(targets))):
            plan.at(idx, rng.choices(kinds, probs)[0])
        for _ in range(rest):
            k = rng.choice(list(rest_kinds))
            plan.on_rest(RestFault(k, status=rng.choice([500, 502, 503]), retry_after=0.05, delay=0.05))
        return plan
