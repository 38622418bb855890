"""The scheduler against a real in-process API server: binding, spreading, anti-affinity,
unschedulable pods (condition, event, retry on a cluster event without a busy loop),
schedulerName routing and preemption."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import pytest

from kybernetes.client.errors import NotFound, ServiceUnavailable
from kybernetes.client.resources import EVENTS, PODS, PRIORITYCLASSES
from kybernetes.client.rest import ApiClient
from kybernetes.scheduler.scheduler import Scheduler
from tests.builders import anti_affinity
from tests.client.conftest import wait_for

from .conftest import ZONE, add_node, api_pod, pods_by_name, running

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


async def events_for(client: ApiClient, name: str, reason: str, ns: str = "default") -> list[Obj]:
    items = (await client.list(EVENTS, ns)).get("items") or []
    return [e for e in items if e["involvedObject"].get("name") == name and e["reason"] == reason]


async def all_bound(client: ApiClient, names: list[str]) -> bool:
    pods = await pods_by_name(client)
    return all(pods.get(n, {}).get("spec", {}).get("nodeName") for n in names)


def condition(pod: Obj, type_: str = "PodScheduled") -> Obj | None:
    return next((c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == type_), None)


async def test_plain_pods_are_bound_with_event(client: ApiClient) -> None:
    for i in range(2):
        await add_node(client, f"node-{i}", cpu="4")
    async with running(Scheduler(client)) as sched:
        names = [f"p-{i}" for i in range(6)]
        for n in names:
            await client.create(PODS, api_pod(n, requests={"cpu": "500m", "memory": "64Mi"}))
        await wait_for(lambda: all_bound(client, names), timeout=10)
        pods = await pods_by_name(client)
        per_node = collections.Counter(pods[n]["spec"]["nodeName"] for n in names)
        assert per_node == {"node-0": 3, "node-1": 3}  # least-allocated + balanced scoring
        await wait_for(lambda: _has_events(client, "p-0", "Scheduled"), timeout=5)
        ev = (await events_for(client, "p-0", "Scheduled"))[0]
        assert ev["type"] == "Normal"
        assert ev["message"] == f"Successfully assigned default/p-0 to {pods['p-0']['spec']['nodeName']}"
        assert sched.statistics()["bound"] == 6 and sched.attempts == 6


async def test_binding_sets_pod_scheduled_true(client: ApiClient) -> None:
    await add_node(client, "node-0")
    async with running(Scheduler(client)):
        await client.create(PODS, api_pod("p"))
        await wait_for(lambda: all_bound(client, ["p"]), timeout=5)
    c = condition((await pods_by_name(client))["p"])
    assert c is not None and c["status"] == "True"


async def _has_events(client: ApiClient, name: str, reason: str) -> bool:
    return bool(await events_for(client, name, reason))


async def test_topology_spread_30_replicas_over_3_zones(client: ApiClient) -> None:
    for i in range(6):
        await add_node(client, f"node-{i}", zone=f"zone-{i % 3}", cpu="16")
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    async with running(Scheduler(client)):
        names = [f"web-{i}" for i in range(30)]
        await asyncio.gather(*(client.create(PODS, api_pod(n, labels={"app": "web"}, spread=spread,
                                                          requests={"cpu": "100m"}))
                               for n in names))
        await wait_for(lambda: all_bound(client, names), timeout=15)
    pods = await pods_by_name(client)
    zones = collections.Counter(f"zone-{int(pods[n]['spec']['nodeName'].split('-')[1]) % 3}" for n in names)
    assert zones == {"zone-0": 10, "zone-1": 10, "zone-2": 10}


async def test_required_anti_affinity_one_per_node(client: ApiClient) -> None:
    for i in range(3):
        await add_node(client, f"node-{i}")
    async with running(Scheduler(client)):
        names = [f"db-{i}" for i in range(4)]
        for n in names:
            await client.create(PODS, api_pod(n, labels={"app": "db"}, affinity=anti_affinity({"app": "db"})))
        await wait_for(lambda: _bound_count(client, names, 3), timeout=10)
        await wait_for(lambda: _has_events(client, _unbound_name(names), "FailedScheduling"), timeout=5)
    pods = await pods_by_name(client)
    nodes = [pods[n]["spec"].get("nodeName") for n in names]
    assert sorted(filter(None, nodes)) == ["node-0", "node-1", "node-2"]
    loser = pods[next(n for n in names if not pods[n]["spec"].get("nodeName"))]
    assert condition(loser)["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: "
        "0/3 nodes are available: 3 No preemption victims found for incoming pod.")


_last_unbound: list[str] = []


async def _bound_count(client: ApiClient, names: list[str], want: int) -> bool:
    pods = await pods_by_name(client)
    unbound = [n for n in names if not pods[n]["spec"].get("nodeName")]
    _last_unbound[:] = unbound
    return len(names) - len(unbound) == want


def _unbound_name(names: list[str]) -> str:
    return _last_unbound[0] if _last_unbound else names[-1]


async def test_unschedulable_pod_condition_event_and_retry_on_new_node(client: ApiClient) -> None:
    await add_node(client, "small", cpu="1")
    async with running(Scheduler(client)) as sched:
        await client.create(PODS, api_pod("big", requests={"cpu": "2"}))
        msg = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
               "1 No preemption victims found for incoming pod.")

        async def marked() -> bool:
            c = condition((await pods_by_name(client))["big"])
            return c is not None and c["status"] == "False"

        await wait_for(marked, timeout=5)
        c = condition((await pods_by_name(client))["big"])
        assert c is not None and (c["reason"], c["message"]) == ("Unschedulable", msg)
        await wait_for(lambda: _has_events(client, "big", "FailedScheduling"), timeout=5)
        ev = (await events_for(client, "big", "FailedScheduling"))[0]
        assert (ev["type"], ev["message"]) == ("Warning", msg)
        pod = (await pods_by_name(client))["big"]
        assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "big", "namespace": "default",
                                        "uid": pod["metadata"]["uid"],
                                        "resourceVersion": ev["involvedObject"]["resourceVersion"]}
        assert ev["source"]["component"] == "default-scheduler"
        # no busy loop: nothing relevant happens, so the pod is not tried again
        await asyncio.sleep(2.5)
        assert sched.attempts == 1 and sched.status_writes == 1
        assert sched.queue.where((await pods_by_name(client))["big"]) == "unschedulable"
        # a node that fits arrives: the pod is retried at once and bound there
        await add_node(client, "large", cpu="8")
        await wait_for(lambda: all_bound(client, ["big"]), timeout=5)
        assert (await pods_by_name(client))["big"]["spec"]["nodeName"] == "large"
        assert sched.attempts == 2


async def test_pods_for_another_scheduler_are_left_alone(client: ApiClient) -> None:
    await add_node(client, "node-0")
    async with running(Scheduler(client)) as sched:
        await client.create(PODS, api_pod("theirs", scheduler_name="other-scheduler"))
        await client.create(PODS, api_pod("ours"))
        await wait_for(lambda: all_bound(client, ["ours"]), timeout=5)
        await asyncio.sleep(0.3)
        theirs = (await pods_by_name(client))["theirs"]
        assert not theirs["spec"].get("nodeName") and condition(theirs) is None
        assert not await events_for(client, "theirs", "FailedScheduling")
        assert sched.attempts == 1


async def finalize_terminating_pods(client: ApiClient, stop: asyncio.Event) -> None:
    """Stands in for a kubelet: pods marked for deletion are removed for good."""
    while not stop.is_set():
        for p in (await pods_by_name(client)).values():
            if p["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(NotFound):
                    await client.delete(PODS, p["metadata"]["name"], "default", grace_period_seconds=0)
        await asyncio.sleep(0.05)


async def test_preemption_evicts_fewest_low_priority_victims(client: ApiClient) -> None:
    for name, value in (("low", 100), ("high", 1000)):
        await client.create(PRIORITYCLASSES, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                              "metadata": {"name": name}, "value": value})
    await add_node(client, "node-0", cpu="2")
    stop = asyncio.Event()
    kubelet = asyncio.ensure_future(finalize_terminating_pods(client, stop))
    try:
        async with running(Scheduler(client)) as sched:
            lows = [f"low-{i}" for i in range(4)]
            for n in lows:
                await client.create(PODS, api_pod(n, requests={"cpu": "500m"}, priorityClassName="low"))
            await wait_for(lambda: all_bound(client, lows), timeout=5)
            await client.create(PODS, api_pod("vip", requests={"cpu": "1"}, priorityClassName="high"))
            await wait_for(lambda: all_bound(client, ["vip"]), timeout=10)
            pods = await pods_by_name(client)
            assert pods["vip"]["spec"]["nodeName"] == "node-0"
            assert pods["vip"]["status"].get("nominatedNodeName") == "node-0"
            survivors = [n for n in lows if n in pods]
            assert len(survivors) == 2  # the fewest victims: 2 x 500m make room for 1 cpu
            victims = sorted(set(lows) - set(survivors))
            assert sched.victims_deleted == 2 and sched.preemptions == 1
            uid = pods["vip"]["metadata"]["uid"]
            for v in victims:
                await wait_for(lambda v=v: _has_events(client, v, "Preempted"), timeout=5)
                ev = (await events_for(client, v, "Preempted"))[0]
                assert ev["message"] == f"Preempted by pod {uid} on node node-0"
    finally:
        stop.set()
        await kubelet


class FlakyBinder(ApiClient):
    """Our client, but the first POST pods/binding fails with a server error."""

    failed = 0

    async def create(self, res: Any, obj: Obj, namespace: str | None = None, **kw: Any) -> Obj:
        if kw.get("subresource") == "binding" and not self.failed:
            self.failed += 1
            raise ServiceUnavailable(503, "ServiceUnavailable", "injected")
        return await super().create(res, obj, namespace, **kw)


async def test_failed_bind_forgets_the_pod_and_retries(client: ApiClient) -> None:
    await add_node(client, "node-0", cpu="1")
    flaky = FlakyBinder(client.server, timeout=10.0)
    try:
        async with running(Scheduler(flaky)) as sched:
            await client.create(PODS, api_pod("p", requests={"cpu": "800m"}))
            await wait_for(lambda: all_bound(client, ["p"]), timeout=5)
            # the failed attempt's assumption was dropped: the node holds the pod once
            node_info = sched.cache.update_snapshot().get("node-0")
            assert node_info is not None and len(node_info.pods) == 1
            assert (flaky.failed, sched.bind_failures, sched.bound, sched.attempts) == (1, 1, 1, 2)
    finally:
        await flaky.close()
