"""Deployment controller (with the ReplicaSet controller) against the real in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.deployment.util import POD_TEMPLATE_HASH, REVISION

from .conftest import controllers, fake_kubelet, is_active, is_ready, list_pods, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def deployment(name: str = "flask", replicas: int = 3, image: str = "flask:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}},
                     **spec}}


async def get_d(client: ApiClient, name: str = "flask") -> Obj:
    return await client.get(DEPLOYMENTS, name, "default")


async def rollout_done(client: ApiClient, name: str = "flask") -> bool:
    """kubectl rollout status's test."""
    d = await get_d(client, name)
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (d["metadata"]["generation"] <= st.get("observedGeneration", 0)
            and st.get("updatedReplicas", 0) >= want and st.get("replicas", 0) <= st.get("updatedReplicas", 0)
            and st.get("availableReplicas", 0) >= st.get("updatedReplicas", 0))


async def owned_rss(client: ApiClient, d: Obj) -> list[Obj]:
    items, _ = await client.list_all(REPLICASETS, "default", label_selector=f"app={d['metadata']['name']}")
    return [rs for rs in items
            if any(r.get("uid") == d["metadata"]["uid"] for r in rs["metadata"].get("ownerReferences") or ())]


async def set_image(client: ApiClient, image: str, name: str = "flask") -> None:
    """What ``kubectl set image`` sends."""
    await client.patch(DEPLOYMENTS, name, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}], "containers": [{"image": image, "name": "app"}]}}}},
        "default", patch_type="strategic", field_manager="kubectl-set")


def condition(d: Obj, ctype: str) -> Obj:
    return next((c for c in (d.get("status") or {}).get("conditions") or () if c["type"] == ctype), {})


@contextlib.asynccontextmanager
async def pod_recorder(client: ApiClient, selector: str) -> AsyncIterator[list[tuple[int, int, frozenset[str]]]]:
    """Record (active pods, ready active pods, images) after every pod watch event."""
    samples: list[tuple[int, int, frozenset[str]]] = []
    pods: dict[str, Obj] = {}

    async def run() -> None:
        items, rv = await client.list_all(PODS, "default", label_selector=selector)
        pods.update({p["metadata"]["name"]: p for p in items if is_active(p)})
        async for typ, obj in client.watch(PODS, "default", resource_version=rv, label_selector=selector):
            if typ == "BOOKMARK":
                continue
            if typ == "DELETED" or not is_active(obj):
                pods.pop(obj["metadata"]["name"], None)
            else:
                pods[obj["metadata"]["name"]] = obj
            samples.append((len(pods), sum(1 for p in pods.values() if is_ready(p)),
                            frozenset(p["spec"]["containers"][0]["image"] for p in pods.values())))

    task = asyncio.ensure_future(run())
    await asyncio.sleep(0.1)
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_create_makes_replicaset_and_pods(client: ApiClient) -> None:
    async with controllers(client), fake_kubelet(client):
        d = await client.create(DEPLOYMENTS, deployment(replicas=3))
        await wait_for(lambda: rollout_done(client))
        rss = await owned_rss(client, d)
        assert len(rss) == 1
        rs = rss[0]
        h = rs["metadata"]["labels"][POD_TEMPLATE_HASH]
        assert rs["metadata"]["name"] == f"flask-{h}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "flask", POD_TEMPLATE_HASH: h}
        ann = rs["metadata"]["annotations"]
        assert ann[REVISION] == "1"
        assert ann["deployment.kubernetes.io/desired-replicas"] == "3"
        assert ann["deployment.kubernetes.io/max-replicas"] == "4"   # 3 + 25% rounded up
        pods = [p for p in await list_pods(client, selector="app=flask") if is_active(p)]
        assert len(pods) == 3 and all(p["metadata"]["labels"][POD_TEMPLATE_HASH] == h for p in pods)
        d = await get_d(client)
        assert d["metadata"]["annotations"][REVISION] == "1"
        assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
        assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
        st = d["status"]
        assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
        assert st["observedGeneration"] == d["metadata"]["generation"]

        # scale to 10 and back (kubectl scale patches the scale subresource)
        await client.patch(DEPLOYMENTS, "flask", {"spec": {"replicas": 10}}, "default", subresource="scale")
        await wait_for(lambda: rollout_done(client))
        assert (await get_d(client))["status"]["availableReplicas"] == 10
        await client.patch(DEPLOYMENTS, "flask", {"spec": {"replicas": 3}}, "default", subresource="scale")

        async def three() -> bool:
            return (await rollout_done(client)) and (await get_d(client))["status"]["replicas"] == 3
        await wait_for(three)
        assert len(await owned_rss(client, d)) == 1


async def test_rolling_update_respects_surge_and_unavailable_bounds(client: ApiClient) -> None:
    replicas = 6
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "50%"}}
    async with controllers(client), fake_kubelet(client, delay=0.1):
        d = await client.create(DEPLOYMENTS, deployment(replicas=replicas, strategy=strategy))
        await wait_for(lambda: rollout_done(client))
        async with pod_recorder(client, "app=flask") as samples:
            await set_image(client, "flask:2")

            async def rolled() -> bool:
                return (await rollout_done(client)) and \
                    (await get_d(client))["status"].get("observedGeneration") == 2
            await wait_for(rolled, timeout=20)
            await asyncio.sleep(0.2)
        assert samples, "no pod events observed"
        for active, ready, _ in samples:
            assert active <= replicas + 2, samples
            assert ready >= replicas - 3, samples    # maxUnavailable 50% of 6
        assert any(len(images) == 2 for _, _, images in samples)   # old and new overlapped
        assert samples[-1][2] == frozenset({"flask:2"})
        rss = await owned_rss(client, d)
        revs = sorted((rs["metadata"]["annotations"][REVISION], rs["spec"]["replicas"]) for rs in rss)
        assert revs == [("1", 0), ("2", replicas)]
        assert (await get_d(client))["metadata"]["annotations"][REVISION] == "2"


async def test_rollback_with_kubectl_json_patch(client: ApiClient) -> None:
    async with controllers(client), fake_kubelet(client):
        d = await client.create(DEPLOYMENTS, deployment(replicas=2, image="flask:1"))
        await wait_for(lambda: rollout_done(client))
        await client.patch(DEPLOYMENTS, "flask", {"metadata": {"annotations": {
            "kubernetes.io/change-cause": "upgrade to 2"}}}, "default")
        await set_image(client, "flask:2")

        async def at_rev(n: str) -> bool:
            dd = await get_d(client)
            return (await rollout_done(client)) and dd["metadata"].get("annotations", {}).get(REVISION) == n
        await wait_for(lambda: at_rev("2"))
        rss = await owned_rss(client, d)
        by_rev = {rs["metadata"]["annotations"][REVISION]: rs for rs in rss}
        assert by_rev["2"]["metadata"]["annotations"]["kubernetes.io/change-cause"] == "upgrade to 2"
        # kubectl rollout undo: the previous revision's template minus the hash label
        template = by_rev["1"]["spec"]["template"]
        template["metadata"]["labels"].pop(POD_TEMPLATE_HASH)
        cur = await get_d(client)
        anns = {k: v for k, v in cur["metadata"]["annotations"].items() if k != "kubernetes.io/change-cause"}
        await client.patch(DEPLOYMENTS, "flask", [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": anns}], "default", patch_type="json")
        await wait_for(lambda: at_rev("3"))
        rss = await owned_rss(client, d)
        assert len(rss) == 2   # the old RS was reused, not recreated
        live = [rs for rs in rss if rs["spec"]["replicas"] > 0]
        assert len(live) == 1 and live[0]["metadata"]["uid"] == by_rev["1"]["metadata"]["uid"]
        assert live[0]["metadata"]["annotations"][REVISION] == "3"
        assert live[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        pods = [p for p in await list_pods(client, selector="app=flask") if is_active(p)]
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"flask:1"}


async def test_pause_stops_progress_and_resume_continues(client: ApiClient) -> None:
    async with controllers(client), fake_kubelet(client):
        d = await client.create(DEPLOYMENTS, deployment(replicas=2))
        await wait_for(lambda: rollout_done(client))
        await client.patch(DEPLOYMENTS, "flask", {"spec": {"paused": True}}, "default", patch_type="strategic")

        async def paused_cond() -> bool:
            return condition(await get_d(client), "Progressing").get("reason") == "DeploymentPaused"
        await wait_for(paused_cond)
        await set_image(client, "flask:2")
        await asyncio.sleep(0.5)
        assert len(await owned_rss(client, d)) == 1       # no new ReplicaSet while paused
        assert not await rollout_done(client)
        cond = condition(await get_d(client), "Progressing")
        assert (cond["status"], cond["message"]) == ("Unknown", "Deployment is paused")
        await client.patch(DEPLOYMENTS, "flask", {"spec": {"paused": None}}, "default", patch_type="strategic")
        await wait_for(lambda: rollout_done(client))
        assert len(await owned_rss(client, d)) == 2


async def test_recreate_never_overlaps_old_and_new(client: ApiClient) -> None:
    async with controllers(client), fake_kubelet(client, delay=0.05):
        await client.create(DEPLOYMENTS, deployment(replicas=3, strategy={"type": "Recreate"}))
        await wait_for(lambda: rollout_done(client))
        async with pod_recorder(client, "app=flask") as samples:
            await set_image(client, "flask:2")

            async def rolled() -> bool:
                return (await rollout_done(client)) and \
                    (await get_d(client))["status"].get("observedGeneration") == 2
            await wait_for(rolled)
        assert all(len(images) <= 1 for _, _, images in samples), samples
        assert any(active == 0 for active, _, _ in samples)
        assert samples[-1][2] == frozenset({"flask:2"})


async def test_progress_deadline_exceeded(client: ApiClient) -> None:
    async with controllers(client):   # no kubelet: pods never become ready
        await client.create(DEPLOYMENTS, deployment(replicas=2, progressDeadlineSeconds=1))

        async def timed_out() -> bool:
            cond = condition(await get_d(client), "Progressing")
            return cond.get("reason") == "ProgressDeadlineExceeded"
        await wait_for(timed_out, timeout=8)
        d = await get_d(client)
        cond = condition(d, "Progressing")
        assert cond["status"] == "False"
        assert cond["message"].startswith('ReplicaSet "flask-') and cond["message"].endswith("has timed out progressing.")
        assert condition(d, "Available")["status"] == "False"


async def test_revision_history_limit_trims_old_replicasets(client: ApiClient) -> None:
    async with controllers(client), fake_kubelet(client):
        d = await client.create(DEPLOYMENTS, deployment(replicas=1, revisionHistoryLimit=1))
        await wait_for(lambda: rollout_done(client))
        for i in (2, 3, 4):
            await set_image(client, f"flask:{i}")

            async def done(i: int = i) -> bool:
                dd = await get_d(client)
                return (await rollout_done(client)) and dd["metadata"]["annotations"].get(REVISION) == str(i)
            await wait_for(done)

        async def trimmed() -> bool:
            return len(await owned_rss(client, d)) == 2
        await wait_for(trimmed)
        revs = sorted(rs["metadata"]["annotations"][REVISION] for rs in await owned_rss(client, d))
        assert revs == ["3", "4"]
