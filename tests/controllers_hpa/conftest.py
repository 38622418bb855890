"""Fixtures for the HPA integration tests: the in-process API server, the ReplicaSet and Deployment
controllers, a fake kubelet (pods go Running/Ready), and the HPA controller on a fake clock with a
fake MetricsClient (the test seam) whose usage the test sets."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from kybernetes.api.quantity import milli_value
from kybernetes.client import ApiClient, EventRecorder, InformerFactory
from kybernetes.client.resources import DEPLOYMENTS, EVENTS, HORIZONTALPODAUTOSCALERS, PODS
from kybernetes.client.rest import RetryPolicy
from kybernetes.controllers.deployment import DeploymentController
from kybernetes.controllers.hpa import HorizontalController
from kybernetes.controllers.hpa_calc import MetricSample, PodMetric
from kybernetes.controllers.metricsclient import MetricsError
from kybernetes.controllers.replicaset import ReplicaSetController
from kybernetes.kubelet.fake import FakeKubelet, fake_node_configs
from kybernetes.util.clock import FakeClock
from tests import harness

Obj = dict[str, Any]
NODE = "sim-1"


def wait_for(*args: Any, **kw: Any) -> Any:
    kw.setdefault("timeout", 20.0)
    return harness.wait_for(*args, **kw)


@pytest.fixture
async def client(api: Any) -> AsyncIterator[ApiClient]:
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


def is_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or ())


class FakeMetrics:
    """``MetricsClient`` that reports every Running+Ready pod using ``percent`` of its request."""

    def __init__(self, client: ApiClient, clock: FakeClock) -> None:
        self.client = client
        self.clock = clock
        self.percent = 0
        self.error: str | None = None
        self.calls: list[tuple[str, str, str, str]] = []

    async def get_resource_metric(self, resource: str, namespace: str, selector: str,
                                  container: str = "") -> MetricSample:
        self.calls.append((resource, namespace, selector, container))
        if self.error is not None:
            raise MetricsError(self.error)
        items, _ = await self.client.list_all(PODS, namespace, label_selector=selector)
        now = self.clock.wall()
        out: dict[str, PodMetric] = {}
        for pod in items:
            if not is_ready(pod):
                continue
            request = sum(milli_value(((c.get("resources") or {}).get("requests") or {}).get(resource, 0))
                          for c in pod["spec"]["containers"] if not container or c["name"] == container)
            out[pod["metadata"]["name"]] = PodMetric(request * self.percent // 100, now, 15.0)
        if not out:
            raise MetricsError("no metrics returned from resource metrics API")
        return MetricSample(out, now)


@dataclass
class Env:
    client: ApiClient
    hpa: HorizontalController
    metrics: FakeMetrics
    clock: FakeClock
    recorder: EventRecorder

    async def tick(self, seconds: float) -> None:
        """Advance the controller's clock by ``seconds`` and wait for the syncs that become due."""
        await self.idle()
        before = self.hpa.syncs
        self.clock.advance(seconds)
        await wait_for(lambda: self.hpa.syncs > before and self._quiet(), what="an HPA resync")

    def _quiet(self) -> bool:
        st = self.hpa.queue.statistics()
        return st["depth"] == 0 and st["processing"] == 0

    async def idle(self) -> None:
        await wait_for(self._quiet, what="HPA controller idle")

    async def deployment_ready(self, name: str, replicas: int) -> None:
        async def ok() -> bool:
            d = await self.client.get(DEPLOYMENTS, name, "default")
            st = d.get("status") or {}
            return d["spec"]["replicas"] == replicas and st.get("readyReplicas", 0) == replicas and \
                st.get("replicas", 0) == replicas
        await wait_for(ok, what=f"deployment {name} at {replicas} ready replicas")

    async def replicas(self, name: str) -> int:
        return int((await self.client.get(DEPLOYMENTS, name, "default"))["spec"]["replicas"])

    async def hpa_status(self, name: str) -> Obj:
        return (await self.client.get(HORIZONTALPODAUTOSCALERS, name, "default")).get("status") or {}

    async def events(self, name: str) -> list[Obj]:
        await self.recorder.wait_for_idle()
        items, _ = await self.client.list_all(EVENTS, "default", field_selector=f"involvedObject.name={name}")
        return items


@contextlib.asynccontextmanager
async def environment(client: ApiClient, **hpa_kw: Any) -> AsyncIterator[Env]:
    # pods start "now" in real time; the controller's wall clock runs an hour ahead, so every pod
    # is past its cpu initialization period and every sample is fresh (see hpa_calc.group_pods)
    clock = FakeClock(wall_start=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    factory = InformerFactory(client)
    recorder = EventRecorder(client, "controller-manager", "test")
    metrics = FakeMetrics(client, clock)
    hpa = HorizontalController(client, factory=factory, recorder=recorder, clock=clock, metrics=metrics, **hpa_kw)
    rs = ReplicaSetController(client, factory=factory)
    deploy = DeploymentController(client, factory=factory)
    kubelet = FakeKubelet(client, fake_node_configs(1), lease_interval=0.5, pod_workers=8, node_workers=1,
                          stop_seconds=0.05)
    tasks = [asyncio.ensure_future(c) for c in (factory.run(), recorder.run(), hpa.run(), rs.run(), deploy.run(),
                                                kubelet.run())]
    try:
        await factory.wait_for_sync(timeout=10)
        await asyncio.wait_for(kubelet.registered.wait(), 10)
        yield Env(client, hpa, metrics, clock, recorder)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


def deployment(name: str, replicas: int = 1, cpu: str = "100m") -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"nodeName": NODE, "containers": [
                                      {"name": "app", "image": "busybox",
                                       "resources": {"requests": {"cpu": cpu}}}]}}}}


def hpa_body(name: str, target: str, *, min_replicas: int = 1, max_replicas: int = 10, percent: int = 50,
             behavior: Obj | None = None, kind: str = "Deployment", api_version: str = "apps/v1") -> Obj:
    spec: Obj = {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target},
                 "minReplicas": min_replicas, "maxReplicas": max_replicas,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": spec}


def condition(status: Obj, type_: str) -> tuple[str, str, str]:
    c = next((c for c in status.get("conditions") or () if c["type"] == type_), None)
    assert c is not None, f"no {type_} condition in {status}"
    return c["status"], c["reason"], c["message"]
