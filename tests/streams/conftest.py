"""Fixtures: a KubeletServer on loopback over the local-subprocess runtime, and a backend port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kybernetes.apiserver.kubeletclient import KubeletClient
from kybernetes.kubelet.server import KubeletServer, Located, ensure_kubelet_serving_cert, kubelet_server_ssl_context
from kybernetes.pki import Pki, ensure_pki

from .localruntime import LocalContainer, LocalLocator, LocalRuntime, cri_line

BACKEND_TEXT = "hello from the pod"


@dataclass
class Node:
    server: KubeletServer
    runtime: LocalRuntime
    locator: LocalLocator
    pki: Pki
    client: KubeletClient
    node: dict[str, Any]          # a Node object whose address and port point at the server
    log_dir: Path
    backend_port: int             # an HTTP server standing in for a port inside the pod

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def backend() -> AsyncIterator[int]:
    """An HTTP server on loopback: GET / answers BACKEND_TEXT, /echo?x= echoes."""
    async def root(request: web.Request) -> web.Response:
        return web.Response(text=BACKEND_TEXT)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.query.get("x", ""))

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def node_object(name: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": "Hostname", "address": "localhost"},
                                     {"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


@pytest.fixture
async def kubelet(tmp_path: Path, backend: int) -> AsyncIterator[Node]:
    pki = await asyncio.to_thread(ensure_pki, tmp_path / "pki", hosts=[])
    cert, key = await asyncio.to_thread(ensure_kubelet_serving_cert, tmp_path / "kubelet-pki", "node-1", ["127.0.0.1"])
    runtime, locator = LocalRuntime(), LocalLocator()
    log_dir = tmp_path / "logs"
    for pod, container in (("web", "web"), ("multi", "a"), ("multi", "b")):
        d = log_dir / f"default_{pod}_uid-{pod}" / container
        d.mkdir(parents=True)
        path = d / "0.log"
        path.write_text("".join(cri_line(f"2025-01-01T10:00:0{i}.000000000Z", f"{pod}/{container} line {i}") for i in range(3)))
        cid = f"{pod}-{container}"
        runtime.add(LocalContainer(cid, str(path)))
        locator.add("default", pod, container, Located(cid, f"sb-{pod}", str(path), f"uid-{pod}"))

    async def stats() -> dict[str, Any]:
        return {"node": {"nodeName": "node-1"}, "pods": []}

    server = KubeletServer(locator, runtime, stats=stats, ssl_context=kubelet_server_ssl_context(cert, key),
                           host="127.0.0.1", port=0, client_ca=str(pki.ca_cert))
    await server.start()
    try:
        yield Node(server, runtime, locator, pki, KubeletClient.from_pki(pki), node_object("node-1", server.port),
                   log_dir, backend)
    finally:
        await server.stop()
        await runtime.close()
