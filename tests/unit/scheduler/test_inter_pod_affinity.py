from __future__ import annotations

import pytest

from kybernetes.scheduler.cache import snapshot_from
from kybernetes.scheduler.framework.status import Code
from kybernetes.scheduler.plugins import inter_pod_affinity
from tests.builders import anti_affinity, make_node, make_pod, pod_affinity_term
from tests.unit.scheduler.helpers import filter_in, reasons, run_scores

ZONE = "topology.kubernetes.io/zone"
U, UU = int(Code.UNSCHEDULABLE), int(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
NODES = [make_node("a1", labels={ZONE: "a"}), make_node("a2", labels={ZONE: "a"}),
         make_node("b1", labels={ZONE: "b"}), make_node("nozone")]
WEB = {"app": "web"}


def required_affinity(labels: dict, key: str = ZONE, **extra) -> dict:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        pod_affinity_term(labels, key, **extra)]}}


def web(name: str, node: str, ns: str = "default", **kw) -> dict:
    return make_pod(name, ns, node=node, labels=WEB, **kw)


AFF = (UU, ("node(s) didn't match pod affinity rules",))
ANTI = (U, ("node(s) didn't match pod anti-affinity rules",))
EXISTING = (U, ("node(s) didn't satisfy existing pods anti-affinity rules",))


@pytest.mark.parametrize("pod,pods,node,want", [
    pytest.param(make_pod(affinity=required_affinity(WEB)), [web("w", "a1")], "a2", None,
                 id="affinity-same-zone"),
    pytest.param(make_pod(affinity=required_affinity(WEB)), [web("w", "a1")], "b1", AFF,
                 id="affinity-other-zone"),
    pytest.param(make_pod(affinity=required_affinity(WEB)), [web("w", "a1")], "nozone", AFF,
                 id="affinity-missing-topology-label"),
    pytest.param(make_pod(affinity=required_affinity(WEB)), [web("w", "a1", ns="other")], "a1", AFF,
                 id="affinity-other-namespace-does-not-count"),
    pytest.param(make_pod(affinity=required_affinity(WEB, namespaces=["other"])),
                 [web("w", "a1", ns="other")], "a2", None, id="affinity-explicit-namespace"),
    pytest.param(make_pod(affinity=required_affinity(WEB, namespaceSelector={})),
                 [web("w", "a1", ns="other")], "a2", None, id="affinity-all-namespaces"),
    pytest.param(make_pod(labels=WEB, affinity=required_affinity(WEB)), [], "b1", None,
                 id="first-pod-matching-itself"),
    pytest.param(make_pod(affinity=required_affinity(WEB)), [], "b1", AFF,
                 id="no-match-anywhere-and-not-self"),
    pytest.param(make_pod(affinity=anti_affinity(WEB, ZONE)), [web("w", "a1")], "a2", ANTI,
                 id="anti-affinity-zone"),
    pytest.param(make_pod(affinity=anti_affinity(WEB, ZONE)), [web("w", "a1")], "b1", None,
                 id="anti-affinity-other-zone"),
    pytest.param(make_pod(affinity=anti_affinity(WEB)), [web("w", "a1")], "a2", None,
                 id="anti-affinity-hostname"),
    pytest.param(make_pod(affinity=anti_affinity(WEB)), [web("w", "a1")], "a1", ANTI,
                 id="anti-affinity-same-host"),
    pytest.param(make_pod(labels=WEB), [make_pod("x", node="a1", affinity=anti_affinity(WEB, ZONE))],
                 "a2", EXISTING, id="existing-anti-affinity"),
    pytest.param(make_pod(labels={"app": "db"}),
                 [make_pod("x", node="a1", affinity=anti_affinity(WEB, ZONE))], "a2", None,
                 id="existing-anti-affinity-not-matching"),
    pytest.param(make_pod(labels=WEB), [make_pod("x", node="a1", affinity=anti_affinity(WEB, ZONE))],
                 "b1", None, id="existing-anti-affinity-other-zone"),
])
def test_filter(pod, pods, node, want) -> None:
    snap = snapshot_from(NODES, pods)
    assert reasons(filter_in(inter_pod_affinity.new(), pod, snap, node)) == want


def preferred(kind: str, labels: dict, weight: int, key: str = ZONE) -> dict:
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": weight, "podAffinityTerm": pod_affinity_term(labels, key)}]}}


@pytest.mark.parametrize("pod,pods,want", [
    pytest.param(make_pod(affinity=preferred("podAffinity", WEB, 10)), [web("w", "a1")],
                 {"a1": 100, "a2": 100, "b1": 0, "nozone": 0}, id="preferred-affinity"),
    pytest.param(make_pod(affinity=preferred("podAntiAffinity", WEB, 10)), [web("w", "a1")],
                 {"a1": 0, "a2": 0, "b1": 100, "nozone": 100}, id="preferred-anti-affinity"),
    pytest.param(make_pod(labels=WEB),
                 [make_pod("x", node="b1", affinity=preferred("podAffinity", WEB, 5))],
                 {"a1": 0, "a2": 0, "b1": 100, "nozone": 0}, id="existing-preferred-symmetry"),
    pytest.param(make_pod(labels=WEB), [make_pod("x", node="b1", affinity=required_affinity(WEB))],
                 {"a1": 0, "a2": 0, "b1": 100, "nozone": 0}, id="existing-required-hard-weight"),
    pytest.param(make_pod(), [web("w", "a1")], None, id="nothing-to-score-skips"),
])
def test_score(pod, pods, want) -> None:
    assert run_scores(inter_pod_affinity.new(), pod, NODES, pods) == want
