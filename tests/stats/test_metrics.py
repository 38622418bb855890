"""metrics.k8s.io/v1beta1 in the API server: formatting, the summary cache, and real `kubectl top`."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from kybernetes.apiserver import metrics as mx
from tests.builders import make_node, make_pod
from tests.conftest import ApiClient, start_test_server

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
MiB = 1024 * 1024
GV = "/apis/metrics.k8s.io/v1beta1"


# --------------------------------------------------------------------------- pure parts
@pytest.mark.parametrize("nanocores,want", [
    pytest.param(0, "0", id="zero"),
    pytest.param(123_456_789, "123456789n", id="nanos"),
    pytest.param(5_000_000, "5m", id="exact-millis"),
    pytest.param(1_500_000, "1500u", id="micros"),
    pytest.param(2_000_000_000, "2", id="cores"),
])
def test_cpu_quantity(nanocores: int, want: str) -> None:
    assert mx.cpu_quantity(nanocores) == want


@pytest.mark.parametrize("num,want", [
    pytest.param(0, "0", id="zero"),
    pytest.param(1000, "1k", id="small-not-binary"),
    pytest.param(15400 * 1024, "15400Ki", id="kibi"),
    pytest.param(50 * MiB, "50Mi", id="mebi"),
    pytest.param(1025, "1025", id="bytes"),
])
def test_memory_quantity(num: int, want: str) -> None:
    assert mx.memory_quantity(num) == want


@pytest.mark.parametrize("seconds,want", [
    pytest.param(10, "10s", id="10s"), pytest.param(10.5, "10.5s", id="fraction"),
    pytest.param(90, "1m30s", id="minutes"), pytest.param(3600, "1h0m0s", id="hour"),
    pytest.param(0.25, "250ms", id="millis"), pytest.param(0, "0s", id="zero"),
])
def test_go_duration(seconds: float, want: str) -> None:
    assert mx.go_duration(seconds) == want


def _c(name: str, nanocores: int | None, ws: int, t: str = "2024-05-01T10:00:00Z") -> dict[str, Any]:
    cpu: dict[str, Any] = {"time": t, "usageCoreNanoSeconds": 1}
    if nanocores is not None:
        cpu["usageNanoCores"] = nanocores
    return {"name": name, "cpu": cpu, "memory": {"time": t, "workingSetBytes": ws, "usageBytes": ws}}


def test_pod_metrics_shape_and_incomplete_pods() -> None:
    pod = make_pod("web", "default", node="n1", labels={"app": "web"})
    stats = {"podRef": {"name": "web", "namespace": "default", "uid": "u"},
             "containers": [_c("app", 100_000_000, 50 * MiB), _c("side", 1_500_000, 1024, "2024-05-01T10:00:05Z")]}
    item = mx.pod_metrics(pod, stats, now="NOW", window="10s")
    assert item == {
        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "NOW", "labels": {"app": "web"}},
        "timestamp": "2024-05-01T10:00:05Z", "window": "10s",
        "containers": [{"name": "app", "usage": {"cpu": "100m", "memory": "50Mi"}},
                       {"name": "side", "usage": {"cpu": "1500u", "memory": "1Ki"}}],
    }
    stats["containers"].append(_c("new", None, 1))
    assert mx.pod_metrics(pod, stats, now="NOW", window="10s") is None


def test_find_pod_stats_ignores_an_older_pod_of_the_same_name() -> None:
    index = mx.pod_stats_index({"n1": {"pods": [{"podRef": {"name": "web", "namespace": "default", "uid": "old"}}]}})
    pod = make_pod("web", "default", node="n1", uid="new")
    assert mx.find_pod_stats(index, pod) is None
    pod["metadata"]["uid"] = "old"
    assert mx.find_pod_stats(index, pod) is not None
    pod["spec"]["nodeName"] = "n2"
    assert mx.find_pod_stats(index, pod) is None


def test_discovery_documents() -> None:
    rl = mx.api_resource_list()
    assert rl["groupVersion"] == "metrics.k8s.io/v1beta1"
    assert [(r["name"], r["kind"], r["namespaced"], r["verbs"]) for r in rl["resources"]] == [
        ("nodes", "NodeMetrics", False, ["get", "list"]), ("pods", "PodMetrics", True, ["get", "list"])]
    g = mx.group_list_with_metrics({"kind": "APIGroupList", "groups": [{"name": "apps"}]})
    assert g["groups"][-1] == {"name": "metrics.k8s.io",
                               "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                               "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}}
    agg = mx.aggregated_with_metrics({"items": []})["items"][0]
    assert agg["metadata"]["name"] == "metrics.k8s.io"
    assert {r["resource"]: r["scope"] for r in agg["versions"][0]["resources"]} == {"nodes": "Cluster", "pods": "Namespaced"}


async def test_summary_cache_shares_fetches_caches_failures_and_skips_slow_nodes() -> None:
    calls: list[str] = []
    now = [0.0]

    async def fetch(node: dict[str, Any]) -> dict[str, Any]:
        name = node["metadata"]["name"]
        calls.append(name)
        if name == "bad":
            raise ConnectionRefusedError("refused")
        if name == "slow":
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.01)
        return {"node": {"nodeName": name}}

    cache = mx.SummaryCache(fetch, ttl=5.0, timeout=0.2, fetch_timeout=5.0, clock=lambda: now[0])
    nodes = [make_node(n) for n in ("a", "bad", "slow")]
    try:
        r1, r2 = await asyncio.gather(cache.get_many(nodes), cache.get_many(nodes))
        assert set(r1) == set(r2) == {"a"}
        assert sorted(calls) == ["a", "bad", "slow"], "concurrent requests share one fetch per node"
        await asyncio.sleep(0.5)  # the slow fetch completes in the background and is cached
        assert set(await cache.get_many(nodes)) == {"a", "slow"}
        assert len(calls) == 3, "fresh entries and cached failures are not fetched again"
        now[0] = 10.0
        await cache.get_many(nodes)
        assert len(calls) == 6
    finally:
        await cache.close()


# --------------------------------------------------------------------------- API server + kubectl
class FakeKubelets:
    """Summaries per node name, as kubelets would serve them at /stats/summary."""

    def __init__(self) -> None:
        self.summaries: dict[str, dict[str, Any]] = {}
        self.failing: set[str] = set()
        self.calls: list[str] = []

    async def fetch(self, node: dict[str, Any]) -> dict[str, Any]:
        name = node["metadata"]["name"]
        self.calls.append(name)
        if name in self.failing:
            raise ConnectionRefusedError(f"kubelet on {name} refused the connection")
        return self.summaries[name]


def node_summary(name: str, nanocores: int, ws: int, pods: list[dict[str, Any]]) -> dict[str, Any]:
    t = "2024-05-01T10:00:00Z"
    return {"node": {"nodeName": name, "cpu": {"time": t, "usageNanoCores": nanocores, "usageCoreNanoSeconds": 9},
                     "memory": {"time": t, "workingSetBytes": ws, "usageBytes": ws, "availableBytes": 1}},
            "pods": pods}


def pod_summary(ns: str, name: str, containers: list[dict[str, Any]], uid: str = "") -> dict[str, Any]:
    return {"podRef": {"name": name, "namespace": ns, "uid": uid}, "containers": containers}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[ApiClient, FakeKubelets, dict[str, str]]]:
    from kybernetes.storage import open_store

    kubelets = FakeKubelets()
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    server, task, port = await start_test_server(store, extra={"metrics_fetch_summary": kubelets.fetch})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters: [{{name: t, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: t, user: {}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t}}]\n")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path),
           "KUBECACHEDIR": str(tmp_path / "cache")}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = ApiClient(f"http://127.0.0.1:{port}", session, server)
        try:
            await populate(api, kubelets)
            yield api, kubelets, env
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            await store.close()


async def _create(api: ApiClient, path: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
    code, body, _ = await api.post(path, obj)
    assert code == 201, body
    body["status"] = status
    code, body, _ = await api.put(f"{path}/{body['metadata']['name']}/status", body)
    assert code == 200, body


async def populate(api: ApiClient, kubelets: FakeKubelets) -> None:
    for name, ready in (("node-a", True), ("node-b", True), ("node-c", False), ("node-d", True)):
        n = make_node(name, cpu="2", memory="4Gi", labels={"pool": "x" if name != "node-b" else "y"})
        status = n.pop("status")
        if not ready:
            status["conditions"] = [{"type": "Ready", "status": "False"}]
        await _create(api, "/api/v1/nodes", n, status)
    code, body, _ = await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert code == 201, body
    running = {"phase": "Running", "startTime": "2024-05-01T09:00:00Z"}
    pods = [("default", "web", "node-a", {"app": "web"}, running),
            ("default", "idle", "node-a", {"app": "idle"}, running),      # no stats on its kubelet
            ("default", "pending", "node-a", {"app": "web"}, {"phase": "Pending"}),
            ("team", "db", "node-b", {"app": "db"}, running),
            ("team", "lost", "node-d", {"app": "db"}, running)]            # its kubelet fails
    uids = {}
    for ns, name, node, labels, status in pods:
        p = make_pod(name, ns, node=node, labels=labels,
                     containers=[{"name": "app", "image": "busybox"}, {"name": "side", "image": "busybox"}]
                     if name == "web" else None)
        p.pop("status", None)
        await _create(api, f"/api/v1/namespaces/{ns}/pods", p, status)
        code, body, _ = await api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
        uids[name] = body["metadata"]["uid"]
    kubelets.summaries["node-a"] = node_summary("node-a", 250_000_000, 1024 * MiB, [
        pod_summary("default", "web", [_c("app", 100_000_000, 50 * MiB), _c("side", 1_500_000, 3 * MiB)], uids["web"]),
        pod_summary("default", "pending", [_c("c", 1, 1)], uids["pending"]),
    ])
    kubelets.summaries["node-b"] = node_summary("node-b", 1_000_000_000, 2048 * MiB, [
        pod_summary("team", "db", [_c("c", 333_000_000, 200 * MiB)], uids["db"]),
    ])
    kubelets.summaries["node-c"] = node_summary("node-c", 1, 1, [])
    kubelets.failing.add("node-d")


async def kubectl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(KUBECTL, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def test_api_lists_gets_and_errors(cluster: tuple[ApiClient, FakeKubelets, dict[str, str]]) -> None:
    api, kubelets, _ = cluster
    code, doc, _ = await api.get(f"{GV}/nodes")
    assert code == 200 and doc["kind"] == "NodeMetricsList"
    assert [(i["metadata"]["name"], i["usage"]) for i in doc["items"]] == [
        ("node-a", {"cpu": "250m", "memory": "1Gi"}), ("node-b", {"cpu": "1", "memory": "2Gi"})]
    assert doc["items"][0]["window"] == "10s" and doc["items"][0]["timestamp"] == "2024-05-01T10:00:00Z"
    assert "node-c" not in kubelets.calls, "a NotReady node is not scraped"
    code, doc, _ = await api.get(f"{GV}/nodes", params={"labelSelector": "pool=y"})
    assert [i["metadata"]["name"] for i in doc["items"]] == ["node-b"]
    assert doc["items"][0]["metadata"]["labels"]["pool"] == "y"
    code, doc, _ = await api.get(f"{GV}/nodes/node-a")
    assert code == 200 and doc["kind"] == "NodeMetrics" and doc["usage"]["cpu"] == "250m"
    code, doc, _ = await api.get(f"{GV}/nodes/node-d")
    assert (code, doc["message"]) == (404, 'nodemetrics.metrics.k8s.io "node-d" not found')
    code, doc, _ = await api.get(f"{GV}/nodes/nope")
    assert (code, doc["reason"], doc["message"]) == (404, "NotFound", 'node "nope" not found')

    code, doc, _ = await api.get(f"{GV}/pods")
    assert code == 200 and doc["kind"] == "PodMetricsList"
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in doc["items"]] == [("default", "web"), ("team", "db")]
    code, doc, _ = await api.get(f"{GV}/namespaces/default/pods", params={"labelSelector": "app=web"})
    assert [i["metadata"]["name"] for i in doc["items"]] == ["web"]
    assert doc["items"][0]["containers"] == [{"name": "app", "usage": {"cpu": "100m", "memory": "50Mi"}},
                                             {"name": "side", "usage": {"cpu": "1500u", "memory": "3Mi"}}]
    code, doc, _ = await api.get(f"{GV}/namespaces/team/pods", params={"fieldSelector": "metadata.name=db"})
    assert [i["metadata"]["name"] for i in doc["items"]] == ["db"]
    code, doc, _ = await api.get(f"{GV}/namespaces/default/pods/web")
    assert code == 200 and doc["kind"] == "PodMetrics" and doc["metadata"]["labels"] == {"app": "web"}
    for name in ("idle", "pending"):
        code, doc, _ = await api.get(f"{GV}/namespaces/default/pods/{name}")
        assert (code, doc["reason"], doc["message"]) == (404, "NotFound", f'podmetrics.metrics.k8s.io "default/{name}" not found')
    code, doc, _ = await api.get(f"{GV}/namespaces/default/pods/nope")
    assert (code, doc["message"]) == (404, 'pod "nope" not found')
    code, doc, _ = await api.post(f"{GV}/nodes", {})
    assert code == 405
    code, doc, _ = await api.get(f"{GV}/namespaces/default/nodes")
    assert code == 404
    code, doc, _ = await api.get(f"{GV}/nodes", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert doc["kind"] == "Table" and [r["cells"] for r in doc["rows"]] == [["node-a", "250m", "1Gi", "10s"], ["node-b", "1", "2Gi", "10s"]]
    code, doc, _ = await api.get(f"{GV}/namespaces/default/pods/web", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert doc["rows"][0]["cells"] == ["web", "101500u", "53Mi", "10s"]


async def test_discovery_lists_the_group(cluster: tuple[ApiClient, FakeKubelets, dict[str, str]]) -> None:
    api, _, _ = cluster
    code, doc, _ = await api.get("/apis")
    assert "metrics.k8s.io" in [g["name"] for g in doc["groups"]]
    code, doc, _ = await api.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    assert "metrics.k8s.io" in [i["metadata"]["name"] for i in doc["items"]]
    code, doc, _ = await api.get("/apis/metrics.k8s.io")
    assert code == 200 and doc["kind"] == "APIGroup" and doc["preferredVersion"]["version"] == "v1beta1"
    code, doc, _ = await api.get(GV)
    assert code == 200 and doc["kind"] == "APIResourceList" and len(doc["resources"]) == 2


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")
async def test_kubectl_top(cluster: tuple[ApiClient, FakeKubelets, dict[str, str]]) -> None:
    _, _, env = cluster
    code, out, err = await kubectl(env, "top", "node")
    assert code == 0, err
    table = rows(out)
    assert table[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    by_name = {r[0]: r[1:] for r in table[1:]}
    # 250m of 2 cores = 12%, 1Gi of 4Gi = 25%; 1 core = 50%, 2Gi = 50%
    assert by_name["node-a"] == ["250m", "12%", "1024Mi", "25%"]
    assert by_name["node-b"] == ["1000m", "50%", "2048Mi", "50%"]
    # nodes without metrics (NotReady, failing kubelet) are listed as unknown by kubectl
    for n in ("node-c", "node-d"):
        assert by_name[n] == ["<unknown>"] * 4

    code, out, err = await kubectl(env, "top", "node", "-l", "pool=y", "--no-headers")
    assert code == 0, err
    assert rows(out) == [["node-b", "1000m", "50%", "2048Mi", "50%"]]

    code, out, err = await kubectl(env, "top", "pod", "-A")
    assert code == 0, err
    assert rows(out) == [["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"],
                         ["default", "web", "102m", "53Mi"],     # 100m + 1.5m rounded up; 50Mi + 3Mi
                         ["team", "db", "333m", "200Mi"]]

    code, out, err = await kubectl(env, "top", "pod", "--containers", "-n", "default")
    assert code == 0, err
    assert rows(out) == [["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
                         ["web", "app", "100m", "50Mi"],
                         ["web", "side", "2m", "3Mi"]]

    code, out, err = await kubectl(env, "top", "pod", "-n", "team", "-l", "app=db")
    assert code == 0, err
    assert rows(out) == [["NAME", "CPU(cores)", "MEMORY(bytes)"], ["db", "333m", "200Mi"]]

    code, out, err = await kubectl(env, "top", "pod", "idle")
    assert code != 0
    assert 'Error from server (NotFound): podmetrics.metrics.k8s.io "default/idle" not found' in err

    code, out, err = await kubectl(env, "get", "--raw", f"{GV}/namespaces/team/pods/db")
    assert code == 0 and '"kind":"PodMetrics"' in out

    code, out, err = await kubectl(env, "get", "podmetrics", "-n", "default")
    assert code == 0, err
    assert rows(out) == [["NAME", "CPU", "MEMORY", "WINDOW"], ["web", "101500u", "53Mi", "10s"]]
    code, out, err = await kubectl(env, "get", "nodemetrics", "node-b", "-o", "jsonpath={.usage.cpu}")
    assert (code, out) == (0, "1"), err
