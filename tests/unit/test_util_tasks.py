import asyncio
import logging

import pytest

from kybernetes.util.tasks import Supervisor


async def test_crash_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    crashed: list[BaseException] = []
    sup = Supervisor("t", on_crash=lambda task, exc: crashed.append(exc))

    async def boom() -> None:
        raise RuntimeError("kaput")

    with caplog.at_level(logging.ERROR):
        sup.start(boom(), name="boom")
        await asyncio.sleep(0.01)
    assert "kaput" in caplog.text and "t/boom" in caplog.text
    assert isinstance(crashed[0], RuntimeError)
    assert sup.statistics() == {"tasks": 0, "crashes": 1}
    await sup.stop()


async def test_stop_cancels_and_awaits_with_cleanup() -> None:
    cleaned: list[int] = []

    async def forever(i: int) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(i)

    async with Supervisor("t") as sup:
        for i in range(3):
            sup.start(forever(i), name=f"f{i}")
        await asyncio.sleep(0)
        assert len(sup) == 3
    assert sorted(cleaned) == [0, 1, 2]
    assert len(sup) == 0


async def test_stop_reports_stuck_tasks(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await release.wait()
                raise

    sup = Supervisor("t")
    task = sup.start(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING):
        await sup.stop(timeout=0.05)
    assert "did not stop" in caplog.text
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
