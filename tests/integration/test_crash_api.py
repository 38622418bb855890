"""kill -9 of the API server during a write storm loses no acknowledged write."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration


class ApiProcess:
    def __init__(self, data_dir: Path, port: int, *extra: str) -> None:
        self.extra = list(extra)
        self.data_dir, self.port = data_dir, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"https://127.0.0.1:{port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(self.data_dir), "--port", str(self.port),
             *self.extra],
            stdout=subprocess.DEVNULL, stderr=open(self.data_dir.parent / "apiserver.log", "ab"),
        )

    def ssl(self):  # type: ignore[no-untyped-def]
        from kybernetes.pki.kubeconfig import client_ssl_context_from_kubeconfig

        return client_ssl_context_from_kubeconfig(str(self.data_dir / "admin.kubeconfig"))[1]

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "apiserver died"
            try:
                async with aiohttp.ClientSession() as s, s.get(self.url + "/readyz", ssl=self.ssl()) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, OSError, FileNotFoundError):
                pass
            await asyncio.sleep(0.2)
        raise AssertionError("apiserver not ready")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def test_kill9_during_write_storm(tmp_path: Path) -> None:
    srv = ApiProcess(tmp_path / "data", free_port())
    srv.start()
    try:
        await srv.wait_ready()
        acked: dict[str, str] = {}
        stop = asyncio.Event()

        async def writer(w: int, s: aiohttp.ClientSession) -> None:
            i = 0
            while not stop.is_set():
                name = f"w{w}-{i}"
                body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": name * 3}})
                try:
                    async with s.post(srv.url + "/api/v1/namespaces/default/configmaps", data=body, headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        if r.status == 201:
                            acked[name] = name * 3
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    return
                i += 1

        conn = aiohttp.TCPConnector(ssl=srv.ssl(), limit=0)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as s:
            tasks = [asyncio.ensure_future(writer(w, s)) for w in range(16)]
            while len(acked) < 300:
                await asyncio.sleep(0.05)
            srv.kill9()  # mid-storm: writes are in flight
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert len(acked) >= 300
        srv.start()
        await srv.wait_ready()
        conn = aiohttp.TCPConnector(ssl=srv.ssl())
        async with aiohttp.ClientSession(connector=conn) as s:
            async with s.get(srv.url + "/api/v1/namespaces/default/configmaps") as r:
                items = orjson.loads(await r.read())["items"]
        stored = {i["metadata"]["name"]: i["data"]["v"] for i in items if i["metadata"]["name"].startswith("w")}
        missing = [n for n in acked if n not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        assert all(stored[n] == v for n, v in acked.items())
        assert all(v == n * 3 for n, v in stored.items())  # nothing half-written
    finally:
        srv.stop()
