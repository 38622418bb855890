"""One worker per pod UID, driving each pod through sync → terminating → terminated (upstream
``pod_workers.go``).

    workers = PodWorkers(syncer, clock=clock)
    workers.update(pod)            # a new or changed pod from a source (API informer, static pods)
    workers.sync(uid)              # look again (the runtime changed, a probe result changed)
    workers.remove(uid)            # the pod is gone from its source (API object deleted)
    await workers.stop()

Guarantees:

* at most one sync of a pod runs at a time; updates that arrive meanwhile are not queued one by
  one: the worker only remembers the newest pod object and that it must look again, so a burst of
  updates costs one more sync;
* **sync** (``syncer.sync_pod``) runs until the pod is being deleted (``deletionTimestamp``), is
  gone from its source, has a terminal phase in the API, or a sync reports it terminal (all
  containers done for good, or ``activeDeadlineSeconds`` passed); it runs again when asked, after
  the ``requeue_after`` a sync returns, or every ``resync_interval``; a failing sync is retried
  with back-off (1 s doubling to ``max_backoff``);
* **terminating** (``syncer.sync_terminating_pod``) runs once it succeeded: it stops every
  container with the pod's grace period (``deletionGracePeriodSeconds``, else the spec's
  ``terminationGracePeriodSeconds``, else 30 s) and reports the final status;
* **terminated** (``syncer.sync_terminated_pod``) releases what the pod held and, for a pod
  being deleted, removes the API object; it runs again on later updates (e.g. a finished Job pod
  that is deleted later) and, with ``removed=True``, once the pod is gone from its source — after
  which the worker ends and the UID is forgotten.

A worker never goes back: a pod is never restarted after it started terminating (a new pod with
the same name has a new UID and gets its own worker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..util.clock import Clock, RealClock
from ..util.tasks import Supervisor

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SYNCING = "syncing"
TERMINATING = "terminating"
TERMINATED = "terminated"
DEFAULT_GRACE = 30.0
# exceptions that mean a bug rather than a condition of the world: logged with their traceback
_BUGS = (AttributeError, TypeError, KeyError, IndexError, NameError, AssertionError, ValueError)


@dataclass(frozen=True)
class SyncResult:
    terminal: bool = False               # the pod is done for good: terminate it
    requeue_after: float | None = None   # look again after this long (None: at the resync)


class PodSyncer(Protocol):
    """What a pod worker drives (the kubelet implements it)."""

    async def sync_pod(self, pod: Obj) -> SyncResult: ...
    async def sync_terminating_pod(self, pod: Obj, grace: float) -> None: ...
    async def sync_terminated_pod(self, pod: Obj, *, removed: bool) -> None: ...


def uid_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def grace_period(pod: Mapping[str, Any]) -> float:
    """The seconds a terminating pod gets: deletionGracePeriodSeconds, else the spec's."""
    md = pod.get("metadata") or {}
    if md.get("deletionGracePeriodSeconds") is not None:
        return max(0.0, float(md["deletionGracePeriodSeconds"]))
    spec = pod.get("spec") or {}
    if spec.get("terminationGracePeriodSeconds") is not None:
        return max(0.0, float(spec["terminationGracePeriodSeconds"]))
    return DEFAULT_GRACE


def should_terminate(pod: Mapping[str, Any]) -> bool:
    """Whether a pod must stop now: being deleted, or already terminal in the API."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class _Worker:
    def __init__(self, pod: Obj) -> None:
        self.uid = uid_of(pod)
        self.pod = pod
        self.state = SYNCING
        self.removed = False
        self.wake = asyncio.Event()
        self.wake.set()
        self.due: float | None = None       # monotonic time of the next timed look
        self.failures = 0
        self.grace: float | None = None
        self.syncs = 0


class PodWorkers:
    """The pod workers of one kubelet (see the module docstring)."""

    def __init__(self, syncer: PodSyncer, *, clock: Clock | None = None,
                 resync_interval: float = 60.0, initial_backoff: float = 1.0,
                 max_backoff: float = 10.0) -> None:
        self.syncer = syncer
        self.clock = clock or RealClock()
        self.resync_interval = resync_interval
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._workers: dict[str, _Worker] = {}
        self._sup = Supervisor("pod-workers", logger=log)
        self._finished: set[str] = set()   # uids whose worker ended (removed pods)
        self.errors = 0

    # -- inputs (non-blocking) ----------------------------------------------------------------------
    def update(self, pod: Obj, *, wake: bool = True) -> None:
        """A new or changed pod: remember it as the newest and (unless ``wake`` is False: nothing
        that matters changed) wake its worker."""
        uid = uid_of(pod)
        if not uid or uid in self._finished:
            return
        w = self._workers.get(uid)
        if w is None:
            w = self._workers[uid] = _Worker(pod)
            self._sup.start(self._run(w), name=f"pod/{uid}")
            return
        w.pod = pod
        if wake:
            w.wake.set()

    def sync(self, uid: str) -> None:
        """Wake ``uid``'s worker (no-op for unknown pods)."""
        w = self._workers.get(uid)
        if w is not None:
            w.wake.set()

    def remove(self, uid: str, pod: Obj | None = None) -> None:
        """The pod is gone from its source: terminate it if needed, then forget it."""
        w = self._workers.get(uid)
        if w is None:
            return
        if pod is not None:
            w.pod = pod
        w.removed = True
        w.wake.set()

    # -- state ------------------------------------------------------------------------------------------
    def known(self, uid: str) -> bool:
        return uid in self._workers

    def state(self, uid: str) -> str | None:
        w = self._workers.get(uid)
        return None if w is None else w.state

    def pods(self) -> list[Obj]:
        """The newest object of every pod with a worker."""
        return [w.pod for w in self._workers.values()]

    def uids(self) -> set[str]:
        return set(self._workers)

    def forget_finished(self, uid: str) -> None:
        """Allow a (removed and finished) uid to get a worker again."""
        self._finished.discard(uid)

    # -- the loop -----------------------------------------------------------------------------------------
    async def _wait(self, w: _Worker) -> None:
        if w.wake.is_set():
            return
        delay = None if w.due is None else w.due - self.clock.monotonic()
        if delay is not None and delay <= 0:
            return
        waiter = asyncio.ensure_future(w.wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay)) if delay is not None else None
        try:
            await asyncio.wait({f for f in (waiter, sleeper) if f is not None},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if sleeper is not None:
                sleeper.cancel()

    def _schedule(self, w: _Worker, after: float | None) -> None:
        w.due = None if after is None else self.clock.monotonic() + max(0.0, after)

    async def _run(self, w: _Worker) -> None:
        try:
            while True:
                await self._wait(w)
                w.wake.clear()
                try:
                    if await self._step(w):
                        return
                    w.failures = 0
                except Exception as e:
                    self.errors += 1
                    w.failures += 1
                    delay = min(self.initial_backoff * 2 ** (w.failures - 1), self.max_backoff)
                    log.warning("pod %s (%s): %s failed (retry in %.1fs): %r", w.uid, w.state,
                                "sync" if w.state == SYNCING else w.state, delay, e,
                                exc_info=isinstance(e, _BUGS) or log.isEnabledFor(logging.DEBUG))
                    self._schedule(w, delay)
        finally:
            if self._workers.get(w.uid) is w and w.removed and w.state == TERMINATED:
                del self._workers[w.uid]
                self._finished.add(w.uid)
                if len(self._finished) > 10_000:
                    self._finished.clear()

    async def _step(self, w: _Worker) -> bool:
        """One look at the pod; True when the worker is done for good."""
        pod = w.pod
        if w.state == SYNCING:
            if w.removed or should_terminate(pod):
                w.state = TERMINATING
            else:
                w.syncs += 1
                result = await self.syncer.sync_pod(pod)
                if not result.terminal:
                    after = self.resync_interval if result.requeue_after is None else min(
                        result.requeue_after, self.resync_interval)
                    self._schedule(w, after)
                    return False
                w.state = TERMINATING
        if w.state == TERMINATING:
            pod = w.pod
            if w.grace is None:
                w.grace = grace_period(pod)
            await self.syncer.sync_terminating_pod(pod, w.grace)
            w.state = TERMINATED
        # terminated
        removed = w.removed
        await self.syncer.sync_terminated_pod(w.pod, removed=removed)
        self._schedule(w, None)
        return removed

    async def stop(self) -> None:
        """Cancel every worker (pods keep running in the runtime)."""
        await self._sup.stop()
        self._workers.clear()

    def statistics(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for w in self._workers.values():
            states[w.state] = states.get(w.state, 0) + 1
        return {"workers": len(self._workers), "states": states, "errors": self.errors,
                "syncs": sum(w.syncs for w in self._workers.values())}
