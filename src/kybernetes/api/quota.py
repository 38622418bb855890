"""What one object costs against a ResourceQuota (upstream's quota evaluators), pure.

    usage(group, plural, obj)         -> {"pods": 1, "requests.cpu": 500m, ...}
    matches_scopes(quota, group, plural, obj), constraints(required, pod), tracked(...)

One set of rules for both users: ResourceQuota admission (``apiserver/admission/resourcequota.py``)
charges with them, and the resourcequota controller (``controllers/resourcequota.py``) recounts
``status.used`` with them, so the two always agree.

* pods: ``pods``, ``count/pods``, ``requests.<r>`` and bare ``cpu``/``memory``/
  ``ephemeral-storage``/``hugepages-*`` (requests fall back to limits), ``limits.<r>``; the pod's
  effective amounts are upstream's ``PodRequests``/``PodLimits`` (containers plus sidecars, or the
  largest init step, plus overhead). Terminal or deletion-expired pods cost nothing.
* services: ``services``, ``count/services``, ``services.nodeports``, ``services.loadbalancers``;
* PVCs: ``persistentvolumeclaims``, ``count/persistentvolumeclaims``, ``requests.storage`` and the
  ``<class>.storageclass.storage.k8s.io/`` variants;
* everything else: ``count/<plural>[.<group>]`` plus the legacy bare names for configmaps,
  secrets, replicationcontrollers and resourcequotas.

Scopes (``spec.scopes``, ``spec.scopeSelector``) select pods only; a scoped quota never
matches other kinds: Terminating, NotTerminating, BestEffort, NotBestEffort, PriorityClass
(In/NotIn/Exists/DoesNotExist) and CrossNamespacePodAffinity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from .meta import parse_time
from .quantity import ZERO, Quantity
from .storageclass import claim_class

Obj = dict[str, Any]
Usage = dict[str, Quantity]

STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
BARE_COMPUTE = ("cpu", "memory", "ephemeral-storage")
LEGACY_COUNTS = frozenset({"pods", "services", "configmaps", "secrets", "persistentvolumeclaims",
                           "replicationcontrollers", "resourcequotas"})
# names whose presence in a quota forces every container to state them (upstream validationSet)
REQUIRED_PER_CONTAINER = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"})


def _q(value: Any) -> Quantity | None:
    try:
        return Quantity.parse(value)
    except (ValueError, TypeError):
        return None


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def count_name(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


# ------------------------------------------------------------------------------------------
# pods
def _add(acc: Usage, name: str, q: Quantity) -> None:
    acc[name] = acc[name] + q if name in acc else q


def _max_into(acc: Usage, other: Usage) -> None:
    for r, q in other.items():
        if r not in acc or q > acc[r]:
            acc[r] = q


def _container_amounts(container: Mapping[str, Any], bucket: str) -> Usage:
    res = container.get("resources") or {}
    values = dict(res.get("limits") or {}) if bucket == "requests" else {}
    values.update(res.get(bucket) or {})
    return {str(r): q for r, v in values.items() if (q := _q(v)) is not None}


def pod_amounts(pod: Mapping[str, Any], bucket: str) -> Usage:
    spec = _spec(pod)
    total: Usage = {}
    for c in spec.get("containers") or ():
        for r, q in _container_amounts(c, bucket).items():
            _add(total, r, q)
    sidecars: Usage = {}
    init_max: Usage = {}
    for c in spec.get("initContainers") or ():
        amounts = _container_amounts(c, bucket)
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
    return total


def pod_counts(pod: Mapping[str, Any], now: dt.datetime) -> bool:
    """Does the pod still use quota (upstream ``QuotaV1Pod``)?"""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return deletion_deadline(pod, now) != 0.0


def deletion_deadline(pod: Mapping[str, Any], now: dt.datetime) -> float | None:
    """Seconds until a deleting pod stops counting: None if not deleting, 0.0 once past."""
    md = pod.get("metadata") or {}
    ts = parse_time(md.get("deletionTimestamp"))
    grace = md.get("deletionGracePeriodSeconds")
    if ts is None or grace is None:
        return None
    left = (ts + dt.timedelta(seconds=int(grace)) - now).total_seconds()
    return 0.0 if left < 0 else max(left, 0.001)


def pod_usage(pod: Mapping[str, Any], now: dt.datetime | None = None) -> Usage:
    if not pod_counts(pod, now or dt.datetime.now(dt.timezone.utc)):
        return {}
    one = Quantity.of(1)
    usage: Usage = {"pods": one, "count/pods": one}
    for r, q in pod_amounts(pod, "requests").items():
        usage[f"requests.{r}"] = q
        if r in BARE_COMPUTE or r.startswith("hugepages-"):
            usage[r] = q
    for r, q in pod_amounts(pod, "limits").items():
        usage[f"limits.{r}"] = q
    return usage


def _container_names_for(container: Mapping[str, Any]) -> set[str]:
    """The compute names one container states (upstream ``podComputeUsageHelper``)."""
    res = container.get("resources") or {}
    names: set[str] = set()
    for r in (res.get("requests") or {}):
        names.add(f"requests.{r}")
        if r in BARE_COMPUTE or str(r).startswith("hugepages-"):
            names.add(str(r))
    for r in (res.get("limits") or {}):
        names.add(f"limits.{r}")
    return names


def constraints(required: Iterable[str], pod: Mapping[str, Any]) -> str | None:
    """``must specify requests.cpu for: c; ...`` when a quota limits cpu/memory and a container
    does not state it (upstream's backward-compatible pod constraint), else None."""
    req = set(required) & REQUIRED_PER_CONTAINER
    if not req:
        return None
    missing: dict[str, list[str]] = {}
    spec = _spec(pod)
    for c in list(spec.get("containers") or ()) + list(spec.get("initContainers") or ()):
        have = _container_names_for(c)
        for r in sorted(req - have):
            missing.setdefault(r, [])
            if c.get("name", "") not in missing[r]:
                missing[r].append(str(c.get("name", "")))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{r} for: {','.join(sorted(names))}" for r, names in sorted(missing.items()))


# ------------------------------------------------------------------------------------------
# services, PVCs, counts
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


def usage(group: str, plural: str, obj: Mapping[str, Any], now: dt.datetime | None = None) -> Usage:
    """What ``obj`` (of resource ``group``/``plural``) costs."""
    if (group, plural) == ("", "pods"):
        return pod_usage(obj, now)
    if (group, plural) == ("", "services"):
        return service_usage(obj)
    if (group, plural) == ("", "persistentvolumeclaims"):
        return pvc_usage(obj)
    one = Quantity.of(1)
    out: Usage = {count_name(group, plural): one}
    if not group and plural in LEGACY_COUNTS:
        out[plural] = one
    return out


def tracked(group: str, plural: str, names: Iterable[str]) -> list[str]:
    """The quota names (of ``names``) that objects of this resource can consume."""
    out = []
    for n in names:
        if (group, plural) == ("", "pods"):
            ok = n in ("pods", "count/pods") or n in BARE_COMPUTE or n.startswith(("hugepages-", "limits.")) or (
                n.startswith("requests.") and n != "requests.storage")
        elif (group, plural) == ("", "services"):
            ok = n in ("services", "count/services", "services.nodeports", "services.loadbalancers")
        elif (group, plural) == ("", "persistentvolumeclaims"):
            ok = n in ("persistentvolumeclaims", "count/persistentvolumeclaims", "requests.storage") or (
                STORAGE_CLASS_SUFFIX in n and n.endswith(("/requests.storage", "/persistentvolumeclaims")))
        else:
            ok = n == count_name(group, plural) or (not group and n == plural and plural in LEGACY_COUNTS)
        if ok:
            out.append(n)
    return out


def charged_operations(group: str, plural: str) -> frozenset[str]:
    """Operations that can change usage: services and PVCs also on update, others on create."""
    if (group, plural) in (("", "services"), ("", "persistentvolumeclaims")):
        return frozenset({"CREATE", "UPDATE"})
    return frozenset({"CREATE"})


# ------------------------------------------------------------------------------------------
# scopes
def scope_selectors(quota: Mapping[str, Any]) -> list[Obj]:
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
    return isinstance(ads, int) and not isinstance(ads, bool) and ads >= 0


def _cross_ns(terms: Iterable[Mapping[str, Any]]) -> bool:
    for t in terms:
        term = t.get("podAffinityTerm", t)
        if term.get("namespaces") or term.get("namespaceSelector") is not None:
            return True
    return False


def uses_cross_namespace_affinity(pod: Mapping[str, Any]) -> bool:
    affinity = _spec(pod).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = affinity.get(kind) or {}
        if _cross_ns(a.get("requiredDuringSchedulingIgnoredDuringExecution") or ()) or \
                _cross_ns(a.get("preferredDuringSchedulingIgnoredDuringExecution") or ()):
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


def matches_scopes(quota: Mapping[str, Any], group: str, plural: str, obj: Mapping[str, Any]) -> bool:
    selectors = scope_selectors(quota)
    if not selectors:
        return True
    if (group, plural) != ("", "pods"):
        return False
    return all(pod_matches_scope(obj, s) for s in selectors)
