"""Fixtures for the PDB / eviction / pod GC integration tests against the in-process API server.

No kubelet runs: ``mark_ready`` plays its part so a test decides exactly when a pod becomes ready.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.resources import PODS
from kybernetes.client.rest import ApiClient, RetryPolicy
from tests.harness import wait_for  # noqa: F401 - shared by this suite's tests
from tests.harness import running_tasks as running  # noqa: F401 - shared by this suite's tests

Obj = dict[str, Any]


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def live(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


async def mark_ready(client: ApiClient, pod: Obj) -> Obj:
    """Act as the kubelet: pod Running with condition Ready=True."""
    now = _now()
    patch = {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}}
    md = pod["metadata"]
    return await client.patch_status(PODS, md["name"], patch, md["namespace"])


async def pods_of(client: ApiClient, selector: str, ns: str = "default") -> list[Obj]:
    items, _ = await client.list_all(PODS, ns, label_selector=selector)
    return items


def pod_body(name: str, labels: dict[str, str], *, owner: Obj | None = None, node: str | None = None) -> Obj:
    md: Obj = {"name": name, "labels": dict(labels)}
    if owner is not None:
        md["ownerReferences"] = [owner]
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def deployment(name: str, replicas: int, labels: dict[str, str]) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def budget(name: str, labels: dict[str, str], **spec: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": dict(labels)}, **spec}}


def eviction(name: str, ns: str = "default", **delete_options: Any) -> Obj:
    body: Obj = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return body
