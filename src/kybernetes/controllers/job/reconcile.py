"""The Job controller's decisions (pure): what to create, delete, count and report.

One sync is, as upstream ``syncJob``:

1. ``reconcile(JobObserved) -> JobPlan``: counts (``status`` + pods finished but not yet counted),
   the finish condition if any (pod failure policy FailJob, backoffLimit, activeDeadlineSeconds,
   all completions), otherwise the pods to create/delete (parallelism, completions, Indexed
   mode, suspend, failure back-off) and the Suspended condition.
2. The shell carries out the deletions/creations.
3. ``tracking.compute_tracking``: finished pods that still carry the ``batch.kubernetes.io/job-tracking``
   finalizer go into ``status.uncountedTerminatedPods`` (flushed first), then their finalizers are
   removed and ``clean_uncounted`` moves them into ``succeeded``/``failed``. A pod is therefore
   counted exactly once even if the controller crashes between steps.
4. ``enact_finished``: the terminal condition (Complete/Failed) is written only when nothing is
   uncounted and no pod is terminating; before that the interim SuccessCriteriaMet /
   FailureTarget condition is recorded (upstream 1.32 behaviour).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...api.admission import (  # noqa: F401 - re-exported: the Job label names and selector defaulting
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    default_job_selector,
)
from ...api.labels import Selector, selector_from_label_selector, selector_from_set
from ...api.meta import now_rfc3339, parse_time
from ..replicaset import deletion_key, is_pod_ready
from .indexes import completion_index, first_pending_indexes, parse_indexes

Obj = dict[str, Any]

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"

MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
DEFAULT_BACKOFF = 10.0          # seconds (upstream DefaultJobPodFailureBackOff)
MAX_BACKOFF = 600.0             # seconds (upstream MaxJobPodFailureBackOff)

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
FAILURE_TARGET, SUCCESS_CRITERIA_MET = "FailureTarget", "SuccessCriteriaMet"
REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_DEADLINE = "DeadlineExceeded"
REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_COMPLETIONS_REACHED = "CompletionsReached"
MSG_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(job: Mapping[str, Any]) -> Mapping[str, Any]:
    return job.get("spec") or {}


# ------------------------------------------------------------------------------------------------
# selector defaulting (called by the API server on create) and pod selection
# ------------------------------------------------------------------------------------------------
def job_selector(job: Mapping[str, Any]) -> Selector:
    """The Job's pod selector; a Job created without one selects its controller-uid label."""
    sel = _spec(job).get("selector")
    if sel:
        return selector_from_label_selector(sel)
    return selector_from_set({CONTROLLER_UID_LABEL: str(_md(job).get("uid") or "")})


# ------------------------------------------------------------------------------------------------
# pod predicates
# ------------------------------------------------------------------------------------------------
def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) not in ("Succeeded", "Failed") and not _md(pod).get("deletionTimestamp")


def is_pod_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_md(pod).get("deletionTimestamp")) and _phase(pod) not in ("Succeeded", "Failed")


def has_tracking_finalizer(pod: Mapping[str, Any]) -> bool:
    return JOB_TRACKING_FINALIZER in (_md(pod).get("finalizers") or ())


def is_indexed(job: Mapping[str, Any]) -> bool:
    return _spec(job).get("completionMode") == "Indexed"


def is_suspended(job: Mapping[str, Any]) -> bool:
    return bool(_spec(job).get("suspend"))


def only_replace_failed_pods(job: Mapping[str, Any]) -> bool:
    spec = _spec(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    """Failed phase; or, unless only failed pods are replaced, deleted before succeeding."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool(_md(pod).get("deletionTimestamp")) and _phase(pod) != "Succeeded"


def _valid_index(pod: Mapping[str, Any], completions: int) -> int | None:
    ix = completion_index(pod)
    return ix if ix is not None and ix < completions else None


# ------------------------------------------------------------------------------------------------
# pod failure policy
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyMatch:
    fail_job_message: str | None = None   # set when a FailJob rule matched
    count_failed: bool = True             # False when an Ignore rule matched
    action: str | None = None             # the matching rule's action


def _match_exit_codes(pod: Mapping[str, Any], req: Mapping[str, Any]) -> Obj | None:
    status = pod.get("status") or {}
    values = {int(v) for v in req.get("values") or ()}
    op = req.get("operator")
    want = req.get("containerName")
    for cs in list(status.get("containerStatuses") or ()) + list(status.get("initContainerStatuses") or ()):
        term = (cs.get("state") or {}).get("terminated")
        if not term or (want and cs.get("name") != want):
            continue
        code = int(term.get("exitCode") or 0)
        if code == 0:
            continue
        if (op == "In" and code in values) or (op == "NotIn" and code not in values):
            return dict(cs)
    return None


def _match_conditions(pod: Mapping[str, Any], patterns: Sequence[Mapping[str, Any]]) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        for p in patterns:
            if cond.get("type") == p.get("type") and cond.get("status") == p.get("status", "True"):
                return dict(cond)
    return None


def match_pod_failure_policy(policy: Mapping[str, Any] | None, pod: Mapping[str, Any]) -> PolicyMatch:
    """The first rule of ``policy`` matching the failed ``pod`` (upstream ``matchPodFailurePolicy``)."""
    if not policy:
        return PolicyMatch()
    ns, name = _md(pod).get("namespace"), _md(pod).get("name")
    for i, rule in enumerate(policy.get("rules") or ()):
        action = str(rule.get("action") or "")
        if rule.get("onExitCodes"):
            cs = _match_exit_codes(pod, rule["onExitCodes"])
            if cs is None:
                continue
            code = cs["state"]["terminated"].get("exitCode")
            msg = (f"Container {cs.get('name')} for pod {ns}/{name} failed with exit code {code} "
                   f"matching {action} rule at index {i}")
        elif rule.get("onPodConditions"):
            cond = _match_conditions(pod, rule["onPodConditions"])
            if cond is None:
                continue
            msg = f"Pod {ns}/{name} has condition {cond.get('type')} matching {action} rule at index {i}"
        else:
            continue
        if action == "Ignore":
            return PolicyMatch(None, False, action)
        if action == "FailJob":
            return PolicyMatch(msg, True, action)
        return PolicyMatch(None, True, action)   # Count, FailIndex
    return PolicyMatch()


# ------------------------------------------------------------------------------------------------
# conditions
# ------------------------------------------------------------------------------------------------
def new_condition(ctype: str, status: str, reason: str, message: str, now: dt.datetime) -> Obj:
    ts = now_rfc3339(now)
    return {"type": ctype, "status": status, "lastProbeTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def find_condition(conditions: Iterable[Mapping[str, Any]], ctype: str) -> Obj | None:
    for c in conditions:
        if c.get("type") == ctype:
            return dict(c)
    return None


def ensure_condition(conditions: list[Obj], ctype: str, status: str, reason: str, message: str,
                     now: dt.datetime) -> tuple[list[Obj], bool]:
    """Set the condition (upstream ``ensureJobConditionStatus``): a new False one is not added."""
    out = [dict(c) for c in conditions]
    for i, c in enumerate(out):
        if c.get("type") == ctype:
            if (c.get("status"), c.get("reason"), c.get("message")) != (status, reason, message):
                out[i] = new_condition(ctype, status, reason, message, now)
                return out, True
            return out, False
    if status != "False":
        out.append(new_condition(ctype, status, reason, message, now))
        return out, True
    return out, False


def finished_condition(job: Mapping[str, Any]) -> Obj | None:
    """The Complete or Failed condition with status True, if the Job has finished."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True":
            return dict(c)
    return None


def is_job_finished(job: Mapping[str, Any]) -> bool:
    return finished_condition(job) is not None


# ------------------------------------------------------------------------------------------------
# pod failure back-off
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackoffRecord:
    """Failures since the last success, and when the last one was seen (monotonic seconds)."""

    failures: int = 0
    last_failure: float | None = None


def next_backoff_record(rec: BackoffRecord, new_succeeded: int, new_failed: int, now: float) -> BackoffRecord:
    failures = 0 if new_succeeded else rec.failures
    if new_failed:
        return BackoffRecord(failures + new_failed, now)
    return BackoffRecord(failures, rec.last_failure if failures else None)


def backoff_remaining(rec: BackoffRecord, now: float, base: float = DEFAULT_BACKOFF,
                      cap: float = MAX_BACKOFF) -> float:
    """Seconds before pods may be created again: ``base * 2^(failures-1)`` capped at ``cap``,
    counted from the last failure."""
    if rec.failures <= 0 or rec.last_failure is None:
        return 0.0
    delay = min(base * 2 ** min(rec.failures - 1, 62), cap)
    return max(0.0, rec.last_failure + delay - now)


# ------------------------------------------------------------------------------------------------
# reconcile
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobObserved:
    job: Obj
    pods: tuple[Obj, ...]                   # the Job's pods (claimed), cache objects
    now: dt.datetime                        # wall clock (timestamps, deadlines)
    now_mono: float = 0.0                   # monotonic clock (back-off)
    expectations_satisfied: bool = True
    expected_rm_finalizers: frozenset[str] = frozenset()
    backoff: BackoffRecord = BackoffRecord()
    backoff_base: float = DEFAULT_BACKOFF
    backoff_max: float = MAX_BACKOFF


@dataclass(frozen=True)
class JobPlan:
    status: Obj                              # status to write (before tracking): active, ready, ...
    finished: Obj | None = None              # the finish condition reached in this sync, if any
    delete: tuple[Obj, ...] = ()             # active pods to delete
    keep_finalizers: bool = False            # True: finishing (counted later); False: drop them first
    create: tuple[int | None, ...] = ()      # one entry per pod to create: completion index or None
    requeue_after: float | None = None
    backoff: BackoffRecord = BackoffRecord()  # the record to keep once the status is flushed
    events: tuple[tuple[str, str, str], ...] = ()   # (type, reason, message)
    succeeded_indexes: frozenset[int] = frozenset()
    prev_succeeded_indexes: frozenset[int] = frozenset()


def _uncounted(status: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    u = status.get("uncountedTerminatedPods") or {}
    return set(u.get("succeeded") or ()), set(u.get("failed") or ())


def new_finished_pods(job: Mapping[str, Any], pods: Sequence[Obj],
                      expected_rm: frozenset[str]) -> tuple[list[Obj], list[Obj]]:
    """Finished pods not yet accounted for (they still carry the finalizer and are not in the
    uncounted lists): (succeeded, failed)."""
    unc_s, unc_f = _uncounted(job.get("status") or {})
    completions = int(_spec(job).get("completions") or 0)
    succeeded: list[Obj] = []
    failed: list[Obj] = []
    for p in pods:
        uid = str(_md(p).get("uid") or "")
        if not has_tracking_finalizer(p) or uid in expected_rm:
            continue
        if is_indexed(job) and _valid_index(p, completions) is None:
            continue
        if _phase(p) == "Succeeded" and uid not in unc_s:
            succeeded.append(p)
        elif is_pod_failed(p, job) and uid not in unc_f:
            failed.append(p)
    return succeeded, failed


def succeeded_indexes(job: Mapping[str, Any], pods: Sequence[Obj]) -> tuple[frozenset[int], frozenset[int]]:
    """(indexes in ``status.completedIndexes``, those plus indexes of succeeded pods)."""
    completions = int(_spec(job).get("completions") or 0)
    prev = parse_indexes((job.get("status") or {}).get("completedIndexes"), completions)
    now = set(prev)
    for p in pods:
        if _phase(p) == "Succeeded":
            ix = _valid_index(p, completions)
            if ix is not None:
                now.add(ix)
    return frozenset(prev), frozenset(now)


def past_backoff_limit_on_failure(job: Mapping[str, Any], pods: Sequence[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of running/pending pods reach backoffLimit."""
    spec = _spec(job)
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    total = 0
    for p in pods:
        if _phase(p) in ("Running", "Pending"):
            st = p.get("status") or {}
            for cs in list(st.get("initContainerStatuses") or ()) + list(st.get("containerStatuses") or ()):
                total += int(cs.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6)
    return total > 0 if limit == 0 else total >= limit


def deadline_remaining(job: Mapping[str, Any], now: dt.datetime) -> float | None:
    """Seconds left before activeDeadlineSeconds passes (<= 0: passed); None when not applicable."""
    ads = _spec(job).get("activeDeadlineSeconds")
    start = parse_time((job.get("status") or {}).get("startTime"))
    if ads is None or start is None or is_suspended(job):
        return None
    return float(ads) - (now - start).total_seconds()


def pods_for_removal(job: Mapping[str, Any], active: Sequence[Obj], at_least: int) -> list[Obj]:
    """Active pods to delete: for Indexed Jobs first those with invalid or repeated indexes, then
    the least progressed (upstream ``activePodsForRemoval``)."""
    rm: list[Obj] = []
    left: list[Obj] = list(active)
    if is_indexed(job):
        completions = int(_spec(job).get("completions") or 0)
        left = []
        by_index: dict[int, list[Obj]] = {}
        for p in active:
            ix = _valid_index(p, completions)
            if ix is None:
                rm.append(p)
            else:
                by_index.setdefault(ix, []).append(p)
        for group in by_index.values():
            ordered = sorted(group, key=deletion_key)
            rm.extend(ordered[:-1])
            left.append(ordered[-1])
    if len(rm) < at_least:
        rm.extend(sorted(left, key=deletion_key)[:at_least - len(rm)])
    return rm


def _want_active(job: Mapping[str, Any], active: int, succeeded: int) -> int:
    spec = _spec(job)
    parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
    completions = spec.get("completions")
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(int(completions) - succeeded, parallelism))


def reconcile(obs: JobObserved) -> JobPlan:
    """Decide one sync of an unfinished Job (see the module docstring)."""
    job = obs.job
    spec = _spec(job)
    status: Obj = copy.deepcopy(job.get("status") or {})
    status.setdefault("uncountedTerminatedPods", {})
    pods = list(obs.pods)
    active_pods = [p for p in pods if is_pod_active(p)]
    terminating = sum(1 for p in pods if is_pod_terminating(p))
    ready = sum(1 for p in active_pods if is_pod_ready(p))
    unc_s, unc_f = _uncounted(status)
    new_s, new_f = new_finished_pods(job, pods, obs.expected_rm_finalizers)
    policy = spec.get("podFailurePolicy")
    counted_new_f = sum(1 for p in new_f if match_pod_failure_policy(policy, p).count_failed)
    succeeded = int(status.get("succeeded") or 0) + len(new_s) + len(unc_s)
    failed = int(status.get("failed") or 0) + counted_new_f + len(unc_f)
    events: list[tuple[str, str, str]] = []
    requeue: float | None = None

    if not status.get("startTime") and not is_suspended(job):
        status["startTime"] = now_rfc3339(obs.now)
    backoff = next_backoff_record(obs.backoff, len(new_s), len(new_f), obs.now_mono)

    conditions = list(status.get("conditions") or ())
    finished = find_condition(conditions, SUCCESS_CRITERIA_MET)
    if finished is not None and finished.get("status") != "True":
        finished = None
    if finished is None:
        target = find_condition(conditions, FAILURE_TARGET)
        if target is not None and target.get("status") == "True":
            finished = new_condition(FAILED, "True", str(target.get("reason") or ""),
                                     str(target.get("message") or ""), obs.now)
        elif policy:
            for p in pods:
                if is_pod_failed(p, job):
                    msg = match_pod_failure_policy(policy, p).fail_job_message
                    if msg is not None:
                        finished = new_condition(FAILURE_TARGET, "True", REASON_POD_FAILURE_POLICY, msg, obs.now)
                        break
    if finished is None:
        limit = int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6)
        remaining = deadline_remaining({**job, "status": status}, obs.now)
        if failed > limit or past_backoff_limit_on_failure(job, pods):
            finished = new_condition(FAILURE_TARGET, "True", REASON_BACKOFF_LIMIT, MSG_BACKOFF_LIMIT, obs.now)
        elif remaining is not None and remaining <= 0:
            finished = new_condition(FAILURE_TARGET, "True", REASON_DEADLINE, MSG_DEADLINE, obs.now)
        elif remaining is not None:
            requeue = remaining

    prev_ix: frozenset[int] = frozenset()
    now_ix: frozenset[int] = frozenset()
    if is_indexed(job):
        prev_ix, now_ix = succeeded_indexes(job, pods)
        succeeded = len(now_ix)

    active = len(active_pods)
    plan_delete: list[Obj] = []
    keep_finalizers = False
    create: list[int | None] = []
    if finished is not None:
        plan_delete, keep_finalizers = active_pods, True
        terminating += len(active_pods)
        ready -= sum(1 for p in active_pods if is_pod_ready(p))
        active = 0
        if not obs.expectations_satisfied:
            finished = None
    else:
        manage_called = False
        if obs.expectations_satisfied and not _md(job).get("deletionTimestamp"):
            manage_called = True
            plan_delete, create, wait = _manage(obs, job, active_pods, pods, succeeded, terminating,
                                                now_ix, backoff)
            if wait is not None:
                requeue = wait if requeue is None else min(requeue, wait)
            active += len(create) - len(plan_delete)
            terminating += len(plan_delete)
            ready -= sum(1 for p in plan_delete if is_pod_ready(p))
        completions = spec.get("completions")
        complete = active == 0 and (succeeded > 0 if completions is None else succeeded >= int(completions))
        if complete:
            finished = new_condition(SUCCESS_CRITERIA_MET, "True", REASON_COMPLETIONS_REACHED,
                                     MSG_COMPLETIONS_REACHED, obs.now)
        elif manage_called:
            if is_suspended(job):
                conditions, changed = ensure_condition(conditions, SUSPENDED, "True", "JobSuspended",
                                                       "Job suspended", obs.now)
                if changed:
                    events.append(("Normal", "Suspended", "Job suspended"))
            else:
                conditions, changed = ensure_condition(conditions, SUSPENDED, "False", "JobResumed",
                                                       "Job resumed", obs.now)
                if changed:
                    events.append(("Normal", "Resumed", "Job resumed"))
                    status["startTime"] = now_rfc3339(obs.now)
    if conditions:
        status["conditions"] = conditions
    _set_count(status, "active", active)
    status["ready"] = ready
    status["terminating"] = terminating
    return JobPlan(status=status, finished=finished, delete=tuple(plan_delete),
                   keep_finalizers=keep_finalizers, create=tuple(create), requeue_after=requeue,
                   backoff=backoff, events=tuple(events), succeeded_indexes=now_ix,
                   prev_succeeded_indexes=prev_ix)


def _set_count(status: Obj, key: str, value: int) -> None:
    if value:
        status[key] = value
    else:
        status.pop(key, None)


def _manage(obs: JobObserved, job: Mapping[str, Any], active_pods: list[Obj], pods: list[Obj],
            succeeded: int, terminating: int, succeeded_ix: frozenset[int],
            backoff: BackoffRecord) -> tuple[list[Obj], list[int | None], float | None]:
    """(pods to delete, pods to create, wait before creating) — upstream ``manageJob``."""
    active = len(active_pods)
    if is_suspended(job):
        return pods_for_removal(job, active_pods, active), [], None
    want = _want_active(job, active, succeeded)
    rm = pods_for_removal(job, active_pods, max(0, active - want))[:MAX_POD_CREATE_DELETE_PER_SYNC]
    if rm:
        return rm, [], None
    pending_terminating = terminating if only_replace_failed_pods(job) else 0
    diff = want - pending_terminating - active
    if diff <= 0:
        return [], [], None
    wait = backoff_remaining(backoff, obs.now_mono, obs.backoff_base, obs.backoff_max)
    if wait > 0:
        return [], [], wait
    diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
    if not is_indexed(job):
        return [], [None] * diff, None
    completions = int(_spec(job).get("completions") or 0)
    taken = set(succeeded_ix)
    taken.update(ix for p in active_pods if (ix := _valid_index(p, completions)) is not None)
    if only_replace_failed_pods(job):
        taken.update(ix for p in pods if is_pod_terminating(p)
                     and (ix := _valid_index(p, completions)) is not None)
    return [], list(first_pending_indexes(completions, taken, diff)), None
