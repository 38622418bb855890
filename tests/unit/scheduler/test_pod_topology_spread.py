from __future__ import annotations

import pytest

from kybernetes.scheduler.cache import snapshot_from
from kybernetes.scheduler.framework.status import Code
from kybernetes.scheduler.plugins import pod_topology_spread
from tests.builders import make_node, make_pod
from tests.unit.scheduler.helpers import filter_in, reasons, run_scores

ZONE = "topology.kubernetes.io/zone"
U, UU = int(Code.UNSCHEDULABLE), int(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
NODES = [make_node("a1", labels={ZONE: "a"}), make_node("a2", labels={ZONE: "a"}),
         make_node("b1", labels={ZONE: "b"}), make_node("nozone")]
WEB = {"app": "web"}
SKEW = (U, ("node(s) didn't match pod topology spread constraints",))
LABEL = (UU, ("node(s) didn't match pod topology spread constraints (missing required label)",))


def spread(max_skew: int = 1, key: str = ZONE, when: str = "DoNotSchedule", **extra) -> list:
    return [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": WEB}, **extra}]


def web(name: str, node: str, **kw) -> dict:
    return make_pod(name, node=node, labels=WEB, **kw)


@pytest.mark.parametrize("pod,pods,node,want", [
    pytest.param(make_pod(labels=WEB, spread=spread()), [web("w1", "a1")], "b1", None,
                 id="empty-zone-ok"),
    pytest.param(make_pod(labels=WEB, spread=spread()), [web("w1", "a1")], "a2", SKEW,
                 id="would-skew-2"),
    pytest.param(make_pod(labels=WEB, spread=spread(2)), [web("w1", "a1")], "a2", None,
                 id="max-skew-2"),
    pytest.param(make_pod(spread=spread()), [web("w1", "a1")], "a2", None,
                 id="pod-not-matching-itself"),
    pytest.param(make_pod(labels=WEB, spread=spread()), [], "nozone", LABEL, id="missing-label"),
    pytest.param(make_pod(labels=WEB, spread=spread()),
                 [web("w1", "a1"), web("w2", "b1", deleting=True)], "a2", SKEW,
                 id="terminating-pods-ignored"),
    pytest.param(make_pod(labels=WEB, spread=spread(minDomains=3)),
                 [web("w1", "a1"), web("w2", "b1")], "a2", SKEW,
                 id="min-domains-forces-global-min-zero"),
    pytest.param(make_pod(labels=WEB, spread=spread(minDomains=2)),
                 [web("w1", "a1"), web("w2", "b1")], "a2", None, id="min-domains-satisfied"),
    pytest.param(make_pod(labels=WEB, node_selector={ZONE: "a"}, spread=spread()),
                 [web("w1", "a1"), web("w2", "a2")], "a2", None,
                 id="node-affinity-policy-honor-ignores-zone-b"),
    pytest.param(make_pod(labels=WEB, node_selector={ZONE: "a"},
                          spread=spread(nodeAffinityPolicy="Ignore")),
                 [web("w1", "a1"), web("w2", "a2")], "a2", SKEW, id="node-affinity-policy-ignore"),
    pytest.param(make_pod(labels={**WEB, "rev": "2"},
                          spread=spread(matchLabelKeys=["rev"])),
                 [web("w1", "a1"), web("w2", "a1")], "a2", None, id="match-label-keys"),
    pytest.param(make_pod(labels=WEB, spread=spread(when="ScheduleAnyway")), [web("w1", "a1")],
                 "a2", None, id="schedule-anyway-does-not-filter"),
])
def test_filter(pod, pods, node, want) -> None:
    snap = snapshot_from(NODES, pods)
    assert reasons(filter_in(pod_topology_spread.new(), pod, snap, node)) == want


def test_score_prefers_emptier_domain() -> None:
    pod = make_pod(labels=WEB, spread=spread(when="ScheduleAnyway"))
    scores = run_scores(pod_topology_spread.new(), pod, NODES, [web("w1", "a1"), web("w2", "a2")])
    assert scores is not None
    assert scores["nozone"] == 0  # ignored: lacks the key
    assert scores["b1"] == 100 and scores["a1"] == scores["a2"] < scores["b1"]


def test_score_hostname_counts_per_node() -> None:
    pod = make_pod(labels=WEB, spread=spread(when="ScheduleAnyway", key="kubernetes.io/hostname"))
    scores = run_scores(pod_topology_spread.new(), pod, NODES,
                        [web("w1", "a1"), web("w2", "a1"), web("w3", "a2")])
    assert scores is not None
    assert scores["b1"] == scores["nozone"] == 100 > scores["a2"] > scores["a1"]


def test_score_skips_without_soft_constraints() -> None:
    assert run_scores(pod_topology_spread.new(), make_pod(spread=spread()), NODES) is None
