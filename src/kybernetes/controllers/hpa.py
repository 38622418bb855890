"""The HorizontalPodAutoscaler controller (upstream ``horizontal-pod-autoscaler-controller``).

Every HPA (autoscaling/v2; v1 objects are converted by the API server) is synced when it is
created or its spec changes, and then every ``sync_period`` seconds (15 s,
``--horizontal-pod-autoscaler-sync-period``). One sync:

1. reads the target's ``scale`` subresource (Deployments, ReplicaSets, StatefulSets,
   ReplicationControllers, and custom resources with a scale subresource, found by discovery);
2. lists the pods the Scale's ``status.selector`` matches (from the shared pod informer) and,
   when the target is within [minReplicas, maxReplicas], fetches each Resource / ContainerResource
   metric through the ``MetricsClient`` (``metrics.k8s.io``);
3. calls the pure ``hpa_calc.reconcile`` (replica calculator, stabilization, behaviors, status);
4. writes the new replica count to the Scale (events ``SuccessfulRescale`` / ``FailedRescale``),
   records the warnings the plan carries (``FailedGetScale``, ``FailedGetResourceMetric``,
   ``FailedComputeMetricsReplicas``, ...), and writes ``/status`` only when it changed.

Recommendations and scale events (for stabilization windows and policy periods) live in this
process, per HPA, as upstream keeps them: a new leader starts with an empty history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..api.labels import Selector
from ..api.resources import BUILTIN
from ..client import Controller, EventRecorder, Requeue
from ..client.errors import ApiError, Conflict, NotFound, TransportError
from ..client.keys import ObjectKey, key_of, tombstone_object
from ..client.lister import copy_obj
from ..client.resources import HORIZONTALPODAUTOSCALERS, PODS, Resource
from ..util.clock import Clock
from . import hpa_calc as calc
from .metricsclient import MetricsClient, MetricsError, RestMetricsClient

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NAME = "horizontal-pod-autoscaler-controller"
ALIASES = ("horizontalpodautoscaling",)
SYNC_PERIOD = 15.0


class ScaleTargetError(Exception):
    """The scale target cannot be resolved or read (reported as FailedGetScale)."""


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def builtin_scale_resource(api_version: str, kind: str) -> Resource | None:
    """The built-in resource for ``kind`` in ``api_version``'s group (any served version, the
    requested one first: upstream maps the GroupKind through the RESTMapper)."""
    group = api_version.rpartition("/")[0]
    version = api_version.rpartition("/")[2]
    found = [i for i in BUILTIN if i.group == group and i.kind == kind]
    found.sort(key=lambda i: i.version != version)
    return Resource.from_info(found[0]) if found else None


class HorizontalController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None,
                 metrics: MetricsClient | None = None, sync_period: float = SYNC_PERIOD,
                 config: calc.Config = calc.Config(), workers: int = 1) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.metrics: MetricsClient = metrics or RestMetricsClient(client)
        self.sync_period = sync_period
        self.config = config
        self.hpas = self.informer(HORIZONTALPODAUTOSCALERS, handle=False)
        self.hpas.add_event_handler(on_add=self._hpa_added, on_update=self._hpa_updated,
                                    on_delete=self._hpa_deleted)
        self.pods = self.informer(PODS, handle=False)
        self.history: dict[str, calc.History] = {}
        self.selectors: dict[str, Selector] = {}
        self.status_writes = 0
        self.scale_writes = 0

    # -- events: HPA creates and spec changes sync at once; everything else waits for the period --
    def _hpa_added(self, hpa: Obj) -> None:
        self.enqueue(hpa)

    def _hpa_updated(self, old: Obj, new: Obj) -> None:
        if old.get("spec") != new.get("spec"):
            self.enqueue(new)

    def _hpa_deleted(self, obj: Any) -> None:
        self.enqueue(tombstone_object(obj))

    # -- sync ---------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        hpa = self.hpas.lister().get_by_key(key)
        if hpa is None:
            self.history.pop(key, None)
            self.selectors.pop(key, None)
            return
        try:
            await self.reconcile_hpa(key, hpa)
        except (ApiError, TransportError) as e:
            self.log.warning("HPA %s: %s", key, e)
        raise Requeue(after=self.sync_period)

    async def reconcile_hpa(self, key: str, hpa: Obj) -> calc.Plan:
        """One sync of ``hpa`` (read scale, pods, metrics -> reconcile -> write); returns the plan."""
        ns = str(_md(hpa).get("namespace") or "")
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        scale: Obj | None = None
        scale_error: str | None = None
        res: Resource | None = None
        try:
            res = await self.scale_resource(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            scale = await self.client.get(res, str(ref.get("name") or ""), ns, subresource="scale")
        except ScaleTargetError as e:
            scale_error = str(e)
        except (ApiError, TransportError) as e:
            scale_error = str(e)
        pods: tuple[Obj, ...] = ()
        samples: dict[int, calc.MetricSample | str] = {}
        controlling: tuple[str, ...] = ()
        if scale is not None:
            selector = calc.parse_scale_selector(scale)
            if isinstance(selector, Selector):
                self.selectors[key] = selector
                pods = tuple(self.pods.lister().list(ns, selector))
                controlling = calc.controlling_hpas(pods, self.selectors)
                if calc.wants_metrics(hpa, scale) and len(controlling) <= 1:
                    samples = await self._fetch_metrics(hpa, ns, str(scale["status"]["selector"]))
        obs = calc.Observed(hpa, scale, scale_error, pods, samples, controlling,
                            self.history.get(key, calc.History()), self.clock.wall(), self.clock.monotonic(),
                            self.config)
        plan = calc.reconcile(obs)
        await self._apply(key, hpa, scale, res, plan)
        return plan

    async def _fetch_metrics(self, hpa: Obj, ns: str, selector: str) -> dict[int, calc.MetricSample | str]:
        out: dict[int, calc.MetricSample | str] = {}
        for i, spec in enumerate(calc.metric_specs(hpa)):
            kind = spec.get("type")
            if kind not in calc.RESOURCE_METRIC_TYPES:
                continue
            src = (spec.get("containerResource") if kind == "ContainerResource" else spec.get("resource")) or {}
            container = str(src.get("container") or "") if kind == "ContainerResource" else ""
            try:
                out[i] = await self.metrics.get_resource_metric(str(src.get("name") or ""), ns, selector, container)
            except MetricsError as e:
                out[i] = str(e)
        return out

    async def _apply(self, key: str, hpa: Obj, scale: Obj | None, res: Resource | None, plan: calc.Plan) -> None:
        for ev in plan.events:
            self._event(hpa, ev)
        status, history = plan.status, plan.history
        if plan.rescale_to is not None and scale is not None and res is not None:
            new_scale = copy_obj(scale)
            new_scale.setdefault("spec", {})["replicas"] = plan.rescale_to
            try:
                await self.client.update(res, new_scale, _md(hpa).get("namespace"), subresource="scale")
            except (ApiError, TransportError) as e:
                status, event = calc.rescale_failed(plan, str(e), self.clock.wall())
                self._event(hpa, event)
                self.log.warning("HPA %s: failed to rescale to %d: %s", key, plan.rescale_to, e)
            else:
                self.scale_writes += 1
                history = plan.history_rescaled or plan.history
                for ev in plan.rescaled_events:
                    self._event(hpa, ev)
                self.log.info("HPA %s: rescaled %d -> %d (%s)", key, plan.current, plan.rescale_to,
                              plan.rescale_reason)
        self.history[key] = history
        if plan.error:
            self.log.info("HPA %s: %s", key, plan.error)
        if status != (hpa.get("status") or {}):
            await self._write_status(hpa, status)

    async def _write_status(self, hpa: Obj, status: Obj) -> None:
        new = copy_obj(hpa)
        new["status"] = status
        try:
            await self.client.update_status(HORIZONTALPODAUTOSCALERS, new, _md(hpa).get("namespace"))
        except (NotFound, Conflict) as e:
            self.log.info("HPA %s: status not written: %s", key_of(hpa), e)
            return
        except ApiError as e:
            self._event(hpa, calc.Event("Warning", "FailedUpdateStatus", str(e)))
            raise
        self.status_writes += 1

    def _event(self, hpa: Obj, ev: calc.Event) -> None:
        if self.recorder is not None:
            self.recorder.event(hpa, ev.type, ev.reason, ev.message)

    # -- scale targets ------------------------------------------------------------------------------
    async def scale_resource(self, api_version: str, kind: str) -> Resource:
        """The resource serving ``kind`` in ``api_version``'s group: built-in, else by discovery."""
        if api_version.count("/") > 1 or not kind:
            raise ScaleTargetError(f"unexpected GroupVersion string: {api_version}" if kind
                                   else "scale target reference has no kind")
        group, _, version = api_version.rpartition("/")
        found = builtin_scale_resource(api_version, kind)
        if found is not None:
            return found
        no_match = f'no matches for kind "{kind}" in group "{group}"'
        try:
            doc = await self.client.request("GET", f"/apis/{api_version}" if group else f"/api/{version}")
        except NotFound:
            raise ScaleTargetError(no_match) from None
        resources = (doc or {}).get("resources") or []
        main = next((r for r in resources if r.get("kind") == kind and "/" not in str(r.get("name"))), None)
        if main is None:
            raise ScaleTargetError(no_match)
        return Resource(group, version, str(main["name"]), kind, bool(main.get("namespaced", True)))

    def statistics(self) -> dict[str, Any]:
        out = super().statistics()
        out.update(status_writes=self.status_writes, scale_writes=self.scale_writes, tracked=len(self.history))
        return out


def new(ctx: ControllerContext) -> HorizontalController:
    o = ctx.options
    config = calc.Config(
        tolerance=float(o.get("horizontal_pod_autoscaler_tolerance", calc.TOLERANCE)),
        cpu_initialization_period=float(o.get("horizontal_pod_autoscaler_cpu_initialization_period",
                                              calc.CPU_INITIALIZATION_PERIOD)),
        initial_readiness_delay=float(o.get("horizontal_pod_autoscaler_initial_readiness_delay",
                                            calc.INITIAL_READINESS_DELAY)),
        downscale_stabilization=float(o.get("horizontal_pod_autoscaler_downscale_stabilization",
                                            calc.DOWNSCALE_STABILIZATION)))
    return HorizontalController(
        ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
        metrics=o.get("horizontal_pod_autoscaler_metrics_client"),
        sync_period=float(o.get("horizontal_pod_autoscaler_sync_period", SYNC_PERIOD)),
        config=config, workers=int(o.get("concurrent_horizontal_pod_autoscaler_syncs", 5)))
