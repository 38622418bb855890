"""Counting finished pods exactly once (pure): ``status.uncountedTerminatedPods`` and finalizers.

Step 3 and 4 of a Job sync (see ``reconcile``): ``compute_tracking`` records finished pods that
still carry the tracking finalizer in ``uncountedTerminatedPods`` (flushed before anything else),
``clean_uncounted`` moves them into ``succeeded``/``failed`` once their finalizer is gone, and
``enact_finished`` adds the terminal condition when nothing is uncounted or terminating.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .indexes import completion_index, format_indexes
from .reconcile import (
    COMPLETE,
    FAILED,
    FAILURE_TARGET,
    MAX_UNCOUNTED_PODS,
    SUCCESS_CRITERIA_MET,
    JobPlan,
    _md,
    _phase,
    _set_count,
    _spec,
    _valid_index,
    find_condition,
    has_tracking_finalizer,
    is_indexed,
    is_pod_failed,
    match_pod_failure_policy,
    new_condition,
)

Obj = dict[str, Any]

# ------------------------------------------------------------------------------------------------
# tracking: uncounted pods, finalizers, terminal condition
# ------------------------------------------------------------------------------------------------
@dataclass
class Tracking:
    status: Obj                                  # status to flush before removing finalizers
    remove_finalizers: list[Obj] = field(default_factory=list)
    with_finalizer: set[str] = field(default_factory=set)   # uids still carrying the finalizer
    final: Obj | None = None                     # Complete/Failed condition to enact
    needs_flush: bool = False
    reached_max_uncounted: bool = False


def _can_remove_finalizer(job: Mapping[str, Any], finished: Obj | None, pod: Mapping[str, Any],
                          failed: bool) -> bool:
    return bool(_md(job).get("deletionTimestamp")) or finished is not None \
        or _phase(pod) == "Succeeded" or failed


def compute_tracking(job: Mapping[str, Any], plan: JobPlan, pods: Sequence[Obj],
                     expected_rm: frozenset[str], now: dt.datetime, needs_flush: bool) -> Tracking:
    """Step 1 of upstream ``trackJobStatusAndRemoveFinalizers`` on ``plan.status``."""
    status = copy.deepcopy(plan.status)
    finished = plan.finished
    indexed = is_indexed(job)
    completions = int(_spec(job).get("completions") or 0)
    policy = _spec(job).get("podFailurePolicy")
    with_fin = {str(_md(p).get("uid")) for p in pods
                if has_tracking_finalizer(p) and str(_md(p).get("uid")) not in expected_rm}
    status, cleaned = clean_uncounted(status, with_fin)
    needs_flush = needs_flush or cleaned
    unc = status.setdefault("uncountedTerminatedPods", {})
    unc_s = list(unc.get("succeeded") or ())
    unc_f = list(unc.get("failed") or ())
    new_ix: list[int] = []
    remove: list[Obj] = []
    reached_max = False
    ordered = sorted(pods, key=lambda p: completion_index(p) or 0) if indexed else list(pods)
    for pod in ordered:
        uid = str(_md(pod).get("uid") or "")
        if not has_tracking_finalizer(pod) or uid in expected_rm:
            continue
        failed = is_pod_failed(pod, job)
        if not _can_remove_finalizer(job, finished, pod, failed):
            continue
        remove.append(pod)
        if _phase(pod) == "Succeeded" and uid not in unc_f:
            if indexed:
                ix = _valid_index(pod, completions)
                if ix is not None and ix not in plan.prev_succeeded_indexes:
                    new_ix.append(ix)
                    needs_flush = True
            elif uid not in unc_s:
                unc_s.append(uid)
                needs_flush = True
        elif failed or (finished is not None and finished.get("type") != SUCCESS_CRITERIA_MET):
            ix = completion_index(pod)
            valid = not indexed or (ix is not None and ix < completions)
            if uid not in unc_f and valid and match_pod_failure_policy(policy, pod).count_failed:
                unc_f.append(uid)
                needs_flush = True
        if len(new_ix) + len(unc_s) + len(unc_f) >= MAX_UNCOUNTED_PODS:
            reached_max = True
            break
    unc["succeeded"], unc["failed"] = unc_s, unc_f
    _compact_uncounted(status)
    if indexed:
        done = set(plan.succeeded_indexes) | set(new_ix)
        text = format_indexes(done)
        if text != (job.get("status") or {}).get("completedIndexes", ""):
            needs_flush = True
        _set_count(status, "succeeded", len(done))
        if text:
            status["completedIndexes"] = text
        else:
            status.pop("completedIndexes", None)
    final = None
    conditions = list(status.get("conditions") or ())
    if finished is not None and finished.get("type") == FAILURE_TARGET:
        conditions.append(finished)
        needs_flush = True
        final = new_condition(FAILED, "True", finished["reason"], finished["message"], now)
    elif finished is not None and finished.get("type") == SUCCESS_CRITERIA_MET:
        if find_condition(conditions, SUCCESS_CRITERIA_MET) is None:
            conditions.append(finished)
            needs_flush = True
        final = new_condition(COMPLETE, "True", finished["reason"], finished["message"], now)
    elif finished is not None:
        final = finished
    if conditions:
        status["conditions"] = conditions
    return Tracking(status, remove, with_fin, final, needs_flush, reached_max)


def _compact_uncounted(status: Obj) -> None:
    unc = status.get("uncountedTerminatedPods") or {}
    status["uncountedTerminatedPods"] = {k: v for k, v in unc.items() if v}


def clean_uncounted(status: Obj, with_finalizer: set[str]) -> tuple[Obj, bool]:
    """Move uncounted uids whose finalizer is gone into ``succeeded``/``failed``."""
    out = copy.deepcopy(status)
    unc = out.get("uncountedTerminatedPods") or {}
    changed = False
    for key in ("succeeded", "failed"):
        uids = list(unc.get(key) or ())
        keep = [u for u in uids if u in with_finalizer]
        if len(keep) != len(uids):
            changed = True
            _set_count(out, key, int(out.get(key) or 0) + len(uids) - len(keep))
            unc[key] = keep
    out["uncountedTerminatedPods"] = unc
    _compact_uncounted(out)
    return out, changed


def enact_finished(status: Obj, final: Obj | None) -> tuple[Obj, bool]:
    """Add the terminal condition once nothing is uncounted and no pod is terminating."""
    if final is None:
        return status, False
    unc = status.get("uncountedTerminatedPods") or {}
    if unc.get("succeeded") or unc.get("failed") or int(status.get("terminating") or 0) > 0:
        return status, False
    out = copy.deepcopy(status)
    conditions = [dict(c) for c in out.get("conditions") or ()]
    replaced = False
    for i, c in enumerate(conditions):
        if c.get("type") == final["type"]:
            conditions[i] = dict(final)
            replaced = True
    if not replaced:
        conditions.append(dict(final))
    out["conditions"] = conditions
    if final["type"] == COMPLETE:
        out["completionTime"] = final["lastTransitionTime"]
    return out, True


def finished_events(job: Mapping[str, Any], final: Obj) -> list[tuple[str, str, str]]:
    """Events recorded when the Job reaches ``final``."""
    if final["type"] == COMPLETE:
        out = []
        completions = _spec(job).get("completions")
        succeeded = int((job.get("status") or {}).get("succeeded") or 0)
        if completions is not None and succeeded > int(completions):
            out.append(("Warning", "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached"))
        out.append(("Normal", "Completed", "Job completed"))
        return out
    return [("Warning", str(final.get("reason") or ""), str(final.get("message") or ""))]
