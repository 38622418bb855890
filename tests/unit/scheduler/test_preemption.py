from __future__ import annotations

import pytest

from kybernetes.scheduler.cache import snapshot_from
from kybernetes.scheduler.framework.runtime import FitError
from kybernetes.scheduler.framework.types import PodInfo
from kybernetes.scheduler.plugins.default_preemption import (
    Candidate,
    pick_one_node,
    split_by_pdb_violation,
)
from kybernetes.scheduler.registry import new_framework
from tests.builders import make_node, make_pod


def low(name: str, node: str, prio: int, cpu: str = "1", start: str = "2024-01-01T00:00:00Z",
        **kw) -> dict:
    return make_pod(name, node=node, priority=prio, requests={"cpu": cpu}, start_time=start, **kw)


def preempt(nodes: list, pods: list, pod: dict, pdbs: list = ()) -> FitError:
    out = new_framework().run_scheduling_cycle(PodInfo(pod), snapshot_from(nodes, pods, pdbs=pdbs))
    assert isinstance(out, FitError)
    return out


def victims(out: FitError) -> tuple[str, list[str]]:
    r = out.post_filter_result
    assert r is not None
    return r.nominated_node_name, [v["metadata"]["name"] for v in r.victims]


HIGH = {"priority": 100, "requests": {"cpu": "2"}}


@pytest.mark.parametrize("nodes,pods,want", [
    pytest.param([make_node("n1", cpu="4")],
                 [low("p1", "n1", 1), low("p2", "n1", 2), low("p3", "n1", 3)],
                 ("n1", ["p1"]), id="fewest-lowest-priority-victims"),
    pytest.param([make_node("n1", cpu="2"), make_node("n2", cpu="2")],
                 [low("a", "n1", 5, "2"), low("b", "n2", 1, "2")],
                 ("n2", ["b"]), id="lowest-highest-victim-priority"),
    pytest.param([make_node("n1", cpu="2"), make_node("n2", cpu="2")],
                 [low("a1", "n1", 1), low("a2", "n1", 1), low("b", "n2", 1, "2")],
                 ("n2", ["b"]), id="smaller-priority-sum"),
    pytest.param([make_node("n1", cpu="2"), make_node("n2", cpu="2")],
                 [low("a", "n1", 1, "2", start="2024-01-01T00:00:00Z"),
                  low("b", "n2", 1, "2", start="2024-06-01T00:00:00Z")],
                 ("n2", ["b"]), id="latest-start-time"),
    pytest.param([make_node("n1", cpu="2")], [low("a", "n1", 1), low("b", "n1", 200)],
                 ("", []), id="higher-priority-pod-not-evicted"),
])
def test_victim_selection(nodes, pods, want) -> None:
    assert victims(preempt(nodes, pods, make_pod("hi", **HIGH))) == want


def test_pdb_protected_victim_avoided() -> None:
    nodes = [make_node("n1", cpu="2"), make_node("n2", cpu="2")]
    pods = [low("guarded", "n1", 1, "2", labels={"app": "db"}), low("free", "n2", 5, "2")]
    pdb = {"metadata": {"name": "db", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0}}
    assert victims(preempt(nodes, pods, make_pod("hi", **HIGH), [pdb])) == ("n2", ["free"])
    assert victims(preempt(nodes, pods, make_pod("hi", **HIGH))) == ("n1", ["guarded"])


def test_split_by_pdb_counts_budget_down() -> None:
    pods = [PodInfo(low(f"p{i}", "n", 1, labels={"app": "x"})) for i in range(3)]
    pdb = {"metadata": {"namespace": "default"}, "spec": {"selector": {"matchLabels": {"app": "x"}}},
           "status": {"disruptionsAllowed": 1, "disruptedPods": {"p2": "t"}}}
    bad, ok = split_by_pdb_violation(pods, [pdb])
    assert [p.name for p in bad] == ["p1"] and [p.name for p in ok] == ["p0", "p2"]


def test_no_victims_message() -> None:
    out = preempt([make_node("n1", cpu="1")], [], make_pod("hi", **HIGH))
    assert str(out) == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                        "available: 1 No preemption victims found for incoming pod.")
    assert victims(out) == ("", [])


def test_preemption_policy_never() -> None:
    out = preempt([make_node("n1", cpu="2")], [low("a", "n1", 1, "2")],
                  make_pod("hi", preemption_policy="Never", **HIGH))
    assert str(out) == ("0/1 nodes are available: 1 Insufficient cpu. "
                        "preemption: not eligible due to preemptionPolicy=Never.")
    assert out.post_filter_result is None


def test_terminating_victim_on_nominated_node_blocks_preemption() -> None:
    out = preempt([make_node("n1", cpu="2")], [low("a", "n1", 1, "2", deleting=True)],
                  make_pod("hi", nominated_node="n1", **HIGH))
    assert str(out).endswith("preemption: not eligible due to a terminating pod on the nominated node.")


def test_anti_affinity_victim_removed_via_prefilter_extensions() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    pods = [low("x", "n1", 1, "100m", labels={"app": "x"})]
    pod = make_pod("hi", priority=100, affinity=anti)
    assert victims(preempt([make_node("n1")], pods, pod)) == ("n1", ["x"])


def test_pick_one_node_zero_victims_wins() -> None:
    a = Candidate("a", (PodInfo(low("v", "a", 1)),), 0)
    b = Candidate("b", (), 0)
    assert pick_one_node([a, b]).node_name == "b"
