"""``kubectl autoscale`` (the real kubectl, which POSTs autoscaling/v1) creates an HPA the controller
acts on; and an HPA scaling a custom resource through its scale subresource (found by discovery)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import CUSTOMRESOURCEDEFINITIONS, DEPLOYMENTS, HORIZONTALPODAUTOSCALERS, PODS, Resource

from .conftest import NODE, Env, is_ready, condition, deployment, environment, hpa_body, wait_for

pytestmark = pytest.mark.integration
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


async def kubectl(api: Any, home: Path, *args: str) -> str:
    """Run the real kubectl against the in-process (plain HTTP, anonymous admin) API server."""
    home.mkdir(exist_ok=True)
    cfg = home / "kubeconfig"
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": api.base}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u", "namespace": "default"}}],
        "users": [{"name": "u", "user": {}}]}))
    env = {**os.environ, "KUBECONFIG": str(cfg), "HOME": str(home), "KUBECACHEDIR": str(home / "cache")}
    proc = await asyncio.create_subprocess_exec(KUBECTL, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def wait_replicas(env: Env, name: str, n: int) -> None:
    async def ok() -> bool:
        return await env.replicas(name) == n
    await wait_for(ok, timeout=60, what=f"{name} scaled to {n}")  # a sync period (15 s) or two under load


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")
async def test_kubectl_autoscale(api: Any, client: ApiClient, tmp_path: Path) -> None:
    async with environment(client) as env:
        await client.create(DEPLOYMENTS, deployment("shop"), "default")
        await env.deployment_ready("shop", 1)
        env.metrics.percent = 100
        out = await kubectl(api, tmp_path / "home", "autoscale", "deployment", "shop", "--cpu-percent=50",
                            "--min=1", "--max=5")
        assert "horizontalpodautoscaler.autoscaling/shop autoscaled" in out
        hpa = await client.get(HORIZONTALPODAUTOSCALERS, "shop", "default")      # read as v2
        assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)
        assert "behavior" not in hpa["spec"]

        # no behavior: upstream's legacy limits (at most max(2x, 4) per sync), then maxReplicas
        await wait_replicas(env, "shop", 2)
        await env.deployment_ready("shop", 2)
        await env.tick(15)
        await wait_replicas(env, "shop", 4)
        await env.deployment_ready("shop", 4)
        await env.tick(15)
        await wait_replicas(env, "shop", 5)
        await env.idle()
        st = await env.hpa_status("shop")
        assert condition(st, "ScalingLimited") == ("True", "TooManyReplicas",
                                                   "the desired replica count is more than the maximum replica count")
        v1 = await client.request("GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/shop")
        assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
        assert (v1["status"]["desiredReplicas"], v1["status"]["currentCPUUtilizationPercentage"]) == (5, 100)
        await env.deployment_ready("shop", 5)
        table = await kubectl(api, tmp_path / "home", "get", "hpa", "shop")
        assert "cpu: 100%/50%" in table and "Deployment/shop" in table


async def test_scales_a_custom_resource(client: ApiClient) -> None:
    async with environment(client) as env:
        await client.create(CUSTOMRESOURCEDEFINITIONS, {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "pools.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}},
                                   "subresources": {"scale": {"specReplicasPath": ".spec.replicas",
                                                              "statusReplicasPath": ".status.replicas",
                                                              "labelSelectorPath": ".status.selector"}}}]}})
        pools = Resource("example.com", "v1", "pools", "Pool")

        async def served() -> bool:
            try:
                await client.list(pools, "default")
            except Exception:  # noqa: BLE001 - not served yet
                return False
            return True
        await wait_for(served, what="the CRD served")
        await client.create(pools, {"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p"},
                                    "spec": {"replicas": 1}, "status": {"replicas": 1, "selector": "app=pool"}},
                            "default")
        await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": "pool-1", "labels": {"app": "pool"}},
                                   "spec": {"nodeName": NODE, "containers": [{
                                       "name": "app", "image": "busybox",
                                       "resources": {"requests": {"cpu": "200m"}}}]}}, "default")

        # the HPA syncs once at creation and then every 15 s of its (fake, not advanced) clock:
        # the pod must be Ready by then, or that sync finds no metrics and nothing scales
        async def pod_ready() -> bool:
            return is_ready(await client.get(PODS, "pool-1", "default"))
        await wait_for(pod_ready, what="pool-1 Running and Ready")
        env.metrics.percent = 150
        await client.create(HORIZONTALPODAUTOSCALERS,
                            hpa_body("pool", "p", kind="Pool", api_version="example.com/v1"), "default")

        async def scaled() -> bool:
            return (await client.get(pools, "p", "default"))["spec"]["replicas"] == 3
        try:
            await wait_for(scaled, timeout=60, what="the Pool scaled to 3 (150% of a 50% target)")
        except AssertionError as e:  # say why: the HPA's conditions and the Pool as it is
            raise AssertionError(f"{e}; hpa status: {await env.hpa_status('pool')}; "
                                 f"pool: {await client.get(pools, 'p', 'default')}") from None
        await env.idle()
        st = await env.hpa_status("pool")
        assert st["currentMetrics"][0]["resource"]["current"] == {"averageUtilization": 150, "averageValue": "300m"}
        assert condition(st, "AbleToScale")[:2] == ("True", "SucceededRescale")
