"""Informers against the real API server: handlers, indexes, watch restarts, relist after 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.indexer import index_by_label
from kybernetes.client.informer import InformerFactory, SharedInformer
from kybernetes.client.keys import DeletedFinalStateUnknown
from kybernetes.client.resources import CONFIGMAPS
from kybernetes.client.rest import ApiClient

from .conftest import cm, wait_for

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self, inf: SharedInformer) -> None:
        self.events: list[tuple[str, Any]] = []
        inf.add_event_handler(
            on_add=lambda o: self.events.append(("add", o["metadata"]["name"])),
            on_update=lambda old, new: self.events.append(("update", new["metadata"]["name"])),
            on_delete=self._deleted)

    def _deleted(self, o: Any) -> None:
        if isinstance(o, DeletedFinalStateUnknown):
            self.events.append(("tombstone", o.obj["metadata"]["name"]))
        else:
            self.events.append(("delete", o["metadata"]["name"]))


class GatedClient(ApiClient):
    """An ApiClient whose watches wait for a gate: lets a test make the informer miss events."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.gate = asyncio.Event()
        self.gate.set()
        self.blocked = asyncio.Event()

    async def watch(self, *a: Any, **kw: Any) -> AsyncIterator[tuple[str, Any]]:  # type: ignore[override]
        if not self.gate.is_set():
            self.blocked.set()
            await self.gate.wait()
        async for ev in super().watch(*a, **kw):
            yield ev


async def run_informer(inf: SharedInformer) -> asyncio.Task[None]:
    task = asyncio.ensure_future(inf.run())
    assert await inf.wait_for_sync(5)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_informer_add_update_delete_and_index(client: ApiClient) -> None:
    await client.create(CONFIGMAPS, cm("pre", app="web"))
    inf = SharedInformer(client, CONFIGMAPS, namespace="default", indexers={"app": index_by_label("app")},
                         page_size=1)
    rec = Recorder(inf)
    task = await run_informer(inf)
    try:
        assert ("add", "pre") in rec.events
        await client.create(CONFIGMAPS, cm("a", app="db"))
        await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"app": "web"}}}, "default")
        await client.delete(CONFIGMAPS, "pre", "default")
        await wait_for(lambda: ("delete", "pre") in rec.events)
        assert rec.events[-3:] == [("add", "a"), ("update", "a"), ("delete", "pre")]
        lister = inf.lister()
        assert lister.get("a", "default")["metadata"]["labels"] == {"app": "web"}
        assert [o["metadata"]["name"] for o in lister.by_index("app", "web")] == ["a"]
        assert lister.list("default", "app=db") == []
        # a late handler is first told about everything in the cache
        late: list[str] = []
        inf.add_event_handler(on_add=lambda o: late.append(o["metadata"]["name"]))
        assert "a" in late
    finally:
        await stop(task)


async def test_label_selector_and_resync(client: ApiClient) -> None:
    inf = SharedInformer(client, CONFIGMAPS, namespace="default", label_selector="app=web", resync_period=0.1)
    rec = Recorder(inf)
    await client.create(CONFIGMAPS, cm("w", app="web"))
    await client.create(CONFIGMAPS, cm("d", app="db"))
    task = await run_informer(inf)
    try:
        assert [n for _, n in rec.events if _ == "add"] == ["w"]
        await wait_for(lambda: rec.events.count(("update", "w")) >= 2)   # periodic resync
        assert all(n == "w" for _, n in rec.events)
    finally:
        await stop(task)


async def test_watch_restart_resumes_without_relist(client: ApiClient) -> None:
    inf = SharedInformer(client, CONFIGMAPS, namespace="default", watch_timeout=1)
    rec = Recorder(inf)
    task = await run_informer(inf)
    try:
        await wait_for(lambda: inf.reflector.watches >= 2, timeout=5)    # server ended the first watch
        await client.create(CONFIGMAPS, cm("after"))
        await wait_for(lambda: ("add", "after") in rec.events)
        assert inf.reflector.lists == 1
    finally:
        await stop(task)


async def test_relist_after_compaction_replays_a_diff(api: Any) -> None:
    client = GatedClient(api.base)
    try:
        await client.create(CONFIGMAPS, cm("keep"))
        await client.create(CONFIGMAPS, cm("gone"))
        await client.create(CONFIGMAPS, cm("changed"))
        inf = SharedInformer(client, CONFIGMAPS, namespace="default", watch_timeout=1)
        rec = Recorder(inf)
        task = await run_informer(inf)
        try:
            client.gate.clear()                        # the next watch waits ...
            await asyncio.wait_for(client.blocked.wait(), 5)
            # ... while the world changes and history is compacted away
            await client.delete(CONFIGMAPS, "gone", "default")
            await client.patch(CONFIGMAPS, "changed", {"data": {"k": "new"}}, "default")
            await client.create(CONFIGMAPS, cm("new"))
            store = api.server.store
            await store.compact(await store.current_revision())
            rec.events.clear()
            client.gate.set()
            await wait_for(lambda: inf.reflector.lists == 2)
            assert inf.reflector.expired == 1
            assert sorted(rec.events) == [("add", "new"), ("tombstone", "gone"), ("update", "changed")]
            assert sorted(inf.indexer.keys()) == ["default/changed", "default/keep", "default/new"]
            # and the informer keeps watching after the relist
            await client.create(CONFIGMAPS, cm("later"))
            await wait_for(lambda: ("add", "later") in rec.events)
        finally:
            await stop(task)
    finally:
        await client.close()


async def test_factory_shares_and_starts_late_informers(client: ApiClient) -> None:
    factory = InformerFactory(client)
    a = factory.informer(CONFIGMAPS, namespace="default")
    assert factory.informer(CONFIGMAPS, namespace="default") is a
    assert factory.informer(CONFIGMAPS) is not a
    task = asyncio.ensure_future(factory.run())
    try:
        assert await factory.wait_for_sync(5)
        late = factory.informer(CONFIGMAPS, label_selector="x=y")
        assert await late.wait_for_sync(5)
        assert a.statistics()["synced"] is True
    finally:
        await stop(task)
    assert not any(t.get_name().startswith("informers/") for t in asyncio.all_tasks())
