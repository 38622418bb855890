"""The pod garbage collector's pure planning (controllers/podgc.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.controllers.podgc import (
    ORPHANED,
    TERMINATED,
    TERMINATING_OUT_OF_SERVICE,
    TERMINATING_UNSCHEDULED,
    failed_status,
    is_terminated,
    orphans_of,
    out_of_service,
    plan_gc,
    terminated_to_delete,
)

from .builders import NOW, node, pod, ts

OOS = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}


def names(pods: Any) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


@pytest.mark.parametrize(("phase", "done"), [
    ("Pending", False), ("Running", False), ("Unknown", False), ("", False), ("Succeeded", True), ("Failed", True)])
def test_is_terminated(phase: str, done: bool) -> None:
    assert is_terminated(pod("p", phase=phase)) is done


def test_terminated_over_threshold_evicted_first_then_oldest() -> None:
    pods = [pod("old", phase="Succeeded", created=ts(300)), pod("mid", phase="Failed", created=ts(200)),
            pod("new", phase="Succeeded", created=ts(100)),
            pod("evicted", phase="Failed", reason="Evicted", created=ts(10)),
            pod("running", created=ts(1000))]
    assert names(terminated_to_delete(pods, 2)) == ["evicted", "old"]
    assert terminated_to_delete(pods, 4) == []
    assert terminated_to_delete(pods, 0) == []   # 0 disables


@pytest.mark.parametrize(("n", "oos"), [
    pytest.param(node("n", ready=False, taints=[OOS]), True, id="not-ready-and-tainted"),
    pytest.param(node("n", ready=True, taints=[OOS]), False, id="ready"),
    pytest.param(node("n", ready=False), False, id="untainted"),
])
def test_out_of_service(n: dict[str, Any], oos: bool) -> None:
    assert out_of_service(n) is oos


def plan(pods: list[dict[str, Any]], nodes: list[dict[str, Any]], *, quarantine: dict[str, float] | None = None,
         now: float = 100.0, threshold: int = 12500) -> Any:
    return plan_gc(pods, nodes, threshold=threshold, quarantine=quarantine or {}, quarantine_time=40.0, now=now)


def test_plan_picks_terminating_pods_that_nobody_will_finish() -> None:
    pods = [pod("oos", node="down", deleting=True), pod("oos-alive", node="down"),
            pod("healthy-node", node="up", deleting=True), pod("unscheduled", deleting=True),
            pod("pending")]
    p = plan(pods, [node("down", ready=False, taints=[OOS]), node("up")])
    assert [(v.pod["metadata"]["name"], v.reason) for v in p.delete] == \
        [("oos", TERMINATING_OUT_OF_SERVICE), ("unscheduled", TERMINATING_UNSCHEDULED)]
    assert p.quarantine == {} and p.check_nodes == ()


def test_a_pod_is_deleted_once_even_if_several_rules_match() -> None:
    both = pod("both", phase="Failed", deleting=True, created=ts(500))   # terminated and unscheduled-terminating
    p = plan([both, pod("newer", phase="Failed", created=ts(1))], [], threshold=1)
    assert [(v.pod["metadata"]["name"], v.reason) for v in p.delete] == [("both", TERMINATED)]
    p = plan([both], [], threshold=0)
    assert [(v.pod["metadata"]["name"], v.reason) for v in p.delete] == [("both", TERMINATING_UNSCHEDULED)]


def test_missing_nodes_are_quarantined_then_checked() -> None:
    pods = [pod("a", node="ghost"), pod("b", node="ghost"), pod("c", node="up")]
    first = plan(pods, [node("up")], now=100.0)
    assert first.quarantine == {"ghost": 100.0} and first.check_nodes == ()
    early = plan(pods, [node("up")], quarantine=first.quarantine, now=139.0)
    assert early.quarantine == {"ghost": 100.0} and early.check_nodes == ()
    due = plan(pods, [node("up")], quarantine=first.quarantine, now=140.0)
    assert due.check_nodes == ("ghost",)
    back = plan(pods, [node("up"), node("ghost")], quarantine=first.quarantine, now=150.0)
    assert back.quarantine == {} and back.check_nodes == ()


def test_orphans_of_gone_nodes() -> None:
    pods = [pod("a", node="ghost"), pod("b", node="up"), pod("c", node="ghost")]
    victims = orphans_of(pods, {"ghost"}, skip={"default/c"})
    assert [(v.pod["metadata"]["name"], v.reason) for v in victims] == [("a", ORPHANED)]


def test_failed_status() -> None:
    assert failed_status(pod("p", phase="Succeeded"), TERMINATED, NOW) is None
    assert failed_status(pod("p"), TERMINATING_UNSCHEDULED, NOW) == {"phase": "Failed"}
    st = failed_status(pod("p"), ORPHANED, NOW)
    assert st is not None and st["phase"] == "Failed"
    cond = st["conditions"][-1]
    assert (cond["type"], cond["reason"], cond["message"]) == \
        ("DisruptionTarget", "DeletionByPodGC", "PodGC: node no longer exists")
    assert st["conditions"][0]["type"] == "Ready"   # the other conditions stay
