"""The kubelet's HTTPS API (port 10250): logs, exec, attach, port-forward and stats.

Endpoints (as upstream; the API server is the only intended client)::

    GET      /healthz                                   "ok", no authentication
    GET      /containerLogs/{ns}/{pod}/{container}      pods/log query (follow, previous, tailLines,
                                                        sinceSeconds, sinceTime, timestamps, limitBytes)
    GET|POST /exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=
    GET|POST /attach/{ns}/{pod}/{container}?stdin=&stdout=&stderr=&tty=
    GET|POST /portForward/{ns}/{pod}[?ports=80,8080]
    GET      /stats/summary                             the Summary API (the ``stats`` callable)

exec/attach/portForward need an upgrade: WebSocket (channel protocols; port-forward also SPDY
tunnelled in WebSocket) or ``Upgrade: SPDY/3.1`` (``X-Stream-Protocol-Version`` negotiation).
Errors are Kubernetes ``Status`` JSON.

Authentication: TLS client certificates verified against the cluster CA (``client_ca``); only the
group ``system:masters`` and the user ``kube-apiserver-kubelet-client`` are allowed (401 without
a certificate, 403 for anyone else). Without ``client_ca`` (or without TLS) nothing but
``/healthz`` is served.

Serving certificate: ``ensure_kubelet_serving_cert`` makes a self-signed one, as an upstream
kubelet does without ``--tls-cert-file``. The API server does not verify it (upstream's default
without ``--kubelet-certificate-authority``); the client certificate on the other side is what
protects these endpoints.

The pod/container a request names is resolved by a ``PodLocator`` (the kubelet implements it);
the streams themselves come from the runtime (``Runtime.exec/attach/port_forward``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web

from ..streams import portforward, remotecommand, transport
from ..streams import wschannel as wc
from . import logs
from .runtime.base import ContainerState, Runtime

log = logging.getLogger(__name__)

ALLOWED_GROUPS = frozenset({"system:masters"})
ALLOWED_USERS = frozenset({"kube-apiserver-kubelet-client"})
PORTFORWARD_SPDY_PROTOCOL = "portforward.k8s.io"
SERVING_DAYS = 365


class StreamError(Exception):
    """A request the kubelet refuses; rendered as a Status with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def to_status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


@dataclass(frozen=True)
class Located:
    """Where a pod's container lives in the runtime."""

    container_id: str
    sandbox_id: str
    log_path: str
    pod_uid: str
    tty: bool = False
    stdin: bool = False


class PodLocator(Protocol):
    """Resolves (namespace, pod, container) for the server; the kubelet implements it.

    ``container`` is None for port-forward (only ``sandbox_id`` matters then). ``previous``
    asks for the previous attempt's log. Raises StreamError (e.g. 404 NotFound, 400 BadRequest
    ``container "c" in pod "p" is waiting to start: ContainerCreating``).
    """

    def locate(self, ns: str, pod: str, container: str | None, *, previous: bool = False) -> Located: ...


# ------------------------------------------------------------------------------ authorization


def subresource_for(path: str) -> tuple[str, str]:
    """(verb, nodes subresource) of a request path, as upstream's kubelet authorizer maps them."""
    if path.startswith("/stats"):
        return "get", "stats"
    if path.startswith(("/containerLogs", "/logs")):
        return "get", "log"
    return "create" if path.startswith(("/exec", "/attach", "/portForward")) else "get", "proxy"


def authorize(identity: tuple[str, list[str]] | None, path: str) -> StreamError | None:
    """None when ``identity`` (user, groups from the client certificate) may call ``path``."""
    if identity is None:
        return StreamError(401, "Unauthorized", "Unauthorized")
    user, groups = identity
    if user in ALLOWED_USERS or ALLOWED_GROUPS.intersection(groups):
        return None
    verb, sub = subresource_for(path)
    return StreamError(403, "Forbidden", f"Forbidden (user={user}, verb={verb}, resource=nodes, subresource={sub})")


def _status_response(err: StreamError) -> web.Response:
    return web.Response(body=orjson.dumps(err.to_status()), status=err.code, content_type="application/json")


def _upgrade_kind(request: web.Request) -> str:
    """"websocket", "spdy" or "" (no upgrade requested)."""
    conn = request.headers.get("Connection", "").lower()
    up = request.headers.get("Upgrade", "").strip().lower()
    if "upgrade" not in conn or not up:
        return ""
    if up == "websocket":
        return "websocket"
    if up.startswith("spdy/3.1"):
        return "spdy"
    return ""


def _offered_ws_protocols(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",") if p.strip()]


# ------------------------------------------------------------------------------ the server


class KubeletServer:
    """See the module docstring. ``port=0`` picks a free port (``self.port`` after start)."""

    def __init__(self, locator: PodLocator, runtime: Runtime, *,
                 stats: Callable[[], Awaitable[dict[str, Any]]] | None = None,
                 ssl_context: ssl.SSLContext | None, host: str = "0.0.0.0", port: int = 10250,
                 client_ca: str | None = None) -> None:
        self.locator = locator
        self.runtime = runtime
        self.stats = stats
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.client_ca = client_ca
        self.sessions: collections.Counter[str] = collections.Counter()
        self.active_streams = 0          # log, exec, attach and port-forward requests in flight
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.ssl_context is not None and self.client_ca:
            ca = self.client_ca
            if ca.lstrip().startswith("-----BEGIN"):
                self.ssl_context.load_verify_locations(cadata=ca)
            else:
                self.ssl_context.load_verify_locations(cafile=ca)
            if self.ssl_context.verify_mode == ssl.CERT_NONE:
                self.ssl_context.verify_mode = ssl.CERT_OPTIONAL
        app = self.make_app()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context, reuse_address=True)
        await site.start()
        if self.port == 0 and site._server is not None:  # type: ignore[attr-defined]
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("kubelet server listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        for t in list(self._handlers):
            t.cancel()
        for t in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def statistics(self) -> dict[str, int]:
        """Streaming sessions served so far, by kind and protocol (e.g. ``exec/websocket/v5.channel.k8s.io``)."""
        return dict(self.sessions)

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/healthz", self._healthz)
        r.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        for verb in ("GET", "POST"):
            r.add_route(verb, "/exec/{ns}/{pod}/{container}", self._exec)
            r.add_route(verb, "/attach/{ns}/{pod}/{container}", self._attach)
            r.add_route(verb, "/portForward/{ns}/{pod}", self._portforward)
        r.add_get("/stats/summary", self._stats_summary)
        return app

    # ----------------------------------------------------------------------------- plumbing
    def _identity(self, request: web.Request) -> tuple[str, list[str]] | None:
        if self.ssl_context is None or not self.client_ca:
            return None
        sslobj = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
        if sslobj is None:
            return None
        from ..pki import identity_from_ssl_object

        return identity_from_ssl_object(sslobj)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        streaming = request.path.startswith(("/containerLogs/", "/exec/", "/attach/", "/portForward/"))
        try:
            if request.path != "/healthz":
                denied = authorize(self._identity(request), request.path)
                if denied is not None:
                    return _status_response(denied)
            if streaming:
                self.active_streams += 1
            try:
                return await handler(request)  # type: ignore[no-any-return]
            finally:
                if streaming:
                    self.active_streams -= 1
        except StreamError as e:
            return _status_response(e)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001 - one place that turns bugs into a Status
            log.exception("kubelet server: error serving %s %s", request.method, request.path)
            return _status_response(StreamError(500, "InternalError", f"{type(e).__name__}: {e}"))
        finally:
            if task is not None:
                self._handlers.discard(task)

    def _locate(self, ns: str, pod: str, container: str | None, *, previous: bool = False) -> Located:
        try:
            return self.locator.locate(ns, pod, container, previous=previous)
        except StreamError:
            raise
        except LookupError as e:
            raise StreamError(404, "NotFound", str(e) or f'pod "{ns}/{pod}" not found') from None

    # ----------------------------------------------------------------------------- handlers
    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _stats_summary(self, request: web.Request) -> web.Response:
        if self.stats is None:
            raise StreamError(503, "ServiceUnavailable", "stats are not available on this node")
        doc = await self.stats()
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        try:
            opts = logs.parse_log_options(request.query, now=time.time())
        except logs.LogOptionsError as e:
            raise StreamError(400, "BadRequest", str(e)) from None
        loc = self._locate(m["ns"], m["pod"], m["container"], previous=opts.previous)

        async def is_running() -> bool:
            if request.transport is None or request.transport.is_closing():
                return False     # the client left: stop following a container that says nothing
            try:
                st = await self.runtime.container_status(loc.container_id)
            except Exception:  # noqa: BLE001 - gone = not running
                return False
            return st.state == ContainerState.RUNNING

        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        try:
            async with contextlib.aclosing(logs.stream_logs(loc.log_path, opts, is_running=is_running)) as chunks:
                async for chunk in chunks:
                    await resp.write(chunk)
            await resp.write_eof()
        except ConnectionError:
            pass   # the client went away
        return resp

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, attach=False)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, attach=True)

    async def _remote_command(self, request: web.Request, *, attach: bool) -> web.StreamResponse:
        m = request.match_info
        kind = "attach" if attach else "exec"
        try:
            opts = remotecommand.parse_exec_options(request.query, attach=attach)
        except ValueError as e:
            raise StreamError(400, "BadRequest", str(e)) from None
        upgrade = _upgrade_kind(request)
        if not upgrade:
            raise StreamError(400, "BadRequest", "Upgrade request required")
        loc = self._locate(m["ns"], m["pod"], m["container"])

        async def start() -> Any:
            if attach:
                return await self.runtime.attach(loc.container_id, stdin=opts.stdin, tty=opts.tty)
            return await self.runtime.exec(loc.container_id, list(opts.command), stdin=opts.stdin, tty=opts.tty)

        if upgrade == "websocket":
            def count(proto: str) -> None:
                self.sessions[f"{kind}/websocket/{proto}"] += 1

            ws, _ = await remotecommand.serve_websocket(request, opts, start, attach=attach, on_negotiated=count)
            return ws
        offered = request.headers.getall("X-Stream-Protocol-Version", [])
        proto = remotecommand.choose_spdy_protocol(offered, remotecommand.SPDY_EXEC_PROTOCOLS)
        if proto is None:
            raise StreamError(403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client supports "
                                                f"{offered}, server supports {list(remotecommand.SPDY_EXEC_PROTOCOLS)}")
        resp, conn = await transport.accept_upgrade(request, [
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", proto)])
        self.sessions[f"{kind}/spdy/{proto}"] += 1
        try:
            await remotecommand.serve_spdy(conn, opts, start, attach=attach)
        finally:
            await conn.close()
        return resp

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        pod = f"{m['ns']}/{m['pod']}"
        upgrade = _upgrade_kind(request)
        if not upgrade:
            raise StreamError(400, "BadRequest", "Upgrade request required")
        loc = self._locate(m["ns"], m["pod"], None)

        async def connect(port: int) -> tuple[Any, Any]:
            return await self.runtime.port_forward(loc.sandbox_id, port)  # type: ignore[return-value]

        if upgrade == "websocket":
            tunnel = wc.SPDY_TUNNEL_PORTFORWARD in _offered_ws_protocols(request)
            ports: list[int] = []
            if not tunnel:
                try:
                    ports = wc.parse_ports(request.query.getall("ports", []))
                except wc.ProtocolError as e:
                    raise StreamError(400, "BadRequest", str(e)) from None
            ws = web.WebSocketResponse(protocols=wc.PORTFORWARD_PROTOCOLS, max_msg_size=16 << 20)
            await ws.prepare(request)
            proto = ws.ws_protocol or ""
            self.sessions[f"portforward/websocket/{proto}"] += 1
            if proto == wc.SPDY_TUNNEL_PORTFORWARD:
                await portforward.serve_spdy(transport.WebSocketTunnel(ws), connect, pod=pod)
            else:
                await portforward.serve_websocket_channels(ws, wc.protocol_for(proto), ports, connect, pod=pod)
            return ws
        offered = request.headers.getall("X-Stream-Protocol-Version", [])
        if remotecommand.choose_spdy_protocol(offered, (PORTFORWARD_SPDY_PROTOCOL,)) is None:
            raise StreamError(403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client supports "
                                                f"{offered}, server supports [{PORTFORWARD_SPDY_PROTOCOL}]")
        resp, conn = await transport.accept_upgrade(request, [
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", PORTFORWARD_SPDY_PROTOCOL)])
        self.sessions["portforward/spdy/" + PORTFORWARD_SPDY_PROTOCOL] += 1
        try:
            await portforward.serve_spdy(conn, connect, pod=pod)
        finally:
            await conn.close()
        return resp


# ------------------------------------------------------------------------------ TLS material


def ensure_kubelet_serving_cert(directory: str | Path, node_name: str, ips: list[str]) -> tuple[Path, Path]:
    """A self-signed serving certificate ``kubelet.crt``/``kubelet.key`` in ``directory``.

    Covers ``node_name``, ``localhost``, the host name, ``127.0.0.1`` and ``ips``; made again
    when it no longer covers them or has expired. Blocking (file and CPU work).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = d / "kubelet.crt", d / "kubelet.key"
    dns = sorted({n for n in (node_name, "localhost", socket.gethostname()) if n})
    addrs = sorted({ipaddress.ip_address(a) for a in ["127.0.0.1", *ips] if a}, key=str)
    now = dt.datetime.now(dt.timezone.utc)
    if cert_path.exists() and key_path.exists():
        try:
            cur = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = cur.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            if (set(dns) <= set(san.get_values_for_type(x509.DNSName))
                    and set(addrs) <= set(san.get_values_for_type(x509.IPAddress))
                    and cur.not_valid_after_utc > now + dt.timedelta(days=1)):
                return cert_path, key_path
        except (ValueError, x509.ExtensionNotFound):
            pass
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@{int(now.timestamp())}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVING_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns] + [x509.IPAddress(a) for a in addrs]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    for path, data, mode in ((key_path, key_pem, 0o600), (cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)):
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    return cert_path, key_path


def kubelet_server_ssl_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A serving context for KubeletServer (it adds the client CA itself from ``client_ca``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx
