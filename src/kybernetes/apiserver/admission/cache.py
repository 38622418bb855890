"""Read-mostly objects under one store prefix, for admission plugins (an informer, minus the HTTP).

Upstream admission plugins read LimitRanges, ResourceQuotas, PriorityClasses and webhook
configurations from shared informers so a pod create costs no extra storage reads. Here the API
server's own watch cache already holds every recent store event in memory, so a
:class:`PrefixCache` lists its prefix once and then, on each read, folds in the watch cache's
events newer than what it has seen (a scan from the newest event back, usually a handful). When
the watch cache's window no longer reaches back that far, it lists again.

Read-your-writes: the watch cache trails the store by a few milliseconds. The admission chain
calls :meth:`PrefixCache.touch` whenever it admits a write of the cached kind (that write is then
about to be stored); for ``settle`` seconds after that, reads go to the store directly, so "create
a LimitRange, then a pod" always sees the LimitRange. Writes made by other API servers (several
servers over etcd) arrive through the watch, as with upstream's informers.

Objects handed out are shared and must be treated as read-only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ...storage.interface import Store
from ..watchcache import WatchCache, decode_value

Obj = dict[str, Any]

SETTLE_SECONDS = 5.0


def split_key(prefix: str, key: str) -> tuple[str, str]:
    """``/registry/limitranges/ns/name`` -> ("ns", "name"); cluster-scoped keys give ("", name)."""
    rest = key[len(prefix):]
    ns, sep, name = rest.partition("/")
    return (ns, name) if sep else ("", ns)


class PrefixCache:
    def __init__(self, store: Store, watch_cache: WatchCache | None, prefix: str, *,
                 settle: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.watch_cache = watch_cache
        self.prefix = prefix
        self.settle = settle
        self.clock = clock
        self._by_ns: dict[str, dict[str, Obj]] | None = None
        self._rev = 0
        self._live_until = 0.0
        self._inflight: asyncio.Future[None] | None = None   # a relist in progress
        self.relists = 0          # statistics: full lists from the store
        self.live_reads = 0       # statistics: reads served by the store during a settle window

    def statistics(self) -> dict[str, int]:
        return {"relists": self.relists, "live_reads": self.live_reads}

    def touch(self) -> None:
        """A write under this prefix is being admitted: read from the store for a while."""
        self._live_until = self.clock() + self.settle

    async def list(self, namespace: str = "") -> list[Obj]:
        """Objects in ``namespace`` ("" for cluster-scoped kinds), in key order."""
        if self.watch_cache is None or self.clock() < self._live_until:
            self.live_reads += 1
            return await self._store_list(self.prefix + (f"{namespace}/" if namespace else ""))
        if self._by_ns is None or not self._catch_up():
            if self._inflight is not None:  # another request is listing: use its result
                await asyncio.wait({self._inflight})
            if self._by_ns is None or not self._catch_up():
                await self._relist_once()
        assert self._by_ns is not None
        objs = self._by_ns.get(namespace) or {}
        return [objs[k] for k in sorted(objs)]

    async def get(self, name: str, namespace: str = "") -> Obj | None:
        for obj in await self.list(namespace):
            if (obj.get("metadata") or {}).get("name") == name:
                return obj
        return None

    # -- internals ---------------------------------------------------------------------------
    async def _store_list(self, prefix: str) -> list[Obj]:
        page = await self.store.list(prefix)
        return [decode_value(kv.value, kv.mod_revision) for kv in page.items]

    async def _relist_once(self) -> None:
        """List, letting concurrent readers wait for this one list instead of listing too."""
        fut = self._inflight = asyncio.get_running_loop().create_future()
        try:
            await self._relist()
        finally:
            self._inflight = None
            fut.set_result(None)

    async def _relist(self) -> None:
        page = await self.store.list(self.prefix)
        by_ns: dict[str, dict[str, Obj]] = {}
        for kv in page.items:
            ns, name = split_key(self.prefix, kv.key)
            by_ns.setdefault(ns, {})[name] = decode_value(kv.value, kv.mod_revision)
        self._by_ns, self._rev = by_ns, page.revision
        self.relists += 1

    def _catch_up(self) -> bool:
        """Apply the watch cache's events newer than ours; False when they are out of its window."""
        wc = self.watch_cache
        assert wc is not None and self._by_ns is not None
        if wc.revision <= self._rev:
            return True
        if wc.start_revision > self._rev:
            return False
        newer = []
        for ev in reversed(wc.events):
            if ev.revision <= self._rev:
                break
            if ev.key.startswith(self.prefix):
                newer.append(ev)
        for ev in reversed(newer):
            ns, name = split_key(self.prefix, ev.key)
            if ev.type == "DELETED":
                objs = self._by_ns.get(ns)
                if objs is not None:
                    objs.pop(name, None)
                    if not objs:
                        del self._by_ns[ns]
            else:
                self._by_ns.setdefault(ns, {})[name] = ev.obj
        self._rev = wc.revision
        return True
