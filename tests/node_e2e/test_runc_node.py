"""Issue 3 acceptance on a real node: `kyb up --runtime runc` driven by the real kubectl."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import KUBECTL
from tests.node_e2e.conftest import NodeCluster, leftovers, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.privileged, pytest.mark.xdist_group("node-runc")]


@pytest.fixture
def ns(runc_cluster: NodeCluster):
    name = "node-" + uuid.uuid4().hex[:8]
    runc_cluster.kubectl("create", "namespace", name)
    yield name
    runc_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_web_pod_logs_exec_portforward_cp_top_and_cleanup(runc_cluster: NodeCluster, ns: str, tmp_path: Path) -> None:
    c = runc_cluster
    c.kubectl("run", "web", "--image", c.image, "-n", ns)
    pod = c.wait_phase(ns, "web", "Running", timeout=90)
    uid = pod["metadata"]["uid"]
    cs = pod["status"]["containerStatuses"][0]
    assert cs["ready"] is True and cs["imageID"].startswith(c.registry) and "@sha256:" in cs["imageID"]
    assert cs["containerID"].startswith("runc://")

    assert c.kubectl("exec", "web", "-n", ns, "--", "cat", "/etc/hostname").stdout.strip() == "web"
    r = c.kubectl("exec", "web", "-n", ns, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3 and "out" in r.stdout and "err" in r.stderr

    # port-forward and a request through it
    port = _free_port()
    pf = subprocess.Popen([KUBECTL, "port-forward", "-n", ns, "pod/web", f"{port}:8080"], env=c.env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = wait_until("port-forward", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/index.html", timeout=3).read(), timeout=30)
        assert body == b"hello from kybernetes\n"
    finally:
        pf.send_signal(signal.SIGINT)
        pf.wait(timeout=10)

    # httpd logs nothing by itself; write to the container's stdout through PID 1's fd
    c.kubectl("exec", "web", "-n", ns, "--", "sh", "-c", "echo marker-line > /proc/1/fd/1")
    wait_until("the log line", lambda: "marker-line" in c.kubectl("logs", "web", "-n", ns).stdout, timeout=15)
    ts = c.kubectl("logs", "web", "-n", ns, "--timestamps", "--tail", "1").stdout
    assert ts.split(" ", 1)[0].startswith(time.strftime("%Y-")) and ts.rstrip().endswith("marker-line")

    # kubectl cp both ways (the image has tar)
    src = tmp_path / "up.txt"
    src.write_text("copied in\n")
    c.kubectl("cp", str(src), f"{ns}/web:/tmp/up.txt")
    assert c.kubectl("exec", "web", "-n", ns, "--", "cat", "/tmp/up.txt").stdout == "copied in\n"
    c.kubectl("cp", f"{ns}/web:/www/index.html", str(tmp_path / "down.html"))
    assert (tmp_path / "down.html").read_text() == "hello from kybernetes\n"

    # kubectl top pod (metrics.k8s.io from the kubelet's cgroup stats)
    top = wait_until("pod metrics", lambda: (r := c.kubectl("top", "pod", "web", "-n", ns, check=False)).returncode == 0
                     and r.stdout, timeout=60, interval=2)
    assert "web" in top and "Mi" in top
    assert "Mi" in wait_until("node metrics", lambda: (r := c.kubectl("top", "node", check=False)).returncode == 0
                              and r.stdout, timeout=60, interval=2)

    # deleting the pod leaves nothing behind
    c.kubectl("delete", "pod", "web", "-n", ns, "--grace-period", "1")  # httpd as PID 1 ignores SIGTERM
    wait_until("no leftovers", lambda: not any(leftovers(uid).values()) or None, timeout=30)


def test_crashloop_backoff_grows(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    c.kubectl("run", "crash", "--image", c.image, "-n", ns, "--command", "--", "sh", "-c", "echo dying; exit 1")
    st = wait_until("CrashLoopBackOff", lambda: (s := c.container_state(ns, "crash")).get("state", {}).get(
        "waiting", {}).get("reason") == "CrashLoopBackOff" and s, timeout=60)
    assert st["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off 10s" in st["state"]["waiting"]["message"]
    st = wait_until("the second back-off", lambda: "back-off 20s" in (c.container_state(ns, "crash").get(
        "state", {}).get("waiting", {}).get("message") or "") and True, timeout=60)
    assert c.container_state(ns, "crash")["restartCount"] >= 2
    assert "dying" in c.kubectl("logs", "crash", "-n", ns, "--previous").stdout


POD_PROBES = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  initContainers:
  - name: init
    image: {image}
    command: [sh, -c, "echo init-ran > /work/init.txt"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: {image}
    command: [sh, -c, "cp /work/init.txt /www/; httpd -f -p 8080 -h /www"]
    volumeMounts: [{{name: work, mountPath: /work}}]
    {probe}
  volumes:
  - name: work
    emptyDir: {{}}
"""


def test_init_container_runs_first_and_readiness_gates_ready(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    probe = "readinessProbe: {httpGet: {path: /missing.txt, port: 8080}, periodSeconds: 1}"
    c.kubectl("apply", "-n", ns, "-f", "-", input=POD_PROBES.format(name="ready", image=c.image, probe=probe))
    pod = c.wait_phase(ns, "ready", "Running", timeout=90)
    init = pod["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert c.kubectl("exec", "ready", "-n", ns, "-c", "main", "--", "cat", "/work/init.txt").stdout == "init-ran\n"
    time.sleep(3)
    pod = c.pod(ns, "ready")
    ready = next(x for x in pod["status"]["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "False" and pod["status"]["containerStatuses"][0]["ready"] is False
    # make the probe pass: the pod becomes Ready
    c.kubectl("exec", "ready", "-n", ns, "-c", "main", "--", "sh", "-c", "echo ok > /www/missing.txt")
    c.wait_pod(ns, "ready", "Ready", lambda p: next(x for x in p["status"]["conditions"]
                                                    if x["type"] == "Ready")["status"] == "True", timeout=90)


def test_liveness_failure_restarts(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    probe = ("livenessProbe: {exec: {command: [test, -e, /tmp/alive]}, initialDelaySeconds: 2, "
             "periodSeconds: 1, failureThreshold: 2}")
    c.kubectl("apply", "-n", ns, "-f", "-", input=POD_PROBES.format(name="live", image=c.image, probe=probe))
    wait_until("a liveness restart", lambda: c.container_state(ns, "live").get("restartCount", 0) >= 1, timeout=60)
    events = c.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=live").stdout
    assert "Unhealthy" in events and "Liveness probe failed" in events


def test_memory_hog_is_oomkilled(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: hog}}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: {c.image}
    command: [sh, -c, "x=a; while true; do x=$x$x; done"]
    resources: {{limits: {{memory: 20Mi}}}}
"""
    c.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    st = wait_until("OOMKilled", lambda: (s := c.container_state(ns, "hog")).get("state", {}).get("terminated")
                    and s, timeout=90)
    assert st["state"]["terminated"]["reason"] == "OOMKilled"
    assert c.wait_phase(ns, "hog", "Failed")


def test_configmap_update_reaches_mounted_file(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    c.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal", "greeting=hello")
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: cm}}
spec:
  containers:
  - name: main
    image: {c.image}
    command: [sleep, "3600"]
    env: [{{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: greeting}}}}}}]
    volumeMounts: [{{name: cfg, mountPath: /etc/cfg}}]
  volumes: [{{name: cfg, configMap: {{name: cfg}}}}]
"""
    c.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    c.wait_phase(ns, "cm", "Running", timeout=60)
    assert c.kubectl("exec", "cm", "-n", ns, "--", "cat", "/etc/cfg/greeting").stdout == "hello"
    assert c.kubectl("exec", "cm", "-n", ns, "--", "sh", "-c", "echo $GREETING").stdout == "hello\n"
    c.kubectl("patch", "configmap", "cfg", "-n", ns, "-p", '{"data":{"greeting":"bonjour"}}')
    wait_until("the new value in the file", lambda: c.kubectl(
        "exec", "cm", "-n", ns, "--", "cat", "/etc/cfg/greeting").stdout == "bonjour", timeout=90, interval=2)


def test_missing_image_err_image_pull_then_backoff(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    c.kubectl("run", "nope", "--image", f"{c.registry}/does-not-exist:1", "-n", ns)
    reasons: set[str] = set()

    def seen() -> bool:
        reasons.add(c.container_state(ns, "nope").get("state", {}).get("waiting", {}).get("reason", ""))
        return {"ErrImagePull", "ImagePullBackOff"} <= reasons

    wait_until("ErrImagePull then ImagePullBackOff", seen, timeout=60, interval=0.3)


def test_kubelet_kill9_adopts_running_containers(runc_cluster: NodeCluster, ns: str) -> None:
    c = runc_cluster
    c.kubectl("run", "keep", "--image", c.image, "-n", ns)
    pod = c.wait_phase(ns, "keep", "Running", timeout=90)
    cid = pod["status"]["containerStatuses"][0]["containerID"]
    pid_before = c.kubectl("exec", "keep", "-n", ns, "--", "cat", "/proc/1/stat").stdout.split()[21]  # start time
    kubelet = _child_pid(c.proc.pid, "kubelet")
    os.kill(kubelet, signal.SIGKILL)
    # the supervisor restarts the kubelet; it adopts the container instead of starting another
    wait_until("a new kubelet", lambda: (p := _child_pid(c.proc.pid, "kubelet")) and p != kubelet, timeout=30)
    time.sleep(5)
    wait_until("the pod served again", lambda: c.kubectl("exec", "keep", "-n", ns, "--", "true",
                                                        check=False).returncode == 0, timeout=30)
    pod = c.pod(ns, "keep")
    cs = pod["status"]["containerStatuses"][0]
    assert cs["containerID"] == cid and cs["restartCount"] == 0 and pod["status"]["phase"] == "Running"
    assert c.kubectl("exec", "keep", "-n", ns, "--", "cat", "/proc/1/stat").stdout.split()[21] == pid_before


def _child_pid(parent: int, word: str) -> int | None:
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and word.encode() in cmd:
            return int(d.name)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
