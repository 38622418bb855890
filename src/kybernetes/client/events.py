"""Recording core/v1 Events about objects, with repeats aggregated (client-go ``record``).

    recorder = EventRecorder(client, "kubelet", host="node-1")
    supervisor.start(recorder.run())                     # the background sender
    recorder.event(pod, "Normal", "Pulled", "Successfully pulled image nginx")

* ``event()`` never blocks and never raises: it puts the event on a bounded queue and returns
  False (counting a drop) when the queue is full.
* Repeats (same involved object, type, reason, message and source) seen within ``window`` seconds
  (10 min) PATCH the existing Event's ``count`` and ``lastTimestamp`` instead of creating a new one.
  If that Event is gone (NotFound) a fresh one is created.
* The repeat cache is an LRU of ``cache_size`` entries, so memory stays bounded.
* Events of cluster-scoped objects go to the ``default`` namespace, as upstream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.meta import now_rfc3339
from ..util.clock import Clock, RealClock
from .errors import ApiError, NotFound, TransportError
from .resources import EVENTS

if TYPE_CHECKING:
    from .rest import ApiClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NORMAL = "Normal"
WARNING = "Warning"
AGGREGATION_WINDOW = 600.0
MAX_MESSAGE = 1024


def object_reference(obj: Mapping[str, Any]) -> Obj:
    """An ObjectReference for a full object (or pass an ObjectReference through)."""
    if "metadata" not in obj:
        return {k: v for k, v in obj.items() if v}
    md = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"), "name": md.get("name"),
           "namespace": md.get("namespace"), "uid": md.get("uid"),
           "resourceVersion": md.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


@dataclass
class _Pending:
    ref: Obj
    type: str
    reason: str
    message: str


@dataclass
class _Seen:
    namespace: str
    name: str
    count: int
    last_seen: float


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, host: str = "", *,
                 clock: Clock | None = None, queue_size: int = 1000, cache_size: int = 4096,
                 window: float = AGGREGATION_WINDOW) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.clock = clock or RealClock()
        self.window = window
        self.cache_size = cache_size
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._last_stamp = 0
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        self.created = 0
        self.aggregated = 0
        self.dropped = 0
        self.failed = 0

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> bool:
        """Record an event about ``obj`` (non-blocking); False if it was dropped."""
        try:
            self._queue.put_nowait(_Pending(object_reference(obj), type, reason, message[:MAX_MESSAGE]))
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def eventf(self, obj: Mapping[str, Any], type: str, reason: str, fmt: str, *args: Any) -> bool:
        return self.event(obj, type, reason, fmt % args if args else fmt)

    async def run(self) -> None:
        """Send queued events until cancelled."""
        while True:
            item = await self._queue.get()
            try:
                await self._send(item)
            except (ApiError, TransportError) as e:
                self.failed += 1
                log.warning("could not record event %s/%s: %r", item.reason, item.ref.get("name"), e)
            finally:
                self._queue.task_done()

    async def wait_for_idle(self) -> None:
        """Wait until every queued event has been sent (or failed). Needs ``run`` running."""
        await self._queue.join()

    def _cache_key(self, p: _Pending) -> tuple[str, ...]:
        r = p.ref
        return (str(r.get("kind", "")), str(r.get("namespace", "")), str(r.get("name", "")),
                str(r.get("uid", "")), p.type, p.reason, p.message)

    async def _send(self, p: _Pending) -> None:
        key = self._cache_key(p)
        now = self.clock.monotonic()
        ts = now_rfc3339(self.clock.wall())
        seen = self._seen.get(key)
        if seen is not None and now - seen.last_seen <= self.window:
            try:
                await self.client.patch(EVENTS, seen.name, {"count": seen.count + 1, "lastTimestamp": ts},
                                        seen.namespace)
            except NotFound:
                pass
            else:
                seen.count += 1
                seen.last_seen = now
                self._seen.move_to_end(key)
                self.aggregated += 1
                return
        namespace = str(p.ref.get("namespace") or "default")
        # upstream names Events <object>.<unix nanos in hex>; never reuse a stamp within a recorder
        self._last_stamp = max(int(self.clock.wall().timestamp() * 1e9), self._last_stamp + 1)
        name = f"{p.ref.get('name', 'unknown')}.{self._last_stamp:x}"
        body = self._event_body(p, namespace, name, ts)
        created = await self.client.create(EVENTS, body, namespace)
        self.created += 1
        md = created.get("metadata") or {}
        self._seen[key] = _Seen(str(md.get("namespace") or namespace), str(md.get("name") or name), 1, now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)

    def _event_body(self, p: _Pending, namespace: str, name: str, ts: str) -> Obj:
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": p.ref, "reason": p.reason, "message": p.message, "type": p.type,
            "source": source, "count": 1, "firstTimestamp": ts, "lastTimestamp": ts,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }

    def statistics(self) -> dict[str, int]:
        return {"queued": self._queue.qsize(), "created": self.created, "aggregated": self.aggregated,
                "dropped": self.dropped, "failed": self.failed, "cached": len(self._seen)}
