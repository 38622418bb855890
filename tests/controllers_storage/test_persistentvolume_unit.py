"""PV/PVC matching and binding decisions (pure)."""

from __future__ import annotations

import pytest

from kybernetes.controllers.persistentvolume import (
    ANN_BIND_COMPLETED,
    ANN_BOUND_BY_CONTROLLER,
    NodeInfo,
    bound_claim_status,
    claim_bound_to,
    claims_of_pod,
    find_matching_volume,
    node_selector_matches,
    volume_bound_to,
)

from .builders import pod, pv, pvc


def names(vol) -> str | None:  # type: ignore[no-untyped-def]
    return None if vol is None else vol["metadata"]["name"]


CLAIM = pvc("data", "3Gi", uid="u1")


@pytest.mark.parametrize("volumes, expected", [
    pytest.param([pv("small", "1Gi"), pv("big", "10Gi"), pv("mid", "5Gi")], "mid", id="smallest-fitting"),
    pytest.param([pv("exact", "3Gi"), pv("big", "4Gi")], "exact", id="exact-size-fits"),
    pytest.param([pv("small", "1Gi")], None, id="too-small"),
    pytest.param([pv("other", "5Gi", klass="gold")], None, id="class-mismatch"),
    pytest.param([pv("rox", "5Gi", modes=("ReadOnlyMany",))], None, id="access-mode-missing"),
    pytest.param([pv("many", "4Gi", modes=("ReadWriteOnce", "ReadOnlyMany")), pv("one", "8Gi")], "one",
                 id="fewest-access-modes-first"),
    pytest.param([pv("block", "5Gi", mode="Block")], None, id="volume-mode-mismatch"),
    pytest.param([pv("pending", "5Gi", phase="Pending")], None, id="not-available"),
    pytest.param([pv("taken", "5Gi", claim={"namespace": "default", "name": "other", "uid": "u9"})], None,
                 id="bound-to-other-claim"),
    pytest.param([pv("mine", "50Gi", phase="Pending", claim={"namespace": "default", "name": "data"}),
                  pv("mid", "5Gi")], "mine", id="pre-bound-by-name-wins"),
    pytest.param([pv("stale", "5Gi", claim={"namespace": "default", "name": "data", "uid": "old"})], None,
                 id="pre-bound-to-old-uid"),
])
def test_find_matching_volume(volumes, expected) -> None:  # type: ignore[no-untyped-def]
    assert names(find_matching_volume(CLAIM, volumes)) == expected


def test_claim_without_class_only_matches_classless_volumes() -> None:
    claim = pvc("c", "1Gi", klass=None)
    assert names(find_matching_volume(claim, [pv("manual", "1Gi"), pv("plain", "2Gi", klass=None)])) == "plain"


def test_selector() -> None:
    claim = pvc("c", "1Gi", selector={"matchLabels": {"tier": "db"}})
    vols = [pv("web", "1Gi", labels={"tier": "web"}), pv("db", "2Gi", labels={"tier": "db"})]
    assert names(find_matching_volume(claim, vols)) == "db"


def test_delay_binding_waits_for_node_but_keeps_pre_bound() -> None:
    vols = [pv("free", "5Gi")]
    assert find_matching_volume(CLAIM, vols, delay_binding=True) is None
    pre = pv("pre", "5Gi", claim={"namespace": "default", "name": "data", "uid": "u1"}, phase="Pending")
    assert names(find_matching_volume(CLAIM, [*vols, pre], delay_binding=True)) == "pre"


def test_node_affinity_with_selected_node() -> None:
    vols = [pv("on-n1", "4Gi", node="n1"), pv("on-n2", "5Gi", node="n2")]
    n2 = NodeInfo("n2", {"kubernetes.io/hostname": "n2"})
    assert names(find_matching_volume(CLAIM, vols, node=n2, delay_binding=True)) == "on-n2"
    pre = pv("pre", "5Gi", node="n1", claim={"namespace": "default", "name": "data", "uid": "u1"})
    assert find_matching_volume(CLAIM, [pre], node=n2, delay_binding=True) is None


@pytest.mark.parametrize("expr, labels, expected", [
    pytest.param({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"zone": "a"}, True, id="in"),
    pytest.param({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"zone": "a"}, False, id="notin"),
    pytest.param({"key": "zone", "operator": "NotIn", "values": ["a"]}, {}, True, id="notin-absent"),
    pytest.param({"key": "ssd", "operator": "Exists"}, {"ssd": ""}, True, id="exists"),
    pytest.param({"key": "ssd", "operator": "DoesNotExist"}, {"ssd": ""}, False, id="does-not-exist"),
    pytest.param({"key": "gen", "operator": "Gt", "values": ["3"]}, {"gen": "4"}, True, id="gt"),
    pytest.param({"key": "gen", "operator": "Lt", "values": ["3"]}, {"gen": "4"}, False, id="lt"),
])
def test_node_selector_expressions(expr, labels, expected) -> None:  # type: ignore[no-untyped-def]
    sel = {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}
    assert node_selector_matches(sel, "n", labels) is expected


def test_node_selector_terms_are_ored_and_match_fields() -> None:
    sel = {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert node_selector_matches(sel, "n7", {})
    assert not node_selector_matches(sel, "n8", {})
    assert not node_selector_matches({"nodeSelectorTerms": [{}]}, "n", {})
    assert node_selector_matches(None, "n", {})


def test_claims_of_pod() -> None:
    p = pod("web", claims=("a", "b"))
    p["spec"]["volumes"].append({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}})
    p["spec"]["volumes"].append({"name": "tmp", "emptyDir": {}})
    assert claims_of_pod(p) == ["a", "b", "web-scratch"]


def test_binding_writes() -> None:
    claim = pvc("data", "3Gi", uid="u1")
    claim["metadata"]["resourceVersion"] = "7"
    vol = pv("v", "5Gi")
    new_pv = volume_bound_to(vol, claim)
    assert new_pv is not None and new_pv["spec"]["claimRef"] == {
        "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default", "name": "data",
        "uid": "u1", "resourceVersion": "7"}
    assert new_pv["metadata"]["annotations"] == {ANN_BOUND_BY_CONTROLLER: "yes"}
    assert "claimRef" not in vol["spec"]  # input untouched
    assert volume_bound_to(new_pv, claim) is None  # idempotent
    # pre-bound by a provisioner: no bound-by-controller on the PV
    pre = pv("p", "5Gi", claim={"namespace": "default", "name": "data", "uid": "u1"})
    assert volume_bound_to(pre, claim) is None
    new_pvc = claim_bound_to(claim, new_pv)
    assert new_pvc is not None and new_pvc["spec"]["volumeName"] == "v"
    assert new_pvc["metadata"]["annotations"] == {ANN_BIND_COMPLETED: "yes", ANN_BOUND_BY_CONTROLLER: "yes"}
    assert claim_bound_to(new_pvc, new_pv) is None
    status = bound_claim_status(new_pvc, new_pv)
    assert status == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"}}
    assert bound_claim_status({**new_pvc, "status": status}, new_pv) is None
