"""The watch-fed mirror: initial list, live events, and a relist that reports only the difference."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import orjson
import pytest

from kybernetes.apiserver.authz.mirror import Mirror
from kybernetes.apiserver.watchcache import WatchCache
from kybernetes.storage import open_store
from tests.harness import running_tasks, wait_for

P = "/registry/configmaps/"


def value(name: str, data: str = "") -> bytes:
    return orjson.dumps({"kind": "ConfigMap", "metadata": {"name": name, "namespace": "a"}, "data": {"x": data}})


@pytest.fixture
async def store_and_cache() -> AsyncIterator[tuple[Any, WatchCache]]:
    store = open_store("memory")
    await store.start()
    cache = WatchCache(store)
    async with running_tasks(cache.run()):
        await cache.wait_ready()
        yield store, cache
    cache.close_all()
    await store.close()


async def test_list_watch_and_relist(store_and_cache: tuple[Any, WatchCache]) -> None:
    store, cache = store_and_cache
    await store.create(P + "a/one", value("one"))
    await store.create(P + "a/two", value("two"))
    await store.create("/registry/secrets/a/other", value("other"))     # another prefix: never seen
    seen: list[tuple[str, str | None]] = []

    def on_change(key: str, obj: dict[str, Any] | None) -> None:
        seen.append((key, None if obj is None else obj["data"]["x"]))

    m = Mirror(store, cache, P, on_change)
    await m.start()
    assert sorted(seen) == [(P + "a/one", ""), (P + "a/two", "")]
    seen.clear()
    async with running_tasks(m.run()):
        kv = await store.get(P + "a/one")
        await store.update(P + "a/one", value("one", "v2"), expected_revision=kv.mod_revision)
        await store.delete(P + "a/two")
        await wait_for(lambda: len(seen) == 2, timeout=3, what="events")
        assert seen == [(P + "a/one", "v2"), (P + "a/two", None)]
        seen.clear()
        # the watcher ends (as after a compaction); meanwhile one object changes, one appears
        m._watcher.close()  # type: ignore[union-attr]
        await store.create(P + "a/three", value("three"))
        await wait_for(lambda: m.relists == 2, timeout=3, what="relist")
        await asyncio.sleep(0.1)
        assert seen == [(P + "a/three", "")]       # only the difference is reported
        m.close()
    assert m.relists == 2
