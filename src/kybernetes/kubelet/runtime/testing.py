"""``FakeRuntime``: an in-memory ``base.Runtime`` for kubelet unit tests (no processes, no I/O).

Deterministic: ids are ``sandbox-1``, ``container-1``, ... in call order, pids count up from 1000,
times come from the injected ``clock``. Containers "run" from ``start_container`` until they are
stopped or a test ends them. Every call is recorded in ``calls`` as ``(method, args)``.

Hooks for tests:

* ``set_exit(container_id, code, reason="", message="")``: the container exits now (reason
  defaults to Completed / Error, like the real runtimes; pass "OOMKilled" to simulate one).
* ``script_exec(result, *, container_id=None, argv=None)``: what ``exec_sync`` / ``exec`` return
  for matching calls (``argv`` matches a prefix; the newest matching script wins); ``result`` is
  an ``ExecResult`` or a function ``(container_id, argv) -> ExecResult`` (may be async).
  Without a script the result is ``default_exec_result`` (exit 0, no output).
* ``fail_next(method, exc)``: the next call of ``method`` raises ``exc``.
* ``stop_exit_code``: the exit code a stopped container gets (default: 137 when the grace period
  is 0, else 143 - killed by SIGTERM); ``stop_exit_codes[container_id]`` overrides per container.
* ``set_stats(container_id, cpu_ns, memory_bytes)``; ``attach_output[container_id] = b"..."``;
  ``stdin_received[container_id]`` collects what exec/attach sessions wrote;
  ``port_handlers[port] = async fn(reader, writer)`` serves ``port_forward``.
* ``write_log(container_id, text, stream="stdout")`` appends CRI lines to the container's log
  file (only when the runtime was given a ``log_root``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from . import base
from .state import exit_reason, log_path_for


@dataclasses.dataclass
class _Sandbox:
    config: base.SandboxConfig
    status: base.SandboxStatus


@dataclasses.dataclass
class _Container:
    config: base.ContainerConfig
    status: base.ContainerStatus
    exited: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class FakeExecProcess:
    """An exec or attach session of the fake: scripted output, recorded stdin."""

    def __init__(self, *, stdout: bytes, stderr: bytes, exit_code: int | None,
                 sink: bytearray, done: asyncio.Event | None = None,
                 code_of: Callable[[], int] | None = None) -> None:
        self._stdout, self._stderr = stdout, stderr
        self._exit_code = exit_code
        self._sink = sink
        self._done = done
        self._code_of = code_of
        self.stdin_closed = False
        self.resizes: list[tuple[int, int]] = []
        self.killed = False

    async def write_stdin(self, data: bytes) -> None:
        self._sink += data

    async def close_stdin(self) -> None:
        self.stdin_closed = True

    def stdout(self) -> AsyncIterator[bytes]:
        return _chunks(self._stdout)

    def stderr(self) -> AsyncIterator[bytes]:
        return _chunks(self._stderr)

    async def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))

    async def wait(self) -> int:
        if self._exit_code is not None:
            return self._exit_code
        if self._done is not None and not self.killed:
            await self._done.wait()
        return self._code_of() if self._code_of else -1

    async def kill(self) -> None:
        self.killed = True
        if self._done is not None:
            self._done.set()


class FakeRuntime:
    """In-memory ``base.Runtime`` (see the module docstring)."""

    name = "fake"

    def __init__(self, *, log_root: str | Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.log_root = str(log_root) if log_root is not None else None
        self.clock = clock
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.sandboxes: dict[str, _Sandbox] = {}
        self.containers: dict[str, _Container] = {}
        self.default_exec_result = base.ExecResult(exit_code=0)
        self.stop_exit_code: int | None = None
        self.stop_exit_codes: dict[str, int] = {}
        self.stats: dict[str, tuple[int, int]] = {}
        self.attach_output: dict[str, bytes] = {}
        self.stdin_received: dict[str, bytearray] = {}
        self.port_handlers: dict[int, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]] = {}
        self._scripts: list[tuple[str | None, tuple[str, ...] | None, Any]] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._next = {"sandbox": 0, "container": 0, "pid": 999}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- test hooks ----------------------------------------------------------------------------
    def fail_next(self, method: str, exc: BaseException) -> None:
        self._failures.setdefault(method, []).append(exc)

    def script_exec(self, result: Any, *, container_id: str | None = None,
                    argv: list[str] | None = None) -> None:
        self._scripts.append((container_id, tuple(argv) if argv is not None else None, result))

    def set_exit(self, container_id: str, code: int, reason: str = "", message: str = "") -> None:
        c = self.containers[container_id]
        st = c.status
        if st.state == base.ContainerState.CREATED:
            st.started_at = self.clock()
        st.state = base.ContainerState.EXITED
        st.exit_code = code
        st.finished_at = self.clock()
        st.reason = reason or exit_reason(code, False)
        st.message = message
        st.pid = None
        c.exited.set()

    def set_stats(self, container_id: str, cpu_ns: int, memory_bytes: int) -> None:
        self.stats[container_id] = (cpu_ns, memory_bytes)

    def write_log(self, container_id: str, text: str, stream: str = "stdout") -> None:
        path = self.containers[container_id].status.log_path
        if not self.log_root:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        from .shim import format_timestamp
        ts = format_timestamp(int(self.clock() * 1e9))
        with open(path, "a") as f:
            for line in text.splitlines():
                f.write(f"{ts} {stream} F {line}\n")

    def call_names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # -- internals -----------------------------------------------------------------------------
    def _record(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)

    def _id(self, kind: str) -> str:
        self._next[kind] += 1
        return f"{kind}-{self._next[kind]}"

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise base.NotFoundError(f"sandbox {sandbox_id} not found") from None

    def _container(self, container_id: str) -> _Container:
        try:
            return self.containers[container_id]
        except KeyError:
            raise base.NotFoundError(f"container {container_id} not found") from None

    def _running(self, container_id: str) -> _Container:
        c = self._container(container_id)
        if c.status.state != base.ContainerState.RUNNING:
            raise base.RuntimeError_(f"container {container_id} is not running", reason="ContainerNotRunning")
        return c

    async def _exec_result(self, container_id: str, argv: list[str]) -> base.ExecResult:
        for cid, prefix, result in reversed(self._scripts):
            if cid not in (None, container_id):
                continue
            if prefix is not None and tuple(argv[:len(prefix)]) != prefix:
                continue
            if callable(result):
                r = result(container_id, argv)
                return await r if inspect.isawaitable(r) else r
            return result
        return self.default_exec_result

    # -- sandboxes -----------------------------------------------------------------------------
    async def run_sandbox(self, config: base.SandboxConfig) -> base.SandboxStatus:
        self._record("run_sandbox", config)
        sid = self._id("sandbox")
        n = self._next["sandbox"]
        ip = None if config.host_network else f"10.88.{n // 250}.{n % 250 + 2}"
        st = base.SandboxStatus(id=sid, state="ready", created_at=self.clock(), labels=dict(config.labels),
                                ip=ip, netns_path=None if config.host_network else f"/fake/netns/{sid}")
        self.sandboxes[sid] = _Sandbox(config, st)
        return dataclasses.replace(st)

    async def stop_sandbox(self, sandbox_id: str) -> None:
        self._record("stop_sandbox", sandbox_id)
        sb = self.sandboxes.get(sandbox_id)
        if sb is None:
            return
        for cid, c in list(self.containers.items()):
            if c.status.sandbox_id == sandbox_id and c.status.state == base.ContainerState.RUNNING:
                self._stop(cid, 0)
        sb.status.state = "notready"

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._record("remove_sandbox", sandbox_id)
        if sandbox_id not in self.sandboxes:
            return
        await self.stop_sandbox(sandbox_id)
        for cid in [cid for cid, c in self.containers.items() if c.status.sandbox_id == sandbox_id]:
            del self.containers[cid]
        del self.sandboxes[sandbox_id]

    async def sandbox_status(self, sandbox_id: str) -> base.SandboxStatus:
        self._record("sandbox_status", sandbox_id)
        return dataclasses.replace(self._sandbox(sandbox_id).status)

    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[base.SandboxStatus]:
        self._record("list_sandboxes")
        return [dataclasses.replace(s.status) for s in self.sandboxes.values()
                if base.labels_match(s.status.labels, labels)]

    # -- containers ----------------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, config: base.ContainerConfig) -> str:
        self._record("create_container", sandbox_id, config)
        sb = self._sandbox(sandbox_id)
        if sb.status.state != "ready":
            raise base.RuntimeError_(f"sandbox {sandbox_id} is not ready", reason="CreateContainerError")
        cid = self._id("container")
        st = base.ContainerStatus(
            id=cid, sandbox_id=sandbox_id, name=config.name, state=base.ContainerState.CREATED,
            labels=dict(config.labels), image=config.image, image_id=config.image_id,
            created_at=self.clock(), log_path=log_path_for(self.log_root or "/fake/logs", sb.config, config),
            termination_message_path=f"/fake/containers/{cid}/termination-log")
        self.containers[cid] = _Container(config, st)
        return cid

    async def start_container(self, container_id: str) -> None:
        self._record("start_container", container_id)
        c = self._container(container_id)
        if c.status.state != base.ContainerState.CREATED:
            raise base.RuntimeError_(f"container {container_id} is {c.status.state.value}",
                                     reason="RunContainerError")
        self._next["pid"] += 1
        c.status.state = base.ContainerState.RUNNING
        c.status.started_at = self.clock()
        c.status.pid = self._next["pid"]

    def _stop(self, container_id: str, grace: float) -> None:
        default = self.stop_exit_code if self.stop_exit_code is not None else (137 if grace <= 0 else 143)
        self.set_exit(container_id, self.stop_exit_codes.get(container_id, default))

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        self._record("stop_container", container_id, grace_seconds)
        c = self._container(container_id)
        if c.status.state == base.ContainerState.RUNNING:
            self._stop(container_id, grace_seconds)

    async def remove_container(self, container_id: str) -> None:
        self._record("remove_container", container_id)
        c = self.containers.pop(container_id, None)
        if c is not None:
            c.exited.set()

    async def container_status(self, container_id: str) -> base.ContainerStatus:
        self._record("container_status", container_id)
        st = self._container(container_id).status
        return dataclasses.replace(st, labels=dict(st.labels))

    async def list_containers(self, sandbox_id: str | None = None) -> list[base.ContainerStatus]:
        self._record("list_containers", sandbox_id)
        return [dataclasses.replace(c.status, labels=dict(c.status.labels)) for c in self.containers.values()
                if sandbox_id is None or c.status.sandbox_id == sandbox_id]

    # -- streams -------------------------------------------------------------------------------
    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> base.ExecResult:
        self._record("exec_sync", container_id, list(argv), timeout)
        self._running(container_id)
        return dataclasses.replace(await self._exec_result(container_id, list(argv)))

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> base.ExecProcess:
        self._record("exec", container_id, list(argv), stdin, tty)
        self._running(container_id)
        r = await self._exec_result(container_id, list(argv))
        sink = self.stdin_received.setdefault(container_id, bytearray())
        return FakeExecProcess(stdout=r.stdout, stderr=b"" if tty else r.stderr, exit_code=r.exit_code,
                               sink=sink)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> base.ExecProcess:
        self._record("attach", container_id, stdin, tty)
        c = self._running(container_id)
        sink = self.stdin_received.setdefault(container_id, bytearray())
        return FakeExecProcess(stdout=self.attach_output.get(container_id, b""), stderr=b"", exit_code=None,
                               sink=sink, done=c.exited,
                               code_of=lambda: c.status.exit_code if c.status.exit_code is not None else -1)

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[object, object]:
        self._record("port_forward", sandbox_id, port)
        self._sandbox(sandbox_id)
        handler = self.port_handlers.get(port)
        if handler is None:
            raise base.RuntimeError_(f"connection refused: localhost:{port}", reason="PortForwardError")
        ours, theirs = socket.socketpair()
        r, w = await asyncio.open_connection(sock=theirs)

        async def serve() -> None:
            hr, hw = await asyncio.open_connection(sock=ours)
            try:
                await handler(hr, hw)
            finally:
                hw.close()

        task = asyncio.ensure_future(serve())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return r, w

    # -- stats ---------------------------------------------------------------------------------
    async def container_stats(self, container_id: str) -> base.ContainerStats:
        self._record("container_stats", container_id)
        self._container(container_id)
        cpu, mem = self.stats.get(container_id, (0, 0))
        return base.ContainerStats(container_id=container_id, timestamp=self.clock(), cpu_usage_ns=cpu,
                                   memory_working_set_bytes=mem, memory_usage_bytes=mem)

    async def close(self) -> None:
        self._record("close")
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
