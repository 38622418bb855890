"""Pure parts of the scale work: the ReplicaSet slow start that resumes, the GC thresholds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kybernetes.client.informer import GC_THRESHOLDS, tune_gc
from kybernetes.controllers.replicaset import batch_sizes, next_initial_batch, slow_start_batch


@pytest.mark.parametrize(("count", "initial", "sizes"), [
    pytest.param(10, 1, [1, 2, 4, 3], id="from-one"),
    pytest.param(500, 1, [1, 2, 4, 8, 16, 32, 64, 128, 245], id="burst-from-one"),
    pytest.param(500, 245, [245, 255], id="resumed"),
    pytest.param(3, 100, [3], id="initial-above-count"),
    pytest.param(0, 1, [], id="nothing"),
])
def test_batch_sizes(count: int, initial: int, sizes: list[int]) -> None:
    assert batch_sizes(count, initial) == sizes
    assert sum(sizes) == count


@pytest.mark.parametrize(("count", "initial", "done", "cap", "want"), [
    pytest.param(500, 1, 500, 500, 245, id="all-succeeded-resumes-at-largest-batch"),
    pytest.param(500, 245, 500, 500, 255, id="keeps-growing"),
    pytest.param(500, 245, 500, 100, 100, id="capped"),
    pytest.param(500, 245, 499, 500, 1, id="any-failure-starts-over"),
    pytest.param(1, 1, 1, 500, 1, id="single"),
    pytest.param(0, 64, 0, 500, 64, id="no-creations-keep-state"),
])
def test_next_initial_batch(count: int, initial: int, done: int, cap: int, want: int) -> None:
    assert next_initial_batch(count, initial, done, cap) == want


async def test_resumed_slow_start_uses_fewer_rounds_and_still_stops_on_error() -> None:
    rounds: list[int] = []
    in_round = 0

    async def ok() -> None:
        nonlocal in_round
        in_round += 1

    async def counted(initial: int, count: int) -> int:
        nonlocal in_round
        rounds.clear()
        done = 0
        for size in batch_sizes(count, initial):
            in_round = 0
            got, err = await slow_start_batch(size, ok, initial=size)
            assert err is None
            rounds.append(in_round)
            done += got
        return done

    assert await counted(1, 500) == 500 and len(rounds) == 9
    assert await counted(245, 500) == 500 and len(rounds) == 2

    calls = 0

    async def quota() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("exceeded quota")

    done, err = await slow_start_batch(500, quota, initial=245)
    assert done == 0 and isinstance(err, RuntimeError) and calls == 245
    assert next_initial_batch(500, 245, done, 500) == 1


@pytest.fixture
def restore_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_tune_gc_raises_thresholds(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS


def test_tune_gc_never_lowers(restore_gc: None) -> None:
    gc.set_threshold(10**6, 5, 1000)
    tune_gc()
    assert gc.get_threshold() == (10**6, GC_THRESHOLDS[1], 1000)
