"""Crash safety: every acknowledged write survives kill -9 (of the writer, or of etcd)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from kybernetes.storage.errors import StoreError
from kybernetes.storage.etcd import EtcdStore
from kybernetes.storage.interface import Store
from kybernetes.storage.sqlite import SqliteStore
from tests.etcd_server import EtcdServer

from .conftest import needs_etcd
from .crash_writer import make_value, value_ok

REPO = Path(__file__).resolve().parents[2]
Ack = tuple[str, int, int]  # key, revision, phase


def parse_acks(out: bytes) -> list[Ack]:
    acks = []
    for line in out.split(b"\n")[:-1]:  # the last piece may be a torn line
        tag, key, rev, phase = line.decode().split()
        assert tag == "ACK"
        acks.append((key, int(rev), int(phase)))
    return acks


async def assert_acked_present(store: Store, acks: list[Ack]) -> None:
    for key, rev, phase in acks:
        kv = await store.get(key, revision=rev)
        assert kv is not None, f"acknowledged write lost: {key}@{rev}"
        assert kv.mod_revision == rev and kv.value == make_value(key, phase)


async def test_sqlite_acknowledged_writes_survive_kill9(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.db")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.storage.crash_writer", db,
        stdout=asyncio.subprocess.PIPE, cwd=REPO, env=env,
    )
    out = b""
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while out.count(b"\n") < 2000:
                chunk = await proc.stdout.read(65536)
                assert chunk, "writer exited early"
                out += chunk
        proc.send_signal(signal.SIGKILL)
        out += await proc.stdout.read()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    acks = parse_acks(out)
    assert len(acks) >= 2000

    def inspect() -> tuple[str, list[tuple[str, bytes]]]:
        with sqlite3.connect(db) as conn:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            return check, conn.execute("SELECT name, value FROM kine").fetchall()

    check, rows = await asyncio.to_thread(inspect)
    assert check == "ok"
    assert all(value_ok(name, value) for name, value in rows), "half-written row"
    async with SqliteStore(db) as store:
        await assert_acked_present(store, acks)
        assert len(rows) >= len(acks)


@needs_etcd
@pytest.mark.etcd
async def test_etcd_acknowledged_writes_survive_kill9(tmp_path: Path) -> None:
    acks: list[Ack] = []
    with EtcdServer(tmp_path) as etcd:
        store = EtcdStore(etcd.endpoints, timeout=2.0)
        await store.start()
        try:
            async def worker(w: int) -> None:
                for i in range(10_000):
                    key = f"/crash/{w}/{i}"
                    try:
                        kv = await store.create(key, make_value(key, 0))
                    except StoreError:
                        return  # etcd is gone
                    acks.append((key, kv.mod_revision, 0))

            async def killer() -> None:
                while len(acks) < 300:
                    await asyncio.sleep(0.005)
                await asyncio.to_thread(etcd.kill9)

            async with asyncio.timeout(30):
                await asyncio.gather(killer(), *(worker(w) for w in range(16)))
            await asyncio.to_thread(etcd.start)
            await assert_acked_present(store, acks)
        finally:
            await store.close()
