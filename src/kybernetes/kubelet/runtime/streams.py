"""``ExecProcess`` implementations: exec over pipes, exec over a pty, attach through a shim.

Consumers read ``stdout()`` and ``stderr()`` concurrently (each is a bounded channel; a reader
that ignores one stream eventually stalls the other), then ``wait()`` for the exit code.
``kill()`` ends an exec'd process; for an attach session it only detaches.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

from .shim import (
    F_CLOSE, F_EXIT, F_HELLO, F_RESIZE, F_STDERR, F_STDIN, F_STDOUT, HEADER, RESIZE, frame,
    hello_payload,
)

TIOCSWINSZ = 0x5414
CHANNEL_LIMIT = 256          # chunks (each at most 64 KiB) buffered per stream


class Channel:
    """A bounded async FIFO of byte chunks that can be closed (end of stream)."""

    def __init__(self, limit: int = CHANNEL_LIMIT) -> None:
        self._items: collections.deque[bytes] = collections.deque()
        self._limit = limit
        self._closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def full(self) -> bool:
        return len(self._items) >= self._limit

    async def put(self, data: bytes) -> None:
        while self.full() and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        self.put_nowait(data)

    def put_nowait(self, data: bytes) -> None:
        if not self._closed:
            self._items.append(data)
            self._readable.set()

    def close(self) -> None:
        self._closed = True
        self._readable.set()
        self._writable.set()

    async def get(self) -> bytes | None:
        while not self._items:
            if self._closed:
                return None
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        self._writable.set()
        return item

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item


def exit_code_of(returncode: int) -> int:
    """A subprocess return code as a shell would report it (killed by signal N -> 128+N)."""
    return 128 - returncode if returncode < 0 else returncode


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _read_stream(reader: asyncio.StreamReader | None) -> AsyncIterator[bytes]:
    if reader is None:
        return
    while True:
        data = await reader.read(65536)
        if not data:
            return
        yield data


class PipeExecProcess:
    """A process started with pipes (``runc exec`` without a tty, or a host process)."""

    def __init__(self, proc: asyncio.subprocess.Process, *,
                 on_kill: Callable[[], Awaitable[None]] | None = None,
                 on_exit: Callable[[], None] | None = None) -> None:
        self.proc = proc
        self._on_kill = on_kill
        self._on_exit = on_exit

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self.proc.stdin.wait_closed()

    def stdout(self) -> AsyncIterator[bytes]:
        return _read_stream(self.proc.stdout)

    def stderr(self) -> AsyncIterator[bytes]:
        return _read_stream(self.proc.stderr)

    async def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        rc = await self.proc.wait()
        if self._on_exit is not None:
            self._on_exit()
            self._on_exit = None
        return exit_code_of(rc)

    async def kill(self) -> None:
        if self._on_kill is not None:
            await self._on_kill()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.wait()


def set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class PtyExecProcess:
    """A process whose stdio is the slave side of a pty we own the master of.

    ``on_resize`` runs after the window size is set on the master (runc needs a SIGWINCH to copy
    the size into the container's own pty; a host process gets the signal from the kernel).
    """

    def __init__(self, proc: asyncio.subprocess.Process, master: int, *,
                 on_resize: Callable[[], None] | None = None,
                 on_kill: Callable[[], Awaitable[None]] | None = None,
                 on_exit: Callable[[], None] | None = None) -> None:
        self.proc = proc
        self._master = master
        self._on_resize = on_resize
        self._on_kill = on_kill
        self._on_exit = on_exit
        self._out = Channel()
        self._loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        self._reading = True
        self._eof = False
        self._loop.add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:      # EIO: every slave fd is closed
            data = b""
        if not data:
            self._eof = True
            self._stop_reading()
            self._out.close()
            return
        self._out.put_nowait(data)
        if self._out.full():          # back-pressure: resumed by the reader of stdout()
            self._stop_reading()

    async def _iter_out(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._out.get()
            if item is None:
                return
            if not self._reading and not self._eof and self._master >= 0 and not self._out.full():
                self._reading = True
                self._loop.add_reader(self._master, self._readable)
            yield item

    def _stop_reading(self) -> None:
        if self._reading and self._master >= 0:
            self._loop.remove_reader(self._master)
        self._reading = False

    async def write_stdin(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._master >= 0:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                fut = self._loop.create_future()
                self._loop.add_writer(self._master, fut.set_result, None)
                try:
                    await fut
                finally:
                    self._loop.remove_writer(self._master)
            except OSError:
                return

    async def close_stdin(self) -> None:
        await self.write_stdin(b"\x04")   # a terminal has no half-close: end-of-file is ^D

    def stdout(self) -> AsyncIterator[bytes]:
        return self._iter_out()

    def stderr(self) -> AsyncIterator[bytes]:
        return _empty()

    async def resize(self, width: int, height: int) -> None:
        if self._master < 0:
            return
        with contextlib.suppress(OSError):
            set_winsize(self._master, width, height)
        if self._on_resize is not None:
            self._on_resize()

    async def wait(self) -> int:
        rc = await self.proc.wait()
        if self._on_exit is not None:
            self._on_exit()
            self._on_exit = None
        # the output ends when the last slave fd closes (EIO); do not wait forever for it
        for _ in range(100):
            if self._out._closed:
                break
            await asyncio.sleep(0.02)
        self._close_master()
        return exit_code_of(rc)

    def _close_master(self) -> None:
        if self._master >= 0:
            self._stop_reading()
            self._out.close()
            os.close(self._master)
            self._master = -1

    async def kill(self) -> None:
        if self._on_kill is not None:
            await self._on_kill()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.wait()


def kill_pid_file(path: str, sig: int = signal.SIGKILL) -> None:
    """Signal the pid written in ``path`` (runc exec's ``--pid-file``), if any (blocking)."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


# ---------------------------------------------------------------------------------------------
# the shim's attach socket

def connect_unix(path: str, timeout: float = 5.0) -> socket.socket:
    """Connect to a unix socket even when its path is longer than sun_path (via /proc/self/fd)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(timeout)
    try:
        if len(os.fsencode(path)) < 100:
            s.connect(path)
        else:
            dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
            try:
                s.connect(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
            finally:
                os.close(dfd)
    except BaseException:
        s.close()
        raise
    s.setblocking(False)
    return s


async def open_shim(sock_path: str, *, stdin: bool, output: bool
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = await asyncio.to_thread(connect_unix, sock_path)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    writer.write(frame(F_HELLO, hello_payload(stdin=stdin, output=output)))
    await writer.drain()
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    kind, n = HEADER.unpack(await reader.readexactly(HEADER.size))
    return kind, await reader.readexactly(n) if n else b""


async def wait_for_exit_frame(sock_path: str) -> dict | None:
    """Connect to a shim and return its exit record when the container exits (None if the shim
    went away without one). Raises OSError when the shim cannot be reached."""
    reader, writer = await open_shim(sock_path, stdin=False, output=False)
    try:
        while True:
            try:
                kind, payload = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            if kind == F_EXIT:
                return json.loads(payload)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class ShimAttachProcess:
    """An attach session to a running container through its shim's socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, stdin: bool,
                 exit_code: Callable[[], Awaitable[int]]) -> None:
        self._reader = reader
        self._writer = writer
        self._stdin = stdin
        self._exit_code = exit_code
        self._out = Channel()
        self._err = Channel()
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._demux())   # owned here; ended by kill()

    async def _demux(self) -> None:
        code: int | None = None
        try:
            while True:
                try:
                    kind, payload = await read_frame(self._reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if kind == F_STDOUT:
                    await self._out.put(payload)
                elif kind == F_STDERR:
                    await self._err.put(payload)
                elif kind == F_EXIT:
                    code = int(json.loads(payload).get("exit_code", 255))
                    break
        finally:
            self._out.close()
            self._err.close()
            self._writer.close()
        if code is None:
            code = await self._exit_code()
        if not self._exit.done():
            self._exit.set_result(code)

    async def _send(self, data: bytes) -> None:
        if self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError):
            self._writer.write(data)
            await self._writer.drain()

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin and data:
            await self._send(frame(F_STDIN, data))

    async def close_stdin(self) -> None:
        if self._stdin:
            await self._send(frame(F_CLOSE))

    def stdout(self) -> AsyncIterator[bytes]:
        return self._out.__aiter__()

    def stderr(self) -> AsyncIterator[bytes]:
        return self._err.__aiter__()

    async def resize(self, width: int, height: int) -> None:
        await self._send(frame(F_RESIZE, RESIZE.pack(width & 0xFFFF, height & 0xFFFF)))

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    async def kill(self) -> None:
        """Detach (the container keeps running)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._writer.close()
        self._out.close()
        self._err.close()
        if not self._exit.done():
            self._exit.set_result(-1)
