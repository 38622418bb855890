"""Issue 3 acceptance with `kyb up --runtime process` (containers as host processes, no isolation).

The same scenarios as the runc suite minus isolation and limits. Processes share the host's network
and file system, so programs here use relative paths (the working directory is the container's
stand-in root, where volumes appear) and ports chosen free on the host. A program name is looked up on the host's PATH first, so the
busybox applets are called through ``busybox`` (Debian's busybox-static is on the host too).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import KUBECTL
from tests.node_e2e.conftest import NodeCluster, wait_until
from tests.node_e2e.test_runc_node import _child_pid

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("node-process")]


@pytest.fixture
def ns(process_cluster: NodeCluster):
    name = "proc-" + uuid.uuid4().hex[:8]
    process_cluster.kubectl("create", "namespace", name)
    yield name
    process_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _web(c: NodeCluster, ns: str, port: int) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  initContainers:
  - name: init
    image: {c.image}
    command: [sh, -c, "echo from-init > www/init.txt"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  containers:
  - name: main
    image: {c.image}
    command: [busybox, sh, -c, "echo started; echo page > www/index.html; exec busybox httpd -f -p {port} -h www"]
    volumeMounts: [{{name: www, mountPath: /www}}]
    readinessProbe: {{httpGet: {{path: /index.html, port: {port}}}, periodSeconds: 1}}
  volumes: [{{name: www, emptyDir: {{}}}}]
"""


def test_pod_lifecycle_logs_exec_portforward(process_cluster: NodeCluster, ns: str) -> None:
    c = process_cluster
    port = free_port()
    c.kubectl("apply", "-n", ns, "-f", "-", input=_web(c, ns, port))
    pod = c.wait_phase(ns, "web", "Running", timeout=90)
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("process://")
    wait_until("Ready", lambda: c.container_state(ns, "web", "main").get("ready"), timeout=30)
    assert c.kubectl("exec", "web", "-n", ns, "-c", "main", "--", "cat", "www/init.txt").stdout == "from-init\n"
    r = c.kubectl("exec", "web", "-n", ns, "--", "sh", "-c", "echo out; exit 4", check=False)
    assert r.returncode == 4 and r.stdout == "out\n"
    assert "started" in c.kubectl("logs", "web", "-n", ns, "-c", "main").stdout
    local = free_port()
    pf = subprocess.Popen([KUBECTL, "port-forward", "-n", ns, "pod/web", f"{local}:{port}"], env=c.env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = wait_until("port-forward", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{local}/index.html", timeout=3).read(), timeout=30)
        assert body == b"page\n"
    finally:
        pf.send_signal(signal.SIGINT)
        pf.wait(timeout=10)
    c.kubectl("delete", "pod", "web", "-n", ns, "--grace-period", "1")
    # the httpd process is gone with the pod
    wait_until("no httpd left", lambda: _port_free(port), timeout=30)


def test_crashloop_and_previous_logs(process_cluster: NodeCluster, ns: str) -> None:
    c = process_cluster
    c.kubectl("run", "crash", "--image", c.image, "-n", ns, "--command", "--", "sh", "-c", "echo dying; exit 2")
    st = wait_until("CrashLoopBackOff", lambda: (s := c.container_state(ns, "crash")).get("state", {}).get(
        "waiting", {}).get("reason") == "CrashLoopBackOff" and s, timeout=60)
    assert st["lastState"]["terminated"]["exitCode"] == 2
    assert "dying" in c.kubectl("logs", "crash", "-n", ns, "--previous").stdout


def test_liveness_restart_and_configmap_env(process_cluster: NodeCluster, ns: str) -> None:
    c = process_cluster
    c.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal", "word=hello")
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: live}}
spec:
  containers:
  - name: main
    image: {c.image}
    command: [sh, -c, "echo $WORD; sleep 3600"]
    env: [{{name: WORD, valueFrom: {{configMapKeyRef: {{name: cfg, key: word}}}}}}]
    livenessProbe: {{exec: {{command: [sh, -c, "exit 1"]}}, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 2}}
"""
    c.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    wait_until("a liveness restart", lambda: c.container_state(ns, "live").get("restartCount", 0) >= 1, timeout=60)
    assert "hello" in c.kubectl("logs", "live", "-n", ns).stdout


def test_missing_image_and_kubelet_kill9_adoption(process_cluster: NodeCluster, ns: str) -> None:
    c = process_cluster
    c.kubectl("run", "nope", "--image", f"{c.registry}/missing:1", "-n", ns)
    wait_until("ErrImagePull or ImagePullBackOff", lambda: c.container_state(ns, "nope").get("state", {}).get(
        "waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff"), timeout=60)
    c.kubectl("run", "keep", "--image", c.image, "-n", ns, "--command", "--", "sleep", "3600")
    pod = c.wait_phase(ns, "keep", "Running", timeout=60)
    cid = pod["status"]["containerStatuses"][0]["containerID"]
    kubelet = _child_pid(c.proc.pid, "kubelet")
    assert kubelet
    os.kill(kubelet, signal.SIGKILL)
    wait_until("a new kubelet", lambda: (p := _child_pid(c.proc.pid, "kubelet")) and p != kubelet, timeout=30)
    time.sleep(4)
    cs = c.pod(ns, "keep")["status"]["containerStatuses"][0]
    assert cs["containerID"] == cid and cs["restartCount"] == 0


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT connections don't count
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_configmap_update_reaches_mounted_file(process_cluster: NodeCluster, ns: str) -> None:
    c = process_cluster
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
    volumeMounts: [{{name: cfg, mountPath: /etc/cfg}}]
  volumes: [{{name: cfg, configMap: {{name: cfg}}}}]
"""
    c.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    c.wait_phase(ns, "cm", "Running", timeout=60)
    # the process runtime: volumes are links in the container's stand-in root (its working dir)
    assert c.kubectl("exec", "cm", "-n", ns, "--", "cat", "etc/cfg/greeting").stdout == "hello"
    c.kubectl("patch", "configmap", "cfg", "-n", ns, "-p", '{"data":{"greeting":"bonjour"}}')
    wait_until("the new value in the file", lambda: c.kubectl(
        "exec", "cm", "-n", ns, "--", "cat", "etc/cfg/greeting").stdout == "bonjour", timeout=90, interval=2)
