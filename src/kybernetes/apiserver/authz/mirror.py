"""Feeds a listener every object under one storage prefix, kept current by the watch cache
(the authorizers' informer).

``start`` lists the prefix from the store and registers a watch-cache watcher from the list's
revision; each delivered batch is applied at once, on the loop: the listener gets
``(key, object)`` for every create or update and ``(key, None)`` for every deletion. If the
watcher ends (the cache restarted after a compaction, or the server is stopping), ``run``
lists again and reports only the difference, so the listener never stays stale. Objects are the
watch cache's shared dicts: read-only. The mirror itself keeps just each key's resourceVersion
(for that difference), so it holds no extra copies of, say, every pod.

Lag: a write reaches the listener when the watch cache flushes (at most ``FLUSH_INTERVAL``,
50 ms, after the store commits it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ...storage.interface import Store
from ..watchcache import CachedEvent, WatchCache, Watcher, decode_value

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Listener = Callable[[str, "Obj | None"], None]


class Mirror:
    def __init__(self, store: Store, cache: WatchCache, prefix: str, on_change: Listener) -> None:
        self.store = store
        self.cache = cache
        self.prefix = prefix
        self.on_change = on_change
        self.versions: dict[str, int] = {}   # key -> mod revision last reported
        self.revision = 0
        self._watcher: Watcher | None = None
        self._closed = False
        self.relists = 0

    async def start(self) -> None:
        """List and start watching (call once before serving; ``run`` keeps it going)."""
        page = await self.store.list(self.prefix)
        self.relists += 1
        seen: dict[str, int] = {}
        for kv in page.items:
            seen[kv.key] = kv.mod_revision
            if self.versions.get(kv.key) != kv.mod_revision:
                self.on_change(kv.key, decode_value(kv.value, kv.mod_revision))
        for key in self.versions.keys() - seen.keys():
            self.on_change(key, None)
        self.versions = seen
        self.revision = page.revision
        w = self.cache.watch(self.prefix, page.revision)
        self._watcher = w
        w.start(self._deliver)

    def _deliver(self, batch: list[CachedEvent]) -> bool:
        for ev in batch:
            if ev.type == "DELETED":
                if self.versions.pop(ev.key, None) is not None:
                    self.on_change(ev.key, None)
            else:
                self.versions[ev.key] = ev.revision
                self.on_change(ev.key, ev.obj)
            self.revision = ev.revision
        return True

    async def run(self) -> None:
        """Relist whenever the watcher ends; return on cancellation or after ``close``."""
        while not self._closed:
            w = self._watcher
            if w is None or w.closed:
                try:
                    await self.start()
                except Exception:  # noqa: BLE001 - a store hiccup: try again shortly
                    log.warning("authorization cache: listing %s failed; retrying", self.prefix, exc_info=True)
                    await asyncio.sleep(1.0)
                continue
            await w.wait_closed(3600.0)

    def close(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.close()
