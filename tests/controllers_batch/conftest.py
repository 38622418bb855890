"""Fixtures for the batch controller tests: Job/CronJob/TTL controllers, the fake kubelet and
(optionally) the scheduler, all in-process against the real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from types import ModuleType
from typing import Any

import pytest

from kybernetes.client import ApiClient, InformerFactory, NotFound
from kybernetes.client.events import EventRecorder
from kybernetes.client.resources import EVENTS, JOBS, PODS
from kybernetes.client.rest import RetryPolicy
from kybernetes.controllers.manager import ControllerContext
from kybernetes.kubelet.fake import FakeKubelet, fake_node_configs
from kybernetes.util.clock import Clock, RealClock
from tests import harness


def wait_for(*args, **kw):  # type: ignore[no-untyped-def]
    """The shared poll, with this suite's default timeout (15 s)."""
    kw.setdefault("timeout", 15.0)
    return harness.wait_for(*args, **kw)

Obj = dict[str, Any]
NODE = "sim-1"


@pytest.fixture
async def client(api: Any) -> AsyncIterator[ApiClient]:
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def cluster(client: ApiClient, *modules: ModuleType, clock: Clock | None = None, kubelet: bool = True,
                  scheduler: bool = False, **options: Any) -> AsyncIterator[list[Any]]:
    """Run the controllers of ``modules`` (+ fake kubelet with one node, + scheduler)."""
    opts = {"job_backoff_base": 0.05, "job_backoff_max": 0.2, "gc_discovery_period": 5.0, **options}
    ctx = ControllerContext(client=client, factory=InformerFactory(client),
                            recorder=EventRecorder(client, "controller-manager", "test"),
                            clock=clock or RealClock(), options=opts)
    controllers = [m.new(ctx) for m in modules]
    coros: list[Awaitable[None]] = [ctx.factory.run(), ctx.recorder.run(), *(c.run() for c in controllers)]
    fake: FakeKubelet | None = None
    if kubelet:
        fake = FakeKubelet(client, fake_node_configs(1), lease_interval=0.5, pod_workers=8, node_workers=1,
                           stop_seconds=0.05)
        coros.append(fake.run())
    if scheduler:
        from kybernetes.scheduler.main import run_with_client
        coros.append(run_with_client(client, leader_elect=False))
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await ctx.factory.wait_for_sync(timeout=10)
        if fake is not None:
            await asyncio.wait_for(fake.registered.wait(), 10)
        yield controllers
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


def job_body(name: str, *, completions: int | None = 1, parallelism: int = 1, duration: str = "0.3s",
             exit_code: int | None = None, bind: bool = True, **spec: Any) -> Obj:
    annotations = {"kybernetes.io/fake-duration": duration}
    if exit_code is not None:
        annotations["kybernetes.io/fake-exit-code"] = str(exit_code)
    pod_spec: Obj = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
    if bind:
        pod_spec["nodeName"] = NODE
    s: Obj = {"parallelism": parallelism, "template": {"metadata": {"annotations": annotations}, "spec": pod_spec},
              **spec}
    if completions is not None:
        s["completions"] = completions
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": s}


async def get_job(client: ApiClient, name: str, ns: str = "default") -> Obj | None:
    try:
        return await client.get(JOBS, name, ns)
    except NotFound:
        return None


def condition(obj: Obj | None, ctype: str) -> Obj | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype and c.get("status") == "True":
            return dict(c)
    return None


async def job_pods(client: ApiClient, job: Obj) -> list[Obj]:
    uid = job["metadata"]["uid"]
    items, _ = await client.list_all(PODS, job["metadata"]["namespace"])
    return [p for p in items if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or ())]


async def event_reasons(client: ApiClient, name: str, ns: str = "default") -> list[str]:
    items, _ = await client.list_all(EVENTS, ns)
    return [e.get("reason", "") for e in items if (e.get("involvedObject") or {}).get("name") == name]
