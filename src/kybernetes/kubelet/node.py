"""The Node object a kubelet registers and keeps up to date (pure: no I/O, no clock reads).

    cfg = fake_node_config(index=1)                 # sim-1, zone-a, 32 CPU, 256Gi, 110 pods
    node = build_node(cfg, now)                     # the full Node to POST
    status = compute_node_status(cfg, node["status"], now, ready=True)
    if node_status_changed(old_status, status): ...  # ignores heartbeat times

Simulated ("fake") nodes get addresses and pod ranges from private 10.x blocks that are never
routed: nothing sends traffic to them, they only have to be unique and look real.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api import meta as m

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.4-kyb"
FAKE_RUNTIME_VERSION = "fake://0.1"
KUBELET_PORT = 10250
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONES = ("zone-a", "zone-b", "zone-c")
FAKE_REGION = "sim"
FAKE_NODE_LABEL = "kybernetes.io/fake-node"

DEFAULT_FAKE_CAPACITY: Mapping[str, str] = {
    "cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti",
}

# Upstream condition types, in the order the kubelet reports them, with the reason/message it
# uses when all is well.
_HEALTHY: tuple[tuple[str, str, str, str], ...] = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
_NOT_READY = ("Ready", "False", "KubeletNotReady", "container runtime is not ready")


@dataclass(frozen=True)
class NodeConfig:
    """What a kubelet knows about the node it registers."""

    name: str
    internal_ip: str
    capacity: Mapping[str, str]
    allocatable: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    runtime_version: str = FAKE_RUNTIME_VERSION
    kubelet_version: str = KUBELET_VERSION
    pod_cidr: str | None = None
    os_image: str = "Kybernetes simulated node"
    kernel_version: str = "6.1.0-kyb"


def fake_node_name(prefix: str, index: int) -> str:
    """The name of simulated node ``index`` (1-based): ``sim-1``, ``sim-2`` ..."""
    return f"{prefix}{index}"


def zone_for(index: int) -> str:
    """zone-a, zone-b, zone-c in turn for 1-based node indexes."""
    return ZONES[(index - 1) % len(ZONES)]


def fake_internal_ip(index: int) -> str:
    """A unique, never-routed address in 10.96.0.0/11 for simulated node ``index`` (>= 1)."""
    if not 1 <= index < 254 * 254 * 32:
        raise ValueError(f"node index {index} out of range")
    block, rest = divmod(index, 254 * 254)
    third, fourth = divmod(rest, 254)
    return f"10.{96 + block}.{third}.{fourth + 1}"


def fake_pod_cidr(index: int) -> str:
    """A /24 from 10.128.0.0/9 for the pods of simulated node ``index`` (>= 0); never routed."""
    if not 0 <= index < 128 * 256:
        raise ValueError(f"node index {index} out of range")
    return f"10.{128 + index // 256}.{index % 256}.0/24"


def fake_node_config(index: int, *, prefix: str = "sim-", name: str | None = None,
                     capacity: Mapping[str, str] | None = None) -> NodeConfig:
    """The configuration of simulated node ``index`` (1-based)."""
    cap = {**DEFAULT_FAKE_CAPACITY, **(capacity or {})}
    node_name = name or fake_node_name(prefix, index)
    labels = {ZONE_LABEL: zone_for(index), REGION_LABEL: FAKE_REGION, FAKE_NODE_LABEL: "true"}
    return NodeConfig(name=node_name, internal_ip=fake_internal_ip(index), capacity=cap,
                      allocatable=dict(cap), labels=labels, pod_cidr=fake_pod_cidr(index))


def node_labels(cfg: NodeConfig) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
        HOSTNAME_LABEL: cfg.name, **cfg.labels,
    }


def _stable_id(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}/{name}".encode()).hexdigest()[:32]


def node_info(cfg: NodeConfig) -> Obj:
    return {
        "architecture": "amd64", "operatingSystem": "linux",
        "bootID": _stable_id(cfg.name, "boot"), "machineID": _stable_id(cfg.name, "machine"),
        "systemUUID": _stable_id(cfg.name, "system"),
        "containerRuntimeVersion": cfg.runtime_version, "kernelVersion": cfg.kernel_version,
        "kubeletVersion": cfg.kubelet_version, "kubeProxyVersion": cfg.kubelet_version,
        "osImage": cfg.os_image,
    }


def node_conditions(previous: list[Obj] | None, now: dt.datetime, *, ready: bool = True) -> list[Obj]:
    """The four kubelet conditions at ``now``; lastTransitionTime survives when status is unchanged."""
    ts = m.now_rfc3339(now)
    prev = {c.get("type"): c for c in previous or () if isinstance(c, dict)}
    out = []
    for ctype, status, reason, message in _HEALTHY:
        if ctype == "Ready" and not ready:
            ctype, status, reason, message = _NOT_READY
        old = prev.get(ctype)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append({"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": ts, "lastTransitionTime": since or ts})
    # keep conditions other components own (e.g. NetworkUnavailable)
    ours = {c[0] for c in _HEALTHY}
    out.extend(c for t, c in prev.items() if t not in ours)
    return out


def compute_node_status(cfg: NodeConfig, previous: Obj | None, now: dt.datetime, *,
                        ready: bool = True) -> Obj:
    """The whole status a kubelet posts for its node."""
    prev_conditions = (previous or {}).get("conditions")
    return {
        "capacity": dict(cfg.capacity),
        "allocatable": dict(cfg.allocatable),
        "conditions": node_conditions(prev_conditions, now, ready=ready),
        "addresses": [{"type": "InternalIP", "address": cfg.internal_ip},
                      {"type": "Hostname", "address": cfg.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": node_info(cfg),
    }


def build_node(cfg: NodeConfig, now: dt.datetime) -> Obj:
    """The Node a kubelet creates when it registers."""
    spec: Obj = {}
    if cfg.pod_cidr:
        spec = {"podCIDR": cfg.pod_cidr, "podCIDRs": [cfg.pod_cidr]}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": cfg.name, "labels": node_labels(cfg),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": spec,
        "status": compute_node_status(cfg, None, now),
    }


def _without_heartbeats(status: Obj | None) -> Obj:
    s = dict(status or {})
    s["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                       for c in s.get("conditions") or () if isinstance(c, dict)]
    return s


def node_status_changed(current: Obj | None, desired: Obj) -> bool:
    """Whether posting ``desired`` would change anything but heartbeat times."""
    cur = _without_heartbeats(current)
    want = _without_heartbeats(desired)
    return any(cur.get(k) != v for k, v in want.items())


def registration_patch(existing: Obj, cfg: NodeConfig) -> Obj | None:
    """A merge patch adding our labels to an already registered Node (None: nothing to change)."""
    labels = (existing.get("metadata") or {}).get("labels") or {}
    missing = {k: v for k, v in node_labels(cfg).items() if labels.get(k) != v}
    return {"metadata": {"labels": missing}} if missing else None


def heartbeat_deadline(last_posted: float | None, now: float, report_every: float) -> bool:
    """Whether a node status must be re-posted although nothing changed (every 5 min upstream)."""
    return last_posted is None or now - last_posted >= report_every
