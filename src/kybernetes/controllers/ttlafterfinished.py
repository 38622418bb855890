"""The TTL-after-finished controller (upstream ``ttl-after-finished-controller``).

A finished Job (condition Complete or Failed is True) with ``spec.ttlSecondsAfterFinished`` is
deleted that many seconds after it finished (the condition's ``lastTransitionTime``). Until then
its key is requeued for the moment it expires. Before deleting, the Job is read again from the
API server (the TTL may have changed) and deleted with a uid precondition and, as upstream,
foreground propagation (its pods go first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..api.meta import parse_time
from ..client import Controller
from ..client.errors import NotFound
from ..client.keys import ObjectKey, key_of
from ..client.resources import JOBS
from ..util.clock import Clock

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "ttl-after-finished-controller"
ALIASES = ("ttl-after-finished",)


def finish_time(job: Mapping[str, Any]) -> dt.datetime | None:
    """When the Job finished: the lastTransitionTime of its True Complete/Failed condition."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def needs_cleanup(job: Mapping[str, Any]) -> bool:
    spec = job.get("spec") or {}
    md = job.get("metadata") or {}
    return spec.get("ttlSecondsAfterFinished") is not None and not md.get("deletionTimestamp") \
        and finish_time(job) is not None


def time_left(job: Mapping[str, Any], now: dt.datetime) -> float | None:
    """Seconds until the Job expires (<= 0: expired now); None if it never does."""
    if not needs_cleanup(job):
        return None
    done = finish_time(job)
    assert done is not None
    ttl = int((job.get("spec") or {})["ttlSecondsAfterFinished"])
    return (done + dt.timedelta(seconds=ttl) - now).total_seconds()


class TTLAfterFinishedController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 clock: Clock | None = None, workers: int = 5) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.jobs = self.informer(JOBS, mapper=self._keys)
        self.deleted = 0

    @staticmethod
    def _keys(job: Obj) -> list[str]:
        return [key_of(job)] if needs_cleanup(job) else []

    async def sync(self, key: ObjectKey) -> None:
        job = self.jobs.lister().get_by_key(key)
        if job is None:
            return
        left = time_left(job, self.clock.wall())
        if left is None:
            return
        if left > 0:
            self.enqueue_after(key, left)
            return
        md = job.get("metadata") or {}
        try:   # the cache may be stale: decide on the server's current copy
            fresh = await self.client.get(JOBS, str(md["name"]), md.get("namespace"))
        except NotFound:
            return
        left = time_left(fresh, self.clock.wall())
        if left is None:
            return
        if left > 0:
            self.enqueue_after(key, left)
            return
        fmd = fresh.get("metadata") or {}
        try:
            await self.client.delete(JOBS, str(fmd["name"]), fmd.get("namespace"),
                                     propagation_policy="Foreground", preconditions={"uid": str(fmd.get("uid"))})
        except NotFound:
            return
        self.deleted += 1


def new(ctx: ControllerContext) -> TTLAfterFinishedController:
    return TTLAfterFinishedController(ctx.client, factory=ctx.factory, clock=ctx.clock,
                                      workers=int(ctx.options.get("concurrent_ttl_syncs", 5)))
