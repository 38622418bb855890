"""SQLite-specific behaviour: group commit, laggard watchers, compaction on disk, lifecycle."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kybernetes.storage import open_store
from kybernetes.storage.errors import StoreClosedError, StoreError, WatchLaggedError
from kybernetes.storage.interface import Event, KeyValue
from kybernetes.storage.sqlite import SqliteStore, prefix_end, row_event


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        pytest.param("/a/", "/a0", id="slash"),
        pytest.param("abc", "abd", id="plain"),
        pytest.param("", None, id="empty"),
        pytest.param("a\U0010ffff", "b", id="max-code-point"),
    ],
)
def test_prefix_end(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end


@pytest.mark.parametrize(
    ("row", "event"),
    [
        pytest.param((5, "k", 1, 0, 5, 0, b"v", None), Event("PUT", KeyValue("k", b"v", 5, 5)), id="create"),
        pytest.param(
            (7, "k", 0, 0, 5, 5, b"v2", b"v"),
            Event("PUT", KeyValue("k", b"v2", 7, 5), KeyValue("k", b"v", 5, 5)),
            id="update",
        ),
        pytest.param(
            (9, "k", 0, 1, 5, 7, b"v2", None),
            Event("DELETE", KeyValue("k", b"v2", 9, 5), KeyValue("k", b"v2", 7, 5)),
            id="delete",
        ),
        pytest.param((11, "k", 1, 0, 11, 9, b"n", None), Event("PUT", KeyValue("k", b"n", 11, 11)), id="recreate"),
    ],
)
def test_row_event(row: tuple[object, ...], event: Event) -> None:
    assert row_event(row) == event


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(str(tmp_path / "db"))
    await store.start()
    yield store  # type: ignore[misc]
    await store.close()


async def test_concurrent_writes_share_commits(sqlite_store: SqliteStore) -> None:
    await asyncio.gather(*(sqlite_store.create(f"/k/{i}", b"v") for i in range(200)))
    stats = sqlite_store.statistics()
    assert stats["writes"] == 200
    assert stats["commits"] < 100  # group commit: many writes per fsync


async def test_failing_op_in_a_group_fails_only_itself(sqlite_store: SqliteStore) -> None:
    await sqlite_store.create("/k/dup", b"v")
    results = await asyncio.gather(
        *(sqlite_store.create(f"/k/{i}", b"v") for i in range(20)),
        sqlite_store.create("/k/dup", b"again"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, KeyValue) for r in results) == 20
    assert type(results[-1]).__name__ == "KeyExistsError"


async def test_slow_watcher_is_dropped_with_lagged_error(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "db"), watch_buffer=10)
    await store.start()
    try:
        it = store.watch("/k/", 0)
        first = await sqlite_store_create_and_read(store, it)
        for i in range(30):  # nobody reads: the buffer overflows
            await store.create(f"/k/{i}", b"v")
        with pytest.raises(WatchLaggedError) as exc:
            async with asyncio.timeout(5):
                async for _ in it:
                    pass
        assert exc.value.last_revision == first
        assert store.statistics()["watchers"] == 0
        # Re-watching from the last revision delivers everything missed.
        again = store.watch("/k/", exc.value.last_revision)
        batch = await anext(again)
        assert len(batch) == 30
        await again.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()


async def sqlite_store_create_and_read(store: SqliteStore, it: object) -> int:
    kv = await store.create("/k/first", b"v")
    events = await anext(it)  # type: ignore[call-overload]
    assert [e.kv for e in events] == [kv]
    return kv.mod_revision


async def test_compaction_deletes_superseded_rows_and_tombstones(sqlite_store: SqliteStore, tmp_path: Path) -> None:
    await sqlite_store.create("/k/a", b"1")
    for i in range(5):
        await sqlite_store.update("/k/a", b"%d" % i)
    await sqlite_store.create("/k/b", b"b")
    gone = await sqlite_store.delete("/k/b")
    await sqlite_store.compact(gone.mod_revision)
    with sqlite3.connect(str(tmp_path / "db")) as conn:
        rows = conn.execute("SELECT name, deleted FROM kine ORDER BY id").fetchall()
    assert rows == [("/k/a", 0)]
    assert await sqlite_store.compacted_revision() == gone.mod_revision
    # The revision counter does not go back although the newest row was removed.
    assert (await sqlite_store.create("/k/c", b"c")).mod_revision == gone.mod_revision + 1


async def test_compacted_revision_persists_across_reopen(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "db")) as store:
        kv = await store.create("/k/a", b"1")
        await store.update("/k/a", b"2")
        await store.compact(kv.mod_revision + 1)
    async with SqliteStore(str(tmp_path / "db")) as store:
        assert await store.compacted_revision() == kv.mod_revision + 1


async def test_close_ends_watchers_and_rejects_calls(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "db"))
    await store.start()
    it = store.watch("/", 0)
    reader = asyncio.ensure_future(anext(it, None))
    await asyncio.sleep(0.05)
    await store.close()
    assert await asyncio.wait_for(reader, 5) is None
    with pytest.raises(StoreClosedError):
        await store.create("/x", b"1")
    with pytest.raises(StoreClosedError):
        await store.get("/x")


async def test_cancelled_watch_unsubscribes(sqlite_store: SqliteStore) -> None:
    it = sqlite_store.watch("/", 0)
    task = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0.05)
    assert sqlite_store.statistics()["watchers"] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await it.aclose()  # type: ignore[attr-defined]
    assert sqlite_store.statistics()["watchers"] == 0


async def test_open_store_factory(tmp_path: Path) -> None:
    store = open_store("sqlite", path=str(tmp_path / "db"))
    assert isinstance(store, SqliteStore)
    with pytest.raises(ValueError):
        open_store("sqlite")
    with pytest.raises(ValueError):
        open_store("etcd")
    with pytest.raises(ValueError):
        open_store("zookeeper")


async def test_writer_bug_fails_the_batch_but_keeps_the_store_usable(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as m:
        m.setattr(SqliteStore, "_apply", staticmethod(broken))
        with pytest.raises(StoreError, match="boom"):
            await sqlite_store.create("/k/a", b"1")
    kv = await sqlite_store.create("/k/a", b"1")
    assert kv.mod_revision == 1 and await sqlite_store.get("/k/a") == kv


async def test_database_uses_wal(sqlite_store: SqliteStore, tmp_path: Path) -> None:
    await sqlite_store.create("/k/a", b"1")
    with sqlite3.connect(str(tmp_path / "db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
