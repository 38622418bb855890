"""ReplicaSet / ReplicationController controller against the real in-process API server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kybernetes.client.fake import FakeApiClient
from kybernetes.client.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.replicaset import ReplicaSetController

from .conftest import controllers, is_active, list_pods, mark_ready, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def rs_obj(name: str, replicas: int, app: str = "web", min_ready: int = 0) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def active_pods(client: ApiClient, selector: str = "app=web") -> list[Obj]:
    return [p for p in await list_pods(client, selector=selector) if is_active(p)]


async def test_creates_pods_with_owner_references_and_status(client: ApiClient) -> None:
    async with controllers(client, deployments=False):
        rs = await client.create(REPLICASETS, rs_obj("web", 3))

        async def three() -> bool:
            return len(await active_pods(client)) == 3
        await wait_for(three)
        pods = await active_pods(client)
        for p in pods:
            ref = p["metadata"]["ownerReferences"][0]
            assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                           "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
            assert p["metadata"]["name"].startswith("web-")
        for p in pods:
            await mark_ready(client, p)

        async def ready() -> bool:
            st = (await client.get(REPLICASETS, "web", "default")).get("status") or {}
            return st.get("readyReplicas") == 3 and st.get("availableReplicas") == 3
        await wait_for(ready)
        st = (await client.get(REPLICASETS, "web", "default"))["status"]
        assert st["replicas"] == 3 and st["fullyLabeledReplicas"] == 3 and st["observedGeneration"] == 1
        await asyncio.sleep(0.2)
        assert len(await active_pods(client)) == 3   # no double creation


async def test_scale_down_deletes_not_ready_pods_first(client: ApiClient) -> None:
    async with controllers(client, deployments=False):
        await client.create(REPLICASETS, rs_obj("web", 4))

        async def four() -> bool:
            return len(await active_pods(client)) == 4
        await wait_for(four)
        pods = sorted(await active_pods(client), key=lambda p: p["metadata"]["name"])
        ready_names = set()
        for p in pods[:2]:
            await mark_ready(client, p)
            ready_names.add(p["metadata"]["name"])

        async def two_ready() -> bool:
            st = (await client.get(REPLICASETS, "web", "default")).get("status") or {}
            return st.get("readyReplicas") == 2
        await wait_for(two_ready)
        await client.patch(REPLICASETS, "web", {"spec": {"replicas": 2}}, "default")

        async def two() -> bool:
            return len(await active_pods(client)) == 2
        await wait_for(two)
        assert {p["metadata"]["name"] for p in await active_pods(client)} == ready_names


async def test_adopts_matching_orphan_and_releases_non_matching(client: ApiClient) -> None:
    orphan = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                        "metadata": {"name": "orphan", "namespace": "default",
                                                     "labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    async with controllers(client, deployments=False) as ctls:
        rs = await client.create(REPLICASETS, rs_obj("web", 2))

        async def two() -> bool:
            return len(await active_pods(client)) == 2
        await wait_for(two)
        adopted = await client.get(PODS, "orphan", "default")
        assert adopted["metadata"]["uid"] == orphan["metadata"]["uid"]
        assert adopted["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert ctls["rs"].stats.adopted == 1 and ctls["rs"].stats.created == 1
        # relabel the adopted pod: it is released and replaced
        await client.patch(PODS, "orphan", {"metadata": {"labels": {"app": "other"}}}, "default")

        async def released() -> bool:
            pod = await client.get(PODS, "orphan", "default")
            return not pod["metadata"].get("ownerReferences") and len(await active_pods(client)) == 2
        await wait_for(released)


class SlowWatchClient(FakeApiClient):
    """Pod watch events are delayed: the informer lags behind the writes."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def _notify(self, res: Any, typ: str, obj: Obj) -> None:
        if res.plural == "pods":
            asyncio.get_running_loop().call_later(self.delay, super()._notify, res, typ, obj)
        else:
            super()._notify(res, typ, obj)


async def test_expectations_prevent_double_creation_under_slow_watch() -> None:
    fake = SlowWatchClient(delay=0.5)
    ctl = ReplicaSetController(fake, workers=2)  # type: ignore[arg-type]
    fake.seed(REPLICASETS, {**rs_obj("web", 5), "metadata": {"name": "web", "namespace": "default",
                                                              "uid": "rs-uid", "generation": 1}})
    task = asyncio.ensure_future(ctl.run())
    try:
        await wait_for(lambda: len(fake.actions_for("create", PODS)) >= 5, timeout=5)
        # status writes re-trigger syncs while the pod events are still in flight
        for _ in range(5):
            ctl.enqueue("default/web")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)          # events delivered; expectations satisfied
        ctl.enqueue("default/web")
        await asyncio.sleep(0.2)
        assert len(fake.actions_for("create", PODS)) == 5
        assert ctl.expectations.pending("default/web") == (0, 0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_replication_controller(client: ApiClient) -> None:
    async with controllers(client, replicasets=False, deployments=False, rc=True):
        rc = await client.create(REPLICATIONCONTROLLERS, {
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "legacy", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"app": "legacy"},
                     "template": {"metadata": {"labels": {"app": "legacy"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})

        async def two() -> bool:
            return len(await active_pods(client, "app=legacy")) == 2
        await wait_for(two)
        ref = (await active_pods(client, "app=legacy"))[0]["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "ReplicationController" and ref["uid"] == rc["metadata"]["uid"]

        async def status() -> bool:
            st = (await client.get(REPLICATIONCONTROLLERS, "legacy", "default")).get("status") or {}
            return st.get("replicas") == 2
        await wait_for(status)
