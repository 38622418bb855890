"""The HorizontalPodAutoscaler's arithmetic (pure): replica calculator, behaviors, status.

Everything here follows upstream ``pkg/controller/podautoscaler`` (``replica_calculator.go``,
``horizontal.go``, ``metrics/utilization.go``) in results and wording; nothing does I/O, reads a
clock or mutates its inputs. ``hpa.py`` fetches the scale, the pods and the metrics, calls
``reconcile`` and carries the plan out.

Replica calculator (Resource / ContainerResource metrics)
    Utilization target: ``ratio = (sum usage * 100 // sum requests) / target`` over the pods that
    count; within ``tolerance`` (0.1) of 1.0 nothing changes, else ``ceil(ratio * ready pods)``.
    Pods being deleted or Failed are ignored; Pending pods, and for cpu pods that are not Ready
    or whose sample predates their readiness (within the cpu initialization period, 5 min) or
    that never became ready (within the initial readiness delay, 30 s) are "unready"; pods without
    a sample are "missing". On a scale-up unready pods count as using 0; missing pods count as 0
    on a scale-up and as 100% of their request (or the target, if higher) on a scale-down; a
    rebalanced ratio that flips direction or lands within tolerance keeps the current count.
    AverageValue targets compare the mean usage with the target (missing pods count as the target
    on a scale-down).

Normalization
    Without ``spec.behavior`` (upstream's legacy path): the highest recommendation of the last
    downscale-stabilization window (5 min), then at most ``max(2 * current, 4)`` and within
    [min, max]. With ``behavior``: recommendations are stabilized by the scaleUp (min over its
    window, default 0 s) and scaleDown (max over its window, default 300 s) windows, then limited by
    the policies (Pods / Percent per ``periodSeconds``, combined by ``selectPolicy`` Max, Min or
    Disabled) counted from the scale events of each period, and by min/max.

Not computed: Pods, Object and External metrics. They fail as they do upstream in a cluster with
no custom/external metrics adapter (ScalingActive=False, FailedGet{Pods,Object,External}Metric).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from ..api import errors as api_errors
from ..api.labels import Selector, parse_selector
from ..api.meta import now_rfc3339, parse_time
from ..api.quantity import format_quantity, milli_value

Obj = dict[str, Any]

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0      # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0         # --horizontal-pod-autoscaler-initial-readiness-delay
DOWNSCALE_STABILIZATION = 300.0        # --horizontal-pod-autoscaler-downscale-stabilization
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)

# condition types and their reasons
ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED = "AbleToScale", "ScalingActive", "ScalingLimited"
NO_CUSTOM_METRICS = "unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
NO_EXTERNAL_METRICS = ("unable to fetch metrics from external metrics API: no external metrics API "
                       "(external.metrics.k8s.io) registered")


class MetricError(Exception):
    """A metric could not be turned into a replica count (the message is upstream's)."""


@dataclass(frozen=True)
class Config:
    tolerance: float = TOLERANCE
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD
    initial_readiness_delay: float = INITIAL_READINESS_DELAY
    downscale_stabilization: float = DOWNSCALE_STABILIZATION


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage sample in milli-units (millicores, milli-bytes), as metrics.k8s.io gives it."""

    value: int
    timestamp: dt.datetime = _EPOCH
    window: float = 0.0          # seconds the sample was averaged over


PodMetricsInfo = Mapping[str, PodMetric]


@dataclass(frozen=True)
class MetricSample:
    """What the metrics client returned for one metric: pod name -> sample, and its timestamp."""

    pods: PodMetricsInfo
    timestamp: dt.datetime = _EPOCH


# ------------------------------------------------------------------------------------------------
# replica calculator
# ------------------------------------------------------------------------------------------------
def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in _status(pod).get("conditions") or () if c.get("type") == "Ready"), None)


def _time(value: Any) -> dt.datetime | None:
    return parse_time(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class PodGroups:
    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def group_pods(pods: Iterable[Mapping[str, Any]], metrics: PodMetricsInfo, resource: str,
               now: dt.datetime, cfg: Config = Config()) -> PodGroups:
    """Sort pods into ready (counted), unready, missing (no sample) and ignored (upstream ``groupPods``)."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = str(_md(pod).get("name") or "")
        phase = _status(pod).get("phase")
        if _md(pod).get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu" and _cpu_sample_unready(pod, metric, now, cfg):
            unready.add(name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_sample_unready(pod: Mapping[str, Any], metric: PodMetric, now: dt.datetime, cfg: Config) -> bool:
    cond = _ready_condition(pod)
    start = _time(_status(pod).get("startTime"))
    if cond is None or start is None:
        return True
    transition = _time(cond.get("lastTransitionTime")) or _EPOCH
    if start + dt.timedelta(seconds=cfg.cpu_initialization_period) > now:
        # still initializing: only a sample taken a whole window after becoming ready counts
        return cond.get("status") == "False" or \
            metric.timestamp < transition + dt.timedelta(seconds=metric.window)
    # past initialization: ignore only pods that never became ready
    return cond.get("status") == "False" and \
        start + dt.timedelta(seconds=cfg.initial_readiness_delay) > transition


def pod_requests(pods: Iterable[Mapping[str, Any]], resource: str, container: str = "") -> dict[str, int]:
    """Per pod the milli-value requested of ``resource`` by its containers (and restartable init
    containers), or by ``container`` only; MetricError when a counted container requests none."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        name = str(_md(pod).get("name") or "")
        containers = list(spec.get("containers") or ())
        containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            requests = (c.get("resources") or {}).get("requests") or {}
            if resource not in requests:
                raise MetricError(f"missing request for {resource} in container {c.get('name')} of Pod {name}")
            total += milli_value(requests[resource])
        out[name] = total
    return out


def utilization_ratio(metrics: Mapping[str, int], requests: Mapping[str, int],
                      target_utilization: int) -> tuple[float, int, int]:
    """(usage ratio, utilization percent, mean raw usage) over the pods with a request."""
    metrics_total = requests_total = entries = 0
    for pod, value in metrics.items():
        if pod not in requests:
            continue      # an extraneous sample (missing requests are caught elsewhere)
        metrics_total += value
        requests_total += requests[pod]
        entries += 1
    if requests_total == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = metrics_total * 100 // requests_total
    return utilization / target_utilization, utilization, metrics_total // entries


def usage_ratio(metrics: Mapping[str, int], target_usage: int) -> tuple[float, int]:
    """(usage ratio, mean usage) for an AverageValue target."""
    usage = sum(metrics.values()) // len(metrics)
    return usage / target_usage, usage


def _changes_direction(old: float, new: float) -> bool:
    return (old < 1.0 and new > 1.0) or (old > 1.0 and new < 1.0)


def resource_replicas(current: int, target_utilization: int, resource: str, pods: Sequence[Mapping[str, Any]],
                      metrics: PodMetricsInfo, now: dt.datetime, cfg: Config = Config(),
                      container: str = "") -> tuple[int, int, int]:
    """(replicas, utilization percent, mean raw usage) for a Utilization target (``GetResourceReplicas``)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, cfg)
    values = {n: m.value for n, m in metrics.items() if n not in groups.ignored and n not in groups.unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(values, requests, target_utilization)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= cfg.tolerance:
            return current, utilization, raw
        return math.ceil(ratio * groups.ready), utilization, raw
    if groups.missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in groups.missing:
                values[name] = requests.get(name, 0) * fallback // 100
        elif ratio > 1.0:
            for name in groups.missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0
    new_ratio, _, _ = utilization_ratio(values, requests, target_utilization)
    if abs(1.0 - new_ratio) <= cfg.tolerance or _changes_direction(ratio, new_ratio):
        return current, utilization, raw
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, utilization, raw
    return replicas, utilization, raw


def raw_resource_replicas(current: int, target_usage: int, resource: str, pods: Sequence[Mapping[str, Any]],
                          metrics: PodMetricsInfo, now: dt.datetime, cfg: Config = Config()) -> tuple[int, int]:
    """(replicas, mean usage) for an AverageValue target (``calcPlainMetricReplicas``)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, cfg)
    values = {n: m.value for n, m in metrics.items() if n not in groups.ignored and n not in groups.unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, usage = usage_ratio(values, target_usage)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= cfg.tolerance:
            return current, usage
        return math.ceil(ratio * groups.ready), usage
    if groups.missing:
        if ratio < 1.0:
            for name in groups.missing:
                values[name] = target_usage
        elif ratio > 1.0:
            for name in groups.missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0
    new_ratio, _ = usage_ratio(values, target_usage)
    if abs(1.0 - new_ratio) <= cfg.tolerance or _changes_direction(ratio, new_ratio):
        return current, usage
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, usage
    return replicas, usage


# ------------------------------------------------------------------------------------------------
# behaviors: recommendations, scale events, limits
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recommendation:
    replicas: int
    at: float                    # monotonic seconds


@dataclass(frozen=True)
class ScaleEvent:
    change: int                  # replicas added (scale-up list) or removed (scale-down list)
    at: float
    outdated: bool = False


@dataclass(frozen=True)
class History:
    """Per-HPA memory the controller keeps between syncs (upstream keeps it in maps, too)."""

    recommendations: tuple[Recommendation, ...] = ()
    scale_up: tuple[ScaleEvent, ...] = ()
    scale_down: tuple[ScaleEvent, ...] = ()


@dataclass(frozen=True)
class ScalingPolicy:
    type: str                    # "Pods" | "Percent"
    value: int
    period: int                  # seconds


@dataclass(frozen=True)
class ScalingRules:
    window: float                # stabilizationWindowSeconds
    select: str                  # "Max" | "Min" | "Disabled"
    policies: tuple[ScalingPolicy, ...]


DEFAULT_SCALE_UP_POLICIES = (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
DEFAULT_SCALE_DOWN_POLICIES = (ScalingPolicy("Percent", 100, 15),)


def _rules(raw: Any, window: float, policies: tuple[ScalingPolicy, ...]) -> ScalingRules:
    raw = raw if isinstance(raw, Mapping) else {}
    w = raw.get("stabilizationWindowSeconds")
    ps = raw.get("policies")
    return ScalingRules(
        float(w) if w is not None else window,
        str(raw.get("selectPolicy") or "Max"),
        policies if ps is None else tuple(ScalingPolicy(str(p.get("type")), int(p.get("value") or 0),
                                                        int(p.get("periodSeconds") or 0)) for p in ps))


def scaling_rules(behavior: Mapping[str, Any], downscale_stabilization: float) -> tuple[ScalingRules, ScalingRules]:
    """(scaleUp, scaleDown) rules with upstream's defaults filled in (the API server's defaulting plus
    ``maybeInitScaleDownStabilizationWindow``)."""
    return (_rules(behavior.get("scaleUp"), 0.0, DEFAULT_SCALE_UP_POLICIES),
            _rules(behavior.get("scaleDown"), downscale_stabilization, DEFAULT_SCALE_DOWN_POLICIES))


def _record(recs: tuple[Recommendation, ...], old_index: int | None, new: Recommendation) -> tuple[Recommendation, ...]:
    """Replace the sample at ``old_index`` (one that fell out of every window) or append."""
    if old_index is None:
        return (*recs, new)
    return tuple(new if i == old_index else r for i, r in enumerate(recs))


def stabilize(recs: tuple[Recommendation, ...], desired: int, window: float,
              now: float) -> tuple[int, tuple[Recommendation, ...]]:
    """Legacy (no behavior): the highest recommendation within ``window``; records ``desired``."""
    best, old = desired, None
    cutoff = now - window
    for i, r in enumerate(recs):
        if r.at < cutoff:
            old = i
        elif r.replicas > best:
            best = r.replicas
    return best, _record(recs, old, Recommendation(desired, now))


def stabilize_with_behaviors(recs: tuple[Recommendation, ...], desired: int, current: int, up: ScalingRules,
                             down: ScalingRules, now: float) -> tuple[int, str, str, tuple[Recommendation, ...]]:
    """(stabilized recommendation, reason, message, recommendations with ``desired`` recorded)."""
    up_rec = down_rec = desired
    up_cutoff, down_cutoff = now - up.window, now - down.window
    old = None
    for i, r in enumerate(recs):
        if r.at > up_cutoff:
            up_rec = min(r.replicas, up_rec)
        if r.at > down_cutoff:
            down_rec = max(r.replicas, down_rec)
        if r.at < up_cutoff and r.at < down_cutoff:
            old = i
    recommendation = min(max(current, up_rec), down_rec)
    if desired >= current:
        reason, message = ("ScaleUpStabilized", "recent recommendations were lower than current one, "
                           "applying the lowest recent recommendation")
    else:
        reason, message = ("ScaleDownStabilized", "recent recommendations were higher than current one, "
                           "applying the highest recent recommendation")
    return recommendation, reason, message, _record(recs, old, Recommendation(desired, now))


def replicas_changed_in_period(period: float, events: Iterable[ScaleEvent], now: float) -> int:
    cutoff = now - period
    return sum(e.change for e in events if e.at > cutoff)


def _period_start(current: int, policy: ScalingPolicy, history: History, now: float) -> int:
    added = replicas_changed_in_period(policy.period, history.scale_up, now)
    removed = replicas_changed_in_period(policy.period, history.scale_down, now)
    return current - added + removed


def scale_up_limit(current: int, history: History, rules: ScalingRules, now: float) -> int:
    """The most replicas the scaleUp policies allow now (``calculateScaleUpLimitWithScalingRules``)."""
    if rules.select == "Disabled":
        return current
    pick, result = (min, _INT32_MAX) if rules.select == "Min" else (max, _INT32_MIN)
    for p in rules.policies:
        start = _period_start(current, p, history, now)
        if p.type == "Pods":
            proposed = start + p.value
        elif p.type == "Percent":
            proposed = math.ceil(start * (1 + p.value / 100))
        else:
            continue
        result = pick(result, proposed)
    return result


def scale_down_limit(current: int, history: History, rules: ScalingRules, now: float) -> int:
    """The fewest replicas the scaleDown policies allow now (``calculateScaleDownLimitWithBehaviors``)."""
    if rules.select == "Disabled":
        return current
    pick, result = (max, _INT32_MIN) if rules.select == "Min" else (min, _INT32_MAX)
    for p in rules.policies:
        start = _period_start(current, p, history, now)
        if p.type == "Pods":
            proposed = start - p.value
        elif p.type == "Percent":
            proposed = int(start * (1 - p.value / 100))
        else:
            continue
        result = pick(result, proposed)
    return result


WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")


def convert_with_rules(current: int, desired: int, min_replicas: int, max_replicas: int) -> tuple[int, str, str]:
    """Legacy limits: [min, min(max, max(2 * current, 4))] (``convertDesiredReplicasWithRules``)."""
    up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > up_limit:
        maximum, limited = up_limit, UP_LIMIT
    else:
        maximum, limited = max_replicas, TOO_MANY
    if desired < min_replicas:
        return (min_replicas, *TOO_FEW)
    if desired > maximum:
        return (maximum, *limited)
    return (desired, *WITHIN_RANGE)


def convert_with_behavior_rate(current: int, desired: int, min_replicas: int, max_replicas: int,
                               up: ScalingRules, down: ScalingRules, history: History,
                               now: float) -> tuple[int, str, str]:
    """Limit ``desired`` by the policies' rates and by min/max (``convertDesiredReplicasWithBehaviorRate``)."""
    if desired > current:
        limit = max(scale_up_limit(current, history, up, now), current)
        if max_replicas > limit:
            maximum, limited = limit, UP_LIMIT
        else:
            maximum, limited = max_replicas, TOO_MANY
        if desired > maximum:
            return (maximum, *limited)
    elif desired < current:
        limit = min(scale_down_limit(current, history, down, now), current)
        if min_replicas < limit:
            minimum, limited = limit, DOWN_LIMIT
        else:
            minimum, limited = min_replicas, TOO_FEW
        if desired < minimum:
            return (minimum, *limited)
    return (desired, *WITHIN_RANGE)


def _mark_outdated(events: tuple[ScaleEvent, ...], longest: float, now: float) -> tuple[ScaleEvent, ...]:
    cutoff = now - longest
    return tuple(replace(e, outdated=True) if e.at < cutoff else e for e in events)


def _store_event(events: tuple[ScaleEvent, ...], rules: ScalingRules, change: int,
                 now: float) -> tuple[ScaleEvent, ...]:
    longest = max((p.period for p in rules.policies), default=0)
    events = _mark_outdated(events, longest, now)
    old = None
    for i, e in enumerate(events):
        if e.outdated:
            old = i
    new = ScaleEvent(change, now)
    if old is None:
        return (*events, new)
    return tuple(new if i == old else e for i, e in enumerate(events))


def record_scale_event(history: History, behavior: Mapping[str, Any] | None, previous: int, new: int,
                       now: float, downscale_stabilization: float = DOWNSCALE_STABILIZATION) -> History:
    """The history after a rescale from ``previous`` to ``new`` (kept only with a behavior)."""
    if behavior is None:
        return history
    up, down = scaling_rules(behavior, downscale_stabilization)
    if new > previous:
        return replace(history, scale_up=_store_event(history.scale_up, up, new - previous, now))
    return replace(history, scale_down=_store_event(history.scale_down, down, previous - new, now))


# ------------------------------------------------------------------------------------------------
# conditions and status
# ------------------------------------------------------------------------------------------------
def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                  now: dt.datetime) -> list[Obj]:
    """Set one condition in place order (new ones appended); the transition time moves only when
    the status changes (upstream ``setConditionInList``)."""
    out = [dict(c) for c in conditions]
    cond = next((c for c in out if c.get("type") == type_), None)
    if cond is None:
        cond = {"type": type_}
        out.append(cond)
    if cond.get("status") != status or not cond.get("lastTransitionTime"):
        cond["lastTransitionTime"] = now_rfc3339(now)
    cond["status"], cond["reason"], cond["message"] = status, reason, message
    # keep upstream's field order for readability of stored objects
    ordered = {k: cond[k] for k in ("type", "status", "lastTransitionTime", "reason", "message")}
    return [ordered if c is cond else c for c in out]


def get_condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)


def build_status(old: Mapping[str, Any], current: int, desired: int, metric_statuses: Sequence[Obj],
                 conditions: list[Obj], rescaled_at: dt.datetime | None) -> Obj:
    """A fresh status (upstream ``setStatus``): only these fields, empty ones left out."""
    out: Obj = {}
    if current:
        out["currentReplicas"] = current
    out["desiredReplicas"] = desired
    last = now_rfc3339(rescaled_at) if rescaled_at is not None else old.get("lastScaleTime")
    if last:
        out["lastScaleTime"] = last
    if metric_statuses:
        out["currentMetrics"] = [copy.deepcopy(m) for m in metric_statuses]
    if conditions:
        out["conditions"] = conditions
    return out


def milli_quantity(milli: int) -> str:
    """``resource.NewMilliQuantity(v, DecimalSI).String()``."""
    return format_quantity(Fraction(milli, 1000))


# ------------------------------------------------------------------------------------------------
# metrics -> replica proposals
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    type: str            # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Proposal:
    replicas: int
    metric: str          # e.g. "cpu resource utilization (percentage of request)"
    status: Obj          # a MetricStatus


@dataclass(frozen=True)
class Failure:
    reason: str          # the ScalingActive=False reason, also the Warning event's reason
    detail: str          # the event message; the condition says "unable to compute ... : <detail>"
    error: str           # the error as the metric loop reports it


RESOURCE_METRIC_TYPES = ("Resource", "ContainerResource")


def _target_milli(value: Any) -> int | None:
    try:
        return milli_value(value) if value is not None else None
    except (ValueError, TypeError, api_errors.StatusError):
        return None


def compute_resource_metric(spec: Mapping[str, Any], current: int, pods: Sequence[Mapping[str, Any]],
                            sample: MetricSample | str | None, now: dt.datetime, cfg: Config) -> Proposal | Failure:
    """A Resource or ContainerResource metric (``computeStatusForResourceMetricGeneric``)."""
    kind = str(spec.get("type"))
    container_metric = kind == "ContainerResource"
    src = (spec.get("containerResource") if container_metric else spec.get("resource")) or {}
    name = str(src.get("name") or "")
    container = str(src.get("container") or "") if container_metric else ""
    target = src.get("target") or {}
    reason = "FailedGetContainerResourceMetric" if container_metric else "FailedGetResourceMetric"
    outer = (f"failed to get {container} container metric value: " if container_metric
             else f"failed to get {name} resource metric value: ")

    def fail(detail: str) -> Failure:
        return Failure(reason, detail, outer + detail)

    average_value = _target_milli(target.get("averageValue"))
    utilization_target = target.get("averageUtilization")
    if average_value is None and utilization_target is None:
        return fail("invalid resource metric source: neither an average utilization target nor an "
                    "average value (usage) target was set")
    what = "usage" if average_value is not None else "utilization"
    if sample is None or isinstance(sample, str):
        return fail(f"failed to get {name} {what}: unable to get metrics for resource {name}: "
                    f"{sample or 'no metrics fetched'}")
    try:
        if average_value is not None:
            replicas, usage = raw_resource_replicas(current, average_value, name, pods, sample.pods, now, cfg)
            current_value: Obj = {"averageValue": milli_quantity(usage)}
            metric = f"{name} resource"
        else:
            replicas, pct, raw = resource_replicas(current, int(utilization_target), name, pods, sample.pods,
                                                   now, cfg, container)
            current_value = {"averageUtilization": pct, "averageValue": milli_quantity(raw)}
            metric = (f"{name} container resource utilization (percentage of request)" if container_metric
                      else f"{name} resource utilization (percentage of request)")
    except MetricError as e:
        return fail(f"failed to get {name} {what}: {e}")
    if container_metric:
        status: Obj = {"type": "ContainerResource",
                       "containerResource": {"name": name, "container": container, "current": current_value}}
    else:
        status = {"type": "Resource", "resource": {"name": name, "current": current_value}}
    return Proposal(replicas, metric, status)


def _unsupported_metric(spec: Mapping[str, Any], namespace: str) -> Failure:
    """Pods / Object / External metrics fail as upstream's do when no adapter serves them."""
    kind = str(spec.get("type") or "")
    if kind == "Pods":
        metric = ((spec.get("pods") or {}).get("metric") or {}).get("name")
        detail = f"unable to get metric {metric}: {NO_CUSTOM_METRICS}"
        return Failure("FailedGetPodsMetric", detail, f"failed to get pods metric value: {detail}")
    if kind == "Object":
        obj = spec.get("object") or {}
        ref = obj.get("describedObject") or {}
        metric = (obj.get("metric") or {}).get("name")
        detail = f"unable to get metric {metric}: {ref.get('kind')} on {namespace} {ref.get('name')}/{NO_CUSTOM_METRICS}"
        return Failure("FailedGetObjectMetric", detail, f"failed to get object metric value: {detail}")
    if kind == "External":
        metric = ((spec.get("external") or {}).get("metric") or {}).get("name")
        detail = f"unable to get external metric {namespace}/{metric}: {NO_EXTERNAL_METRICS}"
        return Failure("FailedGetExternalMetric", detail, f"failed to get {metric} external metric value: {detail}")
    detail = f'unknown metric source type "{kind}"'
    return Failure("InvalidMetricSourceType", detail, detail)


def metric_specs(hpa: Mapping[str, Any]) -> list[Obj]:
    """``spec.metrics`` (the API server defaults an empty list to cpu at 80%)."""
    specs = list((hpa.get("spec") or {}).get("metrics") or ())
    return specs or [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]


def parse_scale_selector(scale: Mapping[str, Any]) -> Selector | str:
    """The target's pod selector from its Scale, or the problem as an upstream message."""
    text = str(_status(scale).get("selector") or "")
    if not text:
        return "selector is required"
    try:
        return parse_selector(text)
    except api_errors.StatusError as e:
        return f"couldn't convert selector into a corresponding internal selector object: {e.message}"


def hpa_limits(hpa: Mapping[str, Any]) -> tuple[int, int]:
    spec = hpa.get("spec") or {}
    mn = spec.get("minReplicas")
    return (1 if mn is None else int(mn)), int(spec.get("maxReplicas") or 0)


def wants_metrics(hpa: Mapping[str, Any], scale: Mapping[str, Any]) -> bool:
    """Will ``reconcile`` look at metrics (the target's replicas are within [min, max] and not 0)?"""
    current = int((scale.get("spec") or {}).get("replicas") or 0)
    mn, mx = hpa_limits(hpa)
    return not (current == 0 and mn != 0) and mn <= current <= mx


# ------------------------------------------------------------------------------------------------
# reconcile
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observed:
    hpa: Obj
    scale: Obj | None                          # the target's autoscaling/v1 Scale
    scale_error: str | None = None             # why the Scale could not be read
    pods: tuple[Obj, ...] = ()                 # pods in the namespace the Scale's selector matches
    samples: Mapping[int, MetricSample | str] = field(default_factory=dict)   # per spec.metrics index
    controlling: tuple[str, ...] = ()          # keys of every HPA whose selector matches these pods
    history: History = History()
    now: dt.datetime = _EPOCH                  # wall clock (timestamps, pod readiness)
    mono: float = 0.0                          # monotonic seconds (windows, periods)
    config: Config = Config()


@dataclass(frozen=True)
class Plan:
    status: Obj                                # the status to write (if it differs from the stored one)
    history: History                           # history to keep when no rescale happens or it fails
    events: tuple[Event, ...] = ()             # to record now
    rescale_to: int | None = None              # write this to the Scale
    rescale_reason: str = ""
    history_rescaled: History | None = None    # history to keep after a successful rescale
    rescaled_events: tuple[Event, ...] = ()    # to record after a successful rescale
    failed_base: Obj | None = None             # the status a failed rescale starts from
    current: int = 0
    metric_statuses: tuple[Obj, ...] = ()
    error: str | None = None                   # what went wrong (logged; the key is retried next period)


def _metric_proposals(obs: Observed, status: Obj, events: list[Event],
                      current: int) -> tuple[int, str, tuple[Obj, ...], str | None]:
    """``computeReplicasForMetrics``: (replicas or -1, metric, statuses, error); sets ScalingActive."""
    hpa, scale, now = obs.hpa, obs.scale or {}, obs.now

    def set_active(state: str, reason: str, message: str) -> None:
        status["conditions"] = set_condition(status["conditions"], SCALING_ACTIVE, state, reason, message, now)

    selector = parse_scale_selector(scale)
    if isinstance(selector, str):
        if selector == "selector is required":
            events.append(Event("Warning", "SelectorRequired", selector))
            set_active("False", "InvalidSelector", "the HPA target's scale is missing a selector")
        else:
            events.append(Event("Warning", "InvalidSelector", selector))
            set_active("False", "InvalidSelector", selector)
        return -1, "", (), selector
    if len(obs.controlling) > 1:
        text = str(_status(scale).get("selector"))
        msg = f"pods by selector {text} are controlled by multiple HPAs: [{' '.join(obs.controlling)}]"
        events.append(Event("Warning", "AmbiguousSelector", msg))
        set_active("False", "AmbiguousSelector", msg)
        return -1, "", (), msg
    specs = metric_specs(hpa)
    ns = str(_md(hpa).get("namespace") or "")
    replicas, metric = 0, ""
    statuses: list[Obj] = []
    first: Failure | None = None
    invalid = 0
    for i, spec in enumerate(specs):
        if spec.get("type") in RESOURCE_METRIC_TYPES:
            got = compute_resource_metric(spec, current, obs.pods, obs.samples.get(i), now, obs.config)
        else:
            got = _unsupported_metric(spec, ns)
        if isinstance(got, Failure):
            events.append(Event("Warning", got.reason, got.detail))
            first = first or got
            invalid += 1
            continue
        statuses.append(got.status)
        if replicas == 0 or got.replicas > replicas:
            replicas, metric = got.replicas, got.metric
    error = None
    if first is not None:
        error = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first.error}"
    if invalid >= len(specs) or (invalid > 0 and replicas < current):
        assert first is not None
        set_active("False", first.reason, f"the HPA was unable to compute the replica count: {first.detail}")
        return -1, "", tuple(statuses), error
    set_active("True", "ValidMetricFound", f"the HPA was able to successfully calculate a replica count from {metric}")
    return replicas, metric, tuple(statuses), error


def _normalize(obs: Observed, status: Obj, current: int, desired: int,
               min_replicas: int, max_replicas: int) -> tuple[int, History]:
    """Stabilize and limit ``desired``; sets AbleToScale and ScalingLimited."""
    hpa, now = obs.hpa, obs.now
    behavior = (hpa.get("spec") or {}).get("behavior")
    conds = status.get("conditions") or []
    if behavior is None:
        stabilized, recs = stabilize(obs.history.recommendations, desired, obs.config.downscale_stabilization, obs.mono)
        if stabilized != desired:
            conds = set_condition(conds, ABLE_TO_SCALE, "True", "ScaleDownStabilized",
                                  "recent recommendations were higher than current one, applying the highest "
                                  "recent recommendation", now)
        else:
            conds = set_condition(conds, ABLE_TO_SCALE, "True", "ReadyForNewScale",
                                  "recommended size matches current size", now)
        final, reason, message = convert_with_rules(current, stabilized, min_replicas, max_replicas)
    else:
        up, down = scaling_rules(behavior, obs.config.downscale_stabilization)
        stabilized, reason, message, recs = stabilize_with_behaviors(
            obs.history.recommendations, desired, current, up, down, obs.mono)
        if stabilized != desired:
            conds = set_condition(conds, ABLE_TO_SCALE, "True", reason, message, now)
        else:
            conds = set_condition(conds, ABLE_TO_SCALE, "True", "ReadyForNewScale",
                                  "recommended size matches current size", now)
        final, reason, message = convert_with_behavior_rate(current, stabilized, min_replicas, max_replicas,
                                                            up, down, obs.history, obs.mono)
    limited = "False" if final == stabilized else "True"
    status["conditions"] = set_condition(conds, SCALING_LIMITED, limited, reason, message, now)
    return final, replace(obs.history, recommendations=recs)


def reconcile(obs: Observed) -> Plan:
    """Pure: what one sync of an HPA does (upstream ``reconcileAutoscaler``)."""
    hpa, now = obs.hpa, obs.now
    old: Mapping[str, Any] = hpa.get("status") or {}
    status: Obj = copy.deepcopy(dict(old))
    conds: list[Obj] = list(status.get("conditions") or [])
    events: list[Event] = []
    if obs.scale is None:
        err = obs.scale_error or "unrecognized resource"
        status["conditions"] = set_condition(conds, ABLE_TO_SCALE, "False", "FailedGetScale",
                                             f"the HPA controller was unable to get the target's current scale: {err}",
                                             now)
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        target = f"{ref.get('kind')}/{_md(hpa).get('namespace')}/{ref.get('name')}"
        return Plan(status, obs.history, (Event("Warning", "FailedGetScale", err),),
                    error=f"failed to query scale subresource for {target}: {err}")
    status["conditions"] = set_condition(conds, ABLE_TO_SCALE, "True", "SucceededGetScale",
                                         "the HPA controller was able to get the target's current scale", now)
    current = int((obs.scale.get("spec") or {}).get("replicas") or 0)
    history = obs.history
    if not history.recommendations:
        history = replace(history, recommendations=(Recommendation(current, obs.mono),))
    obs = replace(obs, history=history)
    min_replicas, max_replicas = hpa_limits(hpa)
    metric_statuses: tuple[Obj, ...] = ()
    error: str | None = None
    reason = ""
    rescale = True
    if current == 0 and min_replicas != 0:
        desired, rescale = 0, False
        status["conditions"] = set_condition(status["conditions"], SCALING_ACTIVE, "False", "ScalingDisabled",
                                             "scaling is disabled since the replica count of the target is zero", now)
    elif current > max_replicas:
        reason, desired = "Current number of replicas above Spec.MaxReplicas", max_replicas
    elif current < min_replicas:
        reason, desired = "Current number of replicas below Spec.MinReplicas", min_replicas
    else:
        proposed, metric, metric_statuses, error = _metric_proposals(obs, status, events, current)
        if proposed == -1:
            new_status = build_status(old, current, int(old.get("desiredReplicas") or 0), metric_statuses,
                                      status["conditions"], None)
            assert error is not None
            events.append(Event("Warning", "FailedComputeMetricsReplicas", error))
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            target = f"{ref.get('kind')}/{_md(hpa).get('namespace')}/{ref.get('name')}"
            return Plan(new_status, history, tuple(events), current=current, metric_statuses=metric_statuses,
                        error=f"failed to compute desired number of replicas based on listed metrics for {target}: {error}")
        desired = max(proposed, 0)
        if desired > current:
            reason = f"{metric} above target"
        if desired < current:
            reason = "All metrics below target"
        desired, history = _normalize(obs, status, current, desired, min_replicas, max_replicas)
        rescale = desired != current
    if not rescale:
        new_status = build_status(old, current, current, metric_statuses, status["conditions"], None)
        return Plan(new_status, history, tuple(events), current=current, metric_statuses=metric_statuses,
                    error=error)
    ok_conds = set_condition(status["conditions"], ABLE_TO_SCALE, "True", "SucceededRescale",
                             f"the HPA controller was able to update the target scale to {desired}", now)
    new_status = build_status(old, current, desired, metric_statuses, ok_conds, now)
    behavior = (hpa.get("spec") or {}).get("behavior")
    rescaled = record_scale_event(history, behavior, current, desired, obs.mono, obs.config.downscale_stabilization)
    base = dict(old)
    base["conditions"] = status["conditions"]
    return Plan(new_status, history, tuple(events), rescale_to=desired, rescale_reason=reason,
                history_rescaled=rescaled,
                rescaled_events=(Event("Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}"),),
                failed_base=base, current=current, metric_statuses=metric_statuses, error=error)


def rescale_failed(plan: Plan, err: str, now: dt.datetime) -> tuple[Obj, Event]:
    """The status and event when writing the Scale failed (AbleToScale=False, FailedUpdateScale)."""
    base = plan.failed_base or {}
    conds = set_condition(list(base.get("conditions") or []), ABLE_TO_SCALE, "False", "FailedUpdateScale",
                          f"the HPA controller was unable to update the target scale: {err}", now)
    status = build_status(base, plan.current, int(base.get("desiredReplicas") or 0), plan.metric_statuses,
                          conds, None)
    event = Event("Warning", "FailedRescale",
                  f"New size: {plan.rescale_to}; reason: {plan.rescale_reason}; error: {err}")
    return status, event


def controlling_hpas(pods: Iterable[Mapping[str, Any]], selectors: Mapping[str, Selector]) -> tuple[str, ...]:
    """Sorted keys of the HPAs whose (last known) selector matches any of ``pods``."""
    found: set[str] = set()
    for pod in pods:
        labels = _md(pod).get("labels") or {}
        for key, sel in selectors.items():
            if key not in found and sel.matches(labels):
                found.add(key)
    return tuple(sorted(found))
