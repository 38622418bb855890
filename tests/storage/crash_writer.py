"""Write storm for the crash test: ``python -m tests.storage.crash_writer DB``.

Runs concurrent creates and updates against a SqliteStore forever and prints one line per
acknowledged write, ``ACK <key> <revision> <phase>``, flushed at once, until it is killed.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from kybernetes.storage.sqlite import SqliteStore


def make_value(key: str, phase: int, size: int = 1024) -> bytes:
    """A self-checking value: payload plus its digest, so a torn row is detectable."""
    payload = f"{key}|{phase}|".encode().ljust(size - 64, b".")
    return payload + hashlib.sha256(payload).hexdigest().encode()


def value_ok(key: str, value: bytes) -> bool:
    payload, digest = value[:-64], value[-64:]
    return payload.startswith(f"{key}|".encode()) and hashlib.sha256(payload).hexdigest().encode() == digest


async def storm(path: str, tasks: int = 16) -> None:
    store = SqliteStore(path)
    await store.start()

    async def worker(w: int) -> None:
        i = 0
        while True:
            key = f"/crash/{w}/{i}"
            kv = await store.create(key, make_value(key, 0))
            print(f"ACK {key} {kv.mod_revision} 0", flush=True)
            kv = await store.update(key, make_value(key, 1), expected_revision=kv.mod_revision)
            print(f"ACK {key} {kv.mod_revision} 1", flush=True)
            i += 1

    await asyncio.gather(*(worker(w) for w in range(tasks)))


if __name__ == "__main__":
    asyncio.run(storm(sys.argv[1]))
