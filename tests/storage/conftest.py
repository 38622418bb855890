"""Fixtures: a started store of each backend, a unique key prefix, and a real etcd on loopback."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from kybernetes.storage.etcd import EtcdStore
from kybernetes.storage.interface import Store
from kybernetes.storage.sqlite import SqliteStore
from tests.etcd_server import EtcdServer, etcd_available

needs_etcd = pytest.mark.skipif(not etcd_available(), reason="etcd binary not installed")
BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("etcd", id="etcd", marks=[needs_etcd, pytest.mark.etcd])]
_counter = itertools.count()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One etcd per test session (per xdist worker); tests isolate themselves by key prefix."""
    if not etcd_available():
        pytest.skip("etcd binary not installed")
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ns() -> str:
    """A key prefix no other test uses (the etcd server is shared)."""
    return f"/t{next(_counter)}-{uuid.uuid4().hex[:8]}/"


class Backend:
    """Opens stores of one kind and can 'restart' the backend with its data kept."""

    def __init__(self, kind: str, tmp_path: Path, etcd: EtcdServer | None) -> None:
        self.kind = kind
        self.path = str(tmp_path / "kine.db")
        self.etcd = etcd
        self.opened: list[Store] = []

    async def open(self) -> Store:
        store: Store
        if self.kind == "sqlite":
            store = SqliteStore(self.path)
        else:
            assert self.etcd is not None
            store = EtcdStore(self.etcd.endpoints, timeout=5.0)
        await store.start()
        self.opened.append(store)
        return store

    async def restart(self, store: Store) -> Store:
        """Close ``store``, restart the backend (etcd: kill -9 and start), open a new store."""
        await store.close()
        if self.etcd is not None:
            self.etcd.restart()
        return await self.open()

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    etcd = request.getfixturevalue("etcd_server") if request.param == "etcd" else None
    b = Backend(request.param, tmp_path, etcd)
    try:
        yield b
    finally:
        await b.close_all()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


OpenFn = Callable[[], Awaitable[Store]]
