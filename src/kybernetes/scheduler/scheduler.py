"""The scheduler's I/O shell: informers in, the pure core in the middle, API writes out.

    sched = Scheduler(client)                 # the default profile (registry.new_framework())
    await sched.run()                         # returns only when cancelled

Informers feed the ``Cache`` (nodes, assigned pods, namespace labels, PDBs) and the
``SchedulingQueue`` (unassigned pods whose ``spec.schedulerName`` names one of our profiles and
that are not terminating). One loop pops a pod, brings the snapshot up to date (only changed
NodeInfos are copied), runs ``Framework.run_scheduling_cycle`` and, on success, assumes the pod
onto its node so the next cycle already counts it. The binding cycle (``POST pods/binding``) runs
apart from the scheduling cycle in a small pool of writer tasks (``bind_concurrency``); a failed
bind forgets the assumed pod and puts the pod back after a back-off.

When no node fits, the pod's ``PodScheduled`` condition becomes False/Unschedulable with the
upstream-style message (written only when it changed), a ``FailedScheduling`` Warning event is
recorded (repeats aggregated by the ``EventRecorder``) and the pod waits in the unschedulable
queue until an informer event that one of the rejecting plugins registered for (or the 5-minute
leftover flush) moves it back: no busy loop. When preemption nominates a node, the shell sets
``status.nominatedNodeName``, marks the victims ``DisruptionTarget``, deletes them (with their
grace period) and records ``Preempted`` events on them.

Priority: upstream's admission plugin fills ``spec.priority``; as a fallback the scheduler
resolves it itself from ``priorityClassName`` (or the ``globalDefault`` class).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from ..api.meta import now_rfc3339
from ..client.errors import ApiError, NotFound, TransportError
from ..client.events import NORMAL, WARNING, EventRecorder
from ..client.informer import InformerFactory, SharedInformer
from ..client.keys import DeletedFinalStateUnknown, key_of, tombstone_object
from ..client.resources import (
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODDISRUPTIONBUDGETS,
    PODS,
    PRIORITYCLASSES,
    STORAGECLASSES,
)
from ..client.rest import ApiClient
from ..util.clock import Clock, RealClock, TimerHandle
from .cache import Cache
from .framework.interfaces import ASSIGNED_POD, NODE, ActionType, ClusterEvent
from .framework.runtime import FitError, Framework, SchedulingError
from .framework.types import Obj, PodInfo, Resource, Snapshot, compute_pod_requests, pod_key
from .plugins import volume_binding
from .plugins.volume_binding import VolumeListers
from .queue import QueuedPodInfo, SchedulingQueue, backoff_duration
from .registry import new_framework

log = logging.getLogger(__name__)

COMPONENT = "default-scheduler"
DEFAULT_BIND_CONCURRENCY = 64  # binds in flight: more lets the API server group-commit them
MAX_PENDING_WRITES = 1024
LEFTOVER_FLUSH_INTERVAL = 30.0  # how often pods stuck in unschedulable are checked (upstream)
YIELD_EVERY = 8                 # scheduling cycles between yields to the event loop

REASON_UNSCHEDULABLE = "Unschedulable"
REASON_SCHEDULER_ERROR = "SchedulerError"
Job = Callable[[], Coroutine[Any, Any, None]]


# ------------------------------------------------------------------------------------------------
# pure helpers


def is_assigned(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed")


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _conditions_by_type(node: Mapping[str, Any]) -> dict[str, str]:
    return {str(c.get("type")): str(c.get("status"))
            for c in ((node.get("status") or {}).get("conditions") or [])}


def node_update_action(old: Mapping[str, Any], new: Mapping[str, Any]) -> ActionType:
    """Which scheduling-relevant parts of a node changed (0 for heartbeats and the like)."""
    action = ActionType(0)
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    ost, nst = old.get("status") or {}, new.get("status") or {}
    if ost.get("allocatable") != nst.get("allocatable"):
        action |= ActionType.UPDATE_NODE_ALLOCATABLE
    if (om.get("labels") or {}) != (nm.get("labels") or {}):
        action |= ActionType.UPDATE_NODE_LABEL
    if (os_.get("taints") or []) != (ns_.get("taints") or []) or \
            bool(os_.get("unschedulable")) != bool(ns_.get("unschedulable")):
        action |= ActionType.UPDATE_NODE_TAINT
    if _conditions_by_type(old) != _conditions_by_type(new):
        action |= ActionType.UPDATE_NODE_CONDITION
    if (om.get("annotations") or {}) != (nm.get("annotations") or {}):
        action |= ActionType.UPDATE_NODE_ANNOTATION
    return action


def _scaled_down(old: Resource, new: Resource) -> bool:
    return any(new.get(n) < old.get(n) for n in set(old.names()) | {"cpu", "memory"})


def assigned_pod_update_action(old: Mapping[str, Any], new: Mapping[str, Any]) -> ActionType:
    """Which scheduling-relevant parts of a bound pod changed (labels, smaller requests)."""
    action = ActionType(0)
    if ((old.get("metadata") or {}).get("labels") or {}) != ((new.get("metadata") or {}).get("labels") or {}):
        action |= ActionType.UPDATE_POD_LABEL
    if ((old.get("spec") or {}).get("containers") != (new.get("spec") or {}).get("containers")
            and _scaled_down(compute_pod_requests(old)[0], compute_pod_requests(new)[0])):
        action |= ActionType.UPDATE_POD_SCALE_DOWN
    return action


def resolve_priority(pod: Obj, classes: Mapping[str, tuple[int, bool, str]]) -> Obj:
    """``pod`` with ``spec.priority`` filled from its PriorityClass (or the global default) when
    the API left it unset; the input is never modified (a shallow copy is returned)."""
    spec = pod.get("spec") or {}
    if spec.get("priority") is not None:
        return pod
    name = spec.get("priorityClassName") or ""
    value, policy = 0, ""
    if name and name in classes:
        value, _, policy = classes[name]
    elif not name:
        for v, default, pol in classes.values():
            if default:
                value, policy = v, pol
                break
    if not value and not policy:
        return pod
    new_spec = {**spec, "priority": value}
    if policy and not spec.get("preemptionPolicy"):
        new_spec["preemptionPolicy"] = policy
    return {**pod, "spec": new_spec}


def scheduled_condition(pod: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(status, reason, message) of the pod's PodScheduled condition, if any."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled":
            return str(c.get("status") or ""), str(c.get("reason") or ""), str(c.get("message") or "")
    return None


def failure_status_patch(pod: Mapping[str, Any], reason: str, message: str, nominated: str,
                         now: str) -> Obj | None:
    """The strategic-merge patch for ``pods/status`` after a failed attempt, or None when the
    pod already shows exactly this (condition unchanged, nomination unchanged)."""
    status = pod.get("status") or {}
    current = scheduled_condition(pod)
    want = ("False", reason, message)
    nominated_changed = bool(nominated) and status.get("nominatedNodeName") != nominated
    if current == want and not nominated_changed:
        return None
    patch: Obj = {"status": {}}
    if current != want:
        cond: Obj = {"type": "PodScheduled", "status": "False", "reason": reason,
                     "message": message, "lastProbeTime": None}
        cond["lastTransitionTime"] = (now if current is None or current[0] != "False"
                                      else _transition_time(pod) or now)
        patch["status"]["conditions"] = [cond]
    if nominated_changed:
        patch["status"]["nominatedNodeName"] = nominated
    return patch


def _transition_time(pod: Mapping[str, Any]) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled":
            return c.get("lastTransitionTime")
    return None


def binding_for(pod: Mapping[str, Any], node: str) -> Obj:
    meta = pod.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                         "uid": meta.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def with_node_name(pod: Obj, node: str) -> Obj:
    """A copy of ``pod`` assumed onto ``node`` (cached objects stay untouched)."""
    return {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}}


def _with_nominated(pod: Obj, node: str) -> Obj:
    return {**pod, "status": {**(pod.get("status") or {}), "nominatedNodeName": node}}


def _marked_terminating(pod: Obj, now: str) -> Obj:
    return {**pod, "metadata": {**(pod.get("metadata") or {}), "deletionTimestamp": now}}


def _as_pod(pod: Obj) -> Obj:
    """Listed items carry no kind/apiVersion; events need them in ``involvedObject``."""
    if pod.get("kind") and pod.get("apiVersion"):
        return pod
    return {**pod, "kind": "Pod", "apiVersion": "v1"}


def _ns_name(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


# ------------------------------------------------------------------------------------------------
# the shell


class Scheduler:
    """Schedules pending pods for one or more profiles (one ``Framework`` per schedulerName)."""

    def __init__(self, client: ApiClient, frameworks: Framework | Sequence[Framework] | None = None,
                 *, clock: Clock | None = None, identity: str = "",
                 bind_concurrency: int = DEFAULT_BIND_CONCURRENCY,
                 recorder: EventRecorder | None = None,
                 leftover_flush_interval: float = LEFTOVER_FLUSH_INTERVAL) -> None:
        if frameworks is None:
            frameworks = [new_framework()]
        elif isinstance(frameworks, Framework):
            frameworks = [frameworks]
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.identity = identity
        self.profiles: dict[str, Framework] = {fw.scheduler_name: fw for fw in frameworks}
        self.bind_concurrency = max(1, bind_concurrency)
        self.leftover_flush_interval = leftover_flush_interval
        self.recorder = recorder or EventRecorder(client, COMPONENT, identity, clock=self.clock)
        self.factory = InformerFactory(client, clock=self.clock)
        self.cache = Cache()
        events: dict[str, tuple[ClusterEvent, ...]] = {}
        for fw in self.profiles.values():
            events.update(fw.events_to_register())
        self._wakeup = asyncio.Event()
        self.queue = SchedulingQueue(self.clock.monotonic, pre_enqueue=self._pre_enqueue,
                                     events_to_register=events, notify=self._wakeup.set)
        self._snapshot: Snapshot | None = None
        self._jobs: asyncio.Queue[Job] = asyncio.Queue(maxsize=MAX_PENDING_WRITES)
        self._priority_classes: dict[str, tuple[int, bool, str]] = {}
        self._written: dict[str, tuple[str, str, str]] = {}  # pod key -> last failure status sent
        self._timers: set[TimerHandle] = set()
        self._pods: SharedInformer | None = None
        self.synced = asyncio.Event()
        # counters (statistics())
        self.attempts = 0
        self.scheduled = 0
        self.unschedulable = 0
        self.errors = 0
        self.bound = 0
        self.bind_failures = 0
        self.status_writes = 0
        self.preemptions = 0
        self.victims_deleted = 0

    # -- routing ---------------------------------------------------------------------------------

    def framework_for(self, pod: Mapping[str, Any]) -> Framework | None:
        name = (pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
        return self.profiles.get(name)

    def responsible_for(self, pod: Mapping[str, Any]) -> bool:
        """An unassigned pod this scheduler should place (our profile, alive, not finished)."""
        return (not is_assigned(pod) and not is_terminating(pod) and not is_terminal(pod)
                and self.framework_for(pod) is not None)

    def _pre_enqueue(self, pi: PodInfo) -> Any:
        fw = self.framework_for(pi.pod)
        return fw.run_pre_enqueue_plugins(pi) if fw is not None else None

    def _resolve(self, pod: Obj) -> Obj:
        return resolve_priority(pod, self._priority_classes)

    def _cluster_event(self, resource: str, action: ActionType) -> None:
        if self.queue.move_all_to_active_or_backoff(ClusterEvent(resource, action)):
            # pods may have gone to backoff, which does not notify: recompute the wake-up time
            self._wakeup.set()

    # -- informer handlers (quick: update cache/queue only) ----------------------------------

    def _on_priority_class(self, pc: Obj) -> None:
        name = (pc.get("metadata") or {}).get("name") or ""
        self._priority_classes[name] = (int(pc.get("value") or 0), bool(pc.get("globalDefault")),
                                        str(pc.get("preemptionPolicy") or ""))

    def _on_priority_class_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._priority_classes.pop((tombstone_object(obj).get("metadata") or {}).get("name") or "", None)

    def _on_namespace(self, ns: Obj) -> None:
        self.cache.set_namespace(ns)

    def _on_namespace_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.namespace_labels.pop((tombstone_object(obj).get("metadata") or {}).get("name") or "", None)

    def _on_pdb(self, pdb: Obj) -> None:
        self.cache.set_pdb(pdb)

    def _on_pdb_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.remove_pdb(tombstone_object(obj))

    def _on_node_add(self, node: Obj) -> None:
        self.cache.add_node(node)
        self._cluster_event(NODE, ActionType.ADD)

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        action = node_update_action(old, new)
        if action:
            self._cluster_event(NODE, action)

    def _on_node_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.remove_node(str((tombstone_object(obj).get("metadata") or {}).get("name") or ""))

    def _on_pod_add(self, pod: Obj) -> None:
        if is_assigned(pod):
            self._assigned_pod_seen(pod, None)
        elif self.responsible_for(pod) and not self.cache.is_assumed(pod):
            self.queue.add(self._resolve(pod))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if is_assigned(new):
            self._assigned_pod_seen(new, old if is_assigned(old) else None)
        elif self.responsible_for(new):
            if not self.cache.is_assumed(new):  # our own bind is in flight: leave it alone
                self.queue.update(self._resolve(new))
                self._wakeup.set()  # it may have moved to backoff
        else:
            self._forget_pending(new)

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = tombstone_object(obj)
        if is_assigned(pod):
            self._assigned_pod_gone(pod)
        else:
            self._forget_pending(pod)

    def _forget_pending(self, pod: Obj) -> None:
        self.queue.delete(pod)
        self._written.pop(pod_key(pod), None)

    def _assigned_pod_seen(self, pod: Obj, old: Obj | None) -> None:
        if is_terminal(pod):
            self._assigned_pod_gone(pod)
            return
        known = self.cache.get_pod(pod) is not None and not self.cache.is_assumed(pod)
        self._forget_pending(pod)  # bound (by us or anyone): no longer pending
        self.cache.add_pod(self._resolve(pod))
        if not known:
            self._cluster_event(ASSIGNED_POD, ActionType.ADD)
        elif old is not None:
            action = assigned_pod_update_action(old, pod)
            if action:
                self._cluster_event(ASSIGNED_POD, action)

    def _assigned_pod_gone(self, pod: Obj) -> None:
        if self.cache.get_pod(pod) is None:
            return
        self.cache.remove_pod(pod)
        self._cluster_event(ASSIGNED_POD, ActionType.DELETE)

    def _register_handlers(self, informers: Mapping[str, SharedInformer]) -> None:
        """In dependency order, after the initial lists: priority classes and namespaces before
        the pods that refer to them (``add_event_handler`` replays what is cached)."""
        informers["priorityclasses"].add_event_handler(
            self._on_priority_class, lambda _o, n: self._on_priority_class(n),
            self._on_priority_class_delete)
        informers["namespaces"].add_event_handler(
            self._on_namespace, lambda _o, n: self._on_namespace(n), self._on_namespace_delete)
        informers["pdbs"].add_event_handler(
            self._on_pdb, lambda _o, n: self._on_pdb(n), self._on_pdb_delete)
        informers["nodes"].add_event_handler(self._on_node_add, self._on_node_update,
                                             self._on_node_delete)
        informers["pods"].add_event_handler(self._on_pod_add, self._on_pod_update,
                                            self._on_pod_delete)
        claims, volumes, classes = informers["pvcs"], informers["pvs"], informers["storageclasses"]
        self.cache.volumes = VolumeListers(
            claim=lambda ns, name: claims.lister().get(name, ns),
            volume=lambda name: volumes.lister().get(name),
            storage_class=lambda name: classes.lister().get(name))
        for inf, resource in ((claims, volume_binding.PVC), (volumes, volume_binding.PV),
                              (classes, volume_binding.STORAGE_CLASS)):
            inf.add_event_handler(
                lambda _o, r=resource: self._cluster_event(r, ActionType.ADD),
                lambda _old, _new, r=resource: self._cluster_event(r, ActionType.UPDATE), None)

    # -- the scheduling cycle (synchronous: the cache cannot change under it) ------------------

    def schedule_one(self, qpi: QueuedPodInfo) -> list[Job]:
        """Try one popped pod; return the API writes to perform (bind, status, preemption)."""
        pod = qpi.pod
        fw = self.framework_for(pod)
        if fw is None:
            self.queue.done(qpi.key)
            return []
        self.attempts += 1
        cycle = self.queue.scheduling_cycle
        self._snapshot = self.cache.update_snapshot(self._snapshot)
        try:
            outcome = fw.run_scheduling_cycle(qpi.pod_info, self._snapshot)
        except SchedulingError as e:
            self.errors += 1
            jobs = self._failed(qpi, REASON_SCHEDULER_ERROR, str(e), "")
            self.queue.add_unschedulable(qpi, (), cycle)
            return jobs
        if isinstance(outcome, FitError):
            return self._unschedulable(fw, qpi, outcome, cycle)
        assumed = with_node_name(pod, outcome.suggested_host)
        try:
            self.cache.assume_pod(assumed)
        except ValueError:  # the informer already holds it as bound
            self.queue.done(qpi.key)
            return []
        self.queue.done(qpi.key)
        self._written.pop(qpi.key, None)
        self.scheduled += 1
        attempts, host = qpi.attempts, outcome.suggested_host
        return [lambda: self._bind(assumed, host, attempts)]

    def _unschedulable(self, fw: Framework, qpi: QueuedPodInfo, fit: FitError, cycle: int) -> list[Job]:
        self.unschedulable += 1
        jobs: list[Job] = []
        nominated = ""
        result = fit.post_filter_result
        if result is not None and result.nominated_node_name:
            nominated = result.nominated_node_name
        jobs.extend(self._failed(qpi, REASON_UNSCHEDULABLE, str(fit), nominated))
        if nominated and result is not None:
            jobs.extend(self._preempt(fw, qpi, nominated, result.victims))
        self.queue.add_unschedulable(qpi, fit.diagnosis.unschedulable_plugins, cycle)
        return jobs

    def _failed(self, qpi: QueuedPodInfo, reason: str, message: str, nominated: str) -> list[Job]:
        """Event + (if changed) status write for a failed attempt."""
        pod = qpi.pod
        self.recorder.event(_as_pod(pod), WARNING, "FailedScheduling", message)
        key = qpi.key
        if self._written.get(key) == (reason, message, nominated):
            return []
        patch = failure_status_patch(pod, reason, message, nominated, now_rfc3339(self.clock.wall()))
        self._written[key] = (reason, message, nominated)
        if patch is None:
            return []
        ns, name = _ns_name(pod)
        return [lambda: self._patch_status(ns, name, key, patch)]

    def _preempt(self, fw: Framework, qpi: QueuedPodInfo, node: str,
                 victims: Sequence[Obj]) -> list[Job]:
        """Nominate ``node`` for the pod and evict ``victims`` from it."""
        self.preemptions += 1
        qpi.pod_info = PodInfo(_with_nominated(qpi.pod, node))
        now = now_rfc3339(self.clock.wall())
        for v in victims:  # count them as leaving at once, so a retry does not pick more
            if self.cache.get_pod(v) is not None:
                self.cache.update_pod(_marked_terminating(v, now))
        preemptor = qpi.pod
        return [lambda v=v: self._evict(fw, preemptor, node, v) for v in victims]  # type: ignore[misc]

    # -- the binding cycle and other writes (run in the writer pool) ------------------------------

    async def _bind(self, assumed: Obj, node: str, attempts: int) -> None:
        ns, name = _ns_name(assumed)
        try:
            await self.client.create(PODS, binding_for(assumed, node), ns, subresource="binding",
                                     name=name)
        except (ApiError, TransportError) as e:
            self.bind_failures += 1
            log.info("binding %s/%s to %s failed: %s", ns, name, node, e)
            self.cache.forget_pod(assumed)
            self._cluster_event(ASSIGNED_POD, ActionType.DELETE)  # its room is free again
            if not isinstance(e, NotFound):
                self.recorder.event(_as_pod(assumed), WARNING, "FailedScheduling", f"Binding rejected: {e}")
            self._requeue_later(assumed, backoff_duration(max(1, attempts)))
            return
        self.bound += 1
        self.recorder.event(_as_pod(assumed), NORMAL, "Scheduled", f"Successfully assigned {ns}/{name} to {node}")

    def _requeue_later(self, pod: Obj, delay: float) -> None:
        key = pod_key(pod)
        handle: TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            latest = self._pods.indexer.get(key_of(pod)) if self._pods is not None else None
            if latest is None or pod_key(latest) != key or not self.responsible_for(latest):
                return
            if self.queue.where(latest) is None and not self.cache.is_assumed(latest):
                self.queue.add(self._resolve(latest))

        handle = self.clock.call_later(delay, fire)
        self._timers.add(handle)

    async def _patch_status(self, ns: str, name: str, key: str, patch: Obj) -> None:
        try:
            await self.client.patch_status(PODS, name, patch, ns, patch_type="strategic")
            self.status_writes += 1
        except NotFound:
            pass
        except (ApiError, TransportError) as e:
            self._written.pop(key, None)  # try again on the next failure
            log.warning("updating status of pod %s/%s failed: %s", ns, name, e)

    async def _evict(self, fw: Framework, preemptor: Obj, node: str, victim: Obj) -> None:
        ns, name = _ns_name(victim)
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": f"{fw.scheduler_name}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": now_rfc3339(self.clock.wall())}
        uid = (victim.get("metadata") or {}).get("uid")
        try:
            await self.client.patch_status(PODS, name, {"status": {"conditions": [cond]}}, ns,
                                           patch_type="strategic")
            await self.client.delete(PODS, name, ns, preconditions={"uid": uid} if uid else None)
        except NotFound:
            return
        except (ApiError, TransportError) as e:
            log.warning("preempting pod %s/%s failed: %s", ns, name, e)
            return
        self.victims_deleted += 1
        puid = (preemptor.get("metadata") or {}).get("uid", "")
        self.recorder.event(_as_pod(victim), NORMAL, "Preempted", f"Preempted by pod {puid} on node {node}")

    async def _writer(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except Exception:
                log.exception("scheduler write failed")
            finally:
                self._jobs.task_done()

    async def wait_for_writes(self) -> None:
        """Wait until every queued API write has finished (tests, benchmarks)."""
        await self._jobs.join()

    # -- loops -----------------------------------------------------------------------------------

    async def _wait_for_work(self, next_flush: float) -> None:
        now = self.clock.monotonic()
        wake = self.queue.next_wakeup()
        deadline = next_flush if wake is None else min(wake, next_flush)
        handle = self.clock.call_later(max(0.0, deadline - now), self._wakeup.set)
        try:
            await self._wakeup.wait()
        finally:
            handle.cancel()

    async def _schedule_loop(self) -> None:
        next_flush = self.clock.monotonic() + self.leftover_flush_interval
        done = 0
        while True:
            self._wakeup.clear()
            if self.clock.monotonic() >= next_flush:
                self.queue.flush_unschedulable_leftover()
                next_flush = self.clock.monotonic() + self.leftover_flush_interval
            qpi = self.queue.pop_nowait()
            if qpi is None:
                await self._wait_for_work(next_flush)
                continue
            for job in self.schedule_one(qpi):
                await self._jobs.put(job)
            done += 1
            if done % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def run(self) -> None:
        """Start informers, wait for their first lists, then schedule until cancelled."""
        informers = {
            "priorityclasses": self.factory.informer(PRIORITYCLASSES),
            "namespaces": self.factory.informer(NAMESPACES),
            "pdbs": self.factory.informer(PODDISRUPTIONBUDGETS),
            "nodes": self.factory.informer(NODES),
            "pods": self.factory.informer(PODS),
            "pvcs": self.factory.informer(PERSISTENTVOLUMECLAIMS),
            "pvs": self.factory.informer(PERSISTENTVOLUMES),
            "storageclasses": self.factory.informer(STORAGECLASSES),
        }
        self._pods = informers["pods"]
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.factory.run(), name="scheduler/informers")
                tg.create_task(self.recorder.run(), name="scheduler/events")
                for i in range(self.bind_concurrency):
                    tg.create_task(self._writer(), name=f"scheduler/writer-{i}")
                await self.factory.wait_for_sync()
                self._register_handlers(informers)
                self.synced.set()
                log.info("scheduler %s: caches synced (%d nodes); scheduling",
                         self.identity or COMPONENT, self.cache.node_count())
                await self._schedule_loop()
        finally:
            for h in list(self._timers):
                h.cancel()
            self._timers.clear()

    def statistics(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "scheduled": self.scheduled, "bound": self.bound,
                "unschedulable": self.unschedulable, "errors": self.errors,
                "bind_failures": self.bind_failures, "status_writes": self.status_writes,
                "preemptions": self.preemptions, "victims_deleted": self.victims_deleted,
                "pending_writes": self._jobs.qsize(), "queue": self.queue.statistics(),
                "nodes": self.cache.node_count(), "events": self.recorder.statistics()}
