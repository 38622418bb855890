"""DaemonSet controller + scheduler + fake kubelet (5 simulated nodes, sim-5 tainted NoSchedule)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.errors import NotFound
from kybernetes.client.resources import CONTROLLERREVISIONS, DAEMONSETS, EVENTS, NODES, PODS
from kybernetes.controllers.daemonset.util import target_node
from kybernetes.controllers.history import DEFAULT_REVISION_LABEL

from .conftest import TAINTED, Cluster, is_ready, live, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
SIM = ["sim-1", "sim-2", "sim-3", "sim-4"]
ROOM = {"cpu": "4", "memory": "8Gi", "pods": "110"}


def daemonset(image: str = "agent:1", max_unavailable: int | str = 1) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": max_unavailable}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "agent", "image": image}]}}}}


async def get_ds(c: Cluster) -> Obj:
    return await c.client.get(DAEMONSETS, "agent", "default")


async def live_pods(c: Cluster) -> list[Obj]:
    return [p for p in await c.pods("app=agent") if live(p)]


async def settled(c: Cluster, nodes: list[str]) -> bool:
    """One ready pod per node in ``nodes`` and nowhere else, and the status says so."""
    pods = await live_pods(c)
    ds = await get_ds(c)
    st = ds.get("status") or {}
    return (sorted(p["spec"].get("nodeName") or "" for p in pods) == sorted(nodes)
            and all(is_ready(p) for p in pods)
            and st.get("desiredNumberScheduled") == len(nodes) and st.get("numberReady") == len(nodes)
            and st.get("numberAvailable") == len(nodes) and st.get("updatedNumberScheduled") == len(nodes)
            and st.get("observedGeneration") == ds["metadata"]["generation"])


async def test_one_pod_per_eligible_node(cluster: Cluster) -> None:
    c = cluster
    await c.client.create(DAEMONSETS, daemonset(), "default")
    await wait_for(lambda: settled(c, SIM))
    pods = await live_pods(c)
    assert TAINTED not in {p["spec"]["nodeName"] for p in pods}
    st = (await get_ds(c))["status"]
    assert (st["currentNumberScheduled"], st["numberMisscheduled"], st["numberUnavailable"]) == (4, 0, 0)
    # pods carry the target-node affinity, default tolerations and the revision hash
    revs, _ = await c.client.list_all(CONTROLLERREVISIONS, "default")
    (rev,) = revs
    hash_ = rev["metadata"]["labels"][DEFAULT_REVISION_LABEL]
    assert rev["metadata"]["name"] == f"agent-{hash_}" and rev["revision"] == 1
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    for p in pods:
        assert p["metadata"]["labels"][DEFAULT_REVISION_LABEL] == hash_
        assert target_node({"spec": {"affinity": p["spec"]["affinity"]}}) == p["spec"]["nodeName"]
        assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute"} in p["spec"]["tolerations"]
    events, _ = await c.client.list_all(EVENTS, "default")
    assert sum(1 for e in events if e.get("reason") == "SuccessfulCreate"
               and e["involvedObject"].get("kind") == "DaemonSet") == 4


async def test_nodes_come_and_go(cluster: Cluster) -> None:
    c = cluster
    await c.client.create(DAEMONSETS, daemonset(), "default")
    await wait_for(lambda: settled(c, SIM))

    # a new node gets a pod (bound by the scheduler; no kubelet runs it, so it stays Pending)
    await c.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "extra"},
                                  "status": {"allocatable": ROOM, "capacity": ROOM}})

    async def on_extra() -> list[Obj]:
        return [p for p in await live_pods(c) if target_node(p) == "extra"]

    await wait_for(lambda: _nonempty_bound(on_extra()))
    await wait_for(lambda: _status(c, "desiredNumberScheduled", 5))
    # a node the scheduler cannot use (no room for pods): the pod stays unscheduled ...
    await c.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "full"},
                                  "status": {"allocatable": {"pods": "0"}, "capacity": {"pods": "0"}}})

    async def on_full() -> list[Obj]:
        return [p for p in await live_pods(c) if target_node(p) == "full"]

    await wait_for(lambda: _len(on_full(), 1))
    (pending,) = await on_full()
    assert not pending["spec"].get("nodeName")
    # ... and is deleted by the DaemonSet controller when its node goes away
    await c.client.delete(NODES, "full")
    await wait_for(lambda: _gone(c, pending["metadata"]["name"]))
    # a deleted node's *bound* pod is left to the pod GC (as upstream); the status drops the node
    await c.client.delete(NODES, "extra")
    await wait_for(lambda: _status(c, "desiredNumberScheduled", 4))
    assert len(await on_extra()) == 1
    # an untolerated NoExecute taint evicts the daemon pod
    node = await c.client.get(NODES, "sim-1")
    taints = [*(node["spec"].get("taints") or []), {"key": "maintenance", "effect": "NoExecute"}]
    await c.client.patch(NODES, "sim-1", {"spec": {"taints": taints}})
    await wait_for(lambda: _no_pod_on(c, "sim-1"))
    await wait_for(lambda: _status(c, "desiredNumberScheduled", 3))


async def _nonempty_bound(pods_coro: Any) -> bool:
    pods = await pods_coro
    return bool(pods) and all(p["spec"].get("nodeName") for p in pods)


async def _len(pods_coro: Any, n: int) -> bool:
    return len(await pods_coro) == n


async def _status(c: Cluster, field: str, value: int) -> bool:
    return ((await get_ds(c)).get("status") or {}).get(field) == value


async def _gone(c: Cluster, name: str) -> bool:
    try:
        await c.client.get(PODS, name, "default")
    except NotFound:
        return True
    return False


async def _no_pod_on(c: Cluster, node: str) -> bool:
    return all(p["spec"].get("nodeName") != node for p in await c.pods("app=agent"))


@contextlib.asynccontextmanager
async def availability(c: Cluster) -> AsyncIterator[list[int]]:
    """Record, after every pod event, how many live daemon pods are ready."""
    samples: list[int] = []
    pods: dict[str, Obj] = {}

    async def run() -> None:
        items, rv = await c.client.list_all(PODS, "default", label_selector="app=agent")
        pods.update({p["metadata"]["name"]: p for p in items})
        async for typ, obj in c.client.watch(PODS, "default", resource_version=rv, label_selector="app=agent"):
            if typ == "BOOKMARK":
                continue
            if typ == "DELETED":
                pods.pop(obj["metadata"]["name"], None)
            else:
                pods[obj["metadata"]["name"]] = obj
            samples.append(sum(1 for p in pods.values() if live(p) and is_ready(p)))

    task = asyncio.ensure_future(run())
    try:
        await asyncio.sleep(0.2)
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("max_unavailable", [1, 2])
async def test_rolling_update_within_max_unavailable(cluster: Cluster, max_unavailable: int) -> None:
    c = cluster
    await c.client.create(DAEMONSETS, daemonset(max_unavailable=max_unavailable), "default")
    await wait_for(lambda: settled(c, SIM))
    old = {p["metadata"]["name"] for p in await live_pods(c)}
    started = dt.datetime.now(dt.UTC)
    async with availability(c) as samples:
        await c.client.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "agent", "image": "agent:2"}]}}}}, "default", patch_type="strategic")
        await wait_for(lambda: _rolled(c, old), timeout=30)
    assert samples and min(samples) >= len(SIM) - max_unavailable, samples
    assert min(samples) < len(SIM)          # something was replaced
    revs, _ = await c.client.list_all(CONTROLLERREVISIONS, "default")
    assert sorted(r["revision"] for r in revs) == [1, 2]
    newest = max(revs, key=lambda r: r["revision"])
    hash_ = newest["metadata"]["labels"][DEFAULT_REVISION_LABEL]
    for p in await live_pods(c):
        assert p["metadata"]["labels"][DEFAULT_REVISION_LABEL] == hash_
        assert p["spec"]["containers"][0]["image"] == "agent:2"
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(seconds=30)


async def _rolled(c: Cluster, old: set[str]) -> bool:
    pods = await live_pods(c)
    return (await settled(c, SIM) and not old & {p["metadata"]["name"] for p in pods}
            and all(p["spec"]["containers"][0]["image"] == "agent:2" for p in pods))


async def test_rollback_renumbers_old_revision(cluster: Cluster) -> None:
    c = cluster
    await c.client.create(DAEMONSETS, daemonset(max_unavailable=4), "default")
    await wait_for(lambda: settled(c, SIM))
    for image in ("agent:2", "agent:1"):
        await c.client.patch(DAEMONSETS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "agent", "image": image}]}}}}, "default", patch_type="strategic")
        await wait_for(lambda image=image: _all_image(c, image), timeout=30)
    revs, _ = await c.client.list_all(CONTROLLERREVISIONS, "default")
    by_image = {r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]: r["revision"] for r in revs}
    assert by_image == {"agent:2": 2, "agent:1": 3}


async def _all_image(c: Cluster, image: str) -> bool:
    pods = await live_pods(c)
    return await settled(c, SIM) and all(p["spec"]["containers"][0]["image"] == image for p in pods)
