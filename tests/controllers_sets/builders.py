"""Object builders for the DaemonSet/StatefulSet unit tests (plain JSON dicts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kybernetes.controllers.history import DEFAULT_REVISION_LABEL

Obj = dict[str, Any]
NOW = dt.datetime(2024, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def ts(seconds_ago: float = 60.0) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    spec: Obj = {"taints": taints} if taints else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec}


def daemonset(name: str = "ds", *, image: str = "agent:1", strategy: Obj | None = None,
              node_selector: dict[str, str] | None = None, tolerations: list[Obj] | None = None,
              min_ready: int = 0, deleting: bool = False, **spec_extra: Any) -> Obj:
    pod_spec: Obj = {"containers": [{"name": "agent", "image": image}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    md: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1}
    if deleting:
        md["deletionTimestamp"] = ts(1)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": md,
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                     "updateStrategy": strategy or {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     "minReadySeconds": min_ready, **spec_extra}}


def pod(name: str, *, node: str | None = None, target: str | None = None, hash_: str = "h1",
        phase: str = "Running", ready: bool = True, ready_ago: float = 60.0, created_ago: float = 120.0,
        deleting: bool = False, labels: dict[str, str] | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
               "creationTimestamp": ts(created_ago),
               "labels": {DEFAULT_REVISION_LABEL: hash_, **(labels or {})}}
    if deleting:
        md["deletionTimestamp"] = ts(1)
    spec: Obj = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    if target:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [target]}]}]}}}
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": ts(ready_ago)}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}
