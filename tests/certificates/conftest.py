"""Fixtures for bootstrap tokens and CertificateSigningRequests: a TLS API server with RBAC and
the Node authorizer (tests/authz), the controller manager's certificate and token-cleaner
controllers running in-process under its own identity, and helpers to act as a bootstrap token
or as the holder of an issued certificate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kybernetes.apiserver import bootstraptoken as bt
from kybernetes.client import ApiClient
from kybernetes.client.resources import SECRETS
from kybernetes.client.rest import RetryPolicy
from kybernetes.controllers import bootstraptoken as token_cleaner
from kybernetes.controllers import certificates
from tests.authz.conftest import SecureServer, secure_server
from tests.controllers.conftest import running

from tests.e2e.conftest import cluster  # noqa: F401 - the `kyb up` wiring is tested end to end

Obj = dict[str, Any]
CSRS = certificates.CSRS
TOKEN = "abcdef.0123456789abcdef"


def client_for(s: SecureServer, *, token: str | None = None, cert: bytes | None = None,
               key: bytes | None = None) -> ApiClient:
    """An ApiClient for ``s`` holding a bearer token or a client certificate."""
    ctx = ssl.create_default_context(cafile=str(s.pki.ca_cert))
    if cert is not None and key is not None:
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "c.crt").write_bytes(cert)
            (Path(d) / "c.key").write_bytes(key)
            ctx.load_cert_chain(str(Path(d) / "c.crt"), str(Path(d) / "c.key"))
    return ApiClient(s.base, ssl_context=ctx, token=token, timeout=10.0,
                     retry=RetryPolicy(attempts=2, initial=0.01, maximum=0.05))


@dataclass
class Env:
    """The server, an admin client, and the controllers' statistics."""

    server: SecureServer
    admin: ApiClient
    controllers: list[Any]
    clients: list[ApiClient] = field(default_factory=list)

    async def create_token(self, token: str = TOKEN, *, ttl: float | None = 3600, **kw: Any) -> Obj:
        return await self.admin.create(SECRETS, bt.token_secret(token, ttl_seconds=ttl, **kw), bt.NAMESPACE)

    def as_token(self, token: str = TOKEN) -> ApiClient:
        """A client presenting ``token`` (closed with the environment)."""
        self.clients.append(client_for(self.server, token=token))
        return self.clients[-1]

    def as_cert(self, cert_b64: str, key_pem: bytes) -> ApiClient:
        """A client presenting an issued certificate (closed with the environment)."""
        self.clients.append(client_for(self.server, cert=base64.b64decode(cert_b64), key=key_pem))
        return self.clients[-1]


@contextlib.asynccontextmanager
async def environment(tmp_path: Path) -> AsyncIterator[Env]:
    async with secure_server(tmp_path) as s:
        admin_id = await s.admin()
        admin = client_for(s, cert=admin_id.cert.read_bytes(), key=admin_id.key.read_bytes())
        cm_id = await s.identity("system:kube-controller-manager")
        cm = client_for(s, cert=cm_id.cert.read_bytes(), key=cm_id.key.read_bytes())
        e = Env(s, admin, [])
        try:
            options = {"cluster_signing_cert": s.pki.ca_cert.read_bytes(),
                       "cluster_signing_key": s.pki.ca_key.read_bytes()}
            async with running(cm, certificates, token_cleaner, **options) as ctls:
                e.controllers = ctls
                yield e
        finally:
            for c in [admin, cm, *e.clients]:
                await c.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with environment(tmp_path) as e:
        yield e


async def eventually(fn: Any, what: str, timeout: float = 15.0) -> Any:
    """Poll the async ``fn`` until it returns something truthy; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        out = await fn()
        if out:
            return out
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def request_pem(cn: str, orgs: tuple[str, ...] = (), *, key: Any = None, dns: tuple[str, ...] = (),
                ips: tuple[str, ...] = ()) -> tuple[str, bytes]:
    """(base64 of a PEM certificate request, PEM of its key) for CN/O and optional SANs."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = key or ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if dns or ips:
        names: list[Any] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    pem = b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return base64.b64encode(pem).decode(), key_pem


def csr(name: str, request: str, signer: str = "kubernetes.io/kube-apiserver-client-kubelet",
        usages: tuple[str, ...] = ("digital signature", "client auth"), **spec: Any) -> Obj:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": request, "signerName": signer, "usages": list(usages), **spec}}
