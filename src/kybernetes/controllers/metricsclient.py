"""Resource metrics for the HorizontalPodAutoscaler, from ``metrics.k8s.io/v1beta1`` PodMetrics.

    metrics: MetricsClient = RestMetricsClient(api_client)
    sample = await metrics.get_resource_metric("cpu", "default", "app=web")   # MetricSample
    sample.pods["web-1"].value                                                 # millicores

``MetricsClient`` is the seam: the controller only needs ``get_resource_metric``, tests pass a fake.
The real client lists ``/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector=...``
(PodMetrics as metrics-server serves them: ``metadata{name,namespace}``, ``timestamp``, ``window``,
``containers[]{name, usage{cpu, memory}}``) and sums the containers' usage per pod, as upstream's
``resourceMetricsClient`` does: a pod with no containers or a container without the resource has no
sample; for a ContainerResource metric every pod must report the container. Errors raise
``MetricsError`` with upstream's messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..api import errors as api_errors
from ..api.meta import parse_time
from ..api.quantity import milli_value
from ..client.errors import ApiError, NotFound, TransportError
from ..client.resources import Resource
from ..util.duration import parse_seconds
from .hpa_calc import MetricSample, PodMetric

if TYPE_CHECKING:
    from ..client.rest import ApiClient

Obj = dict[str, Any]

POD_METRICS = Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True)
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


class MetricsError(Exception):
    """The metrics API gave no usable answer (message as upstream's metrics client words it)."""


class MetricsClient(Protocol):
    async def get_resource_metric(self, resource: str, namespace: str, selector: str,
                                  container: str = "") -> MetricSample:
        """Per pod matching ``selector`` (label selector syntax) its usage of ``resource`` (``cpu``,
        ``memory``) in milli-units, summed over its containers or of ``container`` only."""
        ...




def parse_duration(text: Any) -> float:
    """Seconds in a Go duration string (``"30s"``, ``"1m0.5s"``, ``"10.062s"``); 0 if unparseable."""
    return parse_seconds(text) or 0.0


def _milli(value: Any) -> int | None:
    try:
        return milli_value(value)
    except (ValueError, TypeError, api_errors.StatusError):
        return None


def _sample_meta(item: Mapping[str, Any]) -> tuple[dt.datetime, float]:
    ts = item.get("timestamp")
    return (parse_time(ts) if isinstance(ts, str) else None) or _EPOCH, parse_duration(item.get("window"))


def pod_metrics_info(items: Iterable[Mapping[str, Any]], resource: str, container: str = "") -> dict[str, PodMetric]:
    """Pod name -> sample from PodMetrics items (upstream ``getPodMetrics`` / ``getContainerMetrics``)."""
    out: dict[str, PodMetric] = {}
    for item in items:
        md = item.get("metadata") or {}
        name = str(md.get("name") or "")
        ts, window = _sample_meta(item)
        containers = list(item.get("containers") or ())
        if container:
            c = next((c for c in containers if c.get("name") == container), None)
            if c is None:
                raise MetricsError(f"failed to get container metrics: container {container} not present in "
                                   f"metrics for pod {md.get('namespace')}/{name}")
            value = _milli((c.get("usage") or {}).get(resource))
            if value is not None:
                out[name] = PodMetric(value, ts, window)
            continue
        if not containers:
            continue
        total = 0
        for c in containers:
            value = _milli((c.get("usage") or {}).get(resource))
            if value is None:
                break
            total += value
        else:
            out[name] = PodMetric(total, ts, window)
    return out


def metric_sample(doc: Mapping[str, Any] | None, resource: str, container: str = "") -> MetricSample:
    """A PodMetricsList document as a MetricSample (timestamp: the first item's)."""
    items = list((doc or {}).get("items") or ())
    if not items:
        raise MetricsError("no metrics returned from resource metrics API")
    pods = pod_metrics_info(items, resource, container)
    return MetricSample(pods, _sample_meta(items[0])[0])


def _api_error_text(e: Exception) -> str:
    text = str(e)
    if isinstance(e, NotFound) and text == "the server could not find the requested resource":
        text += " (get pods.metrics.k8s.io)"
    return text


class RestMetricsClient:
    """``MetricsClient`` over the API server's ``metrics.k8s.io`` (through our ``ApiClient``)."""

    def __init__(self, client: ApiClient, *, timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout

    async def get_resource_metric(self, resource: str, namespace: str, selector: str,
                                  container: str = "") -> MetricSample:
        try:
            doc = await self.client.request("GET", POD_METRICS.path(namespace),
                                            params={"labelSelector": selector or None}, timeout=self.timeout)
        except (ApiError, TransportError) as e:
            raise MetricsError(f"unable to fetch metrics from resource metrics API: {_api_error_text(e)}") from None
        return metric_sample(doc, resource, container)
