"""The fake kubelet against the real in-process API server (real sockets, real watches)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from kybernetes.api import meta as m
from kybernetes.client.errors import NotFound
from kybernetes.client.resources import LEASES, NODES, PODS
from kybernetes.client.rest import ApiClient
from kybernetes.kubelet.fake import FAKE_HEARTBEAT_ANNOTATION, FakeKubelet, fake_node_configs
from kybernetes.kubelet.lease import NODE_LEASE_NAMESPACE
from kybernetes.kubelet.status import FAKE_DURATION_ANNOTATION, FAKE_EXIT_CODE_ANNOTATION
from tests.client.conftest import wait_for

from .conftest import make_kubelet, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def pod(name: str, node: str, *, restart: str = "Always", annotations: dict[str, str] | None = None,
        grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "restartPolicy": restart,
                            "containers": [{"name": "app", "image": "nginx:1.27"},
                                           {"name": "side", "image": "busybox"}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    md: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


async def phase_of(client: ApiClient, name: str) -> str:
    return str((await client.get(PODS, name, "default")).get("status", {}).get("phase"))


def _phase_is(client: ApiClient, name: str, phase: str) -> Any:
    async def check() -> bool:
        return await phase_of(client, name) == phase
    return check


async def test_nodes_register_with_zones_conditions_and_leases(client: ApiClient) -> None:
    async with running(make_kubelet(client, 3)) as kubelet:
        nodes = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
        assert sorted(nodes) == ["sim-1", "sim-2", "sim-3"]
        zones = [nodes[f"sim-{i}"]["metadata"]["labels"]["topology.kubernetes.io/zone"] for i in (1, 2, 3)]
        assert zones == ["zone-a", "zone-b", "zone-c"]
        n1 = nodes["sim-1"]
        assert n1["metadata"]["labels"]["kubernetes.io/hostname"] == "sim-1"
        st = n1["status"]
        assert st["capacity"]["pods"] == "110" and st["allocatable"]["cpu"] == "32"
        ready = m.find_condition(n1, "Ready")
        assert ready and ready["status"] == "True" and ready["reason"] == "KubeletReady"
        assert {c["type"] for c in st["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
        assert st["nodeInfo"]["kubeletVersion"] == "v1.32.4-kyb"
        assert st["nodeInfo"]["containerRuntimeVersion"] == "fake://0.1"
        assert [a["type"] for a in st["addresses"]] == ["InternalIP", "Hostname"]

        async def leases_exist() -> bool:
            items = (await client.list(LEASES, NODE_LEASE_NAMESPACE))["items"]
            return {i["metadata"]["name"] for i in items} >= {"sim-1", "sim-2", "sim-3"}

        await wait_for(leases_exist, timeout=5)
        lease = await client.get(LEASES, "sim-2", NODE_LEASE_NAMESPACE)
        assert lease["spec"]["holderIdentity"] == "sim-2"
        assert lease["spec"]["leaseDurationSeconds"] == 40
        assert lease["metadata"]["ownerReferences"][0]["uid"] == nodes["sim-2"]["metadata"]["uid"]
        first = lease["spec"]["renewTime"]

        async def renewed() -> bool:
            return (await client.get(LEASES, "sim-2", NODE_LEASE_NAMESPACE))["spec"]["renewTime"] != first

        await wait_for(renewed, timeout=5)
        assert kubelet.statistics()["lease_renewals"] >= 4


async def test_pod_goes_running_and_ready_with_status_fields(client: ApiClient) -> None:
    async with running(make_kubelet(client, 2)) as kubelet:
        await client.create(PODS, pod("web", "sim-2"))

        async def is_running() -> bool:
            return await phase_of(client, "web") == "Running"

        await wait_for(is_running, timeout=5)
        p = await client.get(PODS, "web", "default")
        st = p["status"]
        assert st["hostIP"] == "10.96.0.3"  # sim-2's simulated address
        assert st["podIP"].startswith("10.128.2.") and st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["qosClass"] == "BestEffort"
        assert m.parse_time(st["startTime"]) is not None
        assert {c["type"]: c["status"] for c in st["conditions"]} == {
            "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
            "ContainersReady": "True", "PodScheduled": "True"}
        cs = st["containerStatuses"]
        assert [c["name"] for c in cs] == ["app", "side"]
        assert all(c["ready"] and c["started"] and "running" in c["state"] for c in cs)
        assert cs[0]["containerID"].startswith("fake://") and "@sha256:" in cs[0]["imageID"]
        writes = kubelet.status_writes
        assert writes == 1
        # a steady pod is not rewritten (neither the echo of our own write nor a label change)
        patched = await client.patch(PODS, "web", {"metadata": {"labels": {"touched": "yes"}}}, "default")
        rv = int(patched["metadata"]["resourceVersion"])
        await wait_for(lambda: int(kubelet.pod_informer.last_resource_version) >= rv, timeout=5)
        await wait_for(lambda: kubelet.pod_worker.queue.statistics()["processing"] == 0, timeout=5)
        assert kubelet.status_writes == writes


async def test_job_pods_succeed_or_fail_with_exit_code(client: ApiClient) -> None:
    async with running(make_kubelet(client, 1)):
        started = dt.datetime.now(dt.UTC)
        await client.create(PODS, pod("ok", "sim-1", restart="Never"))  # default run time: 1 s
        await client.create(PODS, pod("bad", "sim-1", restart="Never",
                                      annotations={FAKE_EXIT_CODE_ANNOTATION: "3",
                                                   FAKE_DURATION_ANNOTATION: "0.5"}))

        async def finished() -> bool:
            return (await phase_of(client, "ok"), await phase_of(client, "bad")) == ("Succeeded", "Failed")

        await wait_for(_phase_is(client, "ok", "Running"), timeout=3)  # runs first, then finishes
        await wait_for(finished, timeout=6)
        assert 1.0 <= (dt.datetime.now(dt.UTC) - started).total_seconds() < 4
        ok = (await client.get(PODS, "ok", "default"))["status"]
        term = ok["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0 and term["reason"] == "Completed"
        assert m.find_condition({"status": ok}, "Ready")["reason"] == "PodCompleted"  # type: ignore[index]
        bad = (await client.get(PODS, "bad", "default"))["status"]
        term = bad["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 3 and term["reason"] == "Error"
        assert m.find_condition({"status": bad}, "Ready")["reason"] == "PodFailed"  # type: ignore[index]


async def test_graceful_delete_is_finished_quickly(client: ApiClient) -> None:
    async with running(make_kubelet(client, 1)) as kubelet:
        await client.create(PODS, pod("slow", "sim-1", grace=30))

        async def is_running() -> bool:
            return await phase_of(client, "slow") == "Running"

        await wait_for(is_running, timeout=5)
        await client.delete(PODS, "slow", "default")   # grace 30 s: the server only marks it
        assert (await client.get(PODS, "slow", "default"))["metadata"]["deletionTimestamp"]

        async def gone() -> bool:
            try:
                await client.get(PODS, "slow", "default")
            except NotFound:
                return True
            return False

        await wait_for(gone, timeout=3)
        assert kubelet.deletes == 1
        await wait_for(lambda: not kubelet.pods, timeout=3)  # the DELETED event dropped the record
        assert len(kubelet.nodes["sim-1"].pool) == 0


async def test_stopped_heartbeat_stops_lease_renewals_of_that_node_only(client: ApiClient) -> None:
    async with running(make_kubelet(client, 2, lease_interval=0.2)):
        async def renew_time(name: str) -> str:
            return str((await client.get(LEASES, name, NODE_LEASE_NAMESPACE))["spec"]["renewTime"])

        async def both_leases() -> bool:
            try:
                await renew_time("sim-1")
                await renew_time("sim-2")
            except NotFound:
                return False
            return True

        await wait_for(both_leases, timeout=5)
        await client.patch(NODES, "sim-1", {"metadata": {"annotations": {FAKE_HEARTBEAT_ANNOTATION: "stop"}}})
        await asyncio.sleep(0.5)  # let an in-flight renewal land
        frozen, other = await renew_time("sim-1"), await renew_time("sim-2")
        await asyncio.sleep(0.8)
        assert await renew_time("sim-1") == frozen
        assert await renew_time("sim-2") != other
        # resume
        await client.patch(NODES, "sim-1", {"metadata": {"annotations": {FAKE_HEARTBEAT_ANNOTATION: None}}})

        async def resumed() -> bool:
            return await renew_time("sim-1") != frozen

        await wait_for(resumed, timeout=3)


async def test_heartbeat_switch_and_status_repost_after_unknown(client: ApiClient) -> None:
    kubelet = make_kubelet(client, 1, lease_interval=0.2)
    async with running(kubelet):
        kubelet.set_heartbeat("sim-1", False)
        # the node lifecycle controller would do this when the lease expires
        node = await client.get(NODES, "sim-1")
        conds = [{**c, "status": "Unknown", "reason": "NodeStatusUnknown"} if c["type"] == "Ready" else c
                 for c in node["status"]["conditions"]]
        await client.patch_status(NODES, "sim-1", {"status": {"conditions": conds}})
        await asyncio.sleep(0.3)
        ready = m.find_condition(await client.get(NODES, "sim-1"), "Ready")
        assert ready and ready["status"] == "Unknown"
        kubelet.set_heartbeat("sim-1", True)

        async def ready_again() -> bool:
            c = m.find_condition(await client.get(NODES, "sim-1"), "Ready")
            return bool(c and c["status"] == "True")

        await wait_for(ready_again, timeout=3)


async def test_restart_readopts_running_pods_without_rewriting(client: ApiClient) -> None:
    async with running(make_kubelet(client, 1)):
        await client.create(PODS, pod("keep", "sim-1"))

        async def is_running() -> bool:
            return await phase_of(client, "keep") == "Running"

        await wait_for(is_running, timeout=5)
    before = await client.get(PODS, "keep", "default")
    second = make_kubelet(client, 1)
    async with running(second):
        await wait_for(lambda: second.pod_worker.syncs >= 1, timeout=5)
        assert second.status_writes == 0
        assert second.pods["default/keep"].pod_ip == before["status"]["podIP"]
    after = await client.get(PODS, "keep", "default")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    nodes = (await client.list(NODES))["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["sim-1"]  # re-registered in place


async def test_one_informer_for_all_nodes_and_custom_capacity(client: ApiClient) -> None:
    kubelet = FakeKubelet(client, fake_node_configs(1, node_name="big", capacity={"cpu": "4", "pods": "20"}))
    async with running(kubelet):
        assert len(kubelet.factory.informers) == 2  # pods (spec.nodeName!=) and nodes, whatever the node count
        node = await client.get(NODES, "big")
        assert node["status"]["allocatable"]["cpu"] == "4" and node["status"]["capacity"]["pods"] == "20"
        assert node["status"]["capacity"]["memory"] == "256Gi"


async def test_node_status_is_reposted_periodically_even_without_change(client: ApiClient) -> None:
    kubelet = make_kubelet(client, 2, status_report_interval=1.0)
    async with running(kubelet):
        first = m.find_condition(await client.get(NODES, "sim-1"), "Ready")
        assert first is not None
        await wait_for(lambda: kubelet.node_status_writes >= 2, timeout=4)

        async def heartbeat_moved() -> bool:
            c = m.find_condition(await client.get(NODES, "sim-1"), "Ready")
            return bool(c and c["lastHeartbeatTime"] != first["lastHeartbeatTime"])

        await wait_for(heartbeat_moved, timeout=4)
        c = m.find_condition(await client.get(NODES, "sim-1"), "Ready")
        assert c and c["lastTransitionTime"] == first["lastTransitionTime"]


async def test_registration_retries_until_the_server_answers(client: ApiClient) -> None:
    from kybernetes.client.rest import RetryPolicy
    from tests.conftest import free_port

    dead = ApiClient(f"http://127.0.0.1:{free_port()}", timeout=1.0, retry=RetryPolicy(attempts=1))
    kubelet = FakeKubelet(dead, fake_node_configs(1))
    task = asyncio.create_task(kubelet.register_nodes())
    try:
        await asyncio.sleep(0.8)  # a couple of refused attempts, then point it at the real server
        assert not task.done()
        kubelet.client = client
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
        await dead.close()
    assert (await client.get(NODES, "sim-1"))["metadata"]["uid"] == kubelet.nodes["sim-1"].uid
