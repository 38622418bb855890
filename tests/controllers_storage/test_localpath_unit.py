"""The local-path provisioner's decision (pure)."""

from __future__ import annotations

from kybernetes.controllers.localpath import PROVISIONER, compute_volume, decide, default_storage_class_object
from kybernetes.controllers.persistentvolume import ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER

from .builders import pvc, storage_class

SC = storage_class("local-path")
HANDED = {ANN_STORAGE_PROVISIONER: PROVISIONER, ANN_SELECTED_NODE: "sim-2"}


def test_default_class_object() -> None:
    sc = default_storage_class_object()
    assert sc["metadata"] == {"name": "local-path",
                              "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == (
        PROVISIONER, "Delete", "WaitForFirstConsumer")


def test_compute_volume() -> None:
    claim = pvc("data", "2Gi", ns="apps", klass="local-path", uid="abc", modes=("ReadWriteOnce",))
    claim["metadata"]["resourceVersion"] = "11"
    pv = compute_volume(claim, storage_class("local-path", policy="Retain"), "host-2")
    assert pv["metadata"] == {"name": "pvc-abc", "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}}
    spec = pv["spec"]
    assert spec["hostPath"] == {"path": "/var/lib/kybernetes/storage/pvc-abc_apps_data", "type": "DirectoryOrCreate"}
    assert spec["nodeAffinity"]["required"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["host-2"]}]}]
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["storageClassName"] == "local-path"
    assert spec["claimRef"]["uid"] == "abc" and spec["claimRef"]["namespace"] == "apps"


def test_decide_provisions_once_handed_over_with_a_node() -> None:
    claim = pvc("data", klass="local-path", uid="u", annotations=HANDED)
    d = decide(claim, SC, False, {"sim-2": "sim-2.example"})
    assert d.volume is not None and d.warning is None
    expr = d.volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr["values"] == ["sim-2.example"]


def test_decide_waits_or_skips() -> None:
    assert decide(pvc("d", klass="local-path", uid="u"), SC, False, {}).volume is None  # not handed over
    assert decide(pvc("d", klass="local-path", uid="u", annotations=HANDED), SC, True, {}).volume is None  # exists
    other = storage_class("nfs", provisioner="example.com/nfs")
    assert decide(pvc("d", klass="nfs", uid="u", annotations=HANDED), other, False, {}).volume is None
    assert decide(pvc("d", klass="local-path", uid="u", annotations=HANDED), None, False, {}).volume is None
    bound = pvc("d", klass="local-path", uid="u", annotations=HANDED, volume="pvc-u")
    assert decide(bound, SC, False, {}).volume is None


def test_decide_warns() -> None:
    no_node = pvc("d", klass="local-path", uid="u", annotations={ANN_STORAGE_PROVISIONER: PROVISIONER})
    assert "WaitForFirstConsumer" in (decide(no_node, SC, False, {}).warning or "")
    block = pvc("d", klass="local-path", uid="u", annotations=HANDED, mode="Block")
    assert "Block" in (decide(block, SC, False, {}).warning or "")
