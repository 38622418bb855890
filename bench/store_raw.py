"""Raw storage throughput: plain SQLite commits vs SqliteStore group commit, etcd vs EtcdStore.

    .venv/bin/python bench/store_raw.py [--n 4000] [--etcd-endpoints http://127.0.0.1:2379]

Prints one JSON object. ``measure(kind, ...)`` is importable (bench/run.py uses it); kinds:

* ``sqlite-raw-full`` / ``sqlite-raw-normal``: single-row INSERT + COMMIT in one thread, plain
  sqlite3, WAL, synchronous=FULL / NORMAL (the fsync-per-commit baseline);
* ``sqlite``: SqliteStore.create with ``concurrency`` tasks (group commit), plus p50/p99 latency;
* ``etcd-raw``: sequential puts through aetcd's client;
* ``etcd``: EtcdStore.create with ``concurrency`` tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "src"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from kybernetes.storage.etcd import EtcdStore  # noqa: E402
from kybernetes.storage.interface import Store  # noqa: E402
from kybernetes.storage.sqlite import SqliteStore  # noqa: E402


def raw_sqlite(path: str, synchronous: str, n: int, value_size: int) -> dict[str, Any]:
    """Commits/s of one-row transactions with plain sqlite3 in this thread."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT, value BLOB)")
        value = b"x" * value_size
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (name, value) VALUES (?, ?)", (f"/k/{i}", value))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    return {"ops": n, "seconds": round(elapsed, 3), "ops_per_s": round(n / elapsed)}


async def concurrent_creates(store: Store, n: int, concurrency: int, value_size: int) -> dict[str, Any]:
    """``n`` creates spread over ``concurrency`` tasks; throughput and latency percentiles."""
    value = b"x" * value_size
    latencies: list[float] = []
    run = os.urandom(4).hex()

    async def worker(w: int) -> None:
        for i in range(w, n, concurrency):
            t = time.perf_counter()
            await store.create(f"/bench/{run}/{i}", value)
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {
        "ops": n,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "ops_per_s": round(n / elapsed),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


async def raw_etcd(endpoint: str, n: int, value_size: int) -> dict[str, Any]:
    import aetcd

    parts = urlsplit(endpoint)
    value = b"x" * value_size
    async with aetcd.Client(parts.hostname or "127.0.0.1", parts.port or 2379, timeout=5) as client:
        t0 = time.perf_counter()
        for i in range(n):
            await client.put(f"/bench-raw/{i}".encode(), value)
        elapsed = time.perf_counter() - t0
    return {"ops": n, "seconds": round(elapsed, 3), "ops_per_s": round(n / elapsed)}


async def measure(
    kind: str,
    *,
    n: int = 4000,
    concurrency: int = 32,
    value_size: int = 1024,
    path: str | None = None,
    endpoints: list[str] | None = None,
) -> dict[str, Any]:
    """One measurement; ``path`` defaults to a fresh temp file, etcd kinds need ``endpoints``."""
    with tempfile.TemporaryDirectory(prefix="kyb-bench-") as tmp:
        db = path or os.path.join(tmp, "bench.db")
        if kind in ("sqlite-raw-full", "sqlite-raw-normal"):
            sync = "FULL" if kind.endswith("full") else "NORMAL"
            return await asyncio.to_thread(raw_sqlite, db, sync, n, value_size)
        if kind == "sqlite":
            async with SqliteStore(db) as store:
                result = await concurrent_creates(store, n, concurrency, value_size)
                result["commits"] = store.statistics()["commits"]
                return result
    if not endpoints:
        raise ValueError(f"{kind} needs etcd endpoints")
    if kind == "etcd-raw":
        return await raw_etcd(endpoints[0], n, value_size)
    if kind == "etcd":
        async with EtcdStore(endpoints) as estore:
            return await concurrent_creates(estore, n, concurrency, value_size)
    raise ValueError(f"unknown kind {kind!r}")


async def measure_all(n: int, endpoints: list[str] | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in ("sqlite-raw-full", "sqlite-raw-normal", "sqlite"):
        results[kind] = await measure(kind, n=n)
    server = None
    if not endpoints:
        from tests.etcd_server import EtcdServer, etcd_available

        if etcd_available():
            server = await asyncio.to_thread(EtcdServer)
            endpoints = server.endpoints
    try:
        if endpoints:
            results["etcd-raw"] = await measure("etcd-raw", n=min(n, 2000), endpoints=endpoints)
            results["etcd"] = await measure("etcd", n=n, endpoints=endpoints)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="writes per measurement")
    ap.add_argument("--etcd-endpoints", default="", help="comma-separated; default: start our own etcd")
    args = ap.parse_args()
    endpoints = [e for e in args.etcd_endpoints.split(",") if e] or None
    print(json.dumps(asyncio.run(measure_all(args.n, endpoints)), indent=2))


if __name__ == "__main__":
    main()
