"""ApiClient against the real in-process API server (and a few scripted HTTP servers)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kybernetes.apiserver import handlers
from kybernetes.client import errors as e
from kybernetes.client.resources import CONFIGMAPS, NAMESPACES, PODS
from kybernetes.client.rest import ApiClient, RetryPolicy
from tests.conftest import free_port

from .conftest import cm

pytestmark = pytest.mark.integration


async def test_crud_and_typed_errors(client: ApiClient) -> None:
    created = await client.create(CONFIGMAPS, cm("a"))
    assert created["metadata"]["uid"] and created["data"] == {"k": "a"}
    with pytest.raises(e.AlreadyExists):
        await client.create(CONFIGMAPS, cm("a"))
    got = await client.get(CONFIGMAPS, "a", "default")
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    got["data"]["k"] = "b"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"]["k"] == "b"
    with pytest.raises(e.Conflict):
        await client.update(CONFIGMAPS, got)           # stale resourceVersion

    merged = await client.patch(CONFIGMAPS, "a", {"data": {"x": "1"}}, "default")
    assert merged["data"] == {"k": "b", "x": "1"}
    jp = await client.patch(CONFIGMAPS, "a", [{"op": "remove", "path": "/data/x"}], "default", patch_type="json")
    assert jp["data"] == {"k": "b"}
    smp = await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"l": "v"}}}, "default", patch_type="strategic")
    assert smp["metadata"]["labels"] == {"l": "v"}

    with pytest.raises(e.Invalid) as inv:
        await client.create(CONFIGMAPS, cm("Bad_Name"))
    assert inv.value.code == 422 and inv.value.causes
    with pytest.raises(e.NotFound):
        await client.get(CONFIGMAPS, "nope", "default")
    with pytest.raises(ValueError):
        await client.get(CONFIGMAPS, "a")               # namespaced needs a namespace

    await client.delete(CONFIGMAPS, "a", "default")
    with pytest.raises(e.NotFound):
        await client.delete(CONFIGMAPS, "a", "default")


async def test_status_subresource_and_cluster_scope(client: ApiClient) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await client.create(PODS, pod)
    out = await client.patch_status(PODS, "p", {"status": {"phase": "Running"}}, "default")
    assert out["status"]["phase"] == "Running"
    cur = await client.get(PODS, "p", "default")
    cur["status"]["phase"] = "Succeeded"
    out = await client.update_status(PODS, cur)
    assert out["status"]["phase"] == "Succeeded"
    ns = await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert "namespace" not in ns["metadata"]
    names = [n["metadata"]["name"] for n in (await client.list(NAMESPACES))["items"]]
    assert "team-a" in names


async def test_list_paging_and_selectors(client: ApiClient) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, cm(f"c{i}", app="web" if i % 2 else "db"))
    page = await client.list(CONFIGMAPS, "default", limit=2)
    assert len(page["items"]) == 2 and page["metadata"].get("continue")
    items, rv = await client.list_all(CONFIGMAPS, "default", page_size=2)
    assert sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith("c")) == [f"c{i}" for i in range(5)]
    assert int(rv) > 0
    web_items = (await client.list(CONFIGMAPS, "default", label_selector="app=web"))["items"]
    assert sorted(i["metadata"]["name"] for i in web_items) == ["c1", "c3"]
    one = (await client.list(CONFIGMAPS, "default", field_selector="metadata.name=c4"))["items"]
    assert [i["metadata"]["name"] for i in one] == ["c4"]
    await client.delete_collection(CONFIGMAPS, "default", label_selector="app=db")
    left = (await client.list(CONFIGMAPS, "default", label_selector="app"))["items"]
    assert sorted(i["metadata"]["name"] for i in left) == ["c1", "c3"]


async def test_watch_events_and_bookmarks(client: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "BOOKMARK_INTERVAL", 0.1)
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    bookmarks = 0

    async def consume() -> None:
        nonlocal bookmarks
        async with contextlib.aclosing(client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=10)) as w:
            async for typ, obj in w:
                if typ == "BOOKMARK":
                    bookmarks += 1
                    assert int(obj["metadata"]["resourceVersion"]) >= int(rv)
                else:
                    seen.append((typ, obj["metadata"]["name"]))
                if ("DELETED", "w") in seen and bookmarks >= 1:
                    return

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    await client.create(CONFIGMAPS, cm("w"))
    await client.patch(CONFIGMAPS, "w", {"data": {"z": "1"}}, "default")
    await client.delete(CONFIGMAPS, "w", "default")
    await asyncio.wait_for(task, 5)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_watch_ends_at_server_timeout(client: ApiClient) -> None:
    rv = (await client.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
    events = [ev async for ev in client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=1)]
    assert all(t == "BOOKMARK" for t, _ in events)


async def test_watch_expired_after_compaction(client: ApiClient, api: Any) -> None:
    first = await client.create(CONFIGMAPS, cm("old"))
    for i in range(3):
        await client.create(CONFIGMAPS, cm(f"n{i}"))
    store = api.server.store
    await store.compact(await store.current_revision())
    with pytest.raises(e.Expired) as exc:
        async for _ in client.watch(CONFIGMAPS, "default", resource_version=first["metadata"]["resourceVersion"]):
            pass
    assert exc.value.code == 410


# -- scripted servers: retries, timeouts, inactivity ------------------------------------------------

@contextlib.asynccontextmanager
async def scripted(handler: Any) -> Any:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


def status(code: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                              "reason": reason, "message": reason}, status=code, headers=headers)


async def test_retries_429_honouring_retry_after_for_any_verb() -> None:
    calls: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) < 3:
            return status(429, "TooManyRequests", {"Retry-After": "0"})
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})

    async with scripted(handler) as base, ApiClient(base, retry=RetryPolicy(attempts=4, initial=5.0)) as c:
        out = await c.create(CONFIGMAPS, cm("x"))
        assert out["metadata"]["name"] == "x" and len(calls) == 3
        assert calls[-1] - calls[0] < 1.0          # Retry-After: 0 beat the 5 s back-off
        assert c.retries == 2


async def test_5xx_retried_only_for_idempotent_verbs() -> None:
    calls = {"GET": 0, "POST": 0}

    async def handler(request: web.Request) -> web.Response:
        calls[request.method] += 1
        return status(503, "ServiceUnavailable")

    async with scripted(handler) as base, ApiClient(base, retry=RetryPolicy(attempts=3, initial=0.01)) as c:
        with pytest.raises(e.ServiceUnavailable):
            await c.get(CONFIGMAPS, "x", "default")
        with pytest.raises(e.ServiceUnavailable):
            await c.create(CONFIGMAPS, cm("x"))
    assert calls == {"GET": 3, "POST": 1}


async def test_connection_refused_is_retried_then_raised() -> None:
    c = ApiClient(f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=3, initial=0.01))
    try:
        with pytest.raises(e.TransportError):
            await c.create(CONFIGMAPS, cm("x"))
        assert c.requests_sent == 3
    finally:
        await c.close()


async def test_request_timeout() -> None:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async with scripted(handler) as base, ApiClient(base, timeout=0.2, retry=RetryPolicy(attempts=1)) as c:
        with pytest.raises(e.RequestTimeout):
            await c.get(CONFIGMAPS, "x", "default")


async def test_watch_inactivity_and_error_event() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        if request.query.get("resourceVersion") == "5":
            await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"6"}}}\n')
            await resp.write(b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}\n')
            return resp
        await asyncio.sleep(5)  # silent stream
        return resp

    async with scripted(handler) as base, ApiClient(base) as c:
        got = []
        with pytest.raises(e.Expired):
            async for ev in c.watch(CONFIGMAPS, "default", resource_version="5"):
                got.append(ev)
        assert got == [("ADDED", {"metadata": {"name": "a", "resourceVersion": "6"}})]
        with pytest.raises(e.WatchInactive):
            async for _ in c.watch(CONFIGMAPS, "default", resource_version="1", inactivity_timeout=0.2):
                pass


async def test_bearer_token_and_closed_client() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"kind": "ConfigMap"})

    async with scripted(handler) as base:
        c = ApiClient(base, token="s3cret")
        await c.get(CONFIGMAPS, "x", "default")
        await c.close()
        with pytest.raises(RuntimeError):
            await c.get(CONFIGMAPS, "x", "default")
    assert seen == ["Bearer s3cret"]
