from __future__ import annotations

import pytest

from kybernetes.scheduler.framework.interfaces import (
    ASSIGNED_POD,
    NODE,
    POD,
    ActionType,
    ClusterEvent,
)
from kybernetes.scheduler.queue import SchedulingQueue, backoff_duration
from kybernetes.scheduler.registry import new_framework
from tests.builders import make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_queue(clock: Clock, notify=None) -> SchedulingQueue:
    fw = new_framework()
    return SchedulingQueue(clock, fw.run_pre_enqueue_plugins, fw.events_to_register(), notify)


@pytest.mark.parametrize("attempts,want", [
    pytest.param(1, 1.0, id="1"), pytest.param(2, 2.0, id="2"), pytest.param(4, 8.0, id="4"),
    pytest.param(5, 10.0, id="capped"), pytest.param(50, 10.0, id="capped-large"),
])
def test_backoff_duration(attempts, want) -> None:
    assert backoff_duration(attempts) == want


def test_pop_order_priority_then_age() -> None:
    clock = Clock()
    q = new_queue(clock)
    for name, prio in [("old-low", 0), ("high", 10), ("new-low", 0)]:
        q.add(make_pod(name, priority=prio))
        clock.now += 1
    order = [q.pop_nowait().pod_info.name for _ in range(3)]
    assert order == ["high", "old-low", "new-low"]
    assert q.pop_nowait() is None


def test_notify_on_active() -> None:
    calls = []
    q = new_queue(Clock(), lambda: calls.append(1))
    q.add(make_pod("a"))
    assert calls == [1]


def test_gated_pod_waits_until_gates_removed() -> None:
    q = new_queue(Clock())
    pod = make_pod("g", scheduling_gates=["wait"])
    q.add(pod)
    assert q.where(pod) == "gated" and q.pop_nowait() is None
    assert q.move_all_to_active_or_backoff(ClusterEvent(NODE, ActionType.ADD)) == 0
    del pod["spec"]["schedulingGates"]
    q.update(pod)
    assert q.where(pod) == "active"


def test_unschedulable_moves_only_on_relevant_event() -> None:
    clock = Clock()
    q = new_queue(clock)
    pod = make_pod("p")
    q.add(pod)
    qpi = q.pop_nowait()
    q.add_unschedulable(qpi, {"NodeResourcesFit"})
    assert q.where(pod) == "unschedulable"
    assert q.move_all_to_active_or_backoff(ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT)) == 0
    assert q.where(pod) == "unschedulable"
    assert q.move_all_to_active_or_backoff(ClusterEvent(ASSIGNED_POD, ActionType.DELETE)) == 1
    assert q.where(pod) == "backoff"  # 1 s backoff after the first attempt
    clock.now += 0.5
    assert q.pop_nowait() is None
    assert q.next_wakeup() == pytest.approx(1001.0)
    clock.now += 0.5
    assert q.pop_nowait().pod_info.name == "p"


def test_taint_event_moves_pod_rejected_by_taints() -> None:
    clock = Clock()
    q = new_queue(clock)
    pod = make_pod("p")
    q.add(pod)
    qpi = q.pop_nowait()
    q.add_unschedulable(qpi, {"TaintToleration"})
    clock.now += 5
    assert q.move_all_to_active_or_backoff(ClusterEvent(NODE, ActionType.UPDATE_NODE_TAINT)) == 1
    assert q.where(pod) == "active"  # backoff already over


def test_event_during_scheduling_goes_to_backoff_not_unschedulable() -> None:
    q = new_queue(Clock())
    pod = make_pod("p")
    q.add(pod)
    qpi = q.pop_nowait()
    q.move_all_to_active_or_backoff(ClusterEvent(NODE, ActionType.ADD))  # while in flight
    q.add_unschedulable(qpi, {"NodeResourcesFit"})
    assert q.where(pod) == "backoff"


def test_error_without_plugin_goes_to_backoff() -> None:
    q = new_queue(Clock())
    pod = make_pod("p")
    q.add(pod)
    q.add_unschedulable(q.pop_nowait(), set())
    assert q.where(pod) == "backoff"


def test_leftover_flush_after_five_minutes() -> None:
    clock = Clock()
    q = new_queue(clock)
    pod = make_pod("p")
    q.add(pod)
    q.add_unschedulable(q.pop_nowait(), {"NodeAffinity"})
    clock.now += 299
    q.flush_unschedulable_leftover()
    assert q.where(pod) == "unschedulable"
    clock.now += 1
    q.flush_unschedulable_leftover()
    assert q.where(pod) == "active"


def test_delete_and_done() -> None:
    q = new_queue(Clock())
    a, b = make_pod("a"), make_pod("b")
    q.add(a)
    q.add(b)
    q.delete(a)
    qpi = q.pop_nowait()
    assert qpi.pod_info.name == "b" and q.pop_nowait() is None
    q.done(qpi.key)
    assert q.statistics() == {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0,
                              "in_flight": 0}


def test_update_priority_reorders_active() -> None:
    q = new_queue(Clock())
    a, b = make_pod("a"), make_pod("b")
    q.add(a)
    q.add(b)
    b["spec"]["priority"] = 5
    q.update(b)
    assert q.pop_nowait().pod_info.name == "b"
    assert q.pop_nowait().pod_info.name == "a"
    assert q.pop_nowait() is None


@pytest.mark.parametrize("registered,incoming,want", [
    pytest.param(ClusterEvent(POD, ActionType.DELETE), ClusterEvent(ASSIGNED_POD, ActionType.DELETE),
                 True, id="pod-covers-assigned"),
    pytest.param(ClusterEvent(NODE, ActionType.UPDATE), ClusterEvent(NODE, ActionType.UPDATE_NODE_LABEL),
                 True, id="update-covers-label"),
    pytest.param(ClusterEvent(NODE, ActionType.UPDATE_NODE_LABEL), ClusterEvent(NODE, ActionType.UPDATE),
                 False, id="specific-does-not-cover-generic"),
    pytest.param(ClusterEvent(NODE, ActionType.ADD), ClusterEvent(ASSIGNED_POD, ActionType.ADD),
                 False, id="other-resource"),
    pytest.param(ClusterEvent("*", ActionType.ALL), ClusterEvent(NODE, ActionType.DELETE),
                 True, id="wildcard"),
])
def test_cluster_event_matching(registered, incoming, want) -> None:
    assert registered.matches(incoming) is want
