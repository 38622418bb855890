"""--anonymous-auth: off by default; on, it opens only /version (health checks are always open)."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from .conftest import SecureServer, secure_server

pytestmark = pytest.mark.integration

PATHS = ("/version", "/healthz", "/livez", "/readyz", "/api", "/api/v1/namespaces", "/apis",
         "/openid/v1/jwks", "/.well-known/openid-configuration", "/api/v1/namespaces/default/secrets")


async def codes(s: SecureServer, *, headers: dict[str, str] | None = None) -> dict[str, int]:
    ctx = ssl.create_default_context(cafile=str(s.pki.ca_cert))   # no client certificate
    out = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        for p in PATHS:
            async with session.get(s.base + p, headers=headers or {}) as r:
                out[p] = r.status
    return out


async def test_without_credentials_only_health_checks_answer(secure: SecureServer) -> None:
    got = await codes(secure)
    assert got == {p: 200 if p in ("/healthz", "/livez", "/readyz") else 401 for p in PATHS}


async def test_anonymous_auth_opens_version_and_nothing_else(tmp_path: Path) -> None:
    async with secure_server(tmp_path, anonymous_public=True) as s:
        got = await codes(s)
        assert got == {p: 200 if p in ("/version", "/healthz", "/livez", "/readyz") else 401 for p in PATHS}
        # a bad token is still a 401 everywhere it is checked, also on /version
        bad = await codes(s, headers={"Authorization": "Bearer not-a-token"})
        assert bad["/version"] == 401 and bad["/api"] == 401
