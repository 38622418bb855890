"""What the runc and process runtimes share: records, the shim, status, stop, attach, exec.

``ShimRuntime`` implements the container lifecycle of ``base.Runtime`` over a ``StateStore`` and
one shim per started container (``shim.py``). Subclasses supply the isolation-specific steps:

    _setup_sandbox(rec)          make the pod's namespaces / files / network (fills the record)
    _stop_sandbox(rec)           tear its network down, release namespaces (idempotent)
    _remove_sandbox(rec)         release what is left (cgroup dirs, mounts) before the dir goes
    _prepare_container(rec, sb)  root filesystem, bundle, cgroup path (fills the record)
    _shim_spec(rec, sb)          the dict the shim reads (mode, argv or runc bundle, ...)
    _signal(rec, sig)            send a signal to the container (SIGKILL reaches all of it)
    _cleanup_container(rec)      release a container's resources before its dir goes (idempotent)
    _exec_command(rec, argv, tty, pid_file) -> (argv, kwargs for create_subprocess_exec), async
    port_forward / container_stats

Public methods never block the loop: disk and /proc reads go through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import base
from .shim import EXIT_FILE, SHIM_LOG, SOCKET_FILE, SPEC_FILE
from .state import (
    TERMINATION_FILE, ContainerRecord, SandboxRecord, StateStore, compute_container_status,
    log_path_for, observe_container, read_json,
)
from .streams import (
    PipeExecProcess, PtyExecProcess, ShimAttachProcess, exit_code_of, kill_pid_file, open_shim,
    set_winsize, wait_for_exit_frame,
)

log = logging.getLogger(__name__)

SHIM_START_TIMEOUT = 60.0
KILL_WAIT = 10.0                 # how long to wait for a SIGKILLed container to be reaped
EXEC_OUTPUT_LIMIT = 16 << 20     # exec_sync keeps at most this much of each stream
_SRC_DIR = str(Path(__file__).resolve().parents[3])   # the directory holding the kybernetes package


def new_id() -> str:
    return secrets.token_hex(32)


def compile_shim(cache_dir: str) -> str | None:
    """Byte-compile shim.py into ``cache_dir`` once per version of the source (blocking).

    The shim starts on every container start; running its compiled file directly saves the
    compile (when bytecode caching is off, e.g. PYTHONDONTWRITEBYTECODE) and the package
    imports. Returns the .pyc path, or None to fall back to ``python -m``.
    """
    import hashlib
    import py_compile
    src = Path(__file__).with_name("shim.py")
    try:
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        target = os.path.join(cache_dir, f"shim-{sys.implementation.cache_tag}-{digest}.pyc")
        if not os.path.exists(target):
            os.makedirs(cache_dir, exist_ok=True)
            py_compile.compile(str(src), cfile=target + ".tmp", doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            os.replace(target + ".tmp", target)
        return target
    except (OSError, py_compile.PyCompileError) as e:
        log.warning("cannot precompile the shim (%s); using python -m", e)
        return None


def shim_argv(cdir: str, compiled: str | None = None) -> list[str]:
    # -S: no site-packages scan at start (the shim needs only the standard library)
    if compiled:
        return [sys.executable, "-S", compiled, cdir]
    return [sys.executable, "-S", "-m", "kybernetes.kubelet.runtime.shim", cdir]


def shim_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = _SRC_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


async def launch_shim(cdir: str, *, compiled: str | None = None,
                      timeout: float = SHIM_START_TIMEOUT) -> int:
    """Start the shim for the container in ``cdir`` and wait until it started the container.

    The launcher process forks the real shim and exits at once; the shim reports ``ok <pid>`` or
    ``error <message>`` on the launcher's stdout (a pipe). Returns the container's pid; raises
    ``RuntimeError_`` with the shim's message when the container could not be started.
    """
    log_fd = await asyncio.to_thread(os.open, os.path.join(cdir, SHIM_LOG),
                                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            *shim_argv(cdir, compiled), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=log_fd, start_new_session=True, cwd=cdir, env=shim_env())
    finally:
        os.close(log_fd)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            line = (await proc.stdout.readline()).decode(errors="replace").strip()
            await proc.wait()
    except TimeoutError:
        raise base.RuntimeError_("timed out waiting for the container to start",
                                 reason="RunContainerError") from None
    return await _launch_result(line, cdir)


class ShimServer:
    """The shim fork server (``shim.py --server``): a resident child that forks a shim per
    container start instead of starting a new interpreter each time (see shim.py).

    Started on first use (its pid in ``shim-server.pid`` beside the socket; the shims it forks
    show its command line in ``ps``); if it cannot be reached (it died, or never started), ``launch`` falls
    back to ``launch_shim`` and the next call starts a new server. ``close`` ends it (its stdin
    closes); the shims it forked keep running.
    """

    def __init__(self, sock_path: str, compiled: str | None) -> None:
        self.sock_path = sock_path
        self.compiled = compiled
        self.proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    def _argv(self) -> list[str]:
        if self.compiled:
            return [sys.executable, "-S", self.compiled, "--server", self.sock_path]
        return [sys.executable, "-S", "-m", "kybernetes.kubelet.runtime.shim", "--server", self.sock_path]

    async def _ensure(self) -> None:
        async with self._lock:
            if self.proc is not None and self.proc.returncode is None:
                return
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, self.sock_path)
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                start_new_session=True, cwd="/", env=shim_env())
            pid_file = os.path.join(os.path.dirname(self.sock_path), "shim-server.pid")
            await asyncio.to_thread(Path(pid_file).write_text, f"{self.proc.pid}\n")
            for _ in range(200):       # the socket appears once the module is loaded (~0.1 s)
                if os.path.exists(self.sock_path) or self.proc.returncode is not None:
                    break
                await asyncio.sleep(0.01)

    async def launch(self, cdir: str, *, timeout: float = SHIM_START_TIMEOUT) -> int:
        """Like ``launch_shim``: the container's pid, or ``RuntimeError_`` with the shim's message."""
        try:
            await self._ensure()
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.sock_path), 5)
        except (OSError, TimeoutError) as e:
            log.warning("shim server unavailable (%s); starting the shim directly", e)
            return await launch_shim(cdir, compiled=self.compiled, timeout=timeout)
        try:
            writer.write(cdir.encode() + b"\n")
            async with asyncio.timeout(timeout):
                await writer.drain()
                line = (await reader.readline()).decode(errors="replace").strip()
        except TimeoutError:
            raise base.RuntimeError_("timed out waiting for the container to start",
                                     reason="RunContainerError") from None
        finally:
            writer.close()
        return await _launch_result(line, cdir)

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _launch_result(line: str, cdir: str) -> int:
    if line.startswith("ok "):
        return int(line[3:])
    if line.startswith("error "):
        raise base.RuntimeError_(line[6:], reason="RunContainerError")
    tail = ""
    with contextlib.suppress(OSError):
        tail = (await asyncio.to_thread(Path(cdir, SHIM_LOG).read_text, errors="replace"))[-500:]
    raise base.RuntimeError_(f"the shim exited without starting the container: {tail}",
                             reason="RunContainerError")


def write_shim_spec(cdir: str, spec: dict[str, Any]) -> None:
    import marshal
    tmp = os.path.join(cdir, SPEC_FILE + ".tmp")
    with open(tmp, "wb") as f:
        marshal.dump(spec, f)
    os.replace(tmp, os.path.join(cdir, SPEC_FILE))


class ShimRuntime:
    """The shared lifecycle; see the module docstring for the hooks subclasses implement."""

    name = "shim"

    def __init__(self, root: str | Path, *, log_root: str | Path, log_max_bytes: int = 10 << 20,
                 log_max_files: int = 5) -> None:
        self.root = Path(root).absolute()
        self.log_root = Path(log_root).absolute()
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self.store = StateStore(self.root)
        self._sandboxes: dict[str, SandboxRecord] = {}
        self._containers: dict[str, ContainerRecord] = {}
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._shim_server: ShimServer | None = None

    # -- records -------------------------------------------------------------------------------
    async def _load(self) -> None:
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return

            def load() -> tuple[dict[str, SandboxRecord], dict[str, ContainerRecord]]:
                self.store.ensure()
                return self.store.load()

            self._sandboxes, self._containers = await asyncio.to_thread(load)
            await self._adopt(list(self._sandboxes.values()))
            self._loaded = True

    async def _sandbox(self, sandbox_id: str) -> SandboxRecord:
        await self._load()
        rec = self._sandboxes.get(sandbox_id)
        if rec is None:
            raise base.NotFoundError(f"sandbox {sandbox_id} not found")
        return rec

    async def _container(self, container_id: str) -> ContainerRecord:
        await self._load()
        rec = self._containers.get(container_id)
        if rec is None:
            raise base.NotFoundError(f"container {container_id} not found")
        return rec

    # -- sandboxes -----------------------------------------------------------------------------
    async def run_sandbox(self, config: base.SandboxConfig) -> base.SandboxStatus:
        await self._load()
        sid = new_id()
        rec = SandboxRecord(id=sid, config=config, created_at=time.time(),
                            dir=str(self.store.sandbox_dir(sid)))
        try:
            await asyncio.to_thread(os.makedirs, rec.dir)
            await self._setup_sandbox(rec)
            await asyncio.to_thread(self.store.save_sandbox, rec)
        except BaseException as e:
            with contextlib.suppress(Exception):
                await self._stop_sandbox(rec)
            with contextlib.suppress(Exception):
                await self._remove_sandbox(rec)
            await asyncio.to_thread(StateStore.remove_tree, rec.dir)
            if isinstance(e, Exception) and not isinstance(e, base.RuntimeError_):
                raise base.RuntimeError_(f"creating the pod sandbox: {e}",
                                         reason="CreatePodSandboxError") from e
            raise
        self._sandboxes[sid] = rec
        return rec.status()

    async def stop_sandbox(self, sandbox_id: str) -> None:
        """Kill every container of the sandbox, tear its network down. Idempotent."""
        await self._load()
        rec = self._sandboxes.get(sandbox_id)
        if rec is None:
            return
        for c in [c for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            await self.stop_container(c.id, 0)
        await self._stop_sandbox(rec)
        if rec.state != "notready":
            rec.state = "notready"
            await asyncio.to_thread(self.store.save_sandbox, rec)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Stop the sandbox, remove its containers and everything on disk. Idempotent."""
        await self._load()
        rec = self._sandboxes.get(sandbox_id)
        if rec is None:
            return
        await self.stop_sandbox(sandbox_id)
        for c in [c for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            await self.remove_container(c.id)
        await self._remove_sandbox(rec)
        await asyncio.to_thread(StateStore.remove_tree, rec.dir)
        self._sandboxes.pop(sandbox_id, None)

    async def sandbox_status(self, sandbox_id: str) -> base.SandboxStatus:
        return (await self._sandbox(sandbox_id)).status()

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[base.SandboxStatus]:
        await self._load()
        recs = [r for r in self._sandboxes.values() if base.labels_match(r.config.labels, labels)]
        return [r.status() for r in sorted(recs, key=lambda r: r.created_at)]

    # -- containers ----------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, config: base.ContainerConfig) -> str:
        sb = await self._sandbox(sandbox_id)
        if sb.state != "ready":
            raise base.RuntimeError_(f"sandbox {sandbox_id} is not ready", reason="CreateContainerError")
        cid = new_id()
        cdir = str(self.store.container_dir(cid))
        rec = ContainerRecord(id=cid, sandbox_id=sandbox_id, config=config, created_at=time.time(),
                              dir=cdir, log_path=log_path_for(self.log_root, sb.config, config),
                              termination_log=os.path.join(cdir, TERMINATION_FILE))

        def make_dirs() -> None:
            os.makedirs(cdir)
            os.makedirs(os.path.dirname(rec.log_path), exist_ok=True)
            with open(rec.termination_log, "w"):
                pass
            os.chmod(rec.termination_log, 0o666)   # any container user may write its message

        try:
            await asyncio.to_thread(make_dirs)
            await self._prepare_container(rec, sb)
            await asyncio.to_thread(self.store.save_container, rec)
        except BaseException as e:
            with contextlib.suppress(Exception):
                await self._cleanup_container(rec)
            await asyncio.to_thread(StateStore.remove_tree, cdir)
            if isinstance(e, Exception) and not isinstance(e, base.RuntimeError_):
                raise base.RuntimeError_(f"creating container {config.name}: {e}",
                                         reason="CreateContainerError") from e
            raise
        self._containers[cid] = rec
        return cid

    async def start_container(self, container_id: str) -> None:
        rec = await self._container(container_id)
        st = await self.container_status(container_id)
        if st.state != base.ContainerState.CREATED:
            raise base.RuntimeError_(f"container {container_id} is {st.state.value}, not created",
                                     reason="RunContainerError")
        sb = await self._sandbox(rec.sandbox_id)
        spec = self._shim_spec(rec, sb)
        spec.update(id=rec.id, log_path=rec.log_path, log_max_bytes=self.log_max_bytes,
                    log_max_files=self.log_max_files, stdin=rec.config.stdin,
                    stdin_once=rec.config.stdin_once, tty=rec.config.tty)
        await asyncio.to_thread(write_shim_spec, rec.dir, spec)
        if self._shim_server is None:
            compiled = await asyncio.to_thread(compile_shim, str(self.root / "bin"))
            self._shim_server = ShimServer(str(self.root / "shim-server.sock"), compiled)
        await self._shim_server.launch(rec.dir)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        """SIGTERM, wait up to ``grace_seconds``, then SIGKILL. No-op unless running."""
        rec = await self._container(container_id)
        st = await self.container_status(container_id)
        if st.state != base.ContainerState.RUNNING:
            return
        if grace_seconds > 0:
            await self._signal(rec, signal.SIGTERM)
            if await self._wait_exit(rec, grace_seconds):
                return
        await self._signal(rec, signal.SIGKILL)
        if not await self._wait_exit(rec, KILL_WAIT):
            raise base.RuntimeError_(f"container {container_id} did not exit after SIGKILL",
                                     reason="KillContainerError")

    async def _wait_exit(self, rec: ContainerRecord, timeout: float) -> bool:
        """Wait until the container is no longer running; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            async with asyncio.timeout(timeout):
                await wait_for_exit_frame(os.path.join(rec.dir, SOCKET_FILE))
        while True:
            obs = await asyncio.to_thread(observe_container, rec)
            if compute_container_status(rec, obs).state != base.ContainerState.RUNNING:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)

    async def remove_container(self, container_id: str) -> None:
        """Kill it if running, release its resources, delete its directory. Idempotent.

        The log files stay: the kubelet removes them with the pod (``ContainerStatus.log_path``).
        """
        await self._load()
        rec = self._containers.get(container_id)
        if rec is None:
            return
        st = await self.container_status(container_id)
        if st.state == base.ContainerState.RUNNING:
            await self.stop_container(container_id, 0)
        await self._cleanup_container(rec)
        await asyncio.to_thread(StateStore.remove_tree, rec.dir)
        self._containers.pop(container_id, None)

    def _status_of(self, rec: ContainerRecord, obs: Any) -> base.ContainerStatus:
        st = compute_container_status(rec, obs)
        if st.state == base.ContainerState.EXITED and obs.exited is not None:
            rec.final = _copy_status(st)
        return st

    async def container_status(self, container_id: str) -> base.ContainerStatus:
        rec = await self._container(container_id)
        if rec.final is not None:
            return _copy_status(rec.final)
        obs = await asyncio.to_thread(observe_container, rec)
        return self._status_of(rec, obs)

    async def list_containers(self, sandbox_id: str | None = None) -> list[base.ContainerStatus]:
        await self._load()
        recs = sorted((r for r in self._containers.values()
                       if sandbox_id is None or r.sandbox_id == sandbox_id), key=lambda r: r.created_at)
        todo = [r for r in recs if r.final is None]
        observed = await asyncio.to_thread(lambda: [observe_container(r) for r in todo]) if todo else []
        fresh = {r.id: self._status_of(r, obs) for r, obs in zip(todo, observed)}
        return [fresh[r.id] if r.id in fresh else _copy_status(r.final) for r in recs
                if r.id in fresh or r.final is not None]

    async def _running(self, container_id: str) -> ContainerRecord:
        rec = await self._container(container_id)
        st = await self.container_status(container_id)
        if st.state != base.ContainerState.RUNNING:
            raise base.RuntimeError_(f"container {container_id} is not running ({st.state.value})",
                                     reason="ContainerNotRunning")
        return rec

    async def _exit_code(self, rec: ContainerRecord) -> int:
        """The recorded exit code, waiting briefly for the shim to write it."""
        for _ in range(100):
            doc = await asyncio.to_thread(read_json, os.path.join(rec.dir, EXIT_FILE))
            if doc:
                return int(doc.get("exit_code", 255))
            await asyncio.sleep(0.05)
        return 255

    # -- streams -------------------------------------------------------------------------------
    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> base.ExecProcess:
        rec = await self._running(container_id)
        try:
            reader, writer = await open_shim(os.path.join(rec.dir, SOCKET_FILE), stdin=stdin, output=True)
        except OSError as e:
            raise base.RuntimeError_(f"cannot attach to {container_id}: {e}",
                                     reason="ContainerNotRunning") from e
        return ShimAttachProcess(reader, writer, stdin=stdin and rec.config.stdin,
                                 exit_code=lambda: self._exit_code(rec))

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> base.ExecResult:
        rec = await self._running(container_id)
        pid_file = os.path.join(rec.dir, f"exec-{secrets.token_hex(6)}.pid")
        cmd, kw = await self._exec_command(rec, argv, tty=False, pid_file=pid_file)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, **kw)
        out, err = bytearray(), bytearray()

        async def pump(stream: asyncio.StreamReader | None, buf: bytearray) -> None:
            while stream is not None:
                chunk = await stream.read(65536)
                if not chunk:
                    return
                if len(buf) < EXEC_OUTPUT_LIMIT:
                    buf += chunk[:EXEC_OUTPUT_LIMIT - len(buf)]

        timed_out = False
        try:
            async with asyncio.timeout(timeout if timeout and timeout > 0 else None):
                await asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err), proc.wait())
        except TimeoutError:
            timed_out = True
            await self._kill_exec(proc, pid_file)
        finally:
            if proc.returncode is None:
                await self._kill_exec(proc, pid_file)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.unlink, pid_file)
        return base.ExecResult(exit_code=exit_code_of(proc.returncode if proc.returncode is not None else -9),
                               stdout=bytes(out), stderr=bytes(err), timed_out=timed_out)

    async def _kill_exec(self, proc: asyncio.subprocess.Process, pid_file: str) -> None:
        await asyncio.to_thread(kill_pid_file, pid_file)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == proc.pid:    # it leads its own group (process runtime)
                os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_WAIT):
                await proc.wait()

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> base.ExecProcess:
        rec = await self._running(container_id)
        pid_file = os.path.join(rec.dir, f"exec-{secrets.token_hex(6)}.pid")
        cmd, kw = await self._exec_command(rec, argv, tty=tty, pid_file=pid_file)

        def cleanup() -> None:
            with contextlib.suppress(OSError):
                os.unlink(pid_file)

        if not tty:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **kw)
            return PipeExecProcess(proc, on_kill=lambda: self._kill_exec(proc, pid_file),
                                   on_exit=cleanup)
        master, slave = os.openpty()
        try:
            set_winsize(master, 80, 24)
            self._prepare_exec_pty(slave)
            proc = await asyncio.create_subprocess_exec(*cmd, stdin=slave, stdout=slave, stderr=slave, **kw)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return PtyExecProcess(proc, master, on_resize=lambda: self._exec_resized(proc),
                              on_kill=lambda: self._kill_exec(proc, pid_file), on_exit=cleanup)

    def _prepare_exec_pty(self, slave: int) -> None:
        """Adjust our pty before an exec with a tty starts (runc wants it raw)."""

    def _exec_resized(self, proc: asyncio.subprocess.Process) -> None:
        """Called after a window-size change of an exec's pty."""

    async def close(self) -> None:
        """End the shim fork server; containers and their shims keep running without us."""
        if self._shim_server is not None:
            await self._shim_server.close()

    # -- hooks ---------------------------------------------------------------------------------
    async def _adopt(self, sandboxes: list[SandboxRecord]) -> None:
        """Check sandboxes found on disk at start (e.g. mark those whose namespaces are gone)."""
    async def _setup_sandbox(self, rec: SandboxRecord) -> None:
        raise NotImplementedError

    async def _stop_sandbox(self, rec: SandboxRecord) -> None:
        raise NotImplementedError

    async def _remove_sandbox(self, rec: SandboxRecord) -> None:
        raise NotImplementedError

    async def _prepare_container(self, rec: ContainerRecord, sb: SandboxRecord) -> None:
        raise NotImplementedError

    def _shim_spec(self, rec: ContainerRecord, sb: SandboxRecord) -> dict[str, Any]:
        raise NotImplementedError

    async def _signal(self, rec: ContainerRecord, sig: int) -> None:
        raise NotImplementedError

    async def _cleanup_container(self, rec: ContainerRecord) -> None:
        raise NotImplementedError

    async def _exec_command(self, rec: ContainerRecord, argv: list[str], *, tty: bool,
                            pid_file: str) -> tuple[list[str], dict[str, Any]]:
        raise NotImplementedError


def _copy_status(st: base.ContainerStatus) -> base.ContainerStatus:
    return dataclasses.replace(st, labels=dict(st.labels))


def write_etc_files(rec: SandboxRecord) -> None:
    """Write the pod's hosts, hostname and resolv.conf into the sandbox dir (blocking)."""
    cfg = rec.config
    hosts = cfg.hosts or default_hosts(cfg.hostname, rec.ip)
    resolv = cfg.resolv_conf
    if not resolv:
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
    files = {"/etc/hosts": ("hosts", hosts), "/etc/hostname": ("hostname", cfg.hostname + "\n"),
             "/etc/resolv.conf": ("resolv.conf", resolv)}
    for dest, (name, text) in files.items():
        p = os.path.join(rec.dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o644)
        rec.etc[dest] = p


def default_hosts(hostname: str, ip: str | None) -> str:
    """The hosts file the kubelet writes for a pod when it did not supply one (pure)."""
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if ip and hostname:
        lines.append(f"{ip}\t{hostname}")
    return "\n".join(lines) + "\n"
