"""Fixtures for scheduler integration tests: our ApiClient against the in-process API server,
Node objects created directly (no kubelet), and a Scheduler running in the background."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.resources import NODES, PODS
from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.scheduler.scheduler import Scheduler
from tests.builders import make_node, make_pod

Obj = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


def api_pod(name: str, **kw: Any) -> Obj:
    """A pod to POST: the builder's pod without uid and status (the server sets those)."""
    pod = make_pod(name, **kw)
    pod["metadata"].pop("uid", None)
    pod.pop("status", None)
    return pod


async def add_node(client: ApiClient, name: str, *, zone: str | None = None, **kw: Any) -> Obj:
    labels = dict(kw.pop("labels", None) or {})
    if zone:
        labels[ZONE] = zone
    return await client.create(NODES, make_node(name, labels=labels, **kw))


async def pods_by_name(client: ApiClient, ns: str = "default") -> dict[str, Obj]:
    items = (await client.list(PODS, ns)).get("items") or []
    return {p["metadata"]["name"]: p for p in items}


@contextlib.asynccontextmanager
async def running(sched: Scheduler) -> AsyncIterator[Scheduler]:
    """Run ``sched`` in the background until the block ends (cancelled and awaited)."""
    task = asyncio.ensure_future(sched.run())
    try:
        waiter = asyncio.ensure_future(sched.synced.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert waiter in done, "scheduler caches did not sync"
        yield sched
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
