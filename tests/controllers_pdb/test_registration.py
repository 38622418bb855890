"""The new modules plug into the controller manager's table (NAME, ALIASES, new(ctx))."""

from __future__ import annotations

from kybernetes.client import EventRecorder, InformerFactory
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.disruption import DisruptionController
from kybernetes.controllers.manager import ControllerContext, load_modules, select
from kybernetes.controllers.podgc import PodGCController


async def test_modules_select_and_build() -> None:
    mods = load_modules(("disruption", "podgc"))
    assert [(m.NAME, m.ALIASES) for m in mods] == [("disruption-controller", ("disruption",)),
                                                    ("pod-garbage-collector", ("podgc",))]
    assert [m.NAME for m in select(mods, "*,-podgc")] == ["disruption-controller"]
    client = ApiClient("http://127.0.0.1:9")
    try:
        ctx = ControllerContext(client=client, factory=InformerFactory(client),
                                recorder=EventRecorder(client, "controller-manager"),
                                options={"terminated_pod_gc_threshold": 7, "pod_gc_quarantine": 1.5})
        dc, gc = (m.new(ctx) for m in mods)
        assert isinstance(dc, DisruptionController) and dc.factory is ctx.factory
        assert isinstance(gc, PodGCController) and gc.factory is ctx.factory
        assert (gc.threshold, gc.quarantine_time, gc.period) == (7, 1.5, 20.0)
    finally:
        await client.close()
