"""Pure DaemonSet logic: eligibility, the daemon pod, manage, rolling update, status."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.controllers.daemonset.sync import Observed, reconcile, updated_pods_on_node
from kybernetes.controllers.daemonset.util import (
    add_daemon_tolerations,
    new_pod,
    node_should_run,
    surge_and_unavailable,
    target_node,
)
from kybernetes.controllers.history import DEFAULT_REVISION_LABEL

from .builders import NOW, daemonset, node, pod

Obj = dict[str, Any]
NO_SCHEDULE = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
NO_EXECUTE = {"key": "dedicated", "value": "db", "effect": "NoExecute"}


def obs(ds: Obj, nodes: list[Obj], pods: list[Obj], hash_: str = "h1", **kw: Any) -> Observed:
    return Observed(ds=ds, nodes=tuple(nodes), pods=tuple(pods), hash=hash_, now=NOW, **kw)


# -- eligibility ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("ds", "n", "want"), [
    pytest.param(daemonset(), node("a"), (True, True), id="plain"),
    pytest.param(daemonset(), node("a", taints=[NO_SCHEDULE]), (False, True), id="noschedule-keeps-existing"),
    pytest.param(daemonset(), node("a", taints=[NO_EXECUTE]), (False, False), id="noexecute-evicts"),
    pytest.param(daemonset(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
                 node("a", taints=[NO_SCHEDULE, NO_EXECUTE]), (True, True), id="tolerated"),
    pytest.param(daemonset(), node("a", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), (True, True),
                 id="prefer-no-schedule-ignored"),
    pytest.param(daemonset(), node("a", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
                 (True, True), id="default-toleration-not-ready"),
    pytest.param(daemonset(), node("a", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
                 (True, True), id="default-toleration-unschedulable"),
    pytest.param(daemonset(), node("a", taints=[{"key": "node.kubernetes.io/network-unavailable",
                                                 "effect": "NoSchedule"}]), (False, True),
                 id="network-unavailable-needs-hostnetwork"),
    pytest.param(daemonset(node_selector={"disk": "ssd"}), node("a"), (False, False), id="selector-miss"),
    pytest.param(daemonset(node_selector={"disk": "ssd"}), node("a", {"disk": "ssd"}), (True, True), id="selector-hit"),
])
def test_node_should_run(ds: Obj, n: Obj, want: tuple[bool, bool]) -> None:
    assert node_should_run(n, ds) == want


def test_node_affinity_expressions() -> None:
    ds = daemonset()
    ds["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}
    assert node_should_run(node("n1", {"zone": "b"}), ds) == (True, True)
    assert node_should_run(node("n2", {"zone": "c"}), ds) == (False, False)
    assert node_should_run(node("n3"), ds) == (False, False)


def test_host_network_tolerates_network_unavailable() -> None:
    spec: Obj = {"hostNetwork": True, "tolerations": [{"key": "node.kubernetes.io/not-ready",
                                                       "operator": "Exists", "effect": "NoExecute",
                                                       "tolerationSeconds": 5}]}
    add_daemon_tolerations(spec)
    keys = [(t["key"], t["effect"]) for t in spec["tolerations"]]
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") in keys
    assert len(keys) == 7 and len(set(keys)) == 7     # replaced, not duplicated
    assert all("tolerationSeconds" not in t for t in spec["tolerations"])


def test_new_pod_targets_node() -> None:
    ds = daemonset()
    ds["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}}
    p = new_pod(ds, "node-7", "abc")
    assert p["metadata"]["generateName"] == "ds-"
    assert p["metadata"]["labels"] == {"app": "ds", DEFAULT_REVISION_LABEL: "abc"}
    assert p["metadata"]["ownerReferences"][0]["controller"] is True
    terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-7"]}]}]
    assert "nodeName" not in p["spec"]
    assert target_node(p) == "node-7"
    assert {t["key"] for t in p["spec"]["tolerations"]} >= {"node.kubernetes.io/not-ready",
                                                            "node.kubernetes.io/unreachable"}
    assert "affinity" not in ds["spec"]["template"]["spec"]["affinity"]   # template untouched
    assert "tolerations" not in ds["spec"]["template"]["spec"]


@pytest.mark.parametrize(("ru", "desired", "want"), [
    pytest.param({"maxUnavailable": 1, "maxSurge": 0}, 5, (0, 1), id="defaults"),
    pytest.param({"maxUnavailable": "30%", "maxSurge": 0}, 5, (0, 2), id="percent-rounds-up"),
    pytest.param({"maxUnavailable": 0, "maxSurge": "20%"}, 4, (1, 0), id="surge"),
    pytest.param({"maxUnavailable": 0, "maxSurge": 0}, 4, (0, 1), id="both-zero"),
])
def test_surge_and_unavailable(ru: Obj, desired: int, want: tuple[int, int]) -> None:
    ds = daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": ru})
    assert surge_and_unavailable(ds, desired) == want


# -- manage -------------------------------------------------------------------------------------------
NODES = [node("n1"), node("n2"), node("n3"), node("n4", taints=[NO_SCHEDULE])]


@pytest.mark.parametrize(("pods", "nodes", "create_on", "delete"), [
    pytest.param([], NODES, ("n1", "n2", "n3"), (), id="fresh-skips-tainted"),
    pytest.param([pod("p1", node="n1"), pod("p2", node="n2")], NODES, ("n3",), (), id="one-missing"),
    pytest.param([pod("p1", node="n1"), pod("p2", node="n2"), pod("p3", node="n3"), pod("p4", node="n4")],
                 NODES, (), (), id="noschedule-keeps-running-pod"),
    pytest.param([pod("p1", node="n1"), pod("p2", node="n2"), pod("p3", node="n3"),
                  pod("p4", node="n5")], [*NODES[:3], node("n5", taints=[NO_EXECUTE])], (), ("p4",),
                 id="noexecute-evicts"),
    pytest.param([pod("p1", node="n1", created_ago=10), pod("p1b", node="n1", created_ago=100),
                  pod("p2", node="n2"), pod("p3", node="n3")], NODES, (), ("p1",), id="duplicate-keeps-oldest"),
    pytest.param([pod("p1", node="n1"), pod("p2", node="n2"), pod("p3", node="n3"),
                  pod("px", target="gone", phase="Pending", ready=False),
                  pod("py", node="gone2")], NODES, (), ("px",), id="unscheduled-on-deleted-node"),
    pytest.param([pod("p1", node="n1", phase="Failed", ready=False), pod("p2", node="n2"), pod("p3", node="n3")],
                 NODES, (), ("p1",), id="failed-deleted"),
    pytest.param([pod("p1", node="n1", deleting=True), pod("p2", node="n2"), pod("p3", node="n3")],
                 NODES, (), (), id="terminating-waits"),
])
def test_manage(pods: list[Obj], nodes: list[Obj], create_on: tuple[str, ...], delete: tuple[str, ...]) -> None:
    plan = reconcile(obs(daemonset(), nodes, pods))
    assert plan.create_on == create_on
    assert plan.delete == delete
    assert not plan.rolling


def test_failed_pod_in_backoff_waits() -> None:
    pods = [pod("p1", node="n1", phase="Failed", ready=False), pod("p2", node="n2"), pod("p3", node="n3")]
    plan = reconcile(obs(daemonset(), NODES, pods, backoff_nodes=frozenset({"n1"})))
    assert plan.delete == () and plan.waiting_backoff == ("n1",)
    plan = reconcile(obs(daemonset(), NODES, pods))
    assert plan.failed == (("p1", "n1"),)


def test_deleting_daemonset_only_status() -> None:
    plan = reconcile(obs(daemonset(deleting=True), NODES, []))
    assert plan.create_on == () and plan.delete == ()
    assert plan.status["desiredNumberScheduled"] == 3


# -- rolling update ---------------------------------------------------------------------------------
def five_nodes() -> list[Obj]:
    return [node(f"n{i}") for i in range(1, 6)]


def old_pods(n: int = 5, **kw: Any) -> list[Obj]:
    return [pod(f"p{i}", node=f"n{i}", hash_="old", **kw) for i in range(1, n + 1)]


@pytest.mark.parametrize(("ru", "pods", "create_on", "delete"), [
    pytest.param({"maxUnavailable": 1}, old_pods(), (), ("p1",), id="one-at-a-time"),
    pytest.param({"maxUnavailable": 2}, old_pods(), (), ("p1", "p2"), id="two-at-a-time"),
    pytest.param({"maxUnavailable": 2}, [pod("p1", node="n1", hash_="h1", ready=False), *old_pods()[1:]], (),
                 ("p2",), id="unavailable-new-pod-uses-budget"),
    pytest.param({"maxUnavailable": 1}, [*old_pods(4), pod("p5", node="n5", hash_="old", ready=False)], (),
                 ("p5",), id="unavailable-old-pod-replaced-free"),
    pytest.param({"maxUnavailable": 1}, [pod(f"p{i}", node=f"n{i}") for i in range(1, 6)], (), (), id="done"),
    pytest.param({"maxUnavailable": 0, "maxSurge": 1}, old_pods(), ("n1",), (), id="surge-creates"),
    pytest.param({"maxUnavailable": 0, "maxSurge": 1},
                 [*old_pods(), pod("q1", node="n1", hash_="h1")], (), ("p1",), id="surge-deletes-when-available"),
    pytest.param({"maxUnavailable": 0, "maxSurge": 1},
                 [*old_pods(), pod("q1", node="n1", hash_="h1", ready=False)], (), (),
                 id="surge-waits-for-new-pod"),
])
def test_rolling_update(ru: Obj, pods: list[Obj], create_on: tuple[str, ...], delete: tuple[str, ...]) -> None:
    ds = daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, **ru}})
    plan = reconcile(obs(ds, five_nodes(), pods))
    assert (plan.create_on, plan.delete) == (create_on, delete)


def test_on_delete_never_replaces() -> None:
    plan = reconcile(obs(daemonset(strategy={"type": "OnDelete"}), five_nodes(), old_pods()))
    assert plan.create_on == () and plan.delete == ()
    assert plan.status["updatedNumberScheduled"] == 0


def test_updated_pods_on_node() -> None:
    assert updated_pods_on_node([pod("a", hash_="h1"), pod("b", hash_="x")], "h1", None)[2]
    assert not updated_pods_on_node([pod("a", hash_="x"), pod("b", hash_="y")], "h1", None)[2]
    new, old, ok = updated_pods_on_node([pod("a", hash_="x", deleting=True)], "h1", None)
    assert (new, old, ok) == (None, None, True)


# -- status ------------------------------------------------------------------------------------------
def test_status_counts() -> None:
    nodes = [*five_nodes()[:4], node("n5", taints=[NO_SCHEDULE])]
    pods = [pod("p1", node="n1"), pod("p2", node="n2", hash_="old"), pod("p3", node="n3", ready=False),
            pod("p5", node="n5")]
    status = reconcile(obs(daemonset(), nodes, pods)).status
    assert status == {"currentNumberScheduled": 3, "numberMisscheduled": 1, "desiredNumberScheduled": 4,
                      "numberReady": 2, "observedGeneration": 1, "updatedNumberScheduled": 2,
                      "numberAvailable": 2, "numberUnavailable": 2}


def test_min_ready_seconds_requeues() -> None:
    plan = reconcile(obs(daemonset(min_ready=30), [node("n1")], [pod("p1", node="n1", ready_ago=10)]))
    assert plan.status["numberReady"] == 1 and plan.status["numberAvailable"] == 0
    assert plan.requeue_after == pytest.approx(20, abs=0.01)
