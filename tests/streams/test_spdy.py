"""SPDY/3.1 framing (pure) and the session (over an in-memory byte pipe)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from kybernetes.streams import spdy
from kybernetes.streams.spdysession import SpdySession
from tests.harness import wait_for


def test_dictionary_is_the_one_of_the_specification() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == spdy.DICTIONARY_ID
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"utf-,*,enq=0.")


def test_header_block_round_trip() -> None:
    h = {"StreamType": "data", "port": ["80"], "multi": ["a", "b"]}
    raw = spdy.encode_header_block(h)
    assert raw[:4] == struct.pack(">I", 3)
    assert spdy.decode_header_block(raw) == {"streamtype": ["data"], "port": ["80"], "multi": ["a", "b"]}


@pytest.mark.parametrize("raw", [
    pytest.param(b"\x00\x00", id="short-count"),
    pytest.param(struct.pack(">I", 1) + struct.pack(">I", 5) + b"ab", id="short-name"),
    pytest.param(struct.pack(">II", 1, 1) + b"X" + struct.pack(">I", 0), id="uppercase-name"),
])
def test_malformed_header_blocks(raw: bytes) -> None:
    with pytest.raises(spdy.SpdyError):
        spdy.decode_header_block(raw)


def test_compressed_headers_are_zlib_with_the_dictionary() -> None:
    comp = spdy.HeaderCompressor()
    first = comp.compress({"streamtype": "error", "port": "80", "requestid": "0"})
    second = comp.compress({"streamtype": "data", "port": "80", "requestid": "0"})
    # a plain zlib decoder given the dictionary reads the same stream (what Go's framer does)
    assert struct.unpack(">I", first[2:6])[0] == spdy.DICTIONARY_ID     # FDICT header carries the id
    z = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert spdy.decode_header_block(z.decompress(first))["streamtype"] == ["error"]
    assert spdy.decode_header_block(z.decompress(second))["streamtype"] == ["data"]
    # and our decompressor reads a stream made by plain zlib
    zc = zlib.compressobj(zdict=spdy.DICTIONARY)
    dec = spdy.HeaderDecompressor()
    for i in range(3):
        block = zc.compress(spdy.encode_header_block({"n": str(i)})) + zc.flush(zlib.Z_SYNC_FLUSH)
        assert dec.decompress(block) == {"n": [str(i)]}


ALL_FRAMES = [
    spdy.SynStream(1, {"streamtype": ["error"], "port": ["80"]}, spdy.FLAG_FIN, assoc_id=0, priority=3),
    spdy.SynReply(1, {}),
    spdy.HeadersFrame(3, {"x": ["y"]}, spdy.FLAG_FIN),
    spdy.RstStream(5, spdy.CANCEL),
    spdy.Settings(((0, spdy.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),)),
    spdy.Ping(7),
    spdy.GoAway(9, 0),
    spdy.WindowUpdate(0, 12345),
    spdy.Data(3, b"payload", spdy.FLAG_FIN),
    spdy.Data(3, b""),
    spdy.Unknown(99, 0, b"\x01\x02"),
]


def test_every_frame_round_trips_even_fed_byte_by_byte() -> None:
    enc, dec = spdy.FrameEncoder(), spdy.FrameDecoder()
    wire = b"".join(enc.encode(f) for f in ALL_FRAMES)
    got: list[spdy.Frame] = []
    for i in range(len(wire)):
        got += dec.feed(wire[i:i + 1])
    assert got == ALL_FRAMES


def test_control_frame_layout() -> None:
    wire = spdy.FrameEncoder().encode(spdy.Ping(0x01020304))
    assert wire == b"\x80\x03\x00\x06\x00\x00\x00\x04\x01\x02\x03\x04"
    data = spdy.FrameEncoder().encode(spdy.Data(5, b"ab", spdy.FLAG_FIN))
    assert data == b"\x00\x00\x00\x05\x01\x00\x00\x02ab"


def test_wrong_version_is_refused() -> None:
    wire = struct.pack(">HHI", 0x8000 | 2, spdy.PING, 4) + b"\x00\x00\x00\x01"
    with pytest.raises(spdy.SpdyError):
        spdy.FrameDecoder().feed(wire)


# ------------------------------------------------------------------------------- the session


class MemoryPipe:
    """One end of an in-memory duplex byte pipe."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self.inbox, self.outbox = inbox, outbox
        self.closed = False

    async def read(self) -> bytes:
        return await self.inbox.get()

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("closed")
        await self.outbox.put(data)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.outbox.put(b"")


def memory_pair() -> tuple[MemoryPipe, MemoryPipe]:
    a: asyncio.Queue[bytes] = asyncio.Queue()
    b: asyncio.Queue[bytes] = asyncio.Queue()
    return MemoryPipe(a, b), MemoryPipe(b, a)


@contextlib.asynccontextmanager
async def sessions() -> AsyncIterator[tuple[SpdySession, SpdySession]]:
    c_end, s_end = memory_pair()
    client, server = SpdySession(c_end, client=True), SpdySession(s_end)
    tasks = [asyncio.ensure_future(client.run()), asyncio.ensure_future(server.run())]
    try:
        yield client, server
    finally:
        await client.close()
        await server.close()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def test_streams_reply_data_and_half_close() -> None:
    async with sessions() as (client, server):
        async def serve() -> None:
            st = await server.accept()
            assert st is not None and st.header("streamtype") == "data" and st.id == 1
            await st.reply()
            got = b""
            while chunk := await st.read():
                got += chunk
            await st.write(got.upper())
            await st.close()

        srv = asyncio.ensure_future(serve())
        st = await client.open_stream({"streamtype": "data", "port": "80"})
        await st.write(b"hello " * 20000)          # several DATA frames
        await st.close()
        out = b""
        while chunk := await st.read():
            out += chunk
        assert out == b"HELLO " * 20000
        await srv
        assert server.streams() == [] and client.streams() == []   # both sides closed: forgotten


async def test_ping_from_the_peer_is_echoed_and_reset_ends_reads() -> None:
    async with sessions() as (client, server):
        got: asyncio.Queue[spdy.Frame] = asyncio.Queue()
        orig = client._dispatch

        async def spy(frame: spdy.Frame) -> None:
            await got.put(frame)
            await orig(frame)

        client._dispatch = spy  # type: ignore[method-assign]
        await client._send(spdy.Ping(1))
        frame = await asyncio.wait_for(got.get(), 5)
        assert frame == spdy.Ping(1)

        async def serve() -> None:
            st = await server.accept()
            assert st is not None
            await st.reply()
            assert await st.read() == b""       # after the client's RST_STREAM
            assert st.reset_by_peer

        srv = asyncio.ensure_future(serve())
        st = await client.open_stream({"streamtype": "error"})
        await st.reset()
        await asyncio.wait_for(srv, 5)


async def test_flow_control_waits_only_for_a_peer_that_does_it() -> None:
    async with sessions() as (client, server):
        async def serve() -> None:
            st = await server.accept()
            assert st is not None
            await st.reply()
            await st.write(b"x" * 100_000)     # > 64 KiB: no WINDOW_UPDATE seen yet, so no waiting
            await st.close()

        srv = asyncio.ensure_future(serve())
        st = await client.open_stream({"streamtype": "data"})
        total = 0
        while chunk := await st.read():      # reading grants window back (WINDOW_UPDATE frames)
            total += len(chunk)
        assert total == 100_000
        await srv
        # the client's window updates switched the server to honour windows from now on
        await wait_for(lambda: server.peer_flow_control, timeout=5, what="WINDOW_UPDATE seen")


async def test_bad_stream_ids_are_refused() -> None:
    async with sessions() as (client, server):
        orig = client._dispatch
        frames: asyncio.Queue[spdy.Frame] = asyncio.Queue()

        async def spy(frame: spdy.Frame) -> None:
            await frames.put(frame)
            await orig(frame)

        client._dispatch = spy  # type: ignore[method-assign]
        await client._send(spdy.SynStream(2, {"a": ["b"]}))   # even id from a client: invalid
        assert await asyncio.wait_for(frames.get(), 5) == spdy.RstStream(2, spdy.PROTOCOL_ERROR)
        await client._send(spdy.Data(77, b"x"))                 # data for an unknown stream
        assert await asyncio.wait_for(frames.get(), 5) == spdy.RstStream(77, spdy.INVALID_STREAM)


async def test_accept_returns_none_when_the_connection_ends() -> None:
    c_end, s_end = memory_pair()
    server = SpdySession(s_end)
    runner = asyncio.ensure_future(server.run())
    await c_end.close()
    assert await asyncio.wait_for(server.accept(), 5) is None
    await runner
