"""exec and attach sessions: an ExecProcess wired to a WebSocket or SPDY client.

    opts = parse_exec_options(request.query, attach=False)
    await serve_websocket(request, opts, start)          # v5/v4/base64/v1 channel protocols
    await serve_spdy(transport, opts, start, protocol)   # SPDY streams: error/stdin/stdout/stderr/resize

``start`` is a coroutine factory returning the runtime's ExecProcess; it runs after the upgrade,
so a failure to start reaches the client on the error channel, as upstream does.

Both drivers share one shape:
* output pumps copy the process' stdout (and stderr, unless tty) to the client, in order;
* an input loop feeds stdin, stdin EOF (v5 channel 255 / the SPDY stdin stream's FIN) and
  terminal resizes to the process;
* when the process exits, the pumps drain (bounded), the outcome goes on the error channel
  (``NonZeroExitCode`` + ``ExitCode`` cause for exec, Success for attach) and the connection
  closes;
* when the client goes away first, the ExecProcess is ``kill()``-ed: that ends an exec'd process
  (nothing else would ever reap it) and, for attach, only detaches (the runtimes' contract, see
  ``kubelet/runtime/streams.py``): the container keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from . import wschannel as wc
from .spdysession import SpdySession, SpdyStream
from .transport import ByteTransport

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 5.0          # after exit, how long output may still flow (background children)
STREAM_WAIT_TIMEOUT = 30.0   # SPDY: how long the client may take to open its streams
SPDY_EXEC_PROTOCOLS = ("v4.channel.k8s.io",)   # what we accept in X-Stream-Protocol-Version

Emit = Callable[[int, bytes], Awaitable[None]]
StartProcess = Callable[[], Awaitable[Any]]     # -> base.ExecProcess


@dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(q: Mapping[str, str], name: str) -> bool:
    return (q.get(name) or "").strip().lower() in ("1", "true", "yes", "t", "y")


def parse_exec_options(query: Any, *, attach: bool = False) -> ExecOptions:
    """Options of an exec/attach request (``command`` repeated; flags ``true``/``1``).

    Raises ValueError with the upstream message when nothing useful was asked for.
    """
    command = tuple(query.getall("command", [])) if hasattr(query, "getall") else tuple(query.get("command", []))
    stdin, stdout, stderr, tty = (_flag(query, k) for k in ("stdin", "stdout", "stderr", "tty"))
    if not attach and not command:
        raise ValueError("you must specify at least one command for the container")
    if not (stdin or stdout or stderr):
        raise ValueError("you must specify at least 1 of stdin, stdout, stderr")
    if tty and stderr:
        stderr = False   # a terminal has one output stream (upstream drops stderr, too)
    return ExecOptions(command, stdin, stdout, stderr, tty)


# ------------------------------------------------------------------------------ shared core


async def _pump(it: AsyncIterator[bytes], channel: int | None, emit: Emit) -> None:
    try:
        async for chunk in it:
            if channel is not None and chunk:
                await emit(channel, chunk)
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


async def run_output(proc: Any, opts: ExecOptions, emit: Emit) -> int:
    """Copy the process' output to ``emit`` until it exits and its output is drained; the code."""
    tasks = [asyncio.ensure_future(_pump(proc.stdout(), wc.STDOUT if opts.stdout else None, emit))]
    if not opts.tty:
        tasks.append(asyncio.ensure_future(_pump(proc.stderr(), wc.STDERR if opts.stderr else None, emit)))
    try:
        code = await proc.wait()
        done, _ = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
        for t in done:
            if t.exception() is not None:   # the client stopped taking output: nothing to add
                log.debug("exec output ended early: %r", t.exception())
        return int(code)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def _feed_stdin(proc: Any, data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        await proc.write_stdin(data)


async def _close_stdin(proc: Any) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        await proc.close_stdin()


async def _race(output: Awaitable[int], inputs: Awaitable[None], proc: Any) -> int | None:
    """Run output and input handling; the exit code, or None when the client left first."""
    out_task = asyncio.ensure_future(output)
    in_task = asyncio.ensure_future(inputs)
    try:
        await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
        if out_task.done():
            return out_task.result()
        # the client went away while the process runs: end the exec / detach the attach
        with contextlib.suppress(Exception):
            await proc.kill()
        return None
    finally:
        for t in (out_task, in_task):
            t.cancel()
        for t in (out_task, in_task):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


def outcome(code: int, opts: ExecOptions, *, attach: bool) -> dict[str, object]:
    return wc.success_status() if attach else wc.exit_code_status(code, list(opts.command))


# ------------------------------------------------------------------------------ WebSocket


async def serve_websocket(request: web.Request, opts: ExecOptions, start: StartProcess, *,
                          attach: bool = False,
                          on_negotiated: Callable[[str], None] | None = None) -> tuple[web.WebSocketResponse, str]:
    """Run an exec/attach session over a WebSocket; returns (response, negotiated protocol).

    ``on_negotiated(protocol)`` is called once the upgrade is done (for statistics).
    """
    ws = web.WebSocketResponse(protocols=wc.EXEC_PROTOCOLS, max_msg_size=16 << 20)
    await ws.prepare(request)
    proto = wc.protocol_for(ws.ws_protocol)
    if on_negotiated is not None:
        on_negotiated(proto.name)
    send = wc.sender(ws, proto)

    async def finish(status: dict[str, object]) -> None:
        payload = wc.error_payload(status, proto)
        with contextlib.suppress(ConnectionError, RuntimeError):
            if payload is not None:
                await send(wc.ERROR, payload)
        with contextlib.suppress(Exception):
            await ws.close()

    try:
        proc = await start()
    except Exception as e:  # noqa: BLE001 - reported to the client, as upstream does
        await finish(wc.failure_status(str(e)))
        return ws, proto.name

    async def inputs() -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            try:
                ch, payload = wc.decode(msg.data, b64=proto.base64 and msg.type == WSMsgType.TEXT)
                if ch == wc.STDIN and opts.stdin:
                    await _feed_stdin(proc, payload)
                elif ch == wc.RESIZE:
                    w, h = wc.parse_resize(payload)
                    with contextlib.suppress(Exception):
                        await proc.resize(w, h)
                elif ch == wc.CLOSE and proto.close_channel and payload[:1] == bytes((wc.STDIN,)):
                    await _close_stdin(proc)
            except wc.ProtocolError as e:
                log.debug("ignoring a malformed stream message: %s", e)

    code = await _race(run_output(proc, opts, send), inputs(), proc)
    if code is not None:
        await finish(outcome(code, opts, attach=attach))
    else:
        with contextlib.suppress(Exception):
            await ws.close()
    return ws, proto.name


# ------------------------------------------------------------------------------ SPDY


def choose_spdy_protocol(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offered (``X-Stream-Protocol-Version``) that we support."""
    for p in offered:
        for part in p.split(","):
            part = part.strip()
            if part in supported:
                return part
    return None


def expected_streams(opts: ExecOptions) -> set[str]:
    want = {"error"}
    if opts.stdin:
        want.add("stdin")
    if opts.stdout:
        want.add("stdout")
    if opts.stderr and not opts.tty:
        want.add("stderr")
    if opts.tty:
        want.add("resize")
    return want


async def _collect_streams(session: SpdySession, want: set[str]) -> dict[str, SpdyStream] | None:
    got: dict[str, SpdyStream] = {}
    try:
        async with asyncio.timeout(STREAM_WAIT_TIMEOUT):
            while not want <= got.keys():
                st = await session.accept()
                if st is None:
                    return None
                await st.reply()
                kind = st.header("streamtype")
                if kind in got or kind not in want:
                    await st.reset()
                    continue
                got[kind] = st
    except TimeoutError:
        return None
    return got


async def serve_spdy(transport: ByteTransport, opts: ExecOptions, start: StartProcess, *,
                     attach: bool = False) -> None:
    """Run an exec/attach session over SPDY (the upgrade has been answered already)."""
    session = SpdySession(transport)
    runner = asyncio.ensure_future(session.run())
    try:
        streams = await _collect_streams(session, expected_streams(opts))
        if streams is None:
            return
        error = streams["error"]

        async def finish(status: dict[str, object]) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                await error.write(json.dumps(status, separators=(",", ":")).encode())
            for st in streams.values():
                with contextlib.suppress(ConnectionError, OSError):
                    await st.close()

        try:
            proc = await start()
        except Exception as e:  # noqa: BLE001 - reported to the client
            await finish(wc.failure_status(str(e)))
            return

        async def emit(channel: int, data: bytes) -> None:
            st = streams.get("stdout" if channel == wc.STDOUT else "stderr")
            if st is not None:
                await st.write(data)

        async def stdin_loop() -> None:
            st = streams.get("stdin")
            if st is None:
                return
            while True:
                data = await st.read()
                if not data:
                    break
                await _feed_stdin(proc, data)
            if st.remote_fin and not session.ended:
                await _close_stdin(proc)

        async def resize_loop() -> None:
            st = streams.get("resize")
            if st is None:
                return
            dec = json.JSONDecoder()
            buf = ""
            while True:
                data = await st.read()
                if not data:
                    return
                buf += data.decode("utf-8", "replace")
                while buf.strip():
                    try:
                        doc, end = dec.raw_decode(buf.lstrip())
                    except ValueError:
                        break
                    buf = buf.lstrip()[end:]
                    with contextlib.suppress(Exception):
                        await proc.resize(int(doc.get("Width", 0)), int(doc.get("Height", 0)))

        async def inputs() -> None:
            aux = [asyncio.ensure_future(stdin_loop()), asyncio.ensure_future(resize_loop())]
            try:
                # the session ends when the client goes away (asyncio.wait: cancelling us must
                # not cancel the reader, the outcome still has to be written)
                await asyncio.wait({runner})
            finally:
                for t in aux:
                    t.cancel()
                for t in aux:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t

        code = await _race(run_output(proc, opts, emit), inputs(), proc)
        if code is not None:
            await finish(outcome(code, opts, attach=attach))
    finally:
        await session.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner
