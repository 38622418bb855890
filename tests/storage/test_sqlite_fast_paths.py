"""SqliteStore's performance paths keep the Store semantics: loop-thread point reads and
index-bounded paging over tombstones."""

from __future__ import annotations

from pathlib import Path

from kybernetes.storage.sqlite import SqliteStore


async def test_point_reads_on_the_loop_see_every_committed_write(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        assert await store.get("/k") is None
        created = await store.create("/k", b"v1")
        assert await store.get("/k") == created  # read-your-write, no pool hop
        updated = await store.update("/k", b"v2", expected_revision=created.mod_revision)
        got = await store.get("/k")
        assert got == updated and got.create_revision == created.mod_revision
        # the pool path (explicit revision) agrees with the fast path
        assert await store.get("/k", revision=created.mod_revision) == created
        assert await store.current_revision() == updated.mod_revision
        await store.delete("/k")
        assert await store.get("/k") is None
        await store.compact(updated.mod_revision)
        assert await store.compacted_revision() == updated.mod_revision


async def test_paging_skips_tombstoned_keys(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "s.db")) as store:
        for i in range(10):
            await store.create(f"/p/k{i}", b"x")
        for i in range(1, 7):
            await store.delete(f"/p/k{i}")
        await store.create("/q/other", b"y")
        first = await store.list("/p/", limit=2, count_remaining=True)
        assert [kv.key for kv in first.items] == ["/p/k0", "/p/k7"]
        assert first.more and first.remaining == 2
        second = await store.list("/p/", limit=2, revision=first.revision, start_after="/p/k7")
        assert [kv.key for kv in second.items] == ["/p/k8", "/p/k9"]
        assert not second.more
        everything = await store.list("/p/")
        assert [kv.key for kv in everything.items] == ["/p/k0", "/p/k7", "/p/k8", "/p/k9"]
