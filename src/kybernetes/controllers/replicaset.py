"""The ReplicaSet controller (it also drives ReplicationControllers).

Shape (as upstream ``pkg/controller/replicaset``): pod and set events only map to the owning
set's key (and count expectations); ``sync(key)`` re-reads everything from the listers:

    claim pods   adopt orphans that match the selector, release owned pods that stopped matching
    manage       if expectations are satisfied: create ``replicas - len(active)`` pods in slow-start
                 batches (1, 2, 4, ...; a set whose last round fully succeeded resumes at the
                 batch size it reached, see ``next_initial_batch``) or delete the surplus, chosen by ``deletion_order`` (not
                 ready, unassigned, newer pods first); at most ``BURST_REPLICAS`` per sync
    status       ``compute_status`` (pure) written once via ``/status`` when it changed; a pod that
                 is ready but not yet available (``minReadySeconds``) requeues the key for that moment

``Expectations`` record "I asked for N creations / these M deletions" so a lagging watch never makes
the controller act twice; they expire after ``EXPECTATIONS_TIMEOUT`` seconds as a safety net.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.labels import Selector, selector_from_label_selector, selector_from_set
from ..api.meta import now_rfc3339, parse_time
from ..client import NORMAL, WARNING, Controller, EventRecorder, Requeue, controller_ref
from ..client.errors import ApiError, NotFound
from ..client.indexer import BY_OWNER_UID, index_by_owner_uid
from ..client.keys import DeletedFinalStateUnknown, ObjectKey, key_of, make_key, tombstone_object
from ..client.lister import copy_obj
from ..client.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS, Resource
from ..util.clock import Clock, RealClock

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "replicaset-controller"
ALIASES = ("replicaset",)

BURST_REPLICAS = 500            # at most this many creations/deletions per sync (upstream burstReplicas)
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0    # seconds
MAX_IN_FLIGHT = 64              # concurrent pod writes within one batch
ORPHANS_BY_NAMESPACE = "orphansByNamespace"
REPLICA_FAILURE = "ReplicaFailure"


# ------------------------------------------------------------------------------------------------
# pod predicates (pure)
# ------------------------------------------------------------------------------------------------
def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Not terminal (Succeeded/Failed) and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not _md(pod).get("deletionTimestamp")


def ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return dict(c)
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


@functools.lru_cache(maxsize=65536)
def _ts(value: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp (memoised: syncs re-read the same pods often)."""
    t = parse_time(value)
    return t.timestamp() if t is not None else None


def available_in(pod: Mapping[str, Any], min_ready_seconds: int, now: dt.datetime) -> float | None:
    """Seconds until the pod counts as available: 0 when it is, None when it is not ready."""
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = _ts(c.get("lastTransitionTime"))
    if since is None:
        return 0.0
    remaining = since + min_ready_seconds - now.timestamp()
    # upstream: available when readySince + minReadySeconds is strictly before now
    return 0.0 if remaining < 0 else max(remaining, 0.001)


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: dt.datetime) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0


_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _max_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def deletion_key(pod: Mapping[str, Any], rank: int = 0) -> tuple[Any, ...]:
    """Sort key: pods that sort first are deleted first (upstream ``ActivePodsWithRanks``).

    unassigned < assigned; Pending < Unknown < Running; not ready < ready; more pods of the same
    set on its node first; more recently ready first; more restarts first; newer first; by name.
    """
    status = pod.get("status") or {}
    assigned = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase = _PHASE_ORDINAL.get(str(status.get("phase") or ""), 0)
    ready = is_pod_ready(pod)
    ready_since = _ts((ready_condition(pod) or {}).get("lastTransitionTime")) if ready else None
    created = _ts(_md(pod).get("creationTimestamp"))
    return (assigned, phase, 1 if ready else 0, -rank,
            -(ready_since if ready_since is not None else math.inf),
            -_max_restarts(pod),
            -(created if created is not None else math.inf),
            str(_md(pod).get("name") or ""))


def node_ranks(pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Pods per node (rank of a pod = how many of its siblings share its node)."""
    counts: dict[str, int] = {}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node:
            counts[node] = counts.get(node, 0) + 1
    return counts


def pods_to_delete(pods: Sequence[Obj], count: int) -> list[Obj]:
    """The ``count`` pods to delete first, by ``deletion_key``."""
    if count <= 0:
        return []
    ranks = node_ranks(pods)
    ordered = sorted(pods, key=lambda p: deletion_key(p, ranks.get((p.get("spec") or {}).get("nodeName") or "", 0)))
    return ordered[:count]


# ------------------------------------------------------------------------------------------------
# the controlled kind: ReplicaSet or ReplicationController
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ControlledKind:
    controller_name: str
    resource: Resource
    kind: str
    api_version: str

    def selector(self, obj: Mapping[str, Any]) -> Selector:
        sel = (obj.get("spec") or {}).get("selector")
        if self.kind == "ReplicationController":
            return selector_from_set(sel or None) if sel else Selector(nothing=True)
        if not sel:
            return Selector(nothing=True)
        return selector_from_label_selector(sel)


REPLICASET = ControlledKind(NAME, REPLICASETS, "ReplicaSet", "apps/v1")
REPLICATIONCONTROLLER = ControlledKind("replicationcontroller-controller", REPLICATIONCONTROLLERS,
                                       "ReplicationController", "v1")


def owner_reference(owner: Mapping[str, Any], kind: str, api_version: str) -> Obj:
    md = _md(owner)
    return {"apiVersion": api_version, "kind": kind, "name": md.get("name"), "uid": md.get("uid"),
            "controller": True, "blockOwnerDeletion": True}


def pod_from_template(owner: Mapping[str, Any], ck: ControlledKind) -> Obj:
    """The pod to create for ``owner``: template labels/annotations/finalizers/spec, generateName."""
    template = (owner.get("spec") or {}).get("template") or {}
    tmd = template.get("metadata") or {}
    md: Obj = {"generateName": f"{_md(owner).get('name')}-", "namespace": _md(owner).get("namespace"),
               "ownerReferences": [owner_reference(owner, ck.kind, ck.api_version)]}
    for k in ("labels", "annotations", "finalizers"):
        if tmd.get(k):
            md[k] = copy_obj({"v": tmd[k]})["v"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": copy_obj(template.get("spec") or {})}


# ------------------------------------------------------------------------------------------------
# claiming (pure decision)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    owned: tuple[Obj, ...] = ()      # already ours and matching
    adopt: tuple[Obj, ...] = ()      # orphans to adopt
    release: tuple[Obj, ...] = ()    # ours but no longer matching


def classify_pods(owner_uid: str, selector: Selector, pods: Iterable[Obj], owner_deleting: bool) -> Claim:
    """Split candidate pods (owned by ``owner_uid`` or orphans) as upstream ``ClaimPods`` does."""
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    for pod in pods:
        labels = _md(pod).get("labels") or {}
        matches = selector.matches(labels)
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                owned.append(pod)
            elif not owner_deleting:
                release.append(pod)
            continue
        if matches and not owner_deleting and not _md(pod).get("deletionTimestamp"):
            adopt.append(pod)
    return Claim(tuple(owned), tuple(adopt), tuple(release))


def index_orphans_by_namespace(obj: Obj) -> list[str]:
    """Index: namespace of every object without a controller ownerReference."""
    if controller_ref(obj) is not None:
        return []
    ns = _md(obj).get("namespace")
    return [ns] if ns else []


# ------------------------------------------------------------------------------------------------
# status (pure)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManageError:
    reason: str       # FailedCreate | FailedDelete
    message: str


def compute_status(owner: Mapping[str, Any], active_pods: Sequence[Mapping[str, Any]],
                   error: ManageError | None, now: dt.datetime) -> tuple[Obj, float | None]:
    """The set's new status and, if some ready pod becomes available later, the delay until then."""
    spec = owner.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    fully = ready = available = 0
    wake: float | None = None
    for pod in active_pods:
        labels = _md(pod).get("labels") or {}
        if template_labels.items() <= labels.items():
            fully += 1
        after = available_in(pod, min_ready, now)
        if after is None:
            continue
        ready += 1
        if after == 0.0:
            available += 1
        else:
            wake = after if wake is None else min(wake, after)
    old = owner.get("status") or {}
    conditions = [dict(c) for c in old.get("conditions") or ()]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if error is not None and failure is None:
        conditions.append({"type": REPLICA_FAILURE, "status": "True", "reason": error.reason,
                           "message": error.message, "lastTransitionTime": now_rfc3339(now)})
    elif error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status: Obj = {"replicas": len(active_pods)}
    for k, v in (("fullyLabeledReplicas", fully), ("readyReplicas", ready),
                 ("availableReplicas", available),
                 ("observedGeneration", int(_md(owner).get("generation") or 0))):
        if v:
            status[k] = v
    if conditions:
        status["conditions"] = conditions
    return status, wake


# ------------------------------------------------------------------------------------------------
# expectations
# ------------------------------------------------------------------------------------------------
@dataclass
class _Expectation:
    add: int
    delete: set[str]
    stamp: float


class Expectations:
    """What each owner still expects to observe (upstream ``UIDTrackingControllerExpectations``).

    Creations are a counter; deletions are the set of pod keys we deleted. Satisfied when both are
    done, when nothing was ever recorded, or after ``timeout`` seconds.
    """

    def __init__(self, clock: Clock | None = None, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.clock = clock or RealClock()
        self.timeout = timeout
        self._exp: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        e = self._exp.get(key)
        if e is None:
            return True
        if e.add <= 0 and not e.delete:
            return True
        return self.clock.monotonic() - e.stamp > self.timeout

    def expect_creations(self, key: str, n: int) -> None:
        self._exp[key] = _Expectation(n, set(), self.clock.monotonic())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._exp[key] = _Expectation(0, set(pod_keys), self.clock.monotonic())

    def lower_creations(self, key: str, n: int = 1) -> None:
        e = self._exp.get(key)
        if e is not None:
            e.add -= n

    def creation_observed(self, key: str) -> None:
        self.lower_creations(key, 1)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._exp.get(key)
        if e is not None:
            e.delete.discard(pod_key)

    def delete(self, key: str) -> None:
        self._exp.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        e = self._exp.get(key)
        return (0, 0) if e is None else (max(e.add, 0), len(e.delete))


def batch_sizes(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """The batch sizes ``slow_start_batch`` uses for ``count`` calls when none fails."""
    sizes: list[int] = []
    batch, done = min(count, max(initial, 1)), 0
    while batch > 0:
        sizes.append(batch)
        done += batch
        batch = min(2 * batch, count - done)
    return sizes


def next_initial_batch(count: int, initial: int, done: int, cap: int) -> int:
    """The first batch size of the next creation round of a set.

    After a round in which every creation succeeded, the next round resumes at the largest batch
    this one reached (at most ``cap``) instead of at 1: growing 1, 2, 4, ... again on every sync
    costs ~9 sequential round trips per 500 pods, which dominated scaling out a big set. Any
    failure starts over at ``SLOW_START_INITIAL_BATCH``, so a set whose creations start failing
    (quota, admission) still backs off to single requests.
    """
    if count <= 0:
        return initial
    if done < count:
        return SLOW_START_INITIAL_BATCH
    return max(SLOW_START_INITIAL_BATCH, min(max(batch_sizes(count, initial)), cap))


async def slow_start_batch(count: int, fn: Callable[[], Awaitable[None]], *,
                           initial: int = SLOW_START_INITIAL_BATCH,
                           max_in_flight: int = MAX_IN_FLIGHT) -> tuple[int, Exception | None]:
    """Call ``fn`` ``count`` times in batches of 1, 2, 4, ...; stop after a batch with an error.

    Returns (successes, first error). Within a batch at most ``max_in_flight`` calls run at once.
    """
    done = 0
    batch = min(count, initial)
    sem = asyncio.Semaphore(max_in_flight)

    async def one() -> Exception | None:
        async with sem:
            try:
                await fn()
            except Exception as e:  # noqa: BLE001 - reported to the caller; the batch stops
                return e
            return None

    while batch > 0:
        results = await asyncio.gather(*(one() for _ in range(batch)))
        errors = [r for r in results if r is not None]
        done += batch - len(errors)
        if errors:
            return done, errors[0]
        batch = min(2 * batch, count - done)
    return done, None


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    created: int = 0
    deleted: int = 0
    adopted: int = 0
    released: int = 0
    status_writes: int = 0


class ReplicaSetController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None,
                 kind: ControlledKind = REPLICASET, workers: int = 5,
                 burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(kind.controller_name, client, workers=workers, factory=factory, clock=clock)
        self.ck = kind
        self.recorder = recorder
        self.burst_replicas = burst_replicas
        self.expectations = Expectations(self.clock)
        self._initial_batch: dict[str, int] = {}   # per set: where the next slow start begins
        self.stats = Stats()
        self.sets = self.informer(kind.resource)
        self.pods = self.informer(PODS, handle=False, indexers={
            BY_OWNER_UID: index_by_owner_uid, ORPHANS_BY_NAMESPACE: index_orphans_by_namespace})
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    # -- event handlers: map to keys, count expectations ------------------------------------------
    def _owner_key(self, pod: Mapping[str, Any]) -> str | None:
        ref = controller_ref(dict(pod))
        if ref is None or ref.get("kind") != self.ck.kind or not ref.get("name"):
            return None
        key = make_key(_md(pod).get("namespace"), str(ref["name"]))
        owner = self.sets.lister().get_by_key(key)
        if owner is None or _md(owner).get("uid") != ref.get("uid"):
            return None
        return key

    def _matching_sets(self, pod: Mapping[str, Any]) -> list[str]:
        labels = _md(pod).get("labels") or {}
        ns = _md(pod).get("namespace")
        return [key_of(s) for s in self.sets.lister().list(ns) if self.ck.selector(s).matches(labels)]

    def _pod_added(self, pod: Obj) -> None:
        if _md(pod).get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
            return
        if controller_ref(pod) is None:
            for k in self._matching_sets(pod):
                self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _md(old).get("resourceVersion") == _md(new).get("resourceVersion") and old is not new:
            return
        if _md(new).get("deletionTimestamp") and not _md(old).get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        for k in {old_key, new_key} - {None}:
            assert k is not None
            self.enqueue(k)
        if controller_ref(new) is None and (_md(old).get("labels") != _md(new).get("labels")
                                            or controller_ref(old) is not None):
            for k in self._matching_sets(new):
                self.enqueue(k)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = tombstone_object(obj)
        key = self._owner_key(pod)
        if key is None:
            return
        self.expectations.deletion_observed(key, key_of(pod))
        self.enqueue(key)

    # -- sync -------------------------------------------------------------------------------------
    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, typ, reason, message)

    async def sync(self, key: ObjectKey) -> None:
        owner = self.sets.lister().get_by_key(key)
        if owner is None:
            self.expectations.delete(key)
            self._initial_batch.pop(key, None)
            return
        deleting = bool(_md(owner).get("deletionTimestamp"))
        need_sync = self.expectations.satisfied(key)
        pods = await self._claim_pods(owner, deleting)
        active = [p for p in pods if is_pod_active(p)]
        error: ManageError | None = None
        failure: Exception | None = None
        if need_sync and not deleting:
            error, failure = await self._manage(owner, active, key)
        status, wake = compute_status(owner, active, error, self.clock.wall())
        if status != (owner.get("status") or {}):
            await self._write_status(owner, status)
        if failure is not None:
            raise failure
        if wake is not None:
            raise Requeue(after=wake)

    async def _claim_pods(self, owner: Obj, deleting: bool) -> list[Obj]:
        md = _md(owner)
        uid = str(md.get("uid") or "")
        ns = md.get("namespace")
        index = self.pods.indexer
        candidates = {key_of(p): p for p in index.by_index(BY_OWNER_UID, uid)}
        for p in index.by_index(ORPHANS_BY_NAMESPACE, str(ns)):
            candidates.setdefault(key_of(p), p)
        claim = classify_pods(uid, self.ck.selector(owner), candidates.values(), deleting)
        owned = list(claim.owned)
        if claim.adopt and await self._still_alive(owner):
            ref = owner_reference(owner, self.ck.kind, self.ck.api_version)
            for pod in claim.adopt:
                patch = {"metadata": {"ownerReferences": [ref], "uid": _md(pod).get("uid")}}
                try:
                    owned.append(await self.client.patch(PODS, _md(pod)["name"], patch, ns,
                                                         patch_type="strategic"))
                    self.stats.adopted += 1
                except NotFound:
                    continue
        for pod in claim.release:
            patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}],
                                  "uid": _md(pod).get("uid")}}
            try:
                await self.client.patch(PODS, _md(pod)["name"], patch, ns, patch_type="strategic")
                self.stats.released += 1
            except NotFound:
                continue
        return owned

    async def _still_alive(self, owner: Obj) -> bool:
        """Re-read the owner uncached before adopting (upstream ``RecheckDeletionTimestamp``)."""
        md = _md(owner)
        try:
            fresh = await self.client.get(self.ck.resource, md["name"], md.get("namespace"))
        except NotFound:
            return False
        fmd = _md(fresh)
        return fmd.get("uid") == md.get("uid") and not fmd.get("deletionTimestamp")

    async def _manage(self, owner: Obj, active: list[Obj], key: str) -> tuple[ManageError | None, Exception | None]:
        want = int((owner.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(active) - want
        if diff < 0:
            return await self._create(owner, min(-diff, self.burst_replicas), key)
        if diff > 0:
            return await self._delete(owner, pods_to_delete(active, min(diff, self.burst_replicas)), key)
        return None, None

    async def _create(self, owner: Obj, n: int, key: str) -> tuple[ManageError | None, Exception | None]:
        self.expectations.expect_creations(key, n)
        ns = _md(owner).get("namespace")

        async def create_one() -> None:
            pod = await self.client.create(PODS, pod_from_template(owner, self.ck), ns)
            self.stats.created += 1
            self._event(owner, NORMAL, "SuccessfulCreate", f"Created pod: {_md(pod).get('name')}")

        initial = self._initial_batch.get(key, SLOW_START_INITIAL_BATCH)
        done, err = await slow_start_batch(n, create_one, initial=initial)
        self._initial_batch[key] = next_initial_batch(n, initial, done, self.burst_replicas)
        if done < n:
            # failed or skipped creations will never be observed
            self.expectations.lower_creations(key, n - done)
        if err is None:
            return None, None
        self._event(owner, WARNING, "FailedCreate", f"Error creating: {err}")
        return ManageError("FailedCreate", str(err)), err

    async def _delete(self, owner: Obj, victims: list[Obj], key: str) -> tuple[ManageError | None, Exception | None]:
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])
        sem = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def delete_one(pod: Obj) -> Exception | None:
            async with sem:
                name = _md(pod)["name"]
                try:
                    await self.client.delete(PODS, name, _md(pod).get("namespace"),
                                             preconditions={"uid": _md(pod).get("uid")})
                except ApiError as e:
                    self.expectations.deletion_observed(key, key_of(pod))
                    if isinstance(e, NotFound):
                        return None
                    self._event(owner, WARNING, "FailedDelete", f"Error deleting: {e}")
                    return e
                self.stats.deleted += 1
                self._event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")
                return None

        results = await asyncio.gather(*(delete_one(p) for p in victims))
        err = next((r for r in results if r is not None), None)
        return (None, None) if err is None else (ManageError("FailedDelete", str(err)), err)

    async def _write_status(self, owner: Obj, status: Obj) -> None:
        """Merge-patch /status: status only depends on pods, so a concurrent spec change (e.g. the
        Deployment controller scaling this set) must not make it conflict."""
        md = _md(owner)
        try:
            await self.client.patch_status(self.ck.resource, md["name"],
                                           {"status": status_patch(owner.get("status") or {}, status)},
                                           md.get("namespace"))
            self.stats.status_writes += 1
        except NotFound:
            return


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj:
    """A JSON merge patch turning ``old`` into ``new`` at the top level (dropped keys -> null)."""
    patch: Obj = {k: None for k in old if k not in new}
    patch.update({k: v for k, v in new.items() if old.get(k) != v})
    return patch


def new(ctx: ControllerContext) -> ReplicaSetController:
    workers = int(ctx.options.get("concurrent_replicaset_syncs", 5))
    return ReplicaSetController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                workers=workers)


def new_replication_controller(ctx: ControllerContext) -> ReplicaSetController:
    workers = int(ctx.options.get("concurrent_rc_syncs", 5))
    return ReplicaSetController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                kind=REPLICATIONCONTROLLER, workers=workers)
