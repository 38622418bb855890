"""Plain-dict builders for the HPA tests (pods, HPAs, Scales, metric samples)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kybernetes.controllers.hpa_calc import MetricSample, PodMetric

Obj = dict[str, Any]

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def ts(seconds_before_now: float = 0.0) -> str:
    return (NOW - dt.timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, *, cpu: str | None = "1", memory: str | None = None, phase: str = "Running",
        ready: str | None = "True", started: float | None = 3600.0, transition: float | None = 3000.0,
        deleting: bool = False, labels: dict[str, str] | None = None, containers: list[Obj] | None = None,
        init_containers: list[Obj] | None = None, ns: str = "default") -> Obj:
    """A pod with one container requesting ``cpu``/``memory``; ``started`` / ``transition``: seconds
    before NOW of ``status.startTime`` and of the Ready condition's last transition."""
    if containers is None:
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
        containers = [{"name": "app", "image": "x", "resources": {"requests": requests}}]
    spec: Obj = {"containers": containers}
    if init_containers:
        spec["initContainers"] = init_containers
    md: Obj = {"name": name, "namespace": ns, "labels": dict(labels or {"app": "web"})}
    if deleting:
        md["deletionTimestamp"] = ts(0)
    status: Obj = {"phase": phase}
    if started is not None:
        status["startTime"] = ts(started)
    if ready is not None:
        cond: Obj = {"type": "Ready", "status": ready}
        if transition is not None:
            cond["lastTransitionTime"] = ts(transition)
        status["conditions"] = [cond]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def sample(values: dict[str, int], *, age: float = 0.0, window: float = 30.0) -> MetricSample:
    """Samples (milli-units) all taken ``age`` seconds before NOW."""
    at = NOW - dt.timedelta(seconds=age)
    return MetricSample({k: PodMetric(v, at, window) for k, v in values.items()}, at)


def hpa(name: str = "web", *, min_replicas: int | None = 1, max_replicas: int = 10, target: int | None = 50,
        metrics: list[Obj] | None = None, behavior: Obj | None = None, status: Obj | None = None,
        kind: str = "Deployment", api_version: str = "apps/v1", target_name: str = "web",
        ns: str = "default") -> Obj:
    spec: Obj = {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target_name},
                 "maxReplicas": max_replicas}
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if metrics is not None:
        spec["metrics"] = metrics
    elif target is not None:
        spec["metrics"] = [cpu_metric(target)]
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-hpa-{name}", "resourceVersion": "7"},
            "spec": spec, "status": dict(status or {})}


def cpu_metric(utilization: int | None = None, *, average_value: str | None = None, name: str = "cpu") -> Obj:
    target: Obj = {"type": "Utilization", "averageUtilization": utilization} if average_value is None \
        else {"type": "AverageValue", "averageValue": average_value}
    return {"type": "Resource", "resource": {"name": name, "target": target}}


def container_metric(container: str, utilization: int, name: str = "cpu") -> Obj:
    return {"type": "ContainerResource", "containerResource": {
        "name": name, "container": container,
        "target": {"type": "Utilization", "averageUtilization": utilization}}}


def scale(replicas: int, selector: str | None = "app=web", name: str = "web") -> Obj:
    status: Obj = {"replicas": replicas}
    if selector is not None:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": "3"},
            "spec": {"replicas": replicas}, "status": status}


def pods(n: int, **kw: Any) -> tuple[Obj, ...]:
    return tuple(pod(f"web-{i}", **kw) for i in range(n))
