"""The HPA controller against the in-process API server: a Deployment scaled up and down by cpu
utilization from a fake metrics client, on a fake clock that the test advances."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import DEPLOYMENTS, HORIZONTALPODAUTOSCALERS

from .conftest import Env, condition, deployment, environment, hpa_body, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
CPU = "cpu resource utilization (percentage of request)"

BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
    "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                  "policies": [{"type": "Percent", "value": 50, "periodSeconds": 15}]},
}


async def wait_replicas(env: Env, name: str, n: int) -> None:
    async def ok() -> bool:
        return await env.replicas(name) == n
    await wait_for(ok, what=f"{name} scaled to {n}")


async def test_scale_up_with_policies_then_down_after_stabilization(client: ApiClient) -> None:
    async with environment(client) as env:
        await client.create(DEPLOYMENTS, deployment("web"), "default")
        await env.deployment_ready("web", 1)
        env.metrics.percent = 100
        await client.create(HORIZONTALPODAUTOSCALERS, hpa_body("web", "web", behavior=BEHAVIOR), "default")

        # created: synced at once; 100% of a 50% target -> 2 (within the +2 pods per 60 s policy)
        await wait_replicas(env, "web", 2)
        await env.idle()
        st = await env.hpa_status("web")
        assert (st["currentReplicas"], st["desiredReplicas"]) == (1, 2)
        assert st["lastScaleTime"]
        assert st["currentMetrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": 100, "averageValue": "100m"}}}]
        assert condition(st, "AbleToScale") == ("True", "SucceededRescale",
                                                "the HPA controller was able to update the target scale to 2")
        assert condition(st, "ScalingActive") == (
            "True", "ValidMetricFound", f"the HPA was able to successfully calculate a replica count from {CPU}")
        assert condition(st, "ScalingLimited")[:2] == ("False", "DesiredWithinRange")
        assert env.metrics.calls[0] == ("cpu", "default", "app=web", "")

        # 2 pods at 100% want 4, but the policy allows 2 pods per 60 s from the period's start (1)
        await env.deployment_ready("web", 2)
        await env.tick(15)
        await wait_replicas(env, "web", 3)
        await env.idle()
        st = await env.hpa_status("web")
        assert condition(st, "ScalingLimited") == ("True", "ScaleUpLimit", "the desired replica count is "
                                                   "increasing faster than the maximum scale rate")
        await env.deployment_ready("web", 3)
        await env.tick(15)                                   # budget spent: stays at 3
        assert await env.replicas("web") == 3
        await env.tick(45)                                   # the first events left the period: 3 + 2
        await wait_replicas(env, "web", 5)
        await env.deployment_ready("web", 5)

        # low usage: 10% wants 1, but the 60 s scale-down window still holds the recent highs
        env.metrics.percent = 10
        await env.tick(15)
        assert await env.replicas("web") == 5
        st = await env.hpa_status("web")
        assert condition(st, "AbleToScale") == ("True", "ScaleDownStabilized", "recent recommendations were higher "
                                                "than current one, applying the highest recent recommendation")
        assert st["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 10
        # past the window: down by at most 50% per 15 s (5 -> 2 -> 1)
        await env.tick(61)
        await wait_replicas(env, "web", 2)
        await env.idle()
        assert condition(await env.hpa_status("web"), "ScalingLimited")[:2] == ("True", "ScaleDownLimit")
        await env.deployment_ready("web", 2)
        await env.tick(15)
        await wait_replicas(env, "web", 1)
        await env.deployment_ready("web", 1)
        await env.tick(15)
        st = await env.hpa_status("web")
        assert (st["currentReplicas"], st["desiredReplicas"]) == (1, 1)
        assert condition(st, "ScalingLimited")[:2] == ("False", "DesiredWithinRange")

        # steady state: a resync writes nothing
        writes = env.hpa.status_writes
        await env.tick(15)
        assert env.hpa.status_writes == writes

        msgs = [e["message"] for e in await env.events("web") if e["reason"] == "SuccessfulRescale"]
        assert f"New size: 2; reason: {CPU} above target" in msgs
        assert "New size: 1; reason: All metrics below target" in msgs


async def test_metrics_failure_sets_conditions_and_events(client: ApiClient) -> None:
    async with environment(client) as env:
        await client.create(DEPLOYMENTS, deployment("api", 2), "default")
        await env.deployment_ready("api", 2)
        env.metrics.error = ("unable to fetch metrics from resource metrics API: the server could not find the "
                             "requested resource (get pods.metrics.k8s.io)")
        await client.create(HORIZONTALPODAUTOSCALERS, hpa_body("api", "api"), "default")

        async def failed() -> bool:
            st = await env.hpa_status("api")
            return any(c["type"] == "ScalingActive" and c["status"] == "False" for c in st.get("conditions") or ())
        await wait_for(failed, what="ScalingActive=False")
        st = await env.hpa_status("api")
        detail = f"failed to get cpu utilization: unable to get metrics for resource cpu: {env.metrics.error}"
        assert condition(st, "ScalingActive") == ("False", "FailedGetResourceMetric",
                                                  f"the HPA was unable to compute the replica count: {detail}")
        assert condition(st, "AbleToScale")[:2] == ("True", "SucceededGetScale")
        assert st["currentReplicas"] == 2 and await env.replicas("api") == 2
        reasons = {e["reason"]: e["message"] for e in await env.events("api")}
        assert reasons["FailedGetResourceMetric"] == detail
        assert reasons["FailedComputeMetricsReplicas"] == (
            "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: " + detail)
        # metrics come back: scaling resumes on the next resync
        env.metrics.error, env.metrics.percent = None, 100
        await env.tick(15)
        await wait_replicas(env, "api", 4)


async def test_missing_target_reports_failed_get_scale(client: ApiClient) -> None:
    async with environment(client) as env:
        await client.create(HORIZONTALPODAUTOSCALERS, hpa_body("ghost", "nothing"), "default")

        async def reported() -> bool:
            return bool((await env.hpa_status("ghost")).get("conditions"))
        await wait_for(reported, what="FailedGetScale condition")
        st = await env.hpa_status("ghost")
        status, reason, message = condition(st, "AbleToScale")
        assert (status, reason) == ("False", "FailedGetScale")
        assert message.startswith("the HPA controller was unable to get the target's current scale: ")
        assert "nothing" in message
        await client.create(HORIZONTALPODAUTOSCALERS, hpa_body("bogus", "x", kind="Widget",
                                                               api_version="example.com/v1"), "default")
        await wait_for(lambda: _has_condition(env, "bogus"), what="FailedGetScale for an unknown kind")
        assert condition(await env.hpa_status("bogus"), "AbleToScale")[2].endswith(
            'no matches for kind "Widget" in group "example.com"')


async def _has_condition(env: Env, name: str) -> bool:
    return bool((await env.hpa_status(name)).get("conditions"))
