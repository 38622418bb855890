"""A SPDY/3.1 session over any ByteTransport: streams, replies, pings, flow control.

    session = SpdySession(transport)               # server role: the peer opens odd streams
    runner = asyncio.ensure_future(session.run())  # reads frames until the connection ends
    stream = await session.accept()                # next stream the peer opened (None at the end)
    stream.headers["streamtype"]                   # lowercase names, list values
    await stream.reply()                           # SYN_REPLY: the peer waits for it
    data = await stream.read()                     # b"" once the peer sent FIN (or RST_STREAM)
    await stream.write(b"...") ; await stream.close()   # DATA frames, then FIN
    await session.close()                          # GOAWAY and close the transport

The client role (``client=True``, used by tests) opens streams with ``open_stream(headers)``.

Peers: kubectl uses Docker's spdystream, which neither sends WINDOW_UPDATE frames nor respects
them. So we count both windows as the protocol asks but only *wait* on the send window once the
peer has shown that it does flow control (sent a WINDOW_UPDATE); we always grant window back as
our consumers read. A stream buffers at most ``max_buffer`` unread bytes; beyond that the frame
reader stops reading the connection until the consumer catches up (TCP back-pressure, as
spdystream does).

Pings from the peer (ids of the peer's parity) are echoed; our own PING frames are not needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Mapping

from . import spdy
from .transport import ByteTransport

log = logging.getLogger(__name__)

DATA_CHUNK = 32 * 1024
WINDOW_UPDATE_THRESHOLD = 32 * 1024


class StreamReset(ConnectionResetError):
    """The peer reset the stream (RST_STREAM) or the session ended."""


class SpdyStream:
    """One SPDY stream: read what the peer sends, write, half-close, reset."""

    def __init__(self, session: SpdySession, stream_id: int, headers: spdy.Headers, *,
                 remote_fin: bool = False, local_fin: bool = False) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.replied = False
        self.remote_fin = remote_fin
        self.local_fin = local_fin
        self.reset_by_peer = False
        self._chunks: deque[bytes] = deque()
        self.buffered = 0
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._reply_event = asyncio.Event()
        self.send_window = session.initial_send_window
        self._unacked = 0
        if remote_fin:
            self._readable.set()

    def header(self, name: str, default: str = "") -> str:
        return spdy.first_header(self.headers, name, default)

    # ----------------------------------------------------------------------------- reading
    async def read(self) -> bytes:
        """The next chunk the peer sent; b"" after its FIN, a reset, or the session's end."""
        while not self._chunks:
            if self.remote_fin or self.reset_by_peer or self.session.ended:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self.buffered -= len(data)
        if self.buffered <= self.session.max_buffer:
            self._drained.set()
        self._unacked += len(data)
        if self._unacked >= WINDOW_UPDATE_THRESHOLD:
            n, self._unacked = self._unacked, 0
            await self.session._grant(self.id, n)
        return data

    def _on_data(self, data: bytes, fin: bool) -> None:
        if data:
            self._chunks.append(data)
            self.buffered += len(data)
            if self.buffered > self.session.max_buffer:
                self._drained.clear()
        if fin:
            self.remote_fin = True
        self._readable.set()

    def _on_reset(self) -> None:
        self.reset_by_peer = True
        self._readable.set()
        self._drained.set()
        self._reply_event.set()
        self.session._window_changed()

    # ----------------------------------------------------------------------------- writing
    async def reply(self, headers: Mapping[str, str | Iterable[str]] | None = None, *, fin: bool = False) -> None:
        """Send SYN_REPLY (once) for a stream the peer opened."""
        if self.replied:
            return
        self.replied = True
        await self.session._send(spdy.SynReply(self.id, spdy.normalize_headers(headers or {}), spdy.FLAG_FIN if fin else 0))
        if fin:
            self._local_closed()

    async def write(self, data: bytes) -> None:
        """Send ``data`` in DATA frames (waits for window only with a flow-controlling peer)."""
        view = memoryview(data)
        while view:
            if self.reset_by_peer or self.session.ended:
                raise StreamReset(f"stream {self.id} is closed")
            if self.local_fin:
                raise StreamReset(f"stream {self.id} was closed for writing")
            n = await self.session._reserve(self, min(len(view), DATA_CHUNK))
            chunk = bytes(view[:n])
            view = view[n:]
            await self.session._send(spdy.Data(self.id, chunk))

    async def close(self) -> None:
        """Half-close: an empty DATA frame with FIN (idempotent; no-op after a reset)."""
        if self.local_fin or self.reset_by_peer or self.session.ended:
            self.local_fin = True
            return
        self.local_fin = True
        with contextlib.suppress(ConnectionError, OSError):
            await self.session._send(spdy.Data(self.id, b"", spdy.FLAG_FIN))
        self._local_closed()

    async def reset(self, status: int = spdy.CANCEL) -> None:
        if self.reset_by_peer or self.session.ended:
            return
        self.local_fin = True
        self.remote_fin = True
        self._readable.set()
        with contextlib.suppress(ConnectionError, OSError):
            await self.session._send(spdy.RstStream(self.id, status))
        self.session._forget(self.id)

    def _local_closed(self) -> None:
        self.local_fin = True
        if self.remote_fin:
            self.session._forget(self.id)

    async def wait_reply(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._reply_event.wait()
        if self.reset_by_peer:
            raise StreamReset(f"stream {self.id} was refused")


class SpdySession:
    """See the module docstring."""

    def __init__(self, transport: ByteTransport, *, client: bool = False, max_buffer: int = 1 << 20) -> None:
        self.transport = transport
        self.client = client
        self.max_buffer = max_buffer
        self.initial_send_window = spdy.DEFAULT_WINDOW
        self.session_send_window = spdy.DEFAULT_WINDOW
        self.peer_flow_control = False
        self.ended = False
        self.goaway_received = False
        self._streams: dict[int, SpdyStream] = {}
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._encoder = spdy.FrameEncoder()
        self._decoder = spdy.FrameDecoder()
        self._wlock = asyncio.Lock()
        self._window_event = asyncio.Event()
        self._next_id = 1 if client else 2
        self._last_peer_id = 0
        self._session_unacked = 0

    # ----------------------------------------------------------------------------- public
    async def run(self) -> None:
        """Read and dispatch frames until the connection ends (returns; never raises I/O errors)."""
        try:
            while True:
                data = await self.transport.read()
                if not data:
                    break
                for frame in self._decoder.feed(data):
                    await self._dispatch(frame)
        except spdy.SpdyError as e:
            log.debug("SPDY protocol error: %s", e)
            with contextlib.suppress(ConnectionError, OSError):
                await self._send(spdy.GoAway(self._last_peer_id, spdy.PROTOCOL_ERROR))
        except (ConnectionError, OSError) as e:
            log.debug("SPDY connection ended: %s", e)
        finally:
            self._end()

    async def accept(self) -> SpdyStream | None:
        """The next stream the peer opened, or None once the session has ended."""
        if self.ended and self._incoming.empty():
            return None
        return await self._incoming.get()

    async def open_stream(self, headers: Mapping[str, str | Iterable[str]], *, fin: bool = False,
                          reply_timeout: float = 30.0) -> SpdyStream:
        """Client role: open a stream and wait for its SYN_REPLY."""
        sid = self._next_id
        self._next_id += 2
        st = SpdyStream(self, sid, spdy.normalize_headers(headers), local_fin=fin)
        self._streams[sid] = st
        await self._send(spdy.SynStream(sid, st.headers, spdy.FLAG_FIN if fin else 0))
        await st.wait_reply(reply_timeout)
        return st

    async def close(self) -> None:
        """Say GOAWAY and close the transport (the run loop then ends)."""
        if not self.ended:
            with contextlib.suppress(ConnectionError, OSError):
                await self._send(spdy.GoAway(self._last_peer_id, 0))
        await self.transport.close()
        self._end()

    def streams(self) -> list[SpdyStream]:
        return list(self._streams.values())

    # ----------------------------------------------------------------------------- internals
    async def _send(self, frame: spdy.Frame) -> None:
        if self.ended:
            raise ConnectionResetError("SPDY session ended")
        async with self._wlock:
            # encode under the lock: the header compressor's state follows the wire order
            await self.transport.write(self._encoder.encode(frame))

    async def _grant(self, stream_id: int, n: int) -> None:
        """Give the peer back receive window for ``n`` consumed bytes (stream and session)."""
        self._session_unacked += n
        with contextlib.suppress(ConnectionError, OSError):
            if stream_id in self._streams:
                await self._send(spdy.WindowUpdate(stream_id, n))
            if self._session_unacked >= WINDOW_UPDATE_THRESHOLD:
                m, self._session_unacked = self._session_unacked, 0
                await self._send(spdy.WindowUpdate(0, m))

    async def _reserve(self, st: SpdyStream, want: int) -> int:
        """How many bytes ``st`` may send now (waits only for a flow-controlling peer)."""
        while self.peer_flow_control and (st.send_window <= 0 or self.session_send_window <= 0):
            if st.reset_by_peer or self.ended:
                raise StreamReset(f"stream {st.id} is closed")
            self._window_event.clear()
            await self._window_event.wait()
        n = want
        if self.peer_flow_control:
            n = max(1, min(want, st.send_window, self.session_send_window))
        st.send_window -= n
        self.session_send_window -= n
        return n

    def _window_changed(self) -> None:
        self._window_event.set()

    def _forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for st in list(self._streams.values()):
            st._readable.set()
            st._drained.set()
            st._reply_event.set()
        self._window_event.set()
        self._incoming.put_nowait(None)

    async def _dispatch(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.Data):
            st = self._streams.get(frame.stream_id)
            if st is None:
                await self._send(spdy.RstStream(frame.stream_id, spdy.INVALID_STREAM))
                return
            st._on_data(frame.data, bool(frame.flags & spdy.FLAG_FIN))
            if st.remote_fin and st.local_fin:
                self._forget(st.id)
            if not st._drained.is_set():
                await st._drained.wait()   # back-pressure: stop reading until the consumer reads
        elif isinstance(frame, spdy.SynStream):
            await self._on_syn_stream(frame)
        elif isinstance(frame, spdy.SynReply):
            st = self._streams.get(frame.stream_id)
            if st is not None:
                st.headers.update(frame.headers)
                st.replied = True
                st._reply_event.set()
                if frame.flags & spdy.FLAG_FIN:
                    st._on_data(b"", True)
        elif isinstance(frame, spdy.HeadersFrame):
            st = self._streams.get(frame.stream_id)
            if st is not None:
                st.headers.update(frame.headers)
                if frame.flags & spdy.FLAG_FIN:
                    st._on_data(b"", True)
        elif isinstance(frame, spdy.RstStream):
            st = self._streams.pop(frame.stream_id, None)
            if st is not None:
                st._on_reset()
        elif isinstance(frame, spdy.Ping):
            own_parity = 1 if self.client else 0
            if frame.id % 2 != own_parity:
                await self._send(frame)
        elif isinstance(frame, spdy.Settings):
            for _flags, sid, value in frame.entries:
                if sid == spdy.SETTINGS_INITIAL_WINDOW_SIZE:
                    delta = value - self.initial_send_window
                    self.initial_send_window = value
                    for st in self._streams.values():
                        st.send_window += delta
                    self._window_changed()
        elif isinstance(frame, spdy.WindowUpdate):
            self.peer_flow_control = True
            if frame.stream_id == 0:
                self.session_send_window += frame.delta
            else:
                st = self._streams.get(frame.stream_id)
                if st is not None:
                    st.send_window += frame.delta
            self._window_changed()
        elif isinstance(frame, spdy.GoAway):
            self.goaway_received = True
        # unknown frame types are ignored, as the specification asks

    async def _on_syn_stream(self, frame: spdy.SynStream) -> None:
        sid = frame.stream_id
        peer_parity = 0 if self.client else 1
        if sid == 0 or sid % 2 != peer_parity or sid <= self._last_peer_id or sid in self._streams:
            await self._send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        self._last_peer_id = sid
        if self.goaway_received:
            await self._send(spdy.RstStream(sid, spdy.REFUSED_STREAM))
            return
        st = SpdyStream(self, sid, frame.headers, remote_fin=bool(frame.flags & spdy.FLAG_FIN),
                        local_fin=bool(frame.flags & spdy.FLAG_UNIDIRECTIONAL))
        self._streams[sid] = st
        self._incoming.put_nowait(st)
