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

from ..api.meta import parse_time
from ..api.quantity import ZERO, Quantity, to_canonical
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
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
_BARE_COMPUTE = ("cpu", "memory", "ephemeral-storage")
_LEGACY_COUNTS: dict[str, Resource] = {
    "pods": PODS, "services": SERVICES, "configmaps": CONFIGMAPS, "secrets": SECRETS,
    "persistentvolumeclaims": PERSISTENTVOLUMECLAIMS, "replicationcontrollers": REPLICATIONCONTROLLERS,
    "resourcequotas": RESOURCEQUOTAS,
}
POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
              "CrossNamespacePodAffinity")


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _q(value: Any) -> Quantity | None:
    try:
        return Quantity.parse(value)
    except ValueError:
        return None


def count_name(res: Resource) -> str:
    """``count/<plural>`` for the core group, ``count/<plural>.<group>`` otherwise."""
    return f"count/{res.plural}.{res.group}" if res.group else f"count/{res.plural}"


# ------------------------------------------------------------------------------------------------
# which API resource feeds a quota resource name (pure)
# ------------------------------------------------------------------------------------------------
def is_pod_compute_resource(name: str) -> bool:
    if name in _BARE_COMPUTE or name.startswith("hugepages-") or name.startswith("limits."):
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


# ------------------------------------------------------------------------------------------------
# usage of one object (pure)
# ------------------------------------------------------------------------------------------------
def _add(acc: Usage, name: str, value: Quantity) -> None:
    acc[name] = acc[name] + value if name in acc else value


def _container_amounts(container: Mapping[str, Any], kind: str) -> Usage:
    res = container.get("resources") or {}
    out: Usage = {}
    values = dict(res.get("limits") or {}) if kind == "requests" else {}
    values.update(res.get(kind) or {})  # requests fall back to limits
    for r, v in values.items():
        q = _q(v)
        if q is not None:
            out[str(r)] = q
    return out


def _max_into(acc: Usage, other: Usage) -> None:
    for r, q in other.items():
        if r not in acc or q > acc[r]:
            acc[r] = q


def pod_amounts(pod: Mapping[str, Any], kind: str) -> Usage:
    """The pod's effective ``requests`` or ``limits`` per resource (upstream PodRequests/PodLimits)."""
    spec = _spec(pod)
    total: Usage = {}
    for c in spec.get("containers") or ():
        for r, q in _container_amounts(c, kind).items():
            _add(total, r, q)
    sidecars: Usage = {}
    init_max: Usage = {}
    for c in spec.get("initContainers") or ():
        amounts = _container_amounts(c, kind)
        if c.get("restartPolicy") == "Always":
            for r, q in amounts.items():
                _add(sidecars, r, q)
                _add(total, r, q)
            _max_into(init_max, sidecars)
            continue
        step = dict(sidecars)
        for r, q in amounts.items():
            _add(step, r, q)
        _max_into(init_max, step)
    _max_into(total, init_max)
    for r, v in (spec.get("overhead") or {}).items():
        q = _q(v)
        if q is not None and r in total:
            _add(total, str(r), q)
    return {r: q for r, q in total.items()}


def pod_counts(pod: Mapping[str, Any], now: dt.datetime) -> bool:
    """Does the pod still use quota (upstream ``QuotaV1Pod``)?"""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return deletion_deadline(pod, now) != 0.0


def deletion_deadline(pod: Mapping[str, Any], now: dt.datetime) -> float | None:
    """Seconds until a deleting pod stops counting: None if not deleting, 0.0 once past."""
    md = _md(pod)
    ts = parse_time(md.get("deletionTimestamp"))
    grace = md.get("deletionGracePeriodSeconds")
    if ts is None or grace is None:
        return None
    left = (ts + dt.timedelta(seconds=int(grace)) - now).total_seconds()
    return 0.0 if left < 0 else max(left, 0.001)


def pod_usage(pod: Mapping[str, Any], now: dt.datetime) -> Usage:
    if not pod_counts(pod, now):
        return {}
    one = Quantity.of(1)
    usage: Usage = {"pods": one, "count/pods": one}
    for r, q in pod_amounts(pod, "requests").items():
        usage[f"requests.{r}"] = q
        if r in _BARE_COMPUTE or r.startswith("hugepages-"):
            usage[r] = q
    for r, q in pod_amounts(pod, "limits").items():
        usage[f"limits.{r}"] = q
    return usage


def service_usage(svc: Mapping[str, Any]) -> Usage:
    spec = _spec(svc)
    one = Quantity.of(1)
    usage: Usage = {"services": one, "count/services": one}
    ports = spec.get("ports") or []
    stype = spec.get("type") or "ClusterIP"
    if stype == "NodePort":
        usage["services.nodeports"] = Quantity.of(len(ports))
    elif stype == "LoadBalancer":
        usage["services.loadbalancers"] = one
        if spec.get("allocateLoadBalancerNodePorts") is False:
            usage["services.nodeports"] = Quantity.of(sum(1 for p in ports if p.get("nodePort")))
        else:
            usage["services.nodeports"] = Quantity.of(len(ports))
    return usage


def pvc_usage(pvc: Mapping[str, Any]) -> Usage:
    one = Quantity.of(1)
    usage: Usage = {"persistentvolumeclaims": one, "count/persistentvolumeclaims": one}
    request = _q(((_spec(pvc).get("resources") or {}).get("requests") or {}).get("storage"))
    klass = claim_class(pvc)
    if klass:
        usage[f"{klass}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = one
    if request is not None:
        usage["requests.storage"] = request
        if klass:
            usage[f"{klass}{STORAGE_CLASS_SUFFIX}requests.storage"] = request
    return usage


def object_usage(res: Resource, obj: Mapping[str, Any], now: dt.datetime) -> Usage:
    if res == PODS:
        return pod_usage(obj, now)
    if res == SERVICES:
        return service_usage(obj)
    if res == PERSISTENTVOLUMECLAIMS:
        return pvc_usage(obj)
    one = Quantity.of(1)
    usage: Usage = {count_name(res): one}
    if res.plural in _LEGACY_COUNTS and not res.group:
        usage[res.plural] = one
    return usage


# ------------------------------------------------------------------------------------------------
# scopes (pure)
# ------------------------------------------------------------------------------------------------
def scope_selectors(quota: Mapping[str, Any]) -> list[Obj]:
    """``spec.scopes`` (as Exists requirements) plus ``spec.scopeSelector.matchExpressions``."""
    spec = _spec(quota)
    out: list[Obj] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or ()]
    out += [dict(e) for e in (spec.get("scopeSelector") or {}).get("matchExpressions") or ()]
    return out


def is_best_effort(pod: Mapping[str, Any]) -> bool:
    spec = _spec(pod)
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        res = c.get("resources") or {}
        for part in (res.get("requests") or {}, res.get("limits") or {}):
            for r in ("cpu", "memory"):
                q = _q(part.get(r)) if r in part else None
                if q is not None and q > ZERO:
                    return False
    return True


def is_terminating(pod: Mapping[str, Any]) -> bool:
    ads = _spec(pod).get("activeDeadlineSeconds")
    return isinstance(ads, int) and ads >= 0


def _cross_namespace_terms(terms: Iterable[Mapping[str, Any]]) -> bool:
    for t in terms:
        term = t.get("podAffinityTerm", t)
        if term.get("namespaces") or term.get("namespaceSelector") is not None:
            return True
    return False


def uses_cross_namespace_affinity(pod: Mapping[str, Any]) -> bool:
    affinity = _spec(pod).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = affinity.get(kind) or {}
        if _cross_namespace_terms(a.get("requiredDuringSchedulingIgnoredDuringExecution") or ()) or \
                _cross_namespace_terms(a.get("preferredDuringSchedulingIgnoredDuringExecution") or ()):
            return True
    return False


def pod_matches_scope(pod: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    scope = selector.get("scopeName")
    if scope == "Terminating":
        return is_terminating(pod)
    if scope == "NotTerminating":
        return not is_terminating(pod)
    if scope == "BestEffort":
        return is_best_effort(pod)
    if scope == "NotBestEffort":
        return not is_best_effort(pod)
    if scope == "CrossNamespacePodAffinity":
        return uses_cross_namespace_affinity(pod)
    if scope == "PriorityClass":
        pc = str(_spec(pod).get("priorityClassName") or "")
        op = selector.get("operator")
        values = [str(v) for v in selector.get("values") or ()]
        if op == "Exists":
            return bool(pc)
        if op == "DoesNotExist":
            return not pc
        if op == "In":
            return bool(pc) and pc in values
        if op == "NotIn":
            return not pc or pc not in values
    return False


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
