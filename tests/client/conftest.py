"""Fixtures for client tests: our real ApiClient against the in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kybernetes.client.rest import ApiClient, RetryPolicy
from tests import harness


def wait_for(*args, **kw):  # type: ignore[no-untyped-def]
    """The shared poll, with this suite's default timeout (5 s)."""
    kw.setdefault("timeout", 5.0)
    return harness.wait_for(*args, **kw)


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


def cm(name: str, ns: str = "default", **labels: str) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"k": name}}
