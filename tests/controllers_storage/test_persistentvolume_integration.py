"""The PV binder and the local-path provisioner against the real in-process API server."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.client import NotFound
from kybernetes.client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, STORAGECLASSES
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.persistentvolume import ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE

from .builders import container, pod, pv, pvc, storage_class
from .conftest import StorageCluster, events_for, exists, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


async def phase(client: ApiClient, res: Any, name: str, ns: str | None = None) -> str | None:
    try:
        obj = await client.get(res, name, ns)
    except NotFound:
        return None
    return (obj.get("status") or {}).get("phase")


async def create_pv(client: ApiClient, obj: Obj) -> Obj:
    obj = {k: v for k, v in obj.items() if k != "status"}
    return await client.create(PERSISTENTVOLUMES, obj)


async def test_binds_smallest_fitting_volume_of_the_class(binder_only: StorageCluster) -> None:
    c = binder_only.client
    for vol in (pv("small", "1Gi"), pv("big", "10Gi"), pv("mid", "5Gi"), pv("gold-mid", "4Gi", klass="gold"),
                pv("rox", "4Gi", modes=("ReadOnlyMany",))):
        await create_pv(c, vol)
    await wait_for(lambda: _all_available(c, 5), what="volumes Available")
    await c.create(PERSISTENTVOLUMECLAIMS, pvc("data", "3Gi"), "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMECLAIMS, "data", "Bound", "default"), what="claim Bound")
    claim = await c.get(PERSISTENTVOLUMECLAIMS, "data", "default")
    assert claim["spec"]["volumeName"] == "mid"
    assert claim["status"]["capacity"] == {"storage": "5Gi"}
    assert claim["status"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["metadata"]["annotations"][ANN_BIND_COMPLETED] == "yes"
    assert claim["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"
    vol = await c.get(PERSISTENTVOLUMES, "mid")
    assert vol["status"]["phase"] == "Bound"
    assert vol["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert vol["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"
    assert await phase(c, PERSISTENTVOLUMES, "big") == "Available"


async def test_no_match_stays_pending_with_event(binder_only: StorageCluster) -> None:
    c = binder_only.client
    await create_pv(c, pv("rwo", "10Gi"))
    await wait_for(lambda: _all_available(c, 1), what="volume Available")
    await c.create(PERSISTENTVOLUMECLAIMS, pvc("shared", "1Gi", modes=("ReadWriteMany",)), "default")
    await c.create(PERSISTENTVOLUMECLAIMS, pvc("plain", "1Gi", klass=""), "default")

    async def has_event(name: str, reason: str) -> bool:
        return any(e.get("reason") == reason for e in await events_for(c, name))

    # a class that names no StorageClass object (static provisioning), as upstream
    await wait_for(lambda: has_event("shared", "ProvisioningFailed"), what="ProvisioningFailed event")
    await wait_for(lambda: has_event("plain", "FailedBinding"), what="FailedBinding event (no class)")
    msg = [e["message"] for e in await events_for(c, "shared") if e["reason"] == "ProvisioningFailed"]
    assert msg == ['storageclass.storage.k8s.io "manual" not found']
    assert await phase(c, PERSISTENTVOLUMECLAIMS, "shared", "default") == "Pending"
    assert await phase(c, PERSISTENTVOLUMES, "rwo") == "Available"
    # a fitting volume appearing later is picked up
    await create_pv(c, pv("rwx", "2Gi", modes=("ReadWriteMany", "ReadWriteOnce")))
    await wait_for(lambda: _is(c, PERSISTENTVOLUMECLAIMS, "shared", "Bound", "default"), what="late bind")
    assert (await c.get(PERSISTENTVOLUMECLAIMS, "shared", "default"))["spec"]["volumeName"] == "rwx"


async def test_user_pre_bound_volume_and_retain(binder_only: StorageCluster) -> None:
    c = binder_only.client
    await create_pv(c, pv("reserved", "50Gi", claim={"namespace": "default", "name": "mine"}))
    await create_pv(c, pv("fits", "1Gi"))
    await c.create(PERSISTENTVOLUMECLAIMS, pvc("mine", "1Gi"), "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMECLAIMS, "mine", "Bound", "default"), what="claim Bound")
    assert (await c.get(PERSISTENTVOLUMECLAIMS, "mine", "default"))["spec"]["volumeName"] == "reserved"
    await c.delete(PERSISTENTVOLUMECLAIMS, "mine", "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMES, "reserved", "Released"), what="volume Released")
    assert await phase(c, PERSISTENTVOLUMES, "reserved") == "Released"  # Retain keeps it


async def test_local_path_provisioning_delete(storage_cluster: StorageCluster) -> None:
    c = storage_cluster.client
    sc = await c.get(STORAGECLASSES, "local-path")
    assert sc["provisioner"] == "kybernetes.io/local-path"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    await c.create(PERSISTENTVOLUMECLAIMS, pvc("data", "2Gi", klass="local-path"), "default")

    async def waiting() -> bool:
        return any(e.get("reason") == "WaitForFirstConsumer" for e in await events_for(c, "data"))

    await wait_for(waiting, what="WaitForFirstConsumer event")
    assert (await c.list(PERSISTENTVOLUMES))["items"] == []
    await c.create(PODS, pod("app", claims=("data",), containers=[container()]), "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMECLAIMS, "data", "Bound", "default"), timeout=15,
                   what="claim Bound")
    claim = await c.get(PERSISTENTVOLUMECLAIMS, "data", "default")
    node = (await c.get(PODS, "app", "default"))["spec"]["nodeName"]
    assert claim["metadata"]["annotations"][ANN_SELECTED_NODE] == node
    uid = claim["metadata"]["uid"]
    vol = await c.get(PERSISTENTVOLUMES, f"pvc-{uid}")
    assert claim["spec"]["volumeName"] == f"pvc-{uid}"
    assert vol["status"]["phase"] == "Bound"
    assert vol["spec"]["hostPath"] == {"path": f"/var/lib/kybernetes/storage/pvc-{uid}_default_data",
                                       "type": "DirectoryOrCreate"}
    terms = vol["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]
    assert vol["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert vol["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "kybernetes.io/local-path"
    ok = [e for e in await events_for(c, "data") if e.get("reason") == "ProvisioningSucceeded"]
    assert ok and ok[0]["message"] == f"Successfully provisioned volume pvc-{uid}"
    assert ok[0]["involvedObject"]["kind"] == "PersistentVolumeClaim"
    assert ok[0]["involvedObject"]["uid"] == uid
    # reclaim Delete: once the claim is gone and no pod uses it any more, the PV object goes
    await c.delete(PERSISTENTVOLUMECLAIMS, "data", "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMES, f"pvc-{uid}", "Released"), what="PV Released")

    async def in_use() -> bool:
        return any(e.get("reason") == "VolumeFailedDelete" for e in await events_for(c, f"pvc-{uid}"))

    await wait_for(in_use, what="VolumeFailedDelete while the pod runs")
    assert await phase(c, PERSISTENTVOLUMES, f"pvc-{uid}") == "Released"
    await c.delete(PODS, "app", "default", grace_period_seconds=0)
    await wait_for(lambda: _gone(c, PERSISTENTVOLUMES, f"pvc-{uid}"), timeout=15, what="PV deleted")


async def test_local_path_retain(storage_cluster: StorageCluster) -> None:
    c = storage_cluster.client
    await c.create(STORAGECLASSES, storage_class("keep", policy="Retain"))
    await c.create(PERSISTENTVOLUMECLAIMS, pvc("db", "1Gi", klass="keep"), "default")
    await c.create(PODS, pod("db-0", claims=("db",)), "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMECLAIMS, "db", "Bound", "default"), timeout=15, what="claim Bound")
    name = (await c.get(PERSISTENTVOLUMECLAIMS, "db", "default"))["spec"]["volumeName"]
    assert (await c.get(PERSISTENTVOLUMES, name))["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    await c.delete(PODS, "db-0", "default", grace_period_seconds=0)
    await c.delete(PERSISTENTVOLUMECLAIMS, "db", "default")
    await wait_for(lambda: _is(c, PERSISTENTVOLUMES, name, "Released"), timeout=15, what="PV Released")
    assert await phase(c, PERSISTENTVOLUMES, name) == "Released"


async def test_local_path_class_is_not_recreated_or_overwritten(storage_cluster: StorageCluster) -> None:
    c = storage_cluster.client
    sc = await c.get(STORAGECLASSES, "local-path")
    sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "false"}
    await c.update(STORAGECLASSES, sc)
    assert await storage_cluster.provisioner.ensure_storage_class() is False  # type: ignore[union-attr]
    again = await c.get(STORAGECLASSES, "local-path")
    assert again["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"


async def _is(c: ApiClient, res: Any, name: str, want: str, ns: str | None = None) -> bool:
    return await phase(c, res, name, ns) == want


async def _gone(c: ApiClient, res: Any, name: str) -> bool:
    return not await exists(c, res, name)


async def _all_available(c: ApiClient, n: int) -> bool:
    items = (await c.list(PERSISTENTVOLUMES))["items"]
    return len(items) == n and all((i.get("status") or {}).get("phase") == "Available" for i in items)
