"""The API server's client for kubelets: address lookup, JSON GETs, streams and raw upgrades.

    kc = KubeletClient.from_pki(pki)           # client cert CN kube-apiserver-kubelet-client
    host, port = node_address(node)            # InternalIP (else Hostname, else the first address)
                                               # and status.daemonEndpoints.kubeletEndpoint.Port
    doc = await kc.get_json(node, "/stats/summary", timeout=10)
    async with kc.stream_get(node, "/containerLogs/ns/pod/c", query) as resp: ...   # aiohttp response
    up = await kc.open_upgrade(node, "GET", "/exec/ns/pod/c", query, headers)       # 101 or the error

Like upstream's default (no ``--kubelet-certificate-authority``), the kubelet's serving
certificate is not verified: kubelets usually serve self-signed certificates. What protects the
kubelet is the client certificate we present (the kubelet only accepts ``system:masters`` or this
user).

Errors reaching a kubelet become Status errors (``error dialing backend: ...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from ..api import errors
from ..streams.transport import StreamConnection

DEFAULT_KUBELET_PORT = 10250
CONNECT_TIMEOUT = 10.0
MAX_ERROR_BODY = 1 << 20
ADDRESS_PREFERENCE = ("InternalIP", "Hostname", "ExternalIP", "InternalDNS", "ExternalDNS")

Obj = dict[str, Any]


def node_address(node: Obj) -> tuple[str, int]:
    """(host, port) of the kubelet on ``node``; raises StatusError 503 if it has no address."""
    status = node.get("status") or {}
    addrs = [a for a in status.get("addresses") or [] if isinstance(a, dict) and a.get("address")]
    host = None
    for kind in ADDRESS_PREFERENCE:
        host = next((a["address"] for a in addrs if a.get("type") == kind), None)
        if host:
            break
    if host is None and addrs:
        host = addrs[0]["address"]
    if not host:
        name = (node.get("metadata") or {}).get("name", "")
        raise errors.StatusError(503, "ServiceUnavailable", f"no preferred addresses found; known addresses: [] (node {name!r})")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_KUBELET_PORT
    return str(host), int(port)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def kubelet_client_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS client context with our client certificate; the kubelet's certificate is not verified."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    return ctx


@dataclass
class Upgrade:
    """The kubelet's answer to an upgrade request: 101 with an open connection, or an error."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    conn: StreamConnection | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class KubeletClient:
    """See the module docstring. ``ssl_context=None`` talks plain HTTP (tests only)."""

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"

    @classmethod
    def from_pki(cls, pki: Any) -> KubeletClient:
        """From the cluster PKI (``pki.apiserver_kubelet_client_cert`` / ``_key``)."""
        return cls(kubelet_client_ssl_context(str(pki.apiserver_kubelet_client_cert), str(pki.apiserver_kubelet_client_key)))

    def url(self, node: Obj, path: str, query: Any = None) -> str:
        host, port = node_address(node)
        qs = f"?{urlencode(query, doseq=True)}" if query else ""
        return f"{self.scheme}://{_hostport(host, port)}{quote(path)}{qs}"

    def _session(self, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        # one session per call: kubelet calls are few and long-lived (streams) or periodic (stats)
        conn = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else False, limit=0)
        return aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False)

    async def get_json(self, node: Obj, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` on the node's kubelet and decode JSON; StatusError on failure."""
        url = self.url(node, path)
        try:
            async with self._session(aiohttp.ClientTimeout(total=timeout)) as s, s.get(url) as r:
                body = await r.read()
                if r.status != 200:
                    raise _status_from_body(r.status, body)
                return orjson.loads(body)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise _dial_error(url, e) from None
        except orjson.JSONDecodeError as e:
            raise errors.StatusError(500, "InternalError", f"invalid JSON from kubelet {url}: {e}") from None

    @contextlib.asynccontextmanager
    async def stream_get(self, node: Obj, path: str, query: Any = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET a streaming response (no total timeout); StatusError when it is not 200."""
        url = self.url(node, path, query)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, connect=CONNECT_TIMEOUT)
        try:
            async with self._session(timeout) as s, s.get(url) as r:
                if r.status != 200:
                    raise _status_from_body(r.status, await r.content.read(MAX_ERROR_BODY))
                yield r
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError, TimeoutError) as e:
            raise _dial_error(url, e) from None

    async def open_upgrade(self, node: Obj, method: str, path: str, query: Any,
                           headers: list[tuple[str, str]], timeout: float = CONNECT_TIMEOUT) -> Upgrade:
        """Send an upgrade request (WebSocket or SPDY) and read the kubelet's answer.

        On 101 the returned ``conn`` carries the upgraded protocol; otherwise the connection is
        closed and ``body`` holds the kubelet's error.
        """
        host, port = node_address(node)
        url = self.url(node, path, query)
        target = quote(path) + (f"?{urlencode(query, doseq=True)}" if query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {_hostport(host, port)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self.ssl_context, server_hostname=host if self.ssl_context is not None else None,
                    limit=1 << 20)
        except (OSError, TimeoutError, ssl.SSLError) as e:
            raise _dial_error(url, e) from None
        conn = StreamConnection(reader, writer)
        try:
            async with asyncio.timeout(timeout):
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            status, reason, resp_headers = _parse_head(head)
            if status == 101:
                return Upgrade(status, reason, resp_headers, conn=conn)
            body = await _read_body(reader, resp_headers, timeout)
            await conn.close()
            return Upgrade(status, reason, resp_headers, body)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            await conn.close()
            raise _dial_error(url, e) from None


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    text = head.decode("latin-1").split("\r\n")
    parts = text[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"invalid status line {text[0]!r}")
    headers = []
    for line in text[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]], timeout: float) -> bytes:
    h = {k.lower(): v for k, v in headers}
    async with asyncio.timeout(timeout):
        if "content-length" in h:
            n = min(int(h["content-length"]), MAX_ERROR_BODY)
            return await reader.readexactly(n)
        if "chunked" in h.get("transfer-encoding", "").lower():
            out = b""
            while len(out) < MAX_ERROR_BODY:
                size = int((await reader.readline()).strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    break
                out += await reader.readexactly(size)
                await reader.readline()
            return out
        return await reader.read(MAX_ERROR_BODY)


def _status_from_body(code: int, body: bytes) -> errors.StatusError:
    """The kubelet's Status error as ours (or its text as the message)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return errors.StatusError(int(doc.get("code") or code), str(doc.get("reason") or "InternalError"),
                                  str(doc.get("message") or ""), doc.get("details") or {})
    reason = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(code, "InternalError")
    return errors.StatusError(code, reason, body.decode("utf-8", "replace").strip() or f"kubelet answered {code}")


def _dial_error(url: str, e: BaseException) -> errors.StatusError:
    return errors.StatusError(500, "InternalError", f"error dialing backend: {url}: {e or type(e).__name__}")


def upgrade_error_body(up: Upgrade) -> Mapping[str, Any]:
    """The kubelet's refusal of an upgrade as a Status document."""
    return _status_from_body(up.status, up.body).to_status()
