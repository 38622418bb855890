"""etcd-specific behaviour (availability, helpers) and the periodic compactor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kybernetes.storage import open_store
from kybernetes.storage.compactor import compact_once, compaction_target, run_compactor
from kybernetes.storage.errors import UnavailableError
from kybernetes.storage.etcd import EtcdStore, grpc_target, prefix_range_end
from kybernetes.storage.sqlite import SqliteStore
from tests.etcd_server import EtcdServer, free_port

from .conftest import needs_etcd


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        pytest.param(b"/a/", b"/a0", id="slash"),
        pytest.param(b"a\xff", b"b", id="carry"),
        pytest.param(b"", b"\0", id="all"),
    ],
)
def test_prefix_range_end(prefix: bytes, end: bytes) -> None:
    assert prefix_range_end(prefix) == end


@pytest.mark.parametrize(
    ("endpoints", "target"),
    [
        pytest.param(["http://127.0.0.1:2379"], "127.0.0.1:2379", id="one"),
        pytest.param(["http://10.0.0.1:1", "http://10.0.0.2:2"], "ipv4:10.0.0.1:1,10.0.0.2:2", id="many"),
        pytest.param(["etcd.local:2379"], "etcd.local:2379", id="no-scheme"),
    ],
)
def test_grpc_target(endpoints: list[str], target: str) -> None:
    assert grpc_target(endpoints) == target


@pytest.mark.parametrize(
    ("current", "compacted", "keep", "target"),
    [
        pytest.param(5000, 0, 1000, 4000, id="advance"),
        pytest.param(5000, 4000, 1000, None, id="already"),
        pytest.param(500, 0, 1000, None, id="too-young"),
    ],
)
def test_compaction_target(current: int, compacted: int, keep: int, target: int | None) -> None:
    assert compaction_target(current, compacted, keep) == target


async def test_compactor_keeps_the_newest_revisions(tmp_path: Path) -> None:
    async with SqliteStore(str(tmp_path / "db")) as store:
        await store.create("/k", b"0")
        for i in range(30):
            await store.update("/k", b"%d" % i)
        assert await compact_once(store, keep=10) == 21
        assert await compact_once(store, keep=10) is None
        task = asyncio.ensure_future(run_compactor(store, interval=0.01, keep=5))
        await asyncio.sleep(0.1)
        assert await store.compacted_revision() == 26
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_unreachable_etcd_raises_unavailable_quickly() -> None:
    store = EtcdStore([f"http://127.0.0.1:{free_port()}"], timeout=1.0)
    await store.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(UnavailableError):
            await store.create("/x", b"1")
        with pytest.raises(UnavailableError):
            await anext(store.watch("/", 0))
        assert time.monotonic() - t0 < 5
    finally:
        await store.close()


@needs_etcd
@pytest.mark.etcd
async def test_watch_ends_with_unavailable_when_etcd_dies(tmp_path: Path) -> None:
    with EtcdServer(tmp_path) as etcd:
        store = open_store("etcd", endpoints=etcd.endpoints)
        await store.start()
        try:
            it = store.watch("/w/", await store.current_revision())
            kv = await store.create("/w/a", b"1")
            assert [e.kv for e in await anext(it)] == [kv]
            etcd.kill9()
            with pytest.raises(UnavailableError):
                async with asyncio.timeout(10):
                    await anext(it)
            etcd.start()
            assert (await store.get("/w/a")) == kv  # the channel reconnects
        finally:
            await store.close()
