"""Pure Node and Lease building: table-driven, no loop, no sockets."""

from __future__ import annotations

import datetime as dt

import pytest

from kybernetes.kubelet.fake import fake_node_configs
from kybernetes.kubelet.lease import build_lease, renew_patch
from kybernetes.kubelet.node import (
    build_node,
    compute_node_status,
    fake_internal_ip,
    fake_node_config,
    fake_pod_cidr,
    heartbeat_deadline,
    node_conditions,
    node_status_changed,
    registration_patch,
    zone_for,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=10)


@pytest.mark.parametrize(("index", "zone"), [(1, "zone-a"), (2, "zone-b"), (3, "zone-c"), (4, "zone-a"), (1000, "zone-a")])
def test_zones_in_turn(index: int, zone: str) -> None:
    assert zone_for(index) == zone


def test_fake_addresses_and_ranges_are_unique_for_many_nodes() -> None:
    ips = {fake_internal_ip(i) for i in range(1, 5001)}
    cidrs = {fake_pod_cidr(i) for i in range(1, 5001)}
    assert len(ips) == 5000 and len(cidrs) == 5000
    assert all(ip.startswith("10.") and not ip.endswith((".0", ".255")) for ip in ips)
    with pytest.raises(ValueError):
        fake_internal_ip(0)


def test_fake_node_configs_names() -> None:
    assert [c.name for c in fake_node_configs(3)] == ["sim-1", "sim-2", "sim-3"]
    assert [c.name for c in fake_node_configs(2, node_name_prefix="n")] == ["n1", "n2"]
    assert [c.name for c in fake_node_configs(1, node_name="solo")] == ["solo"]
    with pytest.raises(ValueError):
        fake_node_configs(2, node_name="solo")


def test_build_node() -> None:
    node = build_node(fake_node_config(2, capacity={"cpu": "8"}), T0)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "sim-2" and labels["topology.kubernetes.io/zone"] == "zone-b"
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
    assert not any(k.startswith("node-role.kubernetes.io/") for k in labels)
    st = node["status"]
    assert st["capacity"] == {"cpu": "8", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    assert st["allocatable"] == st["capacity"]
    assert [c["type"] for c in st["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    ready = st["conditions"][-1]
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "KubeletReady", "kubelet is posting ready status")
    assert st["nodeInfo"]["kubeletVersion"] == "v1.32.4-kyb" and st["nodeInfo"]["containerRuntimeVersion"] == "fake://0.1"
    assert st["addresses"] == [{"type": "InternalIP", "address": "10.96.0.3"}, {"type": "Hostname", "address": "sim-2"}]
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert node["spec"]["podCIDR"] == "10.128.2.0/24"


@pytest.mark.parametrize(("prev_status", "ready", "keeps_transition"), [
    pytest.param("True", True, True, id="still-ready"),
    pytest.param("Unknown", True, False, id="back-from-unknown"),
    pytest.param("True", False, False, id="becomes-not-ready"),
])
def test_node_conditions_transition_times(prev_status: str, ready: bool, keeps_transition: bool) -> None:
    prev = [{"type": "Ready", "status": prev_status, "lastTransitionTime": "2024-01-01T00:00:00Z"},
            {"type": "NetworkUnavailable", "status": "False"}]
    out = {c["type"]: c for c in node_conditions(prev, T1, ready=ready)}
    assert (out["Ready"]["lastTransitionTime"] == "2024-01-01T00:00:00Z") is keeps_transition
    assert out["Ready"]["lastHeartbeatTime"] == "2025-01-01T00:00:10Z"
    assert out["Ready"]["reason"] == ("KubeletReady" if ready else "KubeletNotReady")
    assert "NetworkUnavailable" in out  # conditions owned by others survive


def test_node_status_changed_ignores_heartbeats_only() -> None:
    cfg = fake_node_config(1)
    first = compute_node_status(cfg, None, T0)
    later = compute_node_status(cfg, first, T1)
    assert not node_status_changed(first, later)
    unknown = {**first, "conditions": [{**c, "status": "Unknown"} if c["type"] == "Ready" else c
                                       for c in first["conditions"]]}
    assert node_status_changed(unknown, compute_node_status(cfg, unknown, T1))
    assert node_status_changed({**first, "capacity": {"cpu": "1"}}, later)


@pytest.mark.parametrize(("last", "now", "due"), [(None, 5.0, True), (0.0, 299.0, False), (0.0, 300.0, True)])
def test_heartbeat_deadline(last: float | None, now: float, due: bool) -> None:
    assert heartbeat_deadline(last, now, 300.0) is due


def test_registration_patch_adds_missing_labels_only() -> None:
    cfg = fake_node_config(1)
    node = build_node(cfg, T0)
    assert registration_patch(node, cfg) is None
    del node["metadata"]["labels"]["topology.kubernetes.io/zone"]
    node["metadata"]["labels"]["team"] = "x"
    assert registration_patch(node, cfg) == {"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-a"}}}


def test_lease() -> None:
    lease = build_lease("sim-1", "uid-1", T0)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "sim-1", "uid": "uid-1"}]
    assert lease["spec"] == {"holderIdentity": "sim-1", "leaseDurationSeconds": 40,
                             "renewTime": "2025-01-01T00:00:00.000000Z"}
    assert "ownerReferences" not in build_lease("sim-1", None, T0)["metadata"]
    assert renew_patch("sim-1", T1)["spec"]["renewTime"] == "2025-01-01T00:00:10.000000Z"
