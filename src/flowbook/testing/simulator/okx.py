"""`OkxRenderer`: OKX v5 public WebSocket messages for :class:`~.push.PushSimulator`.

Served on ``/ws/v5/public``.  Requests ``{"id":...,"op":"subscribe"|"unsubscribe","args":[{"channel":...,
"instId":...}, ...]}`` and the text ``ping`` (answered ``pong``).  Each argument of a request is answered
by its own event, ``{"id":...,"event":"subscribe","arg":{...},"connId":...}``, as OKX does; a refusal is
one ``{"id":...,"event":"error","code":"60018","msg":"Wrong URL or channel:books,instId:NOPE-USDT doesn't
exist. ..."}``.  Channels:

- ``books`` (depth 400): ``action`` ``snapshot`` (``prevSeqId`` -1) then ``update``; ``seqId`` is the
  topic's ``u``, ``prevSeqId`` the ``u`` before it (so the ``unchained`` fault breaks the chain), and
  ``checksum`` the signed CRC32 of the best 25 levels per side of the book the client holds after the
  message.  The renderer keeps that book per topic (symbol, depth) from the snapshots and deltas it
  writes; the ``checksum`` fault (:meth:`OkxRenderer.bad_checksum`) changes the value by one.
- ``books5`` (depth 5): the 5-level book on every change, ``seqId`` only, no checksum.
- ``trades`` (one push per step, ``count`` 1), ``tickers`` (last price and the touch).
- ``funding-rate``, ``open-interest``, ``mark-price``: accepted, nothing pushed.

Several answers to one request travel as one text joined by newlines; :class:`~.push.PushSimulator`
sends them as separate frames.  :func:`okx_market` renames a recording's symbols to OKX instruments.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from .pushrender import PushRenderer, Request, SimTopic, TickerState
from .pushtruth import PushMarket

__all__ = ["OkxRenderer", "okx_checksum", "okx_market"]

_CHANNELS = {"books": ("book", 400), "books5": ("book", 5), "trades": ("trade", 0), "tickers": ("ticker", 0),
             "funding-rate": ("other", 0), "open-interest": ("other", 0), "mark-price": ("other", 0)}
_CHECKSUM = re.compile(r'"checksum":(-?\d+)')
_UNKNOWN = ("Wrong URL or channel:{channel},instId:{inst} doesn't exist. Please use the correct URL, channel "
            "and parameters referring to API document.")


def okx_checksum(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> int:
    """Signed CRC32 of ``bidPx:bidSz:askPx:askSz:...`` over the best 25 levels (a shorter side's missing
    entries skipped), written here on its own so the simulator does not reuse the client's code."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    v = zlib.crc32(":".join(parts).encode())
    return v - (1 << 32) if v & (1 << 31) else v


class _View:
    """The book a client holds for one topic: price -> size strings per side, prices sorted."""

    __slots__ = ("levels", "keys")

    def __init__(self) -> None:
        self.levels: tuple[dict[Decimal, tuple[str, str]], dict[Decimal, tuple[str, str]]] = ({}, {})
        self.keys: tuple[list[Decimal], list[Decimal]] = ([], [])  # ascending

    def set(self, side: int, price: str, size: str) -> None:
        i = 0 if side > 0 else 1
        levels, keys, k = self.levels[i], self.keys[i], Decimal(price)
        if _zero(size):
            if levels.pop(k, None) is not None:
                del keys[bisect_left(keys, k)]
            return
        if k not in levels:
            insort(keys, k)
        levels[k] = (price, size)

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        (bl, al), (bk, ak) = self.levels, self.keys
        return [bl[k] for k in bk[:-n - 1:-1]], [al[k] for k in ak[:n]]


def _zero(size: str) -> bool:
    return not size.strip("0.")


def _levels(levels: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'["{p}","0","0","0"]' if _zero(q) else f'["{p}","{q}","0","1"]' for p, q in levels)


def _arg(channel: str, inst: str) -> str:
    return f'{{"channel":"{channel}","instId":"{inst}"}}'


class OkxRenderer(PushRenderer):
    """OKX v5 public channels (see the module text)."""

    paths = ("/ws/v5/public",)
    depths = (5, 400)

    def __init__(self) -> None:
        self.conn_id = uuid.uuid4().hex[:8]
        self.views: dict[tuple[str, int], _View] = {}  # (instId, depth) -> the client's book

    def parse(self, text: str) -> Request:
        if text.strip() == "ping":
            return Request("ping", None)
        try:
            d = json.loads(text)
            op, rid = str(d["op"]), d.get("id")
            args = [(str(a["channel"]), str(a.get("instId", ""))) for a in d.get("args") or []]
        except (ValueError, KeyError, TypeError):
            return Request("bad", None)
        topics = []
        for channel, inst in args:
            kind, depth = _CHANNELS.get(channel, ("unknown", 0))
            topics.append(SimTopic(inst if kind != "unknown" else "", kind, depth, channel))
        return Request(op if op in ("subscribe", "unsubscribe") else "bad", None if rid is None else str(rid),
                       tuple(topics))

    def _head(self, req: Request) -> str:
        return f'{{"id":"{req.req_id}",' if req.req_id is not None else "{"

    def answer(self, req: Request, ok: bool, message: str = "") -> str:
        if ok and req.op in ("subscribe", "unsubscribe"):
            return "\n".join(f'{self._head(req)}"event":"{req.op}","arg":{_arg(t.name, t.symbol)},'
                             f'"connId":"{self.conn_id}"}}' for t in req.topics)
        if req.op == "bad":
            code, message = "60012", "Invalid request"
        else:
            code = "60018" if message.startswith("Wrong URL or channel") else "60012"
        msg = json.dumps(message)
        return f'{self._head(req)}"event":"error","code":"{code}","msg":{msg},"connId":"{self.conn_id}"}}'

    def pong(self, req: Request) -> str:
        return "pong"

    def unknown(self, topic: SimTopic) -> str:
        return _UNKNOWN.format(channel=topic.name, inst=topic.symbol or "")

    def book(self, topic: SimTopic, snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
             u: int, seq: int, ts_ms: int) -> str:
        key = (topic.symbol, topic.depth)
        view = self.views.get(key)
        if snapshot or view is None:
            view = self.views[key] = _View()
        for side, levels in ((1, bids), (-1, asks)):
            for p, q in levels:
                view.set(side, p, q)
        arg = _arg(topic.name, topic.symbol)
        if topic.depth == 5:
            b, a = view.top(5)
            return (f'{{"arg":{arg},"data":[{{"asks":[{_levels(a)}],"bids":[{_levels(b)}],'
                    f'"instId":"{topic.symbol}","ts":"{ts_ms}","seqId":{u}}}]}}')
        top_b, top_a = view.top(25)
        action, prev = ("snapshot", -1) if snapshot else ("update", u - 1)
        return (f'{{"arg":{arg},"action":"{action}","data":[{{"asks":[{_levels(asks)}],"bids":[{_levels(bids)}],'
                f'"ts":"{ts_ms}","checksum":{okx_checksum(top_b, top_a)},"prevSeqId":{prev},"seqId":{u}}}]}}')

    def trade(self, topic: SimTopic, side: int, price: str, qty: str, trade_id: int, ts_ms: int) -> str:
        return (f'{{"arg":{_arg(topic.name, topic.symbol)},"data":[{{"instId":"{topic.symbol}",'
                f'"tradeId":"{trade_id}","px":"{price}","sz":"{qty}","side":"{"buy" if side > 0 else "sell"}",'
                f'"ts":"{ts_ms - 1}","count":"1"}}]}}')

    def ticker(self, topic: SimTopic, state: TickerState, ts_ms: int) -> str | None:
        if state.last_price is None:
            return None
        parts = topic.symbol.split("-")
        kind = "SPOT" if len(parts) == 2 else "SWAP" if parts[-1] == "SWAP" else "FUTURES"
        data = {"instType": kind, "instId": topic.symbol, "last": state.last_price, "lastSz": "0"}
        if state.bid is not None:
            data.update({"bidPx": state.bid[0], "bidSz": state.bid[1]})
        if state.ask is not None:
            data.update({"askPx": state.ask[0], "askSz": state.ask[1]})
        data["ts"] = str(ts_ms)
        return f'{{"arg":{_arg(topic.name, topic.symbol)},"data":[{json.dumps(data, separators=(",", ":"))}]}}'

    def bad_checksum(self, text: str) -> str | None:
        m = _CHECKSUM.search(text)
        if m is None:
            return None
        v = int(m.group(1))
        bad = v + 1 if v < (1 << 31) - 1 else v - 1
        if bad == 0:  # 0 means "not computed" and would not be checked
            bad = 2
        return f"{text[:m.start(1)]}{bad}{text[m.end(1):]}"


def okx_market(paths: Iterable[Path | str], names: dict[str, str], max_steps: int | None = None) -> PushMarket:
    """A real recording's books and trades with its symbols renamed (``{"BTCUSDT": "BTC-USDT"}``)."""
    from ...replay.sources import load

    got = load([Path(p) for p in paths], None, False)
    insts = [replace(i, symbol=names.get(i.symbol, i.symbol), venue="okx") for i in got.instruments]
    market = PushMarket(got.events, insts)
    if max_steps is not None:
        market.steps = market.steps[:max_steps]
    return market
