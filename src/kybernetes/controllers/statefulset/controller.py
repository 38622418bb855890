"""The StatefulSet controller's I/O shell: load -> ``sync.reconcile`` -> apply.

``sync(key)``: claim member pods and revisions (adopt/release by selector), find or create the
update revision (renumbering an old identical one), then, once earlier writes have been observed
(expectations), apply the plan: PVCs before each pod, pods created in order (OrderedReady: the
plan holds at most one) or in slow-start batches (Parallel), deletions, identity-label repairs.
Old revisions no pod uses are deleted beyond ``revisionHistoryLimit``; status goes through
``/status`` once.

PVC retention (``persistentVolumeClaimRetentionPolicy``): ``Retain`` keeps claims (default).
``whenDeleted: Delete`` makes each claim owned by the set and ``whenScaled: Delete`` makes the
claims of condemned pods owned by their pod, so the garbage collector removes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...api.labels import Selector, selector_from_label_selector
from ...client import NORMAL, WARNING, Controller, EventRecorder, Requeue, controller_ref
from ...client.errors import AlreadyExists, ApiError, NotFound
from ...client.indexer import BY_OWNER_UID, index_by_owner_uid
from ...client.keys import DeletedFinalStateUnknown, ObjectKey, key_of, make_key, tombstone_object
from ...client.resources import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from ...util.clock import Clock
from .. import history
from ..daemonset.controller import SetExpectations
from ..replicaset import (
    ORPHANS_BY_NAMESPACE,
    index_orphans_by_namespace,
    slow_start_batch,
    status_patch,
)
from .sync import Observed, Plan, reconcile
from .util import (
    API_VERSION,
    KIND,
    claims_for,
    identity_patch,
    is_member_of,
    name_of,
    ordinal_of,
    replicas_of,
    retention,
    start_ordinal,
)

if TYPE_CHECKING:
    from ...client.informer import InformerFactory
    from ...client.rest import ApiClient

Obj = dict[str, Any]

NAME = "statefulset-controller"


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def selector_of(sts: Mapping[str, Any]) -> Selector:
    sel = (sts.get("spec") or {}).get("selector")
    return selector_from_label_selector(sel) if sel else Selector(nothing=True)


def _owner_ref(owner: Mapping[str, Any], kind: str, api_version: str, controller: bool) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": _md(owner).get("name"),
            "uid": _md(owner).get("uid"), "controller": controller, "blockOwnerDeletion": True}


class StatefulSetController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None,
                 workers: int = 5) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.expectations = SetExpectations(self.clock)
        self.sets = self.informer(STATEFULSETS)
        self.claims = self.informer(PERSISTENTVOLUMECLAIMS, handle=False)
        self.revisions = self.informer(CONTROLLERREVISIONS, handle=False,
                                       indexers={BY_OWNER_UID: index_by_owner_uid,
                                                 ORPHANS_BY_NAMESPACE: index_orphans_by_namespace})
        self.revisions.add_event_handler(on_add=self._revision_event,
                                         on_update=lambda o, n: self._revision_event(n),
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

    async def _still_alive(self, sts: Obj) -> bool:
        try:
            fresh = await self.client.get(STATEFULSETS, _md(sts)["name"], _md(sts).get("namespace"))
        except NotFound:
            return False
        return _md(fresh).get("uid") == _md(sts).get("uid") and not _md(fresh).get("deletionTimestamp")

    async def _claim(self, sts: Obj, informer: Any, resource: Any, members_only: bool) -> list[Obj]:
        uid = str(_md(sts).get("uid") or "")
        candidates = {key_of(o): o for o in informer.indexer.by_index(BY_OWNER_UID, uid)}
        for o in informer.indexer.by_index(ORPHANS_BY_NAMESPACE, str(_md(sts).get("namespace"))):
            candidates.setdefault(key_of(o), o)
        objs = [o for o in candidates.values() if not members_only or is_member_of(sts, o)]
        return await history.claim(self.client, resource, sts, KIND, API_VERSION, selector_of(sts),
                                   objs, lambda: self._still_alive(sts))

    async def sync(self, key: ObjectKey) -> None:
        sts = self.sets.lister().get_by_key(key)
        if sts is None:
            self.expectations.delete(key)
            return
        pods = await self._claim(sts, self.pods, PODS, True)
        revisions = await self._claim(sts, self.revisions, CONTROLLERREVISIONS, False)
        current, update, collision_count = await self._revisions(sts, revisions)
        obs = Observed(sts=sts, pods=tuple(pods), current_set=history.apply_revision(sts, current),
                       update_set=history.apply_revision(sts, update),
                       current_revision=name_of(current), update_revision=name_of(update),
                       now=self.clock.wall(), collision_count=collision_count)
        plan = reconcile(obs)
        failure: Exception | None = None
        if self.expectations.satisfied(key):
            failure = await self._apply(sts, key, plan, pods)
            await self._truncate_history(sts, revisions, pods, current, update)
        if plan.status != (sts.get("status") or {}):
            await self._write_status(sts, plan.status)
        if failure is not None:
            raise failure
        if plan.requeue_after:
            raise Requeue(after=plan.requeue_after)

    # -- revisions ----------------------------------------------------------------------------------
    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """(current revision, update revision, collision count) (upstream getStatefulSetRevisions)."""
        revs = history.sort_revisions(revisions)
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)   # never None: the hash
        data = history.template_patch(sts)                                       # must not change at 0
        candidate = history.new_revision(sts, KIND, API_VERSION, data, history.next_revision(revs),
                                         history.hash_data(data, collision))
        equal = history.find_equal_revisions(revs, candidate)
        if equal and revs and history.equal_revision(revs[-1], equal[-1]):
            update = equal[-1]
        elif equal:
            rev = equal[-1]
            update = await self.client.patch(CONTROLLERREVISIONS, name_of(rev),
                                             {"revision": candidate["revision"]}, _md(rev).get("namespace"))
        else:
            update, collision = await history.create_revision(self.client, candidate, collision,
                                                              lambda n: history.hash_data(data, n))
        wanted = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revs if name_of(r) == wanted), update)
        return current, update, collision

    async def _truncate_history(self, sts: Obj, revisions: list[Obj], pods: list[Obj], current: Obj,
                                update: Obj) -> None:
        live = {name_of(current), name_of(update)}
        live |= {str((_md(p).get("labels") or {}).get(history.DEFAULT_REVISION_LABEL) or "") for p in pods}
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        for rev in history.revisions_to_delete(revisions, live, limit):
            try:
                await self.client.delete(CONTROLLERREVISIONS, name_of(rev), _md(rev).get("namespace"))
            except NotFound:
                pass

    # -- writes -------------------------------------------------------------------------------------
    async def _apply(self, sts: Obj, key: str, plan: Plan, pods: list[Obj]) -> Exception | None:
        by_name = {name_of(p): p for p in pods}
        deletes = [by_name[n] for n in plan.delete if n in by_name]
        self.expectations.expect(key, len(plan.create), [key_of(p) for p in deletes])
        try:
            for ordinal in plan.ensure_claims:
                await self._ensure_claims(sts, ordinal, f"{name_of(sts)}-{ordinal}")
            await self._retain_claims(sts, pods)
            for name in plan.fix_identity:
                await self.client.patch(PODS, name, identity_patch(by_name[name]), _md(sts).get("namespace"))
        except ApiError as e:
            self.expectations.expect(key, 0, [])
            return e
        err = await self._delete_pods(sts, key, deletes)
        return err or await self._create_pods(sts, key, list(plan.create))

    async def _ensure_claims(self, sts: Obj, ordinal: int, pod_name: str) -> None:
        """Create the missing PVCs of replica ``ordinal`` (an existing claim is kept as it is)."""
        ns = _md(sts).get("namespace")
        when_deleted, _ = retention(sts)
        for claim in claims_for(sts, ordinal):
            cname = name_of(claim)
            if self.claims.lister().get(cname, ns) is not None:
                continue
            if when_deleted == "Delete":
                claim["metadata"]["ownerReferences"] = [_owner_ref(sts, KIND, API_VERSION, True)]
            try:
                await self.client.create(PERSISTENTVOLUMECLAIMS, claim, ns)
            except AlreadyExists:
                continue
            except ApiError as e:
                self._event(sts, WARNING, "FailedCreate",
                            f"create Claim {cname} for Pod {pod_name} in StatefulSet {name_of(sts)} failed error: {e}")
                raise
            self._event(sts, NORMAL, "SuccessfulCreate",
                        f"create Claim {cname} Pod {pod_name} in StatefulSet {name_of(sts)} success")

    async def _retain_claims(self, sts: Obj, pods: list[Obj]) -> None:
        """``whenScaled: Delete``: the claims of condemned pods become owned by their pod."""
        _, when_scaled = retention(sts)
        if when_scaled != "Delete":
            return
        ns = _md(sts).get("namespace")
        start, count = start_ordinal(sts), replicas_of(sts)
        for pod in pods:
            ordinal = ordinal_of(pod)
            if start <= ordinal < start + count:
                continue
            for claim in claims_for(sts, ordinal):
                stored = self.claims.lister().get(name_of(claim), ns)
                uid = _md(pod).get("uid")
                if stored is None or any(r.get("uid") == uid for r in _md(stored).get("ownerReferences") or ()):
                    continue
                refs = [*(_md(stored).get("ownerReferences") or ()), _owner_ref(pod, "Pod", "v1", False)]
                await self.client.patch(PERSISTENTVOLUMECLAIMS, name_of(claim), {"metadata": {"ownerReferences": refs}}, ns)

    async def _create_pods(self, sts: Obj, key: str, pods: list[Obj]) -> Exception | None:
        if not pods:
            return None
        queue = list(pods)

        async def create_one() -> None:
            pod = queue.pop(0)
            await self._ensure_claims(sts, ordinal_of(pod), name_of(pod))
            try:
                await self.client.create(PODS, pod, _md(sts).get("namespace"))
            except ApiError as e:
                if not isinstance(e, AlreadyExists):
                    self._event(sts, WARNING, "FailedCreate",
                                f"create Pod {name_of(pod)} in StatefulSet {name_of(sts)} failed error: {e}")
                raise
            self._event(sts, NORMAL, "SuccessfulCreate",
                        f"create Pod {name_of(pod)} in StatefulSet {name_of(sts)} successful")

        done, err = await slow_start_batch(len(pods), create_one)
        if done < len(pods):
            self.expectations.lower_creations(key, len(pods) - done)
        return err

    async def _delete_pods(self, sts: Obj, key: str, victims: list[Obj]) -> Exception | None:
        async def delete_one(pod: Obj) -> Exception | None:
            try:
                await self.client.delete(PODS, name_of(pod), _md(pod).get("namespace"),
                                         preconditions={"uid": _md(pod).get("uid")})
            except ApiError as e:
                self.expectations.deletion_observed(key, key_of(pod))
                if isinstance(e, NotFound):
                    return None
                self._event(sts, WARNING, "FailedDelete",
                            f"delete Pod {name_of(pod)} in StatefulSet {name_of(sts)} failed error: {e}")
                return e
            self._event(sts, NORMAL, "SuccessfulDelete",
                        f"delete Pod {name_of(pod)} in StatefulSet {name_of(sts)} successful")
            return None

        results = await asyncio.gather(*(delete_one(p) for p in victims))
        return next((r for r in results if r is not None), None)

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        try:
            await self.client.patch_status(STATEFULSETS, name_of(sts),
                                           {"status": status_patch(sts.get("status") or {}, status)},
                                           _md(sts).get("namespace"))
        except NotFound:
            return
