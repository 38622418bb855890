"""Pure DaemonSet helpers (upstream ``pkg/controller/daemon/util`` and the node predicates).

* ``new_pod(ds, node, hash)``: the pod the controller creates for a node: the template, the
  ``controller-revision-hash`` label, the default DaemonSet tolerations and a required node
  affinity ``matchFields metadata.name In [node]`` (the scheduler binds it).
* ``node_should_run(node, ds)`` -> (should_run, should_continue_running): node name, node
  selector/affinity, and taints: an untolerated NoSchedule taint stops new pods, an untolerated
  NoExecute taint also evicts existing ones.
* ``target_node(pod)``: the node a daemon pod belongs to (``spec.nodeName`` or its affinity).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...api import labels as lbl
from ...api.meta import parse_time
from ...client.lister import copy_obj
from ..deployment.util import scaled_value
from ..history import DEFAULT_REVISION_LABEL
from ..replicaset import owner_reference

Obj = dict[str, Any]

KIND = "DaemonSet"
API_VERSION = "apps/v1"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
NAME_FIELD = "metadata.name"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

_DEFAULT_TOLERATIONS: tuple[tuple[str, str], ...] = (
    (NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute"), (DISK_PRESSURE, "NoSchedule"),
    (MEMORY_PRESSURE, "NoSchedule"), (PID_PRESSURE, "NoSchedule"), (UNSCHEDULABLE, "NoSchedule"),
)


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(_md(obj).get("name") or "")


# ------------------------------------------------------------------------------------------------
# tolerations and taints
# ------------------------------------------------------------------------------------------------
def default_tolerations(host_network: bool) -> list[Obj]:
    """The tolerations every daemon pod gets (network-unavailable only with hostNetwork)."""
    pairs = list(_DEFAULT_TOLERATIONS)
    if host_network:
        pairs.append((NETWORK_UNAVAILABLE, "NoSchedule"))
    return [{"key": k, "operator": "Exists", "effect": e} for k, e in pairs]


def add_daemon_tolerations(spec: Obj) -> None:
    """Add the default tolerations to a pod spec, replacing any for the same key and effect."""
    extra = default_tolerations(bool(spec.get("hostNetwork")))
    wanted = {(t["key"], t["effect"]) for t in extra}
    kept = [t for t in spec.get("tolerations") or () if (t.get("key"), t.get("effect")) not in wanted]
    spec["tolerations"] = kept + extra


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """One toleration against one taint (empty key with Exists matches every key)."""
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


def untolerated_taint(taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]],
                      effects: tuple[str, ...]) -> Mapping[str, Any] | None:
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


# ------------------------------------------------------------------------------------------------
# node selector and affinity
# ------------------------------------------------------------------------------------------------
_OPS = {"In": lbl.IN, "NotIn": lbl.NOT_IN, "Exists": lbl.EXISTS, "DoesNotExist": lbl.DOES_NOT_EXIST,
        "Gt": lbl.GREATER_THAN, "Lt": lbl.LESS_THAN}


def _requirements(exprs: Iterable[Mapping[str, Any]]) -> list[lbl.Requirement] | None:
    out = []
    for e in exprs:
        op = _OPS.get(str(e.get("operator") or ""))
        if op is None:
            return None
        out.append(lbl.Requirement(str(e.get("key") or ""), op, tuple(str(v) for v in e.get("values") or ())))
    return out


def term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A nodeSelectorTerm: all its expressions (labels) and fields (``metadata.name``) match."""
    exprs = _requirements(term.get("matchExpressions") or ())
    fields = _requirements(term.get("matchFields") or ())
    if exprs is None or fields is None or not (exprs or fields):
        return False
    labels = _md(node).get("labels") or {}
    if not all(r.matches(labels) for r in exprs):
        return False
    if any(r.key != NAME_FIELD for r in fields):
        return False
    return all(r.matches({NAME_FIELD: name_of(node)}) for r in fields)


def node_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """``spec.nodeSelector`` and required node affinity of ``pod`` accept ``node``."""
    spec = pod.get("spec") or {}
    labels = _md(node).get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or ())


def with_node_affinity(affinity: Mapping[str, Any] | None, node_name: str) -> Obj:
    """``affinity`` whose required node terms are replaced by ``metadata.name In [node_name]``."""
    out = copy.deepcopy(dict(affinity or {}))
    na = out.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node_name]}]}]}
    return out


def target_node(pod: Mapping[str, Any]) -> str | None:
    """``spec.nodeName``, else the single node named by the required affinity's matchFields."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution")) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for f in term.get("matchFields") or ():
            values = f.get("values") or ()
            if f.get("key") == NAME_FIELD and f.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


# ------------------------------------------------------------------------------------------------
# the daemon pod
# ------------------------------------------------------------------------------------------------
def template_generation(ds: Mapping[str, Any]) -> str | None:
    return (_md(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)


def pod_template(ds: Mapping[str, Any], hash_: str) -> Obj:
    """The template with the revision labels and default tolerations (upstream CreatePodTemplate)."""
    template = copy_obj(dict((ds.get("spec") or {}).get("template") or {}))
    md = template.setdefault("metadata", {})
    labels = md.setdefault("labels", {})
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    if hash_:
        labels[DEFAULT_REVISION_LABEL] = hash_
    add_daemon_tolerations(template.setdefault("spec", {}))
    return template


def new_pod(ds: Mapping[str, Any], node_name: str, hash_: str) -> Obj:
    """The pod to create on ``node_name`` (generateName ``<ds>-``, owned by the DaemonSet)."""
    template = pod_template(ds, hash_)
    tmd = template.get("metadata") or {}
    md: Obj = {"generateName": f"{name_of(ds)}-", "namespace": _md(ds).get("namespace"),
               "ownerReferences": [owner_reference(ds, KIND, API_VERSION)]}
    for k in ("labels", "annotations", "finalizers"):
        if tmd.get(k):
            md[k] = tmd[k]
    spec = template.get("spec") or {}
    spec["affinity"] = with_node_affinity(spec.get("affinity"), node_name)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def node_should_run(node: Mapping[str, Any], ds: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should run a daemon pod, should keep an existing one) on ``node`` (upstream
    ``NodeShouldRunDaemonPod``): an untolerated NoSchedule taint only blocks new pods."""
    pod = pod_template(ds, "")
    spec = pod.get("spec") or {}
    if spec.get("nodeName") and spec["nodeName"] != name_of(node):
        return False, False
    if not node_matches(pod, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or ()
    tolerations = spec.get("tolerations") or ()
    if untolerated_taint(taints, tolerations, ("NoSchedule", "NoExecute")) is None:
        return True, True
    if untolerated_taint(taints, tolerations, ("NoExecute",)) is not None:
        return False, False
    return False, True


def is_updated(pod: Mapping[str, Any], hash_: str, generation: str | None) -> bool:
    labels = _md(pod).get("labels") or {}
    if hash_ and labels.get(DEFAULT_REVISION_LABEL) == hash_:
        return True
    return generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation


def creation_order(pod: Mapping[str, Any]) -> tuple[int, float, str]:
    """Oldest first; bound pods before unbound ones (upstream podByCreationTimestampAndPhase)."""
    t = parse_time(_md(pod).get("creationTimestamp"))
    bound = 0 if (pod.get("spec") or {}).get("nodeName") else 1
    return (bound, t.timestamp() if t is not None else 0.0, name_of(pod))


# ------------------------------------------------------------------------------------------------
# strategy arithmetic
# ------------------------------------------------------------------------------------------------
def is_rolling_update(ds: Mapping[str, Any]) -> bool:
    return ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def surge_and_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for ``desired`` nodes, percentages rounded up; both 0 -> (0, 1)."""
    if not is_rolling_update(ds):
        return 0, 1
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(ru.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", 1), desired, True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def allows_surge(ds: Mapping[str, Any]) -> bool:
    """Whether maxSurge is non-zero (for any number of nodes)."""
    return is_rolling_update(ds) and surge_and_unavailable(ds, 100)[0] > 0
