"""PodDisruptionBudgets end to end on the in-process API server: the disruption controller keeps
the status, the eviction subresource spends it, the ReplicaSet/Deployment controllers replace pods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.client import InformerFactory
from kybernetes.client.resources import (
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    Resource,
)
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.deployment import DeploymentController
from kybernetes.controllers.disruption import DisruptionController
from kybernetes.controllers.replicaset import ReplicaSetController

from .conftest import budget, deployment, eviction, is_ready, live, mark_ready, pod_body, pods_of, running, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
WEB = {"app": "web"}


@pytest.fixture
async def controllers(client: ApiClient) -> AsyncIterator[DisruptionController]:
    factory = InformerFactory(client)
    dc = DisruptionController(client, factory=factory)
    rs = ReplicaSetController(client, factory=factory)
    deploy = DeploymentController(client, factory=factory)
    async with running(factory.run(), dc.run(), rs.run(), deploy.run()):
        yield dc


@pytest.fixture
async def disruption_only(client: ApiClient) -> AsyncIterator[DisruptionController]:
    """Only the disruption controller: a ReplicaSet keeps exactly the pods a test makes (with the
    ReplicaSet controller running, it may create its own pods and then trim the newest, a test's)."""
    factory = InformerFactory(client)
    dc = DisruptionController(client, factory=factory)
    async with running(factory.run(), dc.run()):
        yield dc


async def pdb_status(client: ApiClient, name: str) -> Obj:
    return (await client.get(PODDISRUPTIONBUDGETS, name, "default")).get("status") or {}


async def wait_status(client: ApiClient, name: str, **want: Any) -> Obj:
    got: Obj = {}

    async def check() -> bool:
        nonlocal got
        got = await pdb_status(client, name)
        return all(got.get(k) == v for k, v in want.items())

    try:
        await wait_for(check, timeout=60, what=f"PDB status {want}")  # a loaded 2-core machine
    except AssertionError:
        raise AssertionError(f"PDB status never became {want}; last: {got}") from None
    return got


async def ready_pods(client: ApiClient, n: int, selector: str = "app=web") -> list[Obj]:
    """Wait for ``n`` live pods and make them all ready."""
    async def enough() -> bool:
        return len([p for p in await pods_of(client, selector) if live(p)]) == n
    await wait_for(enough, what=f"{n} pods")
    out = []
    for p in await pods_of(client, selector):
        if live(p):
            out.append(p if is_ready(p) else await mark_ready(client, p))
    return out


async def test_min_available_2_of_3_allows_one_eviction_at_a_time(api: Any, client: ApiClient,
                                                                   controllers: DisruptionController) -> None:
    await client.create(DEPLOYMENTS, deployment("web", 3, WEB), "default")
    pods = await ready_pods(client, 3)
    await client.create(PODDISRUPTIONBUDGETS, budget("web", WEB, minAvailable=2), "default")
    # wait for the whole expected status: the controller may publish an intermediate one first
    # (its pod informer can see a pod's readiness one event later than the pod itself)
    st = await wait_status(client, "web", disruptionsAllowed=1, observedGeneration=1, currentHealthy=3,
                      desiredHealthy=2, expectedPods=3)
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")

    first, second = pods[0]["metadata"]["name"], pods[1]["metadata"]["name"]
    code, doc, _ = await api.post(f"/api/v1/namespaces/default/pods/{first}/eviction", eviction(first))
    assert code == 201, doc
    assert doc["status"] == "Success"
    after = await pdb_status(client, "web")
    assert after["disruptionsAllowed"] == 0
    assert first in (after.get("disruptedPods") or {}) or after["currentHealthy"] == 2  # controller may be quick

    # the replacement exists but is not ready: the budget is exhausted
    async def replaced() -> bool:
        return len([p for p in await pods_of(client, "app=web") if live(p)]) == 3
    await wait_for(replaced, what="a replacement pod")
    await wait_status(client, "web", currentHealthy=2, disruptionsAllowed=0)
    code, doc, headers = await api.post(f"/api/v1/namespaces/default/pods/{second}/eviction", eviction(second))
    assert code == 429, doc
    assert doc["reason"] == "TooManyRequests"
    assert doc["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert doc["details"]["causes"] == [{"reason": "DisruptionBudget",
                                         "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    assert (await client.get(PODS, second, "default"))["metadata"].get("deletionTimestamp") is None

    # once the replacement is ready the next eviction goes through
    for p in await pods_of(client, "app=web"):
        if live(p) and not is_ready(p):
            await mark_ready(client, p)
    await wait_status(client, "web", currentHealthy=3, disruptionsAllowed=1)
    code, doc, _ = await api.post(f"/api/v1/namespaces/default/pods/{second}/eviction", eviction(second))
    assert code == 201, doc
    gone = await client.list_all(PODS, "default", field_selector=f"metadata.name={second}")
    assert gone[0] == []


async def test_eviction_rules(api: Any, client: ApiClient, controllers: DisruptionController) -> None:
    solo = {"app": "solo"}
    for name in ("p1", "p2"):
        await mark_ready(client, await client.create(PODS, pod_body(name, solo), "default"))
    await client.create(PODDISRUPTIONBUDGETS, budget("solo", solo, minAvailable=1), "default")
    await wait_status(client, "solo", disruptionsAllowed=1, expectedPods=2)

    # dry run: answers as if, changes nothing
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p1/eviction?dryRun=All", eviction("p1"))
    assert code == 201, doc
    assert (await client.get(PODS, "p1", "default"))["metadata"].get("deletionTimestamp") is None
    assert (await pdb_status(client, "solo"))["disruptionsAllowed"] == 1

    # the body must name the pod of the URL
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p1/eviction", eviction("p2"))
    assert code == 400 and "does not match" in doc["message"]

    # two budgets over one pod: refused for good (upstream 500, here 403)
    await client.create(PODDISRUPTIONBUDGETS, budget("solo-too", solo, maxUnavailable=1), "default")
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p1/eviction", eviction("p1"))
    assert code == 403 and "more than one PodDisruptionBudget" in doc["message"]
    await client.delete(PODDISRUPTIONBUDGETS, "solo-too", "default")

    # tighten the budget: no disruption allowed, but a Pending pod still goes
    await client.patch(PODDISRUPTIONBUDGETS, "solo", {"spec": {"minAvailable": 2}}, "default")
    await wait_status(client, "solo", disruptionsAllowed=0, observedGeneration=2)
    await client.create(PODS, pod_body("p3", solo), "default")
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p3/eviction", eviction("p3"))
    assert code == 201, doc
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p1/eviction", eviction("p1"))
    assert code == 429 and doc["details"]["causes"][0]["reason"] == "DisruptionBudget"

    # an unready pod goes when the budget says AlwaysAllow; it is marked as a disruption target
    await client.patch_status(PODS, "p2", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, "default")
    await wait_status(client, "solo", currentHealthy=1)
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p2/eviction", eviction("p2"))
    assert code == 429   # IfHealthyBudget (default) and the budget is not satisfied
    await client.patch(PODDISRUPTIONBUDGETS, "solo", {"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}, "default")
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/p2/eviction", eviction("p2"))
    assert code == 201, doc

    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/nope/eviction", eviction("nope"))
    assert code == 404


async def test_eviction_keeps_delete_options_and_marks_the_pod(api: Any, client: ApiClient) -> None:
    await client.create(PODS, pod_body("bound", {"app": "x"}, node="n1"), "default")
    await mark_ready(client, await client.get(PODS, "bound", "default"))
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/bound/eviction",
                                  eviction("bound", gracePeriodSeconds=7))
    assert code == 201, doc
    pod = await client.get(PODS, "bound", "default")   # bound: graceful, so still there
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 7
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"]) == ("True", "EvictionByEvictionAPI")

    await client.create(PODS, pod_body("pinned", {"app": "x"}), "default")
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods/pinned/eviction",
                                  eviction("pinned", preconditions={"uid": "not-its-uid"}))
    assert code == 409, doc


async def test_percentages_use_the_controllers_scale(client: ApiClient,
                                                     disruption_only: DisruptionController) -> None:
    # a ReplicaSet nobody reconciles: it wants 4 replicas, 2 pods exist
    rs = await client.create(REPLICASETS, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "half"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "half"}},
                 "template": {"metadata": {"labels": {"app": "half"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}, "default")
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "half", "uid": rs["metadata"]["uid"],
           "controller": True}
    for name in ("h1", "h2"):
        await mark_ready(client, await client.create(PODS, pod_body(name, {"app": "half"}, owner=ref), "default"))
    await client.create(PODDISRUPTIONBUDGETS, budget("half", {"app": "half"}, maxUnavailable="50%"), "default")
    await wait_status(client, "half", expectedPods=4, observedGeneration=1, desiredHealthy=2, currentHealthy=2,
                      disruptionsAllowed=0)

    # a custom resource with a scale subresource
    await client.create(CUSTOMRESOURCEDEFINITIONS, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}},
                               "subresources": {"scale": {"specReplicasPath": ".spec.replicas",
                                                          "statusReplicasPath": ".status.replicas"}}}]}})
    pools = Resource("example.com", "v1", "pools", "Pool")

    async def served() -> bool:
        try:
            await client.list(pools, "default")
        except Exception:  # noqa: BLE001 - not served yet
            return False
        return True
    await wait_for(served, what="the CRD served")
    pool = await client.create(pools, {"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p"},
                                       "spec": {"replicas": 2}}, "default")
    pref = {"apiVersion": "example.com/v1", "kind": "Pool", "name": "p", "uid": pool["metadata"]["uid"],
            "controller": True}
    for name in ("c1", "c2"):
        await mark_ready(client, await client.create(PODS, pod_body(name, {"app": "pool"}, owner=pref), "default"))
    await client.create(PODDISRUPTIONBUDGETS, budget("pool", {"app": "pool"}, minAvailable="50%"), "default")
    await wait_status(client, "pool", expectedPods=2, disruptionsAllowed=1, desiredHealthy=1, currentHealthy=2)

    # an owner without a scale subresource: the status fails safe
    cm_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cfg", "uid": "u-cfg", "controller": True}
    await mark_ready(client, await client.create(PODS, pod_body("odd", {"app": "odd"}, owner=cm_ref), "default"))
    await client.create(PODDISRUPTIONBUDGETS, budget("odd", {"app": "odd"}, maxUnavailable=1), "default")

    async def failed_safe() -> bool:
        st = await pdb_status(client, "odd")
        cond = next((c for c in st.get("conditions") or () if c["type"] == "DisruptionAllowed"), {})
        return cond.get("reason") == "SyncFailed" and st.get("disruptionsAllowed") == 0
    await wait_for(failed_safe, what="SyncFailed")
    st = await pdb_status(client, "odd")
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert cond["message"] == "configmaps does not implement the scale subresource"
