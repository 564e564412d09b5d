"""The venue side of :class:`~.push.PushSimulator`: how a push venue writes its messages.

A renderer parses client requests into :class:`Request` (``subscribe`` / ``unsubscribe`` / ``ping``, with
:class:`SimTopic` keys the server routes by) and writes answers, book snapshots and deltas, trades and
tickers from the decimal strings the server gives it.  The server never looks inside a rendered frame,
except to spoil it on a fault.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PushRenderer", "Request", "SimTopic", "TickerState"]


@dataclass(frozen=True, slots=True)
class SimTopic:
    """A subscription as the server keys it: ``channel`` is ``book``, ``trade``, ``ticker`` or ``other``."""

    symbol: str
    channel: str
    depth: int
    name: str


@dataclass(frozen=True, slots=True)
class Request:
    """A client request: ``op`` is ``subscribe``, ``unsubscribe``, ``ping`` or ``bad`` (unreadable)."""

    op: str
    req_id: str | None
    topics: tuple[SimTopic, ...] = ()


@dataclass(frozen=True, slots=True)
class TickerState:
    """What a ticker push can say: best bid/ask ``(price, size)`` texts and the last trade price."""

    bid: tuple[str, str] | None
    ask: tuple[str, str] | None
    last_price: str | None
    trades: int


class PushRenderer:
    """One venue's messages.  Prices and sizes arrive as the venue's decimal strings."""

    paths: tuple[str, ...] = ("/",)
    depths: tuple[int, ...] = ()

    def parse(self, text: str) -> Request:
        raise NotImplementedError

    def answer(self, req: Request, ok: bool, message: str = "") -> str:
        raise NotImplementedError

    def pong(self, req: Request) -> str:
        raise NotImplementedError

    def unknown(self, topic: SimTopic) -> str:
        """The refusal text for a topic of an unknown symbol or depth."""
        return f"unknown topic {topic.name}"

    def book(self, topic: SimTopic, snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
             u: int, seq: int, ts_ms: int) -> str:
        raise NotImplementedError

    def trade(self, topic: SimTopic, side: int, price: str, qty: str, trade_id: int, ts_ms: int) -> str:
        raise NotImplementedError

    def ticker(self, topic: SimTopic, state: TickerState, ts_ms: int) -> str | None:
        return None

    def bad_checksum(self, text: str) -> str | None:
        """The frame with a wrong checksum (``None``: the venue has no checksum)."""
        return None
