"""ResourceQuota admission: decisions (pure), agreement with the controller, and the real API
server under concurrency (20 creates against a 2-pod quota admit exactly 2)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.api import quota as qu
from kybernetes.apiserver.admission.resourcequota import QuotaRefusal, compute_charges
from kybernetes.client import InformerFactory
from kybernetes.client.rest import ApiClient as RestClient
from kybernetes.controllers import resourcequota as ctl_rq
from tests.conftest import ApiClient
from tests.harness import running_tasks, wait_for

Obj = dict[str, Any]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def quota(name: str, hard: dict[str, str], used: dict[str, str] | None = None, **spec: Any) -> Obj:
    q: Obj = {"metadata": {"name": name}, "spec": {"hard": hard, **spec}}
    if used is not None:
        q["status"] = {"hard": hard, "used": used}
    return q


def pod(name: str = "p", *containers: Obj, **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": list(containers) or [{"name": "c", "image": "busybox"}], **spec}}


def c(name: str = "c", requests: Obj | None = None, limits: Obj | None = None, **extra: Any) -> Obj:
    res: Obj = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"name": name, "image": "busybox", "resources": res, **extra}


# ------------------------------------------------------------------------------------------
# pure decisions
def test_exceeded_message_and_new_usage() -> None:
    q = quota("q", {"pods": "2", "requests.cpu": "1"}, {"pods": "1", "requests.cpu": "800m"})
    p = pod("p", c(requests={"cpu": "100m", "memory": "1Mi"}))
    [charge] = compute_charges([q], "", "pods", "CREATE", p)
    assert charge.used == {"pods": "2", "requests.cpu": "900m"}
    big = pod("p", c(requests={"cpu": "500m"}))
    with pytest.raises(QuotaRefusal) as e:
        compute_charges([q], "", "pods", "CREATE", big)
    assert e.value.message == "exceeded quota: q, requested: requests.cpu=500m, used: requests.cpu=800m, limited: requests.cpu=1"


@pytest.mark.parametrize("quotas,obj,want", [
    pytest.param([quota("q", {"requests.cpu": "1", "limits.memory": "1Gi"}, {"requests.cpu": "0", "limits.memory": "0"})],
                 pod("p", c("a"), c("b", requests={"cpu": "1m"})),
                 "failed quota: q: must specify limits.memory for: a,b; requests.cpu for: a", id="must-specify"),
    pytest.param([quota("q", {"pods": "1"}, {})], pod(), "status unknown for quota: q, resources: pods", id="status-unknown"),
    pytest.param([quota("q", {"pods": "1"}, {"pods": "1"})], pod(),
                 "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1", id="exceeded"),
])
def test_refusals(quotas: list[Obj], obj: Obj, want: str) -> None:
    with pytest.raises(QuotaRefusal) as e:
        compute_charges(quotas, "", "pods", "CREATE", obj)
    assert e.value.message == want


def test_what_matches() -> None:
    no_status = quota("fresh", {"pods": "1"})  # the controller has not filled status.hard yet: not enforced
    scoped = quota("be", {"pods": "1"}, {"pods": "0"}, scopes=["BestEffort"])
    counts = quota("counts", {"count/deployments.apps": "1", "configmaps": "2"}, {"count/deployments.apps": "0", "configmaps": "2"})
    assert compute_charges([no_status], "", "pods", "CREATE", pod()) == []
    assert [ch.name for ch in compute_charges([scoped], "", "pods", "CREATE", pod())] == ["be"]
    assert compute_charges([scoped], "", "pods", "CREATE", pod("p", c(requests={"cpu": "1"}))) == []  # not BestEffort
    assert compute_charges([scoped], "", "configmaps", "CREATE", {"metadata": {"name": "x"}}) == []   # scopes select pods only
    [ch] = compute_charges([counts], "apps", "deployments", "CREATE", {"metadata": {"name": "d"}})
    assert ch.used == {"count/deployments.apps": "1", "configmaps": "2"}
    with pytest.raises(QuotaRefusal, match="exceeded quota: counts, requested: configmaps=1, used: configmaps=2, limited: configmaps=2"):
        compute_charges([counts], "", "configmaps", "CREATE", {"metadata": {"name": "x"}})
    # updates are charged by the increase only
    svc_q = quota("s", {"services.nodeports": "2"}, {"services.nodeports": "1"})
    old = {"spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    new = {"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}}
    [ch] = compute_charges([svc_q], "", "services", "UPDATE", new, old)
    assert ch.used == {"services.nodeports": "2"}


AGREEMENT_OBJECTS = [
    pytest.param("", "pods", pod("p", c(requests={"cpu": "250m", "memory": "64Mi"}, limits={"memory": "128Mi"}),
                                  initContainers=[c("i", requests={"cpu": "1"}), c("side", requests={"cpu": "100m"}, restartPolicy="Always")],
                                  overhead={"cpu": "10m"}), id="pod-init-sidecar-overhead"),
    pytest.param("", "pods", pod("p", c(limits={"cpu": "2", "hugepages-2Mi": "2Mi"})), id="pod-limits-only"),
    pytest.param("", "pods", {**pod("done"), "status": {"phase": "Succeeded"}}, id="pod-finished"),
    pytest.param("", "services", {"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 81}]}},
                 id="service-lb"),
    pytest.param("", "persistentvolumeclaims", {"metadata": {"name": "d"}, "spec": {"storageClassName": "fast",
                                                "resources": {"requests": {"storage": "3Gi"}}}}, id="pvc-class"),
    pytest.param("", "configmaps", {"metadata": {"name": "cm"}}, id="configmap"),
    pytest.param("apps", "deployments", {"metadata": {"name": "d"}}, id="deployment"),
]


@pytest.mark.parametrize("group,plural,obj", AGREEMENT_OBJECTS)
def test_usage_agrees_with_the_controller(group: str, plural: str, obj: Obj) -> None:
    names = ["pods", "count/pods", "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
             "requests.hugepages-2Mi", "limits.hugepages-2Mi", "services", "services.loadbalancers", "services.nodeports",
             "persistentvolumeclaims", "requests.storage", "fast.storageclass.storage.k8s.io/requests.storage",
             "configmaps", "count/configmaps", "count/deployments.apps"]
    q = {"metadata": {"name": "q"}, "spec": {"hard": {n: "1000" for n in names}}}
    res = ctl_rq.resource_for(qu.count_name(group, plural))
    assert res is not None
    by_controller = {k: v for k, v in ctl_rq.compute_used(q, {res: [obj]}, NOW).items() if v}
    mine = qu.usage(group, plural, obj, NOW)
    by_admission = {k: v for k, v in mine.items() if k in names and v}
    assert by_admission == by_controller
    assert set(qu.tracked(group, plural, names)) == {n for n in names if ctl_rq.resource_for(n) == res}


# ------------------------------------------------------------------------------------------
# the real API server
async def set_status(api: ApiClient, ns: str, name: str, hard: dict[str, str], used: dict[str, str]) -> None:
    st, doc, _ = await api.patch(f"/api/v1/namespaces/{ns}/resourcequotas/{name}/status", {"status": {"hard": hard, "used": used}})
    assert st == 200, doc


async def test_two_pod_quota_holds_under_twenty_concurrent_creates(api: ApiClient) -> None:
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "q"}}))[0] == 201
    assert (await api.post("/api/v1/namespaces/q/resourcequotas", quota("pods", {"pods": "2"})))[0] == 201
    await set_status(api, "q", "pods", {"pods": "2"}, {"pods": "0"})   # what the controller would write
    results = await asyncio.gather(*(api.post("/api/v1/namespaces/q/pods", pod(f"p{i}")) for i in range(20)))
    codes = sorted(st for st, _, _ in results)
    assert codes == [201] * 2 + [403] * 18
    refusal = next(doc for st, doc, _ in results if st == 403)
    assert refusal["reason"] == "Forbidden"
    assert refusal["message"].endswith("is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2")
    _, pods, _ = await api.get("/api/v1/namespaces/q/pods")
    assert len(pods["items"]) == 2
    _, q, _ = await api.get("/api/v1/namespaces/q/resourcequotas/pods")
    assert q["status"]["used"] == {"pods": "2"}


async def test_dry_run_and_required_requests(api: ApiClient) -> None:
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "q"}}))[0] == 201
    hard = {"pods": "5", "requests.cpu": "1"}
    assert (await api.post("/api/v1/namespaces/q/resourcequotas", quota("compute", hard)))[0] == 201
    await set_status(api, "q", "compute", hard, {"pods": "0", "requests.cpu": "0"})
    st, doc, _ = await api.post("/api/v1/namespaces/q/pods", pod("bare"))
    assert (st, doc["message"]) == (403, 'pods "bare" is forbidden: failed quota: compute: must specify requests.cpu for: c')
    st, _, _ = await api.post("/api/v1/namespaces/q/pods?dryRun=All", pod("dry", c(requests={"cpu": "400m"})))
    assert st == 201
    _, q, _ = await api.get("/api/v1/namespaces/q/resourcequotas/compute")
    assert q["status"]["used"] == {"pods": "0", "requests.cpu": "0"}      # dry-run charges nothing
    for name in ("a", "b"):
        st, _, _ = await api.post("/api/v1/namespaces/q/pods", pod(name, c(requests={"cpu": "400m"})))
        assert st == 201
    st, doc, _ = await api.post("/api/v1/namespaces/q/pods", pod("c", c(requests={"cpu": "400m"})))
    assert doc["message"] == ('pods "c" is forbidden: exceeded quota: compute, requested: requests.cpu=400m, '
                              "used: requests.cpu=800m, limited: requests.cpu=1")
    _, q, _ = await api.get("/api/v1/namespaces/q/resourcequotas/compute")
    assert q["status"]["used"] == {"pods": "2", "requests.cpu": "800m"}


@pytest.fixture
async def rest(api: ApiClient) -> AsyncIterator[RestClient]:
    client = RestClient(api.base, timeout=10.0)
    try:
        yield client
    finally:
        await client.close()


async def test_admission_and_controller_agree(api: ApiClient, rest: RestClient) -> None:
    """Objects charged by admission are recounted to the very same ``used`` by the controller."""
    hard = {"pods": "10", "requests.cpu": "4", "requests.memory": "4Gi", "limits.memory": "8Gi",
            "configmaps": "5", "count/deployments.apps": "2", "services": "3", "services.nodeports": "4"}

    async def used() -> Obj:
        return ((await api.get("/api/v1/namespaces/default/resourcequotas/q"))[1].get("status") or {}).get("used") or {}

    async def controller() -> ctl_rq.ResourceQuotaController:
        factory = InformerFactory(rest)
        ctl = ctl_rq.ResourceQuotaController(rest, factory=factory, resync_period=30.0)
        return ctl, factory  # type: ignore[return-value]

    assert (await api.post("/api/v1/namespaces/default/resourcequotas", quota("q", hard)))[0] == 201
    ctl, factory = await controller()  # type: ignore[misc]
    async with running_tasks(factory.run(), ctl.run()):
        await wait_for(lambda: ctl.wait_for_sync(0.01))
        await wait_for(lambda: _eq(used(), {**{n: "0" for n in hard}, "services": "1"}),  # the kubernetes Service
                       what="initial usage")
    # the controller is stopped: only admission moves usage now
    container = c(requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "512Mi"})
    for i in range(3):
        assert (await api.post("/api/v1/namespaces/default/pods", pod(f"p{i}", container)))[0] == 201
    assert (await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm"}}))[0] == 201
    deploy = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    assert (await api.post("/apis/apps/v1/namespaces/default/deployments", deploy))[0] == 201
    svc = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}
    assert (await api.post("/api/v1/namespaces/default/services", svc))[0] == 201
    charged = await used()
    assert charged == {"pods": "3", "requests.cpu": "750m", "requests.memory": "768Mi", "limits.memory": "1536Mi",
                       "configmaps": "1", "count/deployments.apps": "1", "services": "2", "services.nodeports": "2"}
    ctl, factory = await controller()  # type: ignore[misc]
    async with running_tasks(factory.run(), ctl.run()):
        await wait_for(lambda: ctl.wait_for_sync(0.01))
        await asyncio.sleep(0.3)
        assert await used() == charged
        assert ctl.stats.status_writes == 0   # nothing to correct


async def _eq(coro: Any, want: Obj) -> bool:
    return bool(await coro == want)
