"""The real kubectl 1.32 and the Python client against API server -> KubeletServer (local runtime).

One API server (plain HTTP, anonymous admin) with a KubeletClient, a KubeletServer on loopback
(TLS, client certificates) whose runtime runs exec as local subprocesses, a Node pointing at it
and Running pods. kubectl runs as a subprocess (asyncio, so the in-process servers keep serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kybernetes.kubelet.runtime.base import ContainerState
from kybernetes.storage import open_store
from tests.conftest import ApiClient, start_test_server
from tests.harness import wait_for

from .conftest import BACKEND_TEXT, Node

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NOW = "2025-01-01T10:00:00Z"


@dataclass
class Cluster:
    api: ApiClient
    base: str
    kubelet: Node
    env: dict[str, str]
    tmp: Path

    async def kubectl(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
                      timeout: float = 60) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, *args, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**self.env, **(env or {})})
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def pod(name: str, containers: list[str], *, phase: str = "Running", waiting: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = {"nodeName": "node-1", "containers": [{"name": c, "image": "busybox", "stdin": True} for c in containers]}
    if waiting:
        state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
    else:
        state = {"running": {"startedAt": NOW}}
    status = {"phase": phase, "containerStatuses": [
        {"name": c, "ready": not waiting, "restartCount": 0, "image": "busybox", "imageID": "", "state": state,
         **({} if waiting else {"containerID": f"kyb://{name}-{c}"})} for c in containers]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}, status


@pytest.fixture
async def cluster(kubelet: Node, tmp_path: Path) -> AsyncIterator[Cluster]:
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    server, task, port = await start_test_server(store, kubelet_client=kubelet.client)
    base = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    home.mkdir()
    kc = tmp_path / "kubeconfig"
    kc.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: t, cluster: {{server: "{base}"}}}}]
users: [{{name: u, user: {{}}}}]
contexts: [{{name: c, context: {{cluster: t, user: u, namespace: default}}}}]
current-context: c
""")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(kc)}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            api = ApiClient(base, session, server)
            code, doc, _ = await api.post("/api/v1/nodes", kubelet.node)
            assert code == 201, doc
            code, doc, _ = await api.patch("/api/v1/nodes/node-1/status", {"status": kubelet.node["status"]})
            assert code == 200, doc
            # pods need their service account (no controller runs here to create it)
            await api.post("/api/v1/namespaces/default/serviceaccounts",
                           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
            for name, containers, waiting in (("web", ["web"], False), ("multi", ["a", "b"], False), ("waiting", ["w"], True)):
                obj, status = pod(name, containers, phase="Pending" if waiting else "Running", waiting=waiting)
                code, doc, _ = await api.post("/api/v1/namespaces/default/pods", obj)
                assert code == 201, doc.get("message")
                code, doc, _ = await api.patch(f"/api/v1/namespaces/default/pods/{name}/status", {"status": status})
                assert code == 200, doc
            yield Cluster(api, base, kubelet, env, tmp_path)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


# ------------------------------------------------------------------------------------ logs


async def test_kubectl_logs(cluster: Cluster) -> None:
    rc, out, err = await cluster.kubectl("logs", "web")
    assert rc == 0, err
    assert out.splitlines() == ["web/web line 0", "web/web line 1", "web/web line 2"]
    rc, out, err = await cluster.kubectl("logs", "web", "--tail=1", "--timestamps")
    assert rc == 0 and out == "2025-01-01T10:00:02.000000000Z web/web line 2\n", err
    rc, out, err = await cluster.kubectl("logs", "multi", "-c", "b", "--tail", "2")
    assert rc == 0 and out.splitlines() == ["multi/b line 1", "multi/b line 2"], err
    rc, out, err = await cluster.kubectl("logs", "waiting")
    assert rc != 0 and 'container "w" in pod "waiting" is waiting to start: ContainerCreating' in err
    rc, out, err = await cluster.kubectl("logs", "multi", "-c", "zzz")
    assert rc != 0 and "container zzz is not valid for pod multi" in err
    # the API server's own answer for a pod with several containers and no container named
    code, doc, _ = await cluster.api.get("/api/v1/namespaces/default/pods/multi/log")
    assert code == 400 and doc["message"] == "a container name must be specified for pod multi, choose one of: [a b]"
    rc, out, err = await cluster.kubectl("logs", "multi", "--all-containers", "--since-time=2025-01-01T10:00:02Z")
    assert rc == 0 and sorted(out.splitlines()) == ["multi/a line 2", "multi/b line 2"], err
    rc, out, err = await cluster.kubectl("logs", "web", "--previous")
    assert rc != 0 and 'previous terminated container "web" in pod "web" not found' in err


async def test_kubectl_logs_previous(cluster: Cluster) -> None:
    from kybernetes.kubelet.server import Located

    prev = cluster.tmp / "previous.log"
    prev.write_text("2025-01-01T09:00:00.000000000Z stderr F the run before\n")
    cluster.kubelet.locator.previous[("default", "web", "web")] = Located("web-web-0", "sb-web", str(prev), "uid-web")
    code, doc, _ = await cluster.api.patch("/api/v1/namespaces/default/pods/web/status", {"status": {"containerStatuses": [
        {"name": "web", "ready": True, "restartCount": 1, "image": "busybox", "imageID": "", "state": {"running": {"startedAt": NOW}},
         "lastState": {"terminated": {"exitCode": 1, "startedAt": NOW, "finishedAt": NOW}}}]}})
    assert code == 200, doc
    rc, out, err = await cluster.kubectl("logs", "web", "-p")
    assert rc == 0 and out == "the run before\n", err


async def test_kubectl_logs_follow_until_the_container_exits(cluster: Cluster) -> None:
    c = cluster.kubelet.runtime.containers["web-web"]
    proc = await asyncio.create_subprocess_exec(KUBECTL, "logs", "-f", "web", "--tail=1", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=cluster.env)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"web/web line 2\n"
        with open(c.log_path, "a") as f:
            f.write("2025-01-01T10:00:05.000000000Z stdout F streamed later\n")
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"streamed later\n"
        c.state = ContainerState.EXITED
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_follower_that_leaves_frees_the_kubelet(cluster: Cluster) -> None:
    proc = await asyncio.create_subprocess_exec(KUBECTL, "logs", "-f", "web", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL, env=cluster.env)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"web/web line 0\n"
        assert cluster.kubelet.server.active_streams == 1
    finally:
        proc.kill()
        await proc.wait()
    # the container stays running and silent: only the disconnect can end the stream
    await wait_for(lambda: cluster.kubelet.server.active_streams == 0, timeout=10, what="kubelet stream ended")


# ------------------------------------------------------------------------------------ exec


async def test_kubectl_exec_output_and_exit_code(cluster: Cluster) -> None:
    rc, out, err = await cluster.kubectl("exec", "web", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert rc == 3 and out == "hi\n"
    assert "oops" in err and "command terminated with exit code 3" in err
    rc, out, err = await cluster.kubectl("exec", "-i", "web", "--", "sh", "-c", "cat; echo done", input=b"hello\nworld\n")
    assert rc == 0 and out == "hello\nworld\ndone\n", err
    assert cluster.kubelet.server.statistics()["exec/websocket/v5.channel.k8s.io"] == 2


async def test_exec_errors(cluster: Cluster) -> None:
    # the kubelet does not know the container: its 404 reaches kubectl
    rc, out, err = await cluster.kubectl("exec", "waiting", "--", "true")
    assert rc != 0 and 'container "w" in pod "default/waiting" not found' in err
    code, doc, _ = await cluster.api.get("/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true")
    assert code == 400 and doc["message"] == "Upgrade request required"
    code, doc, _ = await cluster.api.post("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unbound"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert code == 201, doc
    code, doc, _ = await cluster.api.get("/api/v1/namespaces/default/pods/unbound/exec?command=ls&stdout=true",
                                         headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    assert code == 400 and doc["message"] == "pod unbound does not have a host assigned"
    code, doc, _ = await cluster.api.get("/api/v1/namespaces/default/pods/unbound/log")
    assert code == 400 and doc["message"] == 'container "c" in pod "unbound" is waiting to start: ContainerCreating'
    # a kubelet nobody answers for
    code, doc, _ = await cluster.api.patch("/api/v1/nodes/node-1/status",
                                           {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
    assert code == 200, doc
    code, doc, _ = await cluster.api.get("/api/v1/namespaces/default/pods/web/log")
    assert code == 500 and doc["message"].startswith("error dialing backend: https://127.0.0.1:1/containerLogs/")
    rc, out, err = await cluster.kubectl("exec", "web", "--", "true")
    assert rc != 0 and "error dialing backend" in err


async def test_no_kubelet_client_is_503(api: ApiClient) -> None:
    await api.post("/api/v1/namespaces/default/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
    obj, status = pod("p", ["c"])
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods", obj)
    assert code == 201, doc
    await api.patch("/api/v1/namespaces/default/pods/p/status", {"status": status})
    code, doc, _ = await api.get("/api/v1/namespaces/default/pods/p/log")
    assert code == 503 and doc["reason"] == "ServiceUnavailable"


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
async def test_kubectl_exec_with_a_terminal(cluster: Cluster) -> None:
    # script(1) gives kubectl a pseudo-terminal, so -t really asks for a tty (and sends resizes)
    cmd = f"stty cols 91 rows 33; {KUBECTL} exec -it web -- sh -c 'echo in-tty; echo to-stderr >&2; sleep 1; exit 2'"
    proc = await asyncio.create_subprocess_exec("script", "-qec", cmd, "/dev/null", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=cluster.env)
    out, _ = await asyncio.wait_for(proc.communicate(b""), 60)
    text = out.decode(errors="replace")
    assert "in-tty" in text and "to-stderr" in text and proc.returncode == 2, text
    assert cluster.kubelet.server.statistics() == {"exec/websocket/v5.channel.k8s.io": 1}
    assert (91, 33) in cluster.kubelet.runtime.execs[0].resizes


async def test_kubectl_exec_falls_back_to_spdy(cluster: Cluster) -> None:
    env = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    rc, out, err = await cluster.kubectl("exec", "-i", "web", "--", "sh", "-c", "cat; exit 7", input=b"over spdy\n", env=env)
    assert rc == 7 and out == "over spdy\n" and "command terminated with exit code 7" in err
    assert cluster.kubelet.server.statistics() == {"exec/spdy/v4.channel.k8s.io": 1}


async def test_kubectl_cp_both_ways(cluster: Cluster) -> None:
    pod_dir = cluster.tmp / "podfs"       # the local runtime's "container" sees the host's files
    pod_dir.mkdir()
    local = cluster.tmp / "upload.bin"
    payload = os.urandom(300_000)
    local.write_bytes(payload)
    rc, out, err = await cluster.kubectl("cp", str(local), f"web:{pod_dir}/uploaded.bin")
    assert rc == 0, err
    assert (pod_dir / "uploaded.bin").read_bytes() == payload
    (pod_dir / "down.txt").write_text("from the pod\n")
    dest = cluster.tmp / "downloaded.txt"
    rc, out, err = await cluster.kubectl("cp", f"web:{pod_dir}/down.txt", str(dest))
    assert rc == 0, err
    assert dest.read_text() == "from the pod\n"


async def test_kubectl_attach(cluster: Cluster) -> None:
    rc, out, err = await cluster.kubectl("attach", "web", "-c", "web", "-i", input=b"there\n")
    assert rc == 0, err
    assert "attached\ngot:there\n" in out
    rc, out, err = await cluster.kubectl("attach", "web", "-i", input=b"spdy\n",
                                         env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"})
    assert rc == 0 and "attached\ngot:spdy\n" in out, err
    assert cluster.kubelet.server.statistics() == {"attach/websocket/v5.channel.k8s.io": 1,
                                                   "attach/spdy/v4.channel.k8s.io": 1}


# ------------------------------------------------------------------------------------ port-forward


async def port_forward_request(cluster: Cluster, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "port-forward", "pod/web", f":{cluster.kubelet.backend_port}", "--address", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**cluster.env, **(env or {})})
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        m = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
        assert m is not None, line + (await proc.stderr.read(4000)).decode() if proc.stderr else line
        local = int(m.group(1))
        texts = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
            for path in ("/", "/echo?x=second"):       # two connections over one session
                async with s.get(f"http://127.0.0.1:{local}{path}", headers={"Connection": "close"}) as r:
                    texts.append(await r.text())
        return "|".join(texts)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_kubectl_port_forward_websocket_tunnel(cluster: Cluster) -> None:
    assert await port_forward_request(cluster) == f"{BACKEND_TEXT}|second"
    assert cluster.kubelet.server.statistics() == {"portforward/websocket/SPDY/3.1+portforward.k8s.io": 1}


async def test_kubectl_port_forward_plain_spdy(cluster: Cluster) -> None:
    text = await port_forward_request(cluster, env={"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"})
    assert text == f"{BACKEND_TEXT}|second"
    assert cluster.kubelet.server.statistics() == {"portforward/spdy/portforward.k8s.io": 1}


# ------------------------------------------------------------------------------------ Python client


def python_client_session(base: str, port: int) -> dict[str, Any]:
    """Runs in a thread: the Python client is synchronous."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import portforward, stream

    cfg = client.Configuration()
    cfg.host = base
    api = client.CoreV1Api(client.ApiClient(cfg))
    res: dict[str, Any] = {}
    res["exec"] = stream(api.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "echo py-out"],
                         stderr=True, stdin=False, stdout=True, tty=False)
    resp = stream(api.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "echo bye; exit 4"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=20)
    res["rc"] = resp.returncode
    resp = stream(api.connect_get_namespaced_pod_exec, "web", "default", command=["cat"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("typed\n")
    deadline = time.monotonic() + 20
    got = ""
    while "typed" not in got and time.monotonic() < deadline:
        resp.update(timeout=1)
        got += resp.read_stdout() or ""
    resp.close()
    res["stdin"] = got
    try:
        api.read_namespaced_pod_log("multi", "default")
    except ApiException as e:
        res["log_error"] = (e.status, e.body)
    res["log"] = api.read_namespaced_pod_log("multi", "default", container="a", tail_lines=1)
    pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports=str(port))
    sock = pf.socket(port)
    sock.setblocking(True)
    sock.settimeout(20)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    with contextlib.suppress(socket.timeout):
        while chunk := sock.recv(65536):
            data += chunk
    sock.close()
    res["pf"] = data
    res["pf_error"] = pf.error(port)
    return res


async def test_python_client_exec_logs_and_portforward(cluster: Cluster) -> None:
    res = await asyncio.to_thread(python_client_session, cluster.base, cluster.kubelet.backend_port)
    assert res["exec"] == "py-out\n"
    assert res["rc"] == 4
    assert "typed" in res["stdin"]
    assert res["log_error"][0] == 400 and "choose one of: [a b]" in res["log_error"][1]
    assert res["log"] == "multi/a line 2\n"
    assert res["pf"].startswith(b"HTTP/1.") and res["pf"].endswith(BACKEND_TEXT.encode())
    assert res["pf_error"] is None
    stats = cluster.kubelet.server.statistics()
    assert stats["exec/websocket/v5.channel.k8s.io"] == 3
    assert stats["portforward/websocket/v4.channel.k8s.io"] == 1


# ------------------------------------------------------------------------------------ TLS all the way


async def test_kubectl_through_a_tls_api_server(kubelet: Node, tmp_path: Path) -> None:
    """The upgrade relay on a TLS connection (kubectl -> TLS API server -> TLS kubelet)."""
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    from kybernetes.pki import server_ssl_context
    from kybernetes.pki.kubeconfig import write_kubeconfig

    pki = kubelet.pki
    store = open_store("sqlite", path=str(tmp_path / "tls.db"))
    server, task, port = await start_test_server(store, kubelet_client=kubelet.client,
                                                 ssl_context=server_ssl_context(pki))
    kc = tmp_path / "tls.kubeconfig"
    write_kubeconfig(kc, server=f"https://127.0.0.1:{port}", ca_pem=pki.ca_cert.read_bytes(),
                     cert_pem=pki.admin_cert.read_bytes(), key_pem=pki.admin_key.read_bytes(), namespace="default")
    (tmp_path / "h").mkdir()
    cluster = Cluster(None, "", kubelet, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "h"),
                                          "KUBECONFIG": str(kc)}, tmp_path)  # type: ignore[arg-type]
    try:
        rc, _, err = await cluster.kubectl("create", "-f", "-", "--validate=false", input=json.dumps({"kind": "List", "apiVersion": "v1", "items": [
            kubelet.node, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}]}).encode())
        assert rc == 0, err
        obj, status = pod("web", ["web"])
        rc, _, err = await cluster.kubectl("create", "-f", "-", "--validate=false", input=json.dumps(obj).encode())
        assert rc == 0, err
        rc, _, err = await cluster.kubectl("patch", "pod", "web", "--subresource=status", "--type=merge",
                                           "-p", json.dumps({"status": status}))
        assert rc == 0, err
        rc, out, err = await cluster.kubectl("exec", "-i", "web", "--", "sh", "-c", "cat; exit 6", input=b"secure\n")
        assert rc == 6 and out == "secure\n", err
        text = await port_forward_request(cluster, env={"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"})
        assert text == f"{BACKEND_TEXT}|second"
        assert kubelet.server.statistics() == {"exec/websocket/v5.channel.k8s.io": 1,
                                               "portforward/spdy/portforward.k8s.io": 1}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
