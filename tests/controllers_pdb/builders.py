"""Small object builders for the PDB / eviction / pod GC tests (plain JSON dicts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def ts(seconds_before_now: float = 0.0) -> str:
    return (NOW - dt.timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}


def pod(name: str, *, labels: dict[str, str] | None = None, ready: bool = True, phase: str = "Running",
        owner_ref: Obj | None = None, deleting: bool = False, node: str | None = None, ns: str = "default",
        created: str | None = None, rv: str = "10", reason: str | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": ns, "uid": f"uid-{name}", "resourceVersion": rv,
               "labels": dict(labels if labels is not None else {"app": "web"}),
               "creationTimestamp": created or ts(100)}
    if owner_ref is not None:
        md["ownerReferences"] = [owner_ref]
    if deleting:
        md["deletionTimestamp"] = ts(0)
    status: Obj = {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if reason:
        status["reason"] = reason
    spec: Obj = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def pdb(name: str = "web", *, min_available: int | str | None = None, max_unavailable: int | str | None = None,
        selector: Obj | None = None, generation: int = 1, status: Obj | None = None,
        policy: str | None = None, ns: str = "default") -> Obj:
    spec: Obj = {"selector": selector if selector is not None else {"matchLabels": {"app": "web"}}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if policy is not None:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-pdb-{name}", "generation": generation,
                         "resourceVersion": "5"},
            "spec": spec, "status": dict(status or {})}


def node(name: str, *, ready: bool = True, taints: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"taints": list(taints or [])},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
