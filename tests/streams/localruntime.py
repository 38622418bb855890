"""Test seam for the streaming path: a runtime whose exec runs local subprocesses.

Only the stream methods of the Runtime protocol are implemented (exec, attach, port_forward,
container_status); everything else belongs to the real runtimes. Every process it starts is
killed by ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kybernetes.kubelet.runtime.base import ContainerState, ContainerStatus
from kybernetes.kubelet.server import Located, StreamError


class LocalExec:
    """An ExecProcess over an asyncio subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.resizes: list[tuple[int, int]] = []

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def _read(self, stream: asyncio.StreamReader | None) -> AsyncIterator[bytes]:
        if stream is None:
            return
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            yield chunk

    def stdout(self) -> AsyncIterator[bytes]:
        return self._read(self.proc.stdout)

    def stderr(self) -> AsyncIterator[bytes]:
        return self._read(self.proc.stderr)

    async def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))

    async def wait(self) -> int:
        return await self.proc.wait()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


@dataclass
class LocalContainer:
    id: str
    log_path: str
    state: ContainerState = ContainerState.RUNNING
    attach_argv: list[str] = field(default_factory=lambda: ["sh", "-c", "echo attached; read x; echo got:$x"])


class LocalRuntime:
    name = "local-test"

    def __init__(self) -> None:
        self.containers: dict[str, LocalContainer] = {}
        self.execs: list[LocalExec] = []
        self.forwarded: list[int] = []

    def add(self, c: LocalContainer) -> LocalContainer:
        self.containers[c.id] = c
        return c

    async def _spawn(self, argv: list[str], *, stdin: bool, tty: bool) -> LocalExec:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if tty else asyncio.subprocess.PIPE,
            start_new_session=True)
        ex = LocalExec(proc)
        self.execs.append(ex)
        return ex

    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> LocalExec:
        if container_id not in self.containers:
            raise RuntimeError(f"container {container_id} not found")
        return await self._spawn(argv, stdin=stdin, tty=tty)

    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> LocalExec:
        return await self._spawn(self.containers[container_id].attach_argv, stdin=stdin, tty=tty)

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[object, object]:
        self.forwarded.append(port)
        return await asyncio.open_connection("127.0.0.1", port)

    async def container_status(self, container_id: str) -> ContainerStatus:
        c = self.containers[container_id]
        return ContainerStatus(id=c.id, sandbox_id="sb-" + c.id, name=c.id, state=c.state, labels={},
                               log_path=c.log_path, created_at=time.time())

    async def close(self) -> None:
        for ex in self.execs:
            await ex.kill()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await ex.proc.wait()


class LocalLocator:
    """(namespace, pod, container) -> Located, from a table the test fills."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str, str], Located] = {}
        self.sandboxes: dict[tuple[str, str], str] = {}
        self.previous: dict[tuple[str, str, str], Located] = {}

    def add(self, ns: str, pod: str, container: str, located: Located) -> None:
        self.table[(ns, pod, container)] = located
        self.sandboxes[(ns, pod)] = located.sandbox_id

    def locate(self, ns: str, pod: str, container: str | None, *, previous: bool = False) -> Located:
        if container is None:
            sb = self.sandboxes.get((ns, pod))
            if sb is None:
                raise StreamError(404, "NotFound", f'pod "{ns}/{pod}" not found')
            return Located(container_id="", sandbox_id=sb, log_path="", pod_uid="")
        table = self.previous if previous else self.table
        loc = table.get((ns, pod, container))
        if loc is None:
            if previous:
                raise StreamError(400, "BadRequest", f'previous terminated container "{container}" in pod "{pod}" not found')
            raise StreamError(404, "NotFound", f'container "{container}" in pod "{ns}/{pod}" not found')
        return loc


def cri_line(ts: str, text: str, stream: str = "stdout", partial: bool = False) -> str:
    return f"{ts} {stream} {'P' if partial else 'F'} {text}\n"
