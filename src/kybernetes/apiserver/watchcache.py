"""The watch cache: one store watch feeds every API watcher.

The API server reads the store's change stream once (``run``), decodes each event once, keeps a
window of recent events in memory and fans them out to watchers by key prefix. A watcher asking
for history older than the window is served by a direct store watch (or gets 410 Gone when that
history was compacted). Each watcher has a bounded queue; one that falls behind is closed and
its client re-watches from its last resourceVersion, as Kubernetes clients do.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import orjson

from ..storage.errors import CompactedError, StoreError
from ..storage.interface import Event, Store

log = logging.getLogger(__name__)

WATCHER_QUEUE = 1000


@dataclass(slots=True)
class CachedEvent:
    revision: int
    type: str                    # ADDED | MODIFIED | DELETED
    key: str
    obj: dict[str, Any]          # stored object with resourceVersion set; shared: never mutate
    encoded: dict[Any, bytes] = field(default_factory=dict)  # per-format encodings, filled lazily


def decode_value(value: bytes, revision: int) -> dict[str, Any]:
    obj = orjson.loads(value)
    md = obj.get("metadata")
    if isinstance(md, dict):
        md["resourceVersion"] = str(revision)
    return obj  # type: ignore[no-any-return]


def to_cached(ev: Event) -> CachedEvent:
    if ev.type == "DELETE":
        return CachedEvent(ev.revision, "DELETED", ev.kv.key, decode_value(ev.kv.value, ev.revision))
    typ = "ADDED" if ev.is_create else "MODIFIED"
    return CachedEvent(ev.revision, typ, ev.kv.key, decode_value(ev.kv.value, ev.revision))


class Watcher:
    def __init__(self, cache: "WatchCache", prefix: str, from_revision: int) -> None:
        self.cache = cache
        self.prefix = prefix
        self.last = from_revision
        self.queue: asyncio.Queue[CachedEvent | None] = asyncio.Queue(WATCHER_QUEUE)
        self.overflowed = False

    def offer(self, ev: CachedEvent) -> None:
        if self.overflowed or ev.revision <= self.last:
            return
        try:
            self.queue.put_nowait(ev)
            self.last = ev.revision
        except asyncio.QueueFull:
            self.overflowed = True
            self.cache._remove(self)
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
            self.queue.put_nowait(None)

    async def next(self) -> CachedEvent | None:
        """The next event, or None when the watcher was closed (overflow or shutdown)."""
        return await self.queue.get()

    def close(self) -> None:
        self.cache._remove(self)


class WatchCache:
    def __init__(self, store: Store, capacity: int = 20000) -> None:
        self.store = store
        self.capacity = capacity
        self.events: collections.deque[CachedEvent] = collections.deque(maxlen=capacity)
        self.revision = 0            # last revision seen from the store
        self.start_revision = 0      # events after this revision are in the window (or were)
        self._watchers: dict[str, set[Watcher]] = {}
        self._ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self.events_seen = 0

    # -- feeding -------------------------------------------------------------------------
    async def run(self) -> None:
        rev = await self.store.current_revision()
        self.revision = self.start_revision = rev
        self._ready.set()
        while True:
            try:
                async for batch in self.store.watch("/registry/", self.revision):
                    self._dispatch(batch)
            except CompactedError:
                # Fell behind a compaction: restart the window from now; old watchers get 410.
                rev = await self.store.current_revision()
                self.events.clear()
                self.revision = self.start_revision = rev
                self.close_all()
            except StoreError as e:
                log.warning("watch cache: store watch ended (%s); restarting", e)
                await asyncio.sleep(0.2)

    def _dispatch(self, batch: list[Event]) -> None:
        for raw in batch:
            if raw.revision <= self.revision:
                continue
            ev = to_cached(raw)
            self.events.append(ev)
            self.revision = ev.revision
            self.events_seen += 1
            if len(self.events) == self.capacity:
                self.start_revision = self.events[0].revision - 1
            key = ev.key
            i = key.find("/", 1)
            while i != -1:
                ws = self._watchers.get(key[: i + 1])
                if ws:
                    for w in list(ws):
                        w.offer(ev)
                i = key.find("/", i + 1)
        asyncio.get_running_loop().call_soon(self._notify)

    def _notify(self) -> None:
        async def _n() -> None:
            async with self._advanced:
                self._advanced.notify_all()

        # Condition.notify needs the lock; do it without creating a task per event when idle.
        if self._advanced._waiters:  # type: ignore[attr-defined]
            asyncio.ensure_future(_n())

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def wait_for_revision(self, rev: int, timeout: float = 3.0) -> bool:
        if self.revision >= rev:
            return True
        try:
            async with asyncio.timeout(timeout):
                async with self._advanced:
                    await self._advanced.wait_for(lambda: self.revision >= rev)
            return True
        except TimeoutError:
            return False

    # -- watchers ------------------------------------------------------------------------
    def _remove(self, w: Watcher) -> None:
        ws = self._watchers.get(w.prefix)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._watchers[w.prefix]

    def close_all(self) -> None:
        for ws in list(self._watchers.values()):
            for w in list(ws):
                w.overflowed = True
                if w.queue.full():
                    w.queue.get_nowait()
                w.queue.put_nowait(None)
        self._watchers.clear()

    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def covers(self, from_revision: int) -> bool:
        return from_revision >= self.start_revision

    def watch(self, prefix: str, from_revision: int) -> Watcher:
        """Register a watcher for events with revision > from_revision under ``prefix``.

        Only valid when ``covers(from_revision)``; older history goes through ``store_watch``.
        """
        w = Watcher(self, prefix, from_revision)
        for ev in self.events:
            if ev.revision > from_revision and ev.key.startswith(prefix):
                w.offer(ev)
        if not w.overflowed:
            self._watchers.setdefault(prefix, set()).add(w)
        return w

    async def store_watch(self, prefix: str, from_revision: int) -> AsyncIterator[CachedEvent]:
        """History older than the window, straight from the store (raises CompactedError)."""
        async for batch in self.store.watch(prefix, from_revision):
            for raw in batch:
                yield to_cached(raw)
