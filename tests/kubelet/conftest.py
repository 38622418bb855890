"""Fixtures for kubelet tests: a fake kubelet against the real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.kubelet.fake import FakeKubelet, fake_node_configs


@pytest.fixture
async def client(api: Any) -> AsyncIterator[ApiClient]:
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def running(kubelet: FakeKubelet) -> AsyncIterator[FakeKubelet]:
    """Run ``kubelet`` in the background until the block ends (then cancel and await it)."""
    task = asyncio.create_task(kubelet.run(), name="test-fake-kubelet")
    try:
        await asyncio.wait_for(kubelet.registered.wait(), 10)
        assert await kubelet.factory.wait_for_sync(10)
        yield kubelet
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_kubelet(client: ApiClient, nodes: int = 3, **kw: Any) -> FakeKubelet:
    kw.setdefault("lease_interval", 0.3)
    kw.setdefault("pod_workers", 4)
    kw.setdefault("node_workers", 2)
    return FakeKubelet(client, fake_node_configs(nodes), **kw)
