"""The process runtime: containers as supervised host processes. **No isolation.**

For machines where the kubelet cannot be root (or has no runc). The pod lifecycle, logs, exit
codes, stop with grace period, exec, attach and port-forward behave as with runc, but:

* containers share the host's network (a pod has no IP of its own: ``SandboxStatus.ip`` is None,
  ports are host ports, ``port_forward`` connects to 127.0.0.1:port on the host), PID, IPC and
  UTS namespaces and file system; there are no cgroup limits (``resources`` are ignored) and no
  OOMKilled;
* the program is ``argv[0]`` looked up on the host's PATH first (using the container's PATH),
  else inside the image: the layers are searched top-down, following symlinks within the image
  (so busybox applets work: the busybox binary runs with its applet name as ``argv[0]``);
* each container gets a stand-in root directory ``<root>/containers/<id>/root``: the working
  directory is created inside it and is the process's cwd; volume mounts, the pod's /etc files
  and the termination-message file appear there as symlinks to the host paths (skipped when a
  parent of the target is itself such a symlink). Absolute paths in the program still mean host
  paths - a program that writes /dev/termination-log writes the host's file (as root) or fails;
* when the kubelet runs as root the process runs as the container's uid/gid/supplemental gids
  (image user or ``runAsUser``); as any other user it runs as that user;
* when the main process exits its process group is killed (a stand-in for the PID namespace).

Stats come from /proc: CPU time and resident memory summed over the processes of the
container's session.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from . import base, oci
from .shim import STARTED_FILE
from .shimruntime import ShimRuntime, write_etc_files
from .state import ContainerRecord, SandboxRecord, read_json

CONNECT_TIMEOUT = 10.0
SHIM_FILE = str(Path(__file__).with_name("shim.py"))
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resolve_in_image(path: str, layers: list[str], _depth: int = 0) -> str | None:
    """The host path of image path ``path`` in the merged ``layers`` (lowest first), following
    symlinks the way they resolve inside the image; None if it is missing or not a file."""
    if _depth > 40:
        return None
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    cur = ""
    host = ""
    for i, comp in enumerate(parts):
        cand = f"{cur}/{comp}"
        for layer in reversed(layers):
            if os.path.lexists(layer + cand):
                host = layer + cand
                break
            if os.path.lexists(f"{layer}{cur}/.wh.{comp}"):   # deleted in this layer
                return None
        else:
            return None
        if os.path.islink(host):
            target = os.readlink(host)
            base_dir = "" if target.startswith("/") else cur
            rest = "/".join(parts[i + 1:])
            return resolve_in_image(posixpath.normpath(f"{base_dir}/{target}/{rest}"), layers, _depth + 1)
        cur = cand
    return host if host and os.path.isfile(host) else None


def resolve_program(argv0: str, *, path_env: str, layers: list[str], cwd: str) -> str | None:
    """Where to find ``argv0``: on the host (container PATH), else inside the image layers."""
    if "/" in argv0:
        host = argv0 if argv0.startswith("/") else os.path.join(cwd, argv0)
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return host
        return resolve_in_image(argv0 if argv0.startswith("/") else "/" + argv0, layers)
    found = shutil.which(argv0, path=path_env)
    if found:
        return found
    for d in path_env.split(":"):
        if d.startswith("/"):
            hit = resolve_in_image(f"{d}/{argv0}", layers)
            if hit:
                return hit
    return None


def _path_env(env: list[str]) -> str:
    for e in env:
        if e.startswith("PATH="):
            return e[5:]
    return oci.DEFAULT_PATH


def link_into_root(root: str, container_path: str, host_path: str) -> bool:
    """Make ``root/<container_path>`` a symlink to ``host_path`` (blocking). False if skipped."""
    rel = posixpath.normpath("/" + container_path).lstrip("/")
    if not rel:
        return False
    parts = rel.split("/")
    cur = root
    for comp in parts[:-1]:
        cur = os.path.join(cur, comp)
        if os.path.islink(cur):          # inside another mount's symlink: would touch host files
            return False
        os.makedirs(cur, exist_ok=True)
    target = os.path.join(root, rel)
    if os.path.islink(target) or os.path.isfile(target):
        os.unlink(target)
    elif os.path.isdir(target):
        shutil.rmtree(target)
    os.symlink(host_path, target)
    return True


_snapshot_lock = threading.Lock()
_snapshot: tuple[float, dict[int, tuple[int, int]]] = (-1.0, {})
SNAPSHOT_MAX_AGE = 1.0  # seconds: one /proc scan serves every container of a stats round


def _sessions() -> dict[int, tuple[int, int]]:
    """(CPU ticks, resident pages) per session id, from one scan of /proc (blocking)."""
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        # fields[0] is field 3 (state): session = field 6, utime 14, stime 15, rss 24
        sid = int(fields[3])
        ticks, pages = out.get(sid, (0, 0))
        out[sid] = (ticks + int(fields[11]) + int(fields[12]), pages + int(fields[21]))
    return out


def session_usage(sid: int) -> tuple[int, int]:
    """(CPU ns, resident bytes) summed over the processes of session ``sid`` (blocking)."""
    global _snapshot
    with _snapshot_lock:
        taken, sessions = _snapshot
        if time.monotonic() - taken > SNAPSHOT_MAX_AGE:
            sessions = _sessions()
            _snapshot = (time.monotonic(), sessions)
    ticks, pages = sessions.get(sid, (0, 0))
    return ticks * 1_000_000_000 // _CLK_TCK, pages * _PAGE


class ProcessRuntime(ShimRuntime):
    """``base.Runtime`` with host processes (see the module docstring: no isolation)."""

    name = "process"

    def __init__(self, root: str | Path, *, log_root: str | Path, log_max_bytes: int = 10 << 20,
                 log_max_files: int = 5) -> None:
        super().__init__(root, log_root=log_root, log_max_bytes=log_max_bytes,
                         log_max_files=log_max_files)

    # -- sandboxes -----------------------------------------------------------------------------
    async def _setup_sandbox(self, rec: SandboxRecord) -> None:
        await asyncio.to_thread(write_etc_files, rec)

    async def _stop_sandbox(self, rec: SandboxRecord) -> None:
        return None

    async def _remove_sandbox(self, rec: SandboxRecord) -> None:
        return None

    # -- containers ----------------------------------------------------------------------------
    async def _prepare_container(self, rec: ContainerRecord, sb: SandboxRecord) -> None:
        cfg = rec.config
        if not cfg.argv:
            raise base.RuntimeError_("no command specified", reason="CreateContainerError")
        root = os.path.join(rec.dir, "root")
        env = oci.container_env(cfg.env, hostname=sb.config.hostname, tty=cfg.tty)

        def prepare() -> dict[str, Any]:
            os.makedirs(root, exist_ok=True)
            links = dict(sb.etc)
            links[cfg.termination_message_path or "/dev/termination-log"] = rec.termination_log
            for m in cfg.mounts:
                links[m.container_path] = m.host_path
            skipped = [dst for dst, src in sorted(links.items(), key=lambda kv: kv[0].count("/"))
                       if not link_into_root(root, dst, src)]
            cwd = os.path.join(root, posixpath.normpath("/" + (cfg.working_dir or "/")).lstrip("/"))
            if not os.path.islink(cwd):
                os.makedirs(cwd, exist_ok=True)
                if os.geteuid() == 0 and cfg.uid != 0:   # the container's user owns its workdir
                    os.chown(cwd, cfg.uid, cfg.gid)
            exe = resolve_program(cfg.argv[0], path_env=_path_env(env), layers=list(cfg.rootfs_layers),
                                  cwd=cwd)
            return {"cwd": cwd, "executable": exe, "env": env, "skipped_mounts": skipped}

        rec.rootfs = root
        rec.extra.update(await asyncio.to_thread(prepare))

    def _shim_spec(self, rec: ContainerRecord, sb: SandboxRecord) -> dict[str, Any]:
        cfg = rec.config
        return {"mode": "process", "argv": list(cfg.argv), "executable": rec.extra.get("executable") or "",
                "env": list(rec.extra.get("env", [])), "cwd": rec.extra.get("cwd", ""),
                "uid": int(cfg.uid), "gid": int(cfg.gid),
                "groups": [int(g) for g in cfg.supplemental_gids]}

    async def _pid(self, rec: ContainerRecord) -> int | None:
        doc = await asyncio.to_thread(read_json, os.path.join(rec.dir, STARTED_FILE))
        return int(doc["pid"]) if doc and doc.get("pid") else None

    async def _signal(self, rec: ContainerRecord, sig: int) -> None:
        pid = await self._pid(rec)
        if pid is None:
            return
        for target in (lambda: os.killpg(pid, sig), lambda: os.kill(pid, sig)):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass

    async def _cleanup_container(self, rec: ContainerRecord) -> None:
        return None

    # -- streams -------------------------------------------------------------------------------
    async def _exec_command(self, rec: ContainerRecord, argv: list[str], *, tty: bool,
                            pid_file: str) -> tuple[list[str], dict[str, Any]]:
        if not argv:
            raise base.RuntimeError_("exec: no command", reason="ExecError")
        env_list = list(rec.extra.get("env", []))
        cwd = rec.extra.get("cwd") or rec.dir
        exe = await asyncio.to_thread(resolve_program, argv[0], path_env=_path_env(env_list),
                                      layers=list(rec.config.rootfs_layers), cwd=cwd)
        if exe is None:
            raise base.RuntimeError_(f"exec: {argv[0]!r} not found", reason="ExecError")
        env = dict(e.split("=", 1) for e in env_list if "=" in e)
        if tty:   # a tiny helper makes the pty the controlling terminal, then execs
            import sys
            return [sys.executable, "-S", SHIM_FILE, "--exec", exe, *argv], {"cwd": cwd, "env": env}
        return list(argv), {"executable": exe, "cwd": cwd, "env": env, "start_new_session": True}

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[object, object]:
        """A TCP connection to 127.0.0.1:``port`` on the host (pods share the host network)."""
        await self._sandbox(sandbox_id)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await asyncio.open_connection("127.0.0.1", port, family=socket.AF_INET)
        except (OSError, TimeoutError) as e:
            raise base.RuntimeError_(f"failed to connect to localhost:{port}: {e}",
                                     reason="PortForwardError") from e

    # -- stats ---------------------------------------------------------------------------------
    async def container_stats(self, container_id: str) -> base.ContainerStats:
        st = await self.container_status(container_id)
        if st.state != base.ContainerState.RUNNING or st.pid is None:
            raise base.NotFoundError(f"container {container_id} is not running")
        cpu, rss = await asyncio.to_thread(session_usage, st.pid)
        return base.ContainerStats(container_id=container_id, timestamp=time.time(), cpu_usage_ns=cpu,
                                   memory_working_set_bytes=rss, memory_usage_bytes=rss)

