"""The modules plug into the controller manager's table (NAME, ALIASES, new(ctx))."""

from __future__ import annotations

from kybernetes.client import EventRecorder, InformerFactory
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.daemonset import DaemonSetController
from kybernetes.controllers.manager import ControllerContext, load_modules, select
from kybernetes.controllers.statefulset import StatefulSetController


async def test_modules_select_and_build() -> None:
    mods = load_modules(("daemonset", "statefulset"))
    assert [m.NAME for m in mods] == ["daemonset-controller", "statefulset-controller"]
    assert [m.NAME for m in select(mods, "statefulset")] == ["statefulset-controller"]
    assert [m.NAME for m in select(mods, "*,-daemonset")] == ["statefulset-controller"]
    client = ApiClient("http://127.0.0.1:9")
    try:
        ctx = ControllerContext(client=client, factory=InformerFactory(client),
                                recorder=EventRecorder(client, "controller-manager"),
                                options={"concurrent_daemonset_syncs": 3})
        ds, sts = (m.new(ctx) for m in mods)
        assert isinstance(ds, DaemonSetController) and ds.workers == 3
        assert isinstance(sts, StatefulSetController) and sts.workers == 5
        assert ds.factory is ctx.factory and sts.factory is ctx.factory
    finally:
        await client.close()
