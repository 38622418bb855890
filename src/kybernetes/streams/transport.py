"""Byte transports the stream protocols run over, and a pipe between two of them.

    ByteTransport        read() -> bytes (b"" = end of stream), write(bytes), close()
    HijackedConnection   an aiohttp server connection after we answered ``101 Switching Protocols``
                         ourselves (``accept_upgrade``): raw bytes both ways. aiohttp only knows
                         WebSocket upgrades, so for ``Upgrade: SPDY/3.1`` (and for relaying any
                         upgrade verbatim) we install a byte sink as the connection's payload
                         parser, the same hook aiohttp's own WebSocketResponse uses.
    StreamConnection     asyncio StreamReader/StreamWriter (a TCP or TLS client connection)
    WebSocketTunnel      the binary messages of a WebSocket as one byte stream (SPDY tunnelled in
                         WebSocket, ``SPDY/3.1+portforward.k8s.io``)
    pipe(a, b)           copy both ways until either side ends, then close both
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
PAUSE_ABOVE = 1 << 20      # stop reading the socket when this much is buffered
RESUME_BELOW = 256 * 1024


class ByteTransport(Protocol):
    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class _ByteSink:
    """Receives the connection's bytes in place of aiohttp's HTTP parser (``set_parser``)."""

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._transport = transport
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # called by aiohttp's RequestHandler
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self._chunks.append(bytes(data))
            self._size += len(data)
            if self._size > PAUSE_ABOVE and not self._paused and self._transport is not None:
                self._paused = True
                with contextlib.suppress(Exception):
                    self._transport.pause_reading()
            self._wake()
        return False, b""

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def read(self) -> bytes:
        while not self._chunks:
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._paused and self._size < RESUME_BELOW and self._transport is not None:
            self._paused = False
            with contextlib.suppress(Exception):
                self._transport.resume_reading()
        return data


class HijackedConnection:
    """Raw bytes over an aiohttp server connection after a 101 we sent ourselves."""

    def __init__(self, request: web.Request, sink: _ByteSink, writer: Any) -> None:
        self._request = request
        self._sink = sink
        self._writer = writer
        self._closed = False

    async def read(self) -> bytes:
        return await self._sink.read()

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionResetError("connection closed")
        transport = self._request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection lost")
        await self._writer.write(data)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        transport = self._request.transport
        if transport is not None and not transport.is_closing():
            transport.close()


async def accept_upgrade(request: web.Request, headers: Mapping[str, str] | list[tuple[str, str]],
                         status: int = 101) -> tuple[web.StreamResponse, HijackedConnection]:
    """Answer ``request`` with ``status`` (101) and ``headers``, then own the raw connection.

    The caller returns the response object from its handler once it is done with the connection.
    """
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost")
    resp = web.StreamResponse(status=status)
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        resp.headers.add(k, v)
    resp.force_close()
    sink = _ByteSink(transport)
    # from here on the connection's bytes go to the sink, not to the HTTP parser; set before the
    # 101 goes out, as the client starts talking the new protocol as soon as it sees it
    request.protocol.set_parser(sink)  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    writer = await resp.prepare(request)
    assert writer is not None
    return resp, HijackedConnection(request, sink, writer)


class StreamConnection:
    """A client connection (asyncio streams) as a ByteTransport."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        try:
            return await self.reader.read(READ_CHUNK)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        if self.writer.is_closing():
            return
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self.writer.wait_closed()


class WebSocketTunnel:
    """Binary WebSocket messages as one byte stream (aiohttp server or client WebSocket)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return b""
            if msg.type == WSMsgType.TEXT:
                log.debug("ignoring a text message on a SPDY tunnel")

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("websocket closed")
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.ws.close()


async def _copy(src: ByteTransport, dst: ByteTransport) -> None:
    while True:
        data = await src.read()
        if not data:
            return
        await dst.write(data)


async def pipe(a: ByteTransport, b: ByteTransport) -> None:
    """Copy a -> b and b -> a until either direction ends or fails; then close both."""
    tasks = [asyncio.ensure_future(_copy(a, b)), asyncio.ensure_future(_copy(b, a))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await a.close()
        await b.close()
