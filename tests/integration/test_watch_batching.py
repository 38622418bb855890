"""The watch cache hands events to watchers in batches: in order, at most once per flush
interval under load, and it ends watchers whose consumer cannot keep up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kybernetes.apiserver.watchcache import CachedEvent, WatchCache
from kybernetes.storage.sqlite import SqliteStore


async def _started(store: SqliteStore) -> tuple[WatchCache, asyncio.Task[None]]:
    cache = WatchCache(store)
    task = asyncio.ensure_future(cache.run())
    await cache.wait_ready()
    return cache, task


async def test_events_arrive_in_order_in_few_batches(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        cache, task = await _started(store)
        try:
            cache.flush_interval = 0.3
            cache.full_round = 1  # one watcher counts as a full round: the whole interval applies
            batches: list[list[CachedEvent]] = []
            w = cache.watch("/registry/a/", cache.revision)
            w.start(lambda b: batches.append(b) or True)
            await store.create("/registry/b/ignored", b'{"metadata": {}}')
            for i in range(20):
                await store.create(f"/registry/a/k{i:02d}", b'{"metadata": {}}')
            for _ in range(100):
                if sum(map(len, batches)) == 20:
                    break
                await asyncio.sleep(0.02)
            keys = [ev.key for b in batches for ev in b]
            assert keys == [f"/registry/a/k{i:02d}" for i in range(20)]
            assert len(batches) <= 3  # the first goes out at once, the rest wait for the interval
            assert batches[0][0].obj["metadata"]["resourceVersion"] == str(batches[0][0].revision)
        finally:
            task.cancel()


async def test_few_watchers_get_events_without_the_full_interval(tmp_path: Path) -> None:
    """Batching delays only pay off for big rounds: one watcher waits a small share of it."""
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        cache, task = await _started(store)
        try:
            cache.flush_interval = 5.0  # a full interval would time this test out
            got: list[CachedEvent] = []
            w = cache.watch("/registry/a/", cache.revision)
            w.start(lambda b: got.extend(b) or True)
            for i in range(3):
                await store.create(f"/registry/a/k{i}", b'{"metadata": {}}')
                for _ in range(100):
                    if len(got) == i + 1:
                        break
                    await asyncio.sleep(0.01)
                assert len(got) == i + 1  # within 1 s, not 5 s: 5.0 * 1/200 = 25 ms
        finally:
            task.cancel()


async def test_a_refusing_consumer_ends_its_watcher(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        cache, task = await _started(store)
        try:
            w = cache.watch("/registry/", cache.revision)
            w.start(lambda b: False)  # e.g. the client stopped reading
            assert cache.watcher_count() == 1
            await store.create("/registry/x", b"{}")
            assert await w.wait_closed(2.0)
            assert w.overflowed and cache.watcher_count() == 0
        finally:
            task.cancel()


async def test_replay_from_the_window_and_shrunk_events_decode_again(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        cache, task = await _started(store)
        try:
            start = cache.revision
            for i in range(3):
                await store.create(f"/registry/r/k{i}", b'{"metadata": {"name": "n"}}')
            while cache.revision < start + 3:
                await asyncio.sleep(0.01)
            for ev in cache.events:
                ev.shrink()
            got: list[CachedEvent] = []
            w = cache.watch("/registry/r/", start + 1)  # replays what came after start + 1
            w.start(lambda b: got.extend(b) or True)
            assert [ev.key for ev in got] == ["/registry/r/k1", "/registry/r/k2"]
            assert got[0].obj == {"metadata": {"name": "n", "resourceVersion": str(start + 2)}}
            w.close()
        finally:
            task.cancel()


def test_use_fast_event_loop_sets_uvloop_policy_when_installed() -> None:
    import importlib.util

    from kybernetes.util.loop import use_fast_event_loop

    before = asyncio.get_event_loop_policy()
    try:
        name = use_fast_event_loop()
        has_uvloop = importlib.util.find_spec("uvloop") is not None
        assert name == ("uvloop" if has_uvloop else "asyncio")
        if has_uvloop:
            assert type(asyncio.get_event_loop_policy()).__module__.startswith("uvloop")
    finally:
        asyncio.set_event_loop_policy(before)


async def test_a_flush_round_serves_more_watchers_than_one_slice(tmp_path: Path) -> None:
    from kybernetes.apiserver.watchcache import FLUSH_SLICE

    async with SqliteStore(str(tmp_path / "s.db")) as store:
        cache, task = await _started(store)
        try:
            n = FLUSH_SLICE * 2 + 50
            got: list[list[int]] = [[] for _ in range(n)]
            for i in range(n):
                w = cache.watch("/registry/m/", cache.revision)
                w.start(lambda b, i=i: got[i].extend(ev.revision for ev in b) or True)
            revs = [(await store.create(f"/registry/m/k{j}", b"{}")).mod_revision for j in range(3)]
            for _ in range(100):
                if all(len(g) == 3 for g in got):
                    break
                await asyncio.sleep(0.02)
            assert got == [revs] * n  # every watcher, every event, once, in order
        finally:
            task.cancel()
