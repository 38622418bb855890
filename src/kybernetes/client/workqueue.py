"""A key-deduplicating, rate-limited work queue for controllers (client-go ``workqueue``).

    q = WorkQueue("replicaset", rate_limiter=default_controller_rate_limiter())
    q.add(key)                      # duplicates of a waiting key collapse into one
    key = await q.get()             # raises ShutDown once shut down and empty
    try: ... finally: q.done(key)   # always
    q.forget(key)                   # success: reset the key's back-off
    q.add_rate_limited(key)         # failure: retry after the key's back-off
    q.add_after(key, 5.0)           # a timed re-check

Guarantees (the dirty/processing sets):
* a key is in the ready queue at most once; adding a queued key is a no-op;
* a key is never handed to two workers at once: a key added while being processed is marked dirty
  and re-queued only when ``done(key)`` is called;
* delayed adds are deduplicated too (the earliest ready time wins), so memory is bounded by the
  number of distinct keys; one clock timer serves all delayed keys.

Rate limiting (``default_controller_rate_limiter``): the max of a per-key exponential back-off
(5 ms, 10 ms, ... capped at 1000 s) and an overall token bucket (10 qps, burst 100).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from ..util.backoff import exponential_delay
from ..util.clock import Clock, RealClock, TimerHandle

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """``get()`` on a queue that is shut down and empty."""


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds to wait before ``item`` may be processed again (records a failure)."""
        ...

    def forget(self, item: Hashable) -> None: ...

    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """Per-item back-off: ``base * 2**failures`` capped at ``maximum``."""

    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self.base, self.maximum = base, maximum
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        return exponential_delay(n, self.base, self.maximum)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket: ``qps`` tokens per second, at most ``burst`` saved up.

    Each ``when`` reserves a token; when none is left the answer is how long until one will be.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        self.qps, self.burst = qps, burst
        self.clock = clock or RealClock()
        self._tokens = float(burst)
        self._last = self.clock.monotonic()

    def when(self, item: Hashable) -> float:
        now = self.clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait any of the limiters asks for."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(lim.when(item) for lim in self.limiters)

    def forget(self, item: Hashable) -> None:
        for lim in self.limiters:
            lim.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(lim.num_requeues(item) for lim in self.limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100, clock))


class WorkQueue(Generic[T]):
    """See the module docstring. All methods but ``get``/``shut_down_with_drain`` are non-blocking."""

    def __init__(self, name: str = "", *, rate_limiter: RateLimiter | None = None,
                 clock: Clock | None = None) -> None:
        self.name = name
        self.clock = clock or RealClock()
        self.rate_limiter: RateLimiter = rate_limiter or default_controller_rate_limiter(self.clock)
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: list[tuple[float, int, T]] = []     # heap; stale entries skipped
        self._ready_at: dict[T, float] = {}                # the live delayed entry per item
        self._seq = itertools.count()
        self._timer: TimerHandle | None = None
        self._timer_at = float("inf")
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._idle: asyncio.Event | None = None
        self.adds = 0
        self.retries = 0

    # -- adding -----------------------------------------------------------------------------------
    def add(self, item: T) -> None:
        """Queue ``item`` unless it is already waiting; ignored after shutdown."""
        if self._shutting_down or item in self._dirty:
            return
        self.adds += 1
        self._dirty.add(item)
        if item in self._processing:
            return  # re-queued by done()
        self._queue.append(item)
        self._wake_one()

    def add_after(self, item: T, delay: float) -> None:
        """Queue ``item`` after ``delay`` seconds (earliest ready time wins for repeated calls)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready = self.clock.monotonic() + delay
        current = self._ready_at.get(item)
        if current is not None and current <= ready:
            return
        self._ready_at[item] = ready
        heapq.heappush(self._waiting, (ready, next(self._seq), item))
        if len(self._waiting) > 2 * len(self._ready_at) + 16:
            self._compact_waiting()
        self._arm_timer()

    def add_rate_limited(self, item: T) -> None:
        """Queue ``item`` after its back-off (records a failure for it)."""
        self.retries += 1
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset ``item``'s back-off (call after a successful sync)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    # -- delayed items ----------------------------------------------------------------------------
    def _compact_waiting(self) -> None:
        self._waiting = [(at, seq, it) for at, seq, it in self._waiting if self._ready_at.get(it) == at]
        heapq.heapify(self._waiting)

    def _arm_timer(self) -> None:
        if not self._waiting:
            return
        first = self._waiting[0][0]
        if self._timer is not None and self._timer_at <= first:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = first
        self._timer = self.clock.call_later(first - self.clock.monotonic(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        now = self.clock.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            at, _seq, item = heapq.heappop(self._waiting)
            if self._ready_at.get(item) == at:
                del self._ready_at[item]
                self.add(item)
        self._arm_timer()

    # -- taking -----------------------------------------------------------------------------------
    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def get_nowait(self) -> T | None:
        """The next ready item (now being processed), or None if none is ready."""
        if not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            return None
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    async def get(self) -> T:
        """Wait for the next item; it is 'processing' until ``done(item)``."""
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake_one()  # pass the wake-up on: we will not take the item
                raise
            finally:
                if fut in self._getters:
                    self._getters.remove(fut)

    def done(self, item: T) -> None:
        """Mark ``item`` finished; if it was added meanwhile, queue it again."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one()
        if self._idle is not None and not self._processing and not self._queue:
            self._idle.set()

    # -- shutdown ---------------------------------------------------------------------------------
    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shut_down(self) -> None:
        """Stop accepting items; drop delayed ones; ``get`` drains what is queued, then raises."""
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, float("inf")
        self._waiting.clear()
        self._ready_at.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until workers have taken and finished every queued item."""
        self.shut_down()
        if self._processing or self._queue:
            self._idle = asyncio.Event()
            await self._idle.wait()

    # -- introspection ----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Items ready to be taken (not counting delayed or in-flight ones)."""
        return len(self._queue)

    def statistics(self) -> dict[str, int | bool | str]:
        return {"name": self.name, "depth": len(self._queue), "processing": len(self._processing),
                "waiting": len(self._ready_at), "adds": self.adds, "retries": self.retries,
                "shutting_down": self._shutting_down}
