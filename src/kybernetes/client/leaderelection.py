"""Leader election on ``coordination.k8s.io/v1`` Leases (client-go ``leaderelection`` semantics).

    elector = LeaderElector(client, LeaderElectionConfig("kube-scheduler", "kube-system", identity))
    await elector.run(on_started_leading=scheduler.run, on_stopped_leading=on_lost)

* Acquire: every ``retry_period`` (jittered) try to take the Lease. A Lease held by someone else is
  taken only when its record has not changed for ``leaseDurationSeconds`` *as observed by our own
  clock* (no trust in the other host's timestamps). Writes are compare-and-swap on the Lease's
  ``resourceVersion``: of two racing electors exactly one wins, the other gets a Conflict.
* Lead: ``on_started_leading()`` runs as a task; every ``retry_period`` the Lease's ``renewTime`` is
  renewed. If renewing keeps failing for ``renew_deadline`` seconds, leadership is lost: the leading
  task is cancelled, ``on_stopped_leading()`` is called and ``run`` returns.
* Stop: cancelling ``run`` (or the leading coroutine returning) cancels the leading task and, with
  ``release_on_cancel``, releases the Lease (holder cleared, duration 1 s) so a standby takes over
  at once instead of waiting out the lease. ``on_stopped_leading`` is called only if we had led.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.meta import now_micro
from ..util.clock import Clock, RealClock
from ..util.tasks import Supervisor
from .errors import AlreadyExists, ApiError, Conflict, NotFound, TransportError
from .resources import LEASES

if TYPE_CHECKING:
    from .rest import ApiClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]
JITTER = 1.2


@dataclass(frozen=True)
class LeaderElectionConfig:
    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election needs an identity")
        if not self.lease_duration > self.renew_deadline > JITTER * self.retry_period:
            raise ValueError("need lease_duration > renew_deadline > 1.2 * retry_period")


class LeaderElector:
    def __init__(self, client: ApiClient, config: LeaderElectionConfig, *,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.config = config
        self.clock = clock or RealClock()
        self._observed_spec: Obj | None = None
        self._observed_rv = ""
        self._observed_at = 0.0
        self._leading = False
        self.transitions_seen = 0

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The holder identity last observed ("" if none)."""
        return str((self._observed_spec or {}).get("holderIdentity") or "")

    # -- one attempt ------------------------------------------------------------------------------
    def _record(self, old: Obj | None) -> Obj:
        now = now_micro(self.clock.wall())
        spec: Obj = {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.config.lease_duration)),
            "renewTime": now,
        }
        if old and old.get("holderIdentity") == self.config.identity:
            spec["acquireTime"] = old.get("acquireTime") or now
            spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0)
        else:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int((old or {}).get("leaseTransitions") or 0) + (1 if old else 0)
        return spec

    def _observe(self, lease: Obj) -> None:
        spec = dict(lease.get("spec") or {})
        rv = str((lease.get("metadata") or {}).get("resourceVersion") or "")
        if spec != self._observed_spec:
            self._observed_at = self.clock.monotonic()
        self._observed_spec, self._observed_rv = spec, rv

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease; True if we hold it afterwards."""
        c = self.config
        try:
            lease = await self.client.get(LEASES, c.name, c.namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": c.name, "namespace": c.namespace}, "spec": self._record(None)}
            try:
                self._observe(await self.client.create(LEASES, body, c.namespace))
            except (AlreadyExists, Conflict):
                return False
            return True
        self._observe(lease)
        old = self._observed_spec or {}
        holder = old.get("holderIdentity") or ""
        duration = float(old.get("leaseDurationSeconds") or c.lease_duration)
        if holder and holder != c.identity and self._observed_at + duration > self.clock.monotonic():
            return False
        lease = {**lease, "spec": self._record(old)}
        try:
            self._observe(await self.client.update(LEASES, lease, c.namespace))
        except Conflict:
            return False
        if holder != c.identity:
            self.transitions_seen += 1
            log.info("%s: %s acquired lease %s/%s", c.identity, c.identity, c.namespace, c.name)
        return True

    async def _try(self, deadline_s: float) -> bool:
        try:
            async with asyncio.timeout(max(0.05, deadline_s)):
                return await self.try_acquire_or_renew()
        except (ApiError, TransportError, TimeoutError) as e:
            log.warning("%s: lease %s/%s: %r", self.config.identity, self.config.namespace,
                        self.config.name, e)
            return False

    # -- loops ------------------------------------------------------------------------------------
    async def _acquire(self) -> None:
        c = self.config
        while not await self._try(c.renew_deadline):
            await self.clock.sleep(c.retry_period * (1 + random.random() * (JITTER - 1)))

    async def _renew(self) -> bool:
        """Keep renewing for up to ``renew_deadline``; False once that is exceeded."""
        c = self.config
        deadline = self.clock.monotonic() + c.renew_deadline
        while True:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return False
            if await self._try(remaining):
                return True
            await self.clock.sleep(min(c.retry_period, max(0.0, deadline - self.clock.monotonic())))

    async def release(self) -> bool:
        """Give the Lease up if we hold it (holder cleared, 1 s duration)."""
        c = self.config
        try:
            lease = await self.client.get(LEASES, c.name, c.namespace)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != c.identity:
                return False
            now = now_micro(self.clock.wall())
            spec.update({"leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now})
            spec.pop("holderIdentity", None)
            await self.client.update(LEASES, {**lease, "spec": spec}, c.namespace)
            return True
        except (ApiError, TransportError) as e:
            log.warning("%s: releasing lease failed: %r", c.identity, e)
            return False

    async def run(self, on_started_leading: Callable[[], Coroutine[Any, Any, Any]],
                  on_stopped_leading: Callable[[], Any] | None = None) -> None:
        """Campaign, lead, and return when leadership is lost or the leading coroutine ends."""
        c = self.config
        await self._acquire()
        self._leading = True
        sup = Supervisor(f"leader/{c.name}", logger=log)
        task = sup.start(on_started_leading(), name="leading")
        lost = False
        try:
            while not task.done():
                await self.clock.sleep(c.retry_period)
                if task.done():
                    break
                if not await self._renew():
                    lost = True
                    log.warning("%s: lost lease %s/%s", c.identity, c.namespace, c.name)
                    break
        finally:
            self._leading = False
            await sup.stop()
            if not lost and c.release_on_cancel:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(1.0, c.retry_period)):
                        await self.release()
            if on_stopped_leading is not None:
                result = on_stopped_leading()
                if asyncio.iscoroutine(result):
                    await result
