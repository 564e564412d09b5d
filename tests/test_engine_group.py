"""`EngineGroup` (one kernel call per batch for many instruments) writes the rows each engine writes alone."""

from __future__ import annotations

import numpy as np
import pytest

from flowbook.features import FeatureConfig, FeatureEngine
from flowbook.features.group import EngineGroup
from flowbook.testing import synthetic_events


@pytest.mark.parametrize("interval_ns", [0, 50_000_000])
def test_group_rows_equal_each_engine_alone(interval_ns: int) -> None:
    cfg = FeatureConfig(interval_ns=interval_ns)
    streams = []
    for s in range(3):
        ev, inst = synthetic_events(20_000, s + 1)
        ev = ev.copy()
        ev["symbol"] = s
        streams.append((ev, inst))
    alone = []
    for ev, inst in streams:  # a 64-tick window: recenters, and far levels that grow the hash tables
        e = FeatureEngine(inst, cfg, window=64)
        e.process(ev)
        alone.append(e.take())
    group = EngineGroup(cfg, out_rows=1)  # a one-row buffer: the group must grow it mid-batch
    rng = np.random.default_rng(7)
    pos = [0, 0, 0]
    got: list[list[tuple[np.ndarray, np.ndarray]]] = [[], [], []]
    index: dict[int, int] = {}
    while any(pos[s] < len(streams[s][0]) for s in range(3)):
        parts, lo, hi, eng, n = [], [], [], [], 0
        for s in rng.permutation(3).tolist():  # symbols in a different order in each batch
            ev = streams[s][0]
            if pos[s] >= len(ev):
                continue
            chunk = ev[pos[s]:pos[s] + int(rng.integers(1, 400))]
            pos[s] += len(chunk)
            if s not in index:
                index[s] = group.add(streams[s][1], chunk, window=64, hash_capacity=16)
            parts.append(chunk)
            lo.append(n)
            n += len(chunk)
            hi.append(n)
            eng.append(index[s])
        f, ii, ends = group.process(np.concatenate(parts), np.array(lo), np.array(hi), np.array(eng))
        a = 0
        for r, e in enumerate(eng):
            s = next(k for k, v in index.items() if v == e)
            got[s].append((f[a:ends[r]].copy(), ii[a:ends[r]].copy()))
            a = int(ends[r])
    assert len(group.out_f) > 1
    assert sum(int(e.book.st[10]) for e in group.engines if e.book is not None) > 0  # books recentred
    for s in range(3):
        f = np.concatenate([x[0] for x in got[s]])
        ii = np.concatenate([x[1] for x in got[s]])
        assert len(f) > 100
        np.testing.assert_array_equal(f, alone[s][0])
        np.testing.assert_array_equal(ii, alone[s][1])
        book = group.engines[index[s]].book
        assert book is not None and len(book.hkb) > 16  # the grow path ran and was handed to the kernel


def test_group_rejects_foreign_events() -> None:
    group = EngineGroup()
    with pytest.raises(TypeError):
        group.process(np.zeros(3), np.array([0]), np.array([3]), np.array([0]))


def test_window_for_searches_past_the_first_chunks() -> None:
    from flowbook.book import window_for
    from flowbook.book.l2 import default_window
    from flowbook.events import EVENT_DTYPE

    ev = np.zeros(200_000, EVENT_DTYPE)
    ev["kind"] = 3  # trades only ...
    assert window_for(ev) == default_window(1 << 12)
    ev[150_000]["kind"], ev[150_000]["qty"], ev[150_000]["price"] = 1, 0, 9  # ... a delete is no resting level
    ev[150_001]["kind"], ev[150_001]["qty"], ev[150_001]["price"] = 1, 5, 600_000
    assert window_for(ev) == default_window(600_000) == 65536


@pytest.mark.parametrize("out_rows", [1, 1000, 1 << 20])
def test_engine_rows_do_not_depend_on_the_output_buffer(out_rows: int) -> None:
    ev, inst = synthetic_events(30_000, 5)
    ref = FeatureEngine(inst)
    ref.process(ev)
    f0, i0 = ref.take()
    eng = FeatureEngine(inst, out_rows=out_rows)
    for part in np.array_split(ev, 3):  # the projection sees each call's own progress
        eng.process(part)
    f, ii = eng.take()
    np.testing.assert_array_equal(f, f0)
    np.testing.assert_array_equal(ii, i0)
