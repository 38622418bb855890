"""Injectable time: monotonic seconds for durations, wall-clock UTC for API timestamps.

    clock = RealClock()                 # production
    clock = FakeClock(start=1000.0)     # tests: time moves only when told to
    clock.advance(5)                    # fires due timers, wakes due sleepers

Components take a ``Clock`` and never call ``time.time()`` or ``loop.time()`` themselves, so tests
can fast-forward back-off and resync periods. Timers (``call_later``) run on the event loop thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """The time source every component is built with."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (for durations and deadlines)."""
        ...

    def wall(self) -> dt.datetime:
        """The current wall-clock time, timezone-aware UTC (for API timestamps)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` on the loop after ``delay`` seconds of this clock's time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


class RealClock:
    """The system clock; timers are event-loop timers."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only on ``advance()``/``set()``; timers fire synchronously then.

    ``sleep(0)`` (or a negative delay) just yields to the loop, like ``asyncio.sleep(0)``.
    """

    def __init__(self, start: float = 1_000.0, wall_start: dt.datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall_start = wall_start or dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> dt.datetime:
        return self._wall_start + dt.timedelta(seconds=self._now - self._start)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        t = _Timer(self._now + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._timers, t)
        return t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self.call_later(seconds, wake)
        try:
            await fut
        finally:
            handle.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that becomes due, in due order."""
        self.set(self._now + seconds)

    def set(self, now: float) -> None:
        if now < self._now:
            raise ValueError("a FakeClock never goes backwards")
        while self._timers and self._timers[0].when <= now:
            t = heapq.heappop(self._timers)
            self._now = max(self._now, t.when)
            if not t.cancelled:
                t.callback()
        self._now = now

    def pending_timers(self) -> int:
        return sum(1 for t in self._timers if not t.cancelled)


def default_clock() -> Clock:
    return RealClock()
