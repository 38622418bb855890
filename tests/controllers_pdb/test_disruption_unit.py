"""The disruption controller's pure core: expected counts, healthy pods, status, fail-safe."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from kybernetes.controllers.disruption import (
    DELETION_TIMEOUT,
    ControllerScale,
    Observed,
    SyncError,
    build_disrupted_pods,
    count_healthy,
    expected_pod_count,
    needs_scale,
    reconcile,
    selects,
)

from .builders import NOW, owner, pdb, pod, ts

RS = owner("ReplicaSet", "web-1", "rs-1")
RS2 = owner("ReplicaSet", "web-2", "rs-2")
DEPLOY = ControllerScale("deploy-1", 3)


def pods3(**kw: Any) -> tuple[dict[str, Any], ...]:
    return tuple(pod(f"p{i}", owner_ref=RS, **kw) for i in range(3))


@pytest.mark.parametrize(("spec", "scales", "expected"), [
    pytest.param({"min_available": 2}, {}, (3, 2, ()), id="int-min-available-counts-pods"),
    pytest.param({"min_available": "50%"}, {"rs-1": DEPLOY}, (3, 2, ()), id="percent-min-rounds-up"),
    pytest.param({"min_available": "100%"}, {"rs-1": ControllerScale("d", 5)}, (5, 5, ()), id="percent-of-scale-not-pods"),
    pytest.param({"max_unavailable": 1}, {"rs-1": DEPLOY}, (3, 2, ()), id="int-max-unavailable"),
    pytest.param({"max_unavailable": "34%"}, {"rs-1": DEPLOY}, (3, 1, ()), id="percent-max-unavailable-rounds-up"),
    pytest.param({"max_unavailable": 5}, {"rs-1": DEPLOY}, (3, 0, ()), id="desired-never-negative"),
    pytest.param({}, {}, (0, 0, ()), id="neither-set"),
])
def test_expected_pod_count(spec: dict[str, Any], scales: dict[str, ControllerScale], expected: tuple[int, int, tuple[str, ...]]) -> None:
    assert expected_pod_count(pdb(**spec), pods3(), scales) == expected


def test_two_replicasets_of_one_deployment_count_once() -> None:
    pods = (pod("a", owner_ref=RS), pod("b", owner_ref=RS2))
    scales = {"rs-1": DEPLOY, "rs-2": DEPLOY}
    assert expected_pod_count(pdb(max_unavailable=1), pods, scales) == (3, 2, ())


def test_unmanaged_pods_are_reported_not_counted() -> None:
    pods = (pod("a", owner_ref=RS), pod("orphan"))
    assert expected_pod_count(pdb(min_available="50%"), pods, {"rs-1": DEPLOY}) == (3, 2, ("orphan",))


def test_missing_controller_is_a_sync_error() -> None:
    with pytest.raises(SyncError, match='found no controllers for pod "p0"'):
        expected_pod_count(pdb(max_unavailable=1), pods3(), {"rs-1": None})


def test_bad_percent_is_a_sync_error() -> None:
    with pytest.raises(SyncError):
        expected_pod_count(pdb(min_available="lots"), pods3(), {"rs-1": DEPLOY})


@pytest.mark.parametrize(("spec", "needs"), [
    pytest.param({"min_available": 2}, False, id="int-min"),
    pytest.param({"min_available": "10%"}, True, id="percent-min"),
    pytest.param({"max_unavailable": 0}, True, id="max"),
])
def test_needs_scale(spec: dict[str, Any], needs: bool) -> None:
    assert needs_scale(pdb(**spec)) is needs


@pytest.mark.parametrize(("selector", "labels", "ns", "hit"), [
    pytest.param({"matchLabels": {"app": "web"}}, {"app": "web"}, "default", True, id="match"),
    pytest.param({"matchLabels": {"app": "web"}}, {"app": "db"}, "default", False, id="labels-differ"),
    pytest.param({"matchLabels": {"app": "web"}}, {"app": "web"}, "other", False, id="other-namespace"),
    pytest.param({}, {"anything": "x"}, "default", True, id="empty-selects-all"),
    pytest.param({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "b"}, "default", False,
                 id="invalid-selects-none"),
])
def test_selects(selector: dict[str, Any], labels: dict[str, str], ns: str, hit: bool) -> None:
    assert selects(pdb(selector=selector), pod("p", labels=labels, ns=ns)) is hit


def test_null_selector_selects_nothing() -> None:
    budget = pdb()
    budget["spec"]["selector"] = None
    assert not selects(budget, pod("p"))


def test_healthy_skips_terminating_disrupted_and_unready() -> None:
    pods = [pod("ok"), pod("gone", deleting=True), pod("evicted"), pod("sick", ready=False),
            pod("old-eviction")]
    disrupted = {"evicted": ts(10), "old-eviction": ts(DELETION_TIMEOUT + 5)}
    assert count_healthy(pods, disrupted, NOW) == 2   # ok + old-eviction (its entry expired)


def test_disrupted_map_keeps_pending_drops_done_and_expired() -> None:
    pods = [pod("pending"), pod("terminating", deleting=True), pod("stuck")]
    old = {"pending": ts(30), "terminating": ts(5), "stuck": ts(DELETION_TIMEOUT + 1), "deleted": ts(1)}
    keep, recheck, expired = build_disrupted_pods(pods, old, NOW)
    assert keep == {"pending": ts(30)}
    assert recheck == NOW + dt.timedelta(seconds=DELETION_TIMEOUT - 30)
    assert expired == ("stuck",)


def test_reconcile_min_available_2_of_3() -> None:
    budget = pdb(min_available=2)
    before = copy.deepcopy(budget)
    plan = reconcile(Observed(budget, pods3(), {}, NOW))
    assert budget == before   # inputs untouched
    st = plan.status
    assert st is not None and plan.failed is None
    assert {k: st[k] for k in ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed",
                               "observedGeneration")} == \
        {"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1, "observedGeneration": 1}
    assert "disruptedPods" not in st
    (cond,) = st["conditions"]
    assert cond["type"] == "DisruptionAllowed" and cond["status"] == "True" and cond["reason"] == "SufficientPods"
    assert cond["observedGeneration"] == 1 and cond["message"] == ""


def test_reconcile_is_quiet_when_nothing_changed() -> None:
    first = reconcile(Observed(pdb(min_available=2), pods3(), {}, NOW)).status
    assert first is not None
    later = NOW + dt.timedelta(minutes=5)
    plan = reconcile(Observed(pdb(min_available=2, status=first), pods3(), {}, later))
    assert plan.status is None and plan.events == ()


def test_reconcile_insufficient_keeps_transition_time_until_status_flips() -> None:
    first = reconcile(Observed(pdb(min_available=3), pods3(), {}, NOW)).status
    assert first is not None and first["disruptionsAllowed"] == 0
    assert first["conditions"][0]["reason"] == "InsufficientPods"
    later = NOW + dt.timedelta(minutes=1)
    flipped = reconcile(Observed(pdb(min_available=2, generation=2, status=first), pods3(), {}, later)).status
    assert flipped is not None and flipped["conditions"][0]["status"] == "True"
    assert flipped["conditions"][0]["lastTransitionTime"] == "2024-05-01T12:01:00Z"
    assert flipped["observedGeneration"] == 2


def test_reconcile_counts_an_approved_eviction_as_gone_and_rechecks() -> None:
    status = {"disruptedPods": {"p0": ts(20)}, "observedGeneration": 1}
    plan = reconcile(Observed(pdb(min_available=2, status=status), pods3(), {}, NOW))
    assert plan.status is not None
    assert plan.status["currentHealthy"] == 2 and plan.status["disruptionsAllowed"] == 0
    assert plan.status["disruptedPods"] == {"p0": ts(20)}
    assert plan.requeue_after == pytest.approx(DELETION_TIMEOUT - 20)


def test_reconcile_reports_an_eviction_that_never_happened() -> None:
    status = {"disruptedPods": {"p0": ts(DELETION_TIMEOUT + 1)}}
    plan = reconcile(Observed(pdb(min_available=2, status=status), pods3(), {}, NOW))
    assert plan.status is not None and "disruptedPods" not in plan.status
    assert plan.status["disruptionsAllowed"] == 1
    assert [(e.reason, e.target["metadata"]["name"]) for e in plan.events] == [("NotDeleted", "p0")]


def test_no_pods_allows_nothing() -> None:
    plan = reconcile(Observed(pdb(max_unavailable=1), (), {}, NOW))
    assert plan.status is not None and plan.status["disruptionsAllowed"] == 0 and plan.status["expectedPods"] == 0
    assert [e.reason for e in plan.events] == ["NoPods"]


@pytest.mark.parametrize("obs", [
    pytest.param(Observed(pdb(max_unavailable=1, status={"disruptionsAllowed": 2, "observedGeneration": 1}),
                          pods3(), {"rs-1": None}, NOW), id="controller-missing"),
    pytest.param(Observed(pdb(max_unavailable=1, status={"disruptionsAllowed": 2, "observedGeneration": 1}),
                          pods3(), {}, NOW, error="statefulsets.apps does not implement the scale subresource"),
                 id="shell-error"),
])
def test_fail_safe(obs: Observed) -> None:
    plan = reconcile(obs)
    assert plan.failed and plan.status is not None
    assert plan.status["disruptionsAllowed"] == 0 and plan.status["observedGeneration"] == 1
    (cond,) = plan.status["conditions"]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "SyncFailed", plan.failed)
    assert [e.reason for e in plan.events] == ["CalculateExpectedPodCountFailed"]
    assert plan.requeue_after is not None
    again = reconcile(Observed(obs.pdb | {"status": plan.status}, obs.pods, obs.scales, NOW, obs.error))
    assert again.status is None and again.events == ()
