"""The watch cache: one store watch feeds every API watcher.

The API server reads the store's change stream once (``run``), decodes each event once, keeps a
window of recent events in memory and fans them out to watchers by key prefix. A watcher asking
for history older than the window is served by a direct store watch (or gets 410 Gone when that
history was compacted).

Fan-out is batched: dispatching an event only appends it to each interested watcher's pending
list. The cache then flushes every watcher that has pending events, at most once per
``flush_interval`` (immediately when the last flush is older than that), by calling the
watcher's ``deliver`` callback with the whole batch, synchronously. With a thousand watchers and
a hundred writes a second that is one write per watcher per interval instead of one task wakeup
and one socket write per watcher per event. A watcher whose pending list grows past
``WATCHER_QUEUE`` (its consumer did not start) or whose consumer reports it cannot keep up is
ended; its client re-watches from its last resourceVersion, as Kubernetes clients do.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import orjson

from ..storage.errors import CompactedError, StoreError
from ..storage.interface import Event, Store

log = logging.getLogger(__name__)

WATCHER_QUEUE = 1000
FLUSH_INTERVAL = 0.05    # seconds between two deliveries to the same watchers under load
FLUSH_FULL_ROUND = 200   # a round this big (watchers) earns the whole interval; smaller, a share
FLUSH_SLICE = 20        # watchers served per loop iteration during a flush
DECODED_EVENTS = 1000    # newest events kept decoded; older ones keep only their bytes


@dataclass(slots=True)
class CachedEvent:
    revision: int
    type: str                    # ADDED | MODIFIED | DELETED
    key: str
    value: bytes                 # the stored bytes (without resourceVersion)
    _obj: dict[str, Any] | None = None
    # per-format encodings (and per-filter results: None = filtered out), filled lazily
    encoded: dict[Any, bytes | None] = field(default_factory=dict)

    @property
    def obj(self) -> dict[str, Any]:
        """The stored object with resourceVersion set; shared by all watchers: never mutate."""
        if self._obj is None:
            self._obj = decode_value(self.value, self.revision)
        return self._obj

    def shrink(self) -> None:
        """Drop the decoded object and encodings (rebuilt on demand); keeps the window small
        in memory and cheap for the garbage collector, since decoded JSON is many objects."""
        self._obj = None
        self.encoded = {}


def decode_value(value: bytes, revision: int) -> dict[str, Any]:
    obj = orjson.loads(value)
    md = obj.get("metadata")
    if isinstance(md, dict):
        md["resourceVersion"] = str(revision)
    return obj  # type: ignore[no-any-return]


def to_cached(ev: Event) -> CachedEvent:
    if ev.type == "DELETE":
        return CachedEvent(ev.revision, "DELETED", ev.kv.key, ev.kv.value)
    typ = "ADDED" if ev.is_create else "MODIFIED"
    return CachedEvent(ev.revision, typ, ev.kv.key, ev.kv.value)


class Watcher:
    """One watch served from the cache.

    Events wait in ``pending`` until the cache flushes them to ``deliver`` (set by ``start``).
    ``deliver`` returns False when its consumer cannot take more (a slow client): the watcher
    then ends. ``wait_closed`` lets the consumer sleep until the watcher ends.
    """

    def __init__(self, cache: "WatchCache", prefix: str, from_revision: int) -> None:
        self.cache = cache
        self.prefix = prefix
        self.last = from_revision
        self.pending: list[CachedEvent] = []
        self.deliver: Callable[[list[CachedEvent]], bool] | None = None
        self.closed = False
        self.overflowed = False
        self._queued = False          # waiting in the cache's next flush
        self._closed_event = asyncio.Event()

    def offer(self, ev: CachedEvent) -> None:
        if self.closed or ev.revision <= self.last:
            return
        if len(self.pending) >= WATCHER_QUEUE:
            self.overflowed = True
            self.end()
            return
        self.pending.append(ev)
        self.last = ev.revision
        if not self._queued:
            self._queued = True
            self.cache._mark_dirty(self)

    def start(self, deliver: Callable[[list[CachedEvent]], bool]) -> None:
        """Begin delivering; events already pending go out at once."""
        self.deliver = deliver
        self.flush()

    def flush(self) -> None:
        self._queued = False
        if self.closed or self.deliver is None or not self.pending:
            return
        batch, self.pending = self.pending, []
        if not self.deliver(batch):
            self.overflowed = True
            self.end()

    def end(self) -> None:
        """Stop: no more deliveries; ``wait_closed`` returns."""
        self.closed = True
        self.pending = []
        self.cache._remove(self)
        self._closed_event.set()

    async def wait_closed(self, timeout: float) -> bool:
        """True once the watcher ended; False after ``timeout`` seconds."""
        if self.closed:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._closed_event.wait()
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.end()


class WatchCache:
    def __init__(self, store: Store, capacity: int = 20000) -> None:
        self.store = store
        self.capacity = capacity
        self.events: collections.deque[CachedEvent] = collections.deque(maxlen=capacity)
        self.revision = 0            # last revision seen from the store
        self.start_revision = 0      # events after this revision are in the window (or were)
        self._watchers: dict[str, set[Watcher]] = {}
        self.flush_interval = FLUSH_INTERVAL
        self.full_round = FLUSH_FULL_ROUND
        self._dirty: dict[Watcher, None] = {}     # watchers with pending events, in order
        self._round: list[Watcher] = []           # the flush round in progress
        self._round_next = 0
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = 0.0
        self._last_round = 0                      # watchers served by the last round
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
            if len(self.events) > DECODED_EVENTS:
                self.events[-DECODED_EVENTS - 1].shrink()
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

    # -- batched delivery ------------------------------------------------------------------
    def _mark_dirty(self, w: Watcher) -> None:
        self._dirty[w] = None
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        loop = asyncio.get_running_loop()
        # batching pays off when a round serves many watchers; with a few, waiting only adds
        # latency to every hop of a chain (create -> scheduler -> kubelet ...)
        share = min(1.0, self._last_round / self.full_round)
        delay = self._last_flush + self.flush_interval * share - loop.time()
        if delay <= 0:
            self._flush_handle = loop.call_soon(self._flush)
        else:
            self._flush_handle = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        """One flush round: every watcher that was dirty when the round began, ``FLUSH_SLICE``
        of them per loop iteration (so requests, e.g. the writes that make the next events, are
        not stuck behind a thousand socket writes). Watchers that get events during the round
        wait for the next one, which starts ``flush_interval`` after this one began."""
        loop = asyncio.get_running_loop()
        self._flush_handle = None
        if self._round_next >= len(self._round):
            self._last_flush = loop.time()
            self._round, self._round_next, self._dirty = list(self._dirty), 0, {}
            self._last_round = len(self._round)
        end = self._round_next + FLUSH_SLICE
        for w in self._round[self._round_next:end]:
            try:
                w.flush()
            except Exception:  # noqa: BLE001 - one broken consumer must not starve the others
                log.exception("watch delivery failed")
                w.end()
        self._round_next = end
        if end < len(self._round):
            self._flush_handle = loop.call_soon(self._flush)
            return
        self._round, self._round_next = [], 0
        if self._dirty:
            self._schedule_flush()

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
        self._dirty.pop(w, None)
        ws = self._watchers.get(w.prefix)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._watchers[w.prefix]

    def close_all(self) -> None:
        for ws in list(self._watchers.values()):
            for w in list(ws):
                w.end()
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
        newer: list[CachedEvent] = []
        for ev in reversed(self.events):  # watchers usually start near the head: scan from it
            if ev.revision <= from_revision:
                break
            if ev.key.startswith(prefix):
                newer.append(ev)
        self._watchers.setdefault(prefix, set()).add(w)
        for ev in reversed(newer):
            w.offer(ev)
        return w

    async def store_watch(self, prefix: str, from_revision: int) -> AsyncIterator[CachedEvent]:
        """History older than the window, straight from the store (raises CompactedError)."""
        async for batch in self.store.watch(prefix, from_revision):
            for raw in batch:
                yield to_cached(raw)
