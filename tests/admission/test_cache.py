"""PrefixCache: list once, follow the watch cache, relist when its window moved on, read live
while an admitted write may not have reached the watch yet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from kybernetes.apiserver.admission.cache import PrefixCache, split_key
from kybernetes.apiserver.watchcache import CachedEvent
from kybernetes.storage.memory import MemoryStore
from tests.conftest import ApiClient
from tests.harness import wait_for

PREFIX = "/registry/limitranges/"


@dataclass
class FakeWatchCache:
    """The attributes PrefixCache reads from the API server's watch cache."""

    events: list[CachedEvent] = field(default_factory=list)
    revision: int = 0
    start_revision: int = 0

    def add(self, typ: str, key: str, obj: dict[str, Any] | None = None) -> None:
        self.revision += 1
        self.events.append(CachedEvent(self.revision, typ, key, orjson.dumps(obj or {"metadata": {"name": key.rsplit("/", 1)[1]}})))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_split_key() -> None:
    assert split_key(PREFIX, PREFIX + "ns/a") == ("ns", "a")
    assert split_key("/registry/priorityclasses/", "/registry/priorityclasses/high") == ("", "high")


async def test_follows_events_and_relists_when_the_window_moved() -> None:
    store = MemoryStore()
    await store.start()
    try:
        await store.create(PREFIX + "ns/a", b'{"metadata": {"name": "a"}}')
        wc = FakeWatchCache(revision=await store.current_revision())
        wc.start_revision = wc.revision
        clock = Clock()
        cache = PrefixCache(store, wc, PREFIX, clock=clock)  # type: ignore[arg-type]
        assert names(await cache.list("ns")) == ["a"] and cache.relists == 1
        wc.add("ADDED", PREFIX + "ns/b")
        wc.add("ADDED", "/registry/pods/ns/ignored")
        wc.add("DELETED", PREFIX + "ns/a")
        assert names(await cache.list("ns")) == ["b"] and cache.relists == 1   # caught up from the events
        assert await cache.list("other") == []
        # the watch cache restarted its window past what we saw (a compaction): list again
        for i in range(5):
            await store.create(f"/registry/configmaps/ns/{i}", b"{}")
        wc.events.clear()
        wc.revision = wc.start_revision = await store.current_revision()
        assert names(await cache.list("ns")) == ["a"] and cache.relists == 2
        # an admitted write: read the store directly for a while
        cache.touch()
        await store.create(PREFIX + "ns/c", b'{"metadata": {"name": "c"}}')
        assert names(await cache.list("ns")) == ["a", "c"] and cache.live_reads == 1
        clock.now += cache.settle + 1
        assert names(await cache.list("ns")) == ["a"]   # not in the (fake) watch yet: the cached view
    finally:
        await store.close()


async def test_read_your_writes_through_the_api(api: ApiClient) -> None:
    chain = api.server.api.admission
    cache = chain.caches[("", "limitranges")]
    lr = {"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m"}}]}}
    assert (await api.post("/api/v1/namespaces/default/limitranges", lr))[0] == 201
    # immediately visible to the next request (live read during the settle window)
    st, doc, _ = await api.post("/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert doc["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m"}
    # after the window the cache serves it from the watch, without listing again
    cache.settle = 0.0
    cache._live_until = 0.0
    await wait_for(lambda: _has(cache, "l"), what="cached LimitRange")
    relists = cache.relists
    assert (await api.delete("/api/v1/namespaces/default/limitranges/l"))[0] == 200
    cache._live_until = 0.0
    await wait_for(lambda: _has(cache, None), what="deletion seen")
    assert cache.relists == relists


async def _has(cache: PrefixCache, name: str | None) -> bool:
    got = names(await cache.list("default"))
    return got == ([name] if name else [])
