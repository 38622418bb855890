"""An in-memory store: the narrow test seam for API-server unit tests (not durable).

Same semantics as the real backends (one global revision, conditional writes, snapshots at a
revision, watch from a revision with history, compaction), kept deliberately simple.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import AsyncIterator

from .errors import CompactedError, ConflictError, FutureRevisionError, KeyExistsError, KeyNotFoundError
from .interface import Event, KeyValue, ListResult


class MemoryStore:
    def __init__(self) -> None:
        self._rev = 0
        self._compacted = 0
        self._log: list[Event] = []                 # every event, in revision order
        self._current: dict[str, KeyValue] = {}
        self._keys: list[str] = []                  # sorted live keys
        self._subs: set[asyncio.Queue[list[Event] | None]] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for q in list(self._subs):
            q.put_nowait(None)

    # -- reads -------------------------------------------------------------------------------
    def _state_at(self, revision: int) -> dict[str, KeyValue]:
        if revision == 0 or revision >= self._rev:
            return self._current
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        state: dict[str, KeyValue] = {}
        for ev in self._log:
            if ev.revision > revision:
                break
            if ev.type == "PUT":
                state[ev.kv.key] = ev.kv
            else:
                state.pop(ev.kv.key, None)
        return state

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        return self._state_at(revision).get(key)

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str | None = None,
        count_remaining: bool = False,
    ) -> ListResult:
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        rev = revision or self._rev
        state = self._state_at(rev)
        keys = sorted(k for k in state if k.startswith(prefix) and (start_after is None or k > start_after))
        more = bool(limit) and len(keys) > limit
        page = keys[:limit] if limit else keys
        remaining = (len(keys) - len(page) if more else 0) if count_remaining else None
        return ListResult([state[k] for k in page], rev, more, remaining)

    async def count(self, prefix: str) -> int:
        return sum(1 for k in self._current if k.startswith(prefix))

    async def current_revision(self) -> int:
        return self._rev

    async def compacted_revision(self) -> int:
        return self._compacted

    # -- writes ------------------------------------------------------------------------------
    def _commit(self, ev: Event) -> KeyValue:
        self._log.append(ev)
        if ev.type == "PUT":
            if ev.kv.key not in self._current:
                bisect.insort(self._keys, ev.kv.key)
            self._current[ev.kv.key] = ev.kv
        else:
            self._current.pop(ev.kv.key, None)
            i = bisect.bisect_left(self._keys, ev.kv.key)
            if i < len(self._keys) and self._keys[i] == ev.kv.key:
                del self._keys[i]
        for q in list(self._subs):
            q.put_nowait([ev])
        return ev.kv

    async def create(self, key: str, value: bytes) -> KeyValue:
        if key in self._current:
            raise KeyExistsError(key)
        self._rev += 1
        return self._commit(Event("PUT", KeyValue(key, value, self._rev, self._rev)))

    async def update(self, key: str, value: bytes, *, expected_revision: int = 0) -> KeyValue:
        cur = self._current.get(key)
        if cur is None:
            raise KeyNotFoundError(key)
        if expected_revision and cur.mod_revision != expected_revision:
            raise ConflictError(key, expected_revision, cur)
        self._rev += 1
        return self._commit(Event("PUT", KeyValue(key, value, self._rev, cur.create_revision), cur))

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        cur = self._current.get(key)
        if cur is None:
            raise KeyNotFoundError(key)
        if expected_revision and cur.mod_revision != expected_revision:
            raise ConflictError(key, expected_revision, cur)
        self._rev += 1
        return self._commit(Event("DELETE", KeyValue(key, cur.value, self._rev, cur.create_revision), cur))

    async def compact(self, revision: int) -> None:
        revision = min(revision, self._rev)
        if revision <= self._compacted:
            return
        self._compacted = revision
        self._log = [ev for ev in self._log if ev.revision > revision]

    # -- watch -------------------------------------------------------------------------------
    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[list[Event]]:
        if from_revision < self._compacted:
            raise CompactedError(from_revision, self._compacted)
        q: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self._subs.add(q)
        try:
            history = [ev for ev in self._log if ev.revision > from_revision and ev.kv.key.startswith(prefix)]
            last = from_revision
            if history:
                last = history[-1].revision
                yield history
            while True:
                batch = await q.get()
                if batch is None:
                    return
                batch = [ev for ev in batch if ev.revision > last and ev.kv.key.startswith(prefix)]
                if batch:
                    last = batch[-1].revision
                    yield batch
        finally:
            self._subs.discard(q)
