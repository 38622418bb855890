"""A small simulated cluster for the DaemonSet/StatefulSet integration tests.

The real in-process API server (``api`` fixture), the fake kubelet simulating ``sim-1`` ..
``sim-5`` (``sim-5`` carries a ``dedicated=infra:NoSchedule`` taint, set before the kubelet
registers it), the real scheduler, and the controllers under test on one informer factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest

from kybernetes.client import EventRecorder, InformerFactory
from kybernetes.client.resources import NODES, PODS, STORAGECLASSES
from kybernetes.controllers import localpath, persistentvolume
from kybernetes.controllers.manager import ControllerContext
from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.controllers.daemonset import DaemonSetController
from kybernetes.controllers.statefulset import StatefulSetController
from kybernetes.kubelet.fake import FakeKubelet, fake_node_configs
from kybernetes.kubelet.node import build_node
from kybernetes.scheduler.main import run_with_client
from tests import harness


def wait_for(*args, **kw):  # type: ignore[no-untyped-def]
    """The shared poll, with this suite's default timeout (15 s)."""
    kw.setdefault("timeout", 15.0)
    return harness.wait_for(*args, **kw)

Obj = dict[str, Any]
TAINTED = "sim-5"
TAINT = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def live(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


@dataclass
class Cluster:
    client: ApiClient
    kubelet: FakeKubelet

    async def pods(self, selector: str | None = None, ns: str = "default") -> list[Obj]:
        items, _ = await self.client.list_all(PODS, ns, label_selector=selector)
        return items


@contextlib.asynccontextmanager
async def _running(*coros: Awaitable[None]) -> AsyncIterator[None]:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def cluster(client: ApiClient) -> AsyncIterator[Cluster]:
    configs = fake_node_configs(5)
    tainted = build_node(next(c for c in configs if c.name == TAINTED), dt.datetime.now(dt.UTC))
    tainted["spec"]["taints"] = [TAINT]
    await client.create(NODES, tainted)
    kubelet = FakeKubelet(client, configs, lease_interval=5.0)
    factory = InformerFactory(client)
    recorder = EventRecorder(client, "controller-manager")
    ds = DaemonSetController(client, factory=factory, recorder=recorder)
    sts = StatefulSetController(client, factory=factory, recorder=recorder)
    # claims need what a cluster has: the default StorageClass, its provisioner and the binder
    # (the scheduler keeps pods whose claims cannot bind Pending, as upstream)
    ctx = ControllerContext(client=client, factory=factory, recorder=recorder)
    binder, provisioner = persistentvolume.new(ctx), localpath.new(ctx)
    async with _running(kubelet.run(), run_with_client(client, leader_elect=False), factory.run(),
                        recorder.run(), ds.run(), sts.run(), binder.run(), provisioner.run()):
        await asyncio.wait_for(kubelet.registered.wait(), 10)
        await wait_for(lambda: ds.wait_for_sync(0.01))
        await wait_for(lambda: harness.exists(client, STORAGECLASSES, localpath.CLASS_NAME))
        yield Cluster(client, kubelet)
