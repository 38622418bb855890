"""Pure cores of the ReplicaSet controller: ranking, diff, claiming, status, expectations."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.api.labels import selector_from_set
from kybernetes.controllers.replicaset import (
    REPLICASET,
    REPLICATIONCONTROLLER,
    Expectations,
    ManageError,
    classify_pods,
    compute_status,
    pod_from_template,
    pods_to_delete,
    slow_start_batch,
    status_patch,
)
from kybernetes.util.clock import FakeClock

Obj = dict[str, Any]
NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def t(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, *, node: str = "", phase: str = "Running", ready: bool | None = None, ready_ago: float = 100,
        created_ago: float = 100, restarts: int = 0, labels: dict[str, str] | None = None,
        owner: str | None = None) -> Obj:
    p: Obj = {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                           "creationTimestamp": t(created_ago), "labels": labels or {"app": "web"}},
              "spec": {"nodeName": node} if node else {},
              "status": {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}}
    if ready is not None:
        p["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                      "lastTransitionTime": t(ready_ago)}]
    if owner:
        p["metadata"]["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet", "name": "rs"}]
    return p


@pytest.mark.parametrize("pods,count,expected", [
    pytest.param([pod("a", node="n1", ready=True), pod("b")], 1, ["b"], id="unassigned-first"),
    pytest.param([pod("a", node="n", ready=True), pod("b", node="n", phase="Pending")], 1, ["b"], id="pending-first"),
    pytest.param([pod("a", node="n", phase="Running"), pod("b", node="n", phase="Unknown")], 1, ["b"], id="unknown-before-running"),
    pytest.param([pod("a", node="n1", ready=True), pod("b", node="n2", ready=False)], 1, ["b"], id="not-ready-first"),
    pytest.param([pod("a", node="n1", ready=True), pod("b", node="n2", ready=True), pod("c", node="n2", ready=True)],
                 1, ["b"], id="doubled-up-node-first"),
    pytest.param([pod("a", node="n1", ready=True, ready_ago=500), pod("b", node="n2", ready=True, ready_ago=5)],
                 1, ["b"], id="recently-ready-first"),
    pytest.param([pod("a", node="n1", ready=True, restarts=0), pod("b", node="n2", ready=True, restarts=4)],
                 1, ["b"], id="more-restarts-first"),
    pytest.param([pod("a", node="n1", created_ago=500), pod("b", node="n2", created_ago=5)], 1, ["b"], id="newer-first"),
    pytest.param([pod("a"), pod("b")], 0, [], id="nothing"),
    pytest.param([pod("a", node="n1", ready=True), pod("b"), pod("c", node="n2", phase="Pending")], 2, ["b", "c"],
                 id="two"),
])
def test_pods_to_delete_ranking(pods: list[Obj], count: int, expected: list[str]) -> None:
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, count)] == expected


def test_classify_pods() -> None:
    sel = selector_from_set({"app": "web"})
    pods = [pod("mine", owner="rs-uid"), pod("orphan"), pod("other", owner="x"),
            pod("stray", owner="rs-uid", labels={"app": "db"}), pod("orphan-db", labels={"app": "db"})]
    claim = classify_pods("rs-uid", sel, pods, owner_deleting=False)
    names = lambda ps: [p["metadata"]["name"] for p in ps]
    assert (names(claim.owned), names(claim.adopt), names(claim.release)) == (["mine"], ["orphan"], ["stray"])
    deleting = classify_pods("rs-uid", sel, pods, owner_deleting=True)
    assert (names(deleting.adopt), names(deleting.release)) == ([], [])


def rs(min_ready: int = 0, status: Obj | None = None) -> Obj:
    return {"metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": 3, "minReadySeconds": min_ready,
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}},
            "status": status or {}}


def test_compute_status_counts_and_min_ready_wake() -> None:
    pods = [pod("a", ready=True, ready_ago=100, labels={"app": "web", "tier": "fe"}),
            pod("b", ready=True, ready_ago=2), pod("c", ready=False)]
    status, wake = compute_status(rs(min_ready=10), pods, None, NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 1, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 3}
    assert wake == pytest.approx(8.0)
    status, wake = compute_status(rs(min_ready=0), pods, None, NOW)
    assert status["availableReplicas"] == 2 and wake is None


def test_compute_status_replica_failure_condition() -> None:
    status, _ = compute_status(rs(), [], ManageError("FailedCreate", "quota"), NOW)
    cond = status["conditions"][0]
    assert (cond["type"], cond["reason"], cond["message"]) == ("ReplicaFailure", "FailedCreate", "quota")
    cleared, _ = compute_status(rs(status=status), [], None, NOW)
    assert "conditions" not in cleared and cleared == {"replicas": 0, "observedGeneration": 3}


def test_status_patch_nulls_dropped_fields() -> None:
    assert status_patch({"replicas": 3, "readyReplicas": 3}, {"replicas": 2}) == {"readyReplicas": None, "replicas": 2}


def test_pod_from_template() -> None:
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"},
             "spec": {"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    p = pod_from_template(owner, REPLICASET)
    assert p["metadata"]["generateName"] == "web-" and p["metadata"]["labels"] == {"app": "web"}
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                 "uid": "u", "controller": True, "blockOwnerDeletion": True}]
    assert pod_from_template(owner, REPLICATIONCONTROLLER)["metadata"]["ownerReferences"][0]["apiVersion"] == "v1"


def test_rc_selector_is_a_map() -> None:
    assert REPLICATIONCONTROLLER.selector({"spec": {"selector": {"app": "x"}}}).matches({"app": "x"})
    assert not REPLICATIONCONTROLLER.selector({"spec": {}}).matches({"app": "x"})


def test_expectations() -> None:
    clock = FakeClock()
    exp = Expectations(clock, timeout=300)
    assert exp.satisfied("k")
    exp.expect_creations("k", 2)
    assert not exp.satisfied("k")
    exp.creation_observed("k")
    exp.creation_observed("k")
    assert exp.satisfied("k")
    exp.expect_deletions("k", ["ns/a", "ns/b"])
    exp.deletion_observed("k", "ns/a")
    exp.deletion_observed("k", "ns/a")
    assert not exp.satisfied("k") and exp.pending("k") == (0, 1)
    clock.advance(301)
    assert exp.satisfied("k")   # expired


async def test_slow_start_batch_grows_and_stops_on_error() -> None:
    calls = 0

    async def ok() -> None:
        nonlocal calls
        calls += 1

    assert await slow_start_batch(10, ok) == (10, None)
    assert calls == 10
    calls = 0

    async def fail_after_4() -> None:
        nonlocal calls
        calls += 1
        if calls > 4:
            raise RuntimeError("quota")

    done, err = await slow_start_batch(100, fail_after_4)
    # batches 1, 2, 4: the third batch (calls 4..7) fails, nothing more is attempted
    assert calls == 7 and done == 4 and isinstance(err, RuntimeError)
