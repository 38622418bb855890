import asyncio
import datetime as dt

import pytest

from kybernetes.util.clock import FakeClock, RealClock


def test_fake_clock_fires_timers_in_order() -> None:
    clock = FakeClock(start=0.0)
    fired: list[str] = []
    clock.call_later(2.0, lambda: fired.append("b"))
    clock.call_later(1.0, lambda: fired.append("a"))
    h = clock.call_later(1.5, lambda: fired.append("cancelled"))
    h.cancel()
    clock.advance(1.0)
    assert fired == ["a"]
    clock.advance(5.0)
    assert fired == ["a", "b"]
    assert clock.monotonic() == 6.0


def test_fake_clock_wall_follows_monotonic() -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    clock = FakeClock(start=10.0, wall_start=start)
    clock.advance(90)
    assert clock.wall() == start + dt.timedelta(seconds=90)
    with pytest.raises(ValueError):
        clock.set(0.0)


async def test_fake_clock_sleep_wakes_on_advance() -> None:
    clock = FakeClock()
    task = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(9.9)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.1)
    await asyncio.sleep(0)
    assert task.done()
    assert clock.pending_timers() == 0


async def test_real_clock_basics() -> None:
    c = RealClock()
    t0 = c.monotonic()
    await c.sleep(0.01)
    assert c.monotonic() > t0
    assert c.wall().tzinfo is not None
