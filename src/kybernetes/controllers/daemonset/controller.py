"""The DaemonSet controller's I/O shell: load -> ``sync.reconcile`` -> apply.

``sync(key)``: claim pods (adopt/release by selector), build the revision history (one
ControllerRevision per distinct template, the current one renumbered to the newest), then, when
the expectations of earlier writes are met, apply the plan: pods are created (slow-start batches)
and deleted, failed pods under a per-node back-off (1 s doubling to 15 min). Old revisions no pod
uses are deleted beyond ``revisionHistoryLimit``; the status is written once through ``/status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...api.labels import Selector, selector_from_label_selector
from ...client import NORMAL, WARNING, Controller, EventRecorder, Requeue, controller_ref
from ...client.errors import ApiError, NotFound
from ...client.indexer import BY_OWNER_UID, index_by_owner_uid
from ...client.keys import DeletedFinalStateUnknown, ObjectKey, key_of, make_key, tombstone_object
from ...client.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from ...util.clock import Clock
from .. import history
from ..deployment.util import compute_hash
from ..replicaset import (
    ORPHANS_BY_NAMESPACE,
    Expectations,
    _Expectation,
    index_orphans_by_namespace,
    slow_start_batch,
    status_patch,
)
from .sync import Observed, Plan, reconcile
from .util import API_VERSION, KIND, name_of, new_pod

if TYPE_CHECKING:
    from ...client.informer import InformerFactory
    from ...client.rest import ApiClient

Obj = dict[str, Any]

NAME = "daemonset-controller"
BURST_REPLICAS = 250
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 900.0
MAX_IN_FLIGHT = 64


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def selector_of(ds: Mapping[str, Any]) -> Selector:
    sel = (ds.get("spec") or {}).get("selector")
    return selector_from_label_selector(sel) if sel else Selector(nothing=True)


class SetExpectations(Expectations):
    """Expectations with creations and deletions recorded together (upstream SetExpectations)."""

    def expect(self, key: str, adds: int, delete_keys: list[str]) -> None:
        self._exp[key] = _Expectation(adds, set(delete_keys), self.clock.monotonic())


@dataclass
class _Backoff:
    until: float
    delay: float


class DaemonSetController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 2,
                 burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.burst_replicas = burst_replicas
        self.expectations = SetExpectations(self.clock)
        self.failed_backoff: dict[str, _Backoff] = {}
        self.sets = self.informer(DAEMONSETS)
        self.nodes = self.informer(NODES, handle=False)
        self.nodes.add_event_handler(on_add=self._node_added, on_update=self._node_updated,
                                     on_delete=self._node_deleted)
        self.revisions = self.informer(CONTROLLERREVISIONS, handle=False,
                                       indexers={BY_OWNER_UID: index_by_owner_uid,
                                                 ORPHANS_BY_NAMESPACE: index_orphans_by_namespace})
        self.revisions.add_event_handler(on_add=self._revision_event, on_update=lambda o, n: self._revision_event(n),
                                         on_delete=self._revision_event)
        self.pods = self.informer(PODS, handle=False, indexers={
            BY_OWNER_UID: index_by_owner_uid, ORPHANS_BY_NAMESPACE: index_orphans_by_namespace})
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    # -- event handlers: map to keys ---------------------------------------------------------------
    def _owner_key(self, obj: Mapping[str, Any]) -> str | None:
        ref = controller_ref(dict(obj))
        if ref is None or ref.get("kind") != KIND or not ref.get("name"):
            return None
        key = make_key(_md(obj).get("namespace"), str(ref["name"]))
        owner = self.sets.lister().get_by_key(key)
        if owner is None or _md(owner).get("uid") != ref.get("uid"):
            return None
        return key

    def _matching_sets(self, obj: Mapping[str, Any]) -> list[str]:
        labels = _md(obj).get("labels") or {}
        return [key_of(s) for s in self.sets.lister().list(_md(obj).get("namespace"))
                if selector_of(s).matches(labels)]

    def _enqueue_all(self) -> None:
        for ds in self.sets.lister().list():
            self.enqueue(ds)

    def _node_added(self, node: Obj) -> None:
        self._enqueue_all()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if (_md(old).get("labels") != _md(new).get("labels")
                or (old.get("spec") or {}) != (new.get("spec") or {})):
            self._enqueue_all()

    def _node_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._enqueue_all()

    def _revision_event(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = self._owner_key(tombstone_object(obj))
        if key is not None:
            self.enqueue(key)

    def _pod_added(self, pod: Obj) -> None:
        if _md(pod).get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif controller_ref(pod) is None:
            for k in self._matching_sets(pod):
                self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _md(new).get("deletionTimestamp") and not _md(old).get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        for k in {self._owner_key(old), self._owner_key(new)} - {None}:
            assert k is not None
            self.enqueue(k)
        if controller_ref(new) is None and _md(old).get("labels") != _md(new).get("labels"):
            for k in self._matching_sets(new):
                self.enqueue(k)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = tombstone_object(obj)
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.enqueue(key)

    # -- sync ---------------------------------------------------------------------------------------
    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, typ, reason, message)

    async def _still_alive(self, ds: Obj) -> bool:
        try:
            fresh = await self.client.get(DAEMONSETS, _md(ds)["name"], _md(ds).get("namespace"))
        except NotFound:
            return False
        return _md(fresh).get("uid") == _md(ds).get("uid") and not _md(fresh).get("deletionTimestamp")

    async def _claim(self, ds: Obj, informer: Any, resource: Any) -> list[Obj]:
        uid = str(_md(ds).get("uid") or "")
        candidates = {key_of(o): o for o in informer.indexer.by_index(BY_OWNER_UID, uid)}
        for o in informer.indexer.by_index(ORPHANS_BY_NAMESPACE, str(_md(ds).get("namespace"))):
            candidates.setdefault(key_of(o), o)
        return await history.claim(self.client, resource, ds, KIND, API_VERSION, selector_of(ds),
                                   candidates.values(), lambda: self._still_alive(ds))

    async def sync(self, key: ObjectKey) -> None:
        ds = self.sets.lister().get_by_key(key)
        if ds is None:
            self.expectations.delete(key)
            return
        pods = await self._claim(ds, self.pods, PODS)
        revisions = await self._claim(ds, self.revisions, CONTROLLERREVISIONS)
        current, collision_count = await self._construct_history(ds, revisions)
        hash_ = str((_md(current).get("labels") or {}).get(history.DEFAULT_REVISION_LABEL) or "")
        satisfied = self.expectations.satisfied(key)
        obs = Observed(ds=ds, nodes=tuple(self.nodes.lister().list()), pods=tuple(pods), hash=hash_,
                       now=self.clock.wall(), backoff_nodes=self._backoff_nodes(key),
                       collision_count=collision_count)
        plan = reconcile(obs)
        failure: Exception | None = None
        if satisfied and (plan.create_on or plan.delete):
            failure = await self._apply(ds, key, plan, hash_, pods)
        if satisfied:
            await self._cleanup_history(ds, revisions, current, pods)
        if plan.status != (ds.get("status") or {}):
            await self._write_status(ds, plan.status)
        if failure is not None:
            raise failure
        delays = [d for d in (plan.requeue_after, self._backoff_delay(key, plan.waiting_backoff)) if d]
        if delays:
            raise Requeue(after=min(delays))

    # -- history ------------------------------------------------------------------------------------
    async def _construct_history(self, ds: Obj, revisions: list[Obj]) -> tuple[Obj, int | None]:
        """The current revision (created or renumbered as needed) and the collision count."""
        data = history.template_patch(ds)
        template = (ds.get("spec") or {}).get("template") or {}
        collision = (ds.get("status") or {}).get("collisionCount")
        matches = history.sort_revisions(r for r in revisions if history.same_data(r, data))
        top = max((history.revision_number(r) for r in revisions), default=0)
        if not matches:
            cc = int(collision or 0)
            hash_ = compute_hash(template, collision)
            rev = history.new_revision(ds, KIND, API_VERSION, data, top + 1, hash_,
                                       hash_label=history.DEFAULT_REVISION_LABEL,
                                       annotations=_md(ds).get("annotations"))
            created, cc2 = await history.create_revision(self.client, rev, cc,
                                                         lambda n: compute_hash(template, n))
            return created, (cc2 if cc2 else collision)
        current = matches[-1]
        for dup in matches[:-1]:
            await self._delete_revision(dup)
        if history.revision_number(current) < top:
            current = await self.client.patch(CONTROLLERREVISIONS, _md(current)["name"],
                                              {"revision": top + 1}, _md(current).get("namespace"))
        return current, collision

    async def _delete_revision(self, rev: Obj) -> None:
        try:
            await self.client.delete(CONTROLLERREVISIONS, _md(rev)["name"], _md(rev).get("namespace"))
        except NotFound:
            pass

    async def _cleanup_history(self, ds: Obj, revisions: list[Obj], current: Obj, pods: list[Obj]) -> None:
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        used = {(_md(p).get("labels") or {}).get(history.DEFAULT_REVISION_LABEL) for p in pods}
        live = {_md(current).get("name")} | {
            _md(r).get("name") for r in revisions
            if (_md(r).get("labels") or {}).get(history.DEFAULT_REVISION_LABEL) in used}
        for rev in history.revisions_to_delete(revisions, {str(n) for n in live if n}, limit):
            await self._delete_revision(rev)

    # -- failed-pod back-off ------------------------------------------------------------------------
    def _backoff_nodes(self, key: str) -> frozenset[str]:
        now = self.clock.monotonic()
        prefix = f"{key}/"
        return frozenset(k[len(prefix):] for k, b in self.failed_backoff.items()
                         if k.startswith(prefix) and b.until > now)

    def _backoff_delay(self, key: str, nodes: tuple[str, ...]) -> float | None:
        now = self.clock.monotonic()
        waits = [self.failed_backoff[f"{key}/{n}"].until - now for n in nodes if f"{key}/{n}" in self.failed_backoff]
        return max(min(waits), 0.001) if waits else None

    def _record_failure(self, key: str, node: str) -> None:
        k = f"{key}/{node}"
        now = self.clock.monotonic()
        for stale in [s for s, b in self.failed_backoff.items() if now - b.until > 2 * BACKOFF_MAX]:
            del self.failed_backoff[stale]      # a node quiet for long starts again at 1 s
        prev = self.failed_backoff.get(k)
        delay = BACKOFF_INITIAL if prev is None else min(prev.delay * 2, BACKOFF_MAX)
        self.failed_backoff[k] = _Backoff(now + delay, delay)

    # -- writes -------------------------------------------------------------------------------------
    async def _apply(self, ds: Obj, key: str, plan: Plan, hash_: str, pods: list[Obj]) -> Exception | None:
        by_name = {name_of(p): p for p in pods}
        creates = list(plan.create_on[: self.burst_replicas])
        deletes = [by_name[n] for n in plan.delete[: self.burst_replicas] if n in by_name]
        self.expectations.expect(key, len(creates), [key_of(p) for p in deletes])
        for pod_name, node in plan.failed:
            self._record_failure(key, node)
            self._event(ds, WARNING, "FailedDaemonPod",
                        f"Found failed daemon pod {_md(ds).get('namespace')}/{pod_name} on node {node}, "
                        "will try to kill it")
        err = await self._delete_pods(ds, key, deletes)
        create_err = await self._create_pods(ds, key, creates, hash_)
        return err or create_err

    async def _create_pods(self, ds: Obj, key: str, nodes: list[str], hash_: str) -> Exception | None:
        if not nodes:
            return None
        queue = list(nodes)
        ns = _md(ds).get("namespace")

        async def create_one() -> None:
            node = queue.pop(0)
            pod = await self.client.create(PODS, new_pod(ds, node, hash_), ns)
            self._event(ds, NORMAL, "SuccessfulCreate", f"Created pod: {_md(pod).get('name')}")

        done, err = await slow_start_batch(len(nodes), create_one)
        if done < len(nodes):
            self.expectations.lower_creations(key, len(nodes) - done)
        if err is not None:
            self._event(ds, WARNING, "FailedCreate", f"Error creating: {err}")
        return err

    async def _delete_pods(self, ds: Obj, key: str, victims: list[Obj]) -> Exception | None:
        sem = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def delete_one(pod: Obj) -> Exception | None:
            async with sem:
                try:
                    await self.client.delete(PODS, _md(pod)["name"], _md(pod).get("namespace"),
                                             preconditions={"uid": _md(pod).get("uid")})
                except ApiError as e:
                    self.expectations.deletion_observed(key, key_of(pod))
                    if isinstance(e, NotFound):
                        return None
                    self._event(ds, WARNING, "FailedDelete", f"Error deleting: {e}")
                    return e
                self._event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {_md(pod)['name']}")
                return None

        results = await asyncio.gather(*(delete_one(p) for p in victims))
        return next((r for r in results if r is not None), None)

    async def _write_status(self, ds: Obj, status: Obj) -> None:
        try:
            await self.client.patch_status(DAEMONSETS, _md(ds)["name"],
                                           {"status": status_patch(ds.get("status") or {}, status)},
                                           _md(ds).get("namespace"))
        except NotFound:
            return
