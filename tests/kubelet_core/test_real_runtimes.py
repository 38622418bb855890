"""The Kubelet with real parts: the process runtime (host processes under shims) or runc (root:
real isolation, loopback-only pod network), the real image store (a busybox image built locally)
and the real volume manager, against the in-process API server, on the real clock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybernetes.client.errors import NotFound
from kybernetes.client.resources import PODS
from kybernetes.client.rest import ApiClient
from kybernetes.kubelet.agent import Kubelet
from kybernetes.kubelet.images import ImageStore
from kybernetes.kubelet.runtime.base import Runtime
from kybernetes.kubelet.runtime.process import ProcessRuntime
from kybernetes.kubelet.volumes import VolumeManager
from tests.harness import wait_for
from tests.registry_server import busybox_available, busybox_image, free_port
from tests.runtime.conftest import force_cleanup, leftovers

from .conftest import condition, container_status, make_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90),
              pytest.mark.skipif(not busybox_available(), reason="busybox-static is not installed")]

IMAGE = "local/busybox:1"


class Node:
    def __init__(self, client: ApiClient, tmp: Path, kind: str) -> None:
        self.client = client
        self.tmp = tmp
        self.kind = kind
        self.cgroup_root = f"kyb-test-{secrets.token_hex(4)}" if kind == "runc" else None
        self.images = ImageStore(tmp / "kubelet" / "images")
        self.tasks: list[asyncio.Task[None]] = []
        self.runtimes: list[Runtime] = []

    def runtime(self) -> Runtime:
        root, logs = self.tmp / "kubelet" / "runtime", self.tmp / "kubelet" / "logs"
        rt: Runtime
        if self.kind == "runc":
            from kybernetes.kubelet.runtime.runc import RuncRuntime
            assert self.cgroup_root
            rt = RuncRuntime(root, cgroup_root=self.cgroup_root, log_root=logs)
        else:
            rt = ProcessRuntime(root, log_root=logs)
        self.runtimes.append(rt)
        return rt

    async def start(self) -> Kubelet:
        data = self.tmp / "kubelet"
        kl = Kubelet(self.client, node_name="proc-node", data_dir=data, runtime=self.runtime(),
                     images=self.images, node_ip="127.0.0.1", host_resolv_conf=None,
                     volumes=lambda source: VolumeManager(data / "pods", source, use_tmpfs=False))
        task = asyncio.create_task(kl.run())
        self.tasks.append(task)
        await wait_for(lambda: kl.ready.is_set() or task.done(), timeout=20, what="kubelet ready")
        if task.done():
            task.result()
        return kl

    async def stop(self) -> None:
        """Stop the kubelet as its process would: the task ends, then the runtime is closed."""
        for t in self.tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.tasks.clear()
        for r in self.runtimes:
            await r.close()


@pytest.fixture(params=["process", pytest.param("runc", marks=pytest.mark.privileged)])
async def node(request: pytest.FixtureRequest, client: ApiClient, tmp_path: Path) -> AsyncIterator[Node]:
    if request.param == "runc" and (os.geteuid() != 0 or not os.path.exists("/usr/sbin/runc")):
        pytest.skip("needs root and runc")
    n = Node(client, tmp_path, request.param)
    await asyncio.to_thread(busybox_image, n.images, IMAGE, tmp_path)
    try:
        yield n
    finally:
        await n.stop()
        rt = n.runtime()
        await force_cleanup(rt, tmp_path / "kubelet" / "runtime", n.cgroup_root)
        for r in n.runtimes:
            with contextlib.suppress(Exception):
                await r.close()
        assert not leftovers(tmp_path / "kubelet", n.cgroup_root)


def app(command: str, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sh", "-c", command], **extra}


async def phase(client: ApiClient, name: str) -> str:
    return str((await client.get(PODS, name, "default")).get("status", {}).get("phase"))


async def test_real_processes_run_probe_restart_and_stop(node: Node) -> None:
    c = node.client
    kl = await node.start()
    port = free_port()
    pod = make_pod("real", app(f"echo ok > scratch/index.html; echo hello from $POD_NAME; exec busybox httpd -f -p {port} -h scratch",
                               workingDir="/",
                               env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                               readinessProbe={"httpGet": {"path": "/index.html", "port": port},
                                               "periodSeconds": 1},
                               livenessProbe={"exec": {"command": ["sh", "-c", "test -n \"$HOSTNAME\""]},
                                              "periodSeconds": 1},
                               volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}]),
                   node="proc-node", volumes=[{"name": "scratch", "emptyDir": {}}],
                   terminationGracePeriodSeconds=5)
    await c.create(PODS, pod, "default")

    async def ready() -> bool:
        p = await c.get(PODS, "real", "default")
        return condition(p, "Ready").get("status") == "True"
    await wait_for(ready, timeout=30, what="real pod ready")
    p = await c.get(PODS, "real", "default")
    cs = container_status(p, "app")
    assert cs["containerID"].startswith(f"{node.kind}://") and cs["imageID"]
    if node.kind == "process":
        assert p["status"]["podIP"] == "127.0.0.1"  # the process runtime shares the host network
    else:
        assert "podIP" not in p["status"]  # loopback-only network: probes went through port_forward
    loc = kl.locate("default", "real", "app")

    async def logged() -> bool:
        return os.path.exists(loc.log_path) and "hello from real" in Path(loc.log_path).read_text()
    await wait_for(logged, timeout=10, what="log line")

    # a crash is noticed and the container restarted (real exit, real PLEG)
    await c.create(PODS, make_pod("crash", app("exit 3"), node="proc-node"), "default")

    async def crash_looping() -> bool:
        cs = container_status(await c.get(PODS, "crash", "default"), "app")
        return (cs.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
    await wait_for(crash_looping, timeout=30, what="CrashLoopBackOff")
    cs = container_status(await c.get(PODS, "crash", "default"), "app")
    assert cs["restartCount"] >= 1 and cs["lastState"]["terminated"]["exitCode"] == 3

    # a restarted kubelet adopts the running process: same container, nothing created
    before = container_status(await c.get(PODS, "real", "default"), "app")
    await node.stop()
    kl = await node.start()
    await asyncio.sleep(2.5)
    after = container_status(await c.get(PODS, "real", "default"), "app")
    assert after["containerID"] == before["containerID"] and after["restartCount"] == before["restartCount"]
    assert kl.workers.known(p["metadata"]["uid"])

    # deletion stops the process and removes the pod
    for name in ("real", "crash"):
        await c.delete(PODS, name, "default")

    async def gone() -> bool:
        for name in ("real", "crash"):
            with contextlib.suppress(NotFound):
                await c.get(PODS, name, "default")
                return False
        return True
    await wait_for(gone, timeout=30, what="pods deleted")
    await wait_for(lambda: not [x for x in leftovers(node.tmp / "kubelet", None) if x.startswith("process")],
                   timeout=10, what="no processes left")
