"""The reflector: keep a sink in step with the server by list, then watch (client-go ``Reflector``).

    list (paged with limit/continue)  ──>  sink.on_list(items, rv)       # replayed as a diff
    watch from rv (with bookmarks)    ──>  sink.on_watch_event(type, obj)
      server closes the watch (timeoutSeconds)     -> watch again from the last seen rv
      410 Expired/Gone (at start or mid-stream)     -> list again
      other errors (connection, 5xx, inactivity)    -> back off (0.8 s -> 30 s, jittered), watch again
      errors while listing                          -> back off, list again

``last_resource_version`` advances with every event and bookmark, so a re-watch resumes exactly
where the previous one stopped.
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any, Protocol

from ..util.backoff import Backoff
from ..util.clock import Clock, RealClock
from .errors import ApiError, Gone, TransportError
from .resources import Resource

if TYPE_CHECKING:
    from .rest import ApiClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class ReflectorSink(Protocol):
    def on_list(self, items: list[Obj], resource_version: str) -> None: ...

    def on_watch_event(self, event_type: str, obj: Obj) -> None: ...


class Reflector:
    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        sink: ReflectorSink,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        inactivity_timeout: float = 90.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.sink = sink
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.inactivity_timeout = inactivity_timeout
        self.clock = clock or RealClock()
        self.backoff = backoff or Backoff(initial=0.8, maximum=30.0, jitter=1.0)
        self.last_resource_version = ""
        self.lists = 0
        self.watches = 0
        self.expired = 0

    async def list(self) -> None:
        """List everything (paged) and hand it to the sink."""
        items: list[Obj] = []
        token: str | None = None
        rv = ""
        while True:
            page = await self.client.list(
                self.resource, self.namespace, label_selector=self.label_selector,
                field_selector=self.field_selector, limit=self.page_size, continue_token=token)
            items.extend(page.get("items") or [])
            md = page.get("metadata") or {}
            rv = rv or str(md.get("resourceVersion") or "")
            token = md.get("continue") or None
            if not token:
                break
        self.lists += 1
        self.sink.on_list(items, rv)
        self.last_resource_version = rv

    async def watch_once(self) -> None:
        """One watch from ``last_resource_version`` until the server ends it (or an error)."""
        self.watches += 1
        timeout = self.watch_timeout + int(random.random() * self.watch_timeout * 0.1)
        events = self.client.watch(
            self.resource, self.namespace, resource_version=self.last_resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=max(1, timeout), allow_bookmarks=True,
            inactivity_timeout=self.inactivity_timeout)
        async with contextlib.aclosing(events) as stream:
            async for typ, obj in stream:
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if typ != "BOOKMARK":
                    self.sink.on_watch_event(typ, obj)
                if rv:
                    self.last_resource_version = rv
                self.backoff.reset()

    async def run(self) -> None:
        """List and watch forever; returns only by cancellation."""
        need_list = True
        while True:
            try:
                if need_list:
                    await self.list()
                    need_list = False
                await self.watch_once()
                self.backoff.reset()
            except Gone as e:  # Expired included: our resourceVersion is too old
                self.expired += 1
                log.info("%s: watch expired (%s); relisting", self.resource, e)
                need_list = True
            except (ApiError, TransportError) as e:
                delay = self.backoff.next()
                log.warning("%s: %s failed: %r; retrying in %.1fs", self.resource,
                            "list" if need_list else "watch", e, delay)
                await self.clock.sleep(delay)
