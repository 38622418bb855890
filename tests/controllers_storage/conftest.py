"""Fixtures for the storage/quota controller integration tests (real in-process API server).

``storage_cluster`` runs the fake kubelet (``sim-1`` .. ``sim-3``), the real scheduler, the PV
binder and the local-path provisioner on one informer factory, with an event recorder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from kybernetes.client import EventRecorder, InformerFactory
from kybernetes.client.resources import EVENTS, STORAGECLASSES
from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.controllers.localpath import LocalPathProvisioner
from kybernetes.controllers.persistentvolume import PersistentVolumeBinder
from kybernetes.kubelet.fake import FakeKubelet, fake_node_configs
from kybernetes.scheduler.main import run_with_client
from tests.harness import exists, wait_for  # noqa: F401 - shared by this suite's tests
from tests.harness import running_tasks as running  # noqa: F401 - shared by this suite's tests

Obj = dict[str, Any]


async def events_for(client: ApiClient, name: str, ns: str = "default") -> list[Obj]:
    items, _ = await client.list_all(EVENTS, ns, field_selector=f"involvedObject.name={name}")
    return items


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


@dataclass
class StorageCluster:
    client: ApiClient
    binder: PersistentVolumeBinder
    provisioner: LocalPathProvisioner | None = None


@pytest.fixture
async def binder_only(client: ApiClient) -> AsyncIterator[StorageCluster]:
    """Just the binder (and its events): no nodes, no provisioner."""
    factory = InformerFactory(client)
    recorder = EventRecorder(client, "persistentvolume-controller")
    binder = PersistentVolumeBinder(client, factory=factory, recorder=recorder)
    async with running(factory.run(), recorder.run(), binder.run()):
        await wait_for(lambda: binder.wait_for_sync(0.01))
        yield StorageCluster(client, binder)


@pytest.fixture
async def storage_cluster(client: ApiClient) -> AsyncIterator[StorageCluster]:
    kubelet = FakeKubelet(client, fake_node_configs(3), lease_interval=5.0)
    factory = InformerFactory(client)
    recorder = EventRecorder(client, "persistentvolume-controller")
    binder = PersistentVolumeBinder(client, factory=factory, recorder=recorder)
    prov = LocalPathProvisioner(client, factory=factory, recorder=recorder)
    async with running(kubelet.run(), run_with_client(client, leader_elect=False), factory.run(),
                       recorder.run(), binder.run(), prov.run()):
        await asyncio.wait_for(kubelet.registered.wait(), 10)
        await wait_for(lambda: prov.wait_for_sync(0.01))
        await wait_for(lambda: exists(client, STORAGECLASSES, "local-path"), what="local-path class")
        yield StorageCluster(client, binder, prov)
