"""The eviction subresource's pure decisions (apiserver/eviction.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybernetes.api.errors import StatusError
from kybernetes.apiserver.eviction import (
    MAX_DISRUPTED_POD_SIZE,
    VIOLATION_MESSAGE,
    can_ignore_pdb,
    check_and_decrement,
    delete_options,
    mark_disruption_target,
    matching_pdbs,
    multiple_pdbs,
    should_enforce_resource_version,
    unhealthy_pod_bypass,
    with_resource_version,
)

from .builders import NOW, pdb, pod


def eviction(name: str = "p", **delete_opts: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    if delete_opts:
        body["deleteOptions"] = delete_opts
    return body


def test_delete_options_come_from_the_eviction() -> None:
    opts = delete_options("p", eviction(gracePeriodSeconds=5, preconditions={"uid": "u"}), [])
    assert opts == {"gracePeriodSeconds": 5, "preconditions": {"uid": "u"}}


@pytest.mark.parametrize(("body_dry", "query", "expected"), [
    pytest.param(None, ["All"], ["All"], id="query-only"),
    pytest.param(["All"], [], ["All"], id="body-only"),
    pytest.param(["All"], ["All"], ["All"], id="both-agree"),
    pytest.param(None, [], None, id="neither"),
])
def test_delete_options_dry_run(body_dry: list[str] | None, query: list[str], expected: list[str] | None) -> None:
    body = eviction(dryRun=body_dry) if body_dry else eviction()
    assert delete_options("p", body, query).get("dryRun") == expected


@pytest.mark.parametrize(("name", "body", "query", "needle"), [
    pytest.param("p", eviction("q"), [], "name in URL does not match", id="other-pod"),
    pytest.param("p", {"kind": "Eviction"}, [], "name in URL does not match", id="no-name"),
    pytest.param("p", [], [], "must be an object", id="not-an-object"),
    pytest.param("p", eviction(dryRun=["All"]), ["All", "All"], "Non-matching dry-run", id="dry-run-mismatch"),
    pytest.param("p", eviction(dryRun=["Some"]), [], "Invalid dryRun value", id="bad-dry-run"),
])
def test_delete_options_refused(name: str, body: Any, query: list[str], needle: str) -> None:
    with pytest.raises(StatusError) as e:
        delete_options(name, body, query)
    assert e.value.code == 400 and needle in e.value.message


@pytest.mark.parametrize(("p", "ignore", "enforce_rv"), [
    pytest.param(pod("p", phase="Pending"), True, True, id="pending"),
    pytest.param(pod("p", phase="Succeeded"), True, False, id="succeeded"),
    pytest.param(pod("p", phase="Failed"), True, False, id="failed"),
    pytest.param(pod("p", deleting=True), True, False, id="terminating"),
    pytest.param(pod("p"), False, True, id="running"),
    pytest.param(pod("p", ready=False), False, True, id="running-unready"),
])
def test_pods_that_skip_budgets(p: dict[str, Any], ignore: bool, enforce_rv: bool) -> None:
    assert can_ignore_pdb(p) is ignore
    assert should_enforce_resource_version(p) is enforce_rv


def test_matching_pdbs() -> None:
    null_selector = pdb("null")
    null_selector["spec"]["selector"] = None
    budgets = [pdb("web"), pdb("db", selector={"matchLabels": {"app": "db"}}), pdb("all", selector={}),
               null_selector, pdb("elsewhere", ns="other"),
               pdb("broken", selector={"matchExpressions": [{"key": "a", "operator": "Nope"}]})]
    assert [b["metadata"]["name"] for b in matching_pdbs(pod("p"), budgets)] == ["web", "all"]


@pytest.mark.parametrize(("p", "budget", "bypass"), [
    pytest.param(pod("p"), pdb(policy="AlwaysAllow"), False, id="ready-pods-always-count"),
    pytest.param(pod("p", ready=False), pdb(policy="AlwaysAllow"), True, id="always-allow"),
    pytest.param(pod("p", ready=False), pdb(status={"currentHealthy": 2, "desiredHealthy": 2}), True,
                 id="if-healthy-budget-satisfied"),
    pytest.param(pod("p", ready=False), pdb(policy="IfHealthyBudget", status={"currentHealthy": 1, "desiredHealthy": 2}),
                 False, id="if-healthy-budget-short"),
    pytest.param(pod("p", ready=False), pdb(status={"currentHealthy": 0, "desiredHealthy": 0}), False,
                 id="desired-zero-is-not-satisfied"),
])
def test_unhealthy_pod_bypass(p: dict[str, Any], budget: dict[str, Any], bypass: bool) -> None:
    assert unhealthy_pod_bypass(p, budget) is bypass


def healthy_budget(**status: Any) -> dict[str, Any]:
    st = {"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1,
          "observedGeneration": 1,
          "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                          "message": "", "observedGeneration": 1, "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    st.update(status)
    return pdb(min_available=2, status=st)


def test_check_and_decrement_spends_one_disruption() -> None:
    out = check_and_decrement(healthy_budget(), "p0", NOW, dry_run=False)
    st = out["status"]
    assert st["disruptionsAllowed"] == 0
    assert st["disruptedPods"] == {"p0": "2024-05-01T12:00:00Z"}
    (cond,) = st["conditions"]
    assert (cond["status"], cond["reason"], cond["lastTransitionTime"]) == \
        ("False", "InsufficientPods", "2024-05-01T12:00:00Z")


def test_check_and_decrement_keeps_condition_while_disruptions_remain() -> None:
    before = healthy_budget(disruptionsAllowed=2, disruptedPods={"old": "2024-05-01T11:59:00Z"})
    out = check_and_decrement(copy.deepcopy(before), "p0", NOW, dry_run=False)
    assert out["status"]["disruptionsAllowed"] == 1
    assert out["status"]["conditions"] == before["status"]["conditions"]
    assert set(out["status"]["disruptedPods"]) == {"old", "p0"}


def test_check_and_decrement_dry_run_records_nothing() -> None:
    out = check_and_decrement(healthy_budget(), "p0", NOW, dry_run=True)
    assert out["status"]["disruptionsAllowed"] == 0 and "disruptedPods" not in out["status"]


def test_budget_exhausted_is_429_with_cause_and_no_retry_after() -> None:
    with pytest.raises(StatusError) as e:
        check_and_decrement(healthy_budget(disruptionsAllowed=0, currentHealthy=2), "p0", NOW, dry_run=False)
    err = e.value
    assert (err.code, err.reason, err.message) == (429, "TooManyRequests", VIOLATION_MESSAGE)
    assert err.details["causes"] == [{"reason": "DisruptionBudget",
                                      "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    assert "Retry-After" not in err.headers and "retryAfterSeconds" not in err.details


def test_stale_budget_is_429_still_processing_with_retry_after() -> None:
    budget = healthy_budget()
    budget["metadata"]["generation"] = 2
    with pytest.raises(StatusError) as e:
        check_and_decrement(budget, "p0", NOW, dry_run=False)
    err = e.value
    assert err.code == 429 and err.headers["Retry-After"] == "10" and err.details["retryAfterSeconds"] == 10
    assert err.details["causes"][0]["message"] == "The disruption budget web is still being processed by the server."


@pytest.mark.parametrize(("status", "needle"), [
    pytest.param({"disruptionsAllowed": -1}, "pdb disruptions allowed is negative", id="negative"),
    pytest.param({"disruptedPods": {f"p{i}": "2024-05-01T12:00:00Z" for i in range(MAX_DISRUPTED_POD_SIZE + 1)}},
                 "DisruptedPods map too big", id="map-too-big"),
])
def test_check_and_decrement_forbidden(status: dict[str, Any], needle: str) -> None:
    with pytest.raises(StatusError) as e:
        check_and_decrement(healthy_budget(**status), "p0", NOW, dry_run=False)
    assert e.value.code == 403 and needle in e.value.message


def test_multiple_budgets_is_final_not_500() -> None:
    err = multiple_pdbs()
    assert err.code == 403 and "more than one PodDisruptionBudget" in err.message


def test_mark_disruption_target() -> None:
    p = mark_disruption_target(pod("p"), {}, NOW)
    cond = p["status"]["conditions"][-1]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionTarget", "True", "EvictionByEvictionAPI")
    assert p["status"]["conditions"][0]["type"] == "Ready"


@pytest.mark.parametrize("pre", [{"uid": "someone-else"}, {"resourceVersion": "9"}])
def test_mark_disruption_target_checks_preconditions(pre: dict[str, str]) -> None:
    with pytest.raises(StatusError) as e:
        mark_disruption_target(pod("p", rv="10"), {"preconditions": pre}, NOW)
    assert e.value.code == 409


def test_with_resource_version_copies() -> None:
    opts = {"preconditions": {"uid": "u"}}
    assert with_resource_version(opts, "7") == {"preconditions": {"uid": "u", "resourceVersion": "7"}}
    assert opts == {"preconditions": {"uid": "u"}}
