"""Fixtures for the runtime tests: a busybox root filesystem, runtimes on private roots, and a
check that nothing (process, mount, cgroup, namespace) is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kybernetes.kubelet.runtime import base, cgroups, linux
from kybernetes.kubelet.runtime.shim import STARTED_FILE
from kybernetes.kubelet.runtime.state import read_json
from tests.harness import wait_for

BUSYBOX = "/usr/bin/busybox"
CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([FP]) (.*)$", re.S)


def log_lines(path: str, stream: str | None = None) -> list[str]:
    """The content of each CRI record in ``path`` (of ``stream`` only, if given)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        for line in f.read().decode().split("\n")[:-1]:    # content may hold \r: split on \n only
            m = CRI_LINE.match(line)
            assert m, f"not a CRI log line: {line!r}"
            if stream is None or m.group(1) == stream:
                out.append(m.group(3))
    return out


async def wait_exited(rt, cid: str, timeout: float = 20.0) -> base.ContainerStatus:
    async def done() -> bool:
        return (await rt.container_status(cid)).state == base.ContainerState.EXITED
    await wait_for(done, timeout=timeout, what=f"container {cid[:12]} exited")
    return await rt.container_status(cid)


def build_busybox_rootfs(dest: Path) -> Path:
    """A minimal root filesystem: busybox with every applet linked, /etc/passwd and /tmp."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and not (dest / "bin" / a).exists():
            os.symlink("busybox", dest / "bin" / a)
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    (dest / "tmp").mkdir(mode=0o1777)
    os.chmod(dest / "tmp", 0o1777)
    (dest / "root").mkdir()
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    return str(build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs"))


def sandbox_config(name: str = "web", *, hostname: str | None = None, **kw) -> base.SandboxConfig:
    uid = str(uuid.uuid4())
    return base.SandboxConfig(pod_uid=uid, namespace="default", name=name, hostname=hostname or name,
                              labels=dict(base.labels_for(uid, "default", name)), **kw)


def container_config(layers: list[str], argv: list[str], name: str = "main", **kw) -> base.ContainerConfig:
    labels = kw.pop("labels", {})
    labels.setdefault(base.LABEL_CONTAINER_NAME, name)
    labels.setdefault(base.LABEL_CONTAINER_ATTEMPT, "0")
    return base.ContainerConfig(name=name, image="busybox", image_id="sha256:" + "0" * 64,
                                rootfs_layers=layers, argv=argv, labels=labels, **kw)


def _shim_pids(root: Path) -> list[int]:
    pids = []
    for f in root.glob("containers/*/" + STARTED_FILE):
        doc = read_json(f) or {}
        for k in ("shim_pid", "pid"):
            if doc.get(k):
                pids.append(int(doc[k]))
    return pids


def leftovers(root: Path, cgroup_root: str | None, *, server: bool = False) -> list[str]:
    """Everything of ``root`` / ``cgroup_root`` still present on the machine. The runtime's shim
    fork server (its pid in ``shim-server.pid`` in ``root`` or a directory below) lives as long as the runtime object; it
    counts only with ``server=True``. Shims it forked carry its command line and always count."""
    found = []
    found += [f"mount {m}" for m in linux.mountpoints_under(str(root))]
    if cgroup_root:
        for h in cgroups.hierarchies():
            d = os.path.join(h, cgroup_root)
            if os.path.isdir(d):
                subdirs = [e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e))]
                if subdirs:
                    found.append(f"cgroup {d}: {subdirs}")
    needle = str(root).encode()
    skip = {str(os.getpid())}
    if not server:
        for f in [*root.glob("shim-server.pid"), *root.glob("*/shim-server.pid")]:
            with contextlib.suppress(OSError):
                skip.add(f.read_text().strip())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in skip:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in cmd:
            shown = cmd.replace(b"\0", b" ")[:200]
            found.append(f"process {pid}: {shown!r}")
    return found


async def force_cleanup(rt, root: Path, cgroup_root: str | None) -> None:
    """Best-effort removal of anything a failed test left behind (only things under ``root``)."""
    with contextlib.suppress(Exception):
        for sb in await rt.list_sandboxes():
            with contextlib.suppress(Exception):
                await rt.remove_sandbox(sb.id)
    for pid in _shim_pids(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    runc_root = root / "runc"
    if runc_root.is_dir():
        for d in runc_root.iterdir():
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", d.name],
                           capture_output=True)
    await asyncio.sleep(0.1)
    with contextlib.suppress(Exception):
        linux.unmount_all_under(str(root))
    if cgroup_root:
        for h in cgroups.hierarchies():
            d = os.path.join(h, cgroup_root)
            if os.path.isdir(d):
                for dirpath, dirnames, _ in sorted(os.walk(d), key=lambda t: -t[0].count("/")):
                    with contextlib.suppress(OSError):
                        os.rmdir(dirpath)


@pytest.fixture
def cgroup_root() -> str:
    return f"kyb-test-{secrets.token_hex(4)}"


@pytest.fixture
async def runc_rt(tmp_path: Path, cgroup_root: str) -> AsyncIterator:
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/runc"):
        pytest.skip("needs root and runc")
    from kybernetes.kubelet.runtime.runc import RuncRuntime

    root = tmp_path / "runtime"
    rt = RuncRuntime(root, cgroup_root=cgroup_root, log_root=tmp_path / "logs")
    try:
        yield rt
    finally:
        await force_cleanup(rt, root, cgroup_root)
        await rt.close()
