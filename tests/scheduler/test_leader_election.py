"""Two scheduler processes' worth of ``run_with_client`` with leader election: only the leader
binds; when it stops, the standby takes over."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kybernetes.client.errors import AlreadyExists
from kybernetes.client.leaderelection import LeaderElectionConfig
from kybernetes.client.resources import EVENTS, LEASES, NAMESPACES, PODS
from kybernetes.client.rest import ApiClient
from kybernetes.scheduler.main import run_with_client
from tests.client.conftest import wait_for

from .conftest import add_node, api_pod, pods_by_name

pytestmark = pytest.mark.integration


def election(identity: str) -> LeaderElectionConfig:
    return LeaderElectionConfig("kube-scheduler", "kube-system", identity, lease_duration=2.0,
                                renew_deadline=1.0, retry_period=0.2)


async def scheduled_by(client: ApiClient) -> dict[str, str]:
    """Pod name -> reportingInstance of its Scheduled event."""
    items = (await client.list(EVENTS, "default")).get("items") or []
    return {e["involvedObject"]["name"]: e["reportingInstance"] for e in items if e["reason"] == "Scheduled"}


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_only_the_leader_binds_then_the_standby_takes_over(client: ApiClient) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "kube-system"}})
    await add_node(client, "node-0", cpu="32")
    a = asyncio.ensure_future(run_with_client(client, identity="sched-a", election=election("sched-a")))
    await wait_for(lambda: _holder(client, "sched-a"), timeout=5)
    b = asyncio.ensure_future(run_with_client(client, identity="sched-b", election=election("sched-b")))
    try:
        names = [f"p-{i}" for i in range(10)]
        for n in names:
            await client.create(PODS, api_pod(n))
        await wait_for(lambda: _scheduled(client, names), timeout=10)
        assert set((await scheduled_by(client)).values()) == {"sched-a"}
        await stop(a)  # the leader goes away (releasing the lease): b takes over
        await wait_for(lambda: _holder(client, "sched-b"), timeout=5)
        await client.create(PODS, api_pod("late"))
        await wait_for(lambda: _scheduled(client, [*names, "late"]), timeout=10)
        by = await scheduled_by(client)
        assert by["late"] == "sched-b" and {by[n] for n in names} == {"sched-a"}
        pods = await pods_by_name(client)
        assert all(pods[n]["spec"]["nodeName"] == "node-0" for n in [*names, "late"])
    finally:
        await stop(a)
        await stop(b)


async def _holder(client: ApiClient, who: str) -> bool:
    try:
        lease = await client.get(LEASES, "kube-scheduler", "kube-system")
    except Exception:  # noqa: BLE001 - not created yet
        return False
    return bool(lease["spec"].get("holderIdentity") == who)


async def _scheduled(client: ApiClient, names: list[str]) -> bool:
    return set(names) <= set(await scheduled_by(client))
