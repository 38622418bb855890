"""The Job controller's I/O shell: events -> keys, claim pods, carry out ``reconcile``'s plan.

Keys in the queue are Job keys (``ns/name``) or, prefixed ``ORPHAN_PREFIX``, keys of pods that
still carry the tracking finalizer although no live Job owns them (``sync_orphan_pod`` removes it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...api.meta import MAX_GENERATE_PREFIX
from ...client import NORMAL, WARNING, Controller, EventRecorder, controller_ref
from ...client.errors import ApiError, NotFound
from ...client.indexer import BY_OWNER_UID, index_by_owner_uid
from ...client.keys import (
    DeletedFinalStateUnknown,
    ObjectKey,
    key_of,
    make_key,
    split_key,
    tombstone_object,
)
from ...client.lister import copy_obj
from ...client.resources import JOBS, PODS
from ...util.clock import Clock
from ..replicaset import (
    ORPHANS_BY_NAMESPACE,
    Expectations,
    classify_pods,
    index_orphans_by_namespace,
    slow_start_batch,
)
from .indexes import COMPLETION_INDEX
from .reconcile import (
    CONTROLLER_UID_LABEL,
    DEFAULT_BACKOFF,
    JOB_NAME_LABEL,
    JOB_TRACKING_FINALIZER,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    MAX_BACKOFF,
    BackoffRecord,
    JobObserved,
    JobPlan,
    has_tracking_finalizer,
    is_job_finished,
    job_selector,
    reconcile,
)
from .tracking import clean_uncounted, compute_tracking, enact_finished, finished_events

if TYPE_CHECKING:
    from ...client.informer import InformerFactory
    from ...client.rest import ApiClient

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NAME = "job-controller"
ORPHAN_PREFIX = "orphan-pod:"          # not a valid namespace, so never a Job key
REMOVE_FINALIZER_PATCH = {"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}}


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def owner_reference(job: Mapping[str, Any]) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": _md(job).get("name"),
            "uid": _md(job).get("uid"), "controller": True, "blockOwnerDeletion": True}


def generate_name(job_name: str, index: int | None) -> str:
    """``<job>-`` or, for an index, ``<job>-<index>-`` (the job name cut to fit 58 characters)."""
    if index is None:
        return f"{job_name}-"
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATE_PREFIX:
        prefix = prefix[:MAX_GENERATE_PREFIX - len(suffix)] + suffix
    return prefix


def pod_from_job(job: Mapping[str, Any], index: int | None) -> Obj:
    """The pod to create: template + controller ref + tracking finalizer (+ index fields)."""
    md = _md(job)
    template = (job.get("spec") or {}).get("template") or {}
    tmd = template.get("metadata") or {}
    labels = dict(tmd.get("labels") or {})
    if not (job.get("spec") or {}).get("selector"):
        # the API server did not generate a selector: label pods so the fallback selector finds them
        uid, name = str(md.get("uid") or ""), str(md.get("name") or "")
        for key, value in ((CONTROLLER_UID_LABEL, uid), (LEGACY_CONTROLLER_UID_LABEL, uid),
                           (JOB_NAME_LABEL, name), (LEGACY_JOB_NAME_LABEL, name)):
            labels.setdefault(key, value)
    annotations = dict(tmd.get("annotations") or {})
    finalizers = list(tmd.get("finalizers") or ())
    if JOB_TRACKING_FINALIZER not in finalizers:
        finalizers.append(JOB_TRACKING_FINALIZER)
    spec = copy_obj(template.get("spec") or {})
    if index is not None:
        annotations[COMPLETION_INDEX] = str(index)
        labels[COMPLETION_INDEX] = str(index)
        spec["hostname"] = f"{md.get('name')}-{index}"
        env_ref = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
        for kind in ("initContainers", "containers"):
            for c in spec.get(kind) or ():
                env = c.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                    env.append(dict(env_ref))
    pmd: Obj = {"generateName": generate_name(str(md.get("name") or ""), index),
                "namespace": md.get("namespace"), "labels": labels,
                "finalizers": finalizers, "ownerReferences": [owner_reference(job)]}
    if annotations:
        pmd["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pmd, "spec": spec}


class FinalizerExpectations:
    """Pod uids whose finalizer removal we asked for, per Job key, until observed."""

    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expect(self, key: str, uids: list[str]) -> None:
        self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        s = self._uids.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                self._uids.pop(key, None)

    def get(self, key: str) -> frozenset[str]:
        return frozenset(self._uids.get(key) or ())

    def delete(self, key: str) -> None:
        self._uids.pop(key, None)


@dataclass
class Stats:
    created: int = 0
    deleted: int = 0
    finalizers_removed: int = 0
    status_writes: int = 0


class JobController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 5,
                 backoff_base: float = DEFAULT_BACKOFF, backoff_max: float = MAX_BACKOFF) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.expectations = Expectations(self.clock)
        self.finalizer_expectations = FinalizerExpectations()
        self.backoffs: dict[str, BackoffRecord] = {}
        self.stats = Stats()
        self.jobs = self.informer(JOBS, handle=False)
        self.jobs.add_event_handler(on_add=self._job_added, on_update=self._job_updated,
                                    on_delete=self._job_deleted)
        self.pods = self.informer(PODS, handle=False, indexers={
            BY_OWNER_UID: index_by_owner_uid, ORPHANS_BY_NAMESPACE: index_orphans_by_namespace})
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    # -- event handlers: only keys (and expectations) ---------------------------------------------
    def _job_added(self, job: Obj) -> None:
        self.enqueue(job)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _job_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        job = tombstone_object(obj)
        self.enqueue(job)
        for pod in self.pods.indexer.by_index(BY_OWNER_UID, str(_md(job).get("uid") or "")):
            if has_tracking_finalizer(pod):
                self.enqueue(ORPHAN_PREFIX + key_of(pod))

    def _resolve(self, pod: Mapping[str, Any]) -> str | None:
        ref = controller_ref(dict(pod))
        if ref is None or ref.get("kind") != "Job" or not ref.get("name"):
            return None
        key = make_key(_md(pod).get("namespace"), str(ref["name"]))
        job = self.jobs.lister().get_by_key(key)
        if job is None or _md(job).get("uid") != ref.get("uid"):
            return None
        return key

    def _orphan_check(self, pod: Mapping[str, Any]) -> None:
        if has_tracking_finalizer(pod) and self._resolve(pod) is None:
            ref = controller_ref(dict(pod))
            if ref is None or ref.get("kind") == "Job":
                self.enqueue(ORPHAN_PREFIX + key_of(dict(pod)))

    def _matching_jobs(self, pod: Mapping[str, Any]) -> list[str]:
        labels = _md(pod).get("labels") or {}
        return [key_of(j) for j in self.jobs.lister().list(_md(pod).get("namespace"))
                if (j.get("spec") or {}).get("selector") and job_selector(j).matches(labels)]

    def _pod_added(self, pod: Obj) -> None:
        if _md(pod).get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._resolve(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
            return
        self._orphan_check(pod)
        if controller_ref(pod) is None:
            for k in self._matching_jobs(pod):
                self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _md(old).get("resourceVersion") == _md(new).get("resourceVersion") and old is not new:
            return
        if _md(new).get("deletionTimestamp") and not _md(old).get("deletionTimestamp"):
            self._pod_deleted(new, final=False)
        for pod in (old, new):
            key = self._resolve(pod)
            if key is not None:
                if not has_tracking_finalizer(new):
                    self.finalizer_expectations.observed(key, str(_md(new).get("uid")))
                self.enqueue(key)
        self._orphan_check(new)
        if controller_ref(new) is None and _md(old).get("labels") != _md(new).get("labels"):
            for k in self._matching_jobs(new):
                self.enqueue(k)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown, final: bool = True) -> None:
        pod = tombstone_object(obj)
        key = self._resolve(pod)
        if key is None:
            if not final:
                self._orphan_check(pod)
            return
        self.expectations.deletion_observed(key, key_of(pod))
        if final:
            self.finalizer_expectations.observed(key, str(_md(pod).get("uid")))
        self.enqueue(key)

    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, typ, reason, message)

    # -- sync -------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self.sync_orphan_pod(key[len(ORPHAN_PREFIX):])
            return
        shared = self.jobs.lister().get_by_key(key)
        if shared is None:
            self.expectations.delete(key)
            self.finalizer_expectations.delete(key)
            self.backoffs.pop(key, None)
            return
        if is_job_finished(shared):
            self.backoffs.pop(key, None)
            return
        mode = (shared.get("spec") or {}).get("completionMode")
        if mode not in (None, "NonIndexed", "Indexed"):
            self._event(shared, WARNING, "UnknownCompletionMode",
                        "Skipped Job sync because completion mode is unknown")
            return
        job = copy_obj(shared)
        satisfied = self.expectations.satisfied(key)
        pods = await self._claim_pods(job)
        expected_rm = self.finalizer_expectations.get(key)
        obs = JobObserved(job=job, pods=tuple(pods), now=self.clock.wall(), now_mono=self.clock.monotonic(),
                          expectations_satisfied=satisfied, expected_rm_finalizers=expected_rm,
                          backoff=self.backoffs.get(key, BackoffRecord()),
                          backoff_base=self.backoff_base, backoff_max=self.backoff_max)
        plan = reconcile(obs)
        for typ, reason, message in plan.events:
            self._event(job, typ, reason, message)
        status, finished, manage_err = await self._carry_out(job, key, plan)
        plan = dataclasses.replace(plan, status=status, finished=finished)
        old = job.get("status") or {}
        needs = any(old.get(k) != status.get(k) for k in ("active", "ready", "terminating", "conditions",
                                                          "startTime"))
        await self._track(job, key, plan, pods, expected_rm, needs)
        if manage_err is not None:
            raise manage_err
        if plan.requeue_after is not None:
            self.enqueue_after(key, max(plan.requeue_after, 0.001))

    async def _carry_out(self, job: Obj, key: str, plan: JobPlan) -> tuple[Obj, Obj | None, Exception | None]:
        """Deletions and creations; returns the status corrected for failed writes."""
        status = dict(plan.status)
        finished = plan.finished
        err: Exception | None = None
        if plan.delete:
            failed = await self._delete_pods(job, key, list(plan.delete), plan.keep_finalizers)
            if failed:
                err = failed[0]
                status["active"] = int(status.get("active") or 0) + len(failed)
                status["terminating"] = int(status.get("terminating") or 0) - len(failed)
                if plan.keep_finalizers:
                    finished = None
        if plan.create:
            done, cerr = await self._create_pods(job, key, list(plan.create))
            if cerr is not None:
                err = cerr
                status["active"] = int(status.get("active") or 0) - (len(plan.create) - done)
        if not status.get("active"):
            status.pop("active", None)
        return status, finished, err

    async def _delete_pods(self, job: Obj, key: str, pods: list[Obj], keep_finalizers: bool) -> list[Exception]:
        self.expectations.expect_deletions(key, [key_of(p) for p in pods])
        ns = _md(job).get("namespace")

        async def one(pod: Obj) -> Exception | None:
            name = str(_md(pod).get("name"))
            try:
                if not keep_finalizers and has_tracking_finalizer(pod):
                    await self.client.patch(PODS, name, REMOVE_FINALIZER_PATCH, ns, patch_type="strategic")
                await self.client.delete(PODS, name, ns)
            except NotFound:
                self.expectations.deletion_observed(key, key_of(pod))
                return None
            except ApiError as e:
                self.expectations.deletion_observed(key, key_of(pod))
                self._event(job, WARNING, "FailedDelete", f"Error deleting: {e}")
                return e
            self.stats.deleted += 1
            self._event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")
            return None

        results = await asyncio.gather(*(one(p) for p in pods))
        return [r for r in results if r is not None]

    async def _create_pods(self, job: Obj, key: str, indexes: list[int | None]) -> tuple[int, Exception | None]:
        self.expectations.expect_creations(key, len(indexes))
        pending = list(indexes)
        ns = _md(job).get("namespace")

        async def create_one() -> None:
            index = pending.pop(0)
            pod = await self.client.create(PODS, pod_from_job(job, index), ns)
            self.stats.created += 1
            self._event(job, NORMAL, "SuccessfulCreate", f"Created pod: {_md(pod).get('name')}")

        done, err = await slow_start_batch(len(indexes), create_one)
        if done < len(indexes):
            self.expectations.lower_creations(key, len(indexes) - done)
        if err is not None:
            self._event(job, WARNING, "FailedCreate", f"Error creating: {err}")
        return done, err

    async def _track(self, job: Obj, key: str, plan: JobPlan, pods: list[Obj], expected_rm: frozenset[str],
                     needs_flush: bool) -> None:
        """Count finished pods through uncountedTerminatedPods, drop finalizers, finish the Job."""
        tr = compute_tracking(job, plan, pods, expected_rm, self.clock.wall(), needs_flush)
        current = job
        if tr.needs_flush:
            current = await self._write_status(job, tr.status)
            self.backoffs[key] = plan.backoff
        status = tr.status
        rm_err: Exception | None = None
        if tr.remove_finalizers:
            removed, rm_err = await self._remove_finalizers(key, tr.remove_finalizers)
            tr.with_finalizer -= removed
        status, changed = clean_uncounted(status, tr.with_finalizer)
        finished = False
        if not tr.reached_max_uncounted:
            status, finished = enact_finished(status, tr.final)
        if changed or finished:
            current = await self._write_status(current, status)
            if finished and tr.final is not None:
                for typ, reason, message in finished_events(current, tr.final):
                    self._event(current, typ, reason, message)
        if rm_err is not None:
            raise rm_err

    async def _remove_finalizers(self, key: str, pods: list[Obj]) -> tuple[set[str], Exception | None]:
        uids = [str(_md(p).get("uid")) for p in pods]
        self.finalizer_expectations.expect(key, uids)
        errors: list[Exception] = []

        async def one(pod: Obj) -> str | None:
            uid = str(_md(pod).get("uid"))
            try:
                await self.client.patch(PODS, str(_md(pod).get("name")), REMOVE_FINALIZER_PATCH,
                                        _md(pod).get("namespace"), patch_type="strategic")
            except NotFound:
                self.finalizer_expectations.observed(key, uid)
                return uid
            except ApiError as e:
                self.finalizer_expectations.observed(key, uid)
                errors.append(e)
                return None
            self.stats.finalizers_removed += 1
            return uid

        results = await asyncio.gather(*(one(p) for p in pods))
        return {r for r in results if r is not None}, (errors[0] if errors else None)

    async def _write_status(self, job: Obj, status: Obj) -> Obj:
        body = {**job, "status": status}
        out: Obj = await self.client.update_status(JOBS, body, _md(job).get("namespace"))   # Conflict: requeue
        self.stats.status_writes += 1
        return out

    # -- pods -------------------------------------------------------------------------------------
    async def _claim_pods(self, job: Obj) -> list[Obj]:
        md = _md(job)
        uid = str(md.get("uid") or "")
        ns = md.get("namespace")
        index = self.pods.indexer
        candidates = {key_of(p): p for p in index.by_index(BY_OWNER_UID, uid)}
        for p in index.by_index(ORPHANS_BY_NAMESPACE, str(ns)):
            candidates.setdefault(key_of(p), p)
        deleting = bool(md.get("deletionTimestamp"))
        claim = classify_pods(uid, job_selector(job), candidates.values(), deleting)
        owned = list(claim.owned)
        if claim.adopt and not is_job_finished(job) and await self._still_alive(job):
            for pod in claim.adopt:
                patch = {"metadata": {"ownerReferences": [owner_reference(job)],
                                      "finalizers": [JOB_TRACKING_FINALIZER], "uid": _md(pod).get("uid")}}
                try:
                    owned.append(await self.client.patch(PODS, str(_md(pod)["name"]), patch, ns,
                                                         patch_type="strategic"))
                except NotFound:
                    continue
        for pod in claim.release:
            patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}],
                                  "uid": _md(pod).get("uid")}}
            try:
                await self.client.patch(PODS, str(_md(pod)["name"]), patch, ns, patch_type="strategic")
            except NotFound:
                continue
        return owned

    async def _still_alive(self, job: Obj) -> bool:
        md = _md(job)
        try:
            fresh = await self.client.get(JOBS, str(md["name"]), md.get("namespace"))
        except NotFound:
            return False
        return _md(fresh).get("uid") == md.get("uid") and not _md(fresh).get("deletionTimestamp")

    async def sync_orphan_pod(self, pod_key: str) -> None:
        """Remove the tracking finalizer from a pod no unfinished Job owns any more."""
        pod = self.pods.lister().get_by_key(pod_key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return
            ns, _ = split_key(pod_key)
            job: Obj | None = self.jobs.lister().get(str(ref.get("name")), ns)
            if job is None or _md(job).get("uid") != ref.get("uid"):
                try:   # the cache may lag behind a just-created Job: ask the server
                    job = await self.client.get(JOBS, str(ref.get("name")), ns)
                except NotFound:
                    job = None
            if job is not None and _md(job).get("uid") == ref.get("uid") and not is_job_finished(job):
                return
        try:
            await self.client.patch(PODS, str(_md(pod).get("name")), REMOVE_FINALIZER_PATCH,
                                    _md(pod).get("namespace"), patch_type="strategic")
            self.stats.finalizers_removed += 1
        except NotFound:
            return


