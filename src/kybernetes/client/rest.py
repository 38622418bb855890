"""The async REST client every component uses to talk to the API server (and nothing else does).

    async with ApiClient.from_kubeconfig("/etc/kyb/scheduler.kubeconfig") as api:
        pod = await api.get(PODS, "web-1", "default")
        await api.patch_status(PODS, "web-1", {"status": {"phase": "Running"}}, "default")
        async with contextlib.aclosing(api.watch(PODS, resource_version=rv)) as events:
            async for typ, obj in events:          # ("ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK", obj)
                ...

* One aiohttp session per client (created on first use), closed by ``close()`` / ``async with``.
* Every request has a deadline (``timeout``, default 30 s); a passed deadline raises
  ``RequestTimeout``. Failure answers raise the typed errors of ``client.errors``.
* Retries with jittered exponential back-off: connection refused (nothing was sent) for every verb;
  429 for every verb (honouring ``Retry-After``); 5xx, resets and timeouts only for idempotent verbs
  (GET, HEAD, PUT, DELETE).
* Watches use a server-side ``timeoutSeconds``, ask for bookmarks, and raise ``WatchInactive`` when
  nothing arrives for ``inactivity_timeout`` seconds; an expired resourceVersion raises ``Expired``
  (at start or as an ERROR event mid-stream). Watches are never retried here: the reflector relists.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
import orjson

from ..util.backoff import Backoff
from ..util.clock import Clock, RealClock
from .errors import (
    ApiError,
    RequestTimeout,
    TooManyRequests,
    TransportError,
    WatchInactive,
    error_from_status,
)
from .resources import Resource

log = logging.getLogger(__name__)
Obj = dict[str, Any]

ObjList = list[Obj]
PatchType = Literal["merge", "json", "strategic", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_USER_AGENT = "kybernetes/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried."""

    attempts: int = 5            # total tries, first one included
    initial: float = 0.1         # first back-off delay (seconds)
    maximum: float = 5.0         # back-off cap
    jitter: float = 0.5
    max_retry_after: float = 30.0  # cap on a server's Retry-After

    def backoff(self) -> Backoff:
        return Backoff(initial=self.initial, maximum=self.maximum, jitter=self.jitter)


NO_RETRY = RetryPolicy(attempts=1)


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]


class ApiClient:
    """An async client for one API server (see the module docstring)."""

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Clock | None = None,
        connection_limit: int = 100,
    ) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.clock: Clock = clock or RealClock()
        self._ssl = ssl_context
        self._headers: dict[str, str] = {"Accept": "application/json", "User-Agent": user_agent}
        self._headers.update(headers or {})
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._limit = connection_limit
        self._session: aiohttp.ClientSession | None = None
        self._retiring: set[asyncio.Task[None]] = set()   # sessions closing after a certificate change
        self._closed = False
        self.requests_sent = 0
        self.retries = 0

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str | None = None, **kw: Any) -> ApiClient:
        """A client for the kubeconfig's (current) context: server, CA, client cert and/or token.

        Reads small files synchronously: call it at start-up, not from a hot path.
        """
        from ..pki.kubeconfig import client_ssl_context_from_kubeconfig

        server, sslctx, headers = client_ssl_context_from_kubeconfig(path, context)
        merged = {**headers, **dict(kw.pop("headers", None) or {})}
        return cls(server, ssl_context=sslctx, headers=merged, **kw)

    # -- lifecycle ------------------------------------------------------------------------------
    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("ApiClient is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True,
                                             limit=self._limit)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout),
            )
        return self._session

    async def close(self) -> None:
        self._closed = True
        for task in list(self._retiring):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def set_client_certificate(self, cert_pem: bytes, key_pem: bytes, *, drain: float = 60.0) -> None:
        """Present a new client certificate from now on (a kubelet's rotated identity): new
        connections use it; the connections open now keep serving their requests and watches for
        ``drain`` seconds, then close (their watches reconnect with the new certificate)."""
        from ..pki.kubeconfig import load_client_cert

        if self._ssl is None:
            raise RuntimeError("this client has no TLS context to hold a client certificate")
        await asyncio.to_thread(load_client_cert, self._ssl, cert_pem, key_pem)
        old, self._session = self._session, None
        if old is not None:
            async def retire() -> None:
                try:
                    await asyncio.sleep(drain)
                finally:
                    await old.close()
            task = asyncio.ensure_future(retire())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- the one request path -------------------------------------------------------------------
    async def _send_once(self, method: str, path: str, params: dict[str, str], data: bytes | None,
                         headers: dict[str, str], timeout: float) -> _Answer:
        session = self._get_session()
        self.requests_sent += 1
        try:
            async with asyncio.timeout(timeout):
                async with session.request(method, self.server + path, params=params, data=data,
                                           headers=headers) as resp:
                    body = await resp.read()
                    return _Answer(resp.status, body, resp.headers)
        except TimeoutError as e:
            raise RequestTimeout(f"{method} {path}: no answer within {timeout}s") from e
        except (aiohttp.ClientError, OSError) as e:
            raise TransportError(f"{method} {path}: {e!r}") from e

    def _retry_delay(self, err: Exception, method: str, idempotent: bool, backoff: Backoff) -> float | None:
        """Seconds to wait before retrying after ``err``, or None to give up."""
        if isinstance(err, TooManyRequests) or (isinstance(err, ApiError) and err.code >= 500 and idempotent):
            if err.retry_after is not None:
                backoff.next()
                return min(err.retry_after, self.retry.max_retry_after)
            return backoff.next()
        if isinstance(err, TransportError):
            cause = err.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) or idempotent:
                return backoff.next()
        return None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        idempotent: bool | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request (with retries); return the decoded JSON answer (``raw``: the bytes).

        Use for subresources without a helper: ``request("POST", PODS.path(ns, name, "binding"),
        body=binding)``. ``body`` is JSON-encoded; ``data`` is sent as is.
        """
        method = method.upper()
        if body is not None and data is None:
            data = orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        idem = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        backoff = self.retry.backoff()
        q = _params(params)
        for attempt in range(1, self.retry.attempts + 1):
            try:
                ans = await self._send_once(method, path, q, data, headers, timeout or self.timeout)
                if ans.status >= 400:
                    raise error_from_status(ans.status, _decode(ans.body), ans.headers)
                return ans.body if raw else _decode(ans.body)
            except (ApiError, TransportError) as err:
                delay = self._retry_delay(err, method, idem, backoff)
                if delay is None or attempt >= self.retry.attempts:
                    raise
                self.retries += 1
                log.debug("retrying %s %s in %.2fs after %r", method, path, delay, err)
                await self.clock.sleep(delay)
        raise AssertionError("unreachable")

    # -- verbs ----------------------------------------------------------------------------------
    @staticmethod
    def _ns(res: Resource, namespace: str | None, obj: Mapping[str, Any] | None = None) -> str | None:
        if not res.namespaced:
            return None
        ns = namespace or ((obj or {}).get("metadata") or {}).get("namespace")
        if not ns:
            raise ValueError(f"{res}: a namespace is required")
        return str(ns)

    @staticmethod
    def _name(obj: Mapping[str, Any]) -> str:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("object has no metadata.name")
        return str(name)

    async def get(self, res: Resource, name: str, namespace: str | None = None, *,
                  subresource: str | None = None, params: Mapping[str, Any] | None = None) -> Obj:
        result: Obj = await self.request("GET", res.path(self._ns(res, namespace), name, subresource),
                                         params=params)
        return result

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None,
                   resource_version: str | None = None,
                   resource_version_match: str | None = None) -> Obj:
        """One page of a list (the ``*List`` document). ``namespace=None``: all namespaces."""
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "limit": limit or None, "continue": continue_token,
                  "resourceVersion": resource_version, "resourceVersionMatch": resource_version_match}
        path = res.path(namespace if res.namespaced else None)
        result: Obj = await self.request("GET", path, params=params)
        return result

    async def list_all(self, res: Resource, namespace: str | None = None, *,
                       label_selector: str | None = None, field_selector: str | None = None,
                       page_size: int = 500) -> tuple[ObjList, str]:
        """Every item, following ``continue`` tokens; returns (items, list resourceVersion)."""
        items: list[Obj] = []
        token: str | None = None
        rv = ""
        while True:
            page = await self.list(res, namespace, label_selector=label_selector,
                                   field_selector=field_selector, limit=page_size, continue_token=token)
            items.extend(page.get("items") or [])
            md = page.get("metadata") or {}
            rv = rv or str(md.get("resourceVersion") or "")
            token = md.get("continue") or None
            if not token:
                return items, rv

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None, *,
                     dry_run: bool = False, field_manager: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> Obj:
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        path = res.path(self._ns(res, namespace, obj), name, subresource)
        result: Obj = await self.request("POST", path, body=obj, params=params)
        return result

    async def update(self, res: Resource, obj: Obj, namespace: str | None = None, *,
                     subresource: str | None = None, dry_run: bool = False,
                     field_manager: str | None = None) -> Obj:
        """PUT the object (its ``metadata.resourceVersion`` makes it a compare-and-swap)."""
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        path = res.path(self._ns(res, namespace, obj), self._name(obj), subresource)
        result: Obj = await self.request("PUT", path, body=obj, params=params)
        return result

    async def update_status(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        return await self.update(res, obj, namespace, subresource="status")

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None,
                    dry_run: bool = False) -> Obj:
        """PATCH with ``patch_type`` merge (default), json, strategic or apply (server-side apply)."""
        ctype = PATCH_CONTENT_TYPES[patch_type]
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = {"fieldManager": field_manager, "force": force, "dryRun": "All" if dry_run else None}
        path = res.path(self._ns(res, namespace), name, subresource)
        result: Obj = await self.request("PATCH", path, body=patch, content_type=ctype, params=params)
        return result

    async def patch_status(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
                           patch_type: PatchType = "merge") -> Obj:
        return await self.patch(res, name, patch, namespace, patch_type=patch_type, subresource="status")

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None, dry_run: bool = False) -> Obj:
        """DELETE; returns the server's answer (a Status, or the object for some kinds)."""
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            opts["preconditions"] = dict(preconditions)
        if dry_run:
            opts["dryRun"] = ["All"]
        result: Obj = await self.request("DELETE", res.path(self._ns(res, namespace), name), body=opts)
        return result

    async def delete_collection(self, res: Resource, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None) -> Obj:
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None}
        path = res.path(namespace if res.namespaced else None)
        result: Obj = await self.request("DELETE", path, params=params)
        return result

    # -- watch ----------------------------------------------------------------------------------
    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
        inactivity_timeout: float = 90.0,
    ) -> AsyncGenerator[tuple[str, Obj], None]:
        """Stream ``(type, object)`` events until the server ends the watch.

        Types: ADDED, MODIFIED, DELETED, BOOKMARK (object carries only metadata.resourceVersion).
        An ERROR event or a failed start raises the typed ``ApiError`` (``Expired`` for 410).
        Close early with ``contextlib.aclosing`` so the connection is released at once.
        """
        params = _params({
            "watch": True, "resourceVersion": resource_version, "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None, "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": allow_bookmarks or None,
        })
        path = res.path(namespace if res.namespaced else None)
        session = self._get_session()
        self.requests_sent += 1
        try:
            async with asyncio.timeout(self.timeout):
                resp = await session.request("GET", self.server + path, params=params)
        except TimeoutError as e:
            raise RequestTimeout(f"watch {path}: no answer within {self.timeout}s") from e
        except (aiohttp.ClientError, OSError) as e:
            raise TransportError(f"watch {path}: {e!r}") from e
        try:
            if resp.status != 200:
                body = await resp.read()
                raise error_from_status(resp.status, _decode(body), resp.headers)
            async for typ, obj in _watch_lines(resp, inactivity_timeout, path):
                yield typ, obj
        finally:
            resp.close()


async def _watch_lines(resp: aiohttp.ClientResponse, inactivity: float,
                       path: str) -> AsyncIterator[tuple[str, Obj]]:
    """Split the chunked body into JSON lines (no line-length limit) and decode events."""
    buf = b""
    while True:
        try:
            async with asyncio.timeout(inactivity):
                chunk = await resp.content.readany()
        except TimeoutError as e:
            raise WatchInactive(f"watch {path}: nothing received for {inactivity}s") from e
        except (aiohttp.ClientError, OSError) as e:
            raise TransportError(f"watch {path}: {e!r}") from e
        if not chunk:
            if buf.strip():
                yield _event(buf)
            return
        buf += chunk
        while True:
            line, sep, rest = buf.partition(b"\n")
            if not sep:
                break
            buf = rest
            if line.strip():
                yield _event(line)


def _event(line: bytes) -> tuple[str, Obj]:
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise TransportError(f"watch: undecodable event {line[:200]!r}") from e
    typ = str(ev.get("type") or "")
    obj = ev.get("object") or {}
    if typ == "ERROR":
        raise error_from_status(int(obj.get("code") or 500), obj)
    return typ, obj
