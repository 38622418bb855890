"""How many pod start steps run at once, and in which order.

Starting a pod costs CPU: the runtime forks shims, runs runc and the CNI plugins, mounts. When ten
pods arrive together on a two-core node and all start at once, they share the CPU and all become
Running together at the end (processor sharing: each waits for all). Letting ``limit`` steps run at
a time, oldest pod first, gives the same total time but the first pods are Running early: for n
equal starts the mean wait drops from n to about (n + 1) / 2 start times.

The expensive steps are ``runtime.run_sandbox`` and a container's create + start; the slow waits
(image pulls, volume set-up, hooks, probes) stay outside, so a pod that waits for its image does
not hold up others. Order is by each pod's first request (``ticket``), so a pod that finished its
sandbox goes on to its containers before a newer pod starts its sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
from collections.abc import AsyncIterator


def default_limit() -> int:
    """One more than the CPUs: a start also waits on its programs, so one extra keeps the CPU busy."""
    return (os.cpu_count() or 2) + 1


class StartSlots:
    """A counting semaphore whose waiters are served oldest pod first."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or default_limit()
        self.busy = 0
        self._tickets: dict[str, int] = {}
        self._counter = itertools.count()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []

    def ticket(self, uid: str) -> int:
        """The pod's place in line: fixed at its first request until ``forget``."""
        if uid not in self._tickets:
            self._tickets[uid] = next(self._counter)
        return self._tickets[uid]

    def forget(self, uid: str) -> None:
        """The pod is running or gone: its next start (a restart) queues as a new arrival."""
        self._tickets.pop(uid, None)

    @contextlib.asynccontextmanager
    async def slot(self, uid: str) -> AsyncIterator[None]:
        await self._acquire(self.ticket(uid))
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, ticket: int) -> None:
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (ticket, next(self._counter), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        self.busy -= 1
        while self._waiters and self.busy < self.limit:
            _t, _n, fut = heapq.heappop(self._waiters)
            if fut.done():
                continue  # cancelled while waiting
            self.busy += 1
            fut.set_result(None)
