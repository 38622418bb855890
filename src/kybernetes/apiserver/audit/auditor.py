"""The audit hook into the API server's aiohttp app.

Every request gets an audit ID (the client's ``Audit-ID`` header when it sent one, else a new
UUID), returned as the ``Audit-Id`` response header whether or not auditing is on. With a
policy and a log configured, the :class:`Auditor` writes the request's events:

* ``outer`` (the first middleware) wraps everything, so it sees the final response, including
  401s from authentication and 403s from authorization; it writes ``ResponseComplete``, or
  ``Panic`` when a handler failed with an unexpected exception (a bug: the app answers it with a
  500 InternalError) or an exception escaped every handler;
* ``inner`` (the last middleware) runs once the request is authenticated, writes
  ``RequestReceived`` and notes unexpected exceptions of the handler; requests refused before reaching it get their ``RequestReceived`` at
  completion, with the same timestamps;
* ``on_response_prepare`` (an app signal) sets the header and, for long-running requests
  (watch, exec, attach, port-forward, logs, proxy), writes ``ResponseStarted``.

The policy is evaluated once per request, with the authenticated user. Request bodies are read
(from aiohttp's cached copy) only at level Request and above, or to name the object of a create;
response bodies are decoded only at RequestResponse. Other components add annotations with
:func:`annotate` (e.g. ``authorization.k8s.io/decision``); they appear from Metadata level on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from ...api import errors
from ..authn import USER_INFO_KEY, UserInfo
from ..authz.attributes import Attributes, from_request
from . import event as ev
from .backend import LogBackend, LogOptions
from .policy import NONE, REQUEST, REQUEST_RESPONSE, Policy, RequestAuditConfig, evaluate, level_at_least

log = logging.getLogger(__name__)

AUDIT_ID_HEADER = "Audit-Id"
ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))


@dataclass
class AuditConfig:
    """What ``--audit-policy-file`` and ``--audit-log-*`` configure (None policy: no events)."""

    policy: Policy | None = None
    log: LogOptions | None = None


@dataclass
class AuditContext:
    """Per-request audit state, kept on the request under ``AUDIT_KEY``."""

    audit_id: str
    received: float
    annotations: dict[str, str] = field(default_factory=dict)
    attrs: Attributes | None = None
    config: RequestAuditConfig | None = None
    user: UserInfo | None = None
    received_logged: bool = False
    started_logged: bool = False
    panicked: bool = False


AUDIT_KEY = web.RequestKey("audit", AuditContext)


def annotate(request: web.Request, key: str, value: str) -> None:
    """Add an annotation to the request's audit events (the first value for a key wins)."""
    ctx = request.get(AUDIT_KEY)
    if ctx is None:
        return
    if key in ctx.annotations and ctx.annotations[key] != value:
        log.warning("audit: annotation %r already set to %r; ignoring %r", key, ctx.annotations[key], value)
        return
    ctx.annotations[key] = value


def audit_id_of(request: web.Request) -> str | None:
    ctx = request.get(AUDIT_KEY)
    return ctx.audit_id if ctx is not None else None


class Auditor:
    def __init__(self, config: AuditConfig | None) -> None:
        config = config or AuditConfig()
        self.policy = config.policy
        self.backend = LogBackend(config.log) if config.log is not None and config.policy is not None else None
        self.panics = 0

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._on_prepare)

    async def start(self) -> None:
        if self.backend is not None:
            await self.backend.start()

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()

    def statistics(self) -> dict[str, int]:
        stats = self.backend.statistics() if self.backend is not None else {}
        return {**stats, "panics": self.panics}

    # -- middlewares ----------------------------------------------------------------------------
    @web.middleware
    async def outer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        audit_id = (request.headers.get("Audit-ID") or "").strip() or str(uuid.uuid4())
        ctx = AuditContext(audit_id, time.time())
        request[AUDIT_KEY] = ctx
        if self.backend is None:
            return await handler(request)  # type: ignore[no-any-return]
        try:
            resp = await handler(request)
        except web.HTTPException as e:  # aiohttp's own answers (redirects, 413 ...)
            await self._complete(request, ctx, e.status, None, e)
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            await self._complete(request, ctx, 500, None, None, panic=True)
            raise
        await self._complete(request, ctx, resp.status, resp, resp, panic=ctx.panicked)
        return resp  # type: ignore[no-any-return]

    @web.middleware
    async def inner(self, request: web.Request, handler: Any) -> web.StreamResponse:
        ctx = request.get(AUDIT_KEY)
        if self.backend is None or ctx is None:
            return await handler(request)  # type: ignore[no-any-return]
        if not ctx.received_logged:
            await self._received(request, ctx, authenticated=True)
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except (errors.StatusError, web.HTTPException, asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            # a bug in a handler (the app turns it into a 500 InternalError): upstream's Panic stage
            ctx.panicked = True
            raise

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        ctx = request.get(AUDIT_KEY)
        if ctx is None:
            return
        response.headers[AUDIT_ID_HEADER] = ctx.audit_id
        if self.backend is None or ctx.started_logged or isinstance(response, web.Response):
            return  # only streamed (long-running) responses have a ResponseStarted stage
        cfg = self._evaluate(request, ctx, authenticated=USER_INFO_KEY in request)
        assert ctx.attrs is not None
        if cfg.level == NONE or not ev.is_long_running(ctx.attrs):
            return
        ctx.started_logged = True
        if "ResponseStarted" not in cfg.omit_stages:
            await self._emit(request, ctx, "ResponseStarted", ev.response_status(response.status, None))

    # -- stages -------------------------------------------------------------------------------
    def _evaluate(self, request: web.Request, ctx: AuditContext, *, authenticated: bool) -> RequestAuditConfig:
        if ctx.config is None:
            user = request.get(USER_INFO_KEY)
            if user is None and authenticated:
                user = ANONYMOUS  # public paths (/healthz, /livez, /readyz) skip authentication
            ctx.user = user
            ctx.attrs = from_request(user or UserInfo(""), request.method, request.path, request.query)
            assert self.policy is not None
            ctx.config = evaluate(self.policy, ctx.attrs, authenticated=user is not None)
        return ctx.config

    async def _received(self, request: web.Request, ctx: AuditContext, *, authenticated: bool) -> None:
        cfg = self._evaluate(request, ctx, authenticated=authenticated)
        ctx.received_logged = True
        if cfg.level != NONE and "RequestReceived" not in cfg.omit_stages:
            await self._emit(request, ctx, "RequestReceived", None, now=ctx.received)

    async def _complete(self, request: web.Request, ctx: AuditContext, code: int, resp: web.StreamResponse | None,
                        body_source: Any, *, panic: bool = False) -> None:
        try:
            if not ctx.received_logged:
                # refused before the inner middleware: 401 (no user) or 403 (authorization)
                await self._received(request, ctx, authenticated=USER_INFO_KEY in request or code != 401)
            cfg = self._evaluate(request, ctx, authenticated=ctx.user is not None)
            stage = "Panic" if panic else "ResponseComplete"
            if panic:
                self.panics += 1
            if cfg.level == NONE or stage in cfg.omit_stages:
                return
            body = _json_body(body_source) if code >= 400 or level_at_least(cfg.level, REQUEST_RESPONSE) else None
            status = ev.response_status(code, body)
            request_object = await self._request_object(request, ctx, cfg)
            response_object = None
            if level_at_least(cfg.level, REQUEST_RESPONSE) and isinstance(resp, web.Response):
                response_object = body
            await self._emit(request, ctx, stage, status, request_object=request_object,
                             response_object=response_object)
        except Exception:  # noqa: BLE001 - auditing must never turn a served request into an error
            log.exception("audit: could not record %s %s", request.method, request.path)

    async def _request_object(self, request: web.Request, ctx: AuditContext, cfg: RequestAuditConfig) -> Any:
        """The decoded request body, when the level logs it or a create needs its name."""
        if ctx.user is None:  # failed authentication: its body is not read, let alone logged
            return None
        attrs = ctx.attrs
        wanted = level_at_least(cfg.level, REQUEST) or (attrs is not None and attrs.verb == "create" and not attrs.name)
        if not wanted or request.method in ("GET", "HEAD"):
            return None
        try:
            raw = await request.read()
        except web.HTTPException:
            return None
        if not raw:
            return None
        obj = _decode(raw, request.headers.get("Content-Type", ""))
        if not level_at_least(cfg.level, REQUEST):
            # Metadata level: only the name and namespace, for objectRef; never the body itself
            md = obj.get("metadata") if isinstance(obj, dict) else None
            return {"metadata": {k: md[k] for k in ("name", "namespace") if k in md}} if isinstance(md, dict) else None
        return obj

    async def _emit(self, request: web.Request, ctx: AuditContext, stage: str, status: dict[str, Any] | None,
                    *, now: float | None = None, request_object: Any = None, response_object: Any = None) -> None:
        assert self.backend is not None and ctx.config is not None and ctx.attrs is not None
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        remote = peer[0] if isinstance(peer, tuple) and peer else request.remote
        event = ev.build_event(
            level=ctx.config.level, stage=stage, audit_id=ctx.audit_id, request_uri=request.path_qs,
            attrs=ctx.attrs, user=ctx.user, source=ev.source_ips(request.headers, remote),
            user_agent=request.headers.get("User-Agent", ""), received=ctx.received,
            now=time.time() if now is None else now, status=status, request_object=request_object,
            response_object=response_object, annotations=ctx.annotations,
            omit_managed_fields=ctx.config.omit_managed_fields,
        )
        await self.backend.emit(event)


def _json_body(source: Any) -> Any:
    """The decoded JSON (or protobuf) body of a finished response, if it has one."""
    body = getattr(source, "body", None)
    if not isinstance(body, (bytes, bytearray)) or not body:
        return None
    return _decode(bytes(body), getattr(source, "content_type", "") or "")


def _decode(raw: bytes, content_type: str) -> Any:
    ct = content_type.split(";", 1)[0].strip().lower()
    try:
        if ct == "application/vnd.kubernetes.protobuf":
            from ...api import protobuf

            return protobuf.decode(raw)
        if ct in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            import yaml

            return yaml.safe_load(raw.decode("utf-8"))
        return orjson.loads(raw)
    except Exception:  # noqa: BLE001 - not a decodable body: log none
        return None
