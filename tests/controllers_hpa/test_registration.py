"""The HPA controller plugs into the controller manager's table and reads its options."""

from __future__ import annotations

from kybernetes.client import EventRecorder, InformerFactory
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.hpa import HorizontalController, builtin_scale_resource
from kybernetes.controllers.hpa_calc import Config
from kybernetes.controllers.manager import CONTROLLERS, ControllerContext, load_modules, select
from kybernetes.controllers.metricsclient import RestMetricsClient


async def test_registered_with_upstream_names() -> None:
    assert "hpa" in CONTROLLERS
    (mod,) = load_modules(("hpa",))
    assert (mod.NAME, mod.ALIASES) == ("horizontal-pod-autoscaler-controller", ("horizontalpodautoscaling",))
    assert select([mod], "horizontalpodautoscaling") == [mod]
    assert select([mod], "*,-horizontalpodautoscaling") == []
    client = ApiClient("http://127.0.0.1:9")
    try:
        ctx = ControllerContext(client=client, factory=InformerFactory(client),
                                recorder=EventRecorder(client, "controller-manager"),
                                options={"horizontal_pod_autoscaler_sync_period": 30,
                                         "horizontal_pod_autoscaler_downscale_stabilization": 60,
                                         "horizontal_pod_autoscaler_tolerance": 0.2})
        ctl = mod.new(ctx)
        assert isinstance(ctl, HorizontalController) and ctl.factory is ctx.factory
        assert ctl.sync_period == 30.0
        assert ctl.config == Config(tolerance=0.2, downscale_stabilization=60.0)
        assert isinstance(ctl.metrics, RestMetricsClient)
        assert ctl.workers == 5
    finally:
        await client.close()


def test_builtin_scale_targets() -> None:
    assert builtin_scale_resource("apps/v1", "Deployment").plural == "deployments"           # type: ignore[union-attr]
    assert builtin_scale_resource("apps/v1beta2", "StatefulSet").version == "v1"             # type: ignore[union-attr]
    assert builtin_scale_resource("v1", "ReplicationController").group == ""                 # type: ignore[union-attr]
    assert builtin_scale_resource("apps/v1", "ReplicaSet").plural == "replicasets"           # type: ignore[union-attr]
    assert builtin_scale_resource("example.com/v1", "Pool") is None
