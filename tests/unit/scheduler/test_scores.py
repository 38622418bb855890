"""Table-driven Score (+ NormalizeScore) tests."""

from __future__ import annotations

import pytest

from kybernetes.scheduler.plugins import (
    balanced_allocation,
    node_affinity,
    node_resources_fit,
    taint_toleration,
)
from kybernetes.scheduler.plugins.balanced_allocation import balanced_score
from tests.builders import make_node, make_pod, taint, toleration
from tests.unit.scheduler.helpers import run_scores

NODES = [make_node("big", cpu="4", memory="32Gi"), make_node("small", cpu="2", memory="32Gi")]


@pytest.mark.parametrize("pod,pods,want", [
    pytest.param(make_pod(requests={"cpu": "1", "memory": "8Gi"}), [], {"big": 75, "small": 62},
                 id="least-allocated"),
    pytest.param(make_pod(), [], {"big": 98, "small": 97}, id="best-effort-uses-nonzero-defaults"),
    pytest.param(make_pod(requests={"cpu": "1", "memory": "8Gi"}),
                 [make_pod("r", node="big", requests={"cpu": "2", "memory": "8Gi"})],
                 {"big": 37, "small": 62}, id="existing-requests-count"),
    pytest.param(make_pod(requests={"cpu": "5"}), [], {"big": 49, "small": 49},
                 id="over-capacity-scores-zero-for-that-resource"),
])
def test_least_allocated(pod, pods, want) -> None:
    assert run_scores(node_resources_fit.new(), pod, NODES, pods) == want


def test_most_allocated() -> None:
    plugin = node_resources_fit.new({"scoringStrategy": {"type": "MostAllocated"}})
    pod = make_pod(requests={"cpu": "1", "memory": "8Gi"})
    assert run_scores(plugin, pod, NODES) == {"big": 25, "small": 37}


@pytest.mark.parametrize("pod,pods,want", [
    pytest.param(make_pod(requests={"cpu": "1", "memory": "8Gi"}), [], {"big": 100, "small": 87},
                 id="balanced"),
    pytest.param(make_pod(), [], None, id="best-effort-skips"),
    pytest.param(make_pod(requests={"cpu": "1"}),
                 [make_pod("r", node="small", requests={"memory": "16Gi"})],
                 {"big": 87, "small": 100}, id="existing-memory-balances-small"),
])
def test_balanced_allocation(pod, pods, want) -> None:
    assert run_scores(balanced_allocation.new(), pod, NODES, pods) == want


@pytest.mark.parametrize("fractions,want", [
    pytest.param([0.5, 0.5], 100, id="equal"),
    pytest.param([1.0, 0.0], 50, id="extreme"),
    pytest.param([0.2, 0.5, 0.8], 75, id="three-resources-std"),
    pytest.param([0.3], 100, id="one"),
])
def test_balanced_score(fractions, want) -> None:
    assert balanced_score(fractions) == want


PREFER = "PreferNoSchedule"
TAINTED = [make_node("clean"), make_node("one", taints=[taint("a", "1", PREFER)]),
           make_node("two", taints=[taint("a", "1", PREFER), taint("b", "", PREFER)])]


@pytest.mark.parametrize("pod,want", [
    pytest.param(make_pod(), {"clean": 100, "one": 50, "two": 0}, id="counts-reversed"),
    pytest.param(make_pod(tolerations=[toleration("a", "1", PREFER)]),
                 {"clean": 100, "one": 100, "two": 0}, id="tolerated-prefer"),
    pytest.param(make_pod(tolerations=[toleration("a", "1", "NoSchedule")]),
                 {"clean": 100, "one": 50, "two": 0}, id="noschedule-toleration-ignored"),
    pytest.param(make_pod(tolerations=[toleration(operator="Exists")]),
                 {"clean": 100, "one": 100, "two": 100}, id="tolerate-everything"),
])
def test_taint_toleration_score(pod, want) -> None:
    assert run_scores(taint_toleration.new(), pod, TAINTED) == want


def preferred(*terms: tuple[int, dict]) -> dict:
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": w, "preference": {"matchExpressions": [e]}} for w, e in terms]}}


ZONE = "topology.kubernetes.io/zone"
LABELLED = [make_node("both", labels={ZONE: "a", "disk": "ssd"}), make_node("zone", labels={ZONE: "a"}),
            make_node("none")]


@pytest.mark.parametrize("pod,want", [
    pytest.param(make_pod(affinity=preferred(
        (5, {"key": ZONE, "operator": "In", "values": ["a"]}),
        (3, {"key": "disk", "operator": "In", "values": ["ssd"]}))),
        {"both": 100, "zone": 62, "none": 0}, id="weights-summed-and-normalized"),
    pytest.param(make_pod(), None, id="no-preferences-skip"),
])
def test_node_affinity_score(pod, want) -> None:
    assert run_scores(node_affinity.new(), pod, LABELLED) == want
