"""PodWorkers: one worker per UID, coalesced updates, sync → terminating → terminated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.kubelet.podworker import (
    SYNCING,
    TERMINATED,
    PodWorkers,
    SyncResult,
    grace_period,
    should_terminate,
)
from kybernetes.util.clock import FakeClock

from .helpers import pod

pytestmark = pytest.mark.timeout(30)


class Syncer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.terminal = False
        self.fail = 0
        self.gate: asyncio.Event | None = None
        self.requeue: float | None = None

    async def sync_pod(self, p: dict[str, Any]) -> SyncResult:
        self.calls.append(("sync", p["metadata"]["uid"], p["metadata"].get("resourceVersion")))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise OSError("runtime unavailable")
        return SyncResult(terminal=self.terminal, requeue_after=self.requeue)

    async def sync_terminating_pod(self, p: dict[str, Any], grace: float) -> None:
        self.calls.append(("terminating", p["metadata"]["uid"], grace))

    async def sync_terminated_pod(self, p: dict[str, Any], *, removed: bool) -> None:
        self.calls.append(("terminated", p["metadata"]["uid"], removed))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def workers() -> AsyncIterator[tuple[PodWorkers, Syncer, FakeClock]]:
    clock = FakeClock()
    s = Syncer()
    w = PodWorkers(s, clock=clock, resync_interval=60)
    try:
        yield w, s, clock
    finally:
        await w.stop()


def kinds(s: Syncer) -> list[str]:
    return [c[0] for c in s.calls]


async def test_updates_during_a_sync_are_coalesced(workers: Any) -> None:
    w, s, _clock = workers
    s.gate = asyncio.Event()
    p = pod("app")
    w.update({**p, "metadata": {**p["metadata"], "resourceVersion": "1"}})
    await settle()
    for rv in ("2", "3", "4"):
        w.update({**p, "metadata": {**p["metadata"], "resourceVersion": rv}})
    s.gate.set()
    await settle()
    assert [c[2] for c in s.calls] == ["1", "4"]  # one more sync, with the newest object
    assert w.state("uid-1") == SYNCING


async def test_requeue_resync_and_error_backoff(workers: Any) -> None:
    w, s, clock = workers
    s.requeue = 5.0
    w.update(pod("app"))
    await settle()
    assert len(s.calls) == 1
    clock.advance(4.9)
    await settle()
    assert len(s.calls) == 1
    clock.advance(0.2)
    await settle()
    assert len(s.calls) == 2
    s.requeue, s.fail = None, 2
    w.sync("uid-1")
    await settle()
    assert len(s.calls) == 3 and w.errors == 1
    clock.advance(1.1)  # first retry after 1 s
    await settle()
    assert len(s.calls) == 4 and w.errors == 2
    clock.advance(1.5)
    await settle()
    assert len(s.calls) == 4  # second retry after 2 s
    clock.advance(0.6)
    await settle()
    assert len(s.calls) == 5
    clock.advance(59)
    await settle()
    assert len(s.calls) == 5
    clock.advance(1.1)  # the periodic resync
    await settle()
    assert len(s.calls) == 6


async def test_deletion_terminates_with_the_grace_period_then_removal_forgets(workers: Any) -> None:
    w, s, _clock = workers
    p = pod("app", terminationGracePeriodSeconds=45)
    w.update(p)
    await settle()
    deleting = {**p, "metadata": {**p["metadata"], "deletionTimestamp": "x", "deletionGracePeriodSeconds": 20}}
    w.update(deleting)
    await settle()
    assert kinds(s) == ["sync", "terminating", "terminated"] and s.calls[1][2] == 20.0
    assert s.calls[2][2] is False and w.state("uid-1") == TERMINATED
    w.update(deleting)  # later updates only re-run the (idempotent) terminated step
    await settle()
    assert kinds(s)[-1] == "terminated" and "sync" not in kinds(s)[1:]
    w.remove("uid-1", deleting)
    await settle()
    assert s.calls[-1] == ("terminated", "uid-1", True) and not w.known("uid-1")
    w.update(p)  # a removed uid never comes back
    await settle()
    assert not w.known("uid-1")


async def test_terminal_sync_terminates(workers: Any) -> None:
    w, s, _clock = workers
    s.terminal = True
    w.update(pod("app"))
    await settle()
    assert kinds(s) == ["sync", "terminating", "terminated"] and s.calls[1][2] == 30.0


async def test_removed_before_sync_is_terminated_without_syncing(workers: Any) -> None:
    w, s, _clock = workers
    s.gate = asyncio.Event()
    w.update(pod("one", uid="a"))
    await settle()
    w.update(pod("two", uid="b"))
    w.remove("b")
    s.gate.set()
    await settle()
    assert ("sync", "b", None) not in s.calls
    assert ("terminated", "b", True) in s.calls and not w.known("b") and w.known("a")


@pytest.mark.parametrize("p, grace", [
    (pod("a"), 30.0),
    (pod("a", terminationGracePeriodSeconds=5), 5.0),
    ({**pod("a"), "metadata": {"uid": "u", "deletionGracePeriodSeconds": 0}}, 0.0),
])
def test_grace_period(p: dict[str, Any], grace: float) -> None:
    assert grace_period(p) == grace


def test_should_terminate() -> None:
    assert not should_terminate(pod("a"))
    assert should_terminate(pod("a", status={"phase": "Succeeded"}))
    assert should_terminate({**pod("a"), "metadata": {"deletionTimestamp": "x"}})
