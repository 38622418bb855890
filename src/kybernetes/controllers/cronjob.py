"""The CronJob controller (upstream ``cronjob-controller``, v2): creates Jobs on a cron schedule.

One sync of a CronJob (as upstream ``syncCronJob``):

1. ``reconcile_children`` (pure): drop finished Jobs from ``status.active`` ("SawCompletedJob"),
   note Jobs it did not create ("UnexpectedJob": e.g. ``kubectl create job --from=cronjob/x``,
   which are never adopted into ``active``), advance ``lastSuccessfulTime``; active entries
   whose Job is gone are confirmed with a GET and dropped ("MissingJob").
2. Unless deleted or suspended, ``decide`` (pure) finds the most recent missed fire time
   (``most_recent_schedule_time``: at most one run for all missed times; more than 100 missed ->
   "TooManyMissedTimes"), skips it when older than ``startingDeadlineSeconds`` ("MissSchedule"),
   already started, or Forbidden by a running Job ("JobAlreadyActive"); Replace deletes the
   running Jobs first.
3. The Job ``<cronjob>-<scheduled time in minutes since the epoch>`` is created from
   ``jobTemplate`` with the ``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation; it
   joins ``status.active`` and sets ``lastScheduleTime``. The key is requeued for the next fire
   time (+100 ms). Finished Jobs beyond the history limits are deleted, oldest first.

Times come from the injected clock, so tests drive schedules with a ``FakeClock``.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.meta import now_rfc3339, parse_time
from ..client import NORMAL, WARNING, Controller, EventRecorder, controller_ref, owner_mapper
from ..client.errors import AlreadyExists, NotFound
from ..client.keys import ObjectKey
from ..client.lister import copy_obj
from ..client.resources import CRONJOBS, JOBS
from ..util.clock import Clock
from .cron import CronError, CronSchedule, load_zone, parse

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "cronjob-controller"
ALIASES = ("cronjob",)

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
NEXT_SCHEDULE_DELTA = 0.1          # seconds added to the next fire time before requeueing
TOO_MANY_MISSED = 100


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def rfc3339(t: dt.datetime) -> str:
    """Go's ``time.RFC3339`` of ``t`` in its own zone (``Z`` for UTC)."""
    text = t.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# ------------------------------------------------------------------------------------------------
# job helpers (pure)
# ------------------------------------------------------------------------------------------------
def job_finished_condition(job: Mapping[str, Any]) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def job_name(cronjob: Mapping[str, Any], scheduled: dt.datetime) -> str:
    """``<cronjob>-<minutes since the epoch>``: one name per fire time (so never two Jobs)."""
    return f"{_md(cronjob).get('name')}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cronjob: Mapping[str, Any], scheduled: dt.datetime, tz: dt.tzinfo) -> Obj:
    template = _spec(cronjob).get("jobTemplate") or {}
    tmd = template.get("metadata") or {}
    md = _md(cronjob)
    annotations = dict(tmd.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = rfc3339(scheduled.astimezone(tz))
    jmd: Obj = {"name": job_name(cronjob, scheduled), "namespace": md.get("namespace"),
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": md.get("name"),
                                     "uid": md.get("uid"), "controller": True, "blockOwnerDeletion": True}]}
    if tmd.get("labels"):
        jmd["labels"] = dict(tmd["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": jmd,
            "spec": copy.deepcopy(template.get("spec") or {})}


def job_reference(job: Mapping[str, Any]) -> Obj:
    md = _md(job)
    return {"apiVersion": "batch/v1", "kind": "Job", "name": md.get("name"),
            "namespace": md.get("namespace"), "uid": md.get("uid"),
            "resourceVersion": md.get("resourceVersion")}


# ------------------------------------------------------------------------------------------------
# children (pure)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Children:
    status: Obj
    changed: bool
    events: tuple[tuple[str, str, str], ...]
    missing: tuple[Obj, ...]          # active references with no Job in the cache


def reconcile_children(cronjob: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> Children:
    status: Obj = copy.deepcopy(cronjob.get("status") or {})
    active = list(status.get("active") or ())
    events: list[tuple[str, str, str]] = []
    changed = False
    uids = set()
    for job in jobs:
        uid = _md(job).get("uid")
        uids.add(uid)
        cond = job_finished_condition(job)
        listed = any(r.get("uid") == uid for r in active)
        if not listed and cond is None:
            events.append((WARNING, "UnexpectedJob",
                           f"Saw a job that the controller did not create or forgot: {_md(job).get('name')}"))
        elif listed and cond is not None:
            active = [r for r in active if r.get("uid") != uid]
            events.append((NORMAL, "SawCompletedJob", (f"Saw completed job: {_md(job).get('name')}, "
                                                      f"condition: {cond}")))
            changed = True
        if cond == "Complete":
            done = (job.get("status") or {}).get("completionTime")
            last = parse_time(status.get("lastSuccessfulTime"))
            done_t = parse_time(done)
            if done_t is not None and (last is None or done_t > last):
                status["lastSuccessfulTime"] = done
                changed = True
    missing = tuple(dict(r) for r in active if r.get("uid") not in uids)
    if active:
        status["active"] = active
    else:
        status.pop("active", None)
    return Children(status, changed, tuple(events), missing)


# ------------------------------------------------------------------------------------------------
# schedule arithmetic (pure)
# ------------------------------------------------------------------------------------------------
def most_recent_schedule_time(cronjob: Mapping[str, Any], now: dt.datetime, sched: CronSchedule,
                              include_deadline: bool) -> tuple[dt.datetime, dt.datetime | None, int]:
    """(earliest time considered, the most recent fire time <= now or None, estimated number of
    missed fire times) — upstream ``mostRecentScheduleTime``."""
    status = cronjob.get("status") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(_md(cronjob).get("creationTimestamp")) \
        or now
    deadline = _spec(cronjob).get("startingDeadlineSeconds")
    if include_deadline and deadline is not None:
        limit = now - dt.timedelta(seconds=int(deadline))
        earliest = max(earliest, limit)
    t1 = sched.next(earliest)
    if t1 is None or now < t1:
        return earliest, None, 0
    t2 = sched.next(t1)
    if t2 is None or now < t2:
        return earliest, t1, 1
    between = round((t2 - t1).total_seconds())
    if between < 1:
        return earliest, None, 0
    missed = int((now - t1).total_seconds()) // between + 1
    start = t1 + dt.timedelta(seconds=(missed - 2) * between)
    recent: dt.datetime | None = None
    t: dt.datetime | None = sched.next(start) if missed >= 2 else t1
    while t is not None and t <= now:
        recent = t
        t = sched.next(t)
    return earliest, recent, missed


def next_schedule_delay(cronjob: Mapping[str, Any], now: dt.datetime, sched: CronSchedule) -> float | None:
    """Seconds until the fire time after the most recent one (+100 ms), for requeueing."""
    earliest, recent, _ = most_recent_schedule_time(cronjob, now, sched, False)
    nxt = sched.next(recent or earliest)
    if nxt is None:
        return None
    return (nxt - now).total_seconds() + NEXT_SCHEDULE_DELTA


@dataclass(frozen=True)
class Decision:
    action: str                                  # "create" | "skip"
    scheduled: dt.datetime | None = None
    requeue_after: float | None = None
    events: tuple[tuple[str, str, str], ...] = ()
    replace: bool = False                        # delete the active Jobs first


def decide(cronjob: Mapping[str, Any], now: dt.datetime, sched: CronSchedule) -> Decision:
    """Whether to start a Job now (for which fire time), or when to look again."""
    spec = _spec(cronjob)
    status = cronjob.get("status") or {}
    requeue = next_schedule_delay(cronjob, now, sched)
    _, scheduled, missed = most_recent_schedule_time(cronjob, now, sched, True)
    events: list[tuple[str, str, str]] = []
    if missed > TOO_MANY_MISSED:
        events.append((WARNING, "TooManyMissedTimes",
                       (f"too many missed start times: {missed}. Set or decrease "
                       ".spec.startingDeadlineSeconds or check clock skew")))
    if scheduled is None:
        return Decision("skip", None, requeue, tuple(events))
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now:
        events.append((WARNING, "MissSchedule", "Missed scheduled time to start a job: "
                       + scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")))
        return Decision("skip", scheduled, requeue, tuple(events))
    name = job_name(cronjob, scheduled)
    active = status.get("active") or ()
    if any(r.get("name") == name for r in active) or \
            parse_time(status.get("lastScheduleTime")) == scheduled:
        return Decision("skip", scheduled, requeue, tuple(events))
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        events.append((NORMAL, "JobAlreadyActive",
                       "Not starting job because prior execution is running and concurrency policy is Forbid"))
        return Decision("skip", scheduled, requeue, tuple(events))
    return Decision("create", scheduled, requeue, tuple(events), replace=policy == "Replace" and bool(active))


def jobs_to_clean(cronjob: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """Finished Jobs beyond ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit``, oldest first."""
    spec = _spec(cronjob)
    out: list[Obj] = []
    for cond, key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(key)
        if limit is None:
            continue
        done = [j for j in jobs if job_finished_condition(j) == cond]

        def started(j: Mapping[str, Any]) -> tuple[int, float, str]:
            t = parse_time((j.get("status") or {}).get("startTime"))
            return (1, 0.0, str(_md(j).get("name"))) if t is None else (0, t.timestamp(), str(_md(j).get("name")))

        done.sort(key=started)
        excess = len(done) - int(limit)
        out.extend(dict(j) for j in done[:max(0, excess)])
    return out


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
class CronJobController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 5) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.cronjobs = self.informer(CRONJOBS)
        self.jobs = self.informer(JOBS, mapper=owner_mapper("CronJob", "batch/v1"))
        self.created = 0

    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, typ, reason, message)

    def _owned_jobs(self, cronjob: Obj) -> list[Obj]:
        uid = _md(cronjob).get("uid")
        return [j for j in self.jobs.lister().list(_md(cronjob).get("namespace"))
                if (controller_ref(j) or {}).get("uid") == uid]

    async def sync(self, key: ObjectKey) -> None:
        shared = self.cronjobs.lister().get_by_key(key)
        if shared is None:
            return
        cj = copy_obj(shared)
        jobs = self._owned_jobs(cj)
        children = reconcile_children(cj, jobs)
        for typ, reason, message in children.events:
            self._event(cj, typ, reason, message)
        status, changed = children.status, children.changed
        for ref in children.missing:
            if await self._job_gone(ref):
                status["active"] = [r for r in status.get("active") or () if r.get("uid") != ref.get("uid")]
                if not status["active"]:
                    status.pop("active")
                self._event(cj, NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}")
                changed = True
        cj["status"] = status
        requeue: float | None = None
        if not _md(cj).get("deletionTimestamp") and not _spec(cj).get("suspend"):
            sched = self._schedule(cj)
            if sched is not None:
                requeue, created = await self._maybe_start(cj, sched)
                changed = changed or created
        if changed:
            cj = await self.client.update_status(CRONJOBS, cj, _md(cj).get("namespace"))
        if not _md(cj).get("deletionTimestamp"):
            await self._cleanup(cj, self._owned_jobs(cj))
        if requeue is not None:
            self.enqueue_after(key, max(requeue, 0.001))

    def _schedule(self, cj: Obj) -> CronSchedule | None:
        spec = _spec(cj)
        try:
            tz = load_zone(spec.get("timeZone"))
        except CronError as e:
            self._event(cj, WARNING, "UnknownTimeZone", str(e))
            return None
        try:
            return parse(str(spec.get("schedule") or ""), tz)
        except CronError as e:
            self._event(cj, WARNING, "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r} : {e}")
            return None

    async def _maybe_start(self, cj: Obj, sched: CronSchedule) -> tuple[float | None, bool]:
        """Start the due Job if any; returns (requeue delay, whether the status changed)."""
        d = decide(cj, self.clock.wall(), sched)
        for typ, reason, message in d.events:
            self._event(cj, typ, reason, message)
        if d.action != "create" or d.scheduled is None:
            return d.requeue_after, False
        status = cj["status"]
        if d.replace:
            for ref in list(status.get("active") or ()):
                try:
                    await self.client.delete(JOBS, str(ref.get("name")), _md(cj).get("namespace"),
                                             propagation_policy="Background")
                except NotFound:
                    pass
                self._event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {ref.get('name')}")
                status["active"] = [r for r in status.get("active") or () if r.get("uid") != ref.get("uid")]
        body = job_from_template(cj, d.scheduled, sched.tz)
        try:
            job = await self.client.create(JOBS, body, _md(cj).get("namespace"))
        except AlreadyExists:
            job = await self.client.get(JOBS, body["metadata"]["name"], _md(cj).get("namespace"))
            if (controller_ref(job) or {}).get("uid") != _md(cj).get("uid"):
                return d.requeue_after, False
        except Exception as e:
            self._event(cj, WARNING, "FailedCreate", f"Error creating job: {e}")
            raise
        else:
            self.created += 1
            self._event(cj, NORMAL, "SuccessfulCreate", f"Created job {_md(job).get('name')}")
        active = [r for r in status.get("active") or () if r.get("uid") != _md(job).get("uid")]
        active.append(job_reference(job))
        status["active"] = active
        status["lastScheduleTime"] = now_rfc3339(d.scheduled)
        return d.requeue_after, True

    async def _job_gone(self, ref: Mapping[str, Any]) -> bool:
        try:
            job = await self.client.get(JOBS, str(ref.get("name")), ref.get("namespace"))
        except NotFound:
            return True
        return _md(job).get("uid") != ref.get("uid")

    async def _cleanup(self, cj: Obj, jobs: list[Obj]) -> None:
        for job in jobs_to_clean(cj, jobs):
            name = str(_md(job).get("name"))
            try:
                await self.client.delete(JOBS, name, _md(job).get("namespace"), propagation_policy="Background")
            except NotFound:
                continue
            self._event(cj, NORMAL, "SuccessfulDelete", f"Deleted job {name}")


def new(ctx: ControllerContext) -> CronJobController:
    return CronJobController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                             workers=int(ctx.options.get("concurrent_cron_job_syncs", 5)))


__all__ = ["ALIASES", "NAME", "CronJobController", "Decision", "decide", "job_from_template", "job_name",
           "jobs_to_clean", "most_recent_schedule_time", "new", "next_schedule_delay", "reconcile_children"]
