"""The ResourceQuota controller: ``status.hard`` mirrors ``spec.hard``; ``status.used`` is recounted.

    compute_status(quota, objects_by_resource, now) -> (status, wake_after)     pure

Tracked quota resources (``resource_for(name)`` says which API resource feeds a name):

    pods, count/pods, cpu, memory, ephemeral-storage, hugepages-*, requests.<r> (but not
    requests.storage), limits.<r>                        summed over pods that still count (not
                                                         Succeeded/Failed, not past deletion grace)
    services, services.nodeports, services.loadbalancers, count/services
    persistentvolumeclaims, requests.storage, <class>.storageclass.storage.k8s.io/requests.storage,
    <class>.storageclass.storage.k8s.io/persistentvolumeclaims, count/persistentvolumeclaims
    configmaps, secrets, replicationcontrollers, resourcequotas, count/<plural>[.<group>]
                                                         object counts (built-in namespaced kinds)

Pod requests are upstream's ``PodRequests``: the larger of (regular containers + sidecars) and the
biggest init container (with the sidecars started before it), plus the pod overhead; a missing
request falls back to the limit. Scopes (``spec.scopes`` and ``spec.scopeSelector``): Terminating,
NotTerminating, BestEffort, NotBestEffort, PriorityClass (In/NotIn/Exists/DoesNotExist),
CrossNamespacePodAffinity; they select pods, and a scoped quota counts no other kind.

Names in ``hard`` that nothing tracks keep their previous ``used`` value (as upstream); every
tracked name gets a value, ``"0"`` when unused. Quantities are canonical (``api.quantity``).

The controller: quota events enqueue the quota; informers for the kinds a quota needs are started
lazily and their add/delete (and usage-changing updates) enqueue the quotas of that namespace;
every quota is recalculated in full at least every ``resync_period`` seconds (5 min) and when a
deleting pod's grace period runs out. The status is written once per change via ``/status``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api import quota
from ..api.quantity import ZERO, Quantity, to_canonical
from ..api.quota import (  # noqa: F401 - the pure rules this controller recounts with (tests import them here)
    STORAGE_CLASS_SUFFIX,
    _spec,
    deletion_deadline,
    pod_amounts,
    pod_counts,
    pod_matches_scope,
    pvc_usage,
    scope_selectors,
    service_usage,
)
from ..api.resources import BUILTIN
from ..api.storageclass import claim_class
from ..client import Controller, Requeue
from ..client.errors import NotFound
from ..client.informer import SharedInformer
from ..client.keys import DeletedFinalStateUnknown, ObjectKey, key_of, tombstone_object
from ..client.lister import copy_obj
from ..client.resources import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICATIONCONTROLLERS,
    RESOURCEQUOTAS,
    SECRETS,
    SERVICES,
    Resource,
)
from ..util.clock import Clock

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]
Usage = dict[str, Quantity]

NAME = "resourcequota-controller"
ALIASES = ("resourcequota",)

RESYNC_PERIOD = 300.0
_LEGACY_COUNTS: dict[str, Resource] = {
    "pods": PODS, "services": SERVICES, "configmaps": CONFIGMAPS, "secrets": SECRETS,
    "persistentvolumeclaims": PERSISTENTVOLUMECLAIMS, "replicationcontrollers": REPLICATIONCONTROLLERS,
    "resourcequotas": RESOURCEQUOTAS,
}
POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
              "CrossNamespacePodAffinity")


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def count_name(res: Resource) -> str:
    """``count/<plural>`` for the core group, ``count/<plural>.<group>`` otherwise."""
    return quota.count_name(res.group, res.plural)


# ------------------------------------------------------------------------------------------------
# which API resource feeds a quota resource name (pure)
# ------------------------------------------------------------------------------------------------
def is_pod_compute_resource(name: str) -> bool:
    if name in quota.BARE_COMPUTE or name.startswith("hugepages-") or name.startswith("limits."):
        return True
    return name.startswith("requests.") and name != "requests.storage"


def is_pvc_resource(name: str) -> bool:
    if name == "requests.storage":
        return True
    if STORAGE_CLASS_SUFFIX in name:
        return name.endswith("/requests.storage") or name.endswith("/persistentvolumeclaims")
    return False


@functools.lru_cache(maxsize=1024)
def resource_for(name: str) -> Resource | None:
    """The namespaced API resource whose objects a quota name counts, or None if untracked."""
    if name in _LEGACY_COUNTS:
        return _LEGACY_COUNTS[name]
    if name in ("services.nodeports", "services.loadbalancers"):
        return SERVICES
    if is_pvc_resource(name):
        return PERSISTENTVOLUMECLAIMS
    if is_pod_compute_resource(name):
        return PODS
    if name.startswith("count/"):
        plural, _, group = name[len("count/"):].partition(".")
        for info in BUILTIN:
            if info.plural == plural and info.group == group and info.namespaced and not info.custom:
                return Resource.from_info(info)
    return None


def object_usage(res: Resource, obj: Mapping[str, Any], now: dt.datetime) -> Usage:
    """What ``obj`` costs (the rules of ``api/quota.py``, shared with ResourceQuota admission)."""
    return quota.usage(res.group, res.plural, obj, now)


# ------------------------------------------------------------------------------------------------
# the whole status (pure)
# ------------------------------------------------------------------------------------------------
def canonical_hard(hard: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in hard.items():
        try:
            out[str(name)] = to_canonical(value)
        except ValueError:
            out[str(name)] = str(value)
    return out


def needed_resources(quota: Mapping[str, Any]) -> set[Resource]:
    return {r for n in (_spec(quota).get("hard") or {}) if (r := resource_for(str(n))) is not None}


def compute_used(quota: Mapping[str, Any], objects: Mapping[Resource, Sequence[Mapping[str, Any]]],
                 now: dt.datetime) -> Usage:
    """Usage of every tracked name in ``spec.hard`` over ``objects`` (the quota's namespace)."""
    names = [str(n) for n in (_spec(quota).get("hard") or {})]
    selectors = scope_selectors(quota)
    used: Usage = {n: ZERO for n in names if resource_for(n) is not None}
    for res in {resource_for(n) for n in used}:
        assert res is not None
        if selectors and res != PODS:
            continue  # scopes select pods only
        wanted = [n for n in used if resource_for(n) == res]
        for obj in objects.get(res, ()):
            if res == PODS and not all(pod_matches_scope(obj, s) for s in selectors):
                continue
            usage = object_usage(res, obj, now)
            for n in wanted:
                if n in usage:
                    used[n] = used[n] + usage[n] if used[n] else usage[n]
    return used


def next_wake(pods: Iterable[Mapping[str, Any]], now: dt.datetime) -> float | None:
    """Seconds until the first deleting pod passes its grace period (its usage then drops)."""
    waits = [w for p in pods if (w := deletion_deadline(p, now))]
    return min(waits) if waits else None


def compute_status(quota: Mapping[str, Any], objects: Mapping[Resource, Sequence[Mapping[str, Any]]],
                   now: dt.datetime) -> tuple[Obj, float | None]:
    """The quota's status and, when a deleting pod will stop counting, the delay until then."""
    hard = canonical_hard(_spec(quota).get("hard") or {})
    old_used = (quota.get("status") or {}).get("used") or {}
    used = {n: str(q) for n, q in compute_used(quota, objects, now).items()}
    for n in hard:
        if n not in used and n in old_used:
            used[n] = str(old_used[n])
    wake = next_wake(objects.get(PODS, ()), now) if PODS in objects else None
    return {"hard": hard, "used": used}, wake


def usage_changed(res: Resource, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Could this update change any quota's usage? (Status-only pod updates usually cannot.)"""
    if _spec(old) != _spec(new):
        return True
    if res == PODS:
        terminal = ("Succeeded", "Failed")
        return ((old.get("status") or {}).get("phase") in terminal) != ((new.get("status") or {}).get("phase") in terminal) \
            or _md(old).get("deletionTimestamp") != _md(new).get("deletionTimestamp")
    if res == PERSISTENTVOLUMECLAIMS:
        return claim_class(old) != claim_class(new)
    return False


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    status_writes: int = 0


class ResourceQuotaController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None, clock: Clock | None = None,
                 workers: int = 5, resync_period: float = RESYNC_PERIOD) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.resync_period = resync_period
        self.stats = Stats()
        self.quotas = self.informer(RESOURCEQUOTAS)
        self._monitors: dict[Resource, SharedInformer] = {}

    # -- lazily started monitors (replenishment) ----------------------------------------------------
    def monitor(self, res: Resource) -> SharedInformer:
        """The shared informer for ``res``; on first use its events start enqueueing quotas."""
        inf = self._monitors.get(res)
        if inf is not None:
            return inf
        inf = self.factory.informer(res)
        self._monitors[res] = inf

        def changed(obj: Obj | DeletedFinalStateUnknown) -> None:
            self._enqueue_quotas_for(res, tombstone_object(obj))

        def updated(old: Obj, new: Obj) -> None:
            if old is new or usage_changed(res, old, new):
                self._enqueue_quotas_for(res, new)

        inf.add_event_handler(on_add=changed, on_update=updated, on_delete=changed)
        return inf

    def _enqueue_quotas_for(self, res: Resource, obj: Mapping[str, Any]) -> None:
        ns = _md(obj).get("namespace")
        if not ns:
            return
        for q in self.quotas.lister().list(str(ns)):
            if res in needed_resources(q):
                self.enqueue(key_of(q))

    # -- sync ---------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        quota = self.quotas.lister().get_by_key(key)
        if quota is None:
            return
        ns = str(_md(quota).get("namespace") or "")
        informers = {res: self.monitor(res) for res in needed_resources(quota)}
        if not all(inf.has_synced for inf in informers.values()):
            raise Requeue(after=0.1, reason="waiting for informers to sync")
        objects = {res: inf.lister().list(ns) for res, inf in informers.items()}
        status, wake = compute_status(quota, objects, self.clock.wall())
        if status != (quota.get("status") or {}):
            try:
                await self.client.update_status(RESOURCEQUOTAS, {**copy_obj(quota), "status": status}, ns)
            except NotFound:
                return
            self.stats.status_writes += 1
        after = self.resync_period if wake is None else min(wake, self.resync_period)
        raise Requeue(after=after, reason="periodic recalculation")


def new(ctx: ControllerContext) -> ResourceQuotaController:
    return ResourceQuotaController(
        ctx.client, factory=ctx.factory, clock=ctx.clock,
        workers=int(ctx.options.get("concurrent_resource_quota_syncs", 5)),
        resync_period=float(ctx.options.get("resource_quota_sync_period", RESYNC_PERIOD)))
