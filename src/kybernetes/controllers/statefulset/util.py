"""Pure StatefulSet helpers (upstream ``pkg/controller/statefulset/stateful_set_utils.go``).

Identity of replica ``i`` of set ``web`` with service ``nginx`` and claim template ``www``:

    pod name        web-<i>          labels statefulset.kubernetes.io/pod-name=web-<i>,
                                            apps.kubernetes.io/pod-index=<i>,
                                            controller-revision-hash=<revision name>
    hostname        web-<i>          subdomain nginx  (DNS: web-<i>.nginx.<ns>.svc)
    claim           www-web-<i>      mounted as the pod volume named ``www``
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from ...client.lister import copy_obj
from ..history import DEFAULT_REVISION_LABEL
from ..replicaset import available_in, is_pod_ready, owner_reference

Obj = dict[str, Any]

KIND = "StatefulSet"
API_VERSION = "apps/v1"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL_RE = re.compile(r"^(.*)-([0-9]+)$")


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(_md(obj).get("name") or "")


# ------------------------------------------------------------------------------------------------
# names and ordinals
# ------------------------------------------------------------------------------------------------
def parent_and_ordinal(pod: Mapping[str, Any]) -> tuple[str, int]:
    """("web", 2) for ``web-2``; ("", -1) when the name has no ordinal."""
    m = _ORDINAL_RE.match(name_of(pod))
    if m is None:
        return "", -1
    return m.group(1), int(m.group(2))


def ordinal_of(pod: Mapping[str, Any]) -> int:
    return parent_and_ordinal(pod)[1]


def is_member_of(sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    return parent_and_ordinal(pod)[0] == name_of(sts)


def start_ordinal(sts: Mapping[str, Any]) -> int:
    return int((_spec(sts).get("ordinals") or {}).get("start") or 0)


def replicas_of(sts: Mapping[str, Any]) -> int:
    v = _spec(sts).get("replicas")
    return 1 if v is None else int(v)


def pod_name(sts: Mapping[str, Any], ordinal: int) -> str:
    return f"{name_of(sts)}-{ordinal}"


def claim_name(template: str, sts_name: str, ordinal: int) -> str:
    return f"{template}-{sts_name}-{ordinal}"


def is_parallel(sts: Mapping[str, Any]) -> bool:
    return _spec(sts).get("podManagementPolicy") == "Parallel"


def update_type(sts: Mapping[str, Any]) -> str:
    return str((_spec(sts).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def partition(sts: Mapping[str, Any]) -> int:
    ru = (_spec(sts).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(ru.get("partition") or 0)


def retention(sts: Mapping[str, Any]) -> tuple[str, str]:
    """(whenDeleted, whenScaled) of ``persistentVolumeClaimRetentionPolicy`` (Retain by default)."""
    p = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(p.get("whenDeleted") or "Retain"), str(p.get("whenScaled") or "Retain")


# ------------------------------------------------------------------------------------------------
# pod state
# ------------------------------------------------------------------------------------------------
def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_md(pod).get("deletionTimestamp"))


def is_finished(pod: Mapping[str, Any]) -> bool:
    return phase(pod) in ("Failed", "Succeeded")


def is_running_and_ready(pod: Mapping[str, Any]) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def available_after(pod: Mapping[str, Any], min_ready: int, now: dt.datetime) -> float | None:
    """0 when running and available, seconds left when ready but not yet available, else None."""
    if phase(pod) != "Running":
        return None
    return available_in(pod, min_ready, now)


def is_healthy(pod: Mapping[str, Any], min_ready: int, now: dt.datetime) -> bool:
    return available_after(pod, min_ready, now) == 0.0 and not is_terminating(pod)


def pod_revision(pod: Mapping[str, Any]) -> str:
    return str((_md(pod).get("labels") or {}).get(DEFAULT_REVISION_LABEL) or "")


# ------------------------------------------------------------------------------------------------
# the pod and its claims
# ------------------------------------------------------------------------------------------------
def claims_for(sts: Mapping[str, Any], ordinal: int) -> list[Obj]:
    """The PVCs of replica ``ordinal``, from ``volumeClaimTemplates`` (labels + set selector)."""
    match_labels = (_spec(sts).get("selector") or {}).get("matchLabels") or {}
    out = []
    for template in _spec(sts).get("volumeClaimTemplates") or ():
        tmd = template.get("metadata") or {}
        md: Obj = {"name": claim_name(str(tmd.get("name") or ""), name_of(sts), ordinal),
                   "namespace": _md(sts).get("namespace"),
                   "labels": {**(tmd.get("labels") or {}), **match_labels}}
        if tmd.get("annotations"):
            md["annotations"] = dict(tmd["annotations"])
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
                    "spec": copy_obj(dict(template.get("spec") or {}))})
    return out


def claim_volumes(sts: Mapping[str, Any], ordinal: int) -> list[Obj]:
    out = []
    for template in _spec(sts).get("volumeClaimTemplates") or ():
        vname = str((template.get("metadata") or {}).get("name") or "")
        out.append({"name": vname, "persistentVolumeClaim": {
            "claimName": claim_name(vname, name_of(sts), ordinal)}})
    return out


def new_pod(sts: Mapping[str, Any], ordinal: int, revision: str) -> Obj:
    """Replica ``ordinal`` of ``sts`` (whose template is the wanted revision's), labelled ``revision``."""
    template = copy_obj(dict(_spec(sts).get("template") or {}))
    tmd = template.get("metadata") or {}
    name = pod_name(sts, ordinal)
    md: Obj = {"name": name, "namespace": _md(sts).get("namespace"),
               "ownerReferences": [owner_reference(sts, KIND, API_VERSION)]}
    for k in ("annotations", "finalizers"):
        if tmd.get(k):
            md[k] = tmd[k]
    md["labels"] = {**(tmd.get("labels") or {}), POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)}
    if revision:
        md["labels"][DEFAULT_REVISION_LABEL] = revision
    spec = template.get("spec") or {}
    spec["hostname"] = name
    if _spec(sts).get("serviceName"):
        spec["subdomain"] = _spec(sts)["serviceName"]
    claimed = claim_volumes(sts, ordinal)
    names = {v["name"] for v in claimed}
    spec["volumes"] = claimed + [v for v in spec.get("volumes") or () if v.get("name") not in names]
    if not spec["volumes"]:
        del spec["volumes"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def identity_matches(sts: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Name, namespace and identity labels as the set would make them (upstream identityMatches)."""
    parent, ordinal = parent_and_ordinal(pod)
    labels = _md(pod).get("labels") or {}
    return (parent == name_of(sts) and _md(pod).get("namespace") == _md(sts).get("namespace")
            and labels.get(POD_NAME_LABEL) == name_of(pod) and labels.get(POD_INDEX_LABEL) == str(ordinal))


def identity_patch(pod: Mapping[str, Any]) -> Obj:
    """The merge patch restoring a pod's identity labels."""
    return {"metadata": {"labels": {POD_NAME_LABEL: name_of(pod), POD_INDEX_LABEL: str(ordinal_of(pod))}}}
