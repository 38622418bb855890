"""One behaviour suite that every durable backend (sqlite, etcd) must pass."""

from __future__ import annotations

import asyncio
import random
from typing import AsyncIterator

import pytest

from kybernetes.storage.errors import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
)
from kybernetes.storage.interface import Event, Store

from .conftest import Backend


async def collect(it: AsyncIterator[list[Event]], n: int, timeout: float = 10.0) -> list[Event]:
    """Read events from a watch until ``n`` arrived."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.extend(await anext(it))
    return out


async def test_crud_round_trip(store: Store, ns: str) -> None:
    k = ns + "a"
    created = await store.create(k, b"v1")
    assert (created.key, created.value) == (k, b"v1")
    assert created.create_revision == created.mod_revision > 0
    assert await store.get(k) == created

    updated = await store.update(k, b"v2", expected_revision=created.mod_revision)
    assert updated.mod_revision > created.mod_revision
    assert updated.create_revision == created.create_revision
    assert await store.get(k) == updated

    deleted = await store.delete(k, expected_revision=updated.mod_revision)
    assert deleted.value == b"v2" and deleted.mod_revision > updated.mod_revision
    assert deleted.create_revision == created.create_revision
    assert await store.get(k) is None
    assert await store.current_revision() >= deleted.mod_revision


async def test_create_existing_key_fails(store: Store, ns: str) -> None:
    await store.create(ns + "a", b"1")
    with pytest.raises(KeyExistsError):
        await store.create(ns + "a", b"2")
    assert (await store.get(ns + "a")).value == b"1"  # type: ignore[union-attr]


async def test_recreate_after_delete_gets_new_create_revision(store: Store, ns: str) -> None:
    first = await store.create(ns + "a", b"1")
    await store.delete(ns + "a")
    second = await store.create(ns + "a", b"2")
    assert second.create_revision == second.mod_revision > first.create_revision


async def test_update_and_delete_conflicts(store: Store, ns: str) -> None:
    kv = await store.create(ns + "a", b"1")
    newer = await store.update(ns + "a", b"2")  # unconditional
    with pytest.raises(ConflictError) as exc:
        await store.update(ns + "a", b"3", expected_revision=kv.mod_revision)
    assert exc.value.current == newer and exc.value.expected == kv.mod_revision
    with pytest.raises(ConflictError):
        await store.delete(ns + "a", expected_revision=kv.mod_revision)
    assert (await store.get(ns + "a")) == newer


async def test_update_and_delete_missing_key(store: Store, ns: str) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update(ns + "nope", b"1")
    with pytest.raises(KeyNotFoundError):
        await store.update(ns + "nope", b"1", expected_revision=5)
    with pytest.raises(KeyNotFoundError):
        await store.delete(ns + "nope")


async def test_get_at_old_and_future_revision(store: Store, ns: str) -> None:
    v1 = await store.create(ns + "a", b"1")
    await store.update(ns + "a", b"2")
    gone = await store.delete(ns + "a")
    assert (await store.get(ns + "a", revision=v1.mod_revision)) == v1
    assert await store.get(ns + "a", revision=gone.mod_revision) is None
    with pytest.raises(FutureRevisionError):
        await store.get(ns + "a", revision=gone.mod_revision + 1000)


async def test_list_is_a_snapshot_at_a_revision(store: Store, ns: str) -> None:
    for name in "abc":
        await store.create(ns + name, name.encode())
    await store.create(ns[:-1] + "x/other", b"outside the prefix")
    snap = await store.list(ns)
    assert [kv.key for kv in snap.items] == [ns + "a", ns + "b", ns + "c"]
    assert not snap.more

    await store.update(ns + "b", b"B")
    await store.delete(ns + "c")
    await store.create(ns + "d", b"d")

    old = await store.list(ns, revision=snap.revision)
    assert old.items == snap.items and old.revision == snap.revision
    now = await store.list(ns)
    assert [(kv.key, kv.value) for kv in now.items] == [(ns + "a", b"a"), (ns + "b", b"B"), (ns + "d", b"d")]
    assert now.revision > snap.revision
    assert await store.count(ns) == 3


async def test_pagination_stays_consistent_under_concurrent_writes(store: Store, ns: str) -> None:
    keys = [f"{ns}k{i:03d}" for i in range(40)]
    await asyncio.gather(*(store.create(k, b"orig") for k in keys))
    expected = {k: b"orig" for k in keys}
    rng = random.Random(7)

    async def churn() -> None:
        for i in range(60):
            k = rng.choice(keys)
            try:
                if i % 3 == 0:
                    await store.delete(k)
                else:
                    await store.update(k, f"new{i}".encode())
            except KeyNotFoundError:
                await store.create(k, b"again")
            if i % 10 == 0:
                await store.create(f"{ns}k{i:03d}x", b"inserted")

    page = await store.list(ns, limit=7, count_remaining=True)
    revision, seen = page.revision, list(page.items)
    assert page.more and page.remaining == 40 - 7
    writer = asyncio.ensure_future(churn())
    try:
        while page.more:
            await asyncio.sleep(0.005)  # let writes land between pages
            page = await store.list(ns, revision=revision, limit=7, start_after=seen[-1].key)
            assert page.revision == revision
            seen.extend(page.items)
    finally:
        await writer
    assert {kv.key: kv.value for kv in seen} == expected
    assert [kv.key for kv in seen] == sorted(expected)
    assert all(kv.mod_revision <= revision for kv in seen)


async def test_count_follows_creates_and_deletes(store: Store, ns: str) -> None:
    assert await store.count(ns) == 0
    for i in range(5):
        await store.create(f"{ns}{i}", b"x")
    await store.delete(f"{ns}3")
    assert await store.count(ns) == 4


async def test_watch_replays_history_then_continues_live(store: Store, ns: str) -> None:
    start = await store.current_revision()
    a1 = await store.create(ns + "a", b"1")
    a2 = await store.update(ns + "a", b"2")
    await store.create(ns[:-1] + "-other/x", b"not watched")
    gone = await store.delete(ns + "a")

    it = store.watch(ns, start)
    try:
        events = await collect(it, 3)
        assert [(e.type, e.revision) for e in events] == [
            ("PUT", a1.mod_revision), ("PUT", a2.mod_revision), ("DELETE", gone.mod_revision)
        ]
        assert events[0].is_create and events[0].prev is None
        assert events[1].prev == a1 and events[1].kv == a2
        assert events[2].kv.value == b"2" and events[2].prev == a2

        b = await store.create(ns + "b", b"live")
        live = await collect(it, 1)
        assert [(e.type, e.kv) for e in live] == [("PUT", b)]
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_from_middle_revision_skips_older_events(store: Store, ns: str) -> None:
    a1 = await store.create(ns + "a", b"1")
    a2 = await store.update(ns + "a", b"2")
    it = store.watch(ns, a1.mod_revision)
    try:
        assert [e.kv for e in await collect(it, 1)] == [a2]
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_during_concurrent_writes_has_no_gap_or_duplicate(store: Store, ns: str) -> None:
    start = await store.current_revision()
    n = 150

    async def writer(i: int) -> None:
        for j in range(n // 15):
            await store.create(f"{ns}{i}-{j}", b"x")

    writers = asyncio.gather(*(writer(i) for i in range(15)))
    await asyncio.sleep(0.01)  # start watching while writes are in flight
    it = store.watch(ns, start)
    try:
        events = await collect(it, n)
        await writers
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    revs = [e.revision for e in events]
    assert revs == sorted(set(revs)) and len(revs) == n
    assert {e.kv.key for e in events} == {f"{ns}{i}-{j}" for i in range(15) for j in range(n // 15)}


async def test_compaction_makes_old_revisions_unreadable(store: Store, ns: str) -> None:
    v1 = await store.create(ns + "a", b"1")
    await store.update(ns + "a", b"2")
    await store.create(ns + "b", b"b")
    await store.delete(ns + "b")
    keep = await store.update(ns + "a", b"3")
    await store.compact(keep.mod_revision)
    assert await store.compacted_revision() >= keep.mod_revision

    with pytest.raises(CompactedError) as exc:
        await anext(store.watch(ns, v1.mod_revision))
    assert exc.value.compacted >= keep.mod_revision
    with pytest.raises(CompactedError):
        await store.get(ns + "a", revision=v1.mod_revision)
    with pytest.raises(CompactedError):
        await store.list(ns, revision=v1.mod_revision)

    # The latest state survives; watching from the compacted revision still works.
    assert [kv.value for kv in (await store.list(ns)).items] == [b"3"]
    it = store.watch(ns, await store.compacted_revision())
    try:
        later = await store.update(ns + "a", b"4")
        assert [e.kv for e in await collect(it, 1)] == [later]
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_many_concurrent_writers_get_unique_increasing_revisions(store: Store, ns: str) -> None:
    async def writer(i: int) -> list[int]:
        return [(await store.create(f"{ns}{i}/{j}", b"v")).mod_revision for j in range(20)]

    per_task = await asyncio.gather(*(writer(i) for i in range(50)))
    for revs in per_task:
        assert revs == sorted(revs) and len(set(revs)) == 20
    everything = [r for revs in per_task for r in revs]
    assert len(set(everything)) == 1000
    assert await store.count(ns) == 1000
    assert await store.current_revision() >= max(everything)


async def test_read_modify_write_loops_lose_no_update(store: Store, ns: str) -> None:
    key = ns + "counter"
    await store.create(key, b"0")
    conflicts = 0

    async def incrementer() -> None:
        nonlocal conflicts
        cur = await store.get(key)
        for _ in range(10):
            while True:
                assert cur is not None
                try:
                    cur = await store.update(key, b"%d" % (int(cur.value) + 1), expected_revision=cur.mod_revision)
                    break
                except ConflictError as exc:
                    conflicts += 1
                    cur = exc.current  # type: ignore[assignment]

    await asyncio.gather(*(incrementer() for _ in range(20)))
    assert (await store.get(key)).value == b"200"  # type: ignore[union-attr]
    assert conflicts > 0  # the test really raced


async def test_data_survives_restart(backend: Backend, store: Store, ns: str) -> None:
    a = await store.create(ns + "a", b"1")
    b = await store.update(ns + "a", b"2")
    c = await store.create(ns + "c", b"c")
    gone = await store.delete(ns + "c")
    rev = await store.current_revision()

    store = await backend.restart(store)
    assert await store.get(ns + "a") == b
    assert await store.get(ns + "a", revision=a.mod_revision) == a
    assert await store.get(ns + "c") is None
    assert await store.get(ns + "c", revision=c.mod_revision) == c
    assert await store.current_revision() >= rev >= gone.mod_revision
    nxt = await store.create(ns + "d", b"d")
    assert nxt.mod_revision > rev
