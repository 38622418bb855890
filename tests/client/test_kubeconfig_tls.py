"""ApiClient.from_kubeconfig against a real TLS ``kyb apiserver`` subprocess (client cert auth)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from kybernetes.client import errors as e
from kybernetes.client.informer import SharedInformer
from kybernetes.client.resources import CONFIGMAPS, NAMESPACES
from kybernetes.client.rest import ApiClient, RetryPolicy
from tests.conftest import free_port
from tests.integration.test_crash_api import ApiProcess

from .conftest import cm

pytestmark = pytest.mark.integration


class TlsApiProcess(ApiProcess):
    def start(self) -> None:
        # as ApiProcess.start, but the parent closes its copy of the log file handle
        with open(self.data_dir.parent / "apiserver.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=log)


async def test_from_kubeconfig_over_tls(tmp_path: Path) -> None:
    srv = TlsApiProcess(tmp_path / "data", free_port())
    srv.start()
    try:
        await srv.wait_ready()
        kubeconfig = tmp_path / "data" / "admin.kubeconfig"
        async with ApiClient.from_kubeconfig(kubeconfig) as client:
            assert client.server.startswith("https://")
            names = {n["metadata"]["name"] for n in (await client.list(NAMESPACES))["items"]}
            assert "default" in names
            await client.create(CONFIGMAPS, cm("tls"))
            inf = SharedInformer(client, CONFIGMAPS, namespace="default")
            task = asyncio.ensure_future(inf.run())
            try:
                assert await inf.wait_for_sync(10)
                assert inf.lister().get("tls", "default") is not None
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        # without the kubeconfig's CA the server's certificate is not trusted
        async with ApiClient(srv.url, retry=RetryPolicy(attempts=1)) as untrusted:
            with pytest.raises(e.TransportError):
                await untrusted.list(NAMESPACES)
    finally:
        srv.stop()
