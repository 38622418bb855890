"""Integration: an API server with --encryption-provider-config over SQLite and a real etcd.

The raw store (the SQLite files, etcd's values and data directory) must never hold a secret's
plaintext; the API must serve it decrypted (get, list, watch); rotation re-encrypts with the new
first key; a server without the key fails cleanly for that object only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kybernetes.apiserver.encryption import EncryptionConfig
from kybernetes.client.resources import SECRETS
from kybernetes.client.rest import ApiClient as RestClient
from kybernetes.storage import open_store
from tests.conftest import ApiClient, start_test_server

from .helpers import KEY1, KEY2, config, provider, random_plaintext, sqlite_bytes

pytestmark = pytest.mark.integration

SECRET_KEY = "/registry/secrets/default/{}"


class Backend:
    """One storage backend that outlives API servers: new store objects over the same data."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.etcd: Any = None

    async def open(self) -> None:
        if self.kind == "etcd":
            from tests.etcd_server import EtcdServer, etcd_available

            if not etcd_available():
                pytest.skip("etcd is not installed")
            self.etcd = await asyncio.to_thread(EtcdServer, self.tmp_path)

    async def close(self) -> None:
        if self.etcd is not None:
            await asyncio.to_thread(self.etcd.stop)

    def new_store(self) -> Any:
        if self.kind == "etcd":
            return open_store("etcd", endpoints=self.etcd.endpoints)
        return open_store("sqlite", path=str(self.tmp_path / "state.db"))

    async def raw_value(self, key: str) -> bytes:
        """The value as stored, read past the API server with a plain store."""
        store = self.new_store()
        await store.start()
        try:
            kv = await store.get(key)
            assert kv is not None, key
            return kv.value
        finally:
            await store.close()

    def raw_files(self) -> bytes:
        """Every byte the backend keeps on disk (what `grep -r` of the data directory sees)."""
        if self.kind == "sqlite":
            return sqlite_bytes(self.tmp_path / "state.db")
        out = b""
        for p in Path(self.etcd.data_dir).rglob("*"):
            if p.is_file():
                out += p.read_bytes()
        return out

    def grep_dir(self) -> Path:
        return self.tmp_path if self.kind == "sqlite" else Path(self.etcd.data_dir)


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = Backend(request.param, tmp_path)
    await b.open()
    try:
        yield b
    finally:
        await b.close()


@contextlib.asynccontextmanager
async def server(backend: Backend, encryption: EncryptionConfig | None) -> AsyncIterator[ApiClient]:
    """An API server over ``backend`` with this encryption configuration (None: none)."""
    store = backend.new_store()
    srv, task, port = await start_test_server(store, encryption=encryption)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield ApiClient(f"http://127.0.0.1:{port}", session, srv)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


def secret(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"password": base64.b64encode(value.encode()).decode()}}


def password_of(obj: dict[str, Any]) -> str:
    return base64.b64decode(obj["data"]["password"]).decode()


async def create_secret(api: ApiClient, name: str, value: str) -> dict[str, Any]:
    code, body, _ = await api.post("/api/v1/namespaces/default/secrets", secret(name, value))
    assert code == 201, body
    return body  # type: ignore[no-any-return]


def assert_not_stored(raw: bytes, value: str) -> None:
    assert value.encode() not in raw
    assert base64.b64encode(value.encode()) not in raw


async def test_raw_store_holds_only_ciphertext(backend: Backend) -> None:
    value = random_plaintext()
    cm_value = random_plaintext()
    async with server(backend, config(provider("aescbc", ("key1", KEY1)))) as api:
        created = await create_secret(api, "db", value)
        assert password_of(created) == value
        code, cm, _ = await api.post("/api/v1/namespaces/default/configmaps",
                                     {"metadata": {"name": "plain"}, "data": {"v": cm_value}})
        assert code == 201, cm
        # a PUT and a PATCH go through the same path
        code, patched, _ = await api.patch("/api/v1/namespaces/default/secrets/db", {"metadata": {"labels": {"a": "b"}}})
        assert code == 200, patched
        raw = await backend.raw_value(SECRET_KEY.format("db"))
        assert raw.startswith(b"k8s:enc:aescbc:v1:key1:")
        assert_not_stored(raw, value)
        assert_not_stored(backend.raw_files(), value)
        # resources the configuration does not name stay plaintext
        assert (await backend.raw_value("/registry/configmaps/default/plain")).startswith(b"{")
        assert cm_value.encode() in backend.raw_files()
        # reading through the API gives the plaintext back
        code, got, _ = await api.get("/api/v1/namespaces/default/secrets/db")
        assert code == 200 and password_of(got) == value and got["metadata"]["labels"] == {"a": "b"}
        code, lst, _ = await api.get("/api/v1/namespaces/default/secrets")
        assert code == 200 and [password_of(i) for i in lst["items"]] == [value]


async def test_grep_of_the_data_directory_finds_no_plaintext(backend: Backend) -> None:
    """Issue acceptance: `grep -r` of the raw store finds no secret value."""
    value = random_plaintext()
    async with server(backend, config(provider("secretbox", ("key1", KEY1)))) as api:
        await create_secret(api, "grep-me", value)
        await backend.raw_value(SECRET_KEY.format("grep-me"))  # committed
        for needle in (value, base64.b64encode(value.encode()).decode()):
            r = subprocess.run(["grep", "-r", "-a", "-c", "-F", needle, str(backend.grep_dir())],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 1, r.stdout  # 1: no line matched anywhere


@pytest.mark.parametrize("kind", ["aescbc", "aesgcm", "secretbox"])
async def test_each_provider_through_the_api(tmp_path: Path, kind: str) -> None:
    b = Backend("sqlite", tmp_path)
    value = random_plaintext()
    async with server(b, config(provider(kind, ("k1", KEY1)))) as api:
        await create_secret(api, "s", value)
        raw = await b.raw_value(SECRET_KEY.format("s"))
        assert raw.startswith(f"k8s:enc:{kind}:v1:k1:".encode())
        assert_not_stored(raw, value)
        code, got, _ = await api.get("/api/v1/namespaces/default/secrets/s")
        assert code == 200 and password_of(got) == value


async def test_watch_and_watch_cache_carry_plaintext(tmp_path: Path) -> None:
    b = Backend("sqlite", tmp_path)
    value = random_plaintext()
    async with server(b, config(provider("aesgcm", ("k1", KEY1)))) as api:
        code, lst, _ = await api.get("/api/v1/namespaces/default/secrets")
        rv = lst["metadata"]["resourceVersion"]
        url = f"{api.base}/api/v1/namespaces/default/secrets?watch=1&resourceVersion={rv}&timeoutSeconds=5"
        async with api.session.get(url) as resp:
            await create_secret(api, "w", value)
            line = await asyncio.wait_for(resp.content.readline(), 10)
        ev = orjson.loads(line)
        assert ev["type"] == "ADDED" and password_of(ev["object"]) == value
        # the watch cache holds decrypted objects
        cached = [e for e in api.server.cache.events if e.key == SECRET_KEY.format("w")]
        assert cached and password_of(cached[-1].obj) == value


async def test_rotation_moves_every_secret_to_the_new_key(backend: Backend) -> None:
    values = {f"s{i}": random_plaintext() for i in range(1, 5)}
    async with server(backend, None) as api:  # one secret written before encryption was on
        await create_secret(api, "legacy", random_plaintext())
    async with server(backend, config(provider("aescbc", ("key1", KEY1)), provider("identity"))) as api:
        for name, value in values.items():
            await create_secret(api, name, value)
    values["legacy"] = ""
    for name in values:
        raw = await backend.raw_value(SECRET_KEY.format(name))
        assert raw.startswith(b"{" if name == "legacy" else b"k8s:enc:aescbc:v1:key1:")
    # step 2 of the procedure: the new key first, the old ones still readable
    cfg = config(provider("aescbc", ("key2", KEY2), ("key1", KEY1)), provider("identity"))
    async with server(backend, cfg) as api:
        from kybernetes.cli.secrets import rotate

        lines: list[str] = []
        async with RestClient(api.base) as client:
            failed = await rotate(client, [SECRETS], out=lines.append)
        assert failed == 0, lines
        assert any(line.startswith("secrets/default/s1: rewritten") for line in lines), lines
        assert lines[-1].startswith(f"kyb: secrets: {len(values)} total, {len(values)} rewritten"), lines
        for name in values:
            raw = await backend.raw_value(SECRET_KEY.format(name))
            assert raw.startswith(b"k8s:enc:aescbc:v1:key2:"), (name, raw[:40])
        # a second run has nothing left to do
        lines.clear()
        async with RestClient(api.base) as client:
            assert await rotate(client, [SECRETS], out=lines.append) == 0
        assert f"0 rewritten, {len(values)} already current" in lines[-1], lines
    # step 4: the old key removed; everything still reads
    async with server(backend, config(provider("aescbc", ("key2", KEY2)))) as api:
        code, lst, _ = await api.get("/api/v1/namespaces/default/secrets")
        assert code == 200 and len(lst["items"]) == len(values)


async def test_server_without_the_key_fails_cleanly_for_that_object(backend: Backend) -> None:
    good, lost = random_plaintext(), random_plaintext()
    async with server(backend, config(provider("aescbc", ("key1", KEY1)))) as api:
        await create_secret(api, "lost", lost)
    async with server(backend, config(provider("aescbc", ("key2", KEY2)))) as api:
        await create_secret(api, "good", good)
        code, body, _ = await api.get("/api/v1/namespaces/default/secrets/lost")
        assert code == 500, body
        assert body["reason"] == "InternalError"
        assert 'unable to transform key "/registry/secrets/default/lost"' in body["message"]
        assert "no matching key was found for the provided AES transformer" in body["message"]
        assert lost not in orjson.dumps(body).decode()
        # only that object: others still work, and the server is healthy
        code, got, _ = await api.get("/api/v1/namespaces/default/secrets/good")
        assert code == 200 and password_of(got) == good
        code, _, _ = await api.get("/api/v1/namespaces/default/configmaps")
        assert code == 200
        code, text, _ = await api.get("/readyz")
        assert code == 200
        # a list that would include it fails as upstream's does, with the same message
        code, body, _ = await api.get("/api/v1/namespaces/default/secrets")
        assert code == 500 and "unable to transform key" in body["message"]


async def test_plaintext_is_unreadable_without_identity(tmp_path: Path) -> None:
    b = Backend("sqlite", tmp_path)
    async with server(b, None) as api:
        await create_secret(api, "old", random_plaintext())
    async with server(b, config(provider("aesgcm", ("k1", KEY1)))) as api:
        code, body, _ = await api.get("/api/v1/namespaces/default/secrets/old")
        assert code == 500 and "no matching prefix found" in body["message"]


async def test_encrypted_data_is_refused_once_the_resource_is_unconfigured(tmp_path: Path) -> None:
    b = Backend("sqlite", tmp_path)
    async with server(b, config(provider("aesgcm", ("k1", KEY1)))) as api:
        await create_secret(api, "enc", random_plaintext())
    async with server(b, config(provider("aesgcm", ("k1", KEY1)), resources=("configmaps",))) as api:
        code, body, _ = await api.get("/api/v1/namespaces/default/secrets/enc")
        assert code == 500 and "identity transformer tried to read encrypted data" in body["message"]


async def test_watch_skips_an_undecryptable_event_and_goes_on(tmp_path: Path) -> None:
    """A value the server cannot decrypt is dropped from the watch stream (logged, counted);
    the watch cache keeps serving every other object."""
    b = Backend("sqlite", tmp_path)
    async with server(b, config(provider("aesgcm", ("k1", KEY1)))) as api:
        enc_store = api.server.store
        # another writer (an API server with another key) stores a secret meanwhile
        from kybernetes.apiserver.encryption import EncryptingStore

        foreign = EncryptingStore(enc_store.inner, config(provider("aesgcm", ("k9", KEY2))))
        await foreign.create(SECRET_KEY.format("foreign"), b'{"kind":"Secret","metadata":{"name":"foreign","namespace":"default"}}')
        value = random_plaintext()
        await create_secret(api, "after", value)
        code, got, _ = await api.get("/api/v1/namespaces/default/secrets/after")
        assert code == 200 and password_of(got) == value
        for _ in range(100):
            if any(e.key == SECRET_KEY.format("after") for e in api.server.cache.events):
                break
            await asyncio.sleep(0.05)
        keys = [e.key for e in api.server.cache.events]
        assert SECRET_KEY.format("after") in keys and SECRET_KEY.format("foreign") not in keys
        assert enc_store.statistics()["dropped_watch_events"] >= 1
