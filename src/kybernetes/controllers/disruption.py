"""The disruption controller (upstream ``disruption-controller``): PodDisruptionBudget status.

For every PodDisruptionBudget it counts the pods its selector matches and writes, via
``/status`` with a compare-and-swap (the eviction subresource writes the same status):

    expectedPods        minAvailable as an int: the number of matching pods; otherwise (a percent,
                        or maxUnavailable) the sum of the scales of the pods' controllers
                        (Deployment <- ReplicaSet, ReplicaSet, StatefulSet, ReplicationController,
                        or any resource with a ``/scale`` subresource, found by discovery)
    desiredHealthy      minAvailable (percent of expectedPods, rounded up), or
                        expectedPods - maxUnavailable (percent rounded up), at least 0
    currentHealthy      ready pods that are neither terminating nor recently evicted
    disruptionsAllowed  currentHealthy - desiredHealthy, at least 0 (0 while expectedPods is 0)
    disruptedPods       pods the eviction API approved but that are not terminating yet; an entry
                        older than ``DELETION_TIMEOUT`` is dropped (the pod was not deleted after all)
    observedGeneration  and the condition DisruptionAllowed (SufficientPods / InsufficientPods)

When the numbers cannot be computed (a pod's controller is missing or has no scale, a bad
percent) the status fails safe: ``disruptionsAllowed: 0`` and DisruptionAllowed=False, reason
SyncFailed. Pods without a controller are "unmanaged": they count for an int ``minAvailable`` only.

``reconcile(Observed) -> Plan`` is pure; ``DisruptionController.sync`` reads the listers, resolves
controller scales (the only I/O besides the status write) and applies the plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api import errors as api_errors
from ..api import meta as m
from ..api.labels import Selector, selector_from_label_selector
from ..client import NORMAL, WARNING, Controller, EventRecorder, Requeue, controller_ref
from ..client.errors import ApiError, NotFound
from ..client.keys import ObjectKey, key_of
from ..client.lister import copy_obj
from ..client.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
    Resource,
)
from ..util.clock import Clock
from .deployment.util import scaled_value

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "disruption-controller"
ALIASES = ("disruption",)

DELETION_TIMEOUT = 120.0        # seconds an approved eviction may take before the pod counts again
SYNC_FAILED_RETRY = 15.0        # seconds before a failed-safe budget is computed again
DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


class SyncError(Exception):
    """The budget's numbers cannot be computed; the status fails safe with this message."""


@dataclass(frozen=True)
class ControllerScale:
    """The top controller of some pods (e.g. the Deployment above their ReplicaSet) and its scale."""

    uid: str
    replicas: int


# ------------------------------------------------------------------------------------------------
# pure helpers
# ------------------------------------------------------------------------------------------------
def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def pdb_selector(pdb: Mapping[str, Any]) -> Selector:
    """``spec.selector`` as a Selector (null selects nothing, ``{}`` everything); SyncError if invalid."""
    try:
        return selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
    except api_errors.StatusError as e:
        raise SyncError(e.message) from None


def selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Does ``pdb`` cover ``pod`` (same namespace, selector matches; invalid selector: no)?"""
    if _md(pdb).get("namespace") != _md(pod).get("namespace"):
        return False
    try:
        return pdb_selector(pdb).matches(_md(pod).get("labels") or {})
    except SyncError:
        return False


def expected_scale(pods: Iterable[Mapping[str, Any]],
                   scales: Mapping[str, ControllerScale | None]) -> tuple[int, tuple[str, ...]]:
    """(sum of the scales of the pods' controllers, names of pods without a controller).

    ``scales`` maps a pod's controllerRef uid to its top controller; a pod whose controller is
    not in it (or maps to None) raises SyncError, as upstream's "found no controllers".
    """
    per_controller: dict[str, int] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = controller_ref(dict(pod))
        if ref is None:
            unmanaged.append(str(_md(pod).get("name") or ""))
            continue
        found = scales.get(str(ref.get("uid") or ""))
        if found is None:
            raise SyncError(f'found no controllers for pod "{_md(pod).get("name")}"')
        per_controller[found.uid] = found.replicas
    return sum(per_controller.values()), tuple(unmanaged)


def _scaled(value: Any, total: int) -> int:
    try:
        return scaled_value(value, total, round_up=True)
    except ValueError as e:
        raise SyncError(str(e)) from None


def needs_scale(pdb: Mapping[str, Any]) -> bool:
    """Only an int ``minAvailable`` can do without the controllers' scale."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        return True
    min_available = spec.get("minAvailable")
    return min_available is not None and not (isinstance(min_available, int) and not isinstance(min_available, bool))


def expected_pod_count(pdb: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
                       scales: Mapping[str, ControllerScale | None]) -> tuple[int, int, tuple[str, ...]]:
    """(expectedPods, desiredHealthy, unmanaged pod names) for ``pdb`` over its ``pods``."""
    spec = pdb.get("spec") or {}
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected, unmanaged = expected_scale(pods, scales)
        return expected, max(expected - _scaled(max_unavailable, expected), 0), unmanaged
    if min_available is None:
        return 0, 0, ()
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return len(pods), min_available, ()
    expected, unmanaged = expected_scale(pods, scales)
    return expected, _scaled(min_available, expected), unmanaged


def _ts(value: Any) -> dt.datetime | None:
    return m.parse_time(value) if isinstance(value, str) else None


def build_disrupted_pods(pods: Iterable[Mapping[str, Any]], disrupted: Mapping[str, Any] | None,
                         now: dt.datetime) -> tuple[dict[str, str], dt.datetime | None, tuple[str, ...]]:
    """(entries to keep, when the earliest kept one expires, pods whose entry expired undeleted).

    Entries of pods that are gone or already terminating are dropped (the eviction happened).
    """
    keep: dict[str, str] = {}
    recheck: dt.datetime | None = None
    expired: list[str] = []
    if not disrupted:
        return keep, None, ()
    for pod in pods:
        name = str(_md(pod).get("name") or "")
        if _md(pod).get("deletionTimestamp") or name not in disrupted:
            continue
        since = _ts(disrupted[name])
        if since is None:
            continue
        deadline = since + dt.timedelta(seconds=DELETION_TIMEOUT)
        if deadline < now:
            expired.append(name)
            continue
        keep[name] = str(disrupted[name])
        recheck = deadline if recheck is None or deadline < recheck else recheck
    return keep, recheck, tuple(expired)


def count_healthy(pods: Iterable[Mapping[str, Any]], disrupted: Mapping[str, str], now: dt.datetime) -> int:
    """Ready pods that are not terminating and not about to be (a live disruptedPods entry)."""
    healthy = 0
    for pod in pods:
        if _md(pod).get("deletionTimestamp"):
            continue
        since = _ts(disrupted.get(str(_md(pod).get("name") or "")))
        if since is not None and since + dt.timedelta(seconds=DELETION_TIMEOUT) > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def allowed_condition(allowed: int, observed_generation: int, conditions: Iterable[Mapping[str, Any]],
                      now: dt.datetime) -> list[Obj]:
    """``conditions`` with DisruptionAllowed set for ``allowed`` disruptions."""
    ok = allowed > 0
    cond: Obj = {"type": DISRUPTION_ALLOWED, "status": "True" if ok else "False",
                 "reason": SUFFICIENT_PODS if ok else INSUFFICIENT_PODS, "message": "",
                 "observedGeneration": observed_generation, "lastTransitionTime": m.now_rfc3339(now)}
    return m.set_condition([dict(c) for c in conditions], cond)


def compute_status(pdb: Mapping[str, Any], current_healthy: int, desired_healthy: int, expected: int,
                   disrupted: Mapping[str, str], now: dt.datetime) -> Obj:
    """The whole new status (upstream ``updatePdbStatus``)."""
    allowed = current_healthy - desired_healthy
    if expected <= 0 or allowed <= 0:
        allowed = 0
    generation = int(_md(pdb).get("generation") or 0)
    old = pdb.get("status") or {}
    status: Obj = {"currentHealthy": current_healthy, "desiredHealthy": desired_healthy,
                   "expectedPods": expected, "disruptionsAllowed": allowed,
                   "observedGeneration": generation}
    if disrupted:
        status["disruptedPods"] = dict(disrupted)
    status["conditions"] = allowed_condition(allowed, generation, old.get("conditions") or (), now)
    return status


def fail_safe_status(pdb: Mapping[str, Any], message: str, now: dt.datetime) -> Obj:
    """The old status with no disruption allowed and DisruptionAllowed=False/SyncFailed."""
    status: Obj = copy_obj(dict(pdb.get("status") or {}))
    status["disruptionsAllowed"] = 0
    cond: Obj = {"type": DISRUPTION_ALLOWED, "status": "False", "reason": SYNC_FAILED, "message": message,
                 "observedGeneration": int(status.get("observedGeneration") or 0),
                 "lastTransitionTime": m.now_rfc3339(now)}
    status["conditions"] = m.set_condition([dict(c) for c in status.get("conditions") or ()], cond)
    return status


# ------------------------------------------------------------------------------------------------
# reconcile
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    target: Obj           # the object the event is about (the budget or a pod)
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    pdb: Obj
    pods: tuple[Obj, ...]                                  # the pods the selector matches
    scales: Mapping[str, ControllerScale | None] = field(default_factory=dict)
    now: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    error: str | None = None                               # the shell could not resolve scales


@dataclass(frozen=True)
class Plan:
    status: Obj | None = None            # write this status (None: unchanged)
    requeue_after: float | None = None
    events: tuple[Event, ...] = ()
    failed: str | None = None            # the sync failed safe with this message


def reconcile(obs: Observed) -> Plan:
    """Pure: the budget's new status, when to look again and what to report."""
    pdb, pods, now = obs.pdb, obs.pods, obs.now
    old = pdb.get("status") or {}
    try:
        if obs.error is not None:
            raise SyncError(obs.error)
        expected, desired, unmanaged = expected_pod_count(pdb, pods, obs.scales)
    except SyncError as e:
        message = str(e)
        status = fail_safe_status(pdb, message, now)
        if status == old:
            return Plan(requeue_after=SYNC_FAILED_RETRY, failed=message)
        events = (Event(pdb, WARNING, "CalculateExpectedPodCountFailed",
                        f"Failed to calculate the number of expected pods: {message}"),)
        return Plan(status, SYNC_FAILED_RETRY, events, message)
    disrupted, recheck, expired = build_disrupted_pods(pods, old.get("disruptedPods"), now)
    healthy = count_healthy(pods, disrupted, now)
    status = compute_status(pdb, healthy, desired, expected, disrupted, now)
    if status == old:
        return Plan(requeue_after=_seconds_until(recheck, now))
    events: list[Event] = []
    if not pods:
        events.append(Event(pdb, NORMAL, "NoPods", "No matching pods found"))
    if unmanaged:
        events.append(Event(pdb, WARNING, "UnmanagedPods",
                            "Pods selected by this PodDisruptionBudget were found to be unmanaged. As a result, "
                            "the status of the PDB cannot be calculated correctly, which may result in undefined "
                            'behavior. To account for these pods please set ".spec.minAvailable" field of the PDB '
                            "to an integer value."))
    by_name = {str(_md(p).get("name")): p for p in pods}
    for name in expired:
        events.append(Event(by_name[name], WARNING, "NotDeleted",
                            f"Pod was expected by PDB {_md(pdb).get('namespace')}/{_md(pdb).get('name')} "
                            "to be deleted but it wasn't"))
    return Plan(status, _seconds_until(recheck, now), tuple(events))


def _seconds_until(when: dt.datetime | None, now: dt.datetime) -> float | None:
    if when is None:
        return None
    return max((when - now).total_seconds(), 0.001)


# ------------------------------------------------------------------------------------------------
# the controller
# ------------------------------------------------------------------------------------------------
def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class DisruptionController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 1) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.pdbs = self.informer(PODDISRUPTIONBUDGETS)
        self.pods = self.informer(PODS, mapper=self._pdb_keys)
        self.rcs = self.informer(REPLICATIONCONTROLLERS, handle=False)
        self.rss = self.informer(REPLICASETS, handle=False)
        self.deployments = self.informer(DEPLOYMENTS, handle=False)
        self.statefulsets = self.informer(STATEFULSETS, handle=False)
        self.status_writes = 0

    def _pdb_keys(self, pod: Obj) -> list[str]:
        """A pod event concerns every budget of its namespace that selects it."""
        ns = _md(pod).get("namespace")
        return [key_of(p) for p in self.pdbs.lister().list(ns) if selects(p, pod)]

    # -- sync ---------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        pdb = self.pdbs.lister().get_by_key(key)
        if pdb is None:
            return
        ns = str(_md(pdb).get("namespace") or "")
        error: str | None = None
        pods: tuple[Obj, ...] = ()
        scales: dict[str, ControllerScale | None] = {}
        try:
            sel = pdb_selector(pdb)
            pods = tuple(p for p in self.pods.lister().list(ns) if sel.matches(_md(p).get("labels") or {}))
            if needs_scale(pdb):
                scales = await self._scales(pods, ns)
        except SyncError as e:
            error = str(e)
        plan = reconcile(Observed(pdb, pods, scales, self.clock.wall(), error))
        for ev in plan.events:
            if self.recorder is not None:
                self.recorder.event(ev.target, ev.type, ev.reason, ev.message)
        if plan.status is not None:
            new = copy_obj(pdb)
            new["status"] = plan.status
            try:   # a PUT on the cached resourceVersion: a concurrent eviction makes it conflict
                await self.client.update_status(PODDISRUPTIONBUDGETS, new, ns)
            except NotFound:
                return
            self.status_writes += 1
        if plan.requeue_after is not None:
            raise Requeue(after=plan.requeue_after)

    # -- controllers and their scale ----------------------------------------------------------------
    async def _scales(self, pods: Iterable[Obj], ns: str) -> dict[str, ControllerScale | None]:
        out: dict[str, ControllerScale | None] = {}
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None or str(ref.get("uid") or "") in out:
                continue
            out[str(ref.get("uid") or "")] = await self.find_controller(ref, ns)
        return out

    async def find_controller(self, ref: Mapping[str, Any], ns: str) -> ControllerScale | None:
        """The top controller behind a pod's controllerRef and its ``spec.replicas`` (None: not
        found). The workload kinds come from the listers; anything else via ``/scale``."""
        kind, group = ref.get("kind"), _group(str(ref.get("apiVersion") or ""))
        name, uid = str(ref.get("name") or ""), str(ref.get("uid") or "")
        if kind == "ReplicationController" and group == "":
            return _owned_scale(self.rcs.lister().get(name, ns), uid)
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = self.rss.lister().get(name, ns)
            if rs is None or _md(rs).get("uid") != uid:
                return None
            parent = controller_ref(rs)
            if parent is not None and parent.get("kind") == "Deployment":
                if _group(str(parent.get("apiVersion") or "")) not in ("apps", "extensions"):
                    return None
                return _owned_scale(self.deployments.lister().get(str(parent.get("name") or ""), ns),
                                    str(parent.get("uid") or ""))
            return _owned_scale(rs, uid)
        if kind == "StatefulSet" and group == "apps":
            return _owned_scale(self.statefulsets.lister().get(name, ns), uid)
        return await self._scale_subresource(ref, ns)

    async def _scale_subresource(self, ref: Mapping[str, Any], ns: str) -> ControllerScale | None:
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        group, _, version = api_version.rpartition("/")
        try:
            doc = await self.client.request("GET", f"/apis/{api_version}" if group else f"/api/{version}")
        except NotFound:
            raise SyncError(f'no matches for kind "{kind}" in version "{api_version}"') from None
        except ApiError as e:
            raise SyncError(str(e)) from None
        resources = (doc or {}).get("resources") or []
        main = next((r for r in resources if r.get("kind") == kind and "/" not in str(r.get("name"))), None)
        if main is None:
            raise SyncError(f'no matches for kind "{kind}" in version "{api_version}"')
        plural = str(main["name"])
        if not any(r.get("name") == f"{plural}/scale" for r in resources):
            raise SyncError(f"{plural}.{group} does not implement the scale subresource" if group
                            else f"{plural} does not implement the scale subresource")
        res = Resource(group, version, plural, kind, bool(main.get("namespaced", True)))
        try:
            scale = await self.client.get(res, str(ref.get("name") or ""), ns, subresource="scale")
        except NotFound:
            return None
        except ApiError as e:
            raise SyncError(str(e)) from None
        if _md(scale).get("uid") != ref.get("uid"):
            return None
        return ControllerScale(str(ref.get("uid")), int((scale.get("spec") or {}).get("replicas") or 0))


def _owned_scale(obj: Obj | None, uid: str) -> ControllerScale | None:
    if obj is None or _md(obj).get("uid") != uid:
        return None
    return ControllerScale(uid, int((obj.get("spec") or {}).get("replicas", 1) or 0))


def new(ctx: ControllerContext) -> DisruptionController:
    return DisruptionController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                workers=int(ctx.options.get("concurrent_disruption_syncs", 1)))

