"""`LiveRunner`: a venue's live adapter -> per-symbol feature engines -> bots, recorder and status.

The engines are the ones ``flowbook replay`` runs (:class:`~flowbook.features.FeatureEngine`), fed with
the events the adapter's feed produced, batch by batch; a feature row exists only while the book is
synced.  Latencies per symbol: exchange -> receive (``ts_local - ts_exchange`` of depth messages and
trades) and receive -> features (wall time when the row was computed minus its message's ``ts_local``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..events import DecimalGrid, Flag, Instrument, Kind, from_array
from ..events.model import Event
from ..features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine
from ..store.writer import WriterReport
from ..venues.registry import Venue, get, parse_target
from .recorder import Recorder
from .storesink import StoreSink
from .values import BookView, FeatureSnapshot, LatencyWindow, OpenInterestValue, SymbolStatus, Ticker24h

__all__ = ["LiveRunner", "DEFAULT_EVENT_KINDS"]

log = logging.getLogger("flowbook.live")
_EOM, _SNAP = int(Flag.END_OF_MESSAGE), int(Flag.SNAPSHOT)
DEFAULT_EVENT_KINDS = frozenset({Kind.TRADE, Kind.BBO, Kind.LIQUIDATION, Kind.MARK_PRICE, Kind.FUNDING_RATE,
                                 Kind.OPEN_INTEREST, Kind.BOOK_CLEAR})
_I_UPDATE = 2  # column of the update id in the engine's integer output


def _adapter_class(venue: Venue) -> type:
    assert venue.live is not None
    module, _, name = venue.live.partition(":")
    return getattr(importlib.import_module(module), name)


class LiveRunner:
    """Live books and features of one venue's symbols.

    Parameters
    ----------
    target:
        ``"binance-usdm:BTCUSDT,ETHUSDT"``; or give ``venue`` and ``symbols``.
    config:
        the adapter's options (e.g. :class:`flowbook.venues.binance.live.LiveConfig`).
    features:
        feature parameters; ``compute_features=False`` runs books-free (``flowbook record``).
    record:
        directory for a raw recording (see :mod:`flowbook.live.recorder`).
    store:
        a store URI (``parquet:DIR``, ``postgresql://…``) or a :class:`~flowbook.live.storesink.StoreSink`:
        events, and feature rows when computed, are written there (see :mod:`flowbook.live.storesink`);
        ``store_options`` go to the :class:`~flowbook.live.storesink.StoreSink` (e.g. ``spill_dir``).
    """

    def __init__(self, target: str | None = None, *, venue: str | Venue | None = None,
                 symbols: Iterable[str] | None = None, config: object | None = None,
                 features: FeatureConfig | None = None, compute_features: bool = True,
                 record: Path | str | None = None, recorder_options: dict | None = None,
                 store: str | Path | StoreSink | None = None, store_options: dict | None = None) -> None:
        if target is not None:
            v, syms = parse_target(target)
        else:
            if venue is None or symbols is None:
                raise ValueError("give a target 'VENUE:SYMBOLS' or venue= and symbols=")
            v = venue if isinstance(venue, Venue) else get(venue, live=True)
            syms = [s.upper() for s in symbols]
        self.venue = v
        self.symbols = syms
        self.feature_config = features or FeatureConfig()
        self.compute_features = compute_features
        self.recorder = (Recorder(record, v.name, on_new_file=self._on_new_file, **(recorder_options or {}))
                         if record is not None else None)
        self.adapter = _adapter_class(v)(v, syms, config, on_events=self._on_events,
                                         on_frame=self.recorder.write if self.recorder else None)
        self.store = (store if isinstance(store, StoreSink) or store is None else
                      StoreSink(store, v.name, features=self.feature_config if compute_features else None,
                                columns=FEATURE_COLUMNS if compute_features else (),
                                interval_ns=self.feature_config.interval_ns, **(store_options or {})))
        self._engines: dict[str, FeatureEngine] = {}
        self._insts: dict[int, Instrument] = {}
        self._grids: dict[str, tuple[DecimalGrid, DecimalGrid]] = {}
        self._lat_ex = {s: LatencyWindow() for s in syms}
        self._lat_feat = {s: LatencyWindow() for s in syms}
        self._rows = dict.fromkeys(syms, 0)
        self._latest: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._trusted: dict[str, tuple[int, int]] = {}
        self._feature_cbs: list[Callable[[FeatureSnapshot], None]] = []
        self._event_cbs: list[tuple[Callable[[str, Event], None], frozenset[int]]] = []
        self._wanted_kinds = np.zeros(0, np.uint8)
        self._stop = asyncio.Event()
        self._flusher: asyncio.Task | None = None
        self.callback_errors = 0
        self.store_report: WriterReport | None = None  # the store writer's closing report
        self.started = False

    # -- lifecycle
    async def start(self) -> None:
        await self.adapter.start()
        self.started = True
        if self.recorder is not None or self.store is not None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="recorder-flush")

    async def stop(self) -> None:
        self._stop.set()
        await self.adapter.stop()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self.recorder is not None:
            self.recorder.close()
        if self.store is not None:
            self.store_report = await asyncio.to_thread(self.store.close)

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (safe from signal handlers on the loop)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`request_stop`; True once it was requested."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout)
        return self._stop.is_set()

    async def run(self, duration: float | None = None) -> None:
        """Start, run until :meth:`request_stop` (or ``duration`` seconds), stop cleanly."""
        await self.start()
        try:
            await self.wait(duration)
        finally:
            await self.stop()

    async def _flush_loop(self) -> None:
        every = min(x.flush_interval for x in (self.recorder, self.store) if x is not None)
        while True:
            await asyncio.sleep(every)
            if self.recorder is not None:
                self.recorder.maybe_flush()
            if self.store is not None and self.store.due():
                self.store.flush()

    def _on_new_file(self, symbol: str, path: Path) -> None:
        log.info("event=rotate symbol=%s file=%s", symbol, path)
        self.adapter.request_snapshot(symbol)  # so that the new file replays on its own

    # -- subscriptions
    def on_features(self, callback: Callable[[FeatureSnapshot], None]) -> Callable[[], None]:
        """Call ``callback(snapshot)`` for every feature row; returns a function that unsubscribes."""
        self._feature_cbs.append(callback)
        return lambda: self._feature_cbs.remove(callback)

    def on_event(self, callback: Callable[[str, Event], None],
                 kinds: Iterable[Kind] = DEFAULT_EVENT_KINDS) -> Callable[[], None]:
        """Call ``callback(symbol, event)`` for every normalized event of ``kinds`` (frozen
        :class:`~flowbook.events.Event`; prices in ticks, sizes in lots).  Returns an unsubscriber."""
        item = (callback, frozenset(int(k) for k in kinds))
        self._event_cbs.append(item)
        self._kinds_changed()

        def unsubscribe() -> None:
            self._event_cbs.remove(item)
            self._kinds_changed()

        return unsubscribe

    def _kinds_changed(self) -> None:
        """The event kinds any callback wants (kept here, not rebuilt for every batch)."""
        self._wanted_kinds = np.array(sorted(frozenset().union(*(k for _, k in self._event_cbs))), np.uint8)

    # -- reads
    def latest(self, symbol: str) -> FeatureSnapshot | None:
        row = self._latest.get(symbol)
        return None if row is None else self._snapshot(symbol, row[0], row[1])

    def last_update_id(self, symbol: str) -> int | None:
        row = self._latest.get(symbol)
        return None if row is None else int(row[1][_I_UPDATE])

    def book(self, symbol: str, depth: int = 20) -> BookView:
        """The best ``depth`` levels a side (needs ``compute_features``)."""
        eng = self._engines.get(symbol)
        synced = self.adapter.synced(symbol)
        if eng is None or eng.book is None:
            return BookView(symbol, synced, -1, (), (), None, None)
        px, qty = self._grid(symbol)
        conv = lambda lv: tuple((px.to_decimal(t), qty.to_decimal(q)) for t, q in lv)  # noqa: E731
        tb, ta = self._trusted.get(symbol, (None, None))
        return BookView(symbol, synced, self.last_update_id(symbol) or -1, conv(eng.book.levels(1, depth)),
                        conv(eng.book.levels(-1, depth)), None if tb is None else px.to_decimal(tb),
                        None if ta is None else px.to_decimal(ta))

    def status(self) -> dict[str, SymbolStatus]:
        out = {}
        for s in self.symbols:
            st = self.adapter.stats[s]
            ex = self._lat_ex[s].percentiles_ms()
            ft = self._lat_feat[s].percentiles_ms()
            out[s] = SymbolStatus(self.venue.name, s, st.synced, st.connected, st.messages, st.depth, st.gaps,
                                  st.resyncs, st.forced_resyncs, st.snapshots, st.stale_snapshots, st.bad,
                                  st.dropped, st.dropped_depth, st.rest_errors, st.queued, self._rows[s],
                                  ex[0], ex[1], ft[0], ft[1], getattr(st, "duplicates", 0))
        return out

    def ticker(self, symbol: str) -> Ticker24h | None:
        """The symbol's latest 24 h ticker (``None`` before the first, or when the venue has none)."""
        got = self.adapter.ticker(symbol) if hasattr(self.adapter, "ticker") else None
        return None if got is None else Ticker24h.from_message(self.venue.name, *got)

    def open_interest(self, symbol: str) -> OpenInterestValue | None:
        """The symbol's latest polled open interest (futures; ``None`` before the first answer)."""
        got = self.adapter.open_interest(symbol) if hasattr(self.adapter, "open_interest") else None
        return None if got is None else OpenInterestValue.from_message(self.venue.name, *got)

    # -- the engine side
    def _grid(self, symbol: str) -> tuple[DecimalGrid, DecimalGrid]:
        g = self._grids.get(symbol)
        if g is None:
            inst = self._engines[symbol].instrument
            g = self._grids[symbol] = (inst.price_grid(), inst.qty_grid())
        return g

    def _snapshot(self, symbol: str, f: np.ndarray, ii: np.ndarray) -> FeatureSnapshot:
        return FeatureSnapshot(self.venue.name, symbol, int(ii[0]), int(ii[1]), int(ii[2]),
                               MappingProxyType(dict(zip(FEATURE_COLUMNS, f.tolist(), strict=True))))

    def _on_events(self, ev: np.ndarray) -> None:
        """One batch (all symbols): what is per row is computed once for the batch, then each symbol gets its
        contiguous run of rows (a stable sort by symbol keeps every symbol's rows in order)."""
        if not len(ev):
            return
        sids = ev["symbol"]
        if (sids[1:] < sids[:-1]).any():
            ev = ev[np.argsort(sids, kind="stable")]
            sids = ev["symbol"]
        cut = (np.flatnonzero(sids[1:] != sids[:-1]) + 1).tolist()
        starts, ends = [0, *cut], [*cut, len(ev)]
        kind, flags = ev["kind"], ev["flags"]
        timed = ((kind == 1) & ((flags & _EOM) != 0) & ((flags & _SNAP) == 0)) | (kind == 3)
        lat_ex = (ev["ts_local"] - ev["ts_exchange"])[timed]
        n_timed = np.concatenate(([0], np.cumsum(timed)))[ends].tolist()  # timed rows up to each run's end
        snap = (kind == 1) & ((flags & _SNAP) != 0)
        any_snap = bool(snap.any())
        t0 = 0
        for sid, a, b, t1 in zip(sids[starts].tolist(), starts, ends, n_timed, strict=True):
            sym = self.adapter.symbol_name(sid)
            if sym in self._rows:
                if t1 > t0:
                    self._lat_ex[sym].add(lat_ex[t0:t1])
                if any_snap and snap[a:b].any():
                    self._note_snapshot(sym, ev[a:b][snap[a:b]])
                self._symbol_events(sym, sid, ev[a:b])
            t0 = t1

    def _note_snapshot(self, sym: str, rows: np.ndarray) -> None:
        """The worst prices of a snapshot: the book is complete at and inside them."""
        side, price = rows["side"], rows["price"]
        bids, asks = price[side == 1], price[side == -1]
        self._trusted[sym] = (int(bids.min()) if len(bids) else None, int(asks.max()) if len(asks) else None)

    def _symbol_events(self, sym: str, sid: int, ev: np.ndarray) -> None:
        if self._event_cbs:
            self._dispatch_events(sym, ev)
        inst = self._insts.get(sid)
        if inst is None:  # the feed's list is rebuilt per call: look it up once per symbol
            inst = self.adapter.feed.instruments[sid]
            if inst is not None:
                self._insts[sid] = inst
        if self.store is not None:  # events before the instrument is known wait in the sink
            self.store.add_events(sym, inst, ev)
        if not self.compute_features:
            return
        eng = self._engines.get(sym)
        if eng is None:
            if inst is None:
                return
            eng = self._engines[sym] = FeatureEngine(inst, self.feature_config, out_rows=1024)
        eng.process(ev)
        f, ii = eng.take()
        if not len(f):
            return
        self._lat_feat[sym].add(time.time_ns() - ii[:, 0])
        if self.store is not None:
            self.store.add_features(sym, eng.instrument, f, ii)
        self._rows[sym] += len(f)
        self._latest[sym] = (f[-1], ii[-1])
        if self._feature_cbs:
            for j in range(len(f)):
                snap_v = self._snapshot(sym, f[j], ii[j])
                for cb in list(self._feature_cbs):
                    self._call(cb, snap_v)

    def _dispatch_events(self, sym: str, ev: np.ndarray) -> None:
        mask = np.isin(ev["kind"], self._wanted_kinds)
        if not mask.any():
            return
        for e in from_array(ev[mask]):
            for cb, kinds in list(self._event_cbs):
                if int(e.kind) in kinds:
                    self._call(cb, sym, e)

    def _call(self, cb: Callable, *args: object) -> None:
        try:
            cb(*args)
        except Exception:  # a bot's bug must not stop the feed
            self.callback_errors += 1
            log.exception("event=callback_error callback=%r", cb)

    def price(self, symbol: str, ticks: int) -> Decimal:
        """Ticks of ``symbol`` as an exact decimal price (for event callbacks)."""
        return self._grid(symbol)[0].to_decimal(ticks)
