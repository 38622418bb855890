"""Pod subresources served by the pod's kubelet: log, exec, attach, portforward.

    GET  .../pods/{name}/log           checked here (container choice, "waiting to start"), then
                                       the kubelet's /containerLogs stream is copied chunk by chunk
    GET|POST .../pods/{name}/exec      the upgrade request (WebSocket or SPDY/3.1) is replayed to
    GET|POST .../pods/{name}/attach    the kubelet's /exec, /attach or /portForward and, once it
    GET|POST .../pods/{name}/portforward   answers 101, both connections are piped byte for byte:
                                       the negotiated subprotocol, WebSocket frames, pings and
                                       SPDY sessions pass through untouched (as upstream's
                                       upgrade-aware proxy does).

The kubelet is reached with ``ApiServer.config.kubelet_client`` (a KubeletClient); without one
these subresources answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from ..api import errors
from ..streams import transport
from .kubeletclient import KubeletClient, upgrade_error_body

if TYPE_CHECKING:
    from .app import ApiServer

Obj = dict[str, Any]

LOG_PARAMS = ("follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes")
# request headers replayed to the kubelet, and response headers of its 101 passed back
UPGRADE_REQUEST_HEADERS = frozenset({"connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
                                     "sec-websocket-protocol", "sec-websocket-extensions", "x-stream-protocol-version"})
UPGRADE_RESPONSE_HEADERS = frozenset({"connection", "upgrade", "sec-websocket-accept", "sec-websocket-protocol",
                                      "sec-websocket-extensions", "x-stream-protocol-version"})
DISCONNECT_POLL = 1.0   # seconds between checks that a log follower is still connected


# --------------------------------------------------------------------------------- decisions


def container_names(pod: Obj) -> tuple[list[str], list[str], list[str]]:
    """(containers, init containers, ephemeral containers) of a pod, by name."""
    spec = pod.get("spec") or {}
    names = [[c.get("name", "") for c in spec.get(k) or []] for k in ("containers", "initContainers", "ephemeralContainers")]
    return names[0], names[1], names[2]


def choose_container(pod: Obj, requested: str | None) -> str:
    """The container a request is for; the only one when none is named (400 otherwise)."""
    name = (pod.get("metadata") or {}).get("name", "")
    regular, init, ephemeral = container_names(pod)
    if not requested:
        if len(regular) == 1:
            return regular[0]
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(regular)}]"
        if init:
            msg += f" or one of the init containers: [{' '.join(init)}]"
        if ephemeral:
            msg += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise errors.bad_request(msg)
    if requested not in regular + init + ephemeral:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _container_status(pod: Obj, container: str) -> Obj | None:
    st = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in st.get(key) or []:
            if cs.get("name") == container:
                return dict(cs)
    return None


def check_log_target(pod: Obj, container: str, previous: bool) -> None:
    """400 when the container has no log to show yet (the kubelet's checks, from pod status)."""
    name = (pod.get("metadata") or {}).get("name", "")
    cs = _container_status(pod, container)
    state = (cs or {}).get("state") or {}
    last = (cs or {}).get("lastState") or {}
    if previous:
        if last.get("terminated") is None:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return
    if any(x is not None for x in (state.get("running"), state.get("terminated"), last.get("terminated"))):
        return
    reason = ((state.get("waiting") or {}).get("reason")) or "ContainerCreating"
    if reason == "ErrImagePull":
        reason = "image can't be pulled"
    elif reason == "ImagePullBackOff":
        reason = "trying and failing to pull image"
    raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')


def log_query(query: Any) -> list[tuple[str, str]]:
    """The kubelet query for pods/log: the known parameters, in order."""
    return [(k, v) for k, v in query.items() if k in LOG_PARAMS]


# --------------------------------------------------------------------------------- I/O


async def proxy(server: ApiServer, request: web.Request, pod: Obj, sub: str) -> web.StreamResponse:
    """Serve ``pods/<sub>`` for ``pod`` through its kubelet (see the module docstring)."""
    md = pod.get("metadata") or {}
    ns, name = md.get("namespace", ""), md.get("name", "")
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    q = request.query
    if sub == "log":
        if request.method != "GET":
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        container = choose_container(pod, q.get("container"))
        if not node_name:
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        check_log_target(pod, container, q.get("previous", "").lower() in ("true", "1"))
        kc, node = await _kubelet_for(server, node_name)
        return await _proxy_logs(request, kc, node, f"/containerLogs/{ns}/{name}/{container}", log_query(q))
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    if sub in ("exec", "attach"):
        container = choose_container(pod, q.get("container"))
        path = f"/{sub}/{ns}/{name}/{container}"
        query = [(k, v) for k, v in q.items() if k != "container"]
    else:
        path = f"/portForward/{ns}/{name}"
        query = list(q.items())
    if "upgrade" not in request.headers.get("Connection", "").lower() or not request.headers.get("Upgrade"):
        raise errors.bad_request("Upgrade request required")
    if not node_name:
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    kc, node = await _kubelet_for(server, node_name)
    return await _relay_upgrade(request, kc, node, path, query)


async def _kubelet_for(server: ApiServer, node_name: str) -> tuple[KubeletClient, Obj]:
    kc = getattr(server.config, "kubelet_client", None)
    if kc is None:
        raise errors.StatusError(503, "ServiceUnavailable", "the API server has no kubelet client configured")
    info = server.registry.lookup("", "v1", "nodes")
    assert info is not None
    try:
        node = await server.api.get(info, "", node_name)
    except errors.StatusError as e:
        if e.code == 404:
            raise errors.StatusError(503, "ServiceUnavailable", f'node "{node_name}" not found') from None
        raise
    return kc, node


async def _proxy_logs(request: web.Request, kc: KubeletClient, node: Obj, path: str,
                      query: list[tuple[str, str]]) -> web.StreamResponse:
    async with kc.stream_get(node, path, query) as upstream:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)

        async def copy() -> None:
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()

        task = asyncio.ensure_future(copy())
        try:
            # a followed log can stay silent for hours: notice a client that left meanwhile
            while not task.done():
                await asyncio.wait({task}, timeout=DISCONNECT_POLL)
                if request.transport is None or request.transport.is_closing():
                    break
            if task.done() and not task.cancelled():
                task.result()
        except (ConnectionError, aiohttp.ClientPayloadError):
            pass   # the client or the kubelet went away: nothing more to say on a started stream
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return resp


async def _relay_upgrade(request: web.Request, kc: KubeletClient, node: Obj, path: str,
                         query: list[tuple[str, str]]) -> web.StreamResponse:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() in UPGRADE_REQUEST_HEADERS]
    up = await kc.open_upgrade(node, request.method, path, query, headers)
    if up.status != 101 or up.conn is None:
        status = dict(upgrade_error_body(up))
        raise errors.StatusError(int(status.get("code") or up.status), str(status.get("reason") or "InternalError"),
                                 str(status.get("message") or ""), status.get("details") or {})
    echo = [(k, v) for k, v in up.headers if k.lower() in UPGRADE_RESPONSE_HEADERS]
    try:
        resp, conn = await transport.accept_upgrade(request, echo)
    except BaseException:
        await up.conn.close()
        raise
    await transport.pipe(conn, up.conn)
    return resp
