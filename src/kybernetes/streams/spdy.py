"""SPDY/3.1 framing: frames, header blocks and their zlib compression (pure, no I/O).

kubectl speaks SPDY/3.1 for ``port-forward`` (and for exec/attach when WebSockets fail), either
over an HTTP connection upgraded with ``Upgrade: SPDY/3.1`` or tunnelled inside WebSocket binary
messages (``SPDY/3.1+portforward.k8s.io``). ``spdysession.py`` runs the session; this module only
turns bytes into frames and back.

Wire format (all integers big-endian)::

    control frame:  1 | version(15)=3 | type(16) | flags(8) | length(24) | payload
    data frame:     0 | stream-id(31)            | flags(8) | length(24) | data

    SYN_STREAM(1)    stream-id(31) assoc-id(31) priority(3)+unused(5) slot(8) header-block
    SYN_REPLY(2)     stream-id(31) header-block
    RST_STREAM(3)    stream-id(31) status(32)
    SETTINGS(4)      count(32) then count x [flags(8) id(24) value(32)]
    PING(6)          id(32)
    GOAWAY(7)        last-good-stream-id(31) status(32)
    HEADERS(8)       stream-id(31) header-block
    WINDOW_UPDATE(9) stream-id(31) delta(31)      stream 0 = the whole session (3.1)

Header blocks are ``count(32)`` then ``len(32) name len(32) value`` pairs (names lowercase,
several values of one name joined by NUL), compressed with one zlib stream per direction for the
whole session, preset with the dictionary of the SPDY/3 specification (:data:`DICTIONARY`) and
sync-flushed after every block.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02          # SYN_STREAM only

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6
FLOW_CONTROL_ERROR = 7
STREAM_ALREADY_CLOSED = 9

# SETTINGS ids
SETTINGS_INITIAL_WINDOW_SIZE = 7

DEFAULT_WINDOW = 65536
MAX_FRAME_LENGTH = 0xFFFFFF
MAX_HEADER_BLOCK = 1 << 20          # refuse decompressed header blocks above 1 MiB

# ---------------------------------------------------------------------------- the dictionary
# The SPDY/3 header compression dictionary is a constant of the specification: 1423 bytes, the
# length-prefixed header names and common values below followed by a run of status codes, dates
# and media types. Its Adler-32 (0xe3c6a7c2) is the dictionary id in every compressed stream.
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode("ascii") for w in _DICT_WORDS) + _DICT_TAIL.encode("ascii")
DICTIONARY_ID = 0xE3C6A7C2

Headers = dict[str, list[str]]


class SpdyError(Exception):
    """A malformed frame or header block (the session answers with RST_STREAM or GOAWAY)."""


# ---------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    flags: int = 0
    assoc_id: int = 0
    priority: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()   # (flags, id, value)
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    flags: int = 0


@dataclass(frozen=True)
class Unknown:
    type: int
    flags: int
    payload: bytes = field(repr=False)


Frame = SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate | Data | Unknown


# ---------------------------------------------------------------------------- header blocks


def normalize_headers(headers: Mapping[str, str | Iterable[str]]) -> Headers:
    """Lowercase names, list values (SPDY requires lowercase names)."""
    out: Headers = {}
    for k, v in headers.items():
        vals = [v] if isinstance(v, str) else list(v)
        out.setdefault(k.lower(), []).extend(vals)
    return out


def encode_header_block(headers: Mapping[str, str | Iterable[str]]) -> bytes:
    """The uncompressed header block of ``headers``."""
    h = normalize_headers(headers)
    parts = [struct.pack(">I", len(h))]
    for name, values in h.items():
        n = name.encode("utf-8")
        v = "\x00".join(values).encode("utf-8")
        parts += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(parts)


def decode_header_block(raw: bytes) -> Headers:
    """Headers from an uncompressed header block; raises SpdyError when malformed."""
    try:
        (count,) = struct.unpack_from(">I", raw, 0)
        pos = 4
        out: Headers = {}
        for _ in range(count):
            (nlen,) = struct.unpack_from(">I", raw, pos)
            pos += 4
            name = raw[pos:pos + nlen]
            if len(name) != nlen or nlen == 0:
                raise SpdyError("truncated or empty header name")
            pos += nlen
            (vlen,) = struct.unpack_from(">I", raw, pos)
            pos += 4
            value = raw[pos:pos + vlen]
            if len(value) != vlen:
                raise SpdyError("truncated header value")
            pos += vlen
            key = name.decode("utf-8")
            if key != key.lower():
                raise SpdyError(f"header name {key!r} is not lowercase")
            if key in out:
                raise SpdyError(f"duplicate header {key!r}")
            out[key] = value.decode("utf-8").split("\x00")
    except struct.error:
        raise SpdyError("truncated header block") from None
    except UnicodeDecodeError:
        raise SpdyError("header block is not UTF-8") from None
    return out


class HeaderCompressor:
    """One direction's zlib stream (dictionary preset, sync flush per block)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                   zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)

    def compress(self, headers: Mapping[str, str | Iterable[str]]) -> bytes:
        raw = encode_header_block(headers)
        return self._z.compress(raw) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The other direction's zlib stream: header blocks must be fed in frame order."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._z.decompress(block, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise SpdyError(f"header decompression failed: {e}") from None
        if self._z.unconsumed_tail:
            raise SpdyError("header block too large")
        return decode_header_block(raw)


# ---------------------------------------------------------------------------- encode / decode


def _control(ftype: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise SpdyError("frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


class FrameEncoder:
    """Serializes frames; owns this direction's header compressor (so encode in send order)."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            if len(frame.data) > MAX_FRAME_LENGTH:
                raise SpdyError("data frame too large")
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF, (frame.flags << 24) | len(frame.data)) + frame.data
        if isinstance(frame, SynStream):
            head = struct.pack(">IIBB", frame.stream_id & 0x7FFFFFFF, frame.assoc_id & 0x7FFFFFFF,
                               (frame.priority & 0x7) << 5, 0)
            return _control(SYN_STREAM, frame.flags, head + self._headers.compress(frame.headers))
        if isinstance(frame, SynReply):
            return _control(SYN_REPLY, frame.flags, struct.pack(">I", frame.stream_id & 0x7FFFFFFF) + self._headers.compress(frame.headers))
        if isinstance(frame, HeadersFrame):
            return _control(HEADERS, frame.flags, struct.pack(">I", frame.stream_id & 0x7FFFFFFF) + self._headers.compress(frame.headers))
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id & 0x7FFFFFFF, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (fl << 24) | (sid & 0xFFFFFF), val) for fl, sid, val in frame.entries)
            return _control(SETTINGS, frame.flags, body)
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.id))
        if isinstance(frame, GoAway):
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id & 0x7FFFFFFF, frame.status))
        if isinstance(frame, WindowUpdate):
            return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id & 0x7FFFFFFF, frame.delta & 0x7FFFFFFF))
        if isinstance(frame, Unknown):
            return _control(frame.type, frame.flags, frame.payload)
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the frames completed so far.

    Owns the peer's header decompressor, so every byte of the session must pass through one
    decoder in order.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buf, 0)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            flags = flags_len >> 24
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if word & 0x80000000:
                version = (word >> 16) & 0x7FFF
                if version != VERSION:
                    raise SpdyError(f"unsupported SPDY version {version}")
                out.append(self._control(word & 0xFFFF, flags, payload))
            else:
                out.append(Data(word & 0x7FFFFFFF, payload, flags))
        return out

    def _control(self, ftype: int, flags: int, p: bytes) -> Frame:
        try:
            if ftype == SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", p, 0)
                return SynStream(sid & 0x7FFFFFFF, self._headers.decompress(p[10:]), flags, assoc & 0x7FFFFFFF, prio >> 5)
            if ftype == SYN_REPLY:
                (sid,) = struct.unpack_from(">I", p, 0)
                return SynReply(sid & 0x7FFFFFFF, self._headers.decompress(p[4:]), flags)
            if ftype == HEADERS:
                (sid,) = struct.unpack_from(">I", p, 0)
                return HeadersFrame(sid & 0x7FFFFFFF, self._headers.decompress(p[4:]), flags)
            if ftype == RST_STREAM:
                sid, status = struct.unpack_from(">II", p, 0)
                return RstStream(sid & 0x7FFFFFFF, status)
            if ftype == SETTINGS:
                (count,) = struct.unpack_from(">I", p, 0)
                entries = []
                for i in range(count):
                    fid, val = struct.unpack_from(">II", p, 4 + 8 * i)
                    entries.append((fid >> 24, fid & 0xFFFFFF, val))
                return Settings(tuple(entries), flags)
            if ftype == PING:
                (pid,) = struct.unpack_from(">I", p, 0)
                return Ping(pid)
            if ftype == GOAWAY:
                (last,) = struct.unpack_from(">I", p, 0)
                status = struct.unpack_from(">I", p, 4)[0] if len(p) >= 8 else 0
                return GoAway(last & 0x7FFFFFFF, status)
            if ftype == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", p, 0)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise SpdyError(f"truncated control frame of type {ftype}") from None
        return Unknown(ftype, flags, p)


def first_header(headers: Headers, name: str, default: str = "") -> str:
    """The first value of header ``name`` (case-insensitive), or ``default``."""
    vals = headers.get(name.lower())
    return vals[0] if vals else default
