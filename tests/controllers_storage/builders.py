"""Builders for the storage and quota controller tests (plain JSON dicts)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
T0 = "2024-05-01T10:00:00Z"


def pv(name: str, size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), klass: str | None = "manual",
       phase: str | None = "Available", claim: Obj | None = None, labels: dict[str, str] | None = None,
       node: str | None = None, policy: str = "Retain", mode: str | None = None) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "persistentVolumeReclaimPolicy": policy,
                 "hostPath": {"path": f"/data/{name}"}}
    if klass is not None:
        spec["storageClassName"] = klass
    if claim is not None:
        spec["claimRef"] = claim
    if mode is not None:
        spec["volumeMode"] = mode
    if node is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    md: Obj = {"name": name}
    if labels:
        md["labels"] = labels
    obj: Obj = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": md, "spec": spec}
    if phase is not None:
        obj["status"] = {"phase": phase}
    return obj


def pvc(name: str, size: str = "1Gi", *, ns: str = "default", modes: tuple[str, ...] = ("ReadWriteOnce",),
        klass: str | None = "manual", uid: str | None = None, selector: Obj | None = None,
        annotations: dict[str, str] | None = None, volume: str | None = None, mode: str | None = None) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if klass is not None:
        spec["storageClassName"] = klass
    if selector is not None:
        spec["selector"] = selector
    if volume is not None:
        spec["volumeName"] = volume
    if mode is not None:
        spec["volumeMode"] = mode
    md: Obj = {"name": name, "namespace": ns}
    if uid is not None:
        md["uid"] = uid
    if annotations:
        md["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md, "spec": spec,
            "status": {"phase": "Pending"}}


def storage_class(name: str, *, provisioner: str = "kybernetes.io/local-path", mode: str = "WaitForFirstConsumer",
                  policy: str = "Delete", default: bool = False, created: str = T0) -> Obj:
    md: Obj = {"name": name, "creationTimestamp": created}
    if default:
        md["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": md,
            "provisioner": provisioner, "reclaimPolicy": policy, "volumeBindingMode": mode}


def container(name: str = "c", *, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None,
              restart: str | None = None) -> Obj:
    c: Obj = {"name": name, "image": "busybox"}
    res: Obj = {}
    if requests:
        res["requests"] = dict(requests)
    if limits:
        res["limits"] = dict(limits)
    if res:
        c["resources"] = res
    if restart:
        c["restartPolicy"] = restart
    return c


def pod(name: str, *, ns: str = "default", containers: list[Obj] | None = None, init: list[Obj] | None = None,
        phase: str = "Pending", claims: tuple[str, ...] = (), node: str | None = None, priority_class: str | None = None,
        deadline: int | None = None, deleting: str | None = None, grace: int | None = None,
        overhead: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"containers": containers if containers is not None else [container()]}
    if init:
        spec["initContainers"] = init
    if claims:
        spec["volumes"] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    if node:
        spec["nodeName"] = node
    if priority_class:
        spec["priorityClassName"] = priority_class
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    if overhead:
        spec["overhead"] = overhead
    md: Obj = {"name": name, "namespace": ns}
    if deleting:
        md["deletionTimestamp"] = deleting
        md["deletionGracePeriodSeconds"] = grace if grace is not None else 30
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": {"phase": phase}}


def quota(name: str = "q", hard: dict[str, str] | None = None, *, ns: str = "default",
          scopes: list[str] | None = None, scope_selector: list[Obj] | None = None) -> Obj:
    spec: Obj = {"hard": dict(hard or {})}
    if scopes:
        spec["scopes"] = scopes
    if scope_selector:
        spec["scopeSelector"] = {"matchExpressions": scope_selector}
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": ns}, "spec": spec}
