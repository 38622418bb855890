"""PKI and kubeconfig: generated files, idempotency, and real TLS handshakes (aiohttp, kubectl)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import shutil
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kybernetes.pki import (
    Pki,
    client_ssl_context_from_kubeconfig,
    ensure_pki,
    identity_from_peercert,
    identity_from_ssl_object,
    issue_client_cert,
    load_kubeconfig,
    server_ssl_context,
    write_kubeconfig,
)
from kybernetes.pki.certs import (
    cert_sans,
    cert_to_pem,
    key_to_pem,
    make_ca,
    make_client_cert,
    parse_fib_trie,
    parse_if_inet6,
    split_hosts,
)

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"), hosts=["api.example.test", "203.0.113.7"])


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# --------------------------------------------------------------------------- files


def test_serving_cert_sans_cover_defaults_and_hosts(pki: Pki) -> None:
    dns, ips = cert_sans(_cert(pki.apiserver_cert))
    for name in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", "api.example.test"):
        assert name in dns
    for ip in ("127.0.0.1", "::1", "10.96.0.1", "203.0.113.7"):
        assert ipaddress.ip_address(ip) in ips


def test_admin_cert_subject_and_ca(pki: Pki) -> None:
    admin, ca = _cert(pki.admin_cert), _cert(pki.ca_cert)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kybernetes-ca"
    admin.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_keys_are_0600(pki: Pki) -> None:
    for key in (pki.ca_key, pki.apiserver_key, pki.admin_key, pki.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert b"PUBLIC KEY" in pki.sa_pub.read_bytes()


def test_ensure_pki_is_idempotent(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, hosts=[])
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    second = ensure_pki(tmp_path, hosts=["localhost"])  # already covered: nothing changes
    assert first == second
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_new_host_regenerates_only_serving_cert(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, hosts=[])
    ca, admin, serving = (pki.ca_cert.read_bytes(), pki.admin_cert.read_bytes(),
                          pki.apiserver_cert.read_bytes())
    ensure_pki(tmp_path, hosts=["new.example.test"])
    assert pki.ca_cert.read_bytes() == ca
    assert pki.admin_cert.read_bytes() == admin
    assert pki.apiserver_cert.read_bytes() != serving
    assert "new.example.test" in cert_sans(_cert(pki.apiserver_cert))[0]


def test_issue_client_cert(pki: Pki) -> None:
    cert_pem, key_pem = issue_client_cert(pki, "system:kube-scheduler", ["g1", "g2"], days=10)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(_cert(pki.ca_cert))
    assert identity_from_peercert(cert.public_bytes(Encoding.DER)) == (
        "system:kube-scheduler", ["g1", "g2"])
    assert b"PRIVATE KEY" in key_pem


# --------------------------------------------------------------------------- pure helpers


def test_identity_from_peercert_dict_and_empty() -> None:
    d = {"subject": ((("organizationName", "a"),), (("organizationName", "b"),),
                     (("commonName", "alice"),))}
    assert identity_from_peercert(d) == ("alice", ["a", "b"])
    assert identity_from_peercert(None) is None
    assert identity_from_peercert(b"") is None
    assert identity_from_peercert(b"not der") is None
    assert identity_from_ssl_object(None) is None


def test_split_hosts() -> None:
    assert split_hosts(["A.example", "a.example", "[::1]", "10.0.0.1", "", "10.0.0.1"]) == (
        ["a.example"], [ipaddress.ip_address("::1"), ipaddress.ip_address("10.0.0.1")])


def test_parse_proc_net() -> None:
    trie = ("Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n"
            "     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 192.0.2.255\n"
            "        /32 link BROADCAST\nLocal:\n     |-- 192.0.2.2\n        /32 host LOCAL\n")
    assert parse_fib_trie(trie) == ["127.0.0.1", "192.0.2.2"]
    inet6 = ("fd000000000000000000000000000002 04 40 00 82     eth0\n"
             "00000000000000000000000000000001 01 80 10 80       lo\n"
             "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n")
    assert parse_if_inet6(inet6) == ["fd00::2"]


def test_kubeconfig_roundtrip(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", server="https://127.0.0.1:6443", ca_pem=b"CA",
                            token="t0k", namespace="dev")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = load_kubeconfig(path)
    assert doc["current-context"] == "kybernetes"
    assert doc["contexts"][0]["context"] == {"cluster": "kybernetes", "user": "admin",
                                             "namespace": "dev"}
    cluster = doc["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert doc["users"][0]["user"] == {"token": "t0k"}
    with pytest.raises(ValueError):
        write_kubeconfig(tmp_path / "bad", server="x", ca_pem=b"CA", cert_pem=b"c")


# --------------------------------------------------------------------------- real TLS


async def _whoami(request: web.Request) -> web.Response:
    ident = identity_from_ssl_object(request.transport.get_extra_info("ssl_object"))  # type: ignore[union-attr]
    return web.json_response({"identity": list(ident) if ident else None})


async def _version(request: web.Request) -> web.Response:
    ident = identity_from_ssl_object(request.transport.get_extra_info("ssl_object"))  # type: ignore[union-attr]
    if ident != ("kubernetes-admin", ["system:masters"]):
        return web.json_response({"kind": "Status", "code": 401}, status=401)
    return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                              "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
                              "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"})


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/whoami", _whoami)
    app.router.add_get("/version", _version)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(pki))
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _kubeconfig(pki: Pki, path: Path, server: str, *, cert: bool = True) -> Path:
    return write_kubeconfig(
        path, server=server, ca_pem=pki.ca_cert.read_bytes(),
        cert_pem=pki.admin_cert.read_bytes() if cert else None,
        key_pem=pki.admin_key.read_bytes() if cert else None,
        token=None if cert else "sometoken",
    )


async def _get(url: str, ctx: ssl.SSLContext, headers: dict[str, str] | None = None) -> object:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        async with s.get(url, ssl=ctx, headers=headers) as r:
            return (await r.json())["identity"]


async def test_tls_admin_cert_identity(pki: Pki, tls_server: str, tmp_path: Path) -> None:
    server, ctx, headers = client_ssl_context_from_kubeconfig(_kubeconfig(pki, tmp_path / "kc", tls_server))
    assert server == tls_server and headers == {}
    assert await _get(server + "/whoami", ctx) == ["kubernetes-admin", ["system:masters"]]


async def test_tls_without_cert_connects(pki: Pki, tls_server: str, tmp_path: Path) -> None:
    server, ctx, headers = client_ssl_context_from_kubeconfig(
        _kubeconfig(pki, tmp_path / "kc", tls_server, cert=False))
    assert headers == {"Authorization": "Bearer sometoken"}
    assert await _get(server + "/whoami", ctx, headers) is None


async def test_tls_cert_from_other_ca_is_rejected_at_handshake(
    pki: Pki, tls_server: str, tmp_path: Path
) -> None:
    # With CERT_OPTIONAL, Python's ssl still verifies a certificate that is presented: a
    # certificate from a foreign CA aborts the handshake (the server never sees the request).
    other_ca, other_key = make_ca("other-ca", days=1)
    cert, key = make_client_cert(other_ca, other_key, "mallory", ["system:masters"], 1)
    (tmp_path / "c.crt").write_bytes(cert_to_pem(cert))
    (tmp_path / "c.key").write_bytes(key_to_pem(key))
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await _get(tls_server + "/whoami", ctx)


@pytest.fixture
def kubectl_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl not installed")
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "KUBECACHEDIR": str(home / "cache")}
    yield env
    shutil.rmtree(home, ignore_errors=True)


async def run_kubectl(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_real_kubectl_accepts_certs_and_kubeconfig(
    pki: Pki, tls_server: str, tmp_path: Path, kubectl_env: dict[str, str]
) -> None:
    kc = _kubeconfig(pki, tmp_path / "kc", tls_server)
    rc, out, err = await run_kubectl(kubectl_env, "--kubeconfig", str(kc), "get", "--raw", "/version")
    assert rc == 0, err
    assert json.loads(out)["minor"] == "32"
    # Also by "localhost" (DNS SAN), not only 127.0.0.1.
    kc2 = _kubeconfig(pki, tmp_path / "kc2", tls_server.replace("127.0.0.1", "localhost"))
    rc, out, err = await run_kubectl(kubectl_env, "--kubeconfig", str(kc2), "get", "--raw", "/version")
    assert rc == 0, err
