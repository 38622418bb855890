"""The API objects a kubelet reads for its pods (volumes, env, pull secrets), with a short cache.

    source = ApiObjectSource(client, services=factory.informer(SERVICES), clock=clock)
    cm = await source.get_configmap("default", "cfg")            # dict | None (None: not found)
    token, expires = await source.request_token("default", "default", audiences=[...],
                                                expiration_seconds=3600, pod_name="web", pod_uid=uid)

This is the ``ObjectSource`` the volume manager and ``envvars`` use. ConfigMaps, Secrets, PVCs and
PVs are fetched with GETs and kept for ``ttl`` seconds (so a burst of container starts in one pod
asks once, while an update still reaches mounted files within a refresh); NotFound is cached as
None too. Services come from the kubelet's Service informer when given (upstream watches all
Services for the service environment variables). Tokens come from the TokenRequest API
(``POST serviceaccounts/<name>/token``), bound to the pod.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Any

from ..api import meta as m
from ..client.errors import NotFound
from ..client.informer import SharedInformer
from ..client.lister import copy_obj
from ..client.resources import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    Resource,
)
from ..client.rest import ApiClient
from ..util.clock import Clock, RealClock

Obj = dict[str, Any]


class ApiObjectSource:
    """``ObjectSource`` over the API server (see the module docstring)."""

    def __init__(self, client: ApiClient, *, services: SharedInformer | None = None,
                 clock: Clock | None = None, ttl: float = 2.0, max_entries: int = 2048) -> None:
        self.client = client
        self.services = services
        self.clock = clock or RealClock()
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, Obj | None]] = OrderedDict()
        self.gets = 0
        self.tokens = 0

    async def _get(self, res: Resource, ns: str | None, name: str) -> Obj | None:
        key = (res.plural, ns or "", name)
        now = self.clock.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            self._cache.move_to_end(key)
            return hit[1]
        self.gets += 1
        try:
            obj: Obj | None = await self.client.get(res, name, ns)
        except NotFound:
            obj = None
        self._cache[key] = (now, obj)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return obj

    def invalidate(self, kind: str | None = None, ns: str | None = None, name: str | None = None) -> None:
        """Forget cached objects (all, or those matching what is given)."""
        for key in list(self._cache):
            if (kind is None or key[0] == kind) and (ns is None or key[1] == ns) and (
                    name is None or key[2] == name):
                del self._cache[key]

    async def get_configmap(self, ns: str, name: str) -> Obj | None:
        return await self._get(CONFIGMAPS, ns, name)

    async def get_secret(self, ns: str, name: str) -> Obj | None:
        return await self._get(SECRETS, ns, name)

    async def get_pvc(self, ns: str, name: str) -> Obj | None:
        return await self._get(PERSISTENTVOLUMECLAIMS, ns, name)

    async def get_pv(self, name: str) -> Obj | None:
        return await self._get(PERSISTENTVOLUMES, None, name)

    async def list_services(self, ns: str) -> list[Obj]:
        """Services of ``ns`` ("" = every namespace)."""
        if self.services is not None and self.services.has_synced:
            return [copy_obj(s) for s in self.services.lister().list(ns or None)]
        items, _rv = await self.client.list_all(SERVICES, ns or None)
        return items

    async def request_token(self, ns: str, service_account: str, *, audiences: list[str],
                            expiration_seconds: int, pod_name: str, pod_uid: str) -> tuple[str, float]:
        """A service-account token bound to the pod: (token, expiry in unix seconds)."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": list(audiences), "expirationSeconds": int(expiration_seconds),
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name,
                                            "uid": pod_uid}}}
        self.tokens += 1
        got = await self.client.create(SERVICEACCOUNTS, body, ns, subresource="token",
                                       name=service_account)
        status = got.get("status") or {}
        token = str(status.get("token") or "")
        if not token:
            raise RuntimeError(f"TokenRequest for {ns}/{service_account} returned no token")
        expires = m.parse_time(status.get("expirationTimestamp"))
        if expires is None:
            expires = self.clock.wall() + dt.timedelta(seconds=int(expiration_seconds))
        return token, expires.timestamp()

    def statistics(self) -> dict[str, int]:
        return {"cached": len(self._cache), "gets": self.gets, "tokens": self.tokens}
