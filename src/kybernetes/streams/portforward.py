"""Port forwarding sessions: TCP connections into a pod, carried over SPDY or WebSocket channels.

    await serve_spdy(transport, connect, pod="ns/name")        # kubectl (plain or WS-tunnelled)
    await serve_websocket_channels(ws, proto, ports, connect)  # the Python client

``connect(port)`` opens a TCP connection inside the pod's network and returns asyncio
(StreamReader, StreamWriter) (the runtime's ``port_forward``).

SPDY (kubectl): per local connection the client opens an ``error`` stream and a ``data`` stream
with the same ``port`` and ``requestid`` headers. Once both are there we connect to the port and
copy both ways. The pod closing the connection ends the data stream (FIN), and then the error
stream is closed too (kubectl waits for that before it forgets the connection); the client's FIN
gives the pod one more second to answer before the connection is closed. A failure to connect is reported as text on the
error stream.

WebSocket channels (Python client): one TCP connection per requested port, opened when the
session starts; channel ``2i`` carries data, ``2i+1`` errors, each first announced by the port
number. The session (and the WebSocket) ends when every TCP connection has ended or the client
leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from . import wschannel as wc
from .spdysession import SpdySession, SpdyStream
from .transport import ByteTransport

log = logging.getLogger(__name__)

Connect = Callable[[int], Awaitable[tuple[Any, Any]]]
READ_CHUNK = 32 * 1024
CLOSE_GRACE = 1.0


def _error_text(port: int, pod: str, err: BaseException) -> str:
    return f"error forwarding port {port} to pod {pod}: {err or type(err).__name__}"


async def _close_writer(writer: Any) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        async with asyncio.timeout(2):
            await writer.wait_closed()


# ------------------------------------------------------------------------------------ SPDY


class _Pair:
    def __init__(self) -> None:
        self.error: SpdyStream | None = None
        self.data: SpdyStream | None = None
        self.started = False


async def _forward_pair(data: SpdyStream, error: SpdyStream, connect: Connect, pod: str) -> None:
    port_text = data.header("port") or error.header("port")
    try:
        port = int(port_text)
        if not 0 < port <= 65535:
            raise ValueError(port_text)
    except ValueError:
        with contextlib.suppress(ConnectionError, OSError):
            await error.write(f"invalid port {port_text!r}".encode())
        await data.close()
        await error.close()
        return
    try:
        reader, writer = await connect(port)
    except Exception as e:  # noqa: BLE001 - reported on the error stream, as upstream does
        with contextlib.suppress(ConnectionError, OSError):
            await error.write(_error_text(port, pod, e).encode())
        await data.close()
        await error.close()
        return

    async def client_to_pod() -> None:
        while True:
            chunk = await data.read()
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()

    async def pod_to_client() -> None:
        while True:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                break
            await data.write(chunk)

    up = asyncio.ensure_future(client_to_pod())
    down = asyncio.ensure_future(pod_to_client())
    try:
        # finished when the pod side ends; when the client side ends first (its FIN), the pod
        # gets CLOSE_GRACE seconds to finish its answer, then the connection is closed (as
        # containerd does: no TCP half-close, which many servers take for a disconnect)
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if not down.done() and up.exception() is None and not data.reset_by_peer:
            await asyncio.wait({down}, timeout=CLOSE_GRACE)
        if down.done() and down.exception() is not None:
            log.debug("port-forward %s:%d ended: %r", pod, port, down.exception())
    finally:
        for t in (up, down):
            t.cancel()
        for t in (up, down):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await _close_writer(writer)
        await data.close()
        await error.close()


def _request_id(st: SpdyStream, kind: str) -> str:
    rid = st.header("requestid")
    if rid:
        return rid
    # clients before requestid: the data stream follows its error stream (ids two apart)
    return str(st.id if kind == "error" else st.id - 2)


async def serve_spdy(transport: ByteTransport, connect: Connect, *, pod: str = "") -> None:
    """Serve kubectl's port-forward SPDY session until the client closes it."""
    session = SpdySession(transport)
    runner = asyncio.ensure_future(session.run())
    pairs: dict[str, _Pair] = {}
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            st = await session.accept()
            if st is None:
                break
            kind = st.header("streamtype")
            if kind not in ("error", "data"):
                await st.reset()
                continue
            await st.reply()
            rid = _request_id(st, kind)
            pair = pairs.setdefault(rid, _Pair())
            if getattr(pair, kind) is not None or pair.started:
                await st.reset()
                continue
            setattr(pair, kind, st)
            if pair.data is not None and pair.error is not None:
                pair.started = True
                pairs.pop(rid, None)
                t = asyncio.ensure_future(_forward_pair(pair.data, pair.error, connect, pod))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            _drop_stale(pairs)
    finally:
        for t in list(tasks):
            t.cancel()
        for t in list(tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await session.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner


def _drop_stale(pairs: dict[str, _Pair]) -> None:
    """Forget half-opened pairs that never completed (bounded memory on misbehaving clients)."""
    if len(pairs) > 1000:
        for rid in list(pairs)[: len(pairs) - 1000]:
            pairs.pop(rid, None)


# ------------------------------------------------------------------------------- WebSocket


async def serve_websocket_channels(ws: web.WebSocketResponse, proto: wc.ChannelProtocol, ports: list[int],
                                   connect: Connect, *, pod: str = "") -> None:
    """Serve the channel port-forward protocol on an accepted WebSocket."""
    send = wc.sender(ws, proto)

    writers: list[Any] = [None] * len(ports)
    pumps: list[asyncio.Task[None]] = []

    async def pod_to_client(i: int, reader: Any) -> None:
        data_ch, _ = wc.port_channels(i)
        while True:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                return
            await send(data_ch, chunk)

    try:
        for i, port in enumerate(ports):
            data_ch, err_ch = wc.port_channels(i)
            await send(data_ch, wc.port_prefix(port))
            await send(err_ch, wc.port_prefix(port))
        for i, port in enumerate(ports):
            try:
                reader, writers[i] = await connect(port)
            except Exception as e:  # noqa: BLE001 - reported on the port's error channel
                await send(wc.port_channels(i)[1], _error_text(port, pod, e).encode())
                continue
            pumps.append(asyncio.ensure_future(pod_to_client(i, reader)))

        async def inputs() -> None:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                try:
                    ch, payload = wc.decode(msg.data, b64=proto.base64 and msg.type == WSMsgType.TEXT)
                except wc.ProtocolError:
                    continue
                i, is_error = divmod(ch, 2)
                if is_error or i >= len(ports) or writers[i] is None or not payload:
                    continue
                try:
                    writers[i].write(payload)
                    await writers[i].drain()
                except (ConnectionError, OSError):
                    writers[i] = None

        in_task = asyncio.ensure_future(inputs())
        all_pumps = asyncio.ensure_future(asyncio.wait(pumps) if pumps else asyncio.sleep(0))
        try:
            await asyncio.wait({in_task, all_pumps}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            in_task.cancel()
            all_pumps.cancel()
            for t in (in_task, all_pumps):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
    finally:
        for t in pumps:
            t.cancel()
        for t in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for w in writers:
            if w is not None:
                await _close_writer(w)
        with contextlib.suppress(Exception):
            await ws.close()
