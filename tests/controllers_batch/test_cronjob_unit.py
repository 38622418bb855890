"""CronJob and TTL-after-finished decisions (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.controllers.cron import parse
from kybernetes.controllers.cronjob import (
    decide,
    job_from_template,
    job_name,
    jobs_to_clean,
    most_recent_schedule_time,
    reconcile_children,
)
from kybernetes.controllers.ttlafterfinished import time_left

Obj = dict[str, Any]
UTC = dt.UTC


def t(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=UTC)


def cronjob(schedule: str = "*/1 * * * *", *, created: str = "2025-01-01T00:00:30Z", status: Obj | None = None,
            **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default", "uid": "cj-uid", "creationTimestamp": created},
            "spec": {"schedule": schedule, "concurrencyPolicy": "Allow",
                     "jobTemplate": {"metadata": {"labels": {"app": "hello"}},
                                     "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}},
                     **spec},
            "status": status or {}}


def job(name: str, uid: str, cond: str | None = None, *, start: str = "2025-01-01T00:01:00Z",
        done: str | None = None) -> Obj:
    status: Obj = {"startTime": start}
    if cond:
        status["conditions"] = [{"type": cond, "status": "True"}]
    if done:
        status["completionTime"] = done
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "status": status}


@pytest.mark.parametrize(("cj", "now", "want_recent", "missed"), [
    pytest.param(cronjob(), t(2025, 1, 1, 0, 0, 50), None, 0, id="not-yet"),
    pytest.param(cronjob(), t(2025, 1, 1, 0, 1, 5), t(2025, 1, 1, 0, 1), 1, id="one-due"),
    pytest.param(cronjob(), t(2025, 1, 1, 0, 5, 5), t(2025, 1, 1, 0, 5), 5, id="few-missed-latest-only"),
    pytest.param(cronjob(status={"lastScheduleTime": "2025-01-01T00:05:00Z"}), t(2025, 1, 1, 0, 5, 30), None, 0,
                 id="already-scheduled"),
    pytest.param(cronjob(), t(2025, 1, 2), t(2025, 1, 2), 1440, id="many-missed"),
    pytest.param(cronjob(startingDeadlineSeconds=120), t(2025, 1, 2, 0, 0, 30), t(2025, 1, 2), 2,
                 id="deadline-limits-lookback"),
])
def test_most_recent(cj: Obj, now: dt.datetime, want_recent: dt.datetime | None, missed: int) -> None:
    _, recent, n = most_recent_schedule_time(cj, now, parse(cj["spec"]["schedule"]), True)
    assert recent == want_recent and n == missed


@pytest.mark.parametrize(("cj", "now", "action", "reasons"), [
    pytest.param(cronjob(), t(2025, 1, 1, 0, 1, 5), "create", [], id="due"),
    pytest.param(cronjob(), t(2025, 1, 1, 0, 0, 40), "skip", [], id="not-due"),
    pytest.param(cronjob(suspend=False, startingDeadlineSeconds=5, schedule="0 * * * *"),
                 t(2025, 1, 1, 1, 0, 30), "skip", [], id="past-starting-deadline"),
    pytest.param(cronjob(concurrencyPolicy="Forbid", status={"active": [{"name": "hello-1", "uid": "x"}],
                                                             "lastScheduleTime": "2025-01-01T00:01:00Z"}),
                 t(2025, 1, 1, 0, 2, 1), "skip", ["JobAlreadyActive"], id="forbid"),
    pytest.param(cronjob(concurrencyPolicy="Replace", status={"active": [{"name": "hello-1", "uid": "x"}],
                                                              "lastScheduleTime": "2025-01-01T00:01:00Z"}),
                 t(2025, 1, 1, 0, 2, 1), "create", [], id="replace"),
    pytest.param(cronjob(created="2024-01-01T00:00:00Z"), t(2025, 1, 1), "create", ["TooManyMissedTimes"],
                 id="too-many-missed"),
    pytest.param(cronjob(status={"active": [{"name": f"hello-{int(t(2025, 1, 1, 0, 1).timestamp()) // 60}"}]}),
                 t(2025, 1, 1, 0, 1, 5), "skip", [], id="already-active-by-name"),
])
def test_decide(cj: Obj, now: dt.datetime, action: str, reasons: list[str]) -> None:
    d = decide(cj, now, parse(cj["spec"]["schedule"]))
    assert d.action == action
    assert [e[1] for e in d.events] == reasons
    assert d.replace == (cj["spec"]["concurrencyPolicy"] == "Replace" and action == "create")
    assert d.requeue_after is not None and 0 < d.requeue_after <= 3600.1


def test_requeue_for_next_minute() -> None:
    d = decide(cronjob(), t(2025, 1, 1, 0, 1, 15), parse("*/1 * * * *"))
    assert d.requeue_after == pytest.approx(45.1)


def test_job_from_template() -> None:
    cj = cronjob(timeZone="Europe/Berlin")
    body = job_from_template(cj, t(2025, 1, 1, 10), parse("* * * * *", "Europe/Berlin").tz)
    md = body["metadata"]
    assert md["name"] == job_name(cj, t(2025, 1, 1, 10)) == f"hello-{int(t(2025, 1, 1, 10).timestamp()) // 60}"
    assert md["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == "2025-01-01T11:00:00+01:00"
    assert md["labels"] == {"app": "hello"}
    assert md["ownerReferences"][0]["kind"] == "CronJob" and md["ownerReferences"][0]["controller"] is True
    utc = job_from_template(cronjob(), t(2025, 1, 1, 10), UTC)
    assert utc["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == "2025-01-01T10:00:00Z"


def test_reconcile_children() -> None:
    cj = cronjob(status={"active": [{"name": "a", "uid": "ua"}, {"name": "gone", "uid": "ug"}]})
    jobs = [job("a", "ua", "Complete", done="2025-01-01T00:02:00Z"), job("manual", "um")]
    ch = reconcile_children(cj, jobs)
    assert ch.changed
    assert ch.status["active"] == [{"name": "gone", "uid": "ug"}]
    assert ch.status["lastSuccessfulTime"] == "2025-01-01T00:02:00Z"
    assert [e[1] for e in ch.events] == ["SawCompletedJob", "UnexpectedJob"]
    assert [r["uid"] for r in ch.missing] == ["ug"]


def test_history_limits() -> None:
    cj = cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    jobs = [job("s1", "1", "Complete", start="2025-01-01T00:01:00Z"),
            job("s2", "2", "Complete", start="2025-01-01T00:03:00Z"),
            job("s0", "0", "Complete", start="2025-01-01T00:00:00Z"),
            job("f1", "3", "Failed"), job("run", "4")]
    assert [j["metadata"]["name"] for j in jobs_to_clean(cj, jobs)] == ["s0", "s1", "f1"]
    assert jobs_to_clean(cronjob(), jobs) == []


@pytest.mark.parametrize(("ttl", "conds", "deleting", "want"), [
    pytest.param(None, [("Complete", "True")], False, None, id="no-ttl"),
    pytest.param(10, [], False, None, id="running"),
    pytest.param(10, [("Complete", "False")], False, None, id="not-true"),
    pytest.param(10, [("Complete", "True")], True, None, id="being-deleted"),
    pytest.param(10, [("Complete", "True")], False, 5.0, id="complete-pending"),
    pytest.param(0, [("Failed", "True")], False, -5.0, id="failed-expired"),
])
def test_ttl_time_left(ttl: int | None, conds: list[tuple[str, str]], deleting: bool, want: float | None) -> None:
    j: Obj = {"metadata": {"name": "j"}, "spec": {}, "status": {"conditions": [
        {"type": c, "status": s, "lastTransitionTime": "2025-01-01T00:00:00Z"} for c, s in conds]}}
    if ttl is not None:
        j["spec"]["ttlSecondsAfterFinished"] = ttl
    if deleting:
        j["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:01Z"
    assert time_left(j, t(2025, 1, 1, 0, 0, 5)) == want
