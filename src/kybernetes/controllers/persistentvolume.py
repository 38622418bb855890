"""The PersistentVolume binder (upstream ``pkg/controller/volume/persistentvolume``).

One work queue carries two kinds of keys: ``claim/<namespace>/<name>`` and ``volume/<name>``.

Claims (``sync_claim``), level-driven from the listers:

    unbound, no volumeName   find the best matching PV (``find_matching_volume``: pre-bound to
                             this claim first, else class, access modes (fewest first), capacity
                             (smallest fitting first), volumeMode, selector, node affinity) and
                             bind; none -> if the class has a provisioner, annotate the claim
                             ``volume.kubernetes.io/storage-provisioner`` (ExternalProvisioning
                             event) for it to act on; otherwise a FailedBinding event. Pending.
    WaitForFirstConsumer     nothing happens until the claim carries
                             ``volume.kubernetes.io/selected-node`` (event WaitForFirstConsumer);
                             then PVs are matched against that node, or provisioning starts.
    pre-bound (volumeName)   bind to that PV if it is free or pre-bound to this claim.
    bound                    keep PV and claim consistent; a vanished PV makes the claim Lost.

Binding writes, each only when needed: PV ``spec.claimRef`` (+ ``pv.kubernetes.io/bound-by-
controller`` when the controller chose it), PV ``status.phase`` Bound, claim ``spec.volumeName`` and
annotations ``pv.kubernetes.io/bind-completed`` / ``bound-by-controller``, claim status (Bound,
accessModes, capacity). A Conflict just requeues.

Volumes (``sync_volume``): no claimRef -> Available; claim gone (re-checked with a live GET) ->
Released, then the reclaim policy: ``Retain`` keeps it Released, ``Delete`` deletes the PV object
(once no pod still uses the claim), ``Recycle`` is not supported (event, stays Released).

Differences from upstream, by design:
* **selected-node**: upstream the scheduler's VolumeBinding plugin picks PVs for a pod's node and
  writes ``volume.kubernetes.io/selected-node``. Ours only checks claims (they exist, immediate ones
  are bound, bound volumes' node affinity matches the node), so this controller watches pods: once
  a pod using a WaitForFirstConsumer claim is bound to a node, the claim gets that annotation here
  and binding/provisioning proceeds. The node affinity of *unbound* matching PVs is therefore not
  taken into account when the first consumer is placed.
* **Delete reclaim**: there are no in-tree volume plugins; the PV *object* is deleted. Data on the
  node (a local-path directory) is left for the node side to remove.
* The default class is not guessed here: a claim without a class only matches PVs without a class
  (DefaultStorageClass admission in the API server sets the class on create, see
  ``api.storageclass``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..api.labels import label_selector_matches
from ..api.quantity import parse_quantity
from ..api.storageclass import (
    NO_PROVISIONER,
    claim_class,
    is_wait_for_first_consumer,
    volume_class,
)
from ..client import NORMAL, WARNING, Controller, EventRecorder
from ..client.errors import ApiError, Conflict, NotFound
from ..client.keys import ObjectKey, make_key
from ..client.lister import copy_obj
from ..client.resources import NODES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, STORAGECLASSES
from ..util.clock import Clock

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "persistentvolume-binder-controller"
ALIASES = ("persistentvolume-binder",)

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
HOSTNAME_LABEL = "kubernetes.io/hostname"

CLAIM_PREFIX = "claim/"
VOLUME_PREFIX = "volume/"
PODS_BY_CLAIM = "podsByClaim"

# phases
AVAILABLE, BOUND, RELEASED, FAILED, PENDING, LOST = "Available", "Bound", "Released", "Failed", "Pending", "Lost"


# ------------------------------------------------------------------------------------------------
# small accessors (pure)
# ------------------------------------------------------------------------------------------------
def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _ann(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _md(obj).get("annotations") or {}


def _phase(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def _quantity(value: Any) -> Fraction:
    try:
        return parse_quantity(value) if value is not None else Fraction(0)
    except ValueError:
        return Fraction(0)


def claim_request(pvc: Mapping[str, Any]) -> Fraction:
    return _quantity(((_spec(pvc).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_capacity(pv: Mapping[str, Any]) -> Fraction:
    return _quantity((_spec(pv).get("capacity") or {}).get("storage"))


def volume_mode(spec: Mapping[str, Any]) -> str:
    return str(spec.get("volumeMode") or "Filesystem")


def access_modes_ok(pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> bool:
    """Every access mode the claim asks for is offered by the volume."""
    return set(_spec(pvc).get("accessModes") or ()) <= set(_spec(pv).get("accessModes") or ())


def is_volume_bound_to_claim(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> bool:
    """The PV's claimRef names this claim (and, when it carries a uid, this very claim)."""
    ref = _spec(pv).get("claimRef")
    if not ref:
        return False
    if ref.get("name") != _md(pvc).get("name") or ref.get("namespace") != _md(pvc).get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == _md(pvc).get("uid")


def claim_reference(pvc: Mapping[str, Any]) -> Obj:
    md = _md(pvc)
    ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": md.get("namespace"),
           "name": md.get("name"), "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


def _requirement_matches(expr: Mapping[str, Any], value: str | None) -> bool:
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_matches(selector: Mapping[str, Any] | None, node_name: str,
                          node_labels: Mapping[str, str]) -> bool:
    """A NodeSelector (terms ORed, expressions ANDed; ``matchFields`` on ``metadata.name``)."""
    if not selector:
        return True
    terms = selector.get("nodeSelectorTerms") or []
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue  # an empty term matches nothing
        if all(_requirement_matches(e, node_labels.get(str(e.get("key")))) for e in exprs) and \
                all(_requirement_matches(f, node_name if f.get("key") == "metadata.name" else None)
                    for f in fields):
            return True
    return False


def volume_fits_node(pv: Mapping[str, Any], node_name: str, node_labels: Mapping[str, str]) -> bool:
    required = ((_spec(pv).get("nodeAffinity") or {}).get("required"))
    return node_selector_matches(required, node_name, node_labels)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


def find_matching_volume(pvc: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]], *,
                         node: NodeInfo | None = None, delay_binding: bool = False) -> Obj | None:
    """The PV to bind ``pvc`` to, or None (upstream ``FindMatchingVolume`` + access-mode index).

    A volume pre-bound to this claim wins outright (unless it does not fit ``node``). Otherwise
    only Available volumes of the claim's class, matching its selector, access modes (⊆),
    volumeMode and capacity (≥ request) qualify; ``delay_binding`` without ``node`` leaves them
    all alone (the first consumer decides). Among candidates the one offering the fewest access
    modes, then the smallest capacity, then the lowest name is chosen.
    """
    request = claim_request(pvc)
    klass = claim_class(pvc)
    selector = _spec(pvc).get("selector")
    best: tuple[int, Fraction, str] | None = None
    chosen: Mapping[str, Any] | None = None
    for pv in volumes:
        spec = _spec(pv)
        if spec.get("claimRef") and not is_volume_bound_to_claim(pv, pvc):
            continue
        capacity = volume_capacity(pv)
        if capacity < request or volume_mode(spec) != volume_mode(_spec(pvc)):
            continue
        if _md(pv).get("deletionTimestamp"):
            continue
        fits = node is None or volume_fits_node(pv, node.name, node.labels)
        if is_volume_bound_to_claim(pv, pvc):
            return dict(pv) if fits else None
        if delay_binding and node is None:
            continue
        if _phase(pv) != AVAILABLE or not fits or volume_class(pv) != klass:
            continue
        if selector is not None and not label_selector_matches(selector, _md(pv).get("labels") or {}):
            continue
        if not access_modes_ok(pvc, pv):
            continue
        rank = (len(set(spec.get("accessModes") or ())), capacity, str(_md(pv).get("name") or ""))
        if best is None or rank < best:
            best, chosen = rank, pv
    return dict(chosen) if chosen is not None else None


def claims_of_pod(pod: Mapping[str, Any]) -> list[str]:
    """Names of the PVCs a pod uses (``persistentVolumeClaim`` and generic ephemeral volumes)."""
    names: list[str] = []
    pod_name = str(_md(pod).get("name") or "")
    for vol in _spec(pod).get("volumes") or ():
        pvc = vol.get("persistentVolumeClaim")
        if pvc and pvc.get("claimName"):
            names.append(str(pvc["claimName"]))
        elif vol.get("ephemeral"):
            names.append(f"{pod_name}-{vol.get('name')}")
    return names


def index_pods_by_claim(pod: Obj) -> list[str]:
    ns = _md(pod).get("namespace")
    return [make_key(ns, c) for c in claims_of_pod(pod)]


def with_kind(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj`` with kind/apiVersion filled in (list items may lack them) for event references."""
    if obj.get("kind"):
        return obj
    kind = "PersistentVolume" if "namespace" not in _md(obj) else "PersistentVolumeClaim"
    return {**obj, "kind": kind, "apiVersion": "v1"}


def is_pod_terminal(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) in ("Succeeded", "Failed")


# ------------------------------------------------------------------------------------------------
# writes that bind (pure: the objects to send)
# ------------------------------------------------------------------------------------------------
def volume_bound_to(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> Obj | None:
    """``pv`` with claimRef set to ``pvc`` (and bound-by-controller when we chose it), or None."""
    new = copy_obj(dict(pv))
    dirty = False
    by_controller = not is_volume_bound_to_claim(pv, pvc)
    ref = _spec(pv).get("claimRef") or {}
    md = _md(pvc)
    if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (md.get("name"), md.get("namespace"), md.get("uid")):
        new.setdefault("spec", {})["claimRef"] = claim_reference(pvc)
        dirty = True
    ann = new.setdefault("metadata", {}).setdefault("annotations", {})
    if by_controller and ANN_BOUND_BY_CONTROLLER not in ann:
        ann[ANN_BOUND_BY_CONTROLLER] = "yes"
        dirty = True
    return new if dirty else None


def claim_bound_to(pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> Obj | None:
    """``pvc`` with volumeName and the bind annotations set, or None when it already has them."""
    new = copy_obj(dict(pvc))
    dirty = False
    name = _md(pv).get("name")
    ann = new.setdefault("metadata", {}).setdefault("annotations", {})
    if _spec(pvc).get("volumeName") != name:
        new.setdefault("spec", {})["volumeName"] = name
        if ANN_BOUND_BY_CONTROLLER not in ann:
            ann[ANN_BOUND_BY_CONTROLLER] = "yes"
        dirty = True
    if ANN_BIND_COMPLETED not in ann:
        ann[ANN_BIND_COMPLETED] = "yes"
        dirty = True
    return new if dirty else None


def bound_claim_status(pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> Obj | None:
    """The claim's status once bound to ``pv`` (None when unchanged)."""
    old = pvc.get("status") or {}
    new = {k: v for k, v in old.items() if k not in ("phase", "accessModes", "capacity")}
    new["phase"] = BOUND
    if _spec(pv).get("accessModes"):
        new["accessModes"] = list(_spec(pv)["accessModes"])
    if _spec(pv).get("capacity"):
        new["capacity"] = dict(_spec(pv)["capacity"])
    return None if new == old else new


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
@dataclass
class Stats:
    bound: int = 0
    released: int = 0
    deleted: int = 0
    selected_nodes: int = 0


class PersistentVolumeBinder(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 2) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.stats = Stats()
        self.claims = self.informer(PERSISTENTVOLUMECLAIMS, mapper=self._claim_keys)
        self.volumes = self.informer(PERSISTENTVOLUMES, mapper=self._volume_keys)
        self.classes = self.informer(STORAGECLASSES, mapper=self._class_keys)
        self.pods = self.informer(PODS, mapper=self._pod_keys, indexers={PODS_BY_CLAIM: index_pods_by_claim})
        self.nodes = self.informer(NODES, handle=False)

    # -- event mapping ------------------------------------------------------------------------------
    @staticmethod
    def _claim_keys(pvc: Obj) -> list[str]:
        keys = [CLAIM_PREFIX + make_key(_md(pvc).get("namespace"), str(_md(pvc).get("name")))]
        if _spec(pvc).get("volumeName"):
            keys.append(VOLUME_PREFIX + str(_spec(pvc)["volumeName"]))
        return keys

    def _volume_keys(self, pv: Obj) -> list[str]:
        keys = [VOLUME_PREFIX + str(_md(pv).get("name"))]
        ref = _spec(pv).get("claimRef") or {}
        if ref.get("name") and ref.get("namespace"):
            keys.append(CLAIM_PREFIX + make_key(ref["namespace"], ref["name"]))
        elif _phase(pv) == AVAILABLE:
            # a free volume may satisfy any claim still waiting (upstream relies on a resync)
            keys += [CLAIM_PREFIX + make_key(_md(c).get("namespace"), str(_md(c).get("name")))
                     for c in self.claims.lister().list() if not _spec(c).get("volumeName")]
        return keys

    def _class_keys(self, sc: Obj) -> list[str]:
        name = _md(sc).get("name")
        return [CLAIM_PREFIX + make_key(_md(c).get("namespace"), str(_md(c).get("name")))
                for c in self.claims.lister().list()
                if not _spec(c).get("volumeName") and claim_class(c) == name]

    def _pod_keys(self, pod: Obj) -> list[str]:
        claim_keys = index_pods_by_claim(pod)
        # a consumer bound to a node unblocks WaitForFirstConsumer claims
        keys = [CLAIM_PREFIX + k for k in claim_keys] if _spec(pod).get("nodeName") else []
        # a finished or deleted consumer may unblock the Delete reclaim of a released volume
        for k in claim_keys:
            if self.claims.lister().get_by_key(k) is None:
                keys += [VOLUME_PREFIX + str(_md(pv).get("name")) for pv in self.volumes.lister().list()
                         if _phase(pv) == RELEASED and self._claim_key_of_volume(pv) == k]
        return keys

    @staticmethod
    def _claim_key_of_volume(pv: Mapping[str, Any]) -> str | None:
        ref = _spec(pv).get("claimRef") or {}
        if not ref.get("name"):
            return None
        return make_key(ref.get("namespace"), str(ref["name"]))

    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(with_kind(obj), typ, reason, message)

    # -- sync ---------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        if key.startswith(CLAIM_PREFIX):
            await self.sync_claim(key[len(CLAIM_PREFIX):])
        elif key.startswith(VOLUME_PREFIX):
            await self.sync_volume(key[len(VOLUME_PREFIX):])

    def _storage_class(self, name: str) -> Obj | None:
        return self.classes.lister().get(name) if name else None

    def _node_info(self, name: str) -> NodeInfo:
        node = self.nodes.lister().get(name)
        labels = dict(_md(node).get("labels") or {}) if node is not None else {}
        labels.setdefault(HOSTNAME_LABEL, name)
        return NodeInfo(name, labels)

    async def sync_claim(self, key: str) -> None:
        pvc = self.claims.lister().get_by_key(key)
        if pvc is None or _md(pvc).get("deletionTimestamp"):
            return
        if ANN_BIND_COMPLETED not in _ann(pvc):
            await self._sync_unbound_claim(pvc)
        else:
            await self._sync_bound_claim(pvc)

    async def _sync_unbound_claim(self, pvc: Obj) -> None:
        volume_name = _spec(pvc).get("volumeName")
        if volume_name:
            await self._sync_prebound_claim(pvc, str(volume_name))
            return
        klass = self._storage_class(claim_class(pvc))
        delay = is_wait_for_first_consumer(klass)
        selected = _ann(pvc).get(ANN_SELECTED_NODE)
        if delay and not selected:
            consumer = self._scheduled_consumer(pvc)
            if consumer is None:
                self._event(pvc, NORMAL, "WaitForFirstConsumer",
                            "waiting for first consumer to be created before binding")
                await self._set_claim_phase(pvc, PENDING)
                return
            await self._select_node(pvc, str(_spec(consumer)["nodeName"]))
            return  # the update re-enqueues the claim
        node = self._node_info(str(selected)) if delay and selected else None
        pv = find_matching_volume(pvc, self.volumes.lister().list(), node=node, delay_binding=delay)
        if pv is not None:
            await self._bind(pv, pvc)
            return
        await self._no_volume(pvc, klass)

    def _scheduled_consumer(self, pvc: Obj) -> Obj | None:
        """A live pod that uses ``pvc`` and is already bound to a node."""
        key = make_key(_md(pvc).get("namespace"), str(_md(pvc).get("name")))
        pods = sorted(self.pods.indexer.by_index(PODS_BY_CLAIM, key), key=lambda p: str(_md(p).get("name")))
        for pod in pods:
            if _spec(pod).get("nodeName") and not is_pod_terminal(pod) and not _md(pod).get("deletionTimestamp"):
                return pod
        return None

    async def _select_node(self, pvc: Obj, node: str) -> None:
        md = _md(pvc)
        patch = {"metadata": {"annotations": {ANN_SELECTED_NODE: node}, "resourceVersion": md.get("resourceVersion")}}
        await self.client.patch(PERSISTENTVOLUMECLAIMS, str(md["name"]), patch, md.get("namespace"))
        self.stats.selected_nodes += 1

    async def _no_volume(self, pvc: Obj, klass: Obj | None) -> None:
        name = claim_class(pvc)
        provisioner = str((klass or {}).get("provisioner") or "")
        if klass is not None and provisioner and provisioner != NO_PROVISIONER:
            ann = _ann(pvc)
            if ann.get(ANN_STORAGE_PROVISIONER) != provisioner or ann.get(ANN_BETA_STORAGE_PROVISIONER) != provisioner:
                md = _md(pvc)
                patch = {"metadata": {"annotations": {ANN_STORAGE_PROVISIONER: provisioner,
                                                      ANN_BETA_STORAGE_PROVISIONER: provisioner}}}
                await self.client.patch(PERSISTENTVOLUMECLAIMS, str(md["name"]), patch, md.get("namespace"))
            self._event(pvc, NORMAL, "ExternalProvisioning",
                        f"Waiting for a volume to be created by the external provisioner '{provisioner}' "
                        "or manually by the system administrator.")
        elif name and klass is None:
            self._event(pvc, WARNING, "ProvisioningFailed", f'storageclass.storage.k8s.io "{name}" not found')
        elif not name:
            self._event(pvc, NORMAL, "FailedBinding",
                        "no persistent volumes available for this claim and no storage class is set")
        else:
            self._event(pvc, NORMAL, "FailedBinding",
                        f"no persistent volumes available for this claim in storage class \"{name}\"")
        await self._set_claim_phase(pvc, PENDING)

    async def _sync_prebound_claim(self, pvc: Obj, volume_name: str) -> None:
        pv = self.volumes.lister().get(volume_name)
        if pv is None:
            self._event(pvc, NORMAL, "FailedBinding", f'volume "{volume_name}" not found')
            await self._set_claim_phase(pvc, PENDING)
            return
        if not _spec(pv).get("claimRef") or is_volume_bound_to_claim(pv, pvc):
            await self._bind(pv, pvc)
            return
        self._event(pvc, WARNING, "FailedBinding", f'volume "{volume_name}" already bound to a different claim.')
        await self._set_claim_phase(pvc, PENDING)

    async def _sync_bound_claim(self, pvc: Obj) -> None:
        volume_name = _spec(pvc).get("volumeName")
        if not volume_name:
            if _phase(pvc) != LOST:
                self._event(pvc, WARNING, "ClaimLost",
                            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            await self._set_claim_phase(pvc, LOST)
            return
        pv = self.volumes.lister().get(str(volume_name))
        if pv is None:
            if _phase(pvc) != LOST:
                self._event(pvc, WARNING, "ClaimLost",
                            "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            await self._set_claim_phase(pvc, LOST)
            return
        if not _spec(pv).get("claimRef") or is_volume_bound_to_claim(pv, pvc):
            await self._bind(pv, pvc)
            return
        if _phase(pvc) != LOST:
            self._event(pvc, WARNING, "ClaimMisbound",
                        "Two claims are bound to the same volume, this one is bound incorrectly")
        await self._set_claim_phase(pvc, LOST)

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        """Both halves of a binding, each write only when needed (idempotent; Conflict requeues)."""
        new_pv = volume_bound_to(pv, pvc)
        if new_pv is not None:
            pv = await self.client.update(PERSISTENTVOLUMES, new_pv)
        if _phase(pv) != BOUND:
            pv = await self._set_volume_phase(pv, BOUND)
        new_pvc = claim_bound_to(pvc, pv)
        if new_pvc is not None:
            pvc = await self.client.update(PERSISTENTVOLUMECLAIMS, new_pvc)
        status = bound_claim_status(pvc, pv)
        if status is not None:
            md = _md(pvc)
            await self.client.update_status(PERSISTENTVOLUMECLAIMS, {**copy_obj(pvc), "status": status},
                                            md.get("namespace"))
            self.stats.bound += 1

    async def _set_claim_phase(self, pvc: Obj, phase: str) -> None:
        if _phase(pvc) == phase:
            return
        md = _md(pvc)
        await self.client.patch_status(PERSISTENTVOLUMECLAIMS, str(md["name"]), {"status": {"phase": phase}},
                                       md.get("namespace"))

    async def _set_volume_phase(self, pv: Obj, phase: str, message: str | None = None) -> Obj:
        status: Obj = {"phase": phase, "message": message, "reason": None}
        return await self.client.patch_status(PERSISTENTVOLUMES, str(_md(pv)["name"]), {"status": status})

    # -- volumes --------------------------------------------------------------------------------
    async def sync_volume(self, name: str) -> None:
        pv = self.volumes.lister().get(name)
        if pv is None or _md(pv).get("deletionTimestamp"):
            return
        ref = _spec(pv).get("claimRef")
        if not ref or not ref.get("uid"):
            # free, or pre-bound by the user to a claim (the claim side binds it)
            if _phase(pv) != AVAILABLE:
                await self._set_volume_phase(pv, AVAILABLE)
            return
        pvc = await self._claim_for(ref)
        if pvc is None:
            await self._release(pv)
            return
        volume_name = _spec(pvc).get("volumeName")
        if not volume_name:
            # the claim side finishes the binding
            self.enqueue(CLAIM_PREFIX + make_key(ref.get("namespace"), str(ref.get("name"))))
            return
        if volume_name == name:
            if _phase(pv) != BOUND:
                await self._set_volume_phase(pv, BOUND)
            return
        # the claim is bound to another volume
        if ANN_BOUND_BY_CONTROLLER in _ann(pv):
            await self._unbind(pv)
        elif _phase(pv) not in (RELEASED, FAILED):
            await self._release(pv)

    async def _claim_for(self, ref: Mapping[str, Any]) -> Obj | None:
        """The claim ``ref`` points at, or None if it is gone; a cache miss is re-checked live."""
        ns, claim_name, uid = ref.get("namespace"), str(ref.get("name")), ref.get("uid")
        pvc = self.claims.lister().get(claim_name, ns)
        if pvc is not None and _md(pvc).get("uid") == uid:
            return pvc
        try:
            live = await self.client.get(PERSISTENTVOLUMECLAIMS, claim_name, ns)
        except NotFound:
            return None
        return live if _md(live).get("uid") == uid else None

    async def _unbind(self, pv: Obj) -> None:
        new = copy_obj(pv)
        new["spec"].pop("claimRef", None)
        (new["metadata"].get("annotations") or {}).pop(ANN_BOUND_BY_CONTROLLER, None)
        pv = await self.client.update(PERSISTENTVOLUMES, new)
        await self._set_volume_phase(pv, AVAILABLE)

    async def _release(self, pv: Obj) -> None:
        if _phase(pv) not in (RELEASED, FAILED):
            pv = await self._set_volume_phase(pv, RELEASED)
            self.stats.released += 1
        if _phase(pv) == FAILED:
            return
        policy = _spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            await self._delete_volume(pv)
        elif policy == "Recycle":
            self._event(pv, WARNING, "VolumeFailedRecycle", "Recycle is not supported; use Delete or Retain")

    async def _delete_volume(self, pv: Obj) -> None:
        claim_key = self._claim_key_of_volume(pv)
        users = [p for p in self.pods.indexer.by_index(PODS_BY_CLAIM, claim_key or "")
                 if not is_pod_terminal(p)]
        if users:
            names = ", ".join(sorted(str(_md(p).get("name")) for p in users))
            self._event(pv, WARNING, "VolumeFailedDelete", f"Volume is used by pods: {names}")
            return  # a pod event re-enqueues this volume
        md = _md(pv)
        try:
            await self.client.delete(PERSISTENTVOLUMES, str(md["name"]), preconditions={"uid": str(md.get("uid"))})
        except (NotFound, Conflict):
            return
        except ApiError as e:
            self._event(pv, WARNING, "VolumeFailedDelete", str(e))
            raise
        self.stats.deleted += 1


def new(ctx: ControllerContext) -> PersistentVolumeBinder:
    workers = int(ctx.options.get("concurrent_pv_binder_syncs", 2))
    return PersistentVolumeBinder(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                  workers=workers)
