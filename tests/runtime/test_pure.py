"""Pure parts of the runtimes: the OCI spec, status computation, CRI log writing, helpers."""

from __future__ import annotations

import json
import os
import re

import pytest

from kybernetes.kubelet.runtime import base, cgroups, linux, oci
from kybernetes.kubelet.runtime.process import link_into_root, resolve_in_image, resolve_program
from kybernetes.kubelet.runtime.shim import CriLogWriter, format_timestamp, runc_error, to_json
from kybernetes.kubelet.runtime.shimruntime import default_hosts
from kybernetes.kubelet.runtime.state import (
    ContainerRecord, Observed, compute_container_status, container_from_dict, container_to_dict,
    log_path_for,
)

CRI_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([FP]) (.*)$")


def cfg(**kw) -> base.ContainerConfig:
    kw.setdefault("argv", ["sh", "-c", "true"])
    return base.ContainerConfig(name="c", image="busybox", image_id="sha256:x", rootfs_layers=["/l1"], **kw)


# ---- OCI spec ---------------------------------------------------------------------------------

@pytest.mark.parametrize("add,drop,privileged,expect_in,expect_out", [
    pytest.param([], [], False, ["CAP_CHOWN", "CAP_KILL"], ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], id="default"),
    pytest.param(["NET_ADMIN"], ["KILL"], False, ["CAP_NET_ADMIN"], ["CAP_KILL"], id="add-drop"),
    pytest.param(["NET_BIND_SERVICE"], ["ALL"], False, ["CAP_NET_BIND_SERVICE"], ["CAP_CHOWN"], id="drop-all"),
    pytest.param([], [], True, ["CAP_SYS_ADMIN", "CAP_BPF"], [], id="privileged"),
])
def test_capabilities(add, drop, privileged, expect_in, expect_out):
    caps = oci.compute_capabilities(add, drop, privileged)
    assert all(c in caps for c in expect_in)
    assert not any(c in caps for c in expect_out)
    assert len(caps) == len(set(caps))


def test_container_env_adds_path_hostname_term():
    env = oci.container_env([("A", "1")], hostname="web", tty=True)
    assert env[0].startswith("PATH=/usr/local/sbin")
    assert "A=1" in env and "HOSTNAME=web" in env and "TERM=xterm" in env
    env = oci.container_env([("PATH", "/x"), ("HOSTNAME", "h")], hostname="web", tty=False)
    assert env == ["PATH=/x", "HOSTNAME=h"]


def test_build_spec_shape():
    c = cfg(uid=1000, gid=1001, supplemental_gids=[5, 6], working_dir="/app", tty=False,
            env=[("K", "V")], read_only_rootfs=True,
            mounts=[base.Mount("/host/data", "/data", read_only=True),
                    base.Mount("/host/hosts", "/etc/hosts"),
                    base.Mount("/host/deep", "/data/a/b", propagation="rslave")],
            resources=base.Resources(cpu_shares=512, cpu_quota_us=50_000, memory_limit_bytes=20 << 20,
                                     pids_limit=100),
            annotations={"a": "b"})
    spec = oci.build_spec(c, rootfs="/b/rootfs", hostname="web", cgroups_path="/kyb/podU/ID",
                          namespaces={"pid": None, "mount": None, "network": "/ns/net", "ipc": "/ns/ipc",
                                      "uts": "/ns/uts"},
                          etc_files={"/etc/hosts": "/sb/hosts", "/etc/hostname": "/sb/hostname"},
                          termination_log="/c/termination-log", shm_source="/sb/shm")
    assert spec["ociVersion"] == "1.0.2"
    p = spec["process"]
    assert p["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [5, 6]}
    assert p["cwd"] == "/app" and p["args"] == ["sh", "-c", "true"] and "K=V" in p["env"]
    assert spec["root"] == {"path": "/b/rootfs", "readonly": True}
    ns = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert ns == {"pid": None, "mount": None, "network": "/ns/net", "ipc": "/ns/ipc", "uts": "/ns/uts"}
    res = spec["linux"]["resources"]
    assert res["cpu"] == {"shares": 512, "period": 100_000, "quota": 50_000}
    assert res["memory"] == {"limit": 20 << 20} and res["pids"] == {"limit": 100}
    assert res["devices"] == [{"allow": False, "access": "rwm"}]
    dests = [m["destination"] for m in spec["mounts"]]
    # system mounts first; the pod's /etc/hosts replaces the sandbox's; parents before children
    assert dests[:7] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    hosts = [m for m in spec["mounts"] if m["destination"] == "/etc/hosts"]
    assert len(hosts) == 1 and hosts[0]["source"] == "/host/hosts"
    assert dests.index("/data") < dests.index("/data/a/b")
    data = next(m for m in spec["mounts"] if m["destination"] == "/data")
    assert "ro" in data["options"] and "rbind" in data["options"]
    assert "rslave" in next(m for m in spec["mounts"] if m["destination"] == "/data/a/b")["options"]
    assert next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")["source"] == "/sb/shm"
    assert next(m for m in spec["mounts"] if m["destination"] == "/dev/termination-log")["source"] == \
        "/c/termination-log"
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert spec["annotations"] == {"a": "b"}


def test_build_spec_privileged_and_errors():
    spec = oci.build_spec(cfg(privileged=True), rootfs="/r", hostname="h", cgroups_path="/x",
                          namespaces={"mount": None}, etc_files={}, termination_log="/t",
                          host_devices=[{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}])
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert spec["linux"]["devices"][0]["path"] == "/dev/sda"
    assert "maskedPaths" not in spec["linux"]
    assert "ro" not in next(m for m in spec["mounts"] if m["destination"] == "/sys")["options"]
    with pytest.raises(base.RuntimeError_) as e:
        oci.build_spec(cfg(argv=[]), rootfs="/r", hostname="h", cgroups_path="/x", namespaces={},
                       etc_files={}, termination_log="/t")
    assert e.value.reason == "CreateContainerError"


# ---- state ------------------------------------------------------------------------------------

def record() -> ContainerRecord:
    return ContainerRecord(id="cid", sandbox_id="sid", config=cfg(labels={"k": "v"}), created_at=1.0,
                           dir="/d", log_path="/l/0.log", termination_log="/d/termination-log")


@pytest.mark.parametrize("obs,state,code,reason", [
    pytest.param(Observed(), base.ContainerState.CREATED, None, "", id="created"),
    pytest.param(Observed(started={"pid": 5, "started_at": 2.0}, pid_alive=True),
                 base.ContainerState.RUNNING, None, "", id="running"),
    pytest.param(Observed(started={"pid": 5, "started_at": 2.0}, shim_alive=True),
                 base.ContainerState.RUNNING, None, "", id="draining"),
    pytest.param(Observed(started={"pid": 5, "started_at": 2.0},
                          exited={"exit_code": 0, "finished_at": 3.0}),
                 base.ContainerState.EXITED, 0, "Completed", id="completed"),
    pytest.param(Observed(started={"pid": 5, "started_at": 2.0},
                          exited={"exit_code": 137, "finished_at": 3.0, "oom_killed": True}),
                 base.ContainerState.EXITED, 137, "OOMKilled", id="oom"),
    pytest.param(Observed(exited={"exit_code": 128, "finished_at": 3.0, "reason": "StartError",
                                  "message": "no such file"}),
                 base.ContainerState.EXITED, 128, "StartError", id="start-error"),
    pytest.param(Observed(started={"pid": 5, "started_at": 2.0}),
                 base.ContainerState.EXITED, 255, "Unknown", id="shim-lost"),
])
def test_compute_container_status(obs, state, code, reason):
    st = compute_container_status(record(), obs)
    assert st.state == state and st.exit_code == code and st.reason == reason
    assert st.labels == {"k": "v"} and st.log_path == "/l/0.log"
    if state == base.ContainerState.RUNNING:
        assert st.pid == 5 and st.started_at == 2.0
    if state == base.ContainerState.EXITED:
        assert st.pid is None


def test_termination_message_and_record_roundtrip():
    st = compute_container_status(record(), Observed(started={"pid": 5, "started_at": 2.0},
                                                     exited={"exit_code": 1}, termination_message="bye"))
    assert st.message == "bye" and st.reason == "Error"
    rec = record()
    rec.config.mounts = [base.Mount("/a", "/b", True)]
    rec.config.env = [("A", "1")]
    back = container_from_dict(json.loads(json.dumps(container_to_dict(rec))))
    assert back == rec and back.config.env == [("A", "1")] and isinstance(back.config.mounts[0], base.Mount)


def test_log_path_layout():
    sb = base.SandboxConfig(pod_uid="U", namespace="ns", name="p", hostname="p")
    c = cfg(labels={base.LABEL_CONTAINER_ATTEMPT: "2"})
    assert log_path_for("/logs", sb, c) == "/logs/ns_p_U/c/2.log"


# ---- CRI log writer ---------------------------------------------------------------------------

def read_records(path: str) -> list[tuple[str, str, str]]:
    out = []
    with open(path, "rb") as f:
        for line in f.read().decode().splitlines():
            m = CRI_LINE.match(line)
            assert m, line
            out.append((m.group(2), m.group(3), m.group(4)))
    return out


def test_cri_log_lines_partials_and_eof(tmp_path, monkeypatch):
    monkeypatch.setattr("kybernetes.kubelet.runtime.shim.MAX_LINE", 10)
    path = str(tmp_path / "0.log")
    w = CriLogWriter(path)
    w.write("stdout", b"hello\nwor")
    w.write("stderr", b"oops\n")
    w.write("stdout", b"ld\n")
    w.write("stdout", b"0123456789abcdefghijXY\n")
    w.write("stdout", b"tail")
    w.close()
    assert read_records(path) == [
        ("stdout", "F", "hello"), ("stderr", "F", "oops"), ("stdout", "F", "world"),
        ("stdout", "P", "0123456789"), ("stdout", "P", "abcdefghij"), ("stdout", "F", "XY"),
        ("stdout", "F", "tail"),
    ]


def test_cri_log_rotation(tmp_path):
    path = str(tmp_path / "0.log")
    w = CriLogWriter(path, max_bytes=500, max_files=3)
    for i in range(100):
        w.write("stdout", f"line {i:03d}\n".encode())
    w.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["0.log", "0.log.1", "0.log.2"]
    sizes = [os.path.getsize(tmp_path / n) for n in names]
    assert all(s <= 500 for s in sizes)
    newest = [r[2] for r in read_records(path)]
    older = [r[2] for r in read_records(path + ".1")]
    assert newest[-1] == "line 099" and older[-1] < newest[0]


def test_timestamp_and_json_helpers():
    assert format_timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    doc = {"a": 1, "b": 2.5, "c": None, "d": True, "e": 'q"\\\n\x01é', "f": [1, "x"]}
    assert json.loads(to_json(doc)) == doc


def test_runc_error(tmp_path):
    p = tmp_path / "runc.log"
    p.write_text('{"level":"info","msg":"x","time":"t"}\n'
                 '{"level":"error","msg":"exec: \\"nope\\": not found","time":"t"}\n')
    assert runc_error(str(p)) == 'exec: "nope": not found'
    assert runc_error(str(tmp_path / "missing")) == ""


# ---- helpers ----------------------------------------------------------------------------------

def test_default_hosts():
    text = default_hosts("web", "10.1.2.3")
    assert "127.0.0.1\tlocalhost" in text and text.endswith("10.1.2.3\tweb\n")
    assert "web" not in default_hosts("web", None)


def test_cgroup_paths_and_memory():
    sb = base.SandboxConfig(pod_uid="U", namespace="n", name="p", hostname="p")
    assert cgroups.container_cgroup_path("kyb", sb, "C") == "/kyb/podU/C"
    sb.cgroup_parent = "kubepods/burstable/podU"
    assert cgroups.pod_cgroup_path("/kyb/", sb) == "/kyb/kubepods/burstable/podU"
    stat = cgroups.parse_memory_stat("cache 10\ntotal_inactive_file 300\nbad x\n")
    assert stat == {"cache": 10, "total_inactive_file": 300}
    assert cgroups.working_set(1000, stat) == 700 and cgroups.working_set(100, stat) == 0


def test_parse_mountpoints():
    text = ("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
            "40 22 0:5 / /tmp/a\\040b rw - tmpfs tmpfs rw\n")
    assert linux.parse_mountpoints(text) == ["/", "/tmp/a b"]


def test_resolve_in_image(tmp_path):
    low, top = tmp_path / "low", tmp_path / "top"
    (low / "bin").mkdir(parents=True)
    (low / "bin" / "busybox").write_text("#!")
    os.symlink("busybox", low / "bin" / "nc")
    os.symlink("/bin/busybox", low / "bin" / "abs")
    (top / "usr" / "bin").mkdir(parents=True)
    os.symlink("../../bin/nc", top / "usr" / "bin" / "nc2")
    (top / "bin").mkdir()
    (top / "bin" / ".wh.gone").write_text("")
    (low / "bin" / "gone").write_text("x")
    layers = [str(low), str(top)]
    assert resolve_in_image("/bin/nc", layers) == str(low / "bin" / "busybox")
    assert resolve_in_image("/bin/abs", layers) == str(low / "bin" / "busybox")
    assert resolve_in_image("/usr/bin/nc2", layers) == str(low / "bin" / "busybox")
    assert resolve_in_image("/bin/gone", layers) is None
    assert resolve_in_image("/bin/missing", layers) is None
    assert resolve_program("nc", path_env="/nonexistent:/bin", layers=layers, cwd="/") == \
        str(low / "bin" / "busybox")
    assert resolve_program("/bin/nc", path_env="", layers=layers, cwd="/") == str(low / "bin" / "busybox")


def test_link_into_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    assert link_into_root(str(root), "/data", "/host/data")
    assert os.readlink(root / "data") == "/host/data"
    assert not link_into_root(str(root), "/data/sub", "/host/sub")   # would write into the host dir
    assert link_into_root(str(root), "/etc/hosts", "/sb/hosts")
    assert os.readlink(root / "etc" / "hosts") == "/sb/hosts"
