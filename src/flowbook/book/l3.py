"""An order-level (L3) book in plain Python.

The book keeps every individually known order (``order_id -> (side, price, qty)``) and, per side,
the aggregated quantity per price.  It may be *seeded* with aggregated levels whose individual
orders are unknown (a LOBSTER sample starts with a book already resting): that quantity is held as
*anonymous* quantity per level, and reductions of unknown order ids consume it at the event's price.

Known range
-----------
Per side the book tracks a *known limit* (:meth:`L3Book.known_limit`): every level at or better
than it is complete; ``None`` means the whole side is known (a fresh book built from adds only).
Seeding the top ``N`` levels of a snapshot sets the limit to the worst seeded price.  A reduction of
an unknown order beyond the limit concerns a level the book never knew: it is ignored and counted in
:attr:`L3Book.n_ignored`.  Anywhere else an inconsistency raises :class:`L3BookError`.

Depth-limited sources (``window``)
----------------------------------
LOBSTER's message file only carries events "in the requested price range" (its top ``N`` levels).
With ``L3Book(window=N)`` the book models that: when more than ``N`` levels lie at or better than
the limit, the limit tightens to the ``N``-th level and everything beyond it (levels and orders) is
dropped, because later changes there are not reported; orders added beyond the limit are ignored.
Levels learned later from the source's snapshots can be added back with :meth:`L3Book.seed_levels`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from flowbook.events.dtype import Kind, Side

__all__ = ["L3Book", "L3BookError"]

_BID = int(Side.BID)
_ASK = int(Side.ASK)
_ADD = int(Kind.ORDER_ADD)
_REDUCE = int(Kind.ORDER_REDUCE)
_DELETE = int(Kind.ORDER_DELETE)
_EXEC = int(Kind.ORDER_EXEC)


class L3BookError(ValueError):
    """An event is inconsistent with the book (negative quantity, unknown order, duplicate id)."""


class L3Book:
    """Order-level book: known orders plus per-side aggregated levels.

    Parameters
    ----------
    window:
        number of levels per side the event source reports (LOBSTER: its file depth), or ``None``
        for a full-depth source.

    Examples
    --------
    >>> book = L3Book()
    >>> book.add(1, Side.BID, 100, 5)
    >>> book.reduce(1, 2)
    >>> book.levels(Side.BID, 1)
    [(100, 3)]
    """

    __slots__ = ("orders", "window", "n_ignored", "_levels", "_anon", "_limit")

    def __init__(self, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.window = window
        self.n_ignored = 0
        self.orders: dict[int, tuple[int, int, int]] = {}  # id -> (side, price, qty)
        self._levels: dict[int, dict[int, int]] = {_BID: {}, _ASK: {}}  # side -> price -> qty
        self._anon: dict[int, dict[int, int]] = {_BID: {}, _ASK: {}}  # seeded qty of unknown orders
        self._limit: dict[int, int | None] = {_BID: None, _ASK: None}

    # ------------------------------------------------------------------ loading
    def seed_levels(
        self, side: int, prices: Iterable[int], qtys: Iterable[int], complete: bool = False
    ) -> None:
        """Add aggregated levels whose individual orders are unknown.

        Parameters
        ----------
        side:
            ``Side.BID`` (1) or ``Side.ASK`` (-1).
        prices, qtys:
            level prices (ticks) and quantities (lots); zero quantities are skipped.  If the side
            already has a known limit, every price must lie beyond it (the seed extends the known
            range; it must hold *every* level between the old limit and its worst price).
        complete:
            ``True`` if the seed is the whole side (no unknown depth beyond it).
        """
        s = _check_side(side)
        pairs = list(zip(np.asarray(prices).tolist(), np.asarray(qtys).tolist(), strict=True))
        old = self._limit[s]
        levels, anon = self._levels[s], self._anon[s]
        for p, q in pairs:
            if q < 0:
                raise L3BookError(f"seed quantity {q} at price {p} is negative")
            if old is not None and not _beyond(s, p, old):
                raise L3BookError(f"seed level {p} lies inside the known range (limit {old}) of side {s}")
        worst = old
        for p, q in pairs:
            if q == 0:
                continue
            levels[p] = levels.get(p, 0) + q
            anon[p] = anon.get(p, 0) + q
            if worst is None or _beyond(s, p, worst):
                worst = p
        self._limit[s] = None if complete else worst
        self._enforce_window(s)

    def known_limit(self, side: int) -> int | None:
        """Worst price of the completely known range of a side (``None``: the whole side is known)."""
        return self._limit[_check_side(side)]

    def is_known(self, side: int, price: int) -> bool:
        """Whether the book knows the complete level at ``price`` (inside the known range)."""
        lim = self._limit[_check_side(side)]
        return lim is None or not _beyond(int(side), price, lim)

    # ------------------------------------------------------------------ events
    def add(self, order_id: int, side: int, price: int, qty: int) -> None:
        """A new resting order (ignored beyond the known limit of a ``window`` book)."""
        s = _check_side(side)
        if order_id in self.orders:
            raise L3BookError(f"order {order_id} added twice")
        if qty <= 0:
            raise L3BookError(f"order {order_id} added with non-positive quantity {qty}")
        if self.window is not None and not self.is_known(s, price):
            self.n_ignored += 1
            return
        self.orders[order_id] = (s, price, qty)
        lv = self._levels[s]
        new_level = price not in lv
        lv[price] = lv.get(price, 0) + qty
        if new_level:
            self._enforce_window(s)

    def reduce(self, order_id: int, qty: int, side: int = 0, price: int = 0) -> None:
        """Remove ``qty`` from an order (partial cancel or execution); a fully reduced order leaves.

        ``side`` and ``price`` are used only when the order is not known individually: the quantity
        then comes off the seeded (anonymous) quantity of that level.
        """
        if qty < 0:
            raise L3BookError(f"order {order_id}: negative reduction {qty}")
        known = self.orders.get(order_id)
        if known is None:
            self._reduce_anonymous(order_id, side, price, qty)
            return
        s, p, left = known
        if qty > left:
            raise L3BookError(f"order {order_id}: reduction {qty} exceeds its remaining quantity {left}")
        left -= qty
        if left:
            self.orders[order_id] = (s, p, left)
        else:
            del self.orders[order_id]
        self._take(s, p, qty, order_id)

    def delete(self, order_id: int, qty: int = 0, side: int = 0, price: int = 0) -> None:
        """Remove a whole order.

        For a known order ``qty`` is ignored (its remaining quantity leaves); for an unknown order
        ``qty`` (> 0), ``side`` and ``price`` say what comes off the seeded level.
        """
        known = self.orders.pop(order_id, None)
        if known is None:
            if qty <= 0:
                raise L3BookError(f"order {order_id} is unknown and its delete carries no quantity")
            self._reduce_anonymous(order_id, side, price, qty)
            return
        s, p, left = known
        self._take(s, p, left, order_id)

    def apply(self, events: np.ndarray) -> None:
        """Apply an EVENT_DTYPE array; only ORDER_ADD / REDUCE / DELETE / EXEC change the book.

        Raises
        ------
        L3BookError
            on a quantity that would go negative, a duplicate add, or an unknown order inside the
            known range.
        """
        cols = (events[f].tolist() for f in ("kind", "side", "price", "qty", "id"))
        for k, s, p, q, oid in zip(*cols, strict=True):
            if k == _ADD:
                self.add(oid, s, p, q)
            elif k in (_REDUCE, _EXEC):
                self.reduce(oid, q, s, p)
            elif k == _DELETE:
                self.delete(oid, q, s, p)

    # ------------------------------------------------------------------ queries
    def levels(self, side: int, n: int | None = None) -> list[tuple[int, int]]:
        """``(price, qty)`` of a side, best first (at most ``n`` levels if given)."""
        s = _check_side(side)
        lv = self._levels[s]
        prices = sorted(lv, reverse=(s == _BID))
        if n is not None:
            prices = prices[:n]
        return [(p, lv[p]) for p in prices]

    def level_qty(self, side: int, price: int) -> int:
        """Aggregated quantity at a price (0 if no level)."""
        return self._levels[_check_side(side)].get(price, 0)

    def best_bid(self) -> tuple[int, int] | None:
        """``(price, qty)`` of the best bid, or ``None``."""
        lv = self._levels[_BID]
        if not lv:
            return None
        p = max(lv)
        return p, lv[p]

    def best_ask(self) -> tuple[int, int] | None:
        """``(price, qty)`` of the best ask, or ``None``."""
        lv = self._levels[_ASK]
        if not lv:
            return None
        p = min(lv)
        return p, lv[p]

    def __len__(self) -> int:
        """Number of individually known orders."""
        return len(self.orders)

    # ------------------------------------------------------------------ internals
    def _take(self, s: int, p: int, qty: int, order_id: int) -> None:
        lv = self._levels[s]
        left = lv.get(p, 0) - qty
        if left < 0:
            raise L3BookError(f"order {order_id}: level {p} on side {s} would go negative ({left})")
        if left:
            lv[p] = left
        else:
            lv.pop(p, None)

    def _reduce_anonymous(self, order_id: int, side: int, price: int, qty: int) -> None:
        s = _check_side(side)
        if not self.is_known(s, price):
            self.n_ignored += 1  # a level the book never knew
            return
        anon = self._anon[s]
        have = anon.get(price, 0)
        if qty > have:
            raise L3BookError(
                f"order {order_id} is unknown and level {price} on side {s} holds only {have} "
                f"of unknown orders (reduction {qty})"
            )
        if have - qty:
            anon[price] = have - qty
        else:
            del anon[price]
        self._take(s, price, qty, order_id)

    def _enforce_window(self, s: int) -> None:
        """Tighten the known limit to the ``window``-th level and drop what lies beyond it."""
        lv = self._levels[s]
        if self.window is None or len(lv) <= self.window:
            return
        prices = sorted(lv, reverse=(s == _BID))
        lim = prices[self.window - 1]
        self._limit[s] = lim
        anon = self._anon[s]
        for p in prices[self.window :]:
            del lv[p]
            anon.pop(p, None)
        gone = [oid for oid, (os_, op, _) in self.orders.items() if os_ == s and _beyond(s, op, lim)]
        for oid in gone:
            del self.orders[oid]


def _beyond(s: int, p: int, limit: int) -> bool:
    """Whether ``p`` is strictly worse than ``limit`` on side ``s``."""
    return p < limit if s == _BID else p > limit


def _check_side(side: int) -> int:
    s = int(side)
    if s != _BID and s != _ASK:
        raise L3BookError(f"side must be 1 (bid) or -1 (ask), got {side}")
    return s
