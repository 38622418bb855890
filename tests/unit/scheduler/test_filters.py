"""Table-driven Filter tests for the single-node plugins."""

from __future__ import annotations

import pytest

from kybernetes.scheduler.framework.status import Code
from kybernetes.scheduler.framework.types import PodInfo
from kybernetes.scheduler.plugins import (
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    scheduling_gates,
    taint_toleration,
)
from tests.builders import make_node, make_pod, taint, toleration
from tests.unit.scheduler.helpers import reasons, run_filter

U, UU = int(Code.UNSCHEDULABLE), int(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


@pytest.mark.parametrize("pod,node,want", [
    pytest.param(make_pod(), make_node("n1"), None, id="no-node-name"),
    pytest.param(make_pod(nodeName="n1"), make_node("n1"), None, id="match"),
    pytest.param(make_pod(nodeName="n2"), make_node("n1"),
                 (UU, ("node(s) didn't match the requested node name",)), id="mismatch"),
])
def test_node_name(pod, node, want) -> None:
    assert reasons(run_filter(node_name.new(), pod, node)) == want


@pytest.mark.parametrize("pod,node,want", [
    pytest.param(make_pod(), make_node(), None, id="schedulable"),
    pytest.param(make_pod(), make_node(unschedulable=True), (UU, ("node(s) were unschedulable",)),
                 id="cordoned"),
    pytest.param(make_pod(tolerations=[toleration("node.kubernetes.io/unschedulable",
                                                  operator="Exists", effect="NoSchedule")]),
                 make_node(unschedulable=True), None, id="tolerates-cordon"),
])
def test_node_unschedulable(pod, node, want) -> None:
    assert reasons(run_filter(node_unschedulable.new(), pod, node)) == want


def running(cpu: str = "0", mem: str = "0", node: str = "node", name: str = "r") -> dict:
    return make_pod(name, node=node, requests={"cpu": cpu, "memory": mem})


@pytest.mark.parametrize("pod,node,pods,want", [
    pytest.param(make_pod(requests={"cpu": "1"}), make_node(cpu="2"), [running("1")], None,
                 id="exactly-fits"),
    pytest.param(make_pod(requests={"cpu": "1100m"}), make_node(cpu="2"), [running("1")],
                 (U, ("Insufficient cpu",)), id="cpu"),
    pytest.param(make_pod(requests={"cpu": "1", "memory": "2Gi"}), make_node(cpu="1", memory="1Gi"),
                 [running("500m")], (U, ("Insufficient cpu", "Insufficient memory")), id="cpu+memory"),
    pytest.param(make_pod(), make_node(pods=1), [running()], (U, ("Too many pods",)),
                 id="pods-count-even-best-effort"),
    pytest.param(make_pod(requests={"cpu": "3"}), make_node(cpu="4", pods=1), [running()],
                 (U, ("Too many pods",)), id="pods-count-first"),
    pytest.param(make_pod(requests={"cpu": "100m"}, init_containers=[
        {"name": "i", "resources": {"requests": {"cpu": "3"}}}]), make_node(cpu="4"),
        [running("2")], (U, ("Insufficient cpu",)), id="init-container-max"),
    pytest.param(make_pod(requests={"nvidia.com/gpu": "1"}), make_node(), [],
                 (U, ("Insufficient nvidia.com/gpu",)), id="extended-missing"),
    pytest.param(make_pod(requests={"nvidia.com/gpu": "1"}),
                 make_node(allocatable={"nvidia.com/gpu": "1"}), [], None, id="extended-present"),
    pytest.param(make_pod(requests={"ephemeral-storage": "2Gi"}),
                 make_node(allocatable={"ephemeral-storage": "1Gi"}), [],
                 (U, ("Insufficient ephemeral-storage",)), id="ephemeral"),
    pytest.param(make_pod(), make_node(cpu="1"), [running("1")], None, id="best-effort-fits-full"),
])
def test_node_resources_fit(pod, node, pods, want) -> None:
    assert reasons(run_filter(node_resources_fit.new(), pod, node, pods)) == want


@pytest.mark.parametrize("pod,node,want", [
    pytest.param(make_pod(), make_node(taints=[taint("a", "b")]),
                 (UU, ("node(s) had untolerated taint {a: b}",)), id="noschedule"),
    pytest.param(make_pod(), make_node(taints=[taint("a", effect="NoExecute")]),
                 (UU, ("node(s) had untolerated taint {a: }",)), id="noexecute"),
    pytest.param(make_pod(), make_node(taints=[taint("a", effect="PreferNoSchedule")]), None,
                 id="prefer-is-not-filtered"),
    pytest.param(make_pod(tolerations=[toleration("a", "b", "NoSchedule")]),
                 make_node(taints=[taint("a", "b")]), None, id="tolerated"),
    pytest.param(make_pod(tolerations=[toleration("a", "b", "NoSchedule")]),
                 make_node(taints=[taint("a", "b"), taint("c", "d", "NoExecute")]),
                 (UU, ("node(s) had untolerated taint {c: d}",)), id="second-untolerated"),
])
def test_taint_toleration_filter(pod, node, want) -> None:
    assert reasons(run_filter(taint_toleration.new(), pod, node)) == want


ZONE = "topology.kubernetes.io/zone"
MISMATCH = (UU, ("node(s) didn't match Pod's node affinity/selector",))


def required(*terms: dict) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}


def expr(key: str, op: str, *values: str) -> dict:
    e: dict = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


@pytest.mark.parametrize("pod,labels,want", [
    pytest.param(make_pod(), {}, None, id="none"),
    pytest.param(make_pod(node_selector={"disk": "ssd"}), {"disk": "ssd"}, None, id="selector"),
    pytest.param(make_pod(node_selector={"disk": "ssd"}), {"disk": "hdd"}, MISMATCH, id="selector-miss"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr(ZONE, "In", "a", "b")]})),
                 {ZONE: "b"}, None, id="in"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr(ZONE, "NotIn", "a")]})),
                 {ZONE: "a"}, MISMATCH, id="notin"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr(ZONE, "NotIn", "a")]})),
                 {}, None, id="notin-absent-key"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr("gpu", "Exists")]})),
                 {}, MISMATCH, id="exists"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr("gpu", "DoesNotExist")]})),
                 {}, None, id="does-not-exist"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr("cores", "Gt", "4")]})),
                 {"cores": "8"}, None, id="gt"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr("cores", "Lt", "4")]})),
                 {"cores": "8"}, MISMATCH, id="lt"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr("cores", "Gt", "x")]})),
                 {"cores": "8"}, MISMATCH, id="gt-invalid"),
    pytest.param(make_pod(affinity=required({"matchExpressions": [expr(ZONE, "In", "z")]},
                                            {"matchExpressions": [expr("gpu", "Exists")]})),
                 {"gpu": "1"}, None, id="terms-are-ored"),
    pytest.param(make_pod(affinity=required({})), {"a": "b"}, MISMATCH, id="empty-term-matches-nothing"),
    pytest.param(make_pod(affinity=required({"matchFields": [expr("metadata.name", "In", "node")]})),
                 {}, None, id="match-fields"),
    pytest.param(make_pod(node_selector={"disk": "ssd"},
                          affinity=required({"matchExpressions": [expr(ZONE, "In", "a")]})),
                 {ZONE: "a"}, MISMATCH, id="selector-and-affinity-both-needed"),
])
def test_node_affinity_filter(pod, labels, want) -> None:
    assert reasons(run_filter(node_affinity.new(), pod, make_node("node", labels=labels))) == want


@pytest.mark.parametrize("pod,existing,want", [
    pytest.param(make_pod(host_ports=[80]), [], None, id="free"),
    pytest.param(make_pod(host_ports=[80]), [make_pod("o", node="node", host_ports=[80])],
                 (U, ("node(s) didn't have free ports for the requested pod ports",)), id="taken"),
    pytest.param(make_pod(host_ports=[80]), [make_pod("o", node="node", host_ports=[81])], None,
                 id="other-port"),
    pytest.param(make_pod(containers=[{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 80, "protocol": "UDP"}]}]),
        [make_pod("o", node="node", host_ports=[80])], None, id="other-protocol"),
    pytest.param(make_pod(containers=[{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 80, "hostIP": "10.0.0.1"}]}]),
        [make_pod("o", node="node", containers=[{"name": "c", "ports": [
            {"containerPort": 80, "hostPort": 80, "hostIP": "10.0.0.2"}]}])], None, id="other-ip"),
    pytest.param(make_pod(containers=[{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 80, "hostIP": "10.0.0.1"}]}]),
        [make_pod("o", node="node", host_ports=[80])],
        (U, ("node(s) didn't have free ports for the requested pod ports",)), id="wildcard-ip-taken"),
    pytest.param(make_pod(host_ports=[80]), [make_pod("o", node="node", containers=[
        {"name": "c", "ports": [{"containerPort": 80, "hostPort": 80, "hostIP": "10.0.0.2"}]}])],
        (U, ("node(s) didn't have free ports for the requested pod ports",)), id="wildcard-wants-any"),
])
def test_node_ports(pod, existing, want) -> None:
    assert reasons(run_filter(node_ports.new(), pod, make_node(), existing)) == want


def test_scheduling_gates() -> None:
    plugin = scheduling_gates.new()
    assert plugin.pre_enqueue(PodInfo(make_pod())) is None
    st = plugin.pre_enqueue(PodInfo(make_pod(scheduling_gates=["a", "b"])))
    assert st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("waiting for scheduling gates: [a b]",)
