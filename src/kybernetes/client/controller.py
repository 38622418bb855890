"""The base control loop: informers -> key mapping -> work queue -> N workers -> ``sync(key)``.

    class ReplicaSetController(Controller):
        def __init__(self, client, factory):
            super().__init__("replicaset-controller", client, workers=5, factory=factory)
            self.rs = self.informer(REPLICASETS)                           # enqueues own keys
            self.pods = self.informer(PODS, mapper=self.owner_keys)        # maps pods to owners

        async def sync(self, key: ObjectKey) -> None:
            rs = self.rs.lister().get_by_key(key)
            ...

Outcome of ``sync(key)`` (via ``sync_handler``, swappable in tests):
* returns: the key's back-off is forgotten;
* ``raise Requeue(after=s)``: back-off forgotten, the key comes back after ``s`` seconds;
* raises anything else: logged, the key comes back after its back-off (5 ms doubling to 1000 s).

``run()`` starts the informer factory (when the controller made its own), waits for this
controller's informers to sync, then runs the workers; it returns only by cancellation, after which
the queue is shut down and every worker has finished its current key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..util.clock import Clock, RealClock
from .errors import ApiError
from .informer import InformerFactory, SharedInformer
from .keys import DeletedFinalStateUnknown, ObjectKey, key_of, make_key, tombstone_object
from .resources import Resource
from .workqueue import RateLimiter, ShutDown, WorkQueue

if TYPE_CHECKING:
    from .rest import ApiClient

Obj = dict[str, Any]
KeyMapper = Callable[[Obj], Iterable[str]]


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_mapper(kind: str, api_version: str | None = None) -> KeyMapper:
    """A mapper from a child (e.g. a Pod) to its controlling owner's key (e.g. its ReplicaSet)."""

    def keys(obj: Obj) -> list[str]:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind or not ref.get("name"):
            return []
        if api_version is not None and ref.get("apiVersion") != api_version:
            return []
        return [make_key((obj.get("metadata") or {}).get("namespace"), ref["name"])]

    return keys


class Requeue(Exception):
    """Raised from ``sync`` to look at the key again after ``after`` seconds (not an error)."""

    def __init__(self, after: float = 0.0, reason: str = "") -> None:
        super().__init__(reason or f"requeue after {after}s")
        self.after = after


class Controller:
    def __init__(self, name: str, client: ApiClient, *, workers: int = 1,
                 factory: InformerFactory | None = None, clock: Clock | None = None,
                 rate_limiter: RateLimiter | None = None, sync_timeout: float | None = None) -> None:
        self.name = name
        self.client = client
        self.workers = workers
        self.clock = clock or RealClock()
        self.log = logging.getLogger(f"kybernetes.controller.{name}")
        self._own_factory = factory is None
        self.factory = factory or InformerFactory(client, clock=self.clock)
        self.queue: WorkQueue[ObjectKey] = WorkQueue(name, rate_limiter=rate_limiter, clock=self.clock)
        self.sync_handler: Callable[[ObjectKey], Awaitable[None]] = self.sync
        self.sync_timeout = sync_timeout
        self._informers: list[SharedInformer] = []
        self.syncs = 0
        self.errors = 0
        self.requeues = 0

    # -- wiring -----------------------------------------------------------------------------------
    def informer(self, resource: Resource, *, mapper: KeyMapper | None = None, handle: bool = True,
                 **kw: Any) -> SharedInformer:
        """Get a shared informer this controller waits for; unless ``handle=False`` its events
        enqueue ``mapper(obj)`` keys (default: the object's own key)."""
        inf = self.factory.informer(resource, **kw)
        if inf not in self._informers:
            self._informers.append(inf)
        if handle:
            self.watch(inf, mapper)
        return inf

    def watch(self, informer: SharedInformer, mapper: KeyMapper | None = None) -> None:
        """Enqueue keys for every add/update/delete of ``informer`` (old and new object on update)."""
        keys: KeyMapper = mapper or (lambda obj: [key_of(obj)])

        def enqueue(obj: Obj) -> None:
            for k in keys(obj):
                self.queue.add(ObjectKey(k))

        def on_update(old: Obj, new: Obj) -> None:
            enqueue(new)
            if mapper is not None and old is not new:
                enqueue(old)

        def on_delete(obj: Obj | DeletedFinalStateUnknown) -> None:
            enqueue(tombstone_object(obj))

        informer.add_event_handler(on_add=enqueue, on_update=on_update, on_delete=on_delete)

    def enqueue(self, obj_or_key: Obj | str) -> None:
        self.queue.add(ObjectKey(obj_or_key if isinstance(obj_or_key, str) else key_of(obj_or_key)))

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(ObjectKey(key), delay)

    # -- the loop ---------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        """Bring the world for ``key`` in line with its spec. Subclasses implement this."""
        raise NotImplementedError

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                for inf in self._informers:
                    await inf.wait_for_sync()
        except TimeoutError:
            return False
        return True

    async def process(self, key: ObjectKey) -> None:
        """Run one sync for ``key`` and record the outcome in the queue."""
        self.syncs += 1
        try:
            async with asyncio.timeout(self.sync_timeout):
                await self.sync_handler(key)
        except Requeue as r:
            self.requeues += 1
            self.queue.forget(key)
            self.queue.add_after(key, r.after)
        except Exception as e:
            self.errors += 1
            n = self.queue.num_requeues(key)
            if isinstance(e, ApiError):
                self.log.warning("sync %s failed (retry %d): %s", key, n, e)
            else:
                self.log.error("sync %s failed (retry %d)", key, n, exc_info=e)
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def run(self) -> None:
        """Run until cancelled (see the module docstring)."""
        try:
            async with asyncio.TaskGroup() as tg:
                if self._own_factory:
                    tg.create_task(self.factory.run(), name=f"{self.name}/informers")
                await self.wait_for_sync()
                self.log.info("caches synced; starting %d workers", self.workers)
                for i in range(self.workers):
                    tg.create_task(self._worker(), name=f"{self.name}/worker-{i}")
        finally:
            self.queue.shut_down()

    def statistics(self) -> dict[str, Any]:
        return {"name": self.name, "syncs": self.syncs, "errors": self.errors,
                "requeues": self.requeues, "queue": self.queue.statistics(),
                "informers_synced": all(i.has_synced for i in self._informers)}
