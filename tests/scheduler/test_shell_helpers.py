"""Pure helpers of the scheduler shell: which node/pod updates matter, priority resolution,
and the status patch written after a failed attempt."""

from __future__ import annotations

import copy

import pytest

from kybernetes.scheduler.framework.interfaces import ActionType
from kybernetes.scheduler.scheduler import (
    assigned_pod_update_action,
    binding_for,
    failure_status_patch,
    node_update_action,
    resolve_priority,
    with_node_name,
)
from tests.builders import make_node, make_pod, taint

A = ActionType
NOW = "2026-01-01T00:00:00Z"


def _node_changed(**changes: object) -> dict:  # type: ignore[type-arg]
    n = make_node("n", labels={"a": "1"})
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        d = n
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
    return n


@pytest.mark.parametrize(("changes", "want"), [
    pytest.param({}, A(0), id="nothing"),
    pytest.param({"status__conditions": [{"type": "Ready", "status": "True",
                                          "lastHeartbeatTime": NOW}]}, A(0), id="heartbeat-only"),
    pytest.param({"status__conditions": [{"type": "Ready", "status": "False"}]},
                 A.UPDATE_NODE_CONDITION, id="not-ready"),
    pytest.param({"metadata__labels": {"a": "2"}}, A.UPDATE_NODE_LABEL, id="label"),
    pytest.param({"spec__taints": [taint("k")]}, A.UPDATE_NODE_TAINT, id="taint"),
    pytest.param({"spec__unschedulable": True}, A.UPDATE_NODE_TAINT, id="cordon"),
    pytest.param({"status__allocatable": {"cpu": "8"}}, A.UPDATE_NODE_ALLOCATABLE, id="allocatable"),
    pytest.param({"metadata__annotations": {"x": "y"}}, A.UPDATE_NODE_ANNOTATION, id="annotation"),
])
def test_node_update_action(changes: dict, want: ActionType) -> None:  # type: ignore[type-arg]
    assert node_update_action(make_node("n", labels={"a": "1"}), _node_changed(**changes)) == want


def test_assigned_pod_update_action() -> None:
    old = make_pod("p", node="n", labels={"app": "a"}, requests={"cpu": "1"})
    assert assigned_pod_update_action(old, copy.deepcopy(old)) == A(0)
    relabelled = make_pod("p", node="n", labels={"app": "b"}, requests={"cpu": "1"})
    assert assigned_pod_update_action(old, relabelled) == A.UPDATE_POD_LABEL
    smaller = make_pod("p", node="n", labels={"app": "a"}, requests={"cpu": "500m"})
    assert assigned_pod_update_action(old, smaller) == A.UPDATE_POD_SCALE_DOWN
    bigger = make_pod("p", node="n", labels={"app": "a"}, requests={"cpu": "2"})
    assert assigned_pod_update_action(old, bigger) == A(0)


CLASSES = {"high": (1000, False, ""), "never": (500, False, "Never"), "default": (7, True, "")}


@pytest.mark.parametrize(("spec", "classes", "want_priority", "want_policy"), [
    pytest.param({"priority": 3, "priorityClassName": "high"}, CLASSES, 3, None, id="already-set"),
    pytest.param({"priorityClassName": "high"}, CLASSES, 1000, None, id="by-class"),
    pytest.param({"priorityClassName": "never"}, CLASSES, 500, "Never", id="class-policy"),
    pytest.param({}, CLASSES, 7, None, id="global-default"),
    pytest.param({}, {"high": (1000, False, "")}, None, None, id="no-default"),
    pytest.param({"priorityClassName": "missing"}, CLASSES, None, None, id="unknown-class"),
])
def test_resolve_priority(spec: dict, classes: dict, want_priority: int | None,  # type: ignore[type-arg]
                          want_policy: str | None) -> None:
    pod = make_pod("p", **spec) if "priority" not in spec else make_pod("p", priority=spec["priority"])
    if "priorityClassName" in spec:
        pod["spec"]["priorityClassName"] = spec["priorityClassName"]
    before = copy.deepcopy(pod)
    out = resolve_priority(pod, classes)
    assert pod == before  # never modified in place
    assert out["spec"].get("priority", None) == (want_priority if want_priority is not None
                                                 else pod["spec"].get("priority"))
    assert out["spec"].get("preemptionPolicy") == want_policy


MSG = "0/1 nodes are available: 1 Insufficient cpu."


def test_failure_status_patch_first_time_and_unchanged() -> None:
    pod = make_pod("p")
    patch = failure_status_patch(pod, "Unschedulable", MSG, "", NOW)
    assert patch == {"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": MSG,
        "lastProbeTime": None, "lastTransitionTime": NOW}]}}
    pod["status"]["conditions"] = patch["status"]["conditions"]
    assert failure_status_patch(pod, "Unschedulable", MSG, "", "later") is None


def test_failure_status_patch_new_message_keeps_transition_time() -> None:
    pod = make_pod("p")
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": "old", "lastTransitionTime": "t0"}]
    patch = failure_status_patch(pod, "Unschedulable", MSG, "", NOW)
    assert patch is not None
    cond = patch["status"]["conditions"][0]
    assert (cond["message"], cond["lastTransitionTime"]) == (MSG, "t0")


def test_failure_status_patch_nomination_only() -> None:
    pod = make_pod("p")
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": MSG}]
    assert failure_status_patch(pod, "Unschedulable", MSG, "n1", NOW) == {
        "status": {"nominatedNodeName": "n1"}}
    pod["status"]["nominatedNodeName"] = "n1"
    assert failure_status_patch(pod, "Unschedulable", MSG, "n1", NOW) is None


def test_binding_and_assumed_copy() -> None:
    pod = make_pod("p", namespace="ns")
    assert binding_for(pod, "n1") == {
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-ns-p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    assumed = with_node_name(pod, "n1")
    assert assumed["spec"]["nodeName"] == "n1" and "nodeName" not in pod["spec"]
