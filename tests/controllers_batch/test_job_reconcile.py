"""Job controller decisions (pure): reconcile, tracking of uncounted pods, terminal conditions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.controllers.job.controller import generate_name, pod_from_job
from kybernetes.controllers.job.reconcile import (
    BackoffRecord,
    JobObserved,
    backoff_remaining,
    default_job_selector,
    match_pod_failure_policy,
    next_backoff_record,
    reconcile,
)
from kybernetes.controllers.job.tracking import clean_uncounted, compute_tracking, enact_finished

from .builders import UID, make_job, make_pod

NOW = dt.datetime(2025, 1, 1, 0, 1, tzinfo=dt.UTC)
Obj = dict[str, Any]


def obs(job: Obj, *pods: Obj, **kw: Any) -> JobObserved:
    return JobObserved(job=job, pods=tuple(pods), now=NOW, now_mono=100.0, **kw)


def cond(status: Obj, ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions") or () if c["type"] == ctype), None)


STARTED = {"startTime": "2025-01-01T00:00:00Z"}

FAIL_ON_42 = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
IGNORE_ALL = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [0]}}]}


@pytest.mark.parametrize(("job", "pods", "kw", "creates", "deletes", "active"), [
    pytest.param(make_job(completions=5, parallelism=2), [], {}, [None, None], [], 2, id="fresh-job-parallelism"),
    pytest.param(make_job(completions=5, parallelism=2, status={**STARTED, "succeeded": 2}),
                 [make_pod("a"), make_pod("b")], {}, [], [], 2, id="at-parallelism"),
    pytest.param(make_job(completions=5, parallelism=2, status={**STARTED, "succeeded": 4}), [], {},
                 [None], [], 1, id="last-completion"),
    pytest.param(make_job(completions=5, parallelism=2, status=STARTED),
                 [make_pod("a", ready=True), make_pod("b", ready=True), make_pod("c", phase="Pending")], {},
                 [], ["c"], 2, id="too-many-deletes-least-progressed"),
    pytest.param(make_job(completions=5, parallelism=2, status=STARTED), [], {"expectations_satisfied": False},
                 [], [], 0, id="expectations-pending"),
    pytest.param(make_job(completions=None, parallelism=2, status={**STARTED, "succeeded": 1}),
                 [make_pod("a")], {}, [], [], 1, id="work-queue-after-success"),
    pytest.param(make_job(completions=3, parallelism=3, status=STARTED), [make_pod("f", "Failed", exit_code=1)],
                 {"backoff": BackoffRecord(1, 95.0)}, [], [], 0, id="failure-backoff-holds-creation"),
    pytest.param(make_job(completions=3, parallelism=1, status=STARTED), [],
                 {"backoff": BackoffRecord(1, 80.0)}, [None], [], 1, id="backoff-expired"),
    pytest.param(make_job(completions=4, parallelism=3, indexed=True,
                          status={**STARTED, "completedIndexes": "0", "succeeded": 1}),
                 [make_pod("p1", index=1)], {}, [2, 3], [], 3, id="indexed-pending-indexes"),
    pytest.param(make_job(completions=4, parallelism=4, indexed=True, status=STARTED),
                 [make_pod("x", index=1), make_pod("y", index=1, ready=True), make_pod("z", index=9)], {},
                 [], ["x", "z"], 1, id="indexed-duplicate-and-invalid"),
    pytest.param(make_job(completions=2, parallelism=2, suspend=True, status=STARTED),
                 [make_pod("a"), make_pod("b")], {}, [], ["a", "b"], 0, id="suspend-deletes-all"),
])
def test_manage(job: Obj, pods: list[Obj], kw: dict[str, Any], creates: list[int | None],
                deletes: list[str], active: int) -> None:
    plan = reconcile(obs(job, *pods, **kw))
    assert plan.finished is None
    assert list(plan.create) == creates
    assert sorted(p["metadata"]["name"] for p in plan.delete) == deletes
    assert plan.status.get("active", 0) == active


def test_ignored_failure_is_not_counted() -> None:
    job = make_job(completions=2, parallelism=2, backoff=0, podFailurePolicy=IGNORE_ALL, status=STARTED)
    pods = [make_pod("f", "Failed", exit_code=3)]
    plan = reconcile(obs(job, *pods))
    assert plan.finished is None
    assert plan.requeue_after == pytest.approx(10.0)   # replacement after the failure back-off
    tr = compute_tracking(job, plan, pods, frozenset(), NOW, False)
    assert tr.status["uncountedTerminatedPods"] == {}
    assert [p["metadata"]["name"] for p in tr.remove_finalizers] == ["f"]


def test_backoff_requeues_for_the_remaining_time() -> None:
    job = make_job(completions=3, parallelism=1, status=STARTED)
    plan = reconcile(obs(job, backoff=BackoffRecord(2, 95.0), backoff_base=10.0))
    assert plan.create == () and plan.requeue_after == pytest.approx(15.0)


@pytest.mark.parametrize(("job", "pods", "ctype", "reason"), [
    pytest.param(make_job(completions=2, status={**STARTED, "succeeded": 2}), [], "SuccessCriteriaMet",
                 "CompletionsReached", id="completions-reached"),
    pytest.param(make_job(completions=None, status=STARTED), [make_pod("s", "Succeeded")], "SuccessCriteriaMet",
                 "CompletionsReached", id="work-queue-done"),
    pytest.param(make_job(completions=3, backoff=1, status={**STARTED, "failed": 1}),
                 [make_pod("f", "Failed", exit_code=1), make_pod("a")], "FailureTarget", "BackoffLimitExceeded",
                 id="backoff-limit"),
    pytest.param(make_job(completions=3, backoff=2, restart="OnFailure", status=STARTED),
                 [make_pod("a", restarts=2)], "FailureTarget", "BackoffLimitExceeded", id="on-failure-restarts"),
    pytest.param(make_job(completions=3, activeDeadlineSeconds=30, status={"startTime": "2024-12-31T23:59:00Z"}),
                 [make_pod("a")], "FailureTarget", "DeadlineExceeded", id="deadline"),
    pytest.param(make_job(completions=3, podFailurePolicy=FAIL_ON_42, status=STARTED),
                 [make_pod("f", "Failed", exit_code=42), make_pod("a")], "FailureTarget", "PodFailurePolicy",
                 id="failure-policy-failjob"),
    pytest.param(make_job(completions=3, status={**STARTED, "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": "m"}]}),
        [], "Failed", "DeadlineExceeded", id="failure-target-becomes-failed"),
])
def test_finish(job: Obj, pods: list[Obj], ctype: str, reason: str) -> None:
    plan = reconcile(obs(job, *pods))
    assert plan.finished is not None
    assert (plan.finished["type"], plan.finished["reason"]) == (ctype, reason)
    assert plan.create == ()
    active = [p for p in pods if p["status"]["phase"] == "Running"]
    if ctype != "SuccessCriteriaMet":
        assert len(plan.delete) == len(active) and plan.keep_finalizers
        assert plan.status.get("active", 0) == 0 and plan.status["terminating"] == len(active)


def test_failure_policy_message() -> None:
    pod = make_pod("f", "Failed", exit_code=42)
    m = match_pod_failure_policy(FAIL_ON_42, pod)
    assert m.action == "FailJob"
    assert m.fail_job_message == ("Container c for pod default/f failed with exit code 42 matching FailJob "
                                  "rule at index 0")
    cond_rule = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    pod["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True"}]
    assert not match_pod_failure_policy(cond_rule, pod).count_failed
    assert match_pod_failure_policy(None, pod).count_failed


def test_deadline_pending_requeues() -> None:
    job = make_job(completions=3, activeDeadlineSeconds=90, status=STARTED)
    plan = reconcile(obs(job, make_pod("a")))
    assert plan.finished is None and plan.requeue_after == pytest.approx(30.0)


def test_start_time_set_unless_suspended() -> None:
    assert reconcile(obs(make_job())).status["startTime"] == "2025-01-01T00:01:00Z"
    assert "startTime" not in reconcile(obs(make_job(suspend=True))).status


def test_suspend_and_resume_conditions() -> None:
    plan = reconcile(obs(make_job(suspend=True)))
    c = cond(plan.status, "Suspended")
    assert c is not None and (c["status"], c["reason"]) == ("True", "JobSuspended")
    assert ("Normal", "Suspended", "Job suspended") in plan.events
    resumed = make_job(status={"startTime": "2024-01-01T00:00:00Z", "conditions": [c]})
    plan = reconcile(obs(resumed))
    c2 = cond(plan.status, "Suspended")
    assert c2 is not None and (c2["status"], c2["reason"]) == ("False", "JobResumed")
    assert plan.status["startTime"] == "2025-01-01T00:01:00Z"
    assert ("Normal", "Resumed", "Job resumed") in plan.events
    # never suspended: no False condition is added
    assert cond(reconcile(obs(make_job())).status, "Suspended") is None


def test_terminating_pods_counted_and_block_replacement_with_failed_policy() -> None:
    job = make_job(completions=2, parallelism=2, podReplacementPolicy="Failed", status=STARTED)
    plan = reconcile(obs(job, make_pod("t", deleting=True), make_pod("a")))
    assert plan.status["terminating"] == 1 and plan.create == ()
    job2 = make_job(completions=2, parallelism=2, status=STARTED)
    # a terminating pod counts as failed and is replaced at once (after the failure back-off)
    plan2 = reconcile(obs(job2, make_pod("t", deleting=True), make_pod("a"), backoff_base=0.0))
    assert plan2.create == (None,)


# -- tracking ------------------------------------------------------------------------------------
def test_tracking_counts_each_pod_once() -> None:
    job = make_job(completions=2, status=STARTED)
    pods = [make_pod("s", "Succeeded"), make_pod("f", "Failed", exit_code=1), make_pod("a")]
    plan = reconcile(obs(job, *pods))
    tr = compute_tracking(job, plan, pods, frozenset(), NOW, False)
    assert tr.needs_flush
    assert tr.status["uncountedTerminatedPods"] == {"succeeded": ["uid-s"], "failed": ["uid-f"]}
    assert sorted(p["metadata"]["name"] for p in tr.remove_finalizers) == ["f", "s"]
    status, changed = clean_uncounted(tr.status, tr.with_finalizer - {"uid-s", "uid-f"})
    assert changed and status["succeeded"] == 1 and status["failed"] == 1
    assert status["uncountedTerminatedPods"] == {}
    # the same pods, finalizers gone, are not counted again
    job2 = make_job(completions=2, status=status)
    done = [dict(p, metadata={**p["metadata"], "finalizers": []}) for p in pods]
    plan2 = reconcile(obs(job2, *done))
    tr2 = compute_tracking(job2, plan2, done, frozenset(), NOW, False)
    assert not tr2.remove_finalizers and tr2.status.get("succeeded") == 1


def test_tracking_skips_pods_with_pending_finalizer_removal() -> None:
    job = make_job(completions=2, status=STARTED)
    pods = [make_pod("s", "Succeeded")]
    plan = reconcile(obs(job, *pods, expected_rm_finalizers=frozenset({"uid-s"})))
    assert plan.status.get("active") == 1   # s is not counted: a new pod replaces nothing yet
    tr = compute_tracking(job, plan, pods, frozenset({"uid-s"}), NOW, False)
    assert not tr.remove_finalizers and not tr.needs_flush


def test_indexed_tracking_completed_indexes() -> None:
    job = make_job(completions=5, parallelism=2, indexed=True, status={**STARTED, "completedIndexes": "0-1",
                                                                        "succeeded": 2})
    pods = [make_pod("p3", "Succeeded", index=3), make_pod("p2", index=2)]
    plan = reconcile(obs(job, *pods))
    tr = compute_tracking(job, plan, pods, frozenset(), NOW, False)
    assert tr.status["completedIndexes"] == "0-1,3" and tr.status["succeeded"] == 3
    assert [p["metadata"]["name"] for p in tr.remove_finalizers] == ["p3"]
    assert plan.create == (4,)


def test_terminal_condition_waits_for_terminating_pods() -> None:
    job = make_job(completions=3, backoff=0, status={**STARTED, "failed": 1})
    pods = [make_pod("a")]
    plan = reconcile(obs(job, *pods))
    tr = compute_tracking(job, plan, pods, frozenset(), NOW, False)
    assert [c["type"] for c in tr.status["conditions"]] == ["FailureTarget"]
    assert tr.status["uncountedTerminatedPods"] == {"failed": ["uid-a"]}
    status, _ = clean_uncounted(tr.status, set())
    assert status["failed"] == 2
    # the deleted pod is still terminating
    assert enact_finished(status, tr.final) == (status, False)
    status["terminating"] = 0
    out, done = enact_finished(status, tr.final)
    assert done and [c["type"] for c in out["conditions"]] == ["FailureTarget", "Failed"]
    assert out["conditions"][1]["reason"] == "BackoffLimitExceeded"
    assert "completionTime" not in out


def test_complete_sets_completion_time() -> None:
    job = make_job(completions=1, status=STARTED)
    pods = [make_pod("s", "Succeeded")]
    plan = reconcile(obs(job, *pods))
    assert plan.finished is not None and plan.finished["type"] == "SuccessCriteriaMet"
    tr = compute_tracking(job, plan, pods, frozenset(), NOW, False)
    status, _ = clean_uncounted(tr.status, set())
    out, done = enact_finished(status, tr.final)
    assert done and out["completionTime"] == "2025-01-01T00:01:00Z" and out["succeeded"] == 1
    assert [c["type"] for c in out["conditions"]] == ["SuccessCriteriaMet", "Complete"]


# -- back-off, pods, selector ---------------------------------------------------------------------
@pytest.mark.parametrize(("rec", "now", "want"), [
    pytest.param(BackoffRecord(), 0.0, 0.0, id="none"),
    pytest.param(BackoffRecord(1, 100.0), 100.0, 10.0, id="first"),
    pytest.param(BackoffRecord(3, 100.0), 105.0, 35.0, id="doubling"),
    pytest.param(BackoffRecord(20, 100.0), 100.0, 600.0, id="capped"),
])
def test_backoff_remaining(rec: BackoffRecord, now: float, want: float) -> None:
    assert backoff_remaining(rec, now) == pytest.approx(want)


def test_backoff_record_resets_on_success() -> None:
    rec = next_backoff_record(BackoffRecord(3, 10.0), 0, 1, 20.0)
    assert rec == BackoffRecord(4, 20.0)
    assert next_backoff_record(rec, 1, 0, 30.0) == BackoffRecord(0, None)


def test_pod_from_job_indexed() -> None:
    job = make_job(indexed=True, completions=3)
    pod = pod_from_job(job, 2)
    md = pod["metadata"]
    assert md["generateName"] == "pi-2-"
    assert md["annotations"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert md["labels"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert md["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert md["ownerReferences"][0] == {"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": UID,
                                        "controller": True, "blockOwnerDeletion": True}
    assert pod["spec"]["hostname"] == "pi-2"
    assert pod["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    assert "env" not in job["spec"]["template"]["spec"]["containers"][0]   # template untouched
    assert generate_name("x" * 60, 12)[-4:] == "-12-" and len(generate_name("x" * 60, 12)) == 58


def test_pod_from_job_without_selector_gets_uid_labels() -> None:
    job = make_job()
    del job["spec"]["selector"]
    job["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
    labels = pod_from_job(job, None)["metadata"]["labels"]
    assert labels["batch.kubernetes.io/controller-uid"] == UID and labels["job-name"] == "pi"
    assert pod_from_job(job, None)["metadata"]["generateName"] == "pi-"


def test_default_job_selector() -> None:
    job: Obj = {"metadata": {"name": "pi", "uid": "u1"},
                "spec": {"template": {"metadata": {"labels": {"app": "pi"}}, "spec": {}}}}
    default_job_selector(job)
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "app": "pi", "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u1", "batch.kubernetes.io/controller-uid": "u1"}
    assert job["metadata"]["labels"] == job["spec"]["template"]["metadata"]["labels"]
    manual: Obj = {"metadata": {"name": "m", "uid": "u2"},
                   "spec": {"manualSelector": True, "selector": {"matchLabels": {"a": "b"}},
                            "template": {"metadata": {"labels": {"a": "b"}}}}}
    default_job_selector(manual)
    assert manual["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    assert manual["spec"]["template"]["metadata"]["labels"] == {"a": "b"}
