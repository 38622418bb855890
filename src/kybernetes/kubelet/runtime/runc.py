"""The runc runtime: pods as namespaces, containers as OCI bundles run by runc under a shim.

Sandbox (``run_sandbox``), under ``<root>/sandboxes/<id>/``:

* ``ns/net``, ``ns/ipc``, ``ns/uts``: new network, IPC and UTS namespaces made persistent by
  bind mounts (``linux.create_namespaces``: one thread unshares and mounts, no program runs); the
  UTS namespace gets the pod's hostname and the loopback device is brought up. ``hostNetwork`` shares the host's network and
  UTS namespaces, ``hostIPC`` the host's IPC namespace and /dev/shm.
* ``shm/``: a tmpfs that every container of the pod sees as /dev/shm (with the shared IPC
  namespace, the pod's POSIX and SysV shared memory are both shared, as in Kubernetes).
* ``hosts``, ``hostname``, ``resolv.conf``: bind-mounted at /etc/... in each container (a
  container mount of the same path, e.g. the kubelet's own etc-hosts, wins).
* the network plugin (``CniNetwork``) wires the namespace and gives the IP; without one the pod
  has only loopback and no IP.

Container (``create_container``), under ``<root>/containers/<id>/``: ``bundle/rootfs`` is an
overlayfs of the image layers (``upper/``, ``work/`` beside it), ``bundle/config.json`` the
runtime spec (``oci.build_spec``) joining the sandbox's namespaces, with its own mount and PID
namespaces and the cgroup ``/<cgroup_root>/pod<uid>/<id>``. ``start_container`` runs it through
the shim (``runc run --detach``); runc keeps its state in ``<root>/runc`` (``runc --root``).

``remove_container`` / ``remove_sandbox`` leave no process, mount, cgroup directory or namespace
behind (the shared ``<cgroup_root>`` directories stay, like /sys/fs/cgroup/*/kubepods).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import stat
import time
import tty as ttymod
from pathlib import Path
from typing import Any, Protocol

from . import base, cgroups, linux, oci
from .shimruntime import ShimRuntime, write_etc_files
from .state import ContainerRecord, SandboxRecord

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
_STANDARD_DEVICES = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"}


class NetworkPlugin(Protocol):
    """What the runtime needs from pod networking (``kubelet.network.cni.CniNetwork``)."""

    async def setup(self, netns_path: str, sandbox_id: str, *,
                    port_mappings: list[dict[str, Any]] = ...) -> str: ...

    async def teardown(self, netns_path: str, sandbox_id: str) -> None: ...


async def run_command(*argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """Run a helper program; returns (exit code, combined output); raises on failure if ``check``."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise base.RuntimeError_(f"{' '.join(argv[:3])}... timed out after {timeout}s") from None
    text = out.decode(errors="replace").strip()
    if check and proc.returncode:
        raise base.RuntimeError_(f"{os.path.basename(argv[0])} {' '.join(argv[1:4])}... failed "
                                 f"(exit {proc.returncode}): {text}")
    return proc.returncode or 0, text


def host_devices() -> list[dict[str, Any]]:
    """The host's top-level device nodes as runtime-spec devices (for privileged containers)."""
    out = []
    for name in sorted(os.listdir("/dev")):
        if name in _STANDARD_DEVICES:
            continue
        path = os.path.join("/dev", name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            out.append({"path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                        "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                        "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return out


def bounding_caps() -> list[str]:
    """The capabilities in our own bounding set (what a privileged container can get)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return oci.caps_from_mask(int(line.split()[1], 16))
    return list(oci.ALL_CAPS)


class RuncRuntime(ShimRuntime):
    """``base.Runtime`` over runc (see the module docstring)."""

    name = "runc"

    def __init__(self, root: str | Path, *, cgroup_root: str = "kybernetes",
                 network: NetworkPlugin | None = None, runc: str = "/usr/sbin/runc",
                 log_root: str | Path, log_max_bytes: int = 10 << 20, log_max_files: int = 5) -> None:
        super().__init__(root, log_root=log_root, log_max_bytes=log_max_bytes,
                         log_max_files=log_max_files)
        self.cgroup_root = cgroup_root.strip("/")
        self.network = network
        self.runc = runc
        self.runc_root = str(self.root / "runc")

    async def _runc(self, *args: str, check: bool = True) -> tuple[int, str]:
        return await run_command(self.runc, "--root", self.runc_root, *args, check=check)

    # -- sandboxes -----------------------------------------------------------------------------
    async def _adopt(self, sandboxes: list[SandboxRecord]) -> None:
        """A ready sandbox whose namespace files are no longer mounted (the node rebooted, or
        someone unmounted them) is reported NotReady, so the kubelet makes a new one."""
        ready = [r for r in sandboxes if r.state == "ready" and r.ns]
        if not ready:
            return
        mounted = set(await asyncio.to_thread(linux.mountpoints_under, str(self.root)))
        for rec in ready:
            if not all(p in mounted for p in rec.ns.values()):
                rec.state = "notready"
                await asyncio.to_thread(self.store.save_sandbox, rec)

    async def _setup_sandbox(self, rec: SandboxRecord) -> None:
        cfg = rec.config
        kinds = ([] if cfg.host_network else ["net", "uts"]) + ([] if cfg.host_ipc else ["ipc"])
        if kinds:
            nsdir = os.path.join(rec.dir, "ns")
            rec.ns = {k: os.path.join(nsdir, k) for k in kinds}

            def create() -> None:
                os.makedirs(nsdir, exist_ok=True)
                for p in rec.ns.values():
                    Path(p).touch()
                linux.create_namespaces(rec.ns, cfg.hostname)

            await asyncio.to_thread(create)
            rec.netns_path = rec.ns.get("net")
        if not cfg.host_ipc:
            shm = os.path.join(rec.dir, "shm")

            def mount_shm() -> None:
                os.makedirs(shm, exist_ok=True)
                linux.mount("shm", shm, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                            "mode=1777,size=65536k")

            await asyncio.to_thread(mount_shm)
            rec.shm = shm
        if self.network is not None and rec.netns_path:
            rec.ip = await self.network.setup(rec.netns_path, rec.id,
                                              port_mappings=list(cfg.port_mappings))
        await asyncio.to_thread(write_etc_files, rec)

    async def _stop_sandbox(self, rec: SandboxRecord) -> None:
        if not rec.ns:
            return
        mounted = set(await asyncio.to_thread(linux.mountpoints_under, os.path.join(rec.dir, "ns")))
        if self.network is not None and rec.netns_path and rec.netns_path in mounted:
            await self.network.teardown(rec.netns_path, rec.id)

        def release() -> None:
            for p in rec.ns.values():
                if p in mounted:
                    linux.umount(p, detach=True)

        await asyncio.to_thread(release)

    async def _remove_sandbox(self, rec: SandboxRecord) -> None:
        def release() -> None:
            linux.unmount_all_under(rec.dir)
            left = cgroups.remove(cgroups.pod_cgroup_path(self.cgroup_root, rec.config),
                                  up_to=self.cgroup_root)
            if left:
                raise base.RuntimeError_(f"pod cgroups still in use: {left}")

        await asyncio.to_thread(release)

    # -- containers ----------------------------------------------------------------------------
    async def _prepare_container(self, rec: ContainerRecord, sb: SandboxRecord) -> None:
        cfg = rec.config
        bundle = os.path.join(rec.dir, "bundle")
        rootfs = os.path.join(bundle, "rootfs")
        cg = cgroups.container_cgroup_path(self.cgroup_root, sb.config, rec.id)
        namespaces: dict[str, str | None] = {"mount": None}
        if not sb.config.host_pid:
            namespaces["pid"] = None
        for kind, oci_kind in (("net", "network"), ("ipc", "ipc"), ("uts", "uts")):
            if kind in sb.ns:
                namespaces[oci_kind] = sb.ns[kind]
        devices, caps = (await asyncio.to_thread(lambda: (host_devices(), bounding_caps()))
                         if cfg.privileged else (None, None))
        spec = oci.build_spec(cfg, rootfs=rootfs, hostname=sb.config.hostname, cgroups_path=cg,
                              namespaces=namespaces, etc_files=dict(sb.etc),
                              termination_log=rec.termination_log,
                              shm_source=sb.shm or ("/dev/shm" if sb.config.host_ipc else None),
                              host_devices=devices, available_caps=caps)
        layers = list(cfg.rootfs_layers)
        rec.rootfs = rootfs
        rec.cgroup_path = cg
        rec.extra["bundle"] = bundle

        def prepare() -> None:
            upper, work = os.path.join(rec.dir, "upper"), os.path.join(rec.dir, "work")
            for d in (rootfs, upper, work):
                os.makedirs(d, exist_ok=True)
            missing = [p for p in layers if not os.path.isdir(p)]
            if missing:
                raise base.RuntimeError_(f"image layers missing: {missing}", reason="CreateContainerError")
            lower = list(reversed(layers))
            if not lower:
                lower = [os.path.join(rec.dir, "empty")]
                os.makedirs(lower[0], exist_ok=True)
            linux.mount_overlay(lower, upper, work, rootfs)
            with open(os.path.join(bundle, "config.json"), "w") as f:
                json.dump(spec, f)

        await asyncio.to_thread(prepare)

    def _shim_spec(self, rec: ContainerRecord, sb: SandboxRecord) -> dict[str, Any]:
        return {"mode": "runc", "runc": self.runc, "runc_root": self.runc_root,
                "bundle": rec.extra["bundle"],
                "memory_cgroup": f"{cgroups.CGROUP_MOUNT}/memory{rec.cgroup_path}"}

    async def _signal(self, rec: ContainerRecord, sig: int) -> None:
        args = ["kill"] + (["--all"] if sig == signal.SIGKILL else []) + [rec.id, str(int(sig))]
        code, out = await self._runc(*args, check=False)
        if code:
            log.debug("runc kill %s %s: %s", rec.id, sig, out)

    async def _cleanup_container(self, rec: ContainerRecord) -> None:
        await self._runc("delete", "--force", rec.id, check=False)
        sb = self._sandboxes.get(rec.sandbox_id)

        def release() -> None:
            linux.unmount_all_under(rec.dir)
            if rec.cgroup_path:
                up_to = cgroups.pod_cgroup_path(self.cgroup_root, sb.config) if sb else self.cgroup_root
                left = cgroups.remove(rec.cgroup_path, up_to=up_to)
                if left:
                    raise base.RuntimeError_(f"container cgroups still in use: {left}")

        await asyncio.to_thread(release)

    # -- streams -------------------------------------------------------------------------------
    async def _exec_command(self, rec: ContainerRecord, argv: list[str], *, tty: bool,
                            pid_file: str) -> tuple[list[str], dict[str, Any]]:
        if not argv:
            raise base.RuntimeError_("exec: no command", reason="ExecError")
        cmd = [self.runc, "--root", self.runc_root, "exec", "--pid-file", pid_file]
        if tty:
            cmd.append("--tty")
        return cmd + [rec.id, *argv], {}

    def _prepare_exec_pty(self, slave: int) -> None:
        ttymod.setraw(slave)   # runc copies bytes between our pty and the container's own

    def _exec_resized(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGWINCH)   # runc copies our size onto the container's pty

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[object, object]:
        """A TCP connection to 127.0.0.1:``port`` inside the sandbox's network namespace."""
        sb = await self._sandbox(sandbox_id)
        if sb.netns_path and sb.state != "ready":
            raise base.RuntimeError_(f"sandbox {sandbox_id} is not ready", reason="PortForwardError")
        if sb.netns_path:
            sock = await asyncio.to_thread(linux.socket_in_netns, sb.netns_path)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            return await asyncio.open_connection(sock=sock)
        except (OSError, TimeoutError) as e:
            sock.close()
            raise base.RuntimeError_(f"failed to connect to localhost:{port} in sandbox {sandbox_id}: {e}",
                                     reason="PortForwardError") from e

    # -- stats ---------------------------------------------------------------------------------
    async def container_stats(self, container_id: str) -> base.ContainerStats:
        rec = await self._container(container_id)
        if not rec.cgroup_path:
            raise base.NotFoundError(f"container {container_id} has no cgroup")
        try:
            cpu, usage, ws = await asyncio.to_thread(cgroups.read_usage, rec.cgroup_path)
        except OSError as e:
            raise base.NotFoundError(f"no cgroup for container {container_id}: {e}") from e
        return base.ContainerStats(container_id=container_id, timestamp=time.time(), cpu_usage_ns=cpu,
                                   memory_working_set_bytes=ws, memory_usage_bytes=usage)
