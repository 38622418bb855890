"""Volume setup, refresh, mounts and teardown (kubelet/volumes.py), without mounting anything."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from kybernetes.kubelet.runtime.base import Mount
from kybernetes.kubelet.volumes import (
    AtomicWriter,
    FileProjection,
    VolumeError,
    VolumeManager,
    check_host_path,
    downward_payload,
    emptydir_memory_size,
    token_requires_refresh,
)

from .conftest import FakeSource, make_pod


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def manager(tmp_path: Path, source: FakeSource) -> VolumeManager:
    return VolumeManager(tmp_path / "pods", source, use_tmpfs=False, token_jitter=0)


def read(p: Path | str) -> str:
    return Path(p).read_text()


# ----------------------------------------------------------------------------------------------
# configMap / secret


async def test_configmap_volume_layout(manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"app.conf": "x=1", "other": "o"}, binary={"bin": b"\x00\x01"})
    pod = make_pod(volumes=[{"name": "config", "configMap": {"name": "cfg"}}])
    paths = await manager.setup(pod)
    d = Path(paths["config"])
    assert d == manager.root / "uid-1" / "volumes" / "kubernetes.io~configmap" / "config"
    hidden = sorted(n for n in os.listdir(d) if n.startswith(".."))
    assert len(hidden) == 2 and hidden[1] == "..data" and hidden[0].startswith("..20")
    assert os.readlink(d / "app.conf") == "..data/app.conf"
    assert os.readlink(d / "..data").startswith("..")
    assert read(d / "app.conf") == "x=1" and (d / "bin").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(os.stat(d / "app.conf").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(d / os.readlink(d / "..data")).st_mode) == 0o755
    # idempotent: a second setup writes nothing new
    ts = os.readlink(d / "..data")
    await manager.setup(pod)
    assert os.readlink(d / "..data") == ts


async def test_configmap_items_and_modes(manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"a": "A", "b": "B", "c": "C"})
    pod = make_pod(volumes=[{"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
        {"key": "a", "path": "dir/sub/a.txt"}, {"key": "b", "path": "b.txt", "mode": 0o400}]}}])
    d = Path((await manager.setup(pod))["v"])
    assert sorted(n for n in os.listdir(d) if not n.startswith("..")) == ["b.txt", "dir"]
    assert os.readlink(d / "dir") == "..data/dir"
    assert read(d / "dir/sub/a.txt") == "A"
    assert stat.S_IMODE(os.stat(d / "dir/sub/a.txt").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(d / "b.txt").st_mode) == 0o400


@pytest.mark.parametrize("volume, message", [
    pytest.param({"configMap": {"name": "nope"}}, 'configmap "nope" not found', id="cm"),
    pytest.param({"secret": {"secretName": "nope"}}, 'secret "nope" not found', id="secret"),
    pytest.param({"configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}},
                 "configmap references non-existent config key: zz", id="cm-key"),
    pytest.param({"secret": {"secretName": "sec", "items": [{"key": "zz", "path": "z"}]}},
                 "references non-existent secret key: zz", id="secret-key"),
    pytest.param({"configMap": {"name": "cfg", "items": [{"key": "a", "path": "../x"}]}},
                 "invalid path: must not contain '..': ../x", id="bad-item-path"),
    pytest.param({"nfs": {"server": "s", "path": "/"}}, "no volume plugin matched", id="nfs"),
])
async def test_setup_failures(manager: VolumeManager, source: FakeSource, volume: dict, message: str) -> None:
    source.add_configmap("cfg", {"a": "A"})
    source.add_secret("sec", {"a": b"A"})
    pod = make_pod(volumes=[{"name": "vol", **volume}])
    with pytest.raises(VolumeError) as err:
        await manager.setup(pod)
    assert err.value.reason == "FailedMount"
    assert err.value.cause == message
    assert err.value.message == f'MountVolume.SetUp failed for volume "vol" : {message}'
    await manager.teardown("uid-1")
    assert not (manager.root / "uid-1").exists()


async def test_optional_missing_objects(manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"a": "A"})
    pod = make_pod(volumes=[
        {"name": "v1", "configMap": {"name": "nope", "optional": True}},
        {"name": "v2", "secret": {"secretName": "nope", "optional": True}},
        {"name": "v3", "configMap": {"name": "cfg", "optional": True,
                                     "items": [{"key": "a", "path": "a"}, {"key": "zz", "path": "z"}]}}])
    paths = await manager.setup(pod)
    assert [n for n in os.listdir(paths["v1"]) if not n.startswith("..")] == []
    assert sorted(n for n in os.listdir(paths["v3"]) if not n.startswith("..")) == ["a"]


async def test_secret_volume_without_tmpfs(manager: VolumeManager, source: FakeSource) -> None:
    source.add_secret("sec", {"password": b"hunter2", "key": b"k"})
    pod = make_pod(volumes=[{"name": "s", "secret": {"secretName": "sec", "items": [
        {"key": "password", "path": "pw", "mode": 0o400}]}}])
    d = Path((await manager.setup(pod))["s"])
    assert d.parent.name == "kubernetes.io~secret"
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert read(d / "pw") == "hunter2"
    assert stat.S_IMODE(os.stat(d / "pw").st_mode) == 0o400
    assert not (d / "key").exists()


# ----------------------------------------------------------------------------------------------
# refresh and the atomic writer


async def test_refresh_updates_and_prunes(manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"keep": "v1", "gone": "bye"})
    pod = make_pod(volumes=[{"name": "c", "configMap": {"name": "cfg"}}])
    d = Path((await manager.setup(pod))["c"])
    old_ts = os.readlink(d / "..data")
    held = open(d / "keep")  # a reader that opened the old version
    try:
        source.add_configmap("cfg", {"keep": "v2", "new": "hello"})
        await manager.refresh(pod)
        assert read(d / "keep") == "v2" and read(d / "new") == "hello"
        assert not os.path.lexists(d / "gone")
        new_ts = os.readlink(d / "..data")
        assert new_ts != old_ts and not (d / old_ts).exists()
        assert sorted(n for n in os.listdir(d) if n.startswith("..")) == [new_ts, "..data"]
        assert held.read() == "v1"  # still the consistent old file
    finally:
        held.close()
    # unchanged data: no new version
    await manager.refresh(pod)
    assert os.readlink(d / "..data") == new_ts


async def test_refresh_skips_volumes_not_set_up_and_keeps_old_on_error(
        manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"k": "v"})
    pod = make_pod(volumes=[{"name": "c", "configMap": {"name": "cfg"}}])
    await manager.refresh(pod)  # nothing set up yet: nothing written
    assert not manager.root.exists()
    d = Path((await manager.setup(pod))["c"])
    del source.configmaps[("default", "cfg")]
    with pytest.raises(VolumeError, match='configmap "cfg" not found'):
        await manager.refresh(pod)
    assert read(d / "k") == "v"


def test_atomic_writer_readers_see_consistent_versions(tmp_path: Path) -> None:
    """Readers that resolve ``..data`` once see files of one version while the writer swaps."""
    target = tmp_path / "vol"
    target.mkdir()
    writer = AtomicWriter(target)

    def payload(n: int) -> dict[str, FileProjection]:
        return {"a": FileProjection(f"{n}".encode(), 0o644), "sub/b": FileProjection(f"{n}".encode(), 0o644),
                f"only-{n % 3}": FileProjection(b"x", 0o644)}

    writer.write(payload(0))
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                ts = os.readlink(target / "..data")
                a = (target / ts / "a").read_text()
                b = (target / ts / "sub" / "b").read_text()
            except FileNotFoundError:
                continue  # that version was already removed: resolve again
            reads[0] += 1
            if a != b:
                problems.append(f"{a} != {b}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 150):
            assert writer.write(payload(n))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == [] and reads[0] > 0
    visible = sorted(n for n in os.listdir(target) if not n.startswith(".."))
    assert visible == ["a", f"only-{149 % 3}", "sub"]
    assert len([n for n in os.listdir(target) if n.startswith("..")]) == 2


def test_atomic_writer_restores_missing_links(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path)
    assert writer.write({"k": FileProjection(b"v", 0o644)})
    os.unlink(tmp_path / "k")
    assert not writer.write({"k": FileProjection(b"v", 0o644)})  # same data: no new version ...
    assert read(tmp_path / "k") == "v"                            # ... but the link is back


@pytest.mark.parametrize("path, message", [
    ("", 'invalid path: must not be empty: ""'),
    ("/abs", "invalid path: must be relative path: /abs"),
    ("a/../b", "invalid path: must not contain '..': a/../b"),
    ("..data/x", "invalid path: must not start with '..': ..data/x"),
    ("x" * 256, "invalid path: filenames must be less than or equal to 255 characters"),
])
def test_atomic_writer_rejects_paths(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        AtomicWriter(tmp_path).write({path: FileProjection(b"", 0o644)})
    assert str(err.value) == message
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# downward API and projected


def test_downward_api_formatting() -> None:
    pod = make_pod(name="p", ns="ns", uid="u1",
                   labels={"zone": "us-east-1", "app": "web", "quote": 'say "hi"\n'},
                   annotations={"build": "42", "multi": "tab\there"},
                   containers=[{"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "32Mi"},
                                                           "limits": {"cpu": "1"}}}])
    items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
             {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "./ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
             {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}, "mode": 0o400},
             {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
             {"path": "cpu_req", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu",
                                                      "divisor": "1m"}},
             {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}},
             {"path": "mem_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                                        "divisor": "1Mi"}}]
    out = downward_payload(items, pod, 0o644, {"memory": "2Gi", "cpu": "4"})
    assert out["labels"].data.decode() == 'app="web"\nquote="say \\"hi\\"\\n"\nzone="us-east-1"'
    assert out["annotations"].data.decode() == 'build="42"\nmulti="tab\\there"'
    assert out["name"].data == b"p" and out["ns"].data == b"ns" and out["uid"].data == b"u1"
    assert out["uid"].mode == 0o400 and out["name"].mode == 0o644
    assert out["app"].data == b"web"
    assert out["cpu_req"].data == b"250" and out["cpu_limit"].data == b"1"
    assert out["mem_limit"].data == b"2048"
    with pytest.raises(ValueError, match=r"^\[unsupported fieldPath: spec.nodeName, container x not found\]$"):
        downward_payload([{"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}},
                          {"path": "b", "resourceFieldRef": {"containerName": "x", "resource": "limits.cpu"}}],
                         pod, 0o644, None)


async def test_downward_api_volume_refresh(manager: VolumeManager) -> None:
    pod = make_pod(labels={"v": "1"}, volumes=[{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}])
    d = Path((await manager.setup(pod))["info"])
    assert d.parent.name == "kubernetes.io~downward-api"
    assert read(d / "labels") == 'v="1"'
    pod["metadata"]["labels"]["v"] = "2"
    await manager.refresh(pod)
    assert read(d / "labels") == 'v="2"'


def test_token_refresh_rule() -> None:
    issued, life = 1000.0, 3600
    exp = issued + life
    assert not token_requires_refresh(issued + 0.79 * life, exp, life)
    assert token_requires_refresh(issued + 0.81 * life, exp, life)
    # a long-lived token (server extended it) is renewed after 24 h
    year = 365 * 86400
    assert not token_requires_refresh(issued + 86000, issued + year, year)
    assert token_requires_refresh(issued + 86401, issued + year, year)


async def test_projected_volume_with_token(tmp_path: Path, source: FakeSource) -> None:
    clock = Clock(1_000_000.0)
    source.now = clock.now
    manager = VolumeManager(tmp_path / "pods", source, clock=clock, use_tmpfs=False, token_jitter=0)
    source.add_configmap("kube-root-ca.crt", {"ca.crt": "CA"})
    pod = make_pod(ns="default", serviceAccountName="robot", volumes=[{"name": "kube-api-access", "projected": {
        "defaultMode": 0o644, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token", "audience": "api"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}])
    d = Path((await manager.setup(pod))["kube-api-access"])
    assert d.parent.name == "kubernetes.io~projected"
    assert (read(d / "token"), read(d / "ca.crt"), read(d / "namespace")) == ("token-1", "CA", "default")
    assert source.token_requests == [{"ns": "default", "sa": "robot", "audiences": ["api"],
                                      "expiration_seconds": 3607, "pod_name": "web", "pod_uid": "uid-1"}]
    clock.now += 0.5 * 3607
    await manager.refresh(pod)
    assert read(d / "token") == "token-1" and len(source.token_requests) == 1
    clock.now = source.now + 0.85 * 3607
    source.now = clock.now
    await manager.refresh(pod)
    assert read(d / "token") == "token-2" and len(source.token_requests) == 2
    await manager.teardown("uid-1")
    assert not (manager.root / "uid-1").exists()


async def test_projected_errors_are_aggregated(manager: VolumeManager) -> None:
    pod = make_pod(volumes=[{"name": "p", "projected": {"sources": [
        {"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]}}])
    with pytest.raises(VolumeError) as err:
        await manager.setup(pod)
    assert err.value.cause == '[configmap "a" not found, secret "b" not found]'


# ----------------------------------------------------------------------------------------------
# hostPath and PVC


def test_host_path_types(tmp_path: Path) -> None:
    d = tmp_path / "d"
    check_host_path(str(d / "x" / "y"), "DirectoryOrCreate")
    assert stat.S_IMODE(os.stat(d / "x" / "y").st_mode) & 0o755 == 0o755 and (d / "x" / "y").is_dir()
    check_host_path(str(d), "Directory")
    f = tmp_path / "f"
    check_host_path(str(f), "FileOrCreate")
    assert f.is_file() and f.stat().st_size == 0
    check_host_path(str(f), "File")
    check_host_path("/dev/null", "CharDevice")
    check_host_path(str(tmp_path / "whatever"), "")
    check_host_path(str(tmp_path / "whatever"), None)
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        check_host_path(str(sock_path), "Socket")
    cases = [
        (str(f), "Directory", f"hostPath type check failed: {f} is not a directory, it's a File"),
        (str(f), "DirectoryOrCreate", f"hostPath type check failed: {f} is not a directory, it's a File"),
        (str(d), "File", f"hostPath type check failed: {d} is not a file, it's a Directory"),
        (str(d), "FileOrCreate", f"hostPath type check failed: {d} is not a file, it's a Directory"),
        (str(tmp_path / "none"), "Directory", f"hostPath {tmp_path}/none doesn't exist"),
        (str(tmp_path / "none"), "Socket", f"hostPath {tmp_path}/none doesn't exist"),
        (str(f), "Socket", f"hostPath type check failed: {f} is not a socket file, it's a File"),
        ("/dev/null", "BlockDevice",
         "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"),
        (str(f), "CharDevice", f"hostPath type check failed: {f} is not a character device, it's a File"),
        (str(f), "Weird", "Weird is an invalid volume type"),
        (str(tmp_path / "no" / "file"), "FileOrCreate",
         f"open {tmp_path}/no/file: no such file or directory"),
        ("/a/../etc", "", "invalid HostPath `/a/../etc`: must not contain '..'"),
    ]
    for path, kind, message in cases:
        with pytest.raises(ValueError) as err:
            check_host_path(path, kind)
        assert str(err.value) == message, (path, kind)


async def test_host_path_volume(manager: VolumeManager, tmp_path: Path) -> None:
    pod = make_pod(volumes=[{"name": "h", "hostPath": {"path": str(tmp_path / "data"),
                                                       "type": "DirectoryOrCreate"}}])
    assert (await manager.setup(pod))["h"] == str(tmp_path / "data")
    assert (tmp_path / "data").is_dir()
    bad = make_pod(volumes=[{"name": "h", "hostPath": {"path": str(tmp_path / "nope"), "type": "File"}}])
    with pytest.raises(VolumeError) as err:
        await manager.setup(bad)
    assert err.value.message == (f'MountVolume.SetUp failed for volume "h" : hostPath '
                                 f'{tmp_path}/nope doesn\'t exist')
    await manager.teardown("uid-1")
    assert (tmp_path / "data").is_dir()  # a hostPath is never removed


async def test_pvc_volumes(manager: VolumeManager, source: FakeSource, tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    source.pvcs[("default", "claim")] = {"metadata": {"name": "claim", "uid": "pvc-uid"},
                                         "spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}}
    source.pvs["pv1"] = {"metadata": {"name": "pv1"}, "spec": {
        "claimRef": {"name": "claim", "namespace": "default", "uid": "pvc-uid"},
        "hostPath": {"path": str(tmp_path / "pvdata"), "type": "DirectoryOrCreate"}}}
    source.pvcs[("default", "local")] = {"metadata": {"name": "local", "uid": "u2"},
                                         "spec": {"volumeName": "pv2"}, "status": {"phase": "Bound"}}
    source.pvs["pv2"] = {"metadata": {"name": "pv2"}, "spec": {
        "claimRef": {"uid": "u2"}, "local": {"path": str(tmp_path / "local")}}}
    source.pvcs[("default", "pending")] = {"metadata": {"name": "pending"}, "spec": {},
                                           "status": {"phase": "Pending"}}
    pod = make_pod(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
                            {"name": "fast", "persistentVolumeClaim": {"claimName": "local", "readOnly": True}}])
    paths = await manager.setup(pod)
    assert paths == {"data": str(tmp_path / "pvdata"), "fast": str(tmp_path / "local")}
    assert (tmp_path / "pvdata").is_dir()
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"},
                                                    {"name": "fast", "mountPath": "/fast"}]
    mounts = manager.container_mounts(pod, pod["spec"]["containers"][0], paths)
    assert [m.read_only for m in mounts] == [False, True]
    for claim, message in [("pending", "error processing PVC default/pending: PVC is not bound"),
                           ("missing", "error processing PVC default/missing: failed to fetch PVC from "
                                       'API server: persistentvolumeclaims "missing" not found')]:
        with pytest.raises(VolumeError) as err:
            await manager.setup(make_pod(volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]))
        assert err.value.message == message and err.value.reason == "FailedMount"


# ----------------------------------------------------------------------------------------------
# container mounts


async def test_container_mounts(manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"app.conf": "x"})
    container = {"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "scratch", "mountPath": "/logs", "subPath": "logs/app", "readOnly": True},
        {"name": "scratch", "mountPath": "/per-pod", "subPathExpr": "pods/$(POD_NAME)"},
        {"name": "config", "mountPath": "/etc/app"},
        {"name": "config", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
        {"name": "scratch", "mountPath": "relative", "mountPropagation": "HostToContainer"}]}
    pod = make_pod(containers=[container], volumes=[{"name": "scratch", "emptyDir": {}},
                                                    {"name": "config", "configMap": {"name": "cfg"}}])
    paths = await manager.setup(pod)
    scratch = Path(paths["scratch"])
    assert stat.S_IMODE(os.stat(scratch).st_mode) == 0o777
    mounts = await manager.prepare_mounts(pod, container, paths, env=[("POD_NAME", "web")])
    cfg = Path(paths["config"])
    ts = os.readlink(cfg / "..data")
    assert mounts == [
        Mount(str(scratch), "/scratch", False, "private"),
        Mount(str(scratch / "logs" / "app"), "/logs", True, "private"),
        Mount(str(scratch / "pods" / "web"), "/per-pod", False, "private"),
        Mount(str(cfg), "/etc/app", True, "private"),
        Mount(str(cfg / ts / "app.conf"), "/etc/app.conf", True, "private"),
        Mount(str(scratch), "/relative", False, "rslave"),
    ]
    assert (scratch / "logs" / "app").is_dir()
    assert stat.S_IMODE(os.stat(scratch / "logs").st_mode) == 0o777  # the volume's mode


@pytest.mark.parametrize("mount, message", [
    pytest.param({"subPath": "../../etc"}, "unable to provision SubPath `../../etc`: must not contain '..'",
                 id="backsteps"),
    pytest.param({"subPath": "a/../../x"}, "unable to provision SubPath `a/../../x`: must not contain '..'",
                 id="inner-backsteps"),
    pytest.param({"subPath": "/etc"}, "error SubPath `/etc` must not be an absolute path", id="absolute"),
    pytest.param({"subPath": "escape"}, 'failed to prepare subPath for volumeMount "v" of container "c"',
                 id="symlink-out"),
    pytest.param({"subPath": "escape/newdir"},
                 'failed to create subPath directory for volumeMount "v" of container "c"',
                 id="mkdir-through-symlink-out"),
    pytest.param({"subPathExpr": "$(NOPE)/$(ALSO)"}, "missing value for ALSO, NOPE", id="expr-missing"),
    pytest.param({"mountPropagation": "Bidirectional"},
                 "Bidirectional mount propagation is available only to privileged containers", id="bidi"),
    pytest.param({"mountPropagation": "Sideways"}, 'invalid MountPropagation mode: "Sideways"', id="bad-prop"),
    pytest.param({"name": "other"}, 'cannot find volume "other" to mount into container "c"', id="no-volume"),
])
async def test_container_mount_errors(manager: VolumeManager, tmp_path: Path, mount: dict, message: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    pod = make_pod(volumes=[{"name": "v", "emptyDir": {}}])
    paths = await manager.setup(pod)
    os.symlink(str(outside), Path(paths["v"]) / "escape")
    container = {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/m", **mount}]}
    with pytest.raises(VolumeError) as err:
        manager.container_mounts(pod, container, paths)
    assert err.value.message == message
    assert err.value.reason == "CreateContainerConfigError"
    assert os.listdir(outside) == []


async def test_subpath_symlink_inside_volume_is_fine(manager: VolumeManager) -> None:
    pod = make_pod(volumes=[{"name": "v", "emptyDir": {}}])
    paths = await manager.setup(pod)
    vol = Path(paths["v"])
    (vol / "real").mkdir()
    os.symlink("real", vol / "alias")
    c = {"name": "c", "securityContext": {"privileged": True}, "volumeMounts": [
        {"name": "v", "mountPath": "/a", "subPath": "alias/deeper", "mountPropagation": "Bidirectional"}]}
    [m] = manager.container_mounts(pod, c, paths)
    assert m.host_path == str(vol / "real" / "deeper") and m.propagation == "rshared"
    assert (vol / "real" / "deeper").is_dir()


# ----------------------------------------------------------------------------------------------
# emptyDir sizing, fsGroup, teardown


def test_emptydir_memory_size() -> None:
    pod = make_pod(containers=[{"name": "a", "resources": {"limits": {"memory": "100Mi"}}},
                               {"name": "b", "resources": {"limits": {"memory": "28Mi"}}}])
    alloc = {"memory": "1Gi"}
    assert emptydir_memory_size(pod, {}, alloc) == 128 * 2**20
    assert emptydir_memory_size(pod, {"sizeLimit": "1Mi"}, alloc) == 2**20
    assert emptydir_memory_size(pod, {"sizeLimit": "2Gi"}, alloc) == 128 * 2**20
    no_limits = make_pod()
    assert emptydir_memory_size(no_limits, {}, alloc) == 2**30
    assert emptydir_memory_size(no_limits, {}, None) is None
    assert emptydir_memory_size(no_limits, {"sizeLimit": "64Mi"}, None) == 64 * 2**20


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another group needs root")
async def test_fs_group(manager: VolumeManager, source: FakeSource) -> None:
    source.add_secret("s", {"k": b"v"})
    pod = make_pod(securityContext={"fsGroup": 4321}, volumes=[
        {"name": "e", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "s", "defaultMode": 0o600}}])
    paths = await manager.setup(pod)
    st = os.stat(paths["e"])
    assert st.st_gid == 4321 and st.st_mode & stat.S_ISGID
    f = os.stat(Path(paths["s"]) / "k")
    assert f.st_gid == 4321 and stat.S_IMODE(f.st_mode) == 0o640


async def test_teardown_idempotent_and_partial(manager: VolumeManager, source: FakeSource) -> None:
    source.add_configmap("cfg", {"a": "A"})
    pod = make_pod(volumes=[{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}},
                            {"name": "broken", "configMap": {"name": "missing"}}])
    with pytest.raises(VolumeError):
        await manager.setup(pod)
    (manager.root / "uid-1" / "volumes" / "kubernetes.io~empty-dir" / "e" / "file").write_text("x")
    (manager.root / "uid-1" / "etc-hosts").write_text("kubelet file")
    await manager.teardown("uid-1")
    assert not (manager.root / "uid-1" / "volumes").exists()
    assert (manager.root / "uid-1" / "etc-hosts").exists()  # not ours: left for the kubelet
    await manager.teardown("uid-1")
    await manager.teardown("never-existed")


async def test_generic_ephemeral_volume(manager: VolumeManager, source: FakeSource, tmp_path: Path) -> None:
    owner = [{"kind": "Pod", "name": "web", "uid": "uid-1", "controller": True}]
    source.pvcs[("default", "web-scratch")] = {
        "metadata": {"name": "web-scratch", "uid": "c1", "ownerReferences": owner},
        "spec": {"volumeName": "pv9"}, "status": {"phase": "Bound"}}
    source.pvs["pv9"] = {"metadata": {"name": "pv9"}, "spec": {
        "claimRef": {"uid": "c1"}, "hostPath": {"path": str(tmp_path / "eph"), "type": "DirectoryOrCreate"}}}
    pod = make_pod(volumes=[{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}])
    assert (await manager.setup(pod))["scratch"] == str(tmp_path / "eph")
    source.pvcs[("default", "web-scratch")]["metadata"]["ownerReferences"] = []
    with pytest.raises(VolumeError, match=r"was not created for pod default/web \(pod is not owner\)"):
        await manager.setup(pod)
