"""The runtime: filter/score/select, FitError messages, sampling, and whole-cycle behaviour."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kybernetes.scheduler.cache import Cache, snapshot_from
from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.runtime import (
    Diagnosis,
    FitError,
    ScheduleResult,
    fit_error_message,
    num_feasible_nodes_to_find,
)
from kybernetes.scheduler.framework.status import unresolvable, unschedulable
from kybernetes.scheduler.framework.types import PodInfo
from kybernetes.scheduler.registry import new_framework
from tests.builders import anti_affinity, make_node, make_pod, taint

ZONE = "topology.kubernetes.io/zone"


def schedule(fw, pod, snap):
    return fw.run_scheduling_cycle(PodInfo(pod), snap)


@pytest.mark.parametrize("n,want", [
    pytest.param(5, 5, id="tiny"), pytest.param(99, 99, id="below-min"),
    pytest.param(100, 100, id="min"), pytest.param(200, 100, id="49pct-floored-to-min"),
    pytest.param(1000, 420, id="1000-nodes-42pct"), pytest.param(5000, 500, id="10pct"),
    pytest.param(20000, 1000, id="5pct-floor"),
])
def test_num_feasible_nodes_to_find(n, want) -> None:
    assert num_feasible_nodes_to_find(n) == want


def test_num_feasible_nodes_explicit_percentage() -> None:
    assert num_feasible_nodes_to_find(1000, 100) == 1000
    assert num_feasible_nodes_to_find(1000, 20) == 200


def test_fit_error_message_format() -> None:
    nodes = [make_node(f"small{i}", cpu="2") for i in range(3)] + [
        make_node(f"tainted{i}", cpu="8", taints=[taint("key", "value")]) for i in range(2)]
    out = schedule(new_framework(), make_pod(requests={"cpu": "3"}), snapshot_from(nodes))
    assert isinstance(out, FitError)
    assert str(out) == (
        "0/5 nodes are available: 2 node(s) had untolerated taint {key: value}, "
        "3 Insufficient cpu. preemption: 0/5 nodes are available: "
        "2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.")
    assert out.diagnosis.unschedulable_plugins == {"TaintToleration", "NodeResourcesFit"}
    assert out.post_filter_result is not None and out.post_filter_result.nominated_node_name == ""


def test_fit_error_message_without_post_filter() -> None:
    d = Diagnosis(node_to_status={"a": unschedulable("Insufficient cpu", "Insufficient memory"),
                                  "b": unresolvable("node(s) were unschedulable")})
    assert fit_error_message(2, d) == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) were unschedulable.")
    d.pre_filter_msg = "something failed early"
    assert fit_error_message(2, d) == "0/2 nodes are available: something failed early."


def test_prefilter_rejection_message() -> None:
    bad = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}]
    out = schedule(new_framework(), make_pod(spread=bad), snapshot_from([make_node("n")]))
    assert isinstance(out, FitError)
    assert str(out).startswith("0/1 nodes are available: parsing topologySpreadConstraints:")
    assert str(out).endswith(
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")


def test_picks_least_allocated_node() -> None:
    nodes = [make_node("busy"), make_node("idle")]
    pods = [make_pod("r", node="busy", requests={"cpu": "3", "memory": "1Gi"})]
    out = schedule(new_framework(), make_pod(requests={"cpu": "500m", "memory": "1Gi"}),
                   snapshot_from(nodes, pods))
    assert isinstance(out, ScheduleResult) and out.suggested_host == "idle"
    assert (out.evaluated_nodes, out.feasible_nodes) == (2, 2)


def test_single_feasible_node_short_circuits() -> None:
    nodes = [make_node("a", unschedulable=True), make_node("b")]
    out = schedule(new_framework(), make_pod(), snapshot_from(nodes))
    assert isinstance(out, ScheduleResult) and out.suggested_host == "b"


def test_nominated_node_is_tried_first() -> None:
    nodes = [make_node(f"n{i}") for i in range(5)]
    out = schedule(new_framework(), make_pod(nominated_node="n3"), snapshot_from(nodes))
    assert isinstance(out, ScheduleResult) and out.suggested_host == "n3"
    assert out.evaluated_nodes == 1


def test_sampling_evaluates_42_percent_of_1000_nodes_round_robin() -> None:
    snap = snapshot_from([make_node(f"n{i:04}") for i in range(1000)])
    fw = new_framework()
    out = schedule(fw, make_pod(), snap)
    assert isinstance(out, ScheduleResult) and out.feasible_nodes == 420
    assert fw.next_start_node_index == 420
    schedule(fw, make_pod("p2"), snap)
    assert fw.next_start_node_index == 840


def test_ties_broken_by_injected_rng() -> None:
    snap = snapshot_from([make_node(f"n{i}") for i in range(10)])
    picks = {schedule(new_framework(rng=random.Random(seed)), make_pod(), snap).suggested_host
             for seed in range(20)}
    assert len(picks) > 1  # all nodes tie; different seeds spread the choice


def test_spread_30_replicas_over_3_zones_one_by_one() -> None:
    cache = Cache()
    for z in "abc":
        for i in range(3 if z != "c" else 5):  # uneven node counts per zone
            cache.add_node(make_node(f"{z}{i}", labels={ZONE: z}))
    fw = new_framework()
    snap = None
    constraint = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "web"}}}]
    for i in range(30):
        snap = cache.update_snapshot(snap)
        pod = make_pod(f"web-{i}", labels={"app": "web"}, spread=constraint,
                       requests={"cpu": "100m", "memory": "128Mi"})
        out = fw.run_scheduling_cycle(PodInfo(pod), snap)
        assert isinstance(out, ScheduleResult), str(out)
        pod["spec"]["nodeName"] = out.suggested_host
        cache.assume_pod(pod)
        counts = Counter(n[0] for n in (p.node_name for ni in cache.update_snapshot().node_infos
                                        for p in ni.pods))
        assert max(counts.values()) - min(counts.get(z, 0) for z in "abc") <= 1
    final = Counter(p.node_name[0] for ni in cache.update_snapshot().node_infos for p in ni.pods)
    assert final == {"a": 10, "b": 10, "c": 10}


def test_required_anti_affinity_one_per_node_then_fit_error() -> None:
    cache = Cache()
    for i in range(5):
        cache.add_node(make_node(f"n{i}"))
    fw, snap, placed = new_framework(), None, []
    for i in range(6):
        snap = cache.update_snapshot(snap)
        pod = make_pod(f"w{i}", labels={"app": "w"}, affinity=anti_affinity({"app": "w"}))
        out = fw.run_scheduling_cycle(PodInfo(pod), snap)
        if i < 5:
            assert isinstance(out, ScheduleResult)
            pod["spec"]["nodeName"] = out.suggested_host
            cache.assume_pod(pod)
            placed.append(out.suggested_host)
        else:
            assert isinstance(out, FitError)
            assert str(out).startswith(
                "0/5 nodes are available: 5 node(s) didn't match pod anti-affinity rules.")
    assert sorted(placed) == [f"n{i}" for i in range(5)]


# -- property: the chosen node passes every filter ----------------------------------------------

node_st = st.builds(
    lambda i, cpu, mem, tainted, cordoned, zone: make_node(
        f"n{i}", cpu=f"{cpu}m", memory=f"{mem}Mi", labels={ZONE: zone},
        taints=[taint("dedicated", "x")] if tainted else None, unschedulable=cordoned),
    st.integers(0, 10**6), st.integers(0, 4000), st.integers(0, 4096), st.booleans(),
    st.booleans(), st.sampled_from("abc"))
pod_st = st.builds(
    lambda cpu, mem, zone, port, tolerate: make_pod(
        requests={"cpu": f"{cpu}m", "memory": f"{mem}Mi"},
        node_selector={ZONE: zone} if zone else None, host_ports=[port] if port else None,
        tolerations=[{"key": "dedicated", "operator": "Exists"}] if tolerate else None),
    st.integers(0, 3000), st.integers(0, 3000), st.sampled_from(["", "a", "b"]),
    st.sampled_from([0, 80]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(nodes=st.lists(node_st, min_size=1, max_size=8, unique_by=lambda n: n["metadata"]["name"]),
       pod=pod_st, existing_cpu=st.integers(0, 2000))
def test_selected_node_passes_every_filter(nodes, pod, existing_cpu) -> None:
    first = nodes[0]["metadata"]["name"]
    existing = [make_pod("e", node=first, requests={"cpu": f"{existing_cpu}m"}, host_ports=[80])]
    snap = snapshot_from(nodes, existing)
    fw = new_framework()
    out = fw.run_scheduling_cycle(PodInfo(pod), snap)
    pi = PodInfo(pod)
    state = CycleState()
    assert fw.run_pre_filter_plugins(state, pi, snap) is None
    verdicts = {ni.name: fw.run_filter_plugins(state, pi, ni) for ni in snap.node_infos}
    if isinstance(out, ScheduleResult):
        assert verdicts[out.suggested_host] is None
    else:
        assert isinstance(out, FitError)
        assert all(v is not None for v in verdicts.values())


@pytest.mark.parametrize("pod,want", [
    pytest.param(make_pod(), True, id="defaulted"),
    pytest.param(make_pod(scheduler_name="default-scheduler"), True, id="explicit"),
    pytest.param(make_pod(scheduler_name="other"), False, id="other-scheduler"),
])
def test_scheduler_name(pod, want) -> None:
    assert new_framework().handles(pod) is want
