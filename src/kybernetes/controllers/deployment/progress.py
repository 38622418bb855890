"""Deployment status and conditions (upstream ``sync.go`` calculateStatus + ``progress.go``), pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ...api.meta import parse_time
from .util import (
    AVAILABLE,
    MIN_REPLICAS_AVAILABLE,
    MIN_REPLICAS_UNAVAILABLE,
    NEW_RS_AVAILABLE,
    PAUSED,
    PROGRESSING,
    REPLICA_FAILURE,
    RESUMED,
    RS_UPDATED,
    TIMED_OUT,
    Obj,
    actual_replica_count,
    available_replica_count,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    get_condition,
    is_paused,
    max_unavailable,
    md,
    name,
    new_condition,
    progress_deadline,
    ready_replica_count,
    remove_condition,
    replica_count,
    set_condition,
    spec_replicas,
)


def _copy_status(d: Obj) -> Obj:
    old = d.get("status") or {}
    st: Obj = {k: v for k, v in old.items() if k != "conditions"}
    if old.get("conditions"):
        st["conditions"] = [dict(c) for c in old["conditions"]]
    return st


def calculate_status(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None, now: dt.datetime) -> Obj:
    """Counts, observedGeneration and the Available condition (Progressing is kept as it was)."""
    available = available_replica_count(all_rss)
    unavailable = max(replica_count(all_rss) - available, 0)
    old = d.get("status") or {}
    status: Obj = {
        "observedGeneration": int(md(d).get("generation") or 0),
        "replicas": actual_replica_count(all_rss),
        "updatedReplicas": actual_replica_count([new_rs]),
        "readyReplicas": ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    status = {k: v for k, v in status.items() if v or k == "replicas" or k == "collisionCount"}
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= spec_replicas(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_REPLICAS_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_REPLICAS_UNAVAILABLE,
                             "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def replica_failure(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj | None:
    """A ReplicaFailure condition of the new RS first, then of any other RS."""
    ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
    for rs in ordered:
        if rs is None:
            continue
        cond = get_condition(rs.get("status"), REPLICA_FAILURE)
        if cond is not None:
            return cond
    return None


def rollout_status(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None, now: dt.datetime) -> Obj:
    """The full new status during a rollout, including Progressing and ReplicaFailure."""
    status = calculate_status(d, all_rss, new_rs, now)
    if progress_deadline(d) is None:
        remove_condition(status, PROGRESSING)
    current = get_condition(d.get("status"), PROGRESSING)
    complete_before = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                       and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
    what = f'ReplicaSet "{name(new_rs)}"' if new_rs is not None else f'Deployment "{name(d)}"'
    if progress_deadline(d) is not None and not complete_before:
        if deployment_complete(d, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                                f"{what} has successfully progressed.", now))
        elif deployment_progressing(d, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{what} is progressing.", now)
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                                f"{what} has timed out progressing.", now))
    failure = replica_failure(all_rss, new_rs)
    if failure is not None:
        set_condition(status, failure)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def paused_condition_status(d: Obj, now: dt.datetime) -> Obj | None:
    """The status with Progressing=Unknown DeploymentPaused/Resumed when ``spec.paused`` flipped."""
    if progress_deadline(d) is None:
        return None
    cond = get_condition(d.get("status"), PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    paused_cond = cond is not None and cond.get("reason") == PAUSED
    if is_paused(d) and not paused_cond:
        new = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    elif not is_paused(d) and paused_cond:
        new = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
    else:
        return None
    status = _copy_status(d)
    set_condition(status, new)
    return status


def requeue_after(d: Obj, status: Obj, now: dt.datetime) -> float | None:
    """When to look again so a stuck rollout is marked ProgressDeadlineExceeded on time."""
    deadline = progress_deadline(d)
    cond = get_condition(status, PROGRESSING)
    if deadline is None or cond is None or cond.get("reason") in (TIMED_OUT, NEW_RS_AVAILABLE, PAUSED):
        return None
    if deployment_complete(d, status):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    after = (since + dt.timedelta(seconds=deadline) - now).total_seconds()
    # timestamps have 1 s resolution and the deadline test is strict: look just after it
    return max(after, 0.0) + 0.1
