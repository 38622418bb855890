"""A supervisor for long-lived tasks (cf. kopf ``aiotasks``).

    sup = Supervisor("kubelet")
    sup.start(self._pleg_loop(), name="pleg")
    ...
    await sup.stop()          # cancels every task and waits for them

The supervisor keeps strong references (the loop only keeps weak ones), logs a crash the moment a
task fails (not at shutdown), and ``stop()`` cancels, awaits, and reports tasks that do not finish
within its timeout. Use it as ``async with Supervisor(...) as sup:`` to stop on exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Self

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, name: str = "supervisor", *, logger: logging.Logger | None = None,
                 on_crash: Callable[[asyncio.Task[Any], BaseException], None] | None = None) -> None:
        self.name = name
        self._log = logger or log
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_crash = on_crash
        self._stopping = False
        self.crashes = 0

    def start(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a supervised task and return it."""
        if self._stopping:
            coro.close()
            raise RuntimeError(f"supervisor {self.name} is stopping")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}/{name or 'task'}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self.crashes += 1
        self._log.error("task %s crashed: %r", task.get_name(), exc, exc_info=exc)
        if self._on_crash is not None:
            try:
                self._on_crash(task, exc)
            except Exception:  # noqa: BLE001 - a broken crash hook must not hide the crash itself
                self._log.exception("on_crash hook failed for %s", task.get_name())

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel every task and wait (up to ``timeout``) for them to finish."""
        self._stopping = True
        try:
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            if not tasks:
                return
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                self._log.warning("task %s did not stop within %.1fs", t.get_name(), timeout)
        finally:
            self._stopping = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def statistics(self) -> dict[str, int]:
        return {"tasks": len(self._tasks), "crashes": self.crashes}
