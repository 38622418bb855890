"""The node Lease (coordination.k8s.io/v1 in kube-node-lease): the kubelet's cheap heartbeat.

A kubelet renews its Lease every ``RENEW_INTERVAL`` seconds; the node lifecycle controller
considers the node gone when ``renewTime`` is older than ``leaseDurationSeconds``. Renewing is one
merge PATCH of ``spec.renewTime``; the Lease is created (owned by the Node, so it is garbage
collected with it) when the PATCH finds none.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..api import meta as m
from ..client.errors import AlreadyExists, NotFound
from ..client.resources import LEASES

if TYPE_CHECKING:
    from ..client.rest import ApiClient

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
RENEW_INTERVAL = 10.0


def build_lease(node_name: str, node_uid: str | None, now: dt.datetime,
                duration: int = LEASE_DURATION_SECONDS) -> Obj:
    """A fresh Lease for ``node_name`` (owned by the Node when its uid is known)."""
    md: Obj = {"name": node_name, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                  "uid": node_uid}]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
            "spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration,
                     "renewTime": m.now_micro(now)}}


def renew_patch(node_name: str, now: dt.datetime, duration: int = LEASE_DURATION_SECONDS) -> Obj:
    """The merge patch that renews a node Lease at ``now``."""
    return {"spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration,
                     "renewTime": m.now_micro(now)}}


async def renew_lease(client: ApiClient, node_name: str, node_uid: str | None,
                      now: dt.datetime) -> Obj:
    """Renew (or create) the Lease of ``node_name``; returns the stored Lease."""
    try:
        return await client.patch(LEASES, node_name, renew_patch(node_name, now), NODE_LEASE_NAMESPACE)
    except NotFound:
        pass
    try:
        return await client.create(LEASES, build_lease(node_name, node_uid, now), NODE_LEASE_NAMESPACE)
    except AlreadyExists:  # raced with another writer: renew it
        return await client.patch(LEASES, node_name, renew_patch(node_name, now), NODE_LEASE_NAMESPACE)
