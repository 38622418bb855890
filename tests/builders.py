"""Builders for API objects in tests (plain JSON dicts), in the spirit of upstream's
``pkg/scheduler/testing/wrappers.go``. Keep them generic: every argument is optional."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def make_pod(name: str = "pod", namespace: str = "default", *, node: str | None = None,
             requests: dict[str, str] | None = None, labels: dict[str, str] | None = None,
             priority: int | None = None, uid: str | None = None,
             containers: list[Obj] | None = None, init_containers: list[Obj] | None = None,
             host_ports: list[int] | None = None, tolerations: list[Obj] | None = None,
             node_selector: dict[str, str] | None = None, affinity: Obj | None = None,
             spread: list[Obj] | None = None, scheduler_name: str | None = None,
             scheduling_gates: list[str] | None = None, overhead: dict[str, str] | None = None,
             start_time: str | None = None, nominated_node: str | None = None,
             preemption_policy: str | None = None, deleting: bool = False,
             **spec_extra: Any) -> Obj:
    if containers is None:
        c: Obj = {"name": "c", "image": "busybox"}
        if requests is not None:
            c["resources"] = {"requests": dict(requests)}
        if host_ports:
            c["ports"] = [{"containerPort": p, "hostPort": p} for p in host_ports]
        containers = [c]
    spec: Obj = {"containers": containers, **spec_extra}
    optional = {"nodeName": node, "initContainers": init_containers, "priority": priority,
                "tolerations": tolerations, "nodeSelector": node_selector, "affinity": affinity,
                "topologySpreadConstraints": spread, "schedulerName": scheduler_name,
                "overhead": overhead, "preemptionPolicy": preemption_policy}
    spec.update({k: v for k, v in optional.items() if v is not None})
    if scheduling_gates:
        spec["schedulingGates"] = [{"name": g} for g in scheduling_gates]
    meta: Obj = {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}"}
    if labels:
        meta["labels"] = dict(labels)
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: Obj = {"phase": "Running" if node else "Pending"}
    if start_time:
        status["startTime"] = start_time
    if nominated_node:
        status["nominatedNodeName"] = nominated_node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def make_node(name: str = "node", *, cpu: str = "4", memory: str = "32Gi", pods: int = 110,
              labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
              unschedulable: bool = False, allocatable: dict[str, str] | None = None,
              images: list[Obj] | None = None) -> Obj:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), **(allocatable or {})}
    meta: Obj = {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    status: Obj = {"allocatable": alloc, "capacity": dict(alloc),
                   "conditions": [{"type": "Ready", "status": "True"}]}
    if images:
        status["images"] = images
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec, "status": status}


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    t: Obj = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


def toleration(key: str = "", value: str = "", effect: str = "", operator: str = "") -> Obj:
    t: Obj = {}
    for k, v in (("key", key), ("value", value), ("effect", effect), ("operator", operator)):
        if v:
            t[k] = v
    return t


def pod_affinity_term(labels: dict[str, str], topology_key: str = "kubernetes.io/hostname",
                      **extra: Any) -> Obj:
    return {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": topology_key, **extra}


def anti_affinity(labels: dict[str, str], topology_key: str = "kubernetes.io/hostname") -> Obj:
    """A required pod anti-affinity against pods with ``labels``."""
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        pod_affinity_term(labels, topology_key)]}}
