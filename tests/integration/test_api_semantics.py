"""API semantics against a real in-process server on loopback (SQLite store)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ApiClient

pytestmark = pytest.mark.integration

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


async def read_events(api: ApiClient, path: str, params: dict[str, str], n: int, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with api.session.get(api.base + path, params={**params, "watch": "true"}, headers=headers or {}) as r:
        assert r.status == 200
        async for line in r.content:
            if line.strip():
                out.append(orjson.loads(line))
            if len(out) >= n:
                break
    return out


async def test_create_defaults_and_server_fields(api: ApiClient) -> None:
    code, d, _ = await api.post(DEPLOY, deployment("web"))
    assert code == 201
    md = d["metadata"]
    assert md["uid"] and md["creationTimestamp"].endswith("Z") and md["generation"] == 1 and int(md["resourceVersion"]) > 0
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert d["spec"]["revisionHistoryLimit"] == 10 and d["spec"]["progressDeadlineSeconds"] == 600
    pod_spec = d["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    c = pod_spec["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log" and c["imagePullPolicy"] == "Always"
    assert md["managedFields"][0]["operation"] == "Update"


async def test_generation_bumps_only_on_spec_change(api: ApiClient) -> None:
    _, d, _ = await api.post(DEPLOY, deployment("gen"))
    _, d2, _ = await api.patch(DEPLOY + "/gen", {"metadata": {"labels": {"x": "y"}}})
    assert d2["metadata"]["generation"] == 1
    _, d3, _ = await api.patch(DEPLOY + "/gen", {"spec": {"replicas": 5}})
    assert d3["metadata"]["generation"] == 2


async def test_status_subresource_split(api: ApiClient) -> None:
    _, d, _ = await api.post(DEPLOY, deployment("st"))
    code, d2, _ = await api.patch(DEPLOY + "/st/status", {"status": {"replicas": 3}, "spec": {"replicas": 9}})
    assert code == 200 and d2["status"]["replicas"] == 3 and d2["spec"]["replicas"] == 1
    code, d3, _ = await api.patch(DEPLOY + "/st", {"status": {"replicas": 7}})
    assert d3["status"]["replicas"] == 3


async def test_scale_subresource(api: ApiClient) -> None:
    await api.post(DEPLOY, deployment("sc", 2))
    code, s, _ = await api.get(DEPLOY + "/sc/scale")
    assert code == 200 and s["kind"] == "Scale" and s["apiVersion"] == "autoscaling/v1"
    assert s["spec"]["replicas"] == 2 and s["status"]["selector"] == "app=sc"
    code, s2, _ = await api.patch(DEPLOY + "/sc/scale", {"spec": {"replicas": 4}})
    assert code == 200 and s2["spec"]["replicas"] == 4
    _, d, _ = await api.get(DEPLOY + "/sc")
    assert d["spec"]["replicas"] == 4


async def test_generate_name(api: ApiClient) -> None:
    code, cm, _ = await api.post(CM, {"metadata": {"generateName": "gen-"}})
    assert code == 201 and cm["metadata"]["name"].startswith("gen-") and len(cm["metadata"]["name"]) == 9


async def test_dry_run_persists_nothing(api: ApiClient) -> None:
    code, cm, _ = await api.post(CM, {"metadata": {"name": "dry"}}, params={"dryRun": "All"})
    assert code == 201 and cm["metadata"]["uid"]
    code, _, _ = await api.get(CM + "/dry")
    assert code == 404


async def test_pagination_consistent_under_writes(api: ApiClient) -> None:
    for i in range(25):
        await api.post(CM, {"metadata": {"name": f"p{i:02d}"}})
    code, first, _ = await api.get(CM, params={"limit": "10"})
    assert len(first["items"]) == 10 and first["metadata"]["continue"]
    rv = first["metadata"]["resourceVersion"]
    await api.post(CM, {"metadata": {"name": "p99-late"}})  # written after the first page
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        _, page, _ = await api.get(CM, params={"limit": "10", "continue": token})
        assert page["metadata"]["resourceVersion"] == rv
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert "p99-late" not in names and len([n for n in names if n.startswith("p")]) == 25


async def test_label_and_field_selectors(api: ApiClient) -> None:
    await api.post(CM, {"metadata": {"name": "l1", "labels": {"tier": "fe", "n": "3"}}})
    await api.post(CM, {"metadata": {"name": "l2", "labels": {"tier": "be"}}})
    _, lst, _ = await api.get(CM, params={"labelSelector": "tier in (fe),n>2"})
    assert [i["metadata"]["name"] for i in lst["items"]] == ["l1"]
    _, lst, _ = await api.get(CM, params={"labelSelector": "tier!=fe"})
    assert "l1" not in [i["metadata"]["name"] for i in lst["items"]]
    _, lst, _ = await api.get(CM, params={"fieldSelector": "metadata.name=l2"})
    assert [i["metadata"]["name"] for i in lst["items"]] == ["l2"]


async def test_table_output(api: ApiClient) -> None:
    await api.post(DEPLOY, deployment("tbl", 2))
    code, t, _ = await api.get(DEPLOY, headers={"Accept": TABLE})
    assert code == 200 and t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in t["columnDefinitions"]][:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    row = t["rows"][0]
    assert len(row["cells"]) == len(t["columnDefinitions"])
    assert row["cells"][0] == "tbl" and row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "tbl"


async def test_watch_from_revision_sees_all_event_types(api: ApiClient) -> None:
    _, lst, _ = await api.get(CM)
    rv = lst["metadata"]["resourceVersion"]
    task = asyncio.ensure_future(read_events(api, CM, {"resourceVersion": rv}, 3))
    await asyncio.sleep(0.2)
    await api.post(CM, {"metadata": {"name": "wv"}, "data": {"a": "1"}})
    await api.patch(CM + "/wv", {"data": {"a": "2"}})
    await api.delete(CM + "/wv")
    evs = await asyncio.wait_for(task, 10)
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    assert evs[1]["object"]["data"] == {"a": "2"}
    assert int(evs[2]["object"]["metadata"]["resourceVersion"]) > int(evs[1]["object"]["metadata"]["resourceVersion"])


async def test_watch_initial_events_and_bookmark_param(api: ApiClient) -> None:
    await api.post(CM, {"metadata": {"name": "i1"}})
    evs = await read_events(api, CM, {"fieldSelector": "metadata.name=i1", "allowWatchBookmarks": "true"}, 1)
    assert evs[0]["type"] == "ADDED" and evs[0]["object"]["metadata"]["name"] == "i1"


async def test_watch_tables(api: ApiClient) -> None:
    _, lst, _ = await api.get(CM)
    task = asyncio.ensure_future(read_events(api, CM, {"resourceVersion": lst["metadata"]["resourceVersion"]}, 2, headers={"Accept": TABLE}))
    await asyncio.sleep(0.2)
    await api.post(CM, {"metadata": {"name": "t1"}})
    await api.post(CM, {"metadata": {"name": "t2"}})
    evs = await asyncio.wait_for(task, 10)
    assert evs[0]["object"]["kind"] == "Table" and evs[0]["object"]["columnDefinitions"]
    assert evs[1]["object"]["rows"][0]["cells"][0] == "t2"
    assert not evs[1]["object"].get("columnDefinitions")


async def test_finalizers_and_graceful_pod_deletion(api: ApiClient) -> None:
    await api.post(CM, {"metadata": {"name": "fz", "finalizers": ["x/y"]}})
    code, cm, _ = await api.delete(CM + "/fz")
    assert code == 200 and cm["metadata"]["deletionTimestamp"]
    code, _, _ = await api.patch(CM + "/fz", {"metadata": {"finalizers": ["x/y", "new/one"]}})
    assert code == 422
    code, _, _ = await api.patch(CM + "/fz", {"metadata": {"finalizers": None}})
    assert code == 200
    assert (await api.get(CM + "/fz"))[0] == 404
    pod = {"metadata": {"name": "gp"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    await api.post(PODS, pod)
    code, p, _ = await api.delete(PODS + "/gp")
    assert code == 200 and p["metadata"]["deletionGracePeriodSeconds"] == 30
    code, p, _ = await api.delete(PODS + "/gp", {"gracePeriodSeconds": 0})
    assert code == 200
    assert (await api.get(PODS + "/gp"))[0] == 404
    await api.post(PODS, {"metadata": {"name": "unsched"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    code, p, _ = await api.delete(PODS + "/unsched")
    assert code == 200 and (await api.get(PODS + "/unsched"))[0] == 404


async def test_binding(api: ApiClient) -> None:
    await api.post(PODS, {"metadata": {"name": "bp"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    code, st, _ = await api.post(PODS + "/bp/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bp"}, "target": {"kind": "Node", "name": "n1"}})
    assert code == 201 and st["status"] == "Success"
    _, p, _ = await api.get(PODS + "/bp")
    assert p["spec"]["nodeName"] == "n1"
    code, st, _ = await api.post(PODS + "/bp/binding", {"target": {"kind": "Node", "name": "n2"}})
    assert code == 409


async def test_services_get_unique_ips_and_node_ports(api: ApiClient) -> None:
    svc = "/api/v1/namespaces/default/services"
    results = await asyncio.gather(*[
        api.post(svc, {"metadata": {"name": f"s{i}"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}) for i in range(20)
    ])
    assert all(code == 201 for code, _, _ in results)
    ips = [d["spec"]["clusterIP"] for _, d, _ in results]
    ports = [d["spec"]["ports"][0]["nodePort"] for _, d, _ in results]
    assert len(set(ips)) == 20 and len(set(ports)) == 20 and "10.96.0.1" not in ips
    assert all(d["spec"]["ports"][0]["targetPort"] == 80 for _, d, _ in results)
    code, doc, _ = await api.post(svc, {"metadata": {"name": "dupip"}, "spec": {"clusterIP": ips[0], "ports": [{"port": 80}]}})
    assert code == 422 and "already allocated" in doc["message"]
    code, doc, _ = await api.post(svc, {"metadata": {"name": "dupport"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": ports[0]}]}})
    assert code == 422
    await api.delete(svc + "/s0")
    code, doc, _ = await api.post(svc, {"metadata": {"name": "reuse"}, "spec": {"clusterIP": ips[0], "type": "NodePort", "ports": [{"port": 80, "nodePort": ports[0]}]}})
    assert code == 201, doc


async def test_kubernetes_service_and_system_namespaces(api: ApiClient) -> None:
    _, svc, _ = await api.get("/api/v1/namespaces/default/services/kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1" and svc["spec"]["ports"][0]["port"] == 443
    _, ep, _ = await api.get("/api/v1/namespaces/default/endpoints/kubernetes")
    assert ep["subsets"][0]["ports"][0]["name"] == "https"
    _, lst, _ = await api.get("/api/v1/namespaces")
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= {i["metadata"]["name"] for i in lst["items"]}


async def test_discovery_documents(api: ApiClient) -> None:
    code, agg, headers = await api.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    apps = next(i for i in agg["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert {s["subresource"] for s in deploy["subresources"]} == {"status", "scale"}
    _, legacy, _ = await api.get("/api/v1")
    ev = next(r for r in legacy["resources"] if r["name"] == "pods/eviction")
    assert ev["group"] == "policy" and ev["kind"] == "Eviction"
    _, hpa, _ = await api.get("/apis/autoscaling")
    assert hpa["preferredVersion"]["version"] == "v2"


async def test_hpa_v1_and_v2_share_storage(api: ApiClient) -> None:
    v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
    code, h, _ = await api.post(v1, {"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}})
    assert code == 201, h
    _, h2, _ = await api.get("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/h")
    assert h2["apiVersion"] == "autoscaling/v2"
    assert h2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    _, h1, _ = await api.get(v1 + "/h")
    assert h1["spec"]["targetCPUUtilizationPercentage"] == 50


async def test_crd_lifecycle(api: ApiClient) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Cluster",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                                  "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": {"size": {"type": "integer", "maximum": 10}, "color": {"type": "string", "default": "red"}}},
                                      "status": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}}
    code, c, _ = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 201, c
    assert any(cond["type"] == "Established" and cond["status"] == "True" for cond in c["status"]["conditions"])
    base = "/apis/example.com/v1/widgets"
    code, w, _ = await api.post(base, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})
    assert code == 201, w
    assert w["spec"]["color"] == "red"  # schema default
    code, doc, _ = await api.post(base, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 11}})
    assert code == 422, doc
    code, doc, _ = await api.post(base, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w3"}, "spec": {"size": 1, "extra": 1}}, params={"fieldValidation": "Strict"})
    assert code == 400
    code, s, _ = await api.patch(base + "/w1/scale", {"spec": {"replicas": 5}})
    assert code == 200 and s["spec"]["replicas"] == 5
    code, t, _ = await api.get(base, headers={"Accept": TABLE})
    assert [c["name"] for c in t["columnDefinitions"]][:2] == ["Name", "Size"]
    assert t["rows"][0]["cells"][:2] == ["w1", 5]
    _, agg, _ = await api.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    assert any(i["metadata"]["name"] == "example.com" for i in agg["items"])
    code, _, _ = await api.patch(base + "/w1", {"spec": {"size": 2}}, content_type="application/strategic-merge-patch+json")
    assert code == 415
    code, _, _ = await api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    assert code == 200
    for _ in range(50):
        code, _, _ = await api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        if code == 404:
            break
        await asyncio.sleep(0.1)
    assert code == 404
    assert (await api.get(base))[0] == 404
    assert await api.server.store.count("/registry/example.com/") == 0


async def test_server_side_apply_conflicts(api: ApiClient) -> None:
    ct = "application/apply-patch+yaml"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}}
    code, cm, _ = await api.patch(CM + "/ssa", body, content_type=ct, params={"fieldManager": "alice"})
    assert code == 201, cm
    body["data"]["a"] = "2"
    code, doc, _ = await api.patch(CM + "/ssa", body, content_type=ct, params={"fieldManager": "bob"})
    assert code == 409 and doc["reason"] == "Conflict"
    assert doc["details"]["causes"][0]["field"] == ".data.a"
    code, cm, _ = await api.patch(CM + "/ssa", body, content_type=ct, params={"fieldManager": "bob", "force": "true"})
    assert code == 200 and cm["data"]["a"] == "2"
    code, doc, _ = await api.patch(CM + "/ssa", body, content_type=ct)
    assert code == 400


async def test_strategic_merge_keeps_list_items(api: ApiClient) -> None:
    dep = deployment("smp")
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    await api.post(DEPLOY, dep)
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}], "containers": [{"name": "c", "image": "nginx:2"}]}}}}
    code, d, _ = await api.patch(DEPLOY + "/smp", patch, content_type="application/strategic-merge-patch+json")
    assert code == 200, d
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:2" and c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert "$setElementOrder/containers" not in json.dumps(d)


async def test_protobuf_create(api: ApiClient) -> None:
    from kybernetes.api import protobuf

    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb"}, "data": {"k": "v"}})
    code, cm, _ = await api.post(CM, None, raw=body, content_type="application/vnd.kubernetes.protobuf")
    assert code == 201, cm
    assert cm["data"] == {"k": "v"}
    code, doc, _ = await api.post(CM, None, raw=b"k8s\x00\xff\xff", content_type="application/vnd.kubernetes.protobuf")
    assert code == 400


async def test_self_subject_review(api: ApiClient) -> None:
    code, r, _ = await api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201 and r["status"]["userInfo"]["username"] == "system:anonymous"


async def test_repair_frees_orphaned_allocations(api: ApiClient) -> None:
    store = api.server.store
    await store.create("/registry/ranges/serviceips/10.100.0.77", b"{}")
    await store.create("/registry/ranges/servicenodeports/31111", b"{}")
    code, svc, _ = await api.post("/api/v1/namespaces/default/services", {"metadata": {"name": "keep"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    assert code == 201
    assert await api.server.api.repair_allocations() == 2
    assert await store.get("/registry/ranges/serviceips/10.100.0.77") is None
    assert await store.get(f"/registry/ranges/serviceips/{svc['spec']['clusterIP']}") is not None
    assert await store.get(f"/registry/ranges/servicenodeports/{svc['spec']['ports'][0]['nodePort']}") is not None
    assert await store.get("/registry/ranges/serviceips/10.96.0.1") is not None


async def test_watch_cache_serves_many_watchers_from_one_store_watch(api: ApiClient) -> None:
    store = api.server.store
    base_watchers = store.statistics()["watchers"]
    _, lst, _ = await api.get(CM)
    rv = lst["metadata"]["resourceVersion"]
    n = 200
    got = [0] * n

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def watch(i: int) -> None:
        async with session.get(api.base + CM, params={"watch": "true", "resourceVersion": rv}) as r:
            async for line in r.content:
                if line.strip():
                    got[i] += 1
                if got[i] == 3:
                    return

    tasks = [asyncio.ensure_future(watch(i)) for i in range(n)]
    for _ in range(100):
        if api.server.cache.watcher_count() >= n:
            break
        await asyncio.sleep(0.05)
    assert api.server.cache.watcher_count() >= n
    for i in range(3):
        await api.post(CM, {"metadata": {"name": f"fan{i}"}})
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
    finally:
        await session.close()
    assert got == [3] * n
    # every watcher was served by the cache: the store still has only the cache's own watch
    assert store.statistics()["watchers"] == base_watchers == 1


async def test_namespace_finalize_removes_terminating_namespace(api: ApiClient) -> None:
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "fin"}}))[0] == 201
    code, ns, _ = await api.delete("/api/v1/namespaces/fin")
    assert code == 200 and ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
    ns["spec"]["finalizers"] = []
    code, out, _ = await api.put("/api/v1/namespaces/fin/finalize", ns)
    assert code == 200, out
    assert (await api.get("/api/v1/namespaces/fin"))[0] == 404


async def test_delete_races_with_concurrent_writes(api: ApiClient) -> None:
    """A plain delete is not refused because a controller wrote the object meanwhile."""
    for i in range(10):
        await api.post(DEPLOY, deployment(f"race{i}"))

    async def churn(name: str) -> None:
        for n in range(30):
            await api.patch(f"{DEPLOY}/{name}/status", {"status": {"observedGeneration": n}})

    for i in range(10):
        writer = asyncio.ensure_future(churn(f"race{i}"))
        await asyncio.sleep(0.005)
        code, doc, _ = await api.delete(f"{DEPLOY}/race{i}")
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        assert code == 200, doc


async def test_pods_get_default_toleration_seconds(api: ApiClient) -> None:
    code, p, _ = await api.post(PODS, {"metadata": {"name": "tol"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert code == 201
    tols = {(t["key"], t["effect"], t.get("tolerationSeconds")) for t in p["spec"]["tolerations"]}
    assert tols == {("node.kubernetes.io/not-ready", "NoExecute", 300), ("node.kubernetes.io/unreachable", "NoExecute", 300)}


async def test_job_gets_a_generated_selector(api: ApiClient) -> None:
    job = {"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}
    code, j, _ = await api.post("/apis/batch/v1/namespaces/default/jobs", job)
    assert code == 201, j
    uid = j["metadata"]["uid"]
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = j["spec"]["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "j" and labels["controller-uid"] == uid


async def test_pvc_gets_the_default_storage_class(api: ApiClient) -> None:
    sc = {"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}
    assert (await api.post("/apis/storage.k8s.io/v1/storageclasses", sc))[0] == 201
    pvc = {"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    code, out, _ = await api.post("/api/v1/namespaces/default/persistentvolumeclaims", pvc)
    assert code == 201 and out["spec"]["storageClassName"] == "fast"
    pvc = {"metadata": {"name": "d"}, "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    code, out, _ = await api.post("/api/v1/namespaces/default/persistentvolumeclaims", pvc)
    assert code == 201 and out["spec"]["storageClassName"] == ""
