"""Unit and component tests of apiserver/authn.py: header parsing, users, the watched cache."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from kybernetes.apiserver import authn
from kybernetes.apiserver.watchcache import WatchCache
from kybernetes.pki.satoken import Ref, TokenClaims
from kybernetes.storage.memory import MemoryStore
from tests.harness import wait_for


@pytest.mark.parametrize(("header", "token"), [
    pytest.param(None, None, id="absent"),
    pytest.param("", None, id="empty"),
    pytest.param("Bearer abc", "abc", id="bearer"),
    pytest.param("bearer abc", "abc", id="lowercase"),
    pytest.param("  Bearer abc  ", "abc", id="padded"),
    pytest.param("Bearer abc def", "abc", id="trailing-words"),
    pytest.param("Bearer ", None, id="empty-token"),
    pytest.param("Bearer  abc", None, id="space-before-token"),
    pytest.param("Basic YTpi", None, id="basic"),
    pytest.param("Bearerabc", None, id="no-space"),
])
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert authn.bearer_token(header) == token


def test_service_account_user_and_dict_round_trip() -> None:
    c = TokenClaims(issuer="i", subject="system:serviceaccount:ns:bot", namespace="ns", service_account=Ref("bot", "u1"),
                    pod=Ref("web", "p1"), node=Ref("n1", ""), jti="j")
    user = authn.service_account_user(c)
    assert user == authn.UserInfo(
        name="system:serviceaccount:ns:bot", uid="u1",
        groups=("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"),
        extra={"authentication.kubernetes.io/pod-name": ("web",), "authentication.kubernetes.io/pod-uid": ("p1",),
               "authentication.kubernetes.io/node-name": ("n1",), "authentication.kubernetes.io/credential-id": ("JTI=j",)})
    assert authn.UserInfo.from_dict(user.as_dict()) == user
    cert_user = {"name": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    assert authn.UserInfo.from_dict(cert_user).as_dict() == cert_user


def _obj(kind: str, uid: str, **md: Any) -> bytes:
    return orjson.dumps({"kind": kind, "apiVersion": "v1", "metadata": {"uid": uid, **md}})


class SlowStore(MemoryStore):
    """A store whose point reads wait for a gate (to interleave a write with a read)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None

    async def get(self, key: str, *, revision: int = 0):  # type: ignore[no-untyped-def]
        kv = await super().get(key, revision=revision)
        if self.gate is not None:
            await self.gate.wait()
        return kv


@pytest.fixture
async def live():  # type: ignore[no-untyped-def]
    store = SlowStore()
    await store.start()
    cache = WatchCache(store)
    task = asyncio.ensure_future(cache.run())
    await cache.wait_ready()
    objs = authn.LiveObjects(store, cache, ("/registry/pods/",))
    try:
        yield store, cache, objs
    finally:
        cache.close_all()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await store.close()


async def test_live_objects_cache_and_invalidate(live) -> None:  # type: ignore[no-untyped-def]
    store, cache, objs = live
    key = "/registry/pods/ns/web"
    assert await objs.get(key) is None
    kv = await store.create(key, _obj("Pod", "u1"))
    # the negative entry is dropped when the create reaches the watch cache
    await wait_for(lambda: _uid(objs, key, "u1"), timeout=5, what="create seen")
    reads = objs.reads
    assert (await objs.lookup(key)) == (authn.Seen(uid="u1"), True) and objs.reads == reads
    await store.update(key, _obj("Pod", "u1", deletionTimestamp="2026-01-01T00:00:00Z"), expected_revision=kv.mod_revision)
    await wait_for(lambda: _deleted(objs, key), timeout=5, what="update seen")
    # a fresh read bypasses the cache
    await objs.get(key, fresh=True)
    assert objs.reads > reads


async def test_a_change_during_a_read_is_not_cached(live) -> None:  # type: ignore[no-untyped-def]
    store, cache, objs = live
    key = "/registry/pods/ns/web"
    kv = await store.create(key, _obj("Pod", "old"))
    await wait_for(lambda: cache.revision >= kv.mod_revision, timeout=5)
    store.gate = asyncio.Event()
    reader = asyncio.ensure_future(objs.get(key))
    await asyncio.sleep(0.05)          # the read has its (old) answer and waits at the gate
    await store.delete(key)
    await wait_for(lambda: key in objs._stale, timeout=5, what="delete delivered during the read")
    store.gate.set()
    assert (await reader) == authn.Seen(uid="old")   # answered ...
    store.gate = None
    assert key not in objs._entries                     # ... but not cached
    assert await objs.get(key) is None


async def _uid(objs: authn.LiveObjects, key: str, uid: str) -> bool:
    seen = await objs.get(key)
    return seen is not None and seen.uid == uid


async def _deleted(objs: authn.LiveObjects, key: str) -> bool:
    seen = await objs.get(key)
    return seen is not None and seen.deleted_at is not None
