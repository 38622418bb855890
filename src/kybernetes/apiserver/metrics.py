"""``metrics.k8s.io/v1beta1`` served inside the API server, as if metrics-server were aggregated.

    GET /apis/metrics.k8s.io/v1beta1/nodes[/<name>]                      NodeMetrics(List)
    GET /apis/metrics.k8s.io/v1beta1/pods                                 PodMetricsList, all namespaces
    GET /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods[/<name>]        PodMetrics(List)

Usage comes from each Ready node's kubelet Summary API (``/stats/summary``), read through an
injected ``fetch_summary(node) -> dict`` (awaitable) and cached for ``cache_ttl`` seconds; a node
whose kubelet fails or does not answer in time is skipped, as metrics-server skips it. What each
resource reports, as metrics-server does:

* NodeMetrics: the node's CPU rate (``usageNanoCores``) and memory working set;
* PodMetrics: one entry per container; only Running pods, only pods whose every reported container
  has both numbers; labels copied from the pod (node labels likewise), ``labelSelector`` and
  ``fieldSelector`` select the pods/nodes.

Quantities use the canonical forms metrics-server's produce: CPU as a decimal quantity scaled from
nanocores (``"12345n"``, ``"5m"``), memory as a binary quantity of bytes (``"1024Ki"``).
``window`` is the kubelet's sampling interval, over which its rates are computed.

Errors follow metrics-server: a pod or node that does not exist answers the lister's NotFound
(``pod "x" not found``); one that exists without metrics answers
``podmetrics.metrics.k8s.io "<ns>/<name>" not found`` / ``nodemetrics.metrics.k8s.io "<name>" not found``.

Discovery: ``group_list_with_metrics`` / ``aggregated_with_metrics`` add the group to the ``/apis``
documents; ``MetricsApi.handle`` answers the group, version and resource paths.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any, Protocol

from aiohttp import web

from ..util.duration import go_duration
from ..api import errors
from ..api import meta as m
from ..api.fields import FieldSelector, parse_field_selector
from ..api.labels import Selector, parse_selector
from ..api.quantity import BINARY_SI, DECIMAL_SI, format_quantity, parse_quantity
from ..api.resources import ResourceInfo
from . import discovery
from .handlers import json_response, wants_table
from .registry import Registry
from .rest import ListOptions

log = logging.getLogger(__name__)
Obj = dict[str, Any]

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
DEFAULT_WINDOW = 10.0      # seconds: the kubelet's stats sampling interval (kubelet/stats.py)
DEFAULT_CACHE_TTL = 5.0
DEFAULT_TIMEOUT = 5.0        # how long a request waits for kubelets
DEFAULT_FETCH_TIMEOUT = 15.0  # how long one summary fetch may take

NODE_METRICS = ResourceInfo(group=GROUP, version=VERSION, kind="NodeMetrics", plural="nodes",
                            singular="", namespaced=False, verbs=("get", "list"))
POD_METRICS = ResourceInfo(group=GROUP, version=VERSION, kind="PodMetrics", plural="pods",
                           singular="", namespaced=True, verbs=("get", "list"))
_REGISTRY = Registry((NODE_METRICS, POD_METRICS))

SummaryFetcher = Callable[[Obj], "Awaitable[Obj] | Obj"]


# --------------------------------------------------------------------------- discovery (pure)
def api_group() -> Obj:
    doc = discovery.api_group(_REGISTRY, GROUP)
    assert doc is not None
    return doc


def api_resource_list() -> Obj:
    doc = discovery.api_resource_list(_REGISTRY, GROUP, VERSION)
    assert doc is not None
    return doc


def group_list_with_metrics(doc: Obj) -> Obj:
    """``/apis`` (APIGroupList) with the metrics group appended (aggregated groups come last)."""
    entry = {k: v for k, v in api_group().items() if k not in ("kind", "apiVersion")}
    return {**doc, "groups": [*doc.get("groups", []), entry]}


def aggregated_with_metrics(doc: Obj) -> Obj:
    """``/apis`` aggregated discovery (APIGroupDiscoveryList) with the metrics group appended."""
    items = discovery.aggregated(_REGISTRY, core=False)["items"]
    return {**doc, "items": [*doc.get("items", []), *items]}


# --------------------------------------------------------------------------- formatting (pure)
def cpu_quantity(nanocores: int) -> str:
    """Nanocores as metrics-server writes them (``resource.NewScaledQuantity(n, -9)``)."""
    return format_quantity(Fraction(int(nanocores), 10**9), DECIMAL_SI)


def memory_quantity(num_bytes: int) -> str:
    """Bytes as metrics-server writes them (``resource.NewQuantity(n, BinarySI)``)."""
    return format_quantity(Fraction(int(num_bytes)), BINARY_SI)


def _usage(cpu: Obj | None, mem: Obj | None) -> Obj | None:
    if not cpu or not mem or "usageNanoCores" not in cpu or "workingSetBytes" not in mem:
        return None
    return {"cpu": cpu_quantity(cpu["usageNanoCores"]), "memory": memory_quantity(mem["workingSetBytes"])}


def _meta(obj: Obj, now: str, namespaced: bool) -> Obj:
    md = obj.get("metadata") or {}
    out: Obj = {"name": md.get("name", "")}
    if namespaced:
        out["namespace"] = md.get("namespace", "")
    out["creationTimestamp"] = now
    if md.get("labels"):
        out["labels"] = dict(md["labels"])
    return out


def node_metrics(node: Obj, summary: Obj, *, now: str, window: str) -> Obj | None:
    """The NodeMetrics of ``node`` from its kubelet's summary; None without a CPU rate/memory."""
    ns = summary.get("node") or {}
    usage = _usage(ns.get("cpu"), ns.get("memory"))
    if usage is None:
        return None
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, "metadata": _meta(node, now, False),
            "timestamp": (ns.get("cpu") or {}).get("time") or now, "window": window, "usage": usage}


def pod_metrics(pod: Obj, pod_stats: Obj, *, now: str, window: str) -> Obj | None:
    """The PodMetrics of ``pod`` from its Summary API entry; None unless every container has both
    a CPU rate and a working set (partial numbers would understate the pod's usage)."""
    containers: list[Obj] = []
    times: list[str] = []
    for c in pod_stats.get("containers") or ():
        usage = _usage(c.get("cpu"), c.get("memory"))
        if usage is None:
            return None
        containers.append({"name": c.get("name", ""), "usage": usage})
        times.append((c.get("cpu") or {}).get("time") or "")
    if not containers:
        return None
    return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION, "metadata": _meta(pod, now, True),
            "timestamp": max(times) or now, "window": window, "containers": containers}


def is_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_stats_index(summaries: dict[str, Obj]) -> dict[tuple[str, str, str], Obj]:
    """(node, namespace, pod name) -> that pod's Summary API entry."""
    out: dict[tuple[str, str, str], Obj] = {}
    for node_name, summary in summaries.items():
        for p in summary.get("pods") or ():
            ref = p.get("podRef") or {}
            out[(node_name, ref.get("namespace", ""), ref.get("name", ""))] = p
    return out


def find_pod_stats(index: dict[tuple[str, str, str], Obj], pod: Obj) -> Obj | None:
    md = pod.get("metadata") or {}
    node = (pod.get("spec") or {}).get("nodeName") or ""
    stats = index.get((node, md.get("namespace", ""), md.get("name", "")))
    if stats is None:
        return None
    uid = (stats.get("podRef") or {}).get("uid")
    if uid and md.get("uid") and uid != md["uid"]:
        return None  # an older pod of the same name
    return stats


def metrics_table(items: list[Obj], *, pods: bool, table_version: str) -> Obj:
    """A meta.k8s.io Table as metrics-server renders one: Name, cpu, memory, Window."""
    cols = [{"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0},
            {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0}]
    rows = []
    for it in items:
        if pods:
            cpu = sum((parse_quantity(c["usage"]["cpu"]) for c in it["containers"]), Fraction(0))
            mem = sum((parse_quantity(c["usage"]["memory"]) for c in it["containers"]), Fraction(0))
        else:
            cpu, mem = parse_quantity(it["usage"]["cpu"]), parse_quantity(it["usage"]["memory"])
        rows.append({"cells": [it["metadata"]["name"], format_quantity(cpu, DECIMAL_SI),
                               format_quantity(mem, BINARY_SI), it["window"]],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": it["metadata"]}})
    return {"kind": "Table", "apiVersion": table_version, "metadata": {},
            "columnDefinitions": cols, "rows": rows}


# --------------------------------------------------------------------------- summaries
class SummaryCache:
    """Kubelet summaries per node, fetched at most once per ``ttl`` (failures are cached too, so an
    unreachable kubelet does not slow every request). Concurrent requests share one fetch; a batch
    waits at most ``timeout`` seconds and skips the nodes that have not answered by then (their
    fetch goes on, for at most ``fetch_timeout`` seconds, and fills the cache for the next request)."""

    def __init__(self, fetch: SummaryFetcher | None, *, ttl: float = DEFAULT_CACHE_TTL,
                 timeout: float = DEFAULT_TIMEOUT, fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
                 concurrency: int = 16, clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self.timeout = timeout
        self.fetch_timeout = fetch_timeout
        self.clock = clock
        self._sem = asyncio.Semaphore(concurrency)
        self._cache: dict[str, tuple[float, Obj | None]] = {}
        self._inflight: dict[str, asyncio.Task[Obj | None]] = {}
        self.fetches = 0

    async def get_many(self, nodes: list[Obj]) -> dict[str, Obj]:
        """node name -> summary for the nodes that answered (fresh from cache or fetched now)."""
        out: dict[str, Obj] = {}
        waiting: dict[asyncio.Task[Obj | None], str] = {}
        now = self.clock()
        for node in nodes:
            name = m.name_of(node)
            hit = self._cache.get(name)
            if hit is not None and hit[0] > now:
                if hit[1] is not None:
                    out[name] = hit[1]
                continue
            waiting[self._start(name, node)] = name
        if waiting:
            done, _ = await asyncio.wait(list(waiting), timeout=self.timeout)
            for t in done:
                if not t.cancelled() and t.exception() is None and t.result() is not None:
                    out[waiting[t]] = t.result()  # type: ignore[assignment]
        return out

    def _start(self, name: str, node: Obj) -> asyncio.Task[Obj | None]:
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(name, node), name=f"metrics-summary-{name}")
            self._inflight[name] = task
            task.add_done_callback(lambda _t, name=name: self._inflight.pop(name, None))
        return task

    async def _fetch(self, name: str, node: Obj) -> Obj | None:
        result: Obj | None = None
        try:
            if self.fetch is None:
                raise RuntimeError("no kubelet client configured")
            async with self._sem:
                self.fetches += 1
                async with asyncio.timeout(self.fetch_timeout):
                    r = self.fetch(node)
                    if inspect.isawaitable(r):
                        r = await r
            if not isinstance(r, dict):
                raise ValueError(f"unexpected summary type {type(r).__name__}")
            result = r
        except Exception as e:  # noqa: BLE001 - a failing node is skipped, as metrics-server does
            log.warning("unable to fetch metrics from node %s: %s", name, str(e) or type(e).__name__)
        self._cache[name] = (self.clock() + self.ttl, result)
        return result

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)


# --------------------------------------------------------------------------- objects
class ObjectReader(Protocol):
    """Reads the Nodes and Pods the metrics are about (the API server's store, or a test fake)."""

    async def list_nodes(self, label_selector: Selector | None, field_selector: FieldSelector | None) -> list[Obj]: ...
    async def get_node(self, name: str) -> Obj | None: ...
    async def list_pods(self, namespace: str, label_selector: Selector | None,
                        field_selector: FieldSelector | None) -> list[Obj]: ...
    async def get_pod(self, namespace: str, name: str) -> Obj | None: ...


class StoreReader:
    """``ObjectReader`` over the API server's own ``ApiStore``."""

    def __init__(self, api: Any, registry: Registry) -> None:
        self.api = api
        self.registry = registry

    def _info(self, plural: str) -> ResourceInfo:
        info = self.registry.lookup("", "v1", plural)
        assert info is not None
        return info

    async def list_nodes(self, label_selector: Selector | None, field_selector: FieldSelector | None) -> list[Obj]:
        items, _ = await self.api.list(self._info("nodes"), "", ListOptions(label_selector=label_selector, field_selector=field_selector))
        return list(items)

    async def get_node(self, name: str) -> Obj | None:
        return await self._get("nodes", "", name)

    async def list_pods(self, namespace: str, label_selector: Selector | None,
                        field_selector: FieldSelector | None) -> list[Obj]:
        items, _ = await self.api.list(self._info("pods"), namespace, ListOptions(label_selector=label_selector, field_selector=field_selector))
        return list(items)

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        return await self._get("pods", namespace, name)

    async def _get(self, plural: str, ns: str, name: str) -> Obj | None:
        try:
            return await self.api.get(self._info(plural), ns, name)  # type: ignore[no-any-return]
        except errors.StatusError as e:
            if e.code == 404:
                return None
            raise


# --------------------------------------------------------------------------- the endpoint
class MetricsApi:
    """Serves the metrics.k8s.io paths; ``fetch_summary`` may be set after construction (the
    kubelet client is wired once TLS material is known)."""

    def __init__(self, reader: ObjectReader, fetch_summary: SummaryFetcher | None = None, *,
                 window: float = DEFAULT_WINDOW, cache_ttl: float = DEFAULT_CACHE_TTL,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.reader = reader
        self.cache = SummaryCache(fetch_summary, ttl=cache_ttl, timeout=timeout)
        self.window = go_duration(window)

    @property
    def fetch_summary(self) -> SummaryFetcher | None:
        return self.cache.fetch

    @fetch_summary.setter
    def fetch_summary(self, fn: SummaryFetcher | None) -> None:
        self.cache.fetch = fn

    # -- data ---------------------------------------------------------------------------------
    async def _summaries(self, nodes: list[Obj]) -> dict[str, Obj]:
        return await self.cache.get_many([n for n in nodes if is_ready(n)])

    async def node_items(self, nodes: list[Obj]) -> list[Obj]:
        summaries = await self._summaries(nodes)
        now = m.now_rfc3339()
        out = []
        for node in sorted(nodes, key=m.name_of):
            s = summaries.get(m.name_of(node))
            item = node_metrics(node, s, now=now, window=self.window) if s is not None else None
            if item is not None:
                out.append(item)
        return out

    async def pod_items(self, pods: list[Obj]) -> list[Obj]:
        pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
                and (p.get("spec") or {}).get("nodeName")]
        if not pods:
            return []
        wanted = {p["spec"]["nodeName"] for p in pods}
        nodes = [n for n in await self.reader.list_nodes(None, None) if m.name_of(n) in wanted]
        index = pod_stats_index(await self._summaries(nodes))
        now = m.now_rfc3339()
        out = []
        for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
            stats = find_pod_stats(index, pod)
            item = pod_metrics(pod, stats, now=now, window=self.window) if stats is not None else None
            if item is not None:
                out.append(item)
        return out

    # -- HTTP -----------------------------------------------------------------------------------
    async def handle(self, request: web.Request, rest: list[str]) -> web.Response:
        """Answer ``/apis/metrics.k8s.io/<rest...>``."""
        if not rest:
            return self._get_only(request) or json_response(api_group())
        if rest[0] != VERSION:
            raise errors.path_not_found()
        rest = rest[1:]
        if not rest:
            return self._get_only(request) or json_response(api_resource_list())
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
            if rest[0] != "pods":
                raise errors.path_not_found()
        if rest[0] not in ("nodes", "pods") or len(rest) > 2:
            raise errors.path_not_found()
        if request.method != "GET":
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        q = request.query
        if q.get("watch") not in (None, "false", "0"):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        ls = parse_selector(q["labelSelector"]) if q.get("labelSelector") else None
        fs = parse_field_selector(q["fieldSelector"]) if q.get("fieldSelector") else None
        table_v = wants_table(request.headers.get("Accept", ""))
        pods = rest[0] == "pods"
        if len(rest) == 2:
            if pods and not ns:
                raise errors.path_not_found()
            item = await (self.get_pod(ns, rest[1]) if pods else self.get_node(rest[1]))
            if table_v:
                return json_response(metrics_table([item], pods=pods, table_version=table_v))
            return json_response(item)
        if pods:
            items = await self.pod_items(await self.reader.list_pods(ns, ls, fs))
        else:
            items = await self.node_items(await self.reader.list_nodes(ls, fs))
        if table_v:
            return json_response(metrics_table(items, pods=pods, table_version=table_v))
        kind = "PodMetricsList" if pods else "NodeMetricsList"
        return json_response({"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})

    @staticmethod
    def _get_only(request: web.Request) -> web.Response | None:
        if request.method != "GET":
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        return None

    async def get_node(self, name: str) -> Obj:
        node = await self.reader.get_node(name)
        if node is None:
            raise errors.not_found("node", "", name)
        items = await self.node_items([node])
        if not items:
            raise errors.not_found("nodemetrics", GROUP, name)
        return items[0]

    async def get_pod(self, namespace: str, name: str) -> Obj:
        pod = await self.reader.get_pod(namespace, name)
        if pod is None:
            raise errors.not_found("pod", "", name)
        items = await self.pod_items([pod])
        if not items:
            raise errors.not_found("podmetrics", GROUP, f"{namespace}/{name}")
        return items[0]
