"""Per-kind create/update strategies (pure functions over JSON dicts).

The generic store calls ``prepare_for_create`` and ``prepare_for_update``; they set the fields the
server owns (uid, timestamps, generation, status resets) the way Kubernetes' registry strategies
do. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any

from ..api import meta as m
from ..api.resources import ResourceInfo

Obj = dict[str, Any]

# System-owned metadata fields: clients cannot set them on create, and updates keep the old ones.
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink")

# Kinds whose status is reset on create (upstream strategies do this for these kinds).
_NO_GENERATION = {("", "Pod"), ("", "Node"), ("", "Namespace"), ("", "Service"), ("", "PersistentVolume"),
                  ("", "PersistentVolumeClaim"), ("", "ResourceQuota")}


def tracks_generation(info: ResourceInfo) -> bool:
    if info.custom:
        return True
    return info.has_status and (info.group, info.kind) not in _NO_GENERATION


def _qos_class(pod: Obj) -> str:
    containers = list((pod.get("spec") or {}).get("containers") or []) + list(
        (pod.get("spec") or {}).get("initContainers") or []
    )
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            limit = lim.get(r)
            request = req.get(r, limit)
            if limit is None or str(request) != str(limit):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_for_create(info: ResourceInfo, obj: Obj, now: str) -> None:
    md = m.meta(obj)
    for k in _SYSTEM_META:
        md.pop(k, None)
    md.pop("resourceVersion", None)
    md["uid"] = m.new_uid()
    md["creationTimestamp"] = now
    if tracks_generation(info):
        md["generation"] = 1
    key = (info.group, info.kind)
    if info.has_status and key not in {("", "Node"), ("", "Namespace")}:
        obj.pop("status", None)
    if key == ("", "Pod"):
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
    elif key == ("", "Namespace"):
        obj["status"] = {"phase": "Active"}
    elif key in {("", "PersistentVolume"), ("", "PersistentVolumeClaim")}:
        obj["status"] = {"phase": "Pending"}
    elif key == ("", "Service"):
        obj["status"] = {"loadBalancer": {}}
    elif info.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                       "ReplicationController", "HorizontalPodAutoscaler", "PodDisruptionBudget") and not info.custom:
        obj["status"] = {}
    if key == ("", "Node") and "status" not in obj:
        obj["status"] = {}
    if key == ("", "Secret"):
        fold_string_data(obj)
    if key == ("certificates.k8s.io", "CertificateSigningRequest"):
        from ..api.csr import set_requester
        from .admission.chain import request_user, user_info

        set_requester(obj, user_info(request_user.get()))
        obj["status"] = {}


def fold_string_data(secret: Obj) -> None:
    """A Secret's write-only ``stringData`` merged into ``data`` (base64), as the API does on write."""
    import base64

    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data") if isinstance(secret.get("data"), dict) else {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        secret["data"] = data


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_for_update(info: ResourceInfo, new: Obj, old: Obj, subresource: str = "") -> None:
    """Make ``new`` a valid successor of ``old`` (system metadata kept, status/spec split)."""
    nmd = m.meta(new)
    omd = old.get("metadata") or {}
    for k in _SYSTEM_META:
        if k in omd:
            nmd[k] = omd[k]
        else:
            nmd.pop(k, None)
    if (info.group, info.kind) == ("certificates.k8s.io", "CertificateSigningRequest"):
        from ..api import csr  # spec fixed; status via /status; conditions via /approval

        csr.prepare_for_update(new, old, subresource, m.now_rfc3339())
        return
    if subresource == "status":
        status = new.get("status")
        keep_meta = nmd
        new.clear()
        # shallow: the parts taken from ``old`` are shared, not copied (neither object is mutated
        # after this point; ``old`` is the update loop's private decode of the stored object)
        new.update(old)
        if status is not None:
            new["status"] = status
        else:
            new.pop("status", None)
        # a status write may not change anything in metadata but what the server owns
        new["metadata"] = {**(old.get("metadata") or {}), "resourceVersion": keep_meta.get("resourceVersion")}
        if not new["metadata"].get("resourceVersion"):
            new["metadata"].pop("resourceVersion", None)
        return
    if info.has_status and subresource != "binding":  # a binding also sets PodScheduled
        if "status" in old:
            new["status"] = old["status"]  # shared, as above
        else:
            new.pop("status", None)
    if tracks_generation(info) and _spec_part(new) != _spec_part(old):
        nmd["generation"] = int(omd.get("generation") or 1) + 1
    if (info.group, info.kind) == ("", "Secret"):
        fold_string_data(new)


def is_terminal_pod(pod: Obj) -> bool:
    return ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed")
