"""LimitRanger: LimitRange defaults on pod create, min/max/ratio checks on pods and PVCs.

Mutating (pod CREATE): each ``type: Container`` item's ``default`` (limits) and
``defaultRequest`` (requests) fill what a container or init container leaves out, and the pod is
annotated ``kubernetes.io/limit-ranger: LimitRanger plugin set: cpu request for container c; ...``.

Validating (pod CREATE, PVC CREATE/UPDATE; never subresources; objects being deleted pass):

* ``Container`` items: every container and init container against ``min``, ``max`` and
  ``maxLimitRequestRatio``;
* ``Pod`` items: the pod's effective requests/limits (upstream ``PodRequests``: containers plus
  sidecars, or the largest init container step) against the same bounds;
* ``PersistentVolumeClaim`` items: ``spec.resources.requests`` against ``min``/``max``.

A violation is 403 Forbidden with every failed constraint, upstream's wording and aggregate form:
``pods "p" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, ...]``.
Quantities compare at milli precision like upstream (``MilliValue``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...api.quantity import Quantity, to_canonical
from .cache import PrefixCache
from .chain import CREATE, UPDATE, Attributes, Plugin, aggregate, forbidden

Obj = dict[str, Any]
ResourceList = dict[str, Quantity]

NAME = "LimitRanger"
ANNOTATION = "kubernetes.io/limit-ranger"
MAX_MILLI_VALUE = (2**63 - 1) // 1000


def _q(value: Any) -> Quantity | None:
    try:
        return Quantity.parse(value)
    except (ValueError, TypeError):
        return None


def _text(value: Any) -> str:
    try:
        return to_canonical(value)
    except (ValueError, TypeError):
        return str(value)


def resource_list(values: Mapping[str, Any] | None) -> ResourceList:
    out: ResourceList = {}
    for k, v in (values or {}).items():
        q = _q(v)
        if q is not None:
            out[str(k)] = q
    return out


def _items(limit_range: Obj) -> list[Obj]:
    return [i for i in ((limit_range.get("spec") or {}).get("limits") or []) if isinstance(i, dict)]


# ------------------------------------------------------------------------------------------
# defaults (pure)
def default_requirements(limit_ranges: Iterable[Obj]) -> tuple[Obj, Obj]:
    """(requests, limits) defaults from the Container items, later items winning."""
    requests: Obj = {}
    limits: Obj = {}
    for lr in limit_ranges:
        for item in _items(lr):
            if item.get("type") == "Container":
                requests.update(item.get("defaultRequest") or {})
                limits.update(item.get("default") or {})
    return requests, limits


def _merge_container(container: Obj, requests: Obj, limits: Obj, what: str) -> list[str]:
    res = container.get("resources")
    if not isinstance(res, dict):
        res = container["resources"] = {}
    notes = []
    set_limits = []
    set_requests = []
    if limits:
        have = res.get("limits") if isinstance(res.get("limits"), dict) else {}
        for k, v in limits.items():
            if k not in have:
                have = {**have, k: v}
                set_limits.append(k)
        if have:
            res["limits"] = have
    if requests:
        have = res.get("requests") if isinstance(res.get("requests"), dict) else {}
        for k, v in requests.items():
            if k not in have:
                have = {**have, k: v}
                set_requests.append(k)
        if have:
            res["requests"] = have
    name = container.get("name", "")
    if set_requests:
        notes.append(f"{', '.join(sorted(set_requests))} request for {what} {name}")
    if set_limits:
        notes.append(f"{', '.join(sorted(set_limits))} limit for {what} {name}")
    return notes


def apply_defaults(pod: Obj, limit_ranges: Sequence[Obj]) -> bool:
    """Fill container resources from the LimitRanges' defaults in place; True when changed.

    Each LimitRange is applied in turn (as upstream, which calls the mutate function once per
    LimitRange), so the first range to supply a default for a resource wins.
    """
    changed = False
    notes: list[str] = []
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return False
    for lr in limit_ranges:
        requests, limits = default_requirements([lr])
        if not requests and not limits:
            continue
        lr_notes: list[str] = []
        for key, what in (("containers", "container"), ("initContainers", "init container")):
            for c in spec.get(key) or []:
                if isinstance(c, dict):
                    lr_notes += _merge_container(c, copy.deepcopy(requests), copy.deepcopy(limits), what)
        if lr_notes:
            notes = lr_notes
            changed = True
    if notes:
        md = pod.setdefault("metadata", {})
        ann = md.get("annotations") if isinstance(md.get("annotations"), dict) else {}
        md["annotations"] = {**ann, ANNOTATION: "LimitRanger plugin set: " + "; ".join(notes)}
    return changed


# ------------------------------------------------------------------------------------------
# constraints (pure)
def _milli(q: Quantity) -> int:
    return q.milli_value()


def _values(req: Quantity | None, lim: Quantity | None, enforced: Quantity) -> tuple[int, int, int]:
    """Upstream compares at milli precision unless a value would overflow it."""
    r = req if req is not None else Quantity.of(0)
    li = lim if lim is not None else Quantity.of(0)
    if max(r.int_value(), li.int_value(), enforced.int_value()) <= MAX_MILLI_VALUE:
        return _milli(r), _milli(li), _milli(enforced)
    return r.int_value(), li.int_value(), enforced.int_value()


def min_constraint(kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    rv, lv, ev = _values(req, lim, enforced)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if rv < ev:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}"
    if lim is not None and lv < ev:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
    return None


def max_constraint(kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    rv, lv, ev = _values(req, lim, enforced)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if lv > ev:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
    if req is not None and rv > ev:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def max_request_constraint(kind: str, name: str, enforced: Quantity, requests: ResourceList) -> str | None:
    req = requests.get(name)
    rv, _, ev = _values(req, None, enforced)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if rv > ev:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def ratio_constraint(kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    rv, lv, _ = _values(req, lim, enforced)
    if req is None or rv == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
    if lim is None or lv == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
    ratio = lv / rv
    observed, allowed = float(ratio), float(enforced.int_value())
    if enforced.int_value() <= MAX_MILLI_VALUE:
        observed, allowed = ratio * 1000, float(enforced.milli_value())
    if observed > allowed:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {ratio:f}"
    return None


def _bounds(item: Obj, kind: str, requests: ResourceList, limits: ResourceList) -> list[str]:
    out: list[str] = []
    for key, fn in (("min", min_constraint), ("max", max_constraint), ("maxLimitRequestRatio", ratio_constraint)):
        for name, value in (item.get(key) or {}).items():
            enforced = _q(value)
            if enforced is None:
                continue
            msg = fn(kind, str(name), enforced, requests, limits)
            if msg:
                out.append(msg)
    return out


def _add(acc: ResourceList, other: ResourceList) -> None:
    for k, q in other.items():
        acc[k] = acc[k] + q if k in acc else q


def _max_into(acc: ResourceList, other: ResourceList) -> None:
    for k, q in other.items():
        if k not in acc or q > acc[k]:
            acc[k] = q


def pod_total(pod: Obj, bucket: str) -> ResourceList:
    """The pod's effective ``requests`` or ``limits`` (containers and sidecars, or the largest
    init container step, whichever is larger), from what the containers state."""
    spec = pod.get("spec") or {}
    total: ResourceList = {}
    for c in spec.get("containers") or []:
        _add(total, resource_list((c.get("resources") or {}).get(bucket)))
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for c in spec.get("initContainers") or []:
        amounts = resource_list((c.get("resources") or {}).get(bucket))
        if c.get("restartPolicy") == "Always":
            _add(total, amounts)
            _add(sidecars, amounts)
            step = dict(sidecars)
        else:
            step = dict(amounts)
            _add(step, sidecars)
        _max_into(init_max, step)
    _max_into(total, init_max)
    return total


def check_pod(pod: Obj, limit_range: Obj) -> list[str]:
    """Every violated constraint of one LimitRange, as upstream's messages."""
    out: list[str] = []
    spec = pod.get("spec") or {}
    for item in _items(limit_range):
        kind = item.get("type")
        if kind == "Container":
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    res = c.get("resources") or {}
                    out += _bounds(item, "Container", resource_list(res.get("requests")), resource_list(res.get("limits")))
        elif kind == "Pod":
            out += _bounds(item, "Pod", pod_total(pod, "requests"), pod_total(pod, "limits"))
    return out


def check_pvc(pvc: Obj, limit_range: Obj) -> list[str]:
    out: list[str] = []
    requests = resource_list(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))
    for item in _items(limit_range):
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, value in (item.get("min") or {}).items():
            enforced = _q(value)
            if enforced is not None and (msg := min_constraint("PersistentVolumeClaim", str(name), enforced, requests, {})):
                out.append(msg)
        for name, value in (item.get("max") or {}).items():
            enforced = _q(value)
            if enforced is not None and (msg := max_request_constraint("PersistentVolumeClaim", str(name), enforced, requests)):
                out.append(msg)
    return out


# ------------------------------------------------------------------------------------------
# the plugin
class LimitRanger(Plugin):
    NAME = NAME
    operations = frozenset({CREATE, UPDATE})
    resources = frozenset({("", "pods"), ("", "persistentvolumeclaims")})
    mutating = True
    validating = True

    def __init__(self, limit_ranges: PrefixCache) -> None:
        self.limit_ranges = limit_ranges

    def handles(self, attrs: Attributes) -> bool:
        if not super().handles(attrs) or attrs.obj is None:
            return False
        if attrs.is_("", "pods") and attrs.operation == UPDATE:
            return False  # containers are immutable: nothing to default or check
        return not ((attrs.old or {}).get("metadata") or {}).get("deletionTimestamp")

    async def admit(self, attrs: Attributes) -> None:
        if not attrs.is_("", "pods"):
            return
        ranges = await self.limit_ranges.list(attrs.namespace)
        if ranges:
            assert attrs.obj is not None
            apply_defaults(attrs.obj, ranges)

    async def validate(self, attrs: Attributes) -> None:
        ranges = await self.limit_ranges.list(attrs.namespace)
        assert attrs.obj is not None
        for lr in ranges:
            msgs = check_pod(attrs.obj, lr) if attrs.is_("", "pods") else check_pvc(attrs.obj, lr)
            if msgs:
                raise forbidden(attrs, aggregate(msgs))
