"""The scheduling queue (upstream ``backend/queue/scheduling_queue.go``) as a plain data
structure: no tasks, no locks, time injected.

- activeQ: pods ready to be tried, highest priority first, then oldest.
- backoffQ: pods that failed recently, each waiting 1 s * 2^(attempts-1), capped at 10 s.
- unschedulable: pods rejected by plugins; they move back only when a cluster event that one
  of those plugins registered for happens (or after 5 minutes), never in a busy loop.
- gated: pods a PreEnqueue plugin (SchedulingGates) holds back until they are updated.

A ``notify`` callback fires whenever activeQ gains a pod, so the async shell can wake its loop.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from kybernetes.scheduler.framework.interfaces import (
    ASSIGNED_POD,
    NODE,
    UNSCHEDULED_POD,
    ActionType,
    ClusterEvent,
)
from kybernetes.scheduler.framework.status import Status
from kybernetes.scheduler.framework.types import Obj, PodInfo, pod_key

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0  # podMaxInUnschedulablePodsDuration


@dataclass
class QueuedPodInfo:
    pod_info: PodInfo
    timestamp: float  # when it (re)entered the queue
    attempts: int = 0
    initial_attempt_timestamp: float | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    gating_plugin: str = ""
    gating_status: Status | None = None
    backoff_until: float = 0.0

    @property
    def key(self) -> str:
        return self.pod_info.key

    @property
    def pod(self) -> Obj:
        return self.pod_info.pod


def backoff_duration(attempts: int, initial: float = INITIAL_BACKOFF,
                     maximum: float = MAX_BACKOFF) -> float:
    """1 s, 2 s, 4 s, 8 s, then 10 s (attempts counted from 1)."""
    if attempts <= 0:
        return 0.0
    return min(initial * 2 ** (attempts - 1), maximum)


class SchedulingQueue:
    def __init__(self, clock: Callable[[], float],
                 pre_enqueue: Callable[[PodInfo], Status | None] | None = None,
                 events_to_register: Mapping[str, Iterable[ClusterEvent]] | None = None,
                 notify: Callable[[], None] | None = None,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:
        self.clock = clock
        self.pre_enqueue = pre_enqueue
        self.events = {k: tuple(v) for k, v in (events_to_register or {}).items()}
        self.notify = notify
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self._seq = itertools.count()
        self._active: list[tuple[int, float, int, str]] = []  # heap of (-priority, ts, seq, key)
        self._active_entries: dict[str, tuple[int, float, int, str]] = {}
        self._backoff: list[tuple[float, int, str]] = []  # heap of (until, seq, key)
        self._backoff_keys: set[str] = set()
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._infos: dict[str, QueuedPodInfo] = {}  # every pod the queue holds
        self._in_flight: dict[str, QueuedPodInfo] = {}
        self._events_during_flight: list[ClusterEvent] = []
        self.scheduling_cycle = 0
        self._move_request_cycle = -1

    # -- adding ------------------------------------------------------------------------------

    def add(self, pod: Obj) -> None:
        """A new unscheduled pod (informer add)."""
        pi = PodInfo(pod)
        qpi = QueuedPodInfo(pi, self.clock())
        self._infos[pi.key] = qpi
        self._move_to_active_or_gate(qpi)

    def _move_to_active_or_gate(self, qpi: QueuedPodInfo) -> None:
        st = self.pre_enqueue(qpi.pod_info) if self.pre_enqueue else None
        if st is not None and not st.is_success():
            qpi.gating_plugin, qpi.gating_status = st.plugin or "PreEnqueue", st
            self._unschedulable[qpi.key] = qpi
            return
        qpi.gating_plugin, qpi.gating_status = "", None
        self._unschedulable.pop(qpi.key, None)
        self._push_active(qpi)

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        entry = (-qpi.pod_info.priority, qpi.timestamp, next(self._seq), qpi.key)
        self._active_entries[qpi.key] = entry
        heapq.heappush(self._active, entry)
        if self.notify:
            self.notify()

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        self._backoff_keys.add(qpi.key)
        heapq.heappush(self._backoff, (qpi.backoff_until, next(self._seq), qpi.key))

    # -- popping -----------------------------------------------------------------------------

    def pop_nowait(self) -> QueuedPodInfo | None:
        """The next pod to schedule, or None. Flushes completed backoffs first."""
        self.flush_backoff_completed()
        while self._active:
            entry = heapq.heappop(self._active)
            key = entry[3]
            if self._active_entries.get(key) is not entry:
                continue  # stale: removed or re-added
            del self._active_entries[key]
            qpi = self._infos[key]
            qpi.attempts += 1
            if qpi.initial_attempt_timestamp is None:
                qpi.initial_attempt_timestamp = self.clock()
            self.scheduling_cycle += 1
            self._in_flight[key] = qpi
            return qpi
        return None

    def done(self, key: str) -> None:
        """The pod was scheduled (or deleted): forget it."""
        self._in_flight.pop(key, None)
        self._infos.pop(key, None)
        if not self._in_flight:
            self._events_during_flight.clear()

    # -- failures ----------------------------------------------------------------------------

    def add_unschedulable(self, qpi: QueuedPodInfo, unschedulable_plugins: Iterable[str] = (),
                          pod_scheduling_cycle: int | None = None) -> None:
        """Return a pod that failed to schedule. If a relevant event happened while it was being
        scheduled it goes to backoff at once; otherwise it waits in unschedulable."""
        key = qpi.key
        cycle = self.scheduling_cycle if pod_scheduling_cycle is None else pod_scheduling_cycle
        self._in_flight.pop(key, None)
        if key not in self._infos:
            return  # deleted meanwhile
        qpi.unschedulable_plugins = set(unschedulable_plugins)
        qpi.timestamp = self.clock()
        qpi.backoff_until = qpi.timestamp + backoff_duration(qpi.attempts, self.initial_backoff,
                                                             self.max_backoff)
        missed = self._move_request_cycle >= cycle or any(
            self._worth_requeuing(qpi, ev) for ev in self._events_during_flight)
        if not self._in_flight:
            self._events_during_flight.clear()
        if missed or not qpi.unschedulable_plugins:
            self._requeue(qpi)  # errors (no plugin to blame) retry after backoff
        else:
            self._unschedulable[key] = qpi

    def _requeue(self, qpi: QueuedPodInfo) -> None:
        self._unschedulable.pop(qpi.key, None)
        if qpi.backoff_until > self.clock():
            self._push_backoff(qpi)
        else:
            self._push_active(qpi)

    def flush_backoff_completed(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if key not in self._backoff_keys:
                continue
            self._backoff_keys.discard(key)
            qpi = self._infos.get(key)
            if qpi is not None and key not in self._active_entries:
                self._push_active(qpi)

    def flush_unschedulable_leftover(self) -> None:
        """Pods stuck in unschedulable for 5 minutes get another try regardless of events."""
        now = self.clock()
        stale = [q for q in self._unschedulable.values()
                 if not q.gating_plugin and now - q.timestamp >= MAX_IN_UNSCHEDULABLE]
        for qpi in stale:
            self._requeue(qpi)

    def next_wakeup(self) -> float | None:
        """When the earliest backoff ends (for the shell's timer)."""
        while self._backoff and self._backoff[0][2] not in self._backoff_keys:
            heapq.heappop(self._backoff)
        return self._backoff[0][0] if self._backoff else None

    # -- events ------------------------------------------------------------------------------

    def _worth_requeuing(self, qpi: QueuedPodInfo, event: ClusterEvent) -> bool:
        if event.resource == "*":
            return True
        if not qpi.unschedulable_plugins:
            return True
        return any(reg.matches(event) for name in qpi.unschedulable_plugins
                   for reg in self.events.get(name, ()))

    def move_all_to_active_or_backoff(self, event: ClusterEvent) -> int:
        """A cluster event happened: requeue unschedulable pods it could help. Returns how many."""
        moved = 0
        for qpi in list(self._unschedulable.values()):
            if qpi.gating_plugin:
                continue
            if self._worth_requeuing(qpi, event):
                self._requeue(qpi)
                moved += 1
        if self._in_flight:
            self._events_during_flight.append(event)
        self._move_request_cycle = self.scheduling_cycle
        return moved

    def node_added(self) -> int:
        return self.move_all_to_active_or_backoff(ClusterEvent(NODE, ActionType.ADD))

    def assigned_pod_deleted(self) -> int:
        return self.move_all_to_active_or_backoff(ClusterEvent(ASSIGNED_POD, ActionType.DELETE))

    def update(self, pod: Obj) -> None:
        """An unscheduled pod changed: gated pods re-run PreEnqueue; unschedulable ones retry."""
        key = pod_key(pod)
        qpi = self._infos.get(key)
        if qpi is None:
            self.add(pod)
            return
        qpi.pod_info = PodInfo(pod)
        if key in self._active_entries:
            self._push_active(qpi)  # re-sort with the new priority; the old entry goes stale
        elif qpi.gating_plugin:
            self._move_to_active_or_gate(qpi)
        elif key in self._unschedulable:
            ev = ClusterEvent(UNSCHEDULED_POD, ActionType.UPDATE)
            if self._worth_requeuing(qpi, ev) or not qpi.unschedulable_plugins:
                self._requeue(qpi)

    def delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        self._infos.pop(key, None)
        self._active_entries.pop(key, None)
        self._backoff_keys.discard(key)
        self._unschedulable.pop(key, None)
        self._in_flight.pop(key, None)

    # -- introspection -----------------------------------------------------------------------

    def statistics(self) -> dict[str, int]:
        gated = sum(1 for q in self._unschedulable.values() if q.gating_plugin)
        return {"active": len(self._active_entries), "backoff": len(self._backoff_keys),
                "unschedulable": len(self._unschedulable) - gated, "gated": gated,
                "in_flight": len(self._in_flight)}

    def where(self, pod: Obj) -> str | None:
        """"active" / "backoff" / "unschedulable" / "gated" / "in_flight" / None."""
        key = pod_key(pod)
        if key in self._active_entries:
            return "active"
        if key in self._backoff_keys:
            return "backoff"
        if key in self._unschedulable:
            return "gated" if self._unschedulable[key].gating_plugin else "unschedulable"
        if key in self._in_flight:
            return "in_flight"
        return None
