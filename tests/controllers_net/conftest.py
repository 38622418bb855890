"""Fixtures for the endpoints / node lifecycle / IPAM integration tests (real in-process API server)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import PODS
from kybernetes.client.rest import RetryPolicy
from tests.harness import wait_for  # noqa: F401 - shared by this suite's tests

Obj = dict[str, Any]


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def background(*coros: Awaitable[Any]) -> AsyncIterator[None]:
    """Run ``coros`` as tasks for the duration of the block; cancel and await them after."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        yield
        for t in tasks:
            if t.done() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def set_pod_status(client: ApiClient, name: str, ip: str, *, ready: bool = True, ns: str = "default") -> Obj:
    """Play the kubelet: Running with ``ip``, Ready as asked."""
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": _now()}]}
    return await client.patch_status(PODS, name, {"status": status}, ns)
