"""The plain-Python reference twin of the compiled L2 book (:mod:`flowbook.book.nb`).

Deliberately obvious: two dicts, sorting on every read.  The model-based tests drive it and
:class:`flowbook.book.L2Book` with the same operations and require identical answers.
"""

from __future__ import annotations

__all__ = ["ReferenceBook"]


class ReferenceBook:
    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set(self, side: int, tick: int, lots: int) -> None:
        book = self.bids if side > 0 else self.asks
        if lots == 0:
            book.pop(tick, None)
        else:
            book[tick] = lots

    def get(self, side: int, tick: int) -> int:
        return (self.bids if side > 0 else self.asks).get(tick, 0)

    @property
    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

    def levels(self, side: int, n: int) -> list[tuple[int, int]]:
        book = self.bids if side > 0 else self.asks
        keys = sorted(book, reverse=side > 0)[: max(n, 0)]
        return [(k, book[k]) for k in keys]

    def depth_to(self, side: int, limit_tick: int) -> tuple[int, float]:
        if side > 0:
            items = [(k, q) for k, q in self.bids.items() if k >= limit_tick]
        else:
            items = [(k, q) for k, q in self.asks.items() if k <= limit_tick]
        return sum(q for _, q in items), float(sum(q * k for k, q in items))
