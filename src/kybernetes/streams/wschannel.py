"""The Kubernetes WebSocket channel protocols (exec, attach, and the simple port-forward).

Every WebSocket message carries one *channel*: the first byte of a binary message, or, in the
base64 variants, the first character (an ASCII digit) of a text message whose rest is base64::

    binary:  [channel] [payload ...]
    base64:  "<digit>" + base64(payload)

Exec / attach channels: 0 stdin (client -> server), 1 stdout, 2 stderr, 3 error (server ->
client), 4 resize (client -> server, JSON ``{"Width":80,"Height":24}``), and, in
``v5.channel.k8s.io`` only, 255 "close": a one-byte payload names the channel the client stops
writing (``[255, 0]`` = stdin EOF).

The error channel carries the outcome. From ``v4`` on it is one ``metav1.Status`` JSON document:
``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and a cause ``{"reason": "ExitCode",
"message": "<code>"}`` that kubectl and the Python client turn into their exit status. Older
versions put a plain error message there (nothing on success).

Port-forward over channels (the Python client): for the i-th requested port, channel ``2*i`` is
data and ``2*i+1`` errors; the server's first message on each of them is the port number as a
little-endian uint16.

Everything here is pure: encoding, decoding, protocol tables and Status documents.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
SPDY_TUNNEL_PORTFORWARD = "SPDY/3.1+portforward.k8s.io"

# Offered to exec/attach clients, best first (aiohttp picks the first the client lists that is here).
EXEC_PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64)
# Port-forward: SPDY tunnelled in WebSocket (kubectl) or the channel protocol (Python client).
PORTFORWARD_PROTOCOLS = (SPDY_TUNNEL_PORTFORWARD, V4, V4_BASE64, V1, V1_BASE64)


class ProtocolError(ValueError):
    """A message that does not follow the channel protocol."""


@dataclass(frozen=True)
class ChannelProtocol:
    """How one negotiated subprotocol frames messages and reports results."""

    name: str              # "" when the client asked for no subprotocol (binary, v1 semantics)
    base64: bool           # text frames: digit + base64 payload
    status_json: bool      # error channel carries a metav1.Status (v4+) instead of plain text
    close_channel: bool    # channel 255 is understood (v5)


def protocol_for(name: str | None) -> ChannelProtocol:
    """The framing rules of a negotiated subprotocol (None / "" = plain binary channels)."""
    name = name or ""
    if name == V5:
        return ChannelProtocol(name, base64=False, status_json=True, close_channel=True)
    if name == V4:
        return ChannelProtocol(name, base64=False, status_json=True, close_channel=False)
    if name == V4_BASE64:
        return ChannelProtocol(name, base64=True, status_json=True, close_channel=False)
    if name == V1_BASE64:
        return ChannelProtocol(name, base64=True, status_json=False, close_channel=False)
    if name in (V1, ""):
        return ChannelProtocol(name, base64=False, status_json=False, close_channel=False)
    raise ProtocolError(f"unsupported channel protocol {name!r}")


def encode(channel: int, data: bytes, *, b64: bool = False) -> bytes | str:
    """One WebSocket message for ``channel``: bytes (binary frame) or str (base64 text frame)."""
    if not 0 <= channel <= 255:
        raise ProtocolError(f"channel {channel} out of range")
    if b64:
        if channel > 9:
            raise ProtocolError(f"channel {channel} cannot be written in the base64 protocol")
        return chr(ord("0") + channel) + base64.b64encode(data).decode("ascii")
    return bytes((channel,)) + data


def sender(ws: Any, proto: ChannelProtocol) -> Callable[[int, bytes], Awaitable[None]]:
    """``send(channel, data)`` on a WebSocket (aiohttp's), one frame at a time."""
    import asyncio

    lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        msg = encode(channel, data, b64=proto.base64)
        async with lock:
            if isinstance(msg, str):
                await ws.send_str(msg)
            else:
                await ws.send_bytes(msg)

    return send


def decode(message: bytes | str, *, b64: bool = False) -> tuple[int, bytes]:
    """(channel, payload) of one received message.

    Text frames are accepted in the binary protocols too: the Python client writes ``str`` data
    as a text frame whose first character is the channel number (``chr(0) + "data"``).
    """
    if isinstance(message, str):
        if not message:
            raise ProtocolError("empty message")
        if b64:
            ch = ord(message[0]) - ord("0")
            if not 0 <= ch <= 9:
                raise ProtocolError(f"invalid base64 channel character {message[0]!r}")
            try:
                return ch, base64.b64decode(message[1:], validate=False)
            except (binascii.Error, ValueError) as e:
                raise ProtocolError(f"invalid base64 payload: {e}") from None
        raw = message.encode("utf-8")
        return raw[0], raw[1:]
    if not message:
        raise ProtocolError("empty message")
    return message[0], bytes(message[1:])


def parse_resize(payload: bytes) -> tuple[int, int]:
    """(width, height) from a resize message ``{"Width":80,"Height":24}`` (trailing newline ok)."""
    try:
        doc = json.loads(payload.decode("utf-8").strip() or "{}")
        w, h = int(doc.get("Width", 0)), int(doc.get("Height", 0))
    except (ValueError, AttributeError, TypeError) as e:
        raise ProtocolError(f"invalid resize message: {e}") from None
    if w < 0 or h < 0 or w > 0xFFFF or h > 0xFFFF:
        raise ProtocolError(f"invalid terminal size {w}x{h}")
    return w, h


# ---------------------------------------------------------------------------------- outcomes


def success_status() -> dict[str, object]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int, argv: list[str] | None = None) -> dict[str, object]:
    """The error-channel Status for a process that exited with ``code`` (0 = Success)."""
    if code == 0:
        return success_status()
    what = f"error executing command {argv}, exit code {code}" if argv else f"exit code {code}"
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: {what}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str, *, reason: str = "InternalError", code: int = 500) -> dict[str, object]:
    """The error-channel Status for a session that failed before or while running."""
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def error_payload(status: dict[str, object], proto: ChannelProtocol) -> bytes | None:
    """What to write on the error channel for ``status`` (None: write nothing)."""
    if proto.status_json:
        return json.dumps(status, separators=(",", ":")).encode()
    if status.get("status") == "Success":
        return None
    return str(status.get("message", "")).encode()


# ------------------------------------------------------------------------- port-forward channels


def parse_ports(values: list[str]) -> list[int]:
    """Ports from ``ports=`` query values: repeated and/or comma-separated (``80,8080``)."""
    out: list[int] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                port = int(part)
            except ValueError:
                raise ProtocolError(f"invalid port {part!r}") from None
            if not 0 < port <= 65535:
                raise ProtocolError(f"port {port} out of range")
            out.append(port)
    if not out:
        raise ProtocolError("query parameter \"ports\" is required")
    return out


def port_prefix(port: int) -> bytes:
    """The first payload the server sends on a port's data and error channels."""
    return struct.pack("<H", port)


def port_channels(index: int) -> tuple[int, int]:
    """(data channel, error channel) of the ``index``-th requested port."""
    return 2 * index, 2 * index + 1
