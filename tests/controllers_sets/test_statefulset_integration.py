"""StatefulSet controller + scheduler + fake kubelet: ordering, PVCs, Parallel, partitioned updates."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.resources import (
    CONTROLLERREVISIONS,
    EVENTS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    SERVICES,
    STATEFULSETS,
)
from kybernetes.controllers.history import DEFAULT_REVISION_LABEL

from .conftest import Cluster, is_ready, live, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def statefulset(replicas: int = 3, *, policy: str = "OrderedReady", image: str = "web:1",
                node_selector: dict[str, str] | None = None) -> Obj:
    pod_spec: Obj = {"containers": [{"name": "nginx", "image": image,
                                     "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": "nginx", "podManagementPolicy": policy,
                     "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": pod_spec},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}


async def headless_service(c: Cluster) -> None:
    await c.client.create(SERVICES, {"apiVersion": "v1", "kind": "Service",
                                     "metadata": {"name": "nginx", "namespace": "default"},
                                     "spec": {"clusterIP": "None", "selector": {"app": "nginx"},
                                              "ports": [{"port": 80, "name": "web"}]}}, "default")


async def get_sts(c: Cluster) -> Obj:
    return await c.client.get(STATEFULSETS, "web", "default")


async def ready_names(c: Cluster) -> list[str]:
    return sorted(p["metadata"]["name"] for p in await c.pods("app=nginx") if live(p) and is_ready(p))


async def all_names(c: Cluster) -> list[str]:
    return sorted(p["metadata"]["name"] for p in await c.pods("app=nginx"))


async def settled(c: Cluster, n: int) -> bool:
    sts = await get_sts(c)
    st = sts.get("status") or {}
    return (await all_names(c) == [f"web-{i}" for i in range(n)] and len(await ready_names(c)) == n
            and st.get("readyReplicas") == n and st.get("replicas") == n
            and st.get("observedGeneration") == sts["metadata"]["generation"])


async def claims(c: Cluster) -> dict[str, str]:
    items, _ = await c.client.list_all(PERSISTENTVOLUMECLAIMS, "default")
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in items}


@contextlib.asynccontextmanager
async def pod_log(c: Cluster) -> AsyncIterator[list[tuple[str, str, bool]]]:
    """(event type, pod name, ready) for every pod watch event; terminating pods report 'DELETING'."""
    log: list[tuple[str, str, bool]] = []
    deleting: set[str] = set()

    async def run() -> None:
        _, rv = await c.client.list_all(PODS, "default", label_selector="app=nginx")
        async for typ, obj in c.client.watch(PODS, "default", resource_version=rv, label_selector="app=nginx"):
            if typ == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            if typ != "DELETED" and obj["metadata"].get("deletionTimestamp") and obj["metadata"]["uid"] not in deleting:
                deleting.add(obj["metadata"]["uid"])
                typ = "DELETING"
            log.append((typ, name, is_ready(obj) and live(obj)))

    task = asyncio.ensure_future(run())
    try:
        await asyncio.sleep(0.2)
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def first(log: list[tuple[str, str, bool]], typ: str, name: str, ready: bool | None = None) -> int:
    return next(i for i, (t, n, r) in enumerate(log) if t == typ and n == name and (ready is None or r == ready))


async def test_ordered_creation_pvcs_and_scaling(cluster: Cluster) -> None:
    c = cluster
    await headless_service(c)
    async with pod_log(c) as log:
        await c.client.create(STATEFULSETS, statefulset(), "default")
        await wait_for(lambda: settled(c, 3))
    # web-1 is created only after web-0 is Ready, web-2 only after web-1 is Ready
    assert first(log, "ADDED", "web-0") < first(log, "MODIFIED", "web-0", True) < first(log, "ADDED", "web-1")
    assert first(log, "MODIFIED", "web-1", True) < first(log, "ADDED", "web-2")
    pods = {p["metadata"]["name"]: p for p in await c.pods("app=nginx")}
    for i in range(3):
        p = pods[f"web-{i}"]
        assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == (f"web-{i}", "nginx")
        assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
        assert {"name": "www", "persistentVolumeClaim": {"claimName": f"www-web-{i}"}} in p["spec"]["volumes"]
    before = await claims(c)
    assert sorted(before) == ["www-web-0", "www-web-1", "www-web-2"]
    sts = await get_sts(c)
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert pods["web-0"]["metadata"]["labels"][DEFAULT_REVISION_LABEL] == sts["status"]["updateRevision"]
    events, _ = await c.client.list_all(EVENTS, "default")
    messages = {e["message"] for e in events if e.get("reason") == "SuccessfulCreate"}
    assert "create Pod web-0 in StatefulSet web successful" in messages
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages

    # scale down to 1: web-2 goes first, then web-1; the claims stay
    async with pod_log(c) as log:
        await c.client.patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, "default")
        await wait_for(lambda: settled(c, 1))
    assert first(log, "DELETED", "web-2") < first(log, "DELETING", "web-1")
    assert await claims(c) == before

    # scale back up: the same claims are reused
    await c.client.patch(STATEFULSETS, "web", {"spec": {"replicas": 3}}, "default")
    await wait_for(lambda: settled(c, 3))
    assert await claims(c) == before
    web2 = await c.client.get(PODS, "web-2", "default")
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}} in web2["spec"]["volumes"]


async def test_parallel_creates_all_at_once(cluster: Cluster) -> None:
    c = cluster
    # no node matches: the pods stay Pending, yet Parallel creates all of them
    await c.client.create(STATEFULSETS, statefulset(policy="Parallel", node_selector={"nowhere": "true"}),
                          "default")
    await wait_for(lambda: _names_are(c, ["web-0", "web-1", "web-2"]))
    assert await ready_names(c) == []
    assert sorted(await claims(c)) == ["www-web-0", "www-web-1", "www-web-2"]
    await wait_for(lambda: _status_is(c, "replicas", 3))


async def test_ordered_ready_waits_for_pending_pod(cluster: Cluster) -> None:
    c = cluster
    await c.client.create(STATEFULSETS, statefulset(node_selector={"nowhere": "true"}), "default")
    await wait_for(lambda: _names_are(c, ["web-0"]))
    await asyncio.sleep(0.5)
    assert await all_names(c) == ["web-0"]


async def _names_are(c: Cluster, names: list[str]) -> bool:
    return await all_names(c) == names


async def _status_is(c: Cluster, field: str, value: Any) -> bool:
    return ((await get_sts(c)).get("status") or {}).get(field) == value


async def test_rolling_update_with_partition(cluster: Cluster) -> None:
    c = cluster
    await c.client.create(STATEFULSETS, statefulset(), "default")
    await wait_for(lambda: settled(c, 3))
    old_rev = (await get_sts(c))["status"]["currentRevision"]
    async with pod_log(c) as log:
        await c.client.patch(STATEFULSETS, "web", {"spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            "template": {"spec": {"containers": [{"name": "nginx", "image": "web:2"}]}}}},
            "default", patch_type="strategic")
        await wait_for(lambda: _status_is(c, "updatedReplicas", 2))
        await wait_for(lambda: settled(c, 3))
    sts = await get_sts(c)
    new_rev = sts["status"]["updateRevision"]
    assert new_rev != old_rev and sts["status"]["currentRevision"] == old_rev
    pods = {p["metadata"]["name"]: p for p in await c.pods("app=nginx")}
    assert pods["web-0"]["spec"]["containers"][0]["image"] == "web:1"
    assert pods["web-0"]["metadata"]["labels"][DEFAULT_REVISION_LABEL] == old_rev
    for name in ("web-1", "web-2"):
        assert pods[name]["spec"]["containers"][0]["image"] == "web:2"
        assert pods[name]["metadata"]["labels"][DEFAULT_REVISION_LABEL] == new_rev
    # reverse ordinal order, one at a time: web-1 only after the new web-2 is Ready
    assert first(log, "DELETING", "web-2") < first(log, "MODIFIED", "web-2", True) < first(log, "DELETING", "web-1")
    assert all(n != "web-0" for t, n, _ in log if t in ("DELETING", "DELETED"))
    revs, _ = await c.client.list_all(CONTROLLERREVISIONS, "default")
    assert {r["metadata"]["name"]: r["revision"] for r in revs} == {old_rev: 1, new_rev: 2}

    # partition 0 finishes the rollout
    await c.client.patch(STATEFULSETS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
                         "default", patch_type="strategic")
    await wait_for(lambda: _status_is(c, "currentRevision", new_rev))
    await wait_for(lambda: settled(c, 3))
    web0 = await c.client.get(PODS, "web-0", "default")
    assert web0["spec"]["containers"][0]["image"] == "web:2"
    assert (await get_sts(c))["status"]["currentReplicas"] == 3


async def test_claim_retention_delete_policy(cluster: Cluster) -> None:
    """whenDeleted=Delete: claims owned by the set; whenScaled=Delete: a condemned pod owns its claims
    (the garbage collector then removes them with their owner)."""
    c = cluster
    spec = statefulset(2)
    spec["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    await c.client.create(STATEFULSETS, spec, "default")
    await wait_for(lambda: settled(c, 2))
    sts_uid = (await get_sts(c))["metadata"]["uid"]
    for name in ("www-web-0", "www-web-1"):
        claim = await c.client.get(PERSISTENTVOLUMECLAIMS, name, "default")
        assert [r["uid"] for r in claim["metadata"]["ownerReferences"]] == [sts_uid]
    web1_uid = (await c.client.get(PODS, "web-1", "default"))["metadata"]["uid"]
    await c.client.patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, "default")
    await wait_for(lambda: settled(c, 1))
    claim = await c.client.get(PERSISTENTVOLUMECLAIMS, "www-web-1", "default")
    assert [r["uid"] for r in claim["metadata"]["ownerReferences"]] == [sts_uid, web1_uid]
    claim0 = await c.client.get(PERSISTENTVOLUMECLAIMS, "www-web-0", "default")
    assert [r["uid"] for r in claim0["metadata"]["ownerReferences"]] == [sts_uid]


async def test_rollback_reuses_revision(cluster: Cluster) -> None:
    c = cluster
    await c.client.create(STATEFULSETS, statefulset(2), "default")
    await wait_for(lambda: settled(c, 2))
    first_rev = (await get_sts(c))["status"]["updateRevision"]
    for image in ("web:2", "web:1"):
        await c.client.patch(STATEFULSETS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": image}]}}}}, "default", patch_type="strategic")
        await wait_for(lambda image=image: _rolled_to(c, image), timeout=30)
    sts = await get_sts(c)
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == first_rev
    revs, _ = await c.client.list_all(CONTROLLERREVISIONS, "default")
    assert {r["metadata"]["name"]: r["revision"] for r in revs}[first_rev] == 3
    assert len(revs) == 2


async def _rolled_to(c: Cluster, image: str) -> bool:
    sts = await get_sts(c)
    st = sts.get("status") or {}
    pods = await c.pods("app=nginx")
    return (await settled(c, 2) and st.get("currentRevision") == st.get("updateRevision")
            and all(p["spec"]["containers"][0]["image"] == image for p in pods))
