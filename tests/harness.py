"""Helpers shared by the integration test suites: polling waits and background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


async def wait_for(cond: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0,
                   interval: float = 0.05, what: str = "condition") -> None:
    """Poll ``cond`` (sync or async) until it is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = cond()
        if not isinstance(r, bool):
            r = await r
        if r:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running_tasks(*coros: Awaitable[Any]) -> AsyncIterator[None]:
    """Run ``coros`` as tasks for the body of the block; cancel and await them afterwards."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def exists(client: Any, res: Any, name: str, namespace: str | None = None) -> bool:
    """Whether ``client.get(res, name, namespace)`` finds the object (NotFound: False)."""
    from kybernetes.client.errors import NotFound

    try:
        await client.get(res, name, namespace)
    except NotFound:
        return False
    return True
