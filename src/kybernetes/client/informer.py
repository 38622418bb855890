"""Shared informers: one reflector + one local cache per resource, fanned out to event handlers.

    factory = InformerFactory(client)
    pods = factory.informer(PODS, indexers={BY_NODE_NAME: index_by_node_name})
    pods.add_event_handler(on_add=..., on_update=..., on_delete=...)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(factory.run())
        await factory.wait_for_sync()
        pods.lister().list("default")

Handlers are plain (non-async) callables run on the loop in registration order; they must be quick
(compute a key, enqueue it). A handler that raises is logged and the others still run.

* ``on_add(obj)``; ``on_update(old, new)``; ``on_delete(obj)`` where ``obj`` may be a
  ``DeletedFinalStateUnknown`` when a relist found the object gone (``keys.tombstone_object``).
* A relist is replayed as a diff against the cache: new keys -> add, changed resourceVersion ->
  update, vanished keys -> delete(DeletedFinalStateUnknown).
* ``resync_period`` > 0 re-delivers every cached object as ``on_update(obj, obj)`` periodically.
* A handler added after the initial sync first receives ``on_add`` for every cached object.
* Cached objects are shared and read-only.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..util.clock import Clock, RealClock
from ..util.tasks import Supervisor
from .indexer import Indexer, IndexFunc
from .keys import DeletedFinalStateUnknown, ObjectKey, key_of
from .lister import Lister
from .reflector import Reflector
from .resources import Resource

if TYPE_CHECKING:
    from .rest import ApiClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

AddFunc = Callable[[Obj], None]
UpdateFunc = Callable[[Obj, Obj], None]
DeleteFunc = Callable[[Obj | DeletedFinalStateUnknown], None]


# Collector thresholds for a process holding large informer caches (see ``tune_gc``).
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Make the cyclic garbage collector run far less often (never more often than now).

    A cache of 10,000 pods is about a million tracked containers. With CPython's default
    thresholds (700, 10, 10) a full collection, which walks all of them (~100 ms), runs each time
    the heap grew by a quarter, and the young generations are collected every 700 allocations: a
    cache growing from a watch spent most of its decode time in the collector. Cached objects are
    plain JSON trees freed by reference counting; the collector only has to find the occasional
    cycle (asyncio tasks, exceptions), for which 50,000 allocations is still often.
    """
    current = gc.get_threshold()
    gc.set_threshold(*(max(c, t) for c, t in zip(current, thresholds)))


@dataclass(eq=False)
class EventHandler:
    """One registration; pass it to ``remove_event_handler`` to unregister."""

    on_add: AddFunc | None = None
    on_update: UpdateFunc | None = None
    on_delete: DeleteFunc | None = None


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class SharedInformer:
    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        resync_period: float = 0.0,
        clock: Clock | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        inactivity_timeout: float = 90.0,
    ) -> None:
        self.resource = resource
        self.clock = clock or RealClock()
        self.indexer = Indexer(indexers)
        self.resync_period = resync_period
        self.reflector = Reflector(
            client, resource, self, namespace=namespace, label_selector=label_selector,
            field_selector=field_selector, page_size=page_size, watch_timeout=watch_timeout,
            inactivity_timeout=inactivity_timeout, clock=self.clock)
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self.events_dispatched = 0
        self.handler_errors = 0

    # -- handlers -------------------------------------------------------------------------------
    def add_event_handler(self, on_add: AddFunc | None = None, on_update: UpdateFunc | None = None,
                          on_delete: DeleteFunc | None = None) -> EventHandler:
        h = EventHandler(on_add, on_update, on_delete)
        self._handlers.append(h)
        if self._synced.is_set() and on_add is not None:
            for obj in self.indexer.list():
                self._call(on_add, obj)
        return h

    def remove_event_handler(self, handler: EventHandler) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        self.events_dispatched += 1
        try:
            fn(*args)
        except Exception:
            self.handler_errors += 1
            log.exception("%s: event handler %r failed", self.resource, fn)

    def _added(self, obj: Obj) -> None:
        for h in list(self._handlers):
            if h.on_add:
                self._call(h.on_add, obj)

    def _updated(self, old: Obj, new: Obj) -> None:
        for h in list(self._handlers):
            if h.on_update:
                self._call(h.on_update, old, new)

    def _deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        for h in list(self._handlers):
            if h.on_delete:
                self._call(h.on_delete, obj)

    # -- reflector sink -------------------------------------------------------------------------
    def on_list(self, items: list[Obj], resource_version: str) -> None:
        """Replay a (re)list as a diff against the cache."""
        seen: set[ObjectKey] = set()
        for obj in items:
            seen.add(key_of(obj))
            old = self.indexer.upsert(obj)
            if old is None:
                self._added(obj)
            elif _rv(old) != _rv(obj):
                self._updated(old, obj)
        vanished = [k for k in self.indexer.keys() if k not in seen]  # noqa: SIM118
        for key in vanished:
            gone = self.indexer.delete_key(key)
            if gone is not None:
                self._deleted(DeletedFinalStateUnknown(key, gone))
        self._synced.set()

    def on_watch_event(self, event_type: str, obj: Obj) -> None:
        if event_type in ("ADDED", "MODIFIED"):
            old = self.indexer.upsert(obj)
            if old is None:
                self._added(obj)
            else:
                self._updated(old, obj)
        elif event_type == "DELETED":
            self.indexer.delete(obj)
            self._deleted(obj)
        else:
            log.warning("%s: ignoring watch event of type %r", self.resource, event_type)

    # -- state ----------------------------------------------------------------------------------
    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until the first list is in the cache; False if ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    def lister(self) -> Lister:
        return Lister(self.indexer)

    @property
    def last_resource_version(self) -> str:
        return self.reflector.last_resource_version

    def resync(self) -> None:
        """Re-deliver every cached object as ``on_update(obj, obj)``."""
        for obj in self.indexer.list():
            self._updated(obj, obj)

    async def _resync_loop(self) -> None:
        while True:
            await self.clock.sleep(self.resync_period)
            if self.has_synced:
                self.resync()

    async def run(self) -> None:
        """List, watch and resync until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.reflector.run(), name=f"reflector/{self.resource}")
            if self.resync_period > 0:
                tg.create_task(self._resync_loop(), name=f"resync/{self.resource}")

    def statistics(self) -> dict[str, Any]:
        return {"resource": str(self.resource), "objects": len(self.indexer),
                "synced": self.has_synced, "lists": self.reflector.lists,
                "watches": self.reflector.watches, "expired": self.reflector.expired,
                "events_dispatched": self.events_dispatched, "handler_errors": self.handler_errors,
                "resource_version": self.reflector.last_resource_version}


_Key = tuple[Resource, str | None, str | None, str | None]


class InformerFactory:
    """Hands out one shared informer per (resource, namespace, selectors) and runs them all."""

    def __init__(self, client: ApiClient, *, resync_period: float = 0.0, clock: Clock | None = None,
                 watch_timeout: int = 300, inactivity_timeout: float = 90.0) -> None:
        self.client = client
        self.resync_period = resync_period
        self.clock = clock or RealClock()
        self.watch_timeout = watch_timeout
        self.inactivity_timeout = inactivity_timeout
        self._informers: dict[_Key, SharedInformer] = {}
        self._sup: Supervisor | None = None

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 indexers: Mapping[str, IndexFunc] | None = None) -> SharedInformer:
        """The shared informer for these arguments (created on first request; extra indexers added)."""
        key = (resource, namespace, label_selector or None, field_selector or None)
        inf = self._informers.get(key)
        if inf is None:
            inf = SharedInformer(self.client, resource, namespace=namespace,
                                 label_selector=label_selector, field_selector=field_selector,
                                 resync_period=self.resync_period, clock=self.clock,
                                 watch_timeout=self.watch_timeout,
                                 inactivity_timeout=self.inactivity_timeout)
            self._informers[key] = inf
            if self._sup is not None:  # already running: start it now
                self._sup.start(inf.run(), name=f"informer/{resource}")
        if indexers:
            inf.add_indexers(indexers)
        return inf

    def lister(self, resource: Resource, **kw: Any) -> Lister:
        return self.informer(resource, **kw).lister()

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    async def run(self) -> None:
        """Run every informer (including those requested later) until cancelled."""
        if self._sup is not None:
            raise RuntimeError("InformerFactory is already running")
        tune_gc()
        sup = Supervisor("informers", logger=log)
        self._sup = sup
        try:
            for inf in list(self._informers.values()):
                sup.start(inf.run(), name=f"informer/{inf.resource}")
            await asyncio.Event().wait()
        finally:
            self._sup = None
            await sup.stop()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until every informer requested so far has synced."""
        try:
            async with asyncio.timeout(timeout):
                for inf in list(self._informers.values()):
                    await inf.wait_for_sync()
        except TimeoutError:
            return False
        return True
