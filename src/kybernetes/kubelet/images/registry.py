"""An OCI distribution (registry v2) client on aiohttp: manifests, blobs, uploads and auth.

Authentication follows the registry token protocol: a request answered with ``401`` and
``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` makes the client fetch a token from
``realm`` (sending basic credentials when it has some, or exchanging an identity token) and retry;
``WWW-Authenticate: Basic`` makes it retry with basic credentials. Tokens are cached per scope.

Every manifest is verified against the digest it was asked by (or, for a tag, against the
registry's ``Docker-Content-Digest``), and every blob is hashed while it streams to disk and
checked against its digest and declared size before it is renamed into place by the caller.

Registries on loopback (``localhost``, ``127.x``, ``::1``) and those in ``insecure_registries``
are spoken to over plain HTTP; all others over HTTPS. Each request has a connect timeout, and
reads fail when the connection stalls for ``read_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import aiohttp
from yarl import URL

from .auth import RegistryAuth, find_auth, parse_challenges
from .errors import DigestMismatch, NotFoundError, RegistryError
from .manifest import ACCEPT, MAX_MANIFEST_BYTES, media_type_of
from .reference import Reference, is_loopback_registry, registry_host

log = logging.getLogger(__name__)

_WRITE_BUFFER = 1 << 20
USER_AGENT = "kybernetes/0.1"


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: str


def _registry_errors(body: bytes) -> str:
    """The ``errors`` array of a registry error response, as one line."""
    try:
        doc = json.loads(body)
        errs = doc.get("errors") or []
        parts = [f"{e.get('code', '').lower() or 'error'}: {e.get('message', '')}".strip()
                 for e in errs if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return body[:200].decode("utf-8", "replace").strip()


def _write_hash(f: Any, h: Any, data: bytes) -> None:
    h.update(data)
    f.write(data)


class RegistryClient:
    """One registry conversation (per pull or push). Use as ``async with RegistryClient(...)``."""

    def __init__(self, *, auths: list[RegistryAuth] | None = None,
                 insecure_registries: set[str] | None = None, connect_timeout: float = 10.0,
                 read_timeout: float = 60.0, request_timeout: float = 60.0) -> None:
        self.auths = list(auths or [])
        self.insecure = set(insecure_registries or ())
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}   # (host, scope) -> header, expiry
        self._basic: dict[str, str] = {}                              # host -> header

    async def __aenter__(self) -> "RegistryClient":
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout,
                                          sock_read=self.read_timeout),
            headers={"User-Agent": USER_AGENT})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- URLs and auth -------------------------------------------------------------------------

    def base_url(self, ref: Reference) -> URL:
        host = registry_host(ref.domain)
        plain = is_loopback_registry(ref.domain) or ref.domain in self.insecure or host in self.insecure
        return URL(f"{'http' if plain else 'https'}://{host}")

    def _repo_url(self, ref: Reference, kind: str, target: str) -> URL:
        return self.base_url(ref).with_path(f"/v2/{ref.path}/{kind}/{target}")

    def _credentials(self, ref: Reference) -> RegistryAuth | None:
        return find_auth(self.auths, ref.domain, ref.path)

    async def _fetch_token(self, ref: Reference, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{ref.domain}: bearer challenge without realm", status=401)
        cred = self._credentials(ref)
        query = {k: v for k, v in (("service", params.get("service", "")), ("scope", scope)) if v}
        assert self._session is not None
        try:
            async with asyncio.timeout(self.request_timeout):
                if cred is not None and cred.identity_token:
                    form = dict(query, grant_type="refresh_token", refresh_token=cred.identity_token,
                                client_id="kybernetes")
                    resp = await self._session.post(realm, data=form)
                else:
                    basic = cred.basic() if cred is not None else None
                    hdrs = {"Authorization": basic_header(*basic)} if basic else None
                    resp = await self._session.get(realm, params=query, headers=hdrs)
                async with resp:
                    body = await resp.read()
                    if resp.status == 401 or resp.status == 403:
                        raise RegistryError(f"{ref.domain}: unauthorized: authentication required "
                                            f"(token server {resp.status})", status=401)
                    if resp.status != 200:
                        raise RegistryError(f"{ref.domain}: token server answered {resp.status}: "
                                            f"{_registry_errors(body)}", status=resp.status)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise RegistryError(f"{ref.domain}: cannot get a token from {realm}: "
                                f"{type(e).__name__}: {e}") from None
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"{ref.domain}: token server returned no token", status=401)
        ttl = doc.get("expires_in") if isinstance(doc.get("expires_in"), int) else 60
        header = f"Bearer {token}"
        self._tokens[(ref.domain, scope)] = (header, time.monotonic() + max(10, ttl) - 5)
        return header

    def _cached_auth(self, ref: Reference, scope: str) -> str | None:
        tok = self._tokens.get((ref.domain, scope))
        if tok and tok[1] > time.monotonic():
            return tok[0]
        return self._basic.get(ref.domain)

    async def _authenticate(self, ref: Reference, resp: aiohttp.ClientResponse, scope: str) -> str | None:
        """After a 401: the Authorization header to retry with, or None when there is none."""
        for ch in parse_challenges(resp.headers.get("WWW-Authenticate", "")):
            if ch.scheme == "bearer":
                # ask for what this conversation needs (pull or pull,push), which covers the
                # challenge's own scope for the repository
                return await self._fetch_token(ref, ch.params, scope)
            if ch.scheme == "basic":
                cred = self._credentials(ref)
                basic = cred.basic() if cred is not None else None
                if basic:
                    header = basic_header(*basic)
                    self._basic[ref.domain] = header
                    return header
        return None

    async def _send(self, method: str, ref: Reference, url: URL, *, push: bool = False,
                    headers: dict[str, str] | None = None, data: Callable[[], Any] | None = None,
                    allow_redirects: bool = True) -> aiohttp.ClientResponse:
        """Send a request with auth (retrying once after a 401 challenge). The caller releases
        the response (``async with resp``). ``data`` builds the body afresh for each attempt."""
        assert self._session is not None, "use RegistryClient as an async context manager"
        scope = f"repository:{ref.path}:{'pull,push' if push else 'pull'}"
        h = dict(headers or {})
        auth = self._cached_auth(ref, scope)
        for attempt in (0, 1):
            if auth:
                h["Authorization"] = auth
            try:
                resp = await self._session.request(method, url, headers=h,
                                                   data=data() if data else None,
                                                   allow_redirects=allow_redirects)
            except aiohttp.ClientConnectorError as e:
                why = os.strerror(e.errno) if e.errno else str(e)
                raise RegistryError(f"failed to connect to registry {ref.domain} "
                                    f"({url.scheme}://{url.host}:{url.port}): {why}") from None
            except (aiohttp.ClientError, TimeoutError) as e:
                raise RegistryError(f"{method} {url}: {type(e).__name__}: {e}") from None
            if resp.status != 401 or attempt == 1:
                return resp
            async with resp:
                await resp.read()
                new_auth = await self._authenticate(ref, resp, scope)
            if not new_auth:
                raise RegistryError(f"{ref.name}: unauthorized: authentication required", status=401)
            auth = new_auth
        raise AssertionError("unreachable")

    async def _raise_for(self, resp: aiohttp.ClientResponse, what: str) -> None:
        body = b""
        try:
            async with asyncio.timeout(self.request_timeout):
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            pass
        detail = _registry_errors(body) if body else resp.reason or ""
        if resp.status == 404:
            raise NotFoundError(f"{what}: not found", status=404)
        if resp.status in (401, 403):
            raise RegistryError(f"{what}: unauthorized: {detail or 'authentication required'}",
                                status=resp.status)
        raise RegistryError(f"{what}: registry answered {resp.status}: {detail}", status=resp.status)

    # -- reading -------------------------------------------------------------------------------

    async def get_manifest(self, ref: Reference, target: str | None = None) -> FetchedManifest:
        """Fetch the manifest or index for ``target`` (a tag or digest; default: the reference's)
        and verify its digest."""
        target = target or ref.pull_target
        what = f"{ref.name}:{target}" if not target.startswith("sha256:") else f"{ref.name}@{target}"
        url = self._repo_url(ref, "manifests", target)
        try:
            async with asyncio.timeout(self.request_timeout):
                resp = await self._send("GET", ref, url, headers={"Accept": ACCEPT})
                async with resp:
                    if resp.status != 200:
                        await self._raise_for(resp, what)
                    if (resp.content_length or 0) > MAX_MANIFEST_BYTES:
                        raise RegistryError(f"{what}: manifest too large ({resp.content_length} bytes)")
                    data = await resp.content.read(MAX_MANIFEST_BYTES + 1)
                    if len(data) > MAX_MANIFEST_BYTES:
                        raise RegistryError(f"{what}: manifest too large")
                    header_digest = resp.headers.get("Docker-Content-Digest", "")
                    content_type = resp.headers.get("Content-Type", "")
        except TimeoutError:
            raise RegistryError(f"{what}: timed out fetching the manifest after "
                                f"{self.request_timeout:g}s") from None
        except aiohttp.ClientError as e:
            raise RegistryError(f"{what}: {type(e).__name__}: {e}") from None
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if target.startswith("sha256:") and digest != target:
            raise DigestMismatch(f"{what}: manifest digest mismatch: got {digest}")
        if header_digest.startswith("sha256:") and header_digest != digest:
            raise DigestMismatch(f"{what}: manifest digest mismatch: registry says {header_digest}, "
                                 f"content hashes to {digest}")
        return FetchedManifest(data=data, media_type=media_type_of(data, content_type), digest=digest)

    async def fetch_blob(self, ref: Reference, digest: str, size: int, dest: str | os.PathLike[str]) -> None:
        """Stream blob ``digest`` into the new file ``dest``, verifying size and digest. On any
        failure ``dest`` is removed and the error raised."""
        what = f"{ref.name}@{digest}"
        url = self._repo_url(ref, "blobs", digest)
        h = hashlib.sha256()
        got = 0
        f = await asyncio.to_thread(open, dest, "xb")
        try:
            try:
                resp = await self._send("GET", ref, url)
                async with resp:
                    if resp.status != 200:
                        await self._raise_for(resp, what)
                    buf = bytearray()
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        got += len(chunk)
                        if size >= 0 and got > size:
                            raise DigestMismatch(f"{what}: blob larger than its declared size {size}")
                        buf += chunk
                        if len(buf) >= _WRITE_BUFFER:
                            await asyncio.to_thread(_write_hash, f, h, bytes(buf))
                            buf.clear()
                    if buf:
                        await asyncio.to_thread(_write_hash, f, h, bytes(buf))
            except TimeoutError:
                raise RegistryError(f"{what}: download stalled for {self.read_timeout:g}s") from None
            except aiohttp.ClientError as e:
                raise RegistryError(f"{what}: {type(e).__name__}: {e}") from None
            if size >= 0 and got != size:
                raise DigestMismatch(f"{what}: got {got} bytes, expected {size}")
            actual = "sha256:" + h.hexdigest()
            if actual != digest:
                raise DigestMismatch(f"{what}: blob digest mismatch: content hashes to {actual}")
            await asyncio.to_thread(f.close)
        except BaseException:
            await asyncio.to_thread(f.close)
            await asyncio.to_thread(_unlink_quiet, dest)
            raise

    # -- writing -------------------------------------------------------------------------------

    async def blob_exists(self, ref: Reference, digest: str) -> bool:
        url = self._repo_url(ref, "blobs", digest)
        async with asyncio.timeout(self.request_timeout):
            resp = await self._send("HEAD", ref, url, push=True)
            async with resp:
                if resp.status == 200:
                    return True
                if resp.status == 404:
                    return False
                await self._raise_for(resp, f"{ref.name}@{digest}")
        return False

    def _location(self, ref: Reference, resp: aiohttp.ClientResponse, what: str) -> URL:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(f"{what}: upload response without Location")
        u = URL(loc, encoded=True)
        return u if u.is_absolute() else self.base_url(ref).join(u)

    async def upload_blob(self, ref: Reference, digest: str, path: str | os.PathLike[str], size: int,
                          *, chunk_size: int | None = None) -> None:
        """Upload the file ``path`` as blob ``digest``: one PUT (monolithic) or, when
        ``chunk_size`` is given and smaller than the blob, PATCH chunks then a closing PUT."""
        what = f"upload of {ref.name}@{digest}"
        url = self.base_url(ref).with_path(f"/v2/{ref.path}/blobs/uploads/")
        async with asyncio.timeout(self.request_timeout):
            resp = await self._send("POST", ref, url, push=True, headers={"Content-Length": "0"})
            async with resp:
                if resp.status != 202:
                    await self._raise_for(resp, what)
                loc = self._location(ref, resp, what)
        if chunk_size and 0 < chunk_size < size:
            offset = 0
            while offset < size:
                n = min(chunk_size, size - offset)
                chunk = await asyncio.to_thread(_read_range, path, offset, n)
                hdr = {"Content-Type": "application/octet-stream",
                       "Content-Range": f"{offset}-{offset + n - 1}", "Content-Length": str(n)}
                async with asyncio.timeout(self.request_timeout):
                    resp = await self._send("PATCH", ref, loc, push=True, headers=hdr,
                                            data=lambda c=chunk: c)
                    async with resp:
                        if resp.status != 202:
                            await self._raise_for(resp, what)
                        loc = self._location(ref, resp, what)
                offset += n
            put_url = loc.update_query(digest=digest)
            async with asyncio.timeout(self.request_timeout):
                resp = await self._send("PUT", ref, put_url, push=True, headers={"Content-Length": "0"})
                async with resp:
                    if resp.status != 201:
                        await self._raise_for(resp, what)
            return
        put_url = loc.update_query(digest=digest)
        hdr = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            resp = await self._send("PUT", ref, put_url, push=True, headers=hdr,
                                    data=lambda: _file_chunks(path))
        except TimeoutError:
            raise RegistryError(f"{what}: upload stalled") from None
        async with resp:
            if resp.status != 201:
                await self._raise_for(resp, what)

    async def put_manifest(self, ref: Reference, tag: str, data: bytes, media_type: str) -> str:
        """PUT the manifest under ``tag``; returns the digest the registry reports."""
        url = self._repo_url(ref, "manifests", tag)
        async with asyncio.timeout(self.request_timeout):
            resp = await self._send("PUT", ref, url, push=True, headers={"Content-Type": media_type},
                                    data=lambda: data)
            async with resp:
                if resp.status not in (200, 201):
                    await self._raise_for(resp, f"push of manifest {ref.name}:{tag}")
                d = resp.headers.get("Docker-Content-Digest", "")
        return d or "sha256:" + hashlib.sha256(data).hexdigest()


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _read_range(path: str | os.PathLike[str], offset: int, n: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


async def _file_chunks(path: str | os.PathLike[str]) -> AsyncIterator[bytes]:
    """The file's content in 1 MiB pieces, read off the event loop."""
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while True:
            b = await asyncio.to_thread(f.read, _WRITE_BUFFER)
            if not b:
                return
            yield b
    finally:
        await asyncio.to_thread(f.close)


def _unlink_quiet(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
