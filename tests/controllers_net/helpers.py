"""Builders for the endpoints / node lifecycle tests (plain JSON dicts)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
T0 = "2024-05-01T10:00:00Z"


def pod(name: str, *, ip: str | None = "10.0.0.1", ready: bool = True, labels: dict[str, str] | None = None,
        ns: str = "default", node: str | None = "n1", ports: list[Obj] | None = None,
        phase: str = "Running", deleting: bool = False, hostname: str | None = None,
        subdomain: str | None = None, uid: str | None = None, ready_since: str = T0,
        tolerations: list[Obj] | None = None, restart_policy: str = "Always") -> Obj:
    md: Obj = {"name": name, "namespace": ns, "uid": uid or f"uid-{name}",
               "labels": {"app": "web"} if labels is None else labels, "creationTimestamp": T0}
    if deleting:
        md["deletionTimestamp"] = T0
    spec: Obj = {"containers": [{"name": "c", "image": "nginx",
                                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
                                 if ports is None else ports}],
                 "restartPolicy": restart_policy}
    if node:
        spec["nodeName"] = node
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    if tolerations is not None:
        spec["tolerations"] = tolerations
    status: Obj = {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "lastTransitionTime": ready_since}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def service(name: str = "web", *, selector: dict[str, str] | None = None, ports: list[Obj] | None = None,
            ns: str = "default", headless: bool = False, publish: bool = False,
            labels: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"selector": {"app": "web"} if selector is None else selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
                 if ports is None else ports}
    spec["clusterIP"] = "None" if headless else "10.96.0.10"
    if publish:
        spec["publishNotReadyAddresses"] = True
    md: Obj = {"name": name, "namespace": ns, "uid": f"svc-{name}", "creationTimestamp": T0}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": md, "spec": spec}


def node(name: str = "n1", *, ready: str | None = "True", zone: str = "zone-a", taints: list[Obj] | None = None,
         unschedulable: bool = False, heartbeat: str = T0, extra_conditions: list[Obj] | None = None) -> Obj:
    conditions: list[Obj] = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady",
                           "lastHeartbeatTime": heartbeat, "lastTransitionTime": T0})
        for ctype in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            conditions.append({"type": ctype, "status": "False", "lastHeartbeatTime": heartbeat,
                               "lastTransitionTime": T0})
    conditions += extra_conditions or []
    spec: Obj = {}
    if taints is not None:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "creationTimestamp": T0,
                         "labels": {"topology.kubernetes.io/zone": zone}},
            "spec": spec, "status": {"conditions": conditions}}
