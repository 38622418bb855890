"""The metrics.k8s.io client: PodMetrics parsing (pure) and the real request over a socket."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.controllers.hpa_calc import PodMetric
from kybernetes.controllers.metricsclient import (
    MetricsError,
    RestMetricsClient,
    metric_sample,
    parse_duration,
    pod_metrics_info,
)

Obj = dict[str, Any]
T = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def item(name: str, *containers: tuple[str, dict[str, str]], window: str = "10.5s",
         timestamp: str = "2024-05-01T12:00:00Z") -> Obj:
    """A PodMetrics as metrics-server serves it."""
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T12:00:05Z"},
            "timestamp": timestamp, "window": window,
            "containers": [{"name": c, "usage": dict(u)} for c, u in containers]}


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("10.062s", 10.062), ("1m0s", 60.0), ("1m30.5s", 90.5), ("500ms", 0.5), ("1h", 3600.0),
    ("0", 0.0), ("", 0.0), ("bogus", 0.0), (None, 0.0), ("15", 0.0),
])
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_pod_metrics_sum_containers() -> None:
    items = [item("a", ("app", {"cpu": "250m", "memory": "10Mi"}), ("side", {"cpu": "1500000n", "memory": "1Mi"})),
             item("b"),                                                  # no containers: no sample
             item("c", ("app", {"memory": "5Mi"}))]                      # no cpu: no sample
    assert pod_metrics_info(items, "cpu") == {"a": PodMetric(252, T, 10.5)}
    mem = pod_metrics_info(items, "memory")
    assert mem["a"].value == 11 * 1024 * 1024 * 1000 and mem["c"].value == 5 * 1024 * 1024 * 1000


def test_container_metrics() -> None:
    items = [item("a", ("app", {"cpu": "250m"}), ("side", {"cpu": "5m"})), item("b", ("side", {"memory": "1Mi"}))]
    assert pod_metrics_info(items, "cpu", "side") == {"a": PodMetric(5, T, 10.5)}
    with pytest.raises(MetricsError, match="^failed to get container metrics: container app not present in "
                                           "metrics for pod default/b$"):
        pod_metrics_info(items, "cpu", "app")


def test_empty_list_is_an_error() -> None:
    with pytest.raises(MetricsError, match="^no metrics returned from resource metrics API$"):
        metric_sample({"items": []}, "cpu")
    s = metric_sample({"items": [item("a", ("app", {"cpu": "1"}), timestamp="2024-05-01T11:59:00Z")]}, "cpu")
    assert s.timestamp == T - dt.timedelta(minutes=1) and s.pods["a"].value == 1000


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[Obj]]]:
    """A stand-in for the API server's metrics.k8s.io on a loopback socket."""
    seen: list[Obj] = []

    async def pods(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query)})
        if request.match_info["ns"] == "missing":
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "message": "the server could not find the requested resource",
                                      "reason": "NotFound", "code": 404}, status=404)
        return web.json_response({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": [item("web-1", ("app", {"cpu": "120m"}))]})

    app = web.Application()
    app.router.add_get("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", pods)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_rest_client(server: tuple[str, list[Obj]]) -> None:
    base, seen = server
    api = ApiClient(base, timeout=5.0, retry=RetryPolicy(attempts=1))
    try:
        metrics = RestMetricsClient(api)
        got = await metrics.get_resource_metric("cpu", "default", "app=web,tier in (a,b)")
        assert got.pods == {"web-1": PodMetric(120, T, 10.5)}
        assert seen[-1] == {"path": "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                            "query": {"labelSelector": "app=web,tier in (a,b)"}}
        with pytest.raises(MetricsError) as e:
            await metrics.get_resource_metric("cpu", "missing", "app=web")
        assert str(e.value) == ("unable to fetch metrics from resource metrics API: the server could not find the "
                                "requested resource (get pods.metrics.k8s.io)")
    finally:
        await api.close()
