"""A minimal registry token server (the Docker token auth protocol) for tests.

``docker-registry`` is configured with ``auth: token`` pointing at this server's ``/token`` realm
and trusting its self-signed certificate; the server checks HTTP basic credentials and issues
RS256 JWTs (certificate in the ``x5c`` header) granting the requested repository actions. It
records every token request so tests can assert on the scopes that were asked for.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "kyb-test-registry"
ISSUER = "kyb-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kyb test token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(hours=1))
                     .not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.requests: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def registry_auth(self, bundle: Path) -> dict[str, Any]:
        """The ``auth:`` section for ``RegistryServer(auth=...)``."""
        return {"token": {"realm": f"http://127.0.0.1:{self.port}/token", "service": SERVICE,
                          "issuer": ISSUER, "rootcertbundle": str(bundle)}}

    def _jwt(self, subject: str, access: list[dict[str, Any]]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(sig)}"

    async def _token(self, request: web.Request) -> web.Response:
        scope = request.query.get("scope", "")
        user = None
        h = request.headers.get("Authorization", "")
        if h.startswith("Basic "):
            u, _, p = base64.b64decode(h[6:]).decode().partition(":")
            if self.users.get(u) == p:
                user = u
        self.requests.append({"user": user, "scope": scope, "service": request.query.get("service"),
                              "authorization": bool(h)})
        if user is None:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                     status=401)
        access = []
        for s in scope.split():
            typ, _, rest = s.partition(":")
            repo, _, actions = rest.rpartition(":")
            access.append({"type": typ, "name": repo, "actions": actions.split(",")})
        return web.json_response({"token": self._jwt(user, access), "expires_in": 300})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/token", self._token)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
