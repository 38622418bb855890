"""Fixtures for the ReplicaSet/Deployment controller tests against the in-process API server.

No kubelet runs here, so ``mark_ready`` plays its part: it patches pods/status to Running + Ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kybernetes.client import InformerFactory
from kybernetes.client.resources import PODS
from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.controllers.deployment import DeploymentController
from kybernetes.controllers.replicaset import ReplicaSetController
from tests.harness import wait_for  # noqa: F401 - shared by this suite's tests

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


def is_active(pod: Obj) -> bool:
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


async def mark_ready(client: ApiClient, pod: Obj) -> Obj:
    """Act as the kubelet: pod Running, containers ready, condition Ready=True."""
    now = _now()
    containers = (pod.get("spec") or {}).get("containers") or []
    patch = {"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                       {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                               "restartCount": 0, "started": True, "state": {"running": {"startedAt": now}}}
                              for c in containers]}}
    md = pod["metadata"]
    return await client.patch_status(PODS, md["name"], patch, md["namespace"])


async def list_pods(client: ApiClient, ns: str = "default", selector: str | None = None) -> list[Obj]:
    items, _ = await client.list_all(PODS, ns, label_selector=selector)
    return items


@contextlib.asynccontextmanager
async def fake_kubelet(client: ApiClient, ns: str = "default", delay: float = 0.0,
                       skip: Callable[[Obj], bool] | None = None) -> AsyncIterator[None]:
    """Mark every active pod ready (after ``delay`` s), unless ``skip(pod)``."""
    seen: dict[str, float] = {}

    async def loop() -> None:
        while True:
            now = asyncio.get_running_loop().time()
            for pod in await list_pods(client, ns):
                uid = pod["metadata"]["uid"]
                if is_ready(pod) or not is_active(pod) or (skip is not None and skip(pod)):
                    continue
                first = seen.setdefault(uid, now)
                if now - first >= delay:
                    with contextlib.suppress(Exception):
                        await mark_ready(client, pod)
            await asyncio.sleep(0.03)

    task = asyncio.ensure_future(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def controllers(client: Any, *, replicasets: bool = True, deployments: bool = True,
                      rc: bool = False) -> AsyncIterator[dict[str, Any]]:
    """Run the chosen controllers on one shared informer factory."""
    from kybernetes.controllers.replicaset import REPLICATIONCONTROLLER

    factory = InformerFactory(client)
    ctls: dict[str, Any] = {}
    if replicasets:
        ctls["rs"] = ReplicaSetController(client, factory=factory)
    if rc:
        ctls["rc"] = ReplicaSetController(client, factory=factory, kind=REPLICATIONCONTROLLER)
    if deployments:
        ctls["deploy"] = DeploymentController(client, factory=factory)
    tasks = [asyncio.ensure_future(factory.run())] + [asyncio.ensure_future(c.run()) for c in ctls.values()]
    try:
        yield ctls
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
