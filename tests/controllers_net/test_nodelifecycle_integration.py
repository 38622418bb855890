"""Node lifecycle controller against the real API server and the in-process fake kubelet."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import EVENTS, NODES, PODS, REPLICASETS
from kybernetes.controllers import nodelifecycle, replicaset
from kybernetes.kubelet.fake import FakeKubelet, fake_node_configs
from kybernetes.scheduler.main import run_with_client
from tests.controllers.conftest import running

from .conftest import background, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]

UNREACHABLE = "node.kubernetes.io/unreachable"
GRACE = 1.5
OPTIONS = {"node_monitor_period": 0.2, "node_monitor_grace_period": GRACE}


def taint_keys(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or ()}


def ready_status(node: Obj) -> str | None:
    return next((c["status"] for c in node["status"].get("conditions") or () if c["type"] == "Ready"), None)


async def nodes_by_name(client: ApiClient) -> dict[str, Obj]:
    items, _ = await client.list_all(NODES)
    return {n["metadata"]["name"]: n for n in items}


async def wait_nodes_healthy(client: ApiClient, n: int) -> None:
    async def ok() -> bool:
        nodes = await nodes_by_name(client)
        return len(nodes) == n and all(ready_status(x) == "True" and not taint_keys(x) for x in nodes.values())

    await wait_for(ok, timeout=10, what="nodes healthy")


async def test_heartbeat_loss_marks_node_unknown_and_taints_it(client: ApiClient) -> None:
    kubelet = FakeKubelet(client, fake_node_configs(3), lease_interval=0.3)
    async with background(kubelet.run()), running(client, nodelifecycle, **OPTIONS):
        await wait_nodes_healthy(client, 3)
        kubelet.set_heartbeat("sim-2", False)
        stopped = asyncio.get_running_loop().time()

        async def unknown() -> bool:
            node = (await nodes_by_name(client))["sim-2"]
            return ready_status(node) == "Unknown" and {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")} \
                <= taint_keys(node)

        await wait_for(unknown, timeout=GRACE + 3, what="sim-2 unknown + tainted")
        assert asyncio.get_running_loop().time() - stopped >= GRACE - 0.35   # not before the grace period
        nodes = await nodes_by_name(client)
        ready = next(c for c in nodes["sim-2"]["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
        assert {c["type"]: c["status"] for c in nodes["sim-2"]["status"]["conditions"]}["MemoryPressure"] == "Unknown"
        no_exec = next(t for t in nodes["sim-2"]["spec"]["taints"] if t["effect"] == "NoExecute")
        assert no_exec["timeAdded"]
        assert not taint_keys(nodes["sim-1"]) and not taint_keys(nodes["sim-3"])

        async def event(reason: str) -> bool:
            items, _ = await client.list_all(EVENTS, "default")
            return any(e["reason"] == reason and e["involvedObject"]["name"] == "sim-2" for e in items)

        await wait_for(lambda: event("NodeNotReady"), what="NodeNotReady event")

        # heartbeat back: Ready again, taints gone
        kubelet.set_heartbeat("sim-2", True)
        await wait_nodes_healthy(client, 3)


async def test_cordon_taints_unschedulable(client: ApiClient) -> None:
    kubelet = FakeKubelet(client, fake_node_configs(1), lease_interval=0.3)
    async with background(kubelet.run()), running(client, nodelifecycle, **OPTIONS):
        await wait_nodes_healthy(client, 1)
        await client.patch(NODES, "sim-1", {"spec": {"unschedulable": True}})

        async def tainted(expected: set[tuple[str, str]]) -> bool:
            return taint_keys((await nodes_by_name(client))["sim-1"]) == expected

        await wait_for(lambda: tainted({("node.kubernetes.io/unschedulable", "NoSchedule")}), what="cordon taint")
        await client.patch(NODES, "sim-1", {"spec": {"unschedulable": None}})
        await wait_for(lambda: tainted(set()), what="uncordon")


async def test_single_node_cluster_loss_is_not_evicted(client: ApiClient) -> None:
    """Every zone fully disrupted: no NoExecute taint (upstream: the control plane is suspect)."""
    kubelet = FakeKubelet(client, fake_node_configs(1), lease_interval=0.3)
    async with background(kubelet.run()), running(client, nodelifecycle, **OPTIONS):
        await wait_nodes_healthy(client, 1)
        kubelet.set_heartbeat("sim-1", False)

        async def unknown() -> bool:
            node = (await nodes_by_name(client))["sim-1"]
            return ready_status(node) == "Unknown" and (UNREACHABLE, "NoSchedule") in taint_keys(node)

        await wait_for(unknown, timeout=GRACE + 3, what="sim-1 unknown")
        await asyncio.sleep(0.5)
        assert taint_keys((await nodes_by_name(client))["sim-1"]) == {(UNREACHABLE, "NoSchedule")}


def replicaset_body(replicas: int, toleration_seconds: int) -> Obj:
    tolerations = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}
                   for k in ("node.kubernetes.io/not-ready", UNREACHABLE)]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"tolerations": tolerations,
                                           "containers": [{"name": "c", "image": "nginx"}]}}}}


async def running_pods(client: ApiClient) -> list[Obj]:
    items, _ = await client.list_all(PODS, "default", label_selector="app=web")
    return [p for p in items if not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") == "Running" and p["spec"].get("nodeName")]


async def test_dead_node_pods_are_replaced_on_other_nodes_after_toleration(client: ApiClient) -> None:
    """Acceptance: stopping a simulated node's heartbeat marks it NotReady/Unknown and its pods are
    replaced on other nodes after the toleration."""
    kubelet = FakeKubelet(client, fake_node_configs(3), lease_interval=0.3)
    async with background(kubelet.run(), run_with_client(client, leader_elect=False)), \
            running(client, nodelifecycle, replicaset, **OPTIONS) as ctls:
        await wait_nodes_healthy(client, 3)
        await client.create(REPLICASETS, replicaset_body(6, toleration_seconds=2), "default")

        async def all_running() -> bool:
            return len(await running_pods(client)) == 6

        await wait_for(all_running, timeout=15, what="6 pods running")
        pods = await running_pods(client)
        victim_node = pods[0]["spec"]["nodeName"]
        victims = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim_node}
        kubelet.set_heartbeat(victim_node, False)
        loop = asyncio.get_running_loop()
        stopped = loop.time()

        async def tainted() -> bool:
            return (UNREACHABLE, "NoExecute") in taint_keys((await nodes_by_name(client))[victim_node])

        await wait_for(tainted, timeout=GRACE + 3, what="victim node tainted")
        tainted_at = loop.time()
        # tolerated for 2 s: the pods are still there shortly after the taint
        await asyncio.sleep(0.5)
        names = {p["metadata"]["name"] for p in await running_pods(client)}
        assert victims <= names

        async def evicting() -> bool:
            items, _ = await client.list_all(PODS, "default", label_selector="app=web")
            return any(p["metadata"].get("deletionTimestamp") for p in items if p["metadata"]["name"] in victims)

        await wait_for(evicting, interval=0.02, what="victims evicted")
        assert loop.time() - tainted_at >= 1.6   # tolerationSeconds 2 (minus polling slack)

        async def replaced() -> bool:
            pods = await running_pods(client)
            return len(pods) == 6 and all(p["spec"]["nodeName"] != victim_node for p in pods) \
                and not victims & {p["metadata"]["name"] for p in pods}

        await wait_for(replaced, timeout=15, what="pods replaced on other nodes")
        lifecycle = ctls[0]
        assert lifecycle.evictions >= len(victims)
        assert loop.time() - stopped >= GRACE + 1.6

        async def eviction_event() -> bool:
            items, _ = await client.list_all(EVENTS, "default")
            return any(e["reason"] == "TaintManagerEviction"
                       and e["message"] == f"Marking for deletion Pod default/{e['involvedObject']['name']}"
                       for e in items)

        await wait_for(eviction_event, what="TaintManagerEviction event")

        kubelet.set_heartbeat(victim_node, True)
        await wait_nodes_healthy(client, 3)
