import asyncio

import pytest

from kybernetes.client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)
from kybernetes.util.clock import FakeClock


def q_with_clock() -> tuple[WorkQueue[str], FakeClock]:
    clock = FakeClock(start=0.0)
    return WorkQueue("t", clock=clock), clock


def drain(q: WorkQueue[str]) -> list[str]:
    out = []
    while (item := q.get_nowait()) is not None:
        out.append(item)
        q.done(item)
    return out


def test_duplicate_adds_collapse() -> None:
    q, _ = q_with_clock()
    for k in ["a", "b", "a", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert drain(q) == ["a", "b", "c"]


def test_key_added_while_processing_waits_for_done() -> None:
    q, _ = q_with_clock()
    q.add("a")
    first = q.get_nowait()
    assert first == "a"
    q.add("a")              # dirty, but not queued: a second worker must not get it
    q.add("a")
    assert q.get_nowait() is None
    q.done("a")             # now it comes back, once
    assert q.get_nowait() == "a"
    assert q.get_nowait() is None


async def test_no_two_workers_process_one_key() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    active: set[str] = set()
    overlaps = 0
    processed = 0

    async def worker() -> None:
        nonlocal overlaps, processed
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            if key in active:
                overlaps += 1
            active.add(key)
            await asyncio.sleep(0.001)
            if processed < 60:
                q.add(key)          # re-added while being processed
            processed += 1
            active.discard(key)
            q.done(key)

    for k in ["a", "b", "c"]:
        q.add(k)
    async with asyncio.TaskGroup() as tg:
        for _ in range(4):
            tg.create_task(worker())
        while processed < 60:
            await asyncio.sleep(0.005)
        await q.shut_down_with_drain()
    assert overlaps == 0
    assert processed >= 60


def test_add_after_orders_by_ready_time_and_dedups() -> None:
    q, clock = q_with_clock()
    q.add_after("late", 3.0)
    q.add_after("early", 1.0)
    q.add_after("mid", 2.0)
    q.add_after("late", 5.0)   # later time for a waiting key: ignored (earliest wins)
    q.add_after("mid", 0.5)    # earlier time wins
    assert q.statistics()["waiting"] == 3
    clock.advance(0.5)
    assert drain(q) == ["mid"]
    clock.advance(0.5)
    assert drain(q) == ["early"]
    clock.advance(1.9)
    assert drain(q) == []
    clock.advance(0.1)
    assert drain(q) == ["late"]
    assert clock.pending_timers() == 0


def test_add_after_zero_is_immediate() -> None:
    q, _ = q_with_clock()
    q.add_after("x", 0)
    assert drain(q) == ["x"]


def test_rate_limited_backoff_grows_and_forget_resets() -> None:
    lim = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [lim.when("k") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert lim.num_requeues("k") == 5
    for _ in range(40):
        lim.when("k")
    assert lim.when("k") == 1000.0
    lim.forget("k")
    assert lim.num_requeues("k") == 0
    assert lim.when("k") == 0.005


def test_token_bucket_allows_burst_then_paces() -> None:
    clock = FakeClock(start=0.0)
    bucket = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [bucket.when(i) for i in range(3)] == [0, 0, 0]
    assert bucket.when(3) == pytest.approx(0.1)
    assert bucket.when(4) == pytest.approx(0.2)
    clock.advance(10)          # refills, but never above the burst
    assert [bucket.when(i) for i in range(3)] == [0, 0, 0]
    assert bucket.when(9) > 0


def test_max_of_combines() -> None:
    clock = FakeClock(start=0.0)
    lim = MaxOfRateLimiter(ItemExponentialFailureRateLimiter(1.0, 100.0), BucketRateLimiter(1, 1, clock))
    assert lim.when("a") == 1.0
    assert lim.when("b") == pytest.approx(1.0)     # bucket empty: 1 s
    assert lim.when("a") == 2.0
    assert lim.num_requeues("a") == 2


def test_add_rate_limited_uses_backoff() -> None:
    clock = FakeClock(start=0.0)
    q: WorkQueue[str] = WorkQueue("t", clock=clock, rate_limiter=default_controller_rate_limiter(clock))
    for _ in range(3):
        q.add_rate_limited("k")   # 5 ms, 10 ms, 20 ms: earliest (5 ms) wins while waiting
    assert q.num_requeues("k") == 3
    clock.advance(0.004)
    assert drain(q) == []
    clock.advance(0.001)
    assert drain(q) == ["k"]
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_get_waits_and_shutdown_drains() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await getter == "x"
    q.add("y")
    q.shut_down()
    q.add("z")                     # ignored after shutdown
    q.add_after("w", 0.01)         # ignored too
    assert await q.get() == "y"    # what was queued is still handed out
    with pytest.raises(ShutDown):
        await q.get()
    q.done("x")
    q.done("y")


async def test_shutdown_wakes_blocked_getters() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    getters = [asyncio.ensure_future(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shut_down()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(r, ShutDown) for r in results)


async def test_cancelled_getter_passes_wakeup_on() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    g1 = asyncio.ensure_future(q.get())
    g2 = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add("x")          # wakes g1 ...
    g1.cancel()         # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await g1
    assert await asyncio.wait_for(g2, 1) == "x"


async def test_real_time_add_after() -> None:
    q: WorkQueue[str] = WorkQueue("t")
    q.add_after("b", 0.04)
    q.add_after("a", 0.02)
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert await asyncio.wait_for(q.get(), 1) == "b"


def test_waiting_heap_stays_bounded() -> None:
    q, clock = q_with_clock()
    for i in range(10_000):
        q.add_after("k", 1000.0 - i * 0.01)   # each call is earlier: a new heap entry
    assert len(q._waiting) < 100
    clock.advance(1000)
    assert drain(q) == ["k"]
