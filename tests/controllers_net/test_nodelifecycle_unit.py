"""Pure core of the node lifecycle controller and the DefaultTolerationSeconds rule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.controllers.nodelifecycle import (
    ADD,
    FULL_DISRUPTION,
    HOLD,
    NORMAL_STATE,
    PARTIAL_DISRUPTION,
    RELEASE,
    UNKNOWN_MESSAGE,
    UNKNOWN_REASON,
    NodeHealth,
    compute_taints,
    compute_zone_states,
    default_toleration_seconds,
    eviction_delay,
    no_execute_mode,
    observe_health,
    tolerates,
    unknown_conditions,
)

from .helpers import node, pod

NOW = dt.datetime(2024, 5, 1, 10, 5, tzinfo=dt.UTC)
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def keys(taints: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    return sorted((t["key"], t["effect"]) for t in taints or ())


# -- health -----------------------------------------------------------------------------------------
def lease(renew: str) -> dict[str, Any]:
    return {"spec": {"renewTime": renew}}


def test_observe_health_probes_on_lease_renewal_or_heartbeat() -> None:
    n = node()
    h0 = observe_health(None, n, lease("2024-05-01T10:00:00.000000Z"), 100.0)
    assert h0 == NodeHealth(100.0, "2024-05-01T10:00:00.000000Z", "2024-05-01T10:00:00Z", "True")
    same = observe_health(h0, n, lease("2024-05-01T10:00:00.000000Z"), 130.0)
    assert same.probe == 100.0
    renewed = observe_health(h0, n, lease("2024-05-01T10:00:10.000000Z"), 130.0)
    assert renewed.probe == 130.0
    older = observe_health(renewed, n, lease("2024-05-01T09:00:00.000000Z"), 150.0)
    assert older.probe == 130.0
    beat = observe_health(h0, node(heartbeat="2024-05-01T10:00:30Z"), None, 140.0)
    assert beat.probe == 140.0


def test_unknown_conditions() -> None:
    n = node(extra_conditions=[{"type": "NetworkUnavailable", "status": "False"}])
    conds = unknown_conditions(n, NOW)
    assert conds is not None
    by_type = {c["type"]: c for c in conds}
    for ctype in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
        assert by_type[ctype]["status"] == "Unknown"
        assert by_type[ctype]["reason"] == UNKNOWN_REASON
        assert by_type[ctype]["message"] == UNKNOWN_MESSAGE
        assert by_type[ctype]["lastTransitionTime"] == "2024-05-01T10:05:00Z"
        assert by_type[ctype]["lastHeartbeatTime"] == "2024-05-01T10:00:00Z"
    assert by_type["NetworkUnavailable"]["status"] == "False"
    assert unknown_conditions({**n, "status": {"conditions": conds}}, NOW) is None
    never = unknown_conditions(node(ready=None), NOW)
    assert never is not None and never[0]["reason"] == "NodeStatusNeverUpdated"


# -- taints -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,expected", [
    pytest.param(node(), [], id="healthy"),
    pytest.param(node(ready="Unknown"), [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")], id="unknown"),
    pytest.param(node(ready="False"), [(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")], id="not-ready"),
    pytest.param(node(unschedulable=True), [("node.kubernetes.io/unschedulable", "NoSchedule")], id="cordoned"),
    pytest.param(node(extra_conditions=[{"type": "NetworkUnavailable", "status": "True"}]),
                 [("node.kubernetes.io/network-unavailable", "NoSchedule")], id="network"),
])
def test_compute_taints_from_conditions(n: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert keys(compute_taints(n, NOW)) == expected


def test_no_execute_taint_has_time_added_and_foreign_taints_are_kept() -> None:
    foreign = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    taints = compute_taints(node(ready="Unknown", taints=[foreign]), NOW)
    assert taints is not None and taints[0] == foreign
    ne = next(t for t in taints if t["effect"] == "NoExecute")
    assert ne["timeAdded"] == "2024-05-01T10:05:00Z"
    # settled: nothing to change
    assert compute_taints(node(ready="Unknown", taints=taints), NOW) is None
    # healthy again: only the foreign taint stays
    assert compute_taints(node(taints=taints), NOW) == [foreign]
    # Unknown -> False swaps the keys
    assert keys(compute_taints(node(ready="False", taints=taints), NOW)) == [
        ("dedicated", "NoSchedule"), (NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")]


def test_no_execute_modes() -> None:
    held = [{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "x"}]
    assert keys(compute_taints(node(ready="Unknown"), NOW, HOLD)) == [(UNREACHABLE, "NoSchedule")]
    assert keys(compute_taints(node(ready="Unknown", taints=held), NOW, HOLD)) == [
        (UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
    assert keys(compute_taints(node(ready="Unknown", taints=held), NOW, RELEASE)) == [(UNREACHABLE, "NoSchedule")]


def test_zone_states_and_mode() -> None:
    nodes = [node("a1", zone="a"), node("b1", zone="b", ready="Unknown"),
             *(node(f"c{i}", zone="c", ready="False" if i < 3 else "True") for i in range(4))]
    states = compute_zone_states(nodes)
    assert {z.split(":")[1]: s for z, (s, _) in states.items()} == {
        "a": NORMAL_STATE, "b": FULL_DISRUPTION, "c": PARTIAL_DISRUPTION}
    assert no_execute_mode(states, ":b") == ADD
    assert no_execute_mode(states, ":c") == HOLD
    assert no_execute_mode(compute_zone_states([node("x", ready="Unknown")]), ":zone-a") == RELEASE


# -- taint manager ----------------------------------------------------------------------------------
def ne_taint(key: str = UNREACHABLE, added: str | None = "2024-05-01T10:04:00Z") -> dict[str, Any]:
    t = {"key": key, "effect": "NoExecute"}
    if added:
        t["timeAdded"] = added
    return t


@pytest.mark.parametrize("tolerations,taints,expected", [
    pytest.param([], [], None, id="no-taints"),
    pytest.param([], [ne_taint()], 0.0, id="untolerated"),
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}], [ne_taint()], None,
                 id="forever"),
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                 [ne_taint()], 241.0, id="pending"),
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 300}],
                 [ne_taint(added="2024-05-01T10:04:50Z")], 290.5, id="first-seen-within-the-second"),
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 30}],
                 [ne_taint()], 0.0, id="expired"),
    pytest.param([{"operator": "Exists"}], [ne_taint(), ne_taint(NOT_READY)], None, id="wildcard"),
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 300}],
                 [ne_taint(), ne_taint("other")], 0.0, id="one-untolerated"),
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 300}],
                 [ne_taint(added=None)], 290.5, id="no-time-added-uses-first-seen"),
])
def test_eviction_delay(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]],
                        expected: float | None) -> None:
    first_seen = NOW - dt.timedelta(seconds=9.5)
    assert eviction_delay(pod("a", tolerations=tolerations), taints, NOW, first_seen) == expected


@pytest.mark.parametrize("tol,expected", [
    pytest.param({"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}, True, id="equal"),
    pytest.param({"key": "k", "value": "w"}, False, id="value-mismatch"),
    pytest.param({"key": "k", "operator": "Exists"}, True, id="exists"),
    pytest.param({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, False, id="effect-mismatch"),
    pytest.param({"operator": "Exists"}, True, id="all"),
])
def test_tolerates(tol: dict[str, Any], expected: bool) -> None:
    assert tolerates(tol, {"key": "k", "value": "v", "effect": "NoExecute"}) is expected


# -- admission --------------------------------------------------------------------------------------
def test_default_toleration_seconds_adds_both() -> None:
    p = pod("a")
    default_toleration_seconds(p)
    assert p["spec"]["tolerations"] == [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]


@pytest.mark.parametrize("existing,added", [
    pytest.param([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}],
                 [NOT_READY], id="keeps-own-unreachable"),
    pytest.param([{"key": NOT_READY, "operator": "Exists"}], [UNREACHABLE], id="any-effect-counts"),
    pytest.param([{"operator": "Exists"}], [], id="tolerates-everything"),
    pytest.param([{"key": NOT_READY, "operator": "Exists", "effect": "NoSchedule"}], [NOT_READY, UNREACHABLE],
                 id="noschedule-does-not-count"),
])
def test_default_toleration_seconds_respects_existing(existing: list[dict[str, Any]], added: list[str]) -> None:
    p = pod("a", tolerations=[dict(t) for t in existing])
    default_toleration_seconds(p)
    assert p["spec"]["tolerations"][:len(existing)] == existing
    assert [t["key"] for t in p["spec"]["tolerations"][len(existing):]] == added
    again = [dict(t) for t in p["spec"]["tolerations"]]
    default_toleration_seconds(p)
    assert p["spec"]["tolerations"] == again   # idempotent
