"""Pure helpers: node info, static pods, container config pieces, termination messages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kybernetes.kubelet.actions import (
    CONTAINER_HASH_LABEL,
    compute_pod_actions,
    container_hash,
)
from kybernetes.kubelet.nodeinfo import (
    MachineInfo,
    Pressure,
    allocatable_of,
    build_real_node,
    capacity_of,
    node_config,
    parse_cpuinfo,
    parse_meminfo,
    parse_os_release,
    pressure_of,
    read_machine_info,
    real_node_status,
)
from kybernetes.kubelet.podsync import (
    container_grace,
    container_resources,
    go_seconds,
    parse_cri_log,
    tail_log_message,
    _lookup_user,
)
from kybernetes.kubelet.envvars import ConfigError
from kybernetes.kubelet.static import (
    CONFIG_HASH,
    CONFIG_MIRROR,
    is_mirror,
    load_static_pods,
    mirror_actions,
    mirror_pod,
    static_pod,
)

from .helpers import RUNNING, container, cs, pod, sb, sidecar

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
INFO = MachineInfo(cpus=4, memory_bytes=8 * 1024**3, storage_bytes=100 * 1024**3 + 7, os_image="Debian GNU/Linux 12 (bookworm)",
                   kernel_version="6.1.0-28-amd64", architecture="arm64", machine_id="m1", boot_id="b1",
                   system_uuid="s1")


# -- node info -------------------------------------------------------------------------------------------
def test_parsers() -> None:
    assert parse_cpuinfo("processor\t: 0\nmodel\t: x\n\nprocessor\t: 1\n") == 2
    assert parse_meminfo("MemTotal:       16384 kB\nMemAvailable:    2048 kB\n") == {
        "MemTotal": 16384 * 1024, "MemAvailable": 2048 * 1024}
    assert parse_os_release('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == \
        "Debian GNU/Linux 12 (bookworm)"


def test_capacity_and_allocatable() -> None:
    cap = capacity_of(INFO)
    assert cap == {"cpu": "4", "ephemeral-storage": str(100 * 1024**3 + 7), "hugepages-1Gi": "0",
                   "hugepages-2Mi": "0", "memory": "8388608Ki", "pods": "110"}
    alloc = allocatable_of(INFO)
    assert alloc["memory"] == f"{8 * 1024**2 - 100 * 1024}Ki"
    assert int(alloc["ephemeral-storage"]) == int((100 * 1024**3 + 7) * 0.9)


def test_pressure() -> None:
    assert pressure_of(50 * 1024**2, 50, 100) == Pressure(memory=True, disk=False)
    assert pressure_of(500 * 1024**2, 5, 100) == Pressure(memory=False, disk=True)
    assert pressure_of(None, None, None) == Pressure()


def test_real_node_and_status() -> None:
    cfg = node_config(INFO, name="n1", internal_ip="10.0.0.5", runtime_version="runc://1.1.5",
                      pod_cidr="10.244.1.0/24")
    node = build_real_node(cfg, INFO, NOW, port=10999)
    assert node["spec"]["podCIDR"] == "10.244.1.0/24"
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
    info = node["status"]["nodeInfo"]
    assert (info["architecture"], info["machineID"], info["bootID"], info["systemUUID"]) == ("arm64", "m1", "b1", "s1")
    assert info["containerRuntimeVersion"] == "runc://1.1.5" and info["osImage"].startswith("Debian")
    assert info["kernelVersion"] == "6.1.0-28-amd64"
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10999}}
    st = real_node_status(cfg, INFO, node["status"], NOW + dt.timedelta(seconds=10), port=10999,
                          pressure=Pressure(memory=True))
    mem = next(c for c in st["conditions"] if c["type"] == "MemoryPressure")
    assert (mem["status"], mem["reason"]) == ("True", "KubeletHasInsufficientMemory")
    assert mem["lastTransitionTime"] == "2025-01-01T00:00:10Z"
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2025-01-01T00:00:00Z"


def test_read_machine_info(tmp_path: Path) -> None:
    info = read_machine_info(tmp_path / "data")
    assert info.cpus >= 1 and info.memory_bytes > 0 and info.storage_bytes > 0 and info.kernel_version


# -- static pods --------------------------------------------------------------------------------------------
def test_static_pod_and_mirror(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd"},
           "spec": {"containers": [{"name": "etcd", "image": "etcd:3.5"}]}}
    p = static_pod(doc, node_name="n1", source="/m/etcd.yaml", seen=NOW)
    md = p["metadata"]
    assert md["name"] == "etcd-n1" and md["namespace"] == "default" and len(md["uid"]) == 32
    assert md["annotations"][CONFIG_HASH] == md["uid"]
    assert p["spec"]["nodeName"] == "n1" and p["spec"]["restartPolicy"] == "Always"
    assert {"operator": "Exists", "effect": "NoExecute"} in p["spec"]["tolerations"]
    assert p["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    again = static_pod(doc, node_name="n1", source="/m/etcd.yaml", seen=NOW + dt.timedelta(hours=1))
    assert again["metadata"]["uid"] == md["uid"]  # the content, node and file decide the uid
    assert static_pod(doc, node_name="n2", source="/m/etcd.yaml")["metadata"]["uid"] != md["uid"]
    mirror = mirror_pod(p, node_uid="node-uid")
    assert is_mirror(mirror) and not is_mirror(p) and "uid" not in mirror["metadata"]
    assert mirror["metadata"]["annotations"][CONFIG_MIRROR] == md["uid"]
    assert mirror["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-uid", "controller": True}]

    d = tmp_path / "manifests"
    d.mkdir()
    (d / "a.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n"
                              "  - name: c\n    image: x:1\n")
    (d / "b.json").write_text('{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "b"}, '
                              '"spec": {"containers": [{"name": "c", "image": "y"}]}}]}')
    (d / ".hidden.yaml").write_text("garbage: [")
    (d / "broken.yaml").write_text("kind: Pod\nmetadata: {}\n")
    names = sorted(x["metadata"]["name"] for x in load_static_pods(d, node_name="n1"))
    assert names == ["a-n1", "b-n1"]


def test_mirror_actions() -> None:
    a = static_pod({"metadata": {"name": "a"}, "spec": {"containers": []}}, node_name="n", source="f")
    b = static_pod({"metadata": {"name": "b"}, "spec": {"containers": []}}, node_name="n", source="f")
    good = mirror_pod(a, node_uid=None)
    stale = mirror_pod(b, node_uid=None)
    stale["metadata"]["annotations"][CONFIG_MIRROR] = "old"
    orphan = mirror_pod(static_pod({"metadata": {"name": "c"}, "spec": {"containers": []}}, node_name="n",
                                   source="f"), node_uid=None)
    key = lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])  # noqa: E731
    create, delete = mirror_actions({key(a): a, key(b): b}, {key(good): good, key(stale): stale,
                                                             key(orphan): orphan})
    assert create == [] and delete == [stale, orphan]
    create, delete = mirror_actions({key(a): a}, {})
    assert create == [a] and delete == []


# -- container config pieces ------------------------------------------------------------------------------------
def test_container_resources() -> None:
    r = container_resources({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "64Mi"}}})
    assert (r.cpu_shares, r.cpu_quota_us, r.memory_limit_bytes) == (256, 100_000, 64 * 1024**2)
    r = container_resources({"resources": {"limits": {"cpu": "500m"}}})
    assert (r.cpu_shares, r.cpu_quota_us, r.memory_limit_bytes) == (512, 50_000, None)
    assert container_resources({}).cpu_shares == 2


def test_container_grace() -> None:
    c = {"livenessProbe": {"terminationGracePeriodSeconds": 3}}
    p = pod("a", terminationGracePeriodSeconds=40)
    assert container_grace(p, c, "") == 40 and container_grace(p, c, "LivenessProbe") == 3
    deleting = {**p, "metadata": {**p["metadata"], "deletionGracePeriodSeconds": 10}}
    assert container_grace(deleting, c, "LivenessProbe") == 10
    assert container_grace(pod("a"), None, "") == 2


def test_go_seconds() -> None:
    assert go_seconds(0.5234) == "523.4ms" and go_seconds(1.25) == "1.25s" and go_seconds(2) == "2s"


def test_termination_message_from_cri_logs(tmp_path: Path) -> None:
    lines = [f"2025-01-01T00:00:00.000000000Z stdout F line {i}" for i in range(100)]
    lines.insert(50, "2025-01-01T00:00:00.000000000Z stderr P part-")
    log = tmp_path / "0.log"
    log.write_text("\n".join(lines) + "\n")
    assert parse_cri_log(log.read_bytes())[49:51] == ["line 49", "part-line 50"]
    msg = tail_log_message(str(log))
    assert msg.startswith("line 20\n") and msg.endswith("line 99\n") and msg.count("\n") == 80
    assert tail_log_message(str(tmp_path / "missing")).startswith("Error on reading termination message")


def test_image_user_lookup(tmp_path: Path) -> None:
    low, high = tmp_path / "l1", tmp_path / "l2"
    (low / "etc").mkdir(parents=True)
    (high / "etc").mkdir(parents=True)
    (low / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (high / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home:/bin/sh\n")
    (high / "etc" / "group").write_text("staff:x:50:\n")
    layers = [str(low), str(high)]
    assert _lookup_user(layers, "app", None) == (1000, 1001)
    assert _lookup_user(layers, "app", "staff") == (1000, 50)
    assert _lookup_user(layers, "1000", None) == (1000, 1001)
    assert _lookup_user(layers, "42", "7") == (42, 7)
    with pytest.raises(ConfigError):
        _lookup_user(layers, "ghost", None)


# -- spec changes (actions) -------------------------------------------------------------------------------------
def test_changed_container_spec_restarts_the_container() -> None:
    old, new = container("app", image="busybox:1"), container("app", image="busybox:2")
    c = cs("app", RUNNING, attempt=0)
    c.labels[CONTAINER_HASH_LABEL] = container_hash(old)
    a = compute_pod_actions(pod(new, restart="Never"), [sb()], [c], now=0, backoff_state={})
    assert a.containers_to_kill[0].message == "Container app definition changed, will be restarted"
    assert [s.name for s in a.containers_to_start] == ["app"]
    same = compute_pod_actions(pod(old), [sb()], [c], now=0, backoff_state={})
    assert same.idle


def test_changed_sidecar_spec_restarts_it() -> None:
    old = sidecar("proxy", image="envoy:1")
    c = cs("proxy", RUNNING)
    c.labels[CONTAINER_HASH_LABEL] = container_hash(old)
    a = compute_pod_actions(pod("app", inits=(sidecar("proxy", image="envoy:2"),)), [sb()], [c, cs("app")],
                            now=0, backoff_state={})
    assert a.containers_to_kill[0].message == "Init container proxy definition changed"
    assert [s.name for s in a.init_to_start] == ["proxy"]
