"""One HPA sync as a pure function: replicas, conditions, status and events as upstream words them."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.controllers.hpa_calc import (
    Event,
    History,
    Observed,
    Plan,
    Recommendation,
    ScaleEvent,
    get_condition,
    reconcile,
    rescale_failed,
)

from .builders import NOW, container_metric, cpu_metric, hpa, pod, pods, sample, scale, ts

Obj = dict[str, Any]
MONO = 5_000.0
CPU = "cpu resource utilization (percentage of request)"
FETCH_ERR = "unable to fetch metrics from resource metrics API: the server could not find the requested resource"


def observe(h: Obj, replicas: int, usage: int | None = None, *, ps: tuple[Obj, ...] | None = None,
            samples: dict[int, Any] | None = None, history: History = History(), **kw: Any) -> Observed:
    """``replicas`` pods (1 cpu each) all using ``usage`` millicores."""
    ps = pods(replicas) if ps is None else ps
    if samples is None:
        samples = {0: sample({p["metadata"]["name"]: usage or 0 for p in ps})}
    return Observed(h, kw.pop("scale", scale(replicas)), kw.pop("scale_error", None), ps, samples,
                    kw.pop("controlling", ()), history, NOW, MONO, **kw)


def cond(plan_or_status: Plan | Obj, type_: str) -> tuple[str, str, str]:
    st = plan_or_status.status if isinstance(plan_or_status, Plan) else plan_or_status
    c = get_condition(st, type_)
    assert c is not None, f"no {type_} in {st}"
    return c["status"], c["reason"], c["message"]


def test_scale_up_from_cpu_utilization() -> None:
    plan = reconcile(observe(hpa(), 1, 1000))
    assert plan.rescale_to == 2
    assert plan.rescale_reason == f"{CPU} above target"
    assert plan.rescaled_events == (Event("Normal", "SuccessfulRescale",
                                          "New size: 2; reason: cpu resource utilization (percentage of request) "
                                          "above target"),)
    assert plan.status == {
        "currentReplicas": 1, "desiredReplicas": 2, "lastScaleTime": ts(0),
        "currentMetrics": [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": 100, "averageValue": "1"}}}],
        "conditions": [
            {"type": "AbleToScale", "status": "True", "lastTransitionTime": ts(0), "reason": "SucceededRescale",
             "message": "the HPA controller was able to update the target scale to 2"},
            {"type": "ScalingActive", "status": "True", "lastTransitionTime": ts(0), "reason": "ValidMetricFound",
             "message": f"the HPA was able to successfully calculate a replica count from {CPU}"},
            {"type": "ScalingLimited", "status": "False", "lastTransitionTime": ts(0),
             "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"}]}
    assert plan.events == () and plan.error is None
    # the first sync records the current size, then the new recommendation
    assert plan.history.recommendations == (Recommendation(1, MONO), Recommendation(2, MONO))
    assert plan.history_rescaled == plan.history          # no behavior: no scale events kept


@pytest.mark.parametrize(("replicas", "usage", "want", "limited"), [
    pytest.param(1, 5000, 4, ("True", "ScaleUpLimit"), id="at-most-4-from-1"),
    pytest.param(3, 5000, 6, ("True", "ScaleUpLimit"), id="at-most-double"),
    pytest.param(8, 1000, 10, ("True", "TooManyReplicas"), id="max"),
    pytest.param(4, 500, None, ("False", "DesiredWithinRange"), id="at-target"),
])
def test_legacy_limits(replicas: int, usage: int, want: int | None, limited: tuple[str, str]) -> None:
    plan = reconcile(observe(hpa(), replicas, usage))
    assert plan.rescale_to == want
    assert cond(plan, "ScalingLimited")[:2] == limited
    assert plan.status["desiredReplicas"] == (want or replicas)


def test_legacy_scale_down_is_stabilized_for_five_minutes() -> None:
    history = History((Recommendation(8, MONO - 200), Recommendation(8, MONO - 100)))
    plan = reconcile(observe(hpa(), 8, 100, history=history))
    assert plan.rescale_to is None
    assert cond(plan, "AbleToScale") == ("True", "ScaleDownStabilized", "recent recommendations were higher than "
                                         "current one, applying the highest recent recommendation")
    assert plan.status["desiredReplicas"] == 8
    later = History((Recommendation(8, MONO - 400), Recommendation(2, MONO - 100)))
    plan = reconcile(observe(hpa(), 8, 100, history=later))
    assert plan.rescale_to == 2                               # ceil(0.2 * 8) = 2, the highest of the window
    assert plan.rescale_reason == "All metrics below target"
    assert cond(plan, "AbleToScale")[1] == "SucceededRescale"


def test_configurable_downscale_window() -> None:
    from kybernetes.controllers.hpa_calc import Config

    history = History((Recommendation(8, MONO - 20),))
    assert reconcile(observe(hpa(), 8, 100, history=history)).rescale_to is None
    assert reconcile(observe(hpa(), 8, 100, history=history, config=Config(downscale_stabilization=10))).rescale_to == 2


def test_behavior_policies_limit_rate_and_record_events() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                              "policies": [{"type": "Percent", "value": 50, "periodSeconds": 15}]}}
    plan = reconcile(observe(hpa(behavior=behavior), 2, 1000))
    assert plan.rescale_to == 3
    assert cond(plan, "ScalingLimited") == ("True", "ScaleUpLimit", "the desired replica count is increasing "
                                            "faster than the maximum scale rate")
    assert plan.history_rescaled is not None
    assert plan.history_rescaled.scale_up == (ScaleEvent(1, MONO),)
    # within the period the budget is spent
    again = reconcile(observe(hpa(behavior=behavior), 3, 1000, history=plan.history_rescaled))
    assert again.rescale_to is None and cond(again, "ScalingLimited")[1] == "ScaleUpLimit"
    # scaling down: the 60 s window holds the highest recent recommendation
    recs = History((Recommendation(6, MONO - 30),))
    down = reconcile(observe(hpa(behavior=behavior), 6, 100, history=recs))
    assert down.rescale_to is None and cond(down, "AbleToScale")[1] == "ScaleDownStabilized"
    recs = History((Recommendation(6, MONO - 90), Recommendation(1, MONO - 30)))
    down = reconcile(observe(hpa(behavior=behavior), 6, 100, history=recs))
    assert down.rescale_to == 3 and cond(down, "ScalingLimited")[1] == "ScaleDownLimit"
    assert down.history_rescaled is not None and down.history_rescaled.scale_down == (ScaleEvent(3, MONO),)


def test_failed_get_scale() -> None:
    old = {"currentReplicas": 2, "desiredReplicas": 2}
    err = 'deployments.apps "web" not found'
    plan = reconcile(observe(hpa(status=old), 2, 100, scale=None, scale_error=err))
    assert plan.rescale_to is None
    assert plan.events == (Event("Warning", "FailedGetScale", err),)
    assert plan.status["desiredReplicas"] == 2 and plan.status["currentReplicas"] == 2
    assert cond(plan, "AbleToScale") == ("False", "FailedGetScale",
                                         f"the HPA controller was unable to get the target's current scale: {err}")
    assert plan.error == f"failed to query scale subresource for Deployment/default/web: {err}"


def test_failed_metrics() -> None:
    plan = reconcile(observe(hpa(status={"desiredReplicas": 3}), 2, samples={0: FETCH_ERR}))
    detail = f"failed to get cpu utilization: unable to get metrics for resource cpu: {FETCH_ERR}"
    summary = f"invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: {detail}"
    assert plan.events == (Event("Warning", "FailedGetResourceMetric", detail),
                           Event("Warning", "FailedComputeMetricsReplicas", summary))
    assert cond(plan, "ScalingActive") == ("False", "FailedGetResourceMetric",
                                           f"the HPA was unable to compute the replica count: {detail}")
    assert cond(plan, "AbleToScale")[:2] == ("True", "SucceededGetScale")
    assert plan.rescale_to is None
    assert (plan.status["currentReplicas"], plan.status["desiredReplicas"]) == (2, 3)
    assert "currentMetrics" not in plan.status


@pytest.mark.parametrize(("selector", "event", "message"), [
    pytest.param(None, ("SelectorRequired", "selector is required"),
                 "the HPA target's scale is missing a selector", id="missing"),
    pytest.param("app in (", ("InvalidSelector", None), None, id="invalid"),
])
def test_bad_selector(selector: str | None, event: tuple[str, str | None], message: str | None) -> None:
    plan = reconcile(observe(hpa(), 2, 100, scale=scale(2, selector)))
    ev = plan.events[0]
    assert ev.reason == event[0]
    if event[1] is not None:
        assert ev.message == event[1]
    else:
        assert ev.message.startswith("couldn't convert selector into a corresponding internal selector object: ")
    status, reason, msg = cond(plan, "ScalingActive")
    assert (status, reason) == ("False", "InvalidSelector")
    assert msg == (message or ev.message)
    assert plan.events[-1].reason == "FailedComputeMetricsReplicas"


def test_ambiguous_selector() -> None:
    plan = reconcile(observe(hpa(), 2, 1000, controlling=("default/other", "default/web")))
    assert plan.rescale_to is None
    status, reason, msg = cond(plan, "ScalingActive")
    assert (status, reason) == ("False", "AmbiguousSelector")
    assert msg == "pods by selector app=web are controlled by multiple HPAs: [default/other default/web]"


def test_scaling_disabled_at_zero() -> None:
    plan = reconcile(observe(hpa(), 0, ps=(), samples={}))
    assert plan.rescale_to is None
    assert cond(plan, "ScalingActive") == ("False", "ScalingDisabled",
                                           "scaling is disabled since the replica count of the target is zero")
    assert plan.status == {"desiredReplicas": 0, "conditions": plan.status["conditions"]}


@pytest.mark.parametrize(("replicas", "mn", "mx", "want", "reason"), [
    pytest.param(12, 1, 10, 10, "Current number of replicas above Spec.MaxReplicas", id="above-max"),
    pytest.param(1, 3, 10, 3, "Current number of replicas below Spec.MinReplicas", id="below-min"),
])
def test_out_of_range_is_corrected_without_metrics(replicas: int, mn: int, mx: int, want: int, reason: str) -> None:
    plan = reconcile(observe(hpa(min_replicas=mn, max_replicas=mx), replicas, samples={}))
    assert (plan.rescale_to, plan.rescale_reason) == (want, reason)
    assert plan.rescaled_events[0].message == f"New size: {want}; reason: {reason}"
    assert get_condition(plan.status, "ScalingActive") is None


def test_some_metrics_failing_still_scale_up() -> None:
    h = hpa(metrics=[cpu_metric(50), cpu_metric(50, name="memory")])
    plan = reconcile(observe(h, 2, samples={0: sample({"web-0": 1000, "web-1": 1000}), 1: FETCH_ERR}))
    assert plan.rescale_to == 4
    assert cond(plan, "ScalingActive")[:2] == ("True", "ValidMetricFound")
    assert [e.reason for e in plan.events] == ["FailedGetResourceMetric"]
    assert plan.error is not None and plan.error.startswith("invalid metrics (1 invalid out of 2)")
    assert len(plan.status["currentMetrics"]) == 1
    # ... but never scale down on partial data
    plan = reconcile(observe(h, 2, samples={0: sample({"web-0": 100, "web-1": 100}), 1: FETCH_ERR}))
    assert plan.rescale_to is None
    assert cond(plan, "ScalingActive")[:2] == ("False", "FailedGetResourceMetric")


@pytest.mark.parametrize(("metric", "reason"), [
    pytest.param({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                                  "averageValue": "1"}}},
                 "FailedGetPodsMetric", id="pods"),
    pytest.param({"type": "Object", "object": {"metric": {"name": "hits"}, "describedObject": {
        "kind": "Service", "name": "web"}, "target": {"type": "Value", "value": "1"}}},
                 "FailedGetObjectMetric", id="object"),
    pytest.param({"type": "External", "external": {"metric": {"name": "queue"}, "target": {
        "type": "Value", "value": "1"}}}, "FailedGetExternalMetric", id="external"),
])
def test_custom_metrics_are_not_served(metric: Obj, reason: str) -> None:
    plan = reconcile(observe(hpa(metrics=[metric]), 2, samples={}))
    assert cond(plan, "ScalingActive")[:2] == ("False", reason)
    assert "registered" in cond(plan, "ScalingActive")[2]


def test_container_resource_and_average_value_statuses() -> None:
    two = [{"name": "app", "resources": {"requests": {"cpu": "1"}}},
           {"name": "side", "resources": {"requests": {"cpu": "200m"}}}]
    ps = tuple(pod(f"web-{i}", containers=two) for i in range(2))
    plan = reconcile(observe(hpa(metrics=[container_metric("side", 50)]), 2, ps=ps,
                             samples={0: sample({"web-0": 200, "web-1": 200})}))
    assert plan.status["currentMetrics"] == [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "side", "current": {"averageUtilization": 100, "averageValue": "200m"}}}]
    assert plan.rescale_reason == "cpu container resource utilization (percentage of request) above target"
    plan = reconcile(observe(hpa(metrics=[cpu_metric(average_value="100m")]), 2, 250))
    assert plan.status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "250m"}}}]
    assert (plan.rescale_to, plan.rescale_reason) == (4, "cpu resource above target")


def test_steady_state_status_is_stable() -> None:
    first = reconcile(observe(hpa(), 2, 500))
    assert first.rescale_to is None
    second = reconcile(observe(hpa(status=first.status), 2, 500, history=first.history))
    assert second.status == first.status
    assert first.status["desiredReplicas"] == 2 and "lastScaleTime" not in first.status


def test_condition_transition_times_move_only_on_status_change() -> None:
    old_conds = [{"type": "AbleToScale", "status": "True", "lastTransitionTime": ts(600), "reason": "X",
                  "message": "m"},
                 {"type": "ScalingActive", "status": "True", "lastTransitionTime": ts(600), "reason": "Y",
                  "message": "m"}]
    plan = reconcile(observe(hpa(status={"conditions": old_conds}), 2, samples={0: FETCH_ERR}))
    assert get_condition(plan.status, "AbleToScale")["lastTransitionTime"] == ts(600)   # type: ignore[index]
    assert get_condition(plan.status, "ScalingActive")["lastTransitionTime"] == ts(0)   # type: ignore[index]


def test_rescale_failed() -> None:
    plan = reconcile(observe(hpa(status={"desiredReplicas": 1, "lastScaleTime": ts(900)}), 1, 1000))
    status, event = rescale_failed(plan, "Operation cannot be fulfilled", NOW)
    assert event == Event("Warning", "FailedRescale", "New size: 2; reason: cpu resource utilization (percentage "
                          "of request) above target; error: Operation cannot be fulfilled")
    assert cond(status, "AbleToScale") == ("False", "FailedUpdateScale", "the HPA controller was unable to update "
                                           "the target scale: Operation cannot be fulfilled")
    assert (status["currentReplicas"], status["desiredReplicas"], status["lastScaleTime"]) == (1, 1, ts(900))
    assert cond(status, "ScalingActive")[1] == "ValidMetricFound"
