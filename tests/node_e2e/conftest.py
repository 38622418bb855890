"""A real single-node cluster (`kyb up --runtime runc|process`) with images in a real registry.

The session builds a busybox image with ``kyb image build`` in a scratch store, pushes it with
``kyb image push`` to Debian's ``docker-registry`` on loopback, and the node pulls it from there:
the path a user takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import KUBECTL, Cluster
from tests.registry_server import RegistryServer, build_busybox_rootfs, busybox_available, registry_available

KYB = [sys.executable, "-m", "kybernetes.cli.main"]


def kyb(*args: str, timeout: float = 120) -> str:
    r = subprocess.run([*KYB, *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"kyb {' '.join(args)} failed: {r.stdout}\n{r.stderr}")
    return r.stdout


def wait_until(what: str, fn: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (AssertionError, OSError, subprocess.SubprocessError, json.JSONDecodeError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class NodeCluster(Cluster):
    """A `kyb up` cluster with a real node; ``image`` is the pushed busybox image."""

    image: str = ""
    registry: str = ""
    node: str = ""

    def pod(self, ns: str, name: str) -> dict[str, Any]:
        return self.kjson("get", "pod", name, "-n", ns)

    def wait_phase(self, ns: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_pod(ns, name, phase, lambda p: p["status"].get("phase") == phase and p, timeout)

    def diagnose(self, ns: str, name: str) -> str:
        """The pod's status, its events and the cluster log lines that mention it (for failures)."""
        status = self.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status}", check=False).stdout
        events = self.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
                              check=False).stdout
        lines = [x for x in self.log.read_text(errors="replace").splitlines() if name in x][-40:]
        return f"status: {status}\nevents:\n{events}\nlog:\n" + "\n".join(lines)

    def wait_pod(self, ns: str, name: str, what: str, fn: Callable[[dict[str, Any]], Any],
                 timeout: float = 60) -> Any:
        """Wait until ``fn(pod)`` is true; on timeout the error carries ``diagnose``'s report."""
        try:
            return wait_until(f"pod {ns}/{name}: {what}", lambda: fn(self.pod(ns, name)), timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diagnose(ns, name)}") from None

    def container_state(self, ns: str, name: str, container: str | None = None) -> dict[str, Any]:
        st = self.pod(ns, name).get("status") or {}
        for cs in st.get("containerStatuses") or []:
            if container is None or cs["name"] == container:
                return cs
        return {}


def _start(tmp_path_factory: pytest.TempPathFactory, runtime: str) -> Iterator[NodeCluster]:
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    if not (registry_available() and busybox_available()):
        pytest.skip("docker-registry or busybox-static is not installed")
    if runtime == "runc" and os.geteuid() != 0:
        pytest.skip("the runc runtime needs root")
    base = tmp_path_factory.mktemp(f"node-{runtime}")
    with RegistryServer(base) as reg:
        scratch = base / "scratch"
        rootfs = build_busybox_rootfs(base / "rootfs", files={"www/index.html": b"hello from kybernetes\n"})
        image = f"{reg.host}/busybox-httpd:1"
        kyb("image", "build", str(rootfs), "-t", image, "--cmd", "httpd -f -p 8080 -h /www",
            "--data-dir", str(scratch))
        kyb("image", "push", image, "--data-dir", str(scratch))
        home = base / "home"
        home.mkdir()
        c = NodeCluster(base / "data", free_port(), home)
        c.image, c.registry = image, reg.host
        c.start("--runtime", runtime, "--kubelet-port", str(free_port()))
        try:
            c.node = wait_until("a Ready node", lambda: next(
                (n["metadata"]["name"] for n in c.kjson("get", "nodes")["items"]
                 if any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"]["conditions"])),
                None), timeout=60)
            yield c
        finally:
            try:
                c.kubectl("delete", "pods", "--all", "-A", "--grace-period=1", "--timeout=90s", check=False,
                          timeout=120)
            finally:
                c.stop()
                _force_cleanup(c.data_dir / "kubelet", runtime)


def _force_cleanup(kubelet_dir: Path, runtime: str) -> None:
    """Remove whatever a failed test left: sandboxes and containers, the bridge, the cgroup root."""
    import asyncio

    async def clean() -> None:
        if runtime == "runc":
            from kybernetes.kubelet.runtime.runc import RuncRuntime

            rt: Any = RuncRuntime(kubelet_dir / "runtime", log_root=kubelet_dir / "logs")
        else:
            from kybernetes.kubelet.runtime.process import ProcessRuntime

            rt = ProcessRuntime(kubelet_dir / "runtime", log_root=kubelet_dir / "logs")
        try:
            for sb in await rt.list_sandboxes():
                await rt.stop_sandbox(sb.id)
                await rt.remove_sandbox(sb.id)
        finally:
            await rt.close()
        pods = kubelet_dir / "pods"
        if pods.is_dir():  # volumes (tmpfs token and secret volumes) of pods never torn down
            from kybernetes.kubelet.volumes import VolumeManager

            vm = VolumeManager(pods, None)  # type: ignore[arg-type]  # teardown reads no objects
            for d in pods.iterdir():
                await vm.teardown(d.name)
        if runtime == "runc":
            from kybernetes.kubelet.network.cni import remove_bridge, remove_portmap_chains

            await remove_bridge("kyb0")
            await remove_portmap_chains()

    if (kubelet_dir / "runtime").exists():
        asyncio.run(clean())
    if runtime == "runc":
        for ctrl in Path("/sys/fs/cgroup").iterdir():
            d = ctrl / "kybernetes"
            if d.is_dir():
                for sub in [*sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                                    reverse=True), d]:
                    try:
                        sub.rmdir()
                    except OSError:
                        pass


@pytest.fixture(scope="module")
def runc_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    yield from _start(tmp_path_factory, "runc")


@pytest.fixture(scope="module")
def process_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    yield from _start(tmp_path_factory, "process")


def leftovers(token: str) -> dict[str, list[str]]:
    """Mounts, cgroup dirs, network namespaces and processes whose names contain ``token``."""
    out: dict[str, list[str]] = {"mounts": [], "cgroups": [], "netns": [], "procs": []}
    out["mounts"] = [ln for ln in Path("/proc/mounts").read_text().splitlines() if token in ln]
    for ctrl in ("memory", "cpu", "pids"):
        root = Path("/sys/fs/cgroup") / ctrl
        if root.exists():
            out["cgroups"] += [str(p) for p in root.rglob(f"*{token}*")]
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    out["netns"] = [ln for ln in r.stdout.splitlines() if token in ln]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if token in cmd:
                out["procs"].append(f"{d.name}: {cmd}")
    return out
