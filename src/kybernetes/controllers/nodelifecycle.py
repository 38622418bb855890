"""The node lifecycle controller: node health from Leases, condition taints, NoExecute evictions.

Shape (as upstream ``pkg/controller/nodelifecycle`` plus ``pkg/controller/tainteviction``): one
work queue carries three kinds of keys:

    monitor        every ``node_monitor_period`` (5 s): recompute the zone states and enqueue every
                   node (upstream ``monitorNodeHealth``)
    node/<name>    health: the node is *probed* whenever its Lease ``kube-node-lease/<name>`` is
                   renewed or its Ready heartbeat moves (times are this controller's own clock, as
                   upstream, so clock skew does not matter). After ``node_monitor_grace_period``
                   (40 s; 60 s for a node that never reported) without a probe, Ready and the
                   pressure conditions become Unknown (``NodeStatusUnknown``, "Kubelet stopped
                   posting node status."). Taints follow the conditions (``compute_taints``):
                   Ready False -> ``not-ready``, Unknown -> ``unreachable`` (NoSchedule and
                   NoExecute), pressure conditions and ``spec.unschedulable`` -> NoSchedule taints;
                   they go away when the node is healthy again. On Ready True -> not True the pods
                   on the node are marked not ready (event ``NodeNotReady``).
    pod/<ns>/<n>   the taint manager: a pod on a node with a NoExecute taint it does not tolerate is
                   deleted at once (event ``TaintManagerEviction``); with ``tolerationSeconds`` it is
                   deleted when that much time has passed since the taint's ``timeAdded``.

Zone disruption (upstream ``ComputeZoneState``): when every zone has no ready node at all, the
failure is most likely on the control-plane side, so NoExecute taints are neither added nor kept
(no mass eviction); a small zone (<= 50 nodes) in partial disruption keeps its NoExecute taints but
gets no new ones. Upstream's eviction rate limiter (0.1 node/s) is not modelled.

``default_toleration_seconds(pod)`` is the DefaultTolerationSeconds admission rule (the API server
calls it when a pod is created): pods tolerate ``not-ready`` and ``unreachable`` for 300 s.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.meta import now_rfc3339, parse_time
from ..api.admission import default_toleration_seconds  # noqa: F401 - re-exported for callers
from ..client import NORMAL, Controller, EventRecorder, Requeue
from ..client.errors import Conflict, NotFound
from ..client.indexer import BY_NODE_NAME, index_by_node_name
from ..client.keys import DeletedFinalStateUnknown, ObjectKey, key_of, tombstone_object
from ..client.resources import LEASES, NODES, PODS
from ..util.clock import Clock

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "node-lifecycle-controller"
ALIASES = ("nodelifecycle",)

NODE_LEASE_NAMESPACE = "kube-node-lease"
MONITOR_PERIOD = 5.0
MONITOR_GRACE_PERIOD = 40.0
STARTUP_GRACE_PERIOD = 60.0
DEFAULT_TOLERATION_SECONDS = 300
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"

# (condition type, status) -> NoSchedule taint key (upstream nodeConditionToTaintKeyStatusMap)
CONDITION_TAINTS: Mapping[tuple[str, str], str] = {
    ("Ready", "False"): TAINT_NOT_READY,
    ("Ready", "Unknown"): TAINT_UNREACHABLE,
    ("MemoryPressure", "True"): TAINT_MEMORY_PRESSURE,
    ("DiskPressure", "True"): TAINT_DISK_PRESSURE,
    ("NetworkUnavailable", "True"): TAINT_NETWORK_UNAVAILABLE,
    ("PIDPressure", "True"): TAINT_PID_PRESSURE,
}
MANAGED_NO_SCHEDULE = frozenset({*CONDITION_TAINTS.values(), TAINT_UNSCHEDULABLE})
MANAGED_NO_EXECUTE = frozenset({TAINT_NOT_READY, TAINT_UNREACHABLE})
# conditions the kubelet reports, set to Unknown when it stops (upstream nodeConditionsToUpdate)
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."

MONITOR_KEY = ObjectKey("monitor")


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _conditions(node: Mapping[str, Any]) -> list[Obj]:
    return [c for c in (node.get("status") or {}).get("conditions") or () if isinstance(c, dict)]


def condition_status(node: Mapping[str, Any], ctype: str) -> str | None:
    return next((str(c.get("status")) for c in _conditions(node) if c.get("type") == ctype), None)


# ------------------------------------------------------------------------------------------------
# health (pure)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeHealth:
    """What the controller last saw of a node, and when (its own monotonic clock) it last moved."""

    probe: float
    renew_time: str | None
    heartbeat: str | None
    ready: str | None


def observe_health(prev: NodeHealth | None, node: Mapping[str, Any], lease: Mapping[str, Any] | None,
                   now: float) -> NodeHealth:
    """The node's health record after looking at it at ``now``: probed again when its Lease was
    renewed or its Ready heartbeat changed since ``prev``."""
    renew = ((lease or {}).get("spec") or {}).get("renewTime")
    ready = next((c for c in _conditions(node) if c.get("type") == "Ready"), None)
    heartbeat = (ready or {}).get("lastHeartbeatTime")
    status = (ready or {}).get("status")
    if prev is None:
        return NodeHealth(now, renew, heartbeat, status)
    moved = _later(renew, prev.renew_time) or (heartbeat is not None and heartbeat != prev.heartbeat)
    return NodeHealth(now if moved else prev.probe, renew or prev.renew_time, heartbeat, status)


def _later(a: str | None, b: str | None) -> bool:
    if a is None:
        return False
    ta, tb = parse_time(a), parse_time(b)
    return tb is None or ta is None or ta > tb


def grace_period_for(node: Mapping[str, Any], grace: float, startup_grace: float) -> float:
    return grace if condition_status(node, "Ready") is not None else startup_grace


def unknown_conditions(node: Mapping[str, Any], now: dt.datetime) -> list[Obj] | None:
    """The node's conditions once its kubelet stopped reporting (None: already all Unknown)."""
    ts = now_rfc3339(now)
    created = _md(node).get("creationTimestamp") or ts
    conditions = [dict(c) for c in _conditions(node)]
    changed = False
    for ctype in KUBELET_CONDITIONS:
        cur = next((c for c in conditions if c.get("type") == ctype), None)
        if cur is None:
            conditions.append({"type": ctype, "status": "Unknown", "reason": NEVER_REASON,
                               "message": NEVER_MESSAGE, "lastHeartbeatTime": created,
                               "lastTransitionTime": ts})
            changed = True
        elif cur.get("status") != "Unknown":
            cur.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE,
                       lastTransitionTime=ts)
            changed = True
    return conditions if changed else None


# ------------------------------------------------------------------------------------------------
# zones (pure)
# ------------------------------------------------------------------------------------------------
NORMAL_STATE = "Normal"
PARTIAL_DISRUPTION = "PartialDisruption"
FULL_DISRUPTION = "FullDisruption"


def zone_of(node: Mapping[str, Any]) -> str:
    labels = _md(node).get("labels") or {}
    return f"{labels.get(REGION_LABEL, '')}:{labels.get(ZONE_LABEL, '')}"


def compute_zone_states(nodes: Iterable[Mapping[str, Any]],
                        unhealthy_threshold: float = UNHEALTHY_ZONE_THRESHOLD) -> dict[str, tuple[str, int]]:
    """zone -> (state, number of nodes) from the nodes' Ready conditions."""
    counts: dict[str, list[int]] = {}
    for n in nodes:
        c = counts.setdefault(zone_of(n), [0, 0])
        c[0 if condition_status(n, "Ready") == "True" else 1] += 1
    out = {}
    for zone, (ready, not_ready) in counts.items():
        if ready == 0 and not_ready > 0:
            state = FULL_DISRUPTION
        elif not_ready > 2 and not_ready / (ready + not_ready) >= unhealthy_threshold:
            state = PARTIAL_DISRUPTION
        else:
            state = NORMAL_STATE
        out[zone] = (state, ready + not_ready)
    return out


ADD = "add"          # NoExecute taints follow the node's health
HOLD = "hold"        # keep existing NoExecute taints (removed when healthy) but add none
RELEASE = "release"  # remove every not-ready/unreachable NoExecute taint


def no_execute_mode(states: Mapping[str, tuple[str, int]], zone: str,
                    large_cluster_threshold: int = LARGE_CLUSTER_THRESHOLD) -> str:
    if states and all(s == FULL_DISRUPTION for s, _ in states.values()):
        return RELEASE
    state, size = states.get(zone, (NORMAL_STATE, 0))
    if state == PARTIAL_DISRUPTION and size <= large_cluster_threshold:
        return HOLD
    return ADD


# ------------------------------------------------------------------------------------------------
# taints (pure)
# ------------------------------------------------------------------------------------------------
def wanted_no_schedule(node: Mapping[str, Any]) -> set[str]:
    keys = {key for (ctype, status), key in CONDITION_TAINTS.items() if condition_status(node, ctype) == status}
    if (node.get("spec") or {}).get("unschedulable"):
        keys.add(TAINT_UNSCHEDULABLE)
    return keys


def wanted_no_execute(node: Mapping[str, Any]) -> str | None:
    ready = condition_status(node, "Ready")
    if ready == "False":
        return TAINT_NOT_READY
    if ready == "Unknown":
        return TAINT_UNREACHABLE
    return None


def compute_taints(node: Mapping[str, Any], now: dt.datetime, mode: str = ADD) -> list[Obj] | None:
    """The node's taints with the managed ones brought in line (None: nothing to change).

    Taints this controller does not manage are kept as they are, in order."""
    current = [t for t in (node.get("spec") or {}).get("taints") or () if isinstance(t, dict)]
    want_ns = wanted_no_schedule(node)
    want_ne = wanted_no_execute(node)
    have_ne = {t.get("key") for t in current if t.get("effect") == NO_EXECUTE}
    if mode == RELEASE or (mode == HOLD and want_ne not in have_ne):
        want_ne = None
    out: list[Obj] = []
    for t in current:
        key, effect = t.get("key"), t.get("effect")
        if effect == NO_SCHEDULE and key in MANAGED_NO_SCHEDULE and key not in want_ns:
            continue
        if effect == NO_EXECUTE and key in MANAGED_NO_EXECUTE and key != want_ne:
            continue
        out.append(t)
    have = {(t.get("key"), t.get("effect")) for t in out}
    for key in sorted(want_ns):
        if (key, NO_SCHEDULE) not in have:
            out.append({"key": key, "effect": NO_SCHEDULE})
    if want_ne is not None and (want_ne, NO_EXECUTE) not in have:
        out.append({"key": want_ne, "effect": NO_EXECUTE, "timeAdded": now_rfc3339(now)})
    return None if out == current else out


def no_execute_taints(node: Mapping[str, Any] | None) -> list[Obj]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or ()
            if isinstance(t, dict) and t.get("effect") == NO_EXECUTE]


# ------------------------------------------------------------------------------------------------
# taint manager (pure)
# ------------------------------------------------------------------------------------------------
def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Upstream ``Toleration.ToleratesTaint``: empty effect/key match all; Exists ignores the value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def taint_start(taint: Mapping[str, Any], first_seen: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When the taint came: ``timeAdded`` has whole seconds only, so the moment this controller first
    saw it (``first_seen``) refines it within that second; without ``timeAdded``, ``first_seen``."""
    added = parse_time(taint.get("timeAdded"))
    if added is None:
        return first_seen or now
    if first_seen is None:
        return added
    return max(added, min(first_seen, added + dt.timedelta(seconds=1)))


def eviction_delay(pod: Mapping[str, Any], taints: Sequence[Mapping[str, Any]], now: dt.datetime,
                   first_seen: dt.datetime | None = None) -> float | None:
    """Seconds until ``pod`` must be evicted for the NoExecute ``taints`` (0: now; None: never).

    Each taint is matched by the first toleration that tolerates it (upstream
    ``GetMatchingTolerations``); an untolerated taint evicts at once; otherwise the earliest
    start (``taint_start``) + ``tolerationSeconds`` wins."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or () if isinstance(t, dict)]
    deadline = math.inf
    for taint in taints:
        if taint.get("effect") != NO_EXECUTE:
            continue
        tol = next((t for t in tolerations if tolerates(t, taint)), None)
        if tol is None:
            return 0.0
        seconds = tol.get("tolerationSeconds")
        if seconds is None:
            continue
        start = taint_start(taint, first_seen, now)
        deadline = min(deadline, start.timestamp() + max(float(seconds), 0.0))
    if deadline == math.inf:
        return None
    return max(deadline - now.timestamp(), 0.0)


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    monitor_period: float = MONITOR_PERIOD
    grace_period: float = MONITOR_GRACE_PERIOD
    startup_grace_period: float = STARTUP_GRACE_PERIOD

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> Options:
        return cls(float(options.get("node_monitor_period", MONITOR_PERIOD)),
                   float(options.get("node_monitor_grace_period", MONITOR_GRACE_PERIOD)),
                   float(options.get("node_startup_grace_period", STARTUP_GRACE_PERIOD)))


def _node_key(name: str) -> ObjectKey:
    return ObjectKey(f"node/{name}")


def _pod_key(pod: Mapping[str, Any]) -> ObjectKey:
    return ObjectKey(f"pod/{key_of(dict(pod))}")


class NodeLifecycleController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None,
                 options: Options | None = None, workers: int = 4) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.options = options or Options()
        self.health: dict[str, NodeHealth] = {}
        self.zone_states: dict[str, tuple[str, int]] = {}
        self.first_seen: dict[str, dt.datetime] = {}
        self.evictions = 0
        self.nodes = self.informer(NODES, handle=False)
        self.nodes.add_event_handler(on_add=self._node_added, on_update=self._node_updated,
                                     on_delete=self._node_deleted)
        self.leases = self.informer(LEASES, namespace=NODE_LEASE_NAMESPACE, handle=False)
        self.pods = self.informer(PODS, handle=False, indexers={BY_NODE_NAME: index_by_node_name})
        self.pods.add_event_handler(on_add=self._pod_changed, on_update=lambda _o, n: self._pod_changed(n))

    # -- event handlers: keys only -----------------------------------------------------------------
    def _node_added(self, node: Obj) -> None:
        self.queue.add(_node_key(str(_md(node).get("name"))))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self._node_added(new)
        if no_execute_taints(old) != no_execute_taints(new):
            for pod in self.pods.indexer.by_index(BY_NODE_NAME, str(_md(new).get("name"))):
                self.queue.add(_pod_key(pod))

    def _node_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._node_added(tombstone_object(obj))

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and no_execute_taints(self.nodes.lister().get(node)):
            self.queue.add(_pod_key(pod))

    # -- the loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        self.queue.add(MONITOR_KEY)
        await super().run()

    async def sync(self, key: ObjectKey) -> None:
        kind, _, rest = str(key).partition("/")
        if key == MONITOR_KEY:
            self._monitor()
            raise Requeue(after=self.options.monitor_period)
        if kind == "node":
            await self._sync_node(rest)
        elif kind == "pod":
            await self._sync_pod(ObjectKey(rest))

    def _monitor(self) -> None:
        nodes = self.nodes.lister().list()
        self.zone_states = compute_zone_states(nodes)
        for n in nodes:
            self.queue.add(_node_key(str(_md(n).get("name"))))

    def _event(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, NORMAL, reason, message)

    # -- nodes -----------------------------------------------------------------------------------------
    async def _sync_node(self, name: str) -> None:
        node = self.nodes.lister().get(name)
        if node is None:
            self.health.pop(name, None)
            return
        lease = self.leases.lister().get(name, NODE_LEASE_NAMESPACE)
        prev = self.health.get(name)
        now = self.clock.monotonic()
        health = observe_health(prev, node, lease, now)
        self.health[name] = health
        grace = grace_period_for(node, self.options.grace_period, self.options.startup_grace_period)
        if now - health.probe > grace:
            conditions = unknown_conditions(node, self.clock.wall())
            if conditions is not None:
                node = await self.client.patch_status(NODES, name, {
                    "metadata": {"resourceVersion": _md(node).get("resourceVersion")},
                    "status": {"conditions": conditions}})
        ready = condition_status(node, "Ready")
        self.health[name] = NodeHealth(health.probe, health.renew_time, health.heartbeat, ready)
        if prev is not None and prev.ready == "True" and ready != "True":
            self._event(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
        elif prev is not None and prev.ready != "True" and ready == "True":
            self._event(node, "NodeReady", f"Node {name} status is now: NodeReady")
        await self._sync_taints(node)

    async def _sync_taints(self, node: Obj) -> None:
        """Bring the managed taints in line; on a conflict (a stale cache) once more from a fresh read."""
        name = str(_md(node).get("name"))
        mode = no_execute_mode(self.zone_states, zone_of(node))
        for attempt in range(2):
            taints = compute_taints(node, self.clock.wall(), mode)
            if taints is None:
                return
            try:
                await self.client.patch(NODES, name, {
                    "metadata": {"resourceVersion": _md(node).get("resourceVersion")},
                    "spec": {"taints": taints}})
                return
            except Conflict:
                if attempt:
                    raise
                node = await self.client.get(NODES, name)

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Upstream ``MarkPodsNotReady``: the node cannot vouch for its pods any more."""
        ts = now_rfc3339(self.clock.wall())
        for pod in self.pods.indexer.by_index(BY_NODE_NAME, node_name):
            if condition_status(pod, "Ready") != "True":
                continue
            md = _md(pod)
            patch = {"status": {"conditions": [{"type": "Ready", "status": "False",
                                                "lastTransitionTime": ts}]}}
            try:
                await self.client.patch_status(PODS, str(md.get("name")), patch, md.get("namespace"),
                                               patch_type="strategic")
            except NotFound:
                continue
            self._event(pod, "NodeNotReady", "Node is not ready")

    # -- pods (taint manager) --------------------------------------------------------------------------
    async def _sync_pod(self, key: ObjectKey) -> None:
        pod = self.pods.lister().get_by_key(key)
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is None or _md(pod).get("deletionTimestamp") or not node_name:
            self.first_seen.pop(key, None)
            return
        taints = no_execute_taints(self.nodes.lister().get(node_name))
        now = self.clock.wall()
        first = self.first_seen.setdefault(key, now) if taints else None
        delay = eviction_delay(pod, taints, now, first)
        if delay is None:
            self.first_seen.pop(key, None)
            return
        if delay > 0:
            raise Requeue(after=delay, reason="toleration pending")
        md = _md(pod)
        self._event(pod, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            await self.client.delete(PODS, str(md.get("name")), md.get("namespace"),
                                     preconditions={"uid": md.get("uid")})
            self.evictions += 1
        except NotFound:
            pass
        self.first_seen.pop(key, None)


def new(ctx: ControllerContext) -> NodeLifecycleController:
    return NodeLifecycleController(ctx.client, factory=ctx.factory, recorder=ctx.recorder,
                                   clock=ctx.clock, options=Options.from_dict(ctx.options))
