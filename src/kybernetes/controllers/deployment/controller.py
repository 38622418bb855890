"""The Deployment controller's I/O shell (upstream ``deployment_controller.go`` + the I/O of
``sync.go``/``rolling.go``/``recreate.go``).

``sync(key)``: claim ReplicaSets -> (deleted: status only) -> paused condition -> paused or scaling
event: proportional scale -> else one Recreate/RollingUpdate step -> status. Decisions come from the
pure modules (``rolling``, ``recreate``, ``sync``, ``progress``); here we only read listers, write
ReplicaSets (PUT with resourceVersion, so a stale cache just conflicts and retries), patch the
revision annotation and write status once per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...api.labels import selector_from_label_selector
from ...client import NORMAL, WARNING, Controller, EventRecorder, Requeue, controller_ref
from ...client.errors import AlreadyExists, ApiError, NotFound
from ...client.indexer import BY_OWNER_UID, index_by_owner_uid
from ...client.keys import DeletedFinalStateUnknown, ObjectKey, key_of, make_key, tombstone_object
from ...client.lister import copy_obj
from ...client.resources import DEPLOYMENTS, PODS, REPLICASETS
from ...util.clock import Clock
from ..replicaset import (
    ORPHANS_BY_NAMESPACE,
    classify_pods,
    index_orphans_by_namespace,
    owner_reference,
)
from . import progress
from .recreate import old_pods_running, scale_down_old_for_recreate, scale_up_new_for_recreate
from .rolling import plan_rolling
from .sync import is_scaling_event, new_replica_set, plan_cleanup, plan_scale
from .util import (
    FAILED_RS_CREATE,
    FOUND_NEW_RS,
    NEW_RS_CREATED,
    PROGRESSING,
    REVISION,
    Obj,
    active,
    annotations,
    deployment_complete,
    equal_ignore_hash,
    find_new_replica_set,
    find_old_replica_sets,
    get_condition,
    is_paused,
    is_rolling_update,
    max_revision,
    max_surge,
    md,
    min_ready_seconds,
    name,
    new_condition,
    progress_deadline,
    replicas_annotations_need_update,
    set_condition,
    set_new_rs_annotations,
    set_replicas_annotations,
    spec_replicas,
)

if TYPE_CHECKING:
    from ...client.informer import InformerFactory
    from ...client.rest import ApiClient

NAME = "deployment-controller"


class DeploymentController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 5) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.deployments = self.informer(DEPLOYMENTS)
        self.rss = self.informer(REPLICASETS, mapper=self._rs_keys, indexers={
            BY_OWNER_UID: index_by_owner_uid, ORPHANS_BY_NAMESPACE: index_orphans_by_namespace})
        self.pods = self.informer(PODS, handle=False, indexers={BY_OWNER_UID: index_by_owner_uid})
        self.pods.add_event_handler(on_delete=self._pod_deleted)
        self.rs_writes = 0
        self.status_writes = 0

    # -- event mapping ----------------------------------------------------------------------------
    def _rs_keys(self, rs: Obj) -> list[str]:
        ns = md(rs).get("namespace")
        ref = controller_ref(rs)
        if ref is not None:
            return [make_key(ns, ref["name"])] if ref.get("kind") == "Deployment" and ref.get("name") else []
        labels = md(rs).get("labels") or {}
        return [key_of(d) for d in self.deployments.lister().list(ns)
                if _has_selector(d) and selector_from_label_selector((d.get("spec") or {}).get("selector")).matches(labels)]

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """A Recreate rollout waits for old pods to disappear: wake its Deployment."""
        pod = tombstone_object(obj)
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.lister().get(ref["name"], md(pod).get("namespace"))
        if rs is None:
            return
        for key in self._rs_keys(rs):
            d = self.deployments.lister().get_by_key(key)
            if d is not None and not is_rolling_update(d):
                self.enqueue(key)

    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, typ, reason, message)

    # -- sync -------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        cached = self.deployments.lister().get_by_key(key)
        if cached is None:
            return
        d = copy_obj(cached)
        if not _has_selector(d):
            self._event(d, WARNING, "SelectingAll",
                        "This deployment is selecting all pods. A non-empty selector is required.")
            if int((d.get("status") or {}).get("observedGeneration") or 0) < int(md(d).get("generation") or 0):
                st = dict(d.get("status") or {})
                st["observedGeneration"] = int(md(d).get("generation") or 0)
                await self._write_status(d, st)
            return
        rss = await self._claim_replica_sets(d)
        if md(d).get("deletionTimestamp"):
            await self._sync_scale(d, rss, scale=False)
            return
        paused_status = progress.paused_condition_status(d, self.clock.wall())
        if paused_status is not None:
            d = await self._write_status(d, paused_status)
        new_rs = find_new_replica_set(d, rss)
        old_rss = find_old_replica_sets(d, rss)
        if is_paused(d) or is_scaling_event(d, new_rs, old_rss):
            await self._sync_scale(d, rss)
            return
        if is_rolling_update(d):
            await self._rollout_rolling(d, rss)
        else:
            await self._rollout_recreate(d, rss)

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        uid = str(md(d).get("uid") or "")
        ns = md(d).get("namespace")
        candidates = {key_of(rs): rs for rs in self.rss.indexer.by_index(BY_OWNER_UID, uid)}
        for rs in self.rss.indexer.by_index(ORPHANS_BY_NAMESPACE, str(ns)):
            candidates.setdefault(key_of(rs), rs)
        selector = selector_from_label_selector((d.get("spec") or {}).get("selector"))
        claim = classify_pods(uid, selector, candidates.values(), bool(md(d).get("deletionTimestamp")))
        owned = list(claim.owned)
        if claim.adopt and await self._still_alive(d):
            ref = owner_reference(d, "Deployment", "apps/v1")
            for rs in claim.adopt:
                patch = {"metadata": {"ownerReferences": [ref], "uid": md(rs).get("uid")}}
                try:
                    owned.append(await self.client.patch(REPLICASETS, name(rs), patch, ns, patch_type="strategic"))
                except NotFound:
                    continue
        for rs in claim.release:
            patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}], "uid": md(rs).get("uid")}}
            try:
                await self.client.patch(REPLICASETS, name(rs), patch, ns, patch_type="strategic")
            except NotFound:
                continue
        return owned

    async def _still_alive(self, d: Obj) -> bool:
        try:
            fresh = await self.client.get(DEPLOYMENTS, name(d), md(d).get("namespace"))
        except NotFound:
            return False
        return md(fresh).get("uid") == md(d).get("uid") and not md(fresh).get("deletionTimestamp")

    # -- new / old ReplicaSets --------------------------------------------------------------------
    async def _get_all(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj, Obj | None, list[Obj]]:
        """(deployment, new RS or None, old RSs), syncing revision annotations; creates the new RS
        when ``create`` (upstream ``getAllReplicaSetsAndSyncRevision``)."""
        old_rss = find_old_replica_sets(d, rss)
        existing = find_new_replica_set(d, rss)
        new_revision = max_revision(old_rss) + 1
        now = self.clock.wall()
        if existing is not None:
            rs_copy = copy_obj(existing)
            changed = set_new_rs_annotations(d, rs_copy, new_revision, exists=True)
            if changed or min_ready_seconds(rs_copy) != min_ready_seconds(d):
                rs_copy["spec"]["minReadySeconds"] = min_ready_seconds(d)
                existing = await self._update_rs(rs_copy)
            d = await self._set_revision(d, annotations(existing).get(REVISION, ""))
            if progress_deadline(d) is not None and get_condition(d.get("status"), PROGRESSING) is None:
                st = copy_obj(d.get("status") or {})
                set_condition(st, new_condition(PROGRESSING, "True", FOUND_NEW_RS,
                                                f'Found new replica set "{name(existing)}"', now))
                d = await self._write_status(d, st)
            return d, existing, old_rss
        if not create:
            return d, None, old_rss
        rs = new_replica_set(d, old_rss, new_revision)
        created: Obj | None = None
        try:
            created = await self.client.create(REPLICASETS, rs)
        except AlreadyExists:
            current = await self.client.get(REPLICASETS, name(rs), md(d).get("namespace"))
            ref = controller_ref(current)
            if (ref is None or ref.get("uid") != md(d).get("uid")
                    or not equal_ignore_hash((current.get("spec") or {}).get("template"),
                                             (d.get("spec") or {}).get("template"))):
                st = copy_obj(d.get("status") or {})
                st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
                await self._write_status(d, st)
                raise
            return d, current, old_rss
        except ApiError as e:
            if progress_deadline(d) is not None:
                st = copy_obj(d.get("status") or {})
                set_condition(st, new_condition(PROGRESSING, "False", FAILED_RS_CREATE,
                                                f'Failed to create new replica set "{name(rs)}": {e}', now))
                await self._write_status(d, st)
            raise
        if spec_replicas(created) > 0:
            self._event(d, NORMAL, "ScalingReplicaSet",
                        f"Scaled up replica set {name(created)} from 0 to {spec_replicas(created)}")
        d = await self._set_revision(d, str(new_revision))
        if progress_deadline(d) is not None:
            st = copy_obj(d.get("status") or {})
            set_condition(st, new_condition(PROGRESSING, "True", NEW_RS_CREATED,
                                            f'Created new replica set "{name(created)}"', now))
            d = await self._write_status(d, st)
        return d, created, old_rss

    # -- strategies -------------------------------------------------------------------------------
    async def _sync_scale(self, d: Obj, rss: list[Obj], scale: bool = True) -> None:
        """Paused, scaling event or being deleted: resize (proportionally), then plain status."""
        d, new_rs, old_rss = await self._get_all(d, rss, create=False)
        if scale:
            sizes = plan_scale(d, new_rs, old_rss)
            new_rs, old_rss = await self._apply(d, new_rs, old_rss, sizes, refresh_annotations=True)
            if is_paused(d):
                await self._cleanup(d, old_rss)
        status = progress.calculate_status(d, [*old_rss, new_rs], new_rs, self.clock.wall())
        if status != (d.get("status") or {}):
            await self._write_status(d, status)

    async def _rollout_rolling(self, d: Obj, rss: list[Obj]) -> None:
        d, new_rs, old_rss = await self._get_all(d, rss, create=True)
        assert new_rs is not None
        scales = plan_rolling(d, new_rs, old_rss)
        if scales:
            new_rs, old_rss = await self._apply(d, new_rs, old_rss, scales)
        elif deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, new_rs, old_rss)

    async def _rollout_recreate(self, d: Obj, rss: list[Obj]) -> None:
        d, new_rs, old_rss = await self._get_all(d, rss, create=False)
        down = scale_down_old_for_recreate(active(old_rss))
        if down:
            new_rs, old_rss = await self._apply(d, new_rs, old_rss, down)
            await self._sync_rollout_status(d, new_rs, old_rss)
            return
        if old_pods_running(new_rs, old_rss, self._pods_by_rs(old_rss)):
            await self._sync_rollout_status(d, new_rs, old_rss)
            return
        if new_rs is None:
            d, new_rs, old_rss = await self._get_all(d, rss, create=True)
            assert new_rs is not None
        up = scale_up_new_for_recreate(d, new_rs)
        if up:
            new_rs, old_rss = await self._apply(d, new_rs, old_rss, up)
        elif deployment_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, new_rs, old_rss)

    def _pods_by_rs(self, rss: Sequence[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for rs in rss:
            uid = str(md(rs).get("uid") or "")
            out[uid] = [p for p in self.pods.indexer.by_index(BY_OWNER_UID, uid)
                        if (controller_ref(p) or {}).get("uid") == uid]
        return out

    async def _sync_rollout_status(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        now = self.clock.wall()
        status = progress.rollout_status(d, [*old_rss, new_rs], new_rs, now)
        if status != (d.get("status") or {}):
            await self._write_status(d, status)
            return
        after = progress.requeue_after(d, status, now)
        if after is not None:
            raise Requeue(after=after)

    # -- writes -----------------------------------------------------------------------------------
    async def _apply(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj], sizes: Mapping[str, int],
                     refresh_annotations: bool = False) -> tuple[Obj | None, list[Obj]]:
        """Resize ReplicaSets (and set their desired/max-replicas annotations); returns the updated
        (new RS, old RSs)."""
        want, surge = spec_replicas(d), spec_replicas(d) + max_surge(d)

        async def one(rs: Obj | None) -> Obj | None:
            if rs is None or name(rs) not in sizes:
                return rs
            size = sizes[name(rs)]
            resize = size != spec_replicas(rs)
            if not resize and not (refresh_annotations and replicas_annotations_need_update(rs, want, surge)):
                return rs
            body = copy_obj(rs)
            body["spec"]["replicas"] = size
            set_replicas_annotations(body, want, surge)
            updated = await self._update_rs(body)
            if resize:
                direction = "up" if size > spec_replicas(rs) else "down"
                self._event(d, NORMAL, "ScalingReplicaSet",
                            f"Scaled {direction} replica set {name(rs)} from {spec_replicas(rs)} to {size}")
            return updated

        new_out = await one(new_rs)
        old_out = [await one(rs) for rs in old_rss]
        return new_out, [rs for rs in old_out if rs is not None]

    async def _update_rs(self, rs: Obj) -> Obj:
        self.rs_writes += 1
        result: Obj = await self.client.update(REPLICASETS, rs)
        return result

    async def _cleanup(self, d: Obj, old_rss: Sequence[Obj]) -> None:
        for rs in plan_cleanup(d, old_rss):
            try:
                await self.client.delete(REPLICASETS, name(rs), md(rs).get("namespace"),
                                         preconditions={"uid": md(rs).get("uid")})
            except NotFound:
                continue

    async def _set_revision(self, d: Obj, revision: str) -> Obj:
        if not revision or annotations(d).get(REVISION) == revision:
            return d
        patch = {"metadata": {"annotations": {REVISION: revision}}}
        result: Obj = await self.client.patch(DEPLOYMENTS, name(d), patch, md(d).get("namespace"))
        return result

    async def _write_status(self, d: Obj, status: Obj) -> Obj:
        body = {k: v for k, v in d.items() if k != "status"}
        body["status"] = status
        self.status_writes += 1
        result: Obj = await self.client.update_status(DEPLOYMENTS, body)
        return result


def _has_selector(d: Mapping[str, Any]) -> bool:
    sel = (d.get("spec") or {}).get("selector") or {}
    return bool(sel.get("matchLabels") or sel.get("matchExpressions"))
