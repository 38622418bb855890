"""A TLS API server in-process, with client certificates per user, for authorization tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import orjson
import pytest

from kybernetes.apiserver.app import ApiServer, ServerConfig, serve
from kybernetes.pki import ensure_pki, issue_client_cert, server_ssl_context
from kybernetes.pki.certs import Pki
from kybernetes.pki.kubeconfig import write_kubeconfig

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@dataclass
class Identity:
    user: str
    groups: tuple[str, ...]
    cert: Path
    key: Path
    kubeconfig: Path
    session: aiohttp.ClientSession


@dataclass
class SecureServer:
    """``kyb apiserver`` as run in production (TLS, no anonymous access, RBAC,Node), in-process."""

    server: ApiServer
    pki: Pki
    dir: Path
    port: int
    identities: dict[tuple[str, tuple[str, ...]], Identity] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def identity(self, user: str, groups: tuple[str, ...] = ()) -> Identity:
        """A client certificate (CN=user, O=groups), its kubeconfig and an HTTP session."""
        key = (user, groups)
        ident = self.identities.get(key)
        if ident is None:
            cert, pem_key = await asyncio.to_thread(issue_client_cert, self.pki, user, list(groups))
            safe = user.replace(":", "_")
            cert_path, key_path = self.dir / f"{safe}.crt", self.dir / f"{safe}.key"
            cert_path.write_bytes(cert)
            key_path.write_bytes(pem_key)
            kc = write_kubeconfig(self.dir / f"{safe}.kubeconfig", server=self.base, ca_pem=self.pki.ca_cert.read_bytes(),
                                  cert_pem=cert, key_pem=pem_key, user=user)
            ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            ctx.load_cert_chain(str(cert_path), str(key_path))
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                            timeout=aiohttp.ClientTimeout(total=30))
            ident = self.identities[key] = Identity(user, groups, cert_path, key_path, kc, session)
        return ident

    async def admin(self) -> Identity:
        return await self.identity("kubernetes-admin", ("system:masters",))

    async def request(self, who: Identity, method: str, path: str, body: Any = None, *,
                      content_type: str = "application/json") -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        async with who.session.request(method, self.base + path, data=data, headers=headers) as r:
            raw = await r.read() if "watch" not in path else b""
            try:
                return r.status, orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return r.status, raw.decode(errors="replace")

    async def kubectl(self, who: Identity, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        return await self.kubectl_with(who.kubeconfig, *args, stdin=stdin)

    async def kubectl_with(self, kubeconfig: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        """The real kubectl with ``kubeconfig``: (exit code, stdout, stderr)."""
        home = self.dir / "home"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home), "KUBECACHEDIR": str(home / "cache")}
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, *args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def secure_server(tmp_path: Path, **config: Any) -> AsyncIterator[SecureServer]:
    """Serve a TLS API server in-process (``config``: extra ServerConfig fields)."""
    from kybernetes.storage import open_store

    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    pki = await asyncio.to_thread(ensure_pki, tmp_path / "pki", hosts=["127.0.0.1"])
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    await store.start()
    server = ApiServer(store, ServerConfig(host="127.0.0.1", port=0, ssl_context=server_ssl_context(pki),
                                           compaction_interval=0, **config))
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(serve(server, sock_ready=ready))
    s: SecureServer | None = None
    try:
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        s = SecureServer(server, pki, tmp_path, ready.result())
        yield s
    finally:
        if s is not None:
            for ident in s.identities.values():
                await ident.session.close()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await store.close()


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[SecureServer]:
    async with secure_server(tmp_path) as s:
        yield s
