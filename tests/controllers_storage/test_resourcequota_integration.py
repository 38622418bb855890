"""The ResourceQuota controller against the real in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client import InformerFactory
from kybernetes.client.resources import CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PODS, RESOURCEQUOTAS
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.resourcequota import ResourceQuotaController

from .builders import container, pod, pvc, quota
from .conftest import running, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


@pytest.fixture
async def quota_controller(client: ApiClient) -> AsyncIterator[ResourceQuotaController]:
    factory = InformerFactory(client)
    ctl = ResourceQuotaController(client, factory=factory, resync_period=30.0)
    async with running(factory.run(), ctl.run()):
        await wait_for(lambda: ctl.wait_for_sync(0.01))
        yield ctl


async def used_of(client: ApiClient, name: str = "q") -> Obj:
    return ((await client.get(RESOURCEQUOTAS, name, "default")).get("status") or {}).get("used") or {}


async def wait_used(client: ApiClient, expected: dict[str, str], name: str = "q") -> None:
    async def ok() -> bool:
        return await used_of(client, name) == expected

    try:
        await wait_for(ok, what=f"used == {expected}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last used: {await used_of(client, name)}") from None


async def test_usage_follows_creates_and_deletes(client: ApiClient, quota_controller: ResourceQuotaController) -> None:
    hard = {"pods": "10", "configmaps": "5", "requests.cpu": "4", "requests.memory": "2Gi", "limits.memory": "4Gi",
            "count/deployments.apps": "3", "persistentvolumeclaims": "4", "requests.storage": "10Gi"}
    await client.create(CONFIGMAPS, {"metadata": {"name": "before"}, "data": {}}, "default")
    await client.create(RESOURCEQUOTAS, quota("q", hard), "default")
    await wait_used(client, {"pods": "0", "configmaps": "1", "requests.cpu": "0", "requests.memory": "0",
                             "limits.memory": "0", "count/deployments.apps": "0", "persistentvolumeclaims": "0",
                             "requests.storage": "0"})
    status = (await client.get(RESOURCEQUOTAS, "q", "default"))["status"]
    assert status["hard"] == hard

    await client.create(PODS, pod("a", containers=[container(requests={"cpu": "250m", "memory": "256Mi"},
                                                             limits={"memory": "512Mi"})]), "default")
    # a quota on limits.memory makes admission require it of every pod (upstream: "must specify")
    await client.create(PODS, pod("b", containers=[container(requests={"cpu": "500m", "memory": "512Mi"},
                                                             limits={"memory": "1Gi"})]), "default")
    await client.create(CONFIGMAPS, {"metadata": {"name": "after"}, "data": {}}, "default")
    await client.create(PERSISTENTVOLUMECLAIMS, pvc("data", "3Gi"), "default")
    expected = {"pods": "2", "configmaps": "2", "requests.cpu": "750m", "requests.memory": "768Mi",
                "limits.memory": "1536Mi", "count/deployments.apps": "0", "persistentvolumeclaims": "1",
                "requests.storage": "3Gi"}
    await wait_used(client, expected)

    # a finished pod stops counting; deletes drop usage
    await client.patch_status(PODS, "b", {"status": {"phase": "Succeeded"}}, "default")
    await wait_used(client, {**expected, "pods": "1", "requests.cpu": "250m", "requests.memory": "256Mi",
                             "limits.memory": "512Mi"})
    await client.delete(PODS, "a", "default", grace_period_seconds=0)
    await client.delete(CONFIGMAPS, "before", "default")
    await client.delete(PERSISTENTVOLUMECLAIMS, "data", "default")
    await wait_used(client, {**expected, "pods": "0", "configmaps": "1", "requests.cpu": "0", "requests.memory": "0",
                             "limits.memory": "0", "persistentvolumeclaims": "0", "requests.storage": "0"})


async def test_hard_changes_and_scopes(client: ApiClient, quota_controller: ResourceQuotaController) -> None:
    await client.create(PODS, pod("be"), "default")
    await client.create(PODS, pod("burst", containers=[container(requests={"cpu": "1"})]), "default")
    await client.create(RESOURCEQUOTAS, quota("besteffort", {"pods": "3"}, scopes=["BestEffort"]), "default")
    await client.create(RESOURCEQUOTAS, quota("q", {"pods": "5"}), "default")
    await wait_used(client, {"pods": "1"}, "besteffort")
    await wait_used(client, {"pods": "2"})
    q = await client.get(RESOURCEQUOTAS, "q", "default")
    q["spec"]["hard"] = {"pods": "5", "count/pods": "5", "cpu": "2000m"}
    await client.update(RESOURCEQUOTAS, q, "default")
    await wait_used(client, {"pods": "2", "count/pods": "2", "cpu": "1"})
    assert (await client.get(RESOURCEQUOTAS, "q", "default"))["status"]["hard"] == {
        "pods": "5", "count/pods": "5", "cpu": "2"}


async def test_periodic_full_recalculation(client: ApiClient) -> None:
    factory = InformerFactory(client)
    ctl = ResourceQuotaController(client, factory=factory, resync_period=0.2)
    await client.create(RESOURCEQUOTAS, quota("q", {"configmaps": "3"}), "default")
    async with running(factory.run(), ctl.run()):
        await wait_used(client, {"configmaps": "0"})
        before = ctl.syncs
        await wait_for(lambda: ctl.syncs >= before + 3, timeout=5, what="periodic resyncs")
    assert ctl.stats.status_writes == 1  # recalculations that change nothing write nothing
