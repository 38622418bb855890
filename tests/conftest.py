"""Shared fixtures: an in-process API server on loopback (integration tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import orjson
import pytest

from kybernetes.apiserver.app import ApiServer, ServerConfig, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiClient:
    """A tiny JSON client for integration tests (plain HTTP to an anonymous-admin test server)."""

    def __init__(self, base: str, session: aiohttp.ClientSession, server: ApiServer) -> None:
        self.base = base
        self.session = session
        self.server = server

    async def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                      headers: dict[str, str] | None = None, raw: bytes | None = None, params: Any = None) -> tuple[int, Any, Any]:
        h = dict(headers or {})
        data = raw
        if body is not None and raw is None:
            data = orjson.dumps(body)
        if data is not None and content_type:
            h.setdefault("Content-Type", content_type)
        skip = ["Content-Type"] if data is not None and not content_type else []
        async with self.session.request(method, self.base + path, data=data, headers=h, params=params,
                                        skip_auto_headers=skip) as r:
            text = await r.read()
            try:
                doc = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                doc = text.decode(errors="replace")
            return r.status, doc, r.headers

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json", **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        return await self.request("DELETE", path, body, **kw)


async def start_test_server(store: Any, **cfg: Any) -> tuple[ApiServer, "asyncio.Task[None]", int]:
    await store.start()
    server = ApiServer(store, ServerConfig(host="127.0.0.1", port=0, anonymous_auth=True, compaction_interval=0, **cfg))
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve(server, sock_ready=ready))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    return server, task, ready.result()


@contextlib.asynccontextmanager
async def serving(store: Any) -> AsyncIterator[ApiClient]:
    """An in-process API server over ``store`` on a free loopback port, and a client for it."""
    server, task, port = await start_test_server(store)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        try:
            yield ApiClient(f"http://127.0.0.1:{port}", session, server)
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    from kybernetes.storage import open_store

    async with serving(open_store("sqlite", path=str(tmp_path / "state.db"))) as client:
        yield client


@pytest.fixture(params=["sqlite", "etcd"])
async def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApiClient]:
    """An API server over each store backend (etcd: a real etcd on loopback)."""
    from kybernetes.storage import open_store

    etcd = None
    if request.param == "etcd":
        from tests.etcd_server import EtcdServer, etcd_available

        if not etcd_available():
            pytest.skip("etcd is not installed")
        etcd = await asyncio.to_thread(EtcdServer, tmp_path)
        store = open_store("etcd", endpoints=etcd.endpoints)
    else:
        store = open_store("sqlite", path=str(tmp_path / "state.db"))
    try:
        async with serving(store) as client:
            yield client
    finally:
        if etcd is not None:
            await asyncio.to_thread(etcd.stop)
