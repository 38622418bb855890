"""The pod garbage collector (upstream ``pod-garbage-collector``).

Every ``period`` seconds (upstream 20 s) it looks at all pods and nodes and force-deletes
(grace period 0, uid precondition) what nobody else will clean up:

* **terminated pods over the threshold**: when more than ``terminated_pod_gc_threshold`` pods are
  Succeeded/Failed (default 12,500; 0 disables), the surplus goes, evicted ones first, then oldest;
* **terminating pods on out-of-service nodes**: pods with a deletionTimestamp on a node that is not
  Ready and carries the ``node.kubernetes.io/out-of-service`` taint;
* **orphaned pods**: pods bound to a node that does not exist. A missing node is quarantined first
  (upstream 40 s) and then confirmed with an uncached GET, so a node that is re-registering or
  lagging in the cache does not lose its pods; such pods are marked Failed with the condition
  DisruptionTarget (reason DeletionByPodGC) before the delete;
* **unscheduled terminating pods**: a deletionTimestamp but no node (no kubelet will finish them).

A pod that is not yet terminal is patched to phase Failed before it is deleted (no kubelet will
ever report its end). ``plan_gc`` is pure; ``PodGCController.sync`` reads the listers, confirms
missing nodes and carries the plan out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api import meta as m
from ..client import Controller, Requeue
from ..client.errors import ApiError, Conflict, NotFound
from ..client.keys import ObjectKey, key_of
from ..client.resources import NODES, PODS
from ..util.clock import Clock

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "pod-garbage-collector"
ALIASES = ("podgc",)

GC_CHECK_PERIOD = 20.0
QUARANTINE_TIME = 40.0
TERMINATED_POD_GC_THRESHOLD = 12500
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
GC_KEY = ObjectKey("podgc")
MAX_IN_FLIGHT = 32

# why a pod is deleted (also the reason of the DisruptionTarget condition for orphans)
TERMINATED = "Terminated"
TERMINATING_OUT_OF_SERVICE = "TerminatingOutOfService"
ORPHANED = "Orphaned"
TERMINATING_UNSCHEDULED = "TerminatingUnscheduled"


# ------------------------------------------------------------------------------------------------
# pure
# ------------------------------------------------------------------------------------------------
def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _node_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def is_terminated(pod: Mapping[str, Any]) -> bool:
    """Upstream ``isPodTerminated``: any phase but Pending, Running and Unknown (an unset phase
    counts as Pending)."""
    return _phase(pod) not in ("", "Pending", "Running", "Unknown")


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_md(pod).get("deletionTimestamp"))


def is_evicted(pod: Mapping[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Failed" and st.get("reason") == "Evicted"


def node_ready(node: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


def out_of_service(node: Mapping[str, Any]) -> bool:
    """Not Ready and tainted ``node.kubernetes.io/out-of-service`` (any effect)."""
    taints = (node.get("spec") or {}).get("taints") or ()
    return not node_ready(node) and any(t.get("key") == OUT_OF_SERVICE_TAINT for t in taints)


def gc_order(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """Evicted pods first, then oldest first, then by name."""
    created = m.parse_time(_md(pod).get("creationTimestamp"))
    return (0 if is_evicted(pod) else 1, created.timestamp() if created else 0.0, str(_md(pod).get("name") or ""))


def terminated_to_delete(pods: Iterable[Obj], threshold: int) -> list[Obj]:
    """The terminated pods beyond ``threshold`` (0 disables), in ``gc_order``."""
    if threshold <= 0:
        return []
    done = [p for p in pods if is_terminated(p)]
    surplus = len(done) - threshold
    return sorted(done, key=gc_order)[:surplus] if surplus > 0 else []


def update_quarantine(pods: Iterable[Obj], node_names: set[str], quarantine: Mapping[str, float],
                      now: float) -> dict[str, float]:
    """Missing node -> when it was first seen missing; nodes that exist (or have no pods) drop out."""
    out: dict[str, float] = {}
    for pod in pods:
        node = _node_name(pod)
        if node and node not in node_names:
            out[node] = quarantine.get(node, now)
    return out


@dataclass(frozen=True)
class Victim:
    pod: Obj
    reason: str      # TERMINATED | TERMINATING_OUT_OF_SERVICE | ORPHANED | TERMINATING_UNSCHEDULED


@dataclass(frozen=True)
class GCPlan:
    delete: tuple[Victim, ...]                  # force-delete these now
    quarantine: dict[str, float]                # missing nodes and since when
    check_nodes: tuple[str, ...]                # quarantine over: confirm they are gone (uncached)


def plan_gc(pods: Sequence[Obj], nodes: Sequence[Obj], *, threshold: int, quarantine: Mapping[str, float],
            quarantine_time: float, now: float) -> GCPlan:
    """Pure: what one GC pass deletes now and which missing nodes must be confirmed gone.

    ``now`` and the quarantine stamps are monotonic seconds. Orphans of confirmed nodes are
    added by the caller with ``orphans_of``.
    """
    by_name = {str(_md(n).get("name")): n for n in nodes}
    victims: list[Victim] = [Victim(p, TERMINATED) for p in terminated_to_delete(pods, threshold)]
    chosen = {key_of(v.pod) for v in victims}
    for pod in pods:
        if not is_terminating(pod) or key_of(pod) in chosen:
            continue
        node = by_name.get(_node_name(pod))
        if node is not None and out_of_service(node):
            victims.append(Victim(pod, TERMINATING_OUT_OF_SERVICE))
            chosen.add(key_of(pod))
    for pod in pods:
        if is_terminating(pod) and not _node_name(pod) and key_of(pod) not in chosen:
            victims.append(Victim(pod, TERMINATING_UNSCHEDULED))
            chosen.add(key_of(pod))
    q = update_quarantine(pods, set(by_name), quarantine, now)
    due = tuple(sorted(n for n, since in q.items() if now - since >= quarantine_time))
    return GCPlan(tuple(victims), q, due)


def orphans_of(pods: Iterable[Obj], gone: set[str], skip: Iterable[str] = ()) -> list[Victim]:
    """Pods bound to a node in ``gone`` (except the keys in ``skip``)."""
    skipped = set(skip)
    return [Victim(p, ORPHANED) for p in pods if _node_name(p) in gone and key_of(p) not in skipped]


def failed_status(pod: Mapping[str, Any], reason: str, now: dt.datetime) -> Obj | None:
    """The status patch that marks ``pod`` Failed before its forced delete (None: already terminal)."""
    if _phase(pod) in ("Succeeded", "Failed"):
        return None
    status: Obj = {"phase": "Failed"}
    if reason == ORPHANED:
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists", "lastProbeTime": None,
                "lastTransitionTime": m.now_rfc3339(now)}
        status["conditions"] = m.set_condition(list((pod.get("status") or {}).get("conditions") or []), cond)
    return status


# ------------------------------------------------------------------------------------------------
# the controller
# ------------------------------------------------------------------------------------------------
class PodGCController(Controller):
    """One key, ``podgc``, synced every ``period`` seconds (upstream ``wait.Until(gc, period)``)."""

    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None, clock: Clock | None = None,
                 period: float = GC_CHECK_PERIOD, quarantine_time: float = QUARANTINE_TIME,
                 terminated_threshold: int = TERMINATED_POD_GC_THRESHOLD) -> None:
        super().__init__(NAME, client, workers=1, factory=factory, clock=clock)
        self.period = period
        self.quarantine_time = quarantine_time
        self.threshold = terminated_threshold
        self.pods = self.informer(PODS, handle=False)
        self.nodes = self.informer(NODES, handle=False)
        self.quarantine: dict[str, float] = {}
        self.deleted: dict[str, int] = {}
        self.queue.add(GC_KEY)

    async def sync(self, key: ObjectKey) -> None:
        pods = self.pods.lister().list()
        plan = plan_gc(pods, self.nodes.lister().list(), threshold=self.threshold, quarantine=self.quarantine,
                       quarantine_time=self.quarantine_time, now=self.clock.monotonic())
        self.quarantine = plan.quarantine
        gone = {n for n in plan.check_nodes if not await self._node_exists(n)}
        victims = list(plan.delete) + orphans_of(pods, gone, {key_of(v.pod) for v in plan.delete})
        sem = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def one(v: Victim) -> None:
            async with sem:
                await self._force_delete(v)

        await asyncio.gather(*(one(v) for v in victims))
        raise Requeue(after=self.period)

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get(NODES, name)
        except NotFound:
            return False
        except ApiError as e:   # unsure: keep the pods, look again next pass
            self.log.warning("checking node %s: %s", name, e)
            return True
        return True

    async def _force_delete(self, v: Victim) -> None:
        md = _md(v.pod)
        name, ns, uid = str(md.get("name")), str(md.get("namespace")), str(md.get("uid"))
        try:
            status = failed_status(v.pod, v.reason, self.clock.wall())
            if status is not None:
                await self.client.patch_status(PODS, name, {"metadata": {"uid": uid}, "status": status}, ns)
            await self.client.delete(PODS, name, ns, grace_period_seconds=0, preconditions={"uid": uid})
        except (NotFound, Conflict):
            return     # gone already, or the name now belongs to a new pod
        except ApiError as e:
            self.log.warning("force-deleting pod %s/%s (%s): %s", ns, name, v.reason, e)
            return
        self.deleted[v.reason] = self.deleted.get(v.reason, 0) + 1
        self.log.info("force-deleted pod %s/%s (%s)", ns, name, v.reason)


def new(ctx: ControllerContext) -> PodGCController:
    o = ctx.options
    return PodGCController(ctx.client, factory=ctx.factory, clock=ctx.clock,
                           period=float(o.get("pod_gc_period", GC_CHECK_PERIOD)),
                           quarantine_time=float(o.get("pod_gc_quarantine", QUARANTINE_TIME)),
                           terminated_threshold=int(o.get("terminated_pod_gc_threshold", TERMINATED_POD_GC_THRESHOLD)))
