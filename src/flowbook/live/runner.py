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

from ..events import EVENT_DTYPE, DecimalGrid, Flag, Instrument, Kind, from_array
from ..events.model import Event
from ..features import FEATURE_COLUMNS, FeatureConfig, FeatureEngine
from ..features import nb as fk
from ..features.group import EngineGroup
from ..store.writer import WriterReport
from ..venues.registry import Venue, get, parse_target
from .batchnb import NEED_SYMBOLS, note_rows, split_batch
from .recorder import Recorder
from .storesink import StoreSink
from .values import BookView, FeatureSnapshot, LatencyBook, OpenInterestValue, SymbolStatus, Ticker24h

__all__ = ["LiveRunner", "DEFAULT_EVENT_KINDS"]

log = logging.getLogger("flowbook.live")
_SNAP = int(Flag.SNAPSHOT)
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
        self._group = EngineGroup(self.feature_config)
        self._index = {s: i for i, s in enumerate(syms)}  # the runner's symbol index
        self._sid_index = np.zeros(0, np.int64)  # adapter symbol id -> symbol index (-1: not ours, -2: not seen)
        self._engine_of = np.full(len(syms), -1, np.int64)  # symbol index -> engine in the group
        self._insts: dict[int, Instrument] = {}
        self._grids: dict[str, tuple[DecimalGrid, DecimalGrid]] = {}
        self._lat_ex = LatencyBook(len(syms))
        self._lat_feat = LatencyBook(len(syms))
        self._nrows = np.zeros(len(syms), np.int64)
        self._latest_f = np.full((len(syms), fk.NCOLS), np.nan)  # each symbol's last feature row
        self._latest_i = np.zeros((len(syms), fk.NICOLS), np.int64)
        self._trusted: dict[str, tuple[int, int]] = {}
        self._split: tuple[np.ndarray, ...] = (np.empty(0, EVENT_DTYPE),)  # split_batch's buffers
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
        i = self._index.get(symbol)
        if i is None or not self._nrows[i]:
            return None
        return self._snapshot(symbol, self._latest_f[i], self._latest_i[i])

    def last_update_id(self, symbol: str) -> int | None:
        i = self._index.get(symbol)
        return None if i is None or not self._nrows[i] else int(self._latest_i[i, _I_UPDATE])

    def book(self, symbol: str, depth: int = 20) -> BookView:
        """The best ``depth`` levels a side (needs ``compute_features``)."""
        eng = self._engine(symbol)
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
        for i, s in enumerate(self.symbols):
            st = self.adapter.stats[s]
            ex = self._lat_ex.percentiles_ms(i)
            ft = self._lat_feat.percentiles_ms(i)
            out[s] = SymbolStatus(self.venue.name, s, st.synced, st.connected, st.messages, st.depth, st.gaps,
                                  st.resyncs, st.forced_resyncs, st.snapshots, st.stale_snapshots, st.bad,
                                  st.dropped, st.dropped_depth, st.rest_errors, st.queued, int(self._nrows[i]),
                                  ex[0], ex[1], ft[0], ft[1], getattr(st, "duplicates", 0))
        return out

    def reset_latencies(self, size: int = 4096) -> None:
        """Start both latency records afresh, keeping the last ``size`` samples a symbol (e.g. to measure a
        window; :meth:`status` reports percentiles of what is kept)."""
        self._lat_ex = LatencyBook(len(self.symbols), size)
        self._lat_feat = LatencyBook(len(self.symbols), size)

    def latency_samples(self, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        """The kept latency samples of ``symbol`` in ns, oldest first: ``(exchange -> receive, receive ->
        features)``."""
        i = self._index[symbol]
        return self._lat_ex.samples(i), self._lat_feat.samples(i)

    def ticker(self, symbol: str) -> Ticker24h | None:
        """The symbol's latest 24 h ticker (``None`` before the first, or when the venue has none)."""
        got = self.adapter.ticker(symbol) if hasattr(self.adapter, "ticker") else None
        return None if got is None else Ticker24h.from_message(self.venue.name, *got)

    def open_interest(self, symbol: str) -> OpenInterestValue | None:
        """The symbol's latest polled open interest (futures; ``None`` before the first answer)."""
        got = self.adapter.open_interest(symbol) if hasattr(self.adapter, "open_interest") else None
        return None if got is None else OpenInterestValue.from_message(self.venue.name, *got)

    # -- the engine side
    def _engine(self, symbol: str) -> FeatureEngine | None:
        i = self._index.get(symbol)
        e = -1 if i is None else int(self._engine_of[i])
        return None if e < 0 else self._group.engines[e]

    def _grid(self, symbol: str) -> tuple[DecimalGrid, DecimalGrid]:
        g = self._grids.get(symbol)
        if g is None:
            eng = self._engine(symbol)
            if eng is None:
                raise KeyError(symbol)
            inst = eng.instrument
            g = self._grids[symbol] = (inst.price_grid(), inst.qty_grid())
        return g

    def _snapshot(self, symbol: str, f: np.ndarray, ii: np.ndarray) -> FeatureSnapshot:
        return FeatureSnapshot(self.venue.name, symbol, int(ii[0]), int(ii[1]), int(ii[2]),
                               MappingProxyType(dict(zip(FEATURE_COLUMNS, f.tolist(), strict=True))))

    def _on_events(self, ev: np.ndarray) -> None:
        """One batch (all symbols), in three compiled calls: split into per-symbol runs (each symbol's rows
        contiguous and in order) with the exchange -> receive latencies, the feature kernel over every run
        (:class:`~flowbook.features.group.EngineGroup`), and the rows filed per symbol.  A Python step per run
        only when something asks for it: event callbacks, a store, a snapshot, a symbol's first events."""
        n = len(ev)
        if not n:
            return
        if len(self._split[0]) < n:
            self._split = (np.empty(n, EVENT_DTYPE), *(np.empty(n, np.int64) for _ in range(4)))
        out, starts, ends, sidx, engine = self._split
        while True:
            runs, flags = split_batch(ev, out, self._sid_index, self._engine_of, self._lat_ex.buf,
                                      self._lat_ex.count, starts, ends, sidx, engine)
            if runs != NEED_SYMBOLS:
                break
            self._resolve_symbols(ev["symbol"])
        out, starts, ends, sidx, engine = out[:n], starts[:runs], ends[:runs], sidx[:runs], engine[:runs]
        if not self.compute_features:
            engine[:] = -1
        if self._event_cbs or self.store is not None or flags:
            for r, (si, a, b) in enumerate(zip(sidx.tolist(), starts.tolist(), ends.tolist(), strict=True)):
                if si >= 0:
                    engine[r] = self._run_step(si, int(out[a]["symbol"]), out[a:b], bool(flags & 1))
        if self.compute_features:
            go = engine >= 0
            if go.all():
                self._features(out, starts, ends, engine, sidx)
            elif go.any():
                self._features(out, starts[go], ends[go], engine[go], sidx[go])

    def _resolve_symbols(self, sids: np.ndarray) -> None:
        """Index the adapter's symbol ids of a batch (-1 for a symbol this runner does not run)."""
        top = int(sids.max())
        if top >= len(self._sid_index):
            self._sid_index = np.concatenate((self._sid_index, np.full(top + 1 - len(self._sid_index), -2, np.int64)))
        for sid in np.unique(sids).tolist():
            if self._sid_index[sid] == -2:
                self._sid_index[sid] = self._index.get(self.adapter.symbol_name(sid), -1)

    def _run_step(self, si: int, sid: int, ev: np.ndarray, any_snap: bool) -> int:
        """The per-run work of one symbol's events; returns its engine (-1: none yet)."""
        sym = self.symbols[si]
        if any_snap:
            snap = (ev["kind"] == Kind.BOOK_SET) & ((ev["flags"] & _SNAP) != 0)
            if snap.any():
                self._note_snapshot(sym, ev[snap])
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
            return -1
        e = int(self._engine_of[si])
        if e < 0 and inst is not None:
            e = self._engine_of[si] = self._group.add(inst, ev)
        return e

    def _note_snapshot(self, sym: str, rows: np.ndarray) -> None:
        """The worst prices of a snapshot: the book is complete at and inside them."""
        side, price = rows["side"], rows["price"]
        bids, asks = price[side == 1], price[side == -1]
        self._trusted[sym] = (int(bids.min()) if len(bids) else None, int(asks.max()) if len(asks) else None)

    def _features(self, ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, engine: np.ndarray, sidx: np.ndarray) -> None:
        """The feature kernel over every run of the batch at once, then each symbol's rows to where they go."""
        f, ii, row_end = self._group.process(ev, lo, hi, engine)
        if not len(f):
            return
        note_rows(f, ii, row_end, sidx, time.time_ns(), self._lat_feat.buf, self._lat_feat.count, self._nrows,
                  self._latest_f, self._latest_i)
        if self.store is None and not self._feature_cbs:
            return
        a = 0
        for si, e, b in zip(sidx.tolist(), engine.tolist(), row_end.tolist(), strict=True):
            if b == a:
                continue
            sym = self.symbols[si]
            if self.store is not None:
                self.store.add_features(sym, self._group.engines[e].instrument, f[a:b], ii[a:b])
            if self._feature_cbs:
                for j in range(a, b):
                    snap_v = self._snapshot(sym, f[j], ii[j])
                    for cb in list(self._feature_cbs):
                        self._call(cb, snap_v)
            a = b

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
