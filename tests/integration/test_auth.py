"""TLS and authentication of the real `kyb apiserver` process."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port

from .test_crash_api import ApiProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def srv(tmp_path: Path):  # type: ignore[no-untyped-def]
    p = ApiProcess(tmp_path / "data", free_port())
    p.start()
    try:
        await p.wait_ready()
        yield p
    finally:
        p.stop()


def ca_only(srv: ApiProcess) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "pki" / "ca.crt"))
    return ctx


async def test_health_without_credentials_and_401_otherwise(srv: ApiProcess) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/healthz", "/livez", "/readyz"):
            async with s.get(srv.url + path, ssl=ca_only(srv)) as r:
                assert r.status == 200 and await r.text() == "ok"
        for path in ("/api/v1/namespaces", "/version", "/apis"):
            async with s.get(srv.url + path, ssl=ca_only(srv)) as r:
                assert r.status == 401
                doc = await r.json()
                assert doc["kind"] == "Status" and doc["reason"] == "Unauthorized"
        async with s.get(srv.url + "/api/v1/namespaces", ssl=ca_only(srv), headers={"Authorization": "Bearer forged"}) as r:
            assert r.status == 401


async def test_serving_certificate_names(srv: ApiProcess) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((srv.data_dir / "pki" / "apiserver.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} <= dns
    assert {"127.0.0.1", "10.96.0.1"} <= ips


async def test_certificate_from_another_ca_is_refused(srv: ApiProcess, tmp_path: Path) -> None:
    from kybernetes.pki import ensure_pki

    other = ensure_pki(tmp_path / "other-pki", hosts=[])
    ctx = ca_only(srv)
    ctx.load_cert_chain(str(other.admin_cert), str(other.admin_key))
    async with aiohttp.ClientSession() as s:
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionResetError)):
            async with s.get(srv.url + "/api/v1/namespaces", ssl=ctx) as r:
                # if the handshake were to succeed, the request must still be refused
                assert r.status == 401
                raise aiohttp.ClientError("refused with 401")


async def test_admin_certificate_works_with_curl(srv: ApiProcess) -> None:
    pki = srv.data_dir / "pki"
    out = subprocess.run(["curl", "-s", "--cacert", str(pki / "ca.crt"), "--cert", str(pki / "admin.crt"), "--key", str(pki / "admin.key"),
                          srv.url + "/version"], capture_output=True, text=True, timeout=10)
    assert '"minor":"32"' in out.stdout
