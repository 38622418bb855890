"""The local-path provisioner: hostPath PersistentVolumes on the node the first consumer runs on.

* At start it makes sure the StorageClass ``local-path`` exists (provisioner
  ``kybernetes.io/local-path``, WaitForFirstConsumer, reclaim Delete, marked default). It is created
  once if missing and never touched again, so user edits (or its deletion) stick.
* A claim is provisioned when its class uses this provisioner, the binder has handed it over
  (annotation ``volume.kubernetes.io/storage-provisioner`` = ours, set only when no existing PV
  matched) and a node was chosen (``volume.kubernetes.io/selected-node``). The PV
  ``pvc-<claim uid>`` is ``compute_volume(...)``: hostPath
  ``/var/lib/kybernetes/storage/pvc-<uid>_<namespace>_<name>`` (DirectoryOrCreate), required node
  affinity ``kubernetes.io/hostname In [<node>]``, capacity = the request, the claim's access modes
  and volumeMode, the class's reclaim policy, and a claimRef to the claim, so the binder binds the
  pair right away.
* Deletion (reclaim Delete) is the binder's: it deletes the PV object. The directory on the node is
  not removed from here (the controller manager may run on another host); the node side has to.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.storageclass import IS_DEFAULT_CLASS_ANNOTATION, WAIT_FOR_FIRST_CONSUMER, claim_class
from ..client import NORMAL, WARNING, Controller, EventRecorder
from ..client.errors import AlreadyExists, ApiError, NotFound
from ..client.keys import ObjectKey
from ..client.resources import NODES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, STORAGECLASSES
from ..util.backoff import Backoff
from ..util.clock import Clock
from .persistentvolume import (
    ANN_BIND_COMPLETED,
    ANN_DYNAMICALLY_PROVISIONED,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    HOSTNAME_LABEL,
    claim_reference,
    with_kind,
)

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NAME = "local-path-provisioner"
ALIASES = ("local-path",)

PROVISIONER = "kybernetes.io/local-path"
CLASS_NAME = "local-path"
BASE_PATH = "/var/lib/kybernetes/storage"


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def default_storage_class_object() -> Obj:
    """The ``local-path`` StorageClass created at start when missing."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": CLASS_NAME, "annotations": {IS_DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER}


def volume_name(pvc: Mapping[str, Any]) -> str:
    return f"pvc-{_md(pvc).get('uid')}"


def volume_path(pvc: Mapping[str, Any], base: str = BASE_PATH) -> str:
    md = _md(pvc)
    return f"{base}/pvc-{md.get('uid')}_{md.get('namespace')}_{md.get('name')}"


@dataclass(frozen=True)
class Decision:
    """What to do about one claim: provision (``volume`` set), complain (``warning``) or nothing."""

    volume: Obj | None = None
    warning: str | None = None


def compute_volume(pvc: Mapping[str, Any], sc: Mapping[str, Any], hostname: str, base: str = BASE_PATH) -> Obj:
    """The PV that provisions ``pvc`` on the node whose ``kubernetes.io/hostname`` is ``hostname``."""
    spec = _spec(pvc)
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    pv: Obj = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(pvc), "annotations": {ANN_DYNAMICALLY_PROVISIONED: PROVISIONER}},
        "spec": {
            "capacity": {"storage": request},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": _md(sc).get("name"),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": volume_path(pvc, base), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
            "claimRef": claim_reference(pvc),
        },
    }
    if sc.get("mountOptions"):
        pv["spec"]["mountOptions"] = list(sc["mountOptions"])
    return pv


def decide(pvc: Mapping[str, Any], sc: Mapping[str, Any] | None, volume_exists: bool,
           hostname_of: Mapping[str, str], base: str = BASE_PATH) -> Decision:
    """Pure: should ``pvc`` be provisioned now, and how? ``hostname_of`` maps node -> hostname label."""
    md = _md(pvc)
    ann = md.get("annotations") or {}
    if sc is None or sc.get("provisioner") != PROVISIONER or md.get("deletionTimestamp"):
        return Decision()
    if _spec(pvc).get("volumeName") or ANN_BIND_COMPLETED in ann or volume_exists:
        return Decision()
    if ann.get(ANN_STORAGE_PROVISIONER) != PROVISIONER:
        return Decision()  # the binder has not handed it over (a static PV may still match)
    node = ann.get(ANN_SELECTED_NODE)
    if not node:
        return Decision(warning="local-path volumes need a node: use volumeBindingMode WaitForFirstConsumer")
    if _spec(pvc).get("volumeMode") == "Block":
        return Decision(warning="local-path volumes do not support volumeMode Block")
    if _spec(pvc).get("dataSource") or _spec(pvc).get("dataSourceRef"):
        return Decision(warning="local-path volumes do not support data sources")
    hostname = hostname_of.get(str(node), str(node))
    return Decision(volume=compute_volume(pvc, sc, hostname, base))


class LocalPathProvisioner(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, clock: Clock | None = None, workers: int = 2,
                 base_path: str = BASE_PATH, ensure_class: bool = True) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.recorder = recorder
        self.base_path = base_path
        self.ensure_class = ensure_class
        self.provisioned = 0
        self.claims = self.informer(PERSISTENTVOLUMECLAIMS)
        self.classes = self.informer(STORAGECLASSES, mapper=self._class_keys)
        self.volumes = self.informer(PERSISTENTVOLUMES, handle=False)
        self.nodes = self.informer(NODES, handle=False)

    def _class_keys(self, sc: Obj) -> list[str]:
        name = _md(sc).get("name")
        return [f"{_md(c).get('namespace')}/{_md(c).get('name')}" for c in self.claims.lister().list()
                if not _spec(c).get("volumeName") and claim_class(c) == name]

    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(with_kind(obj), typ, reason, message)

    def _hostnames(self) -> dict[str, str]:
        return {str(_md(n).get("name")): str((_md(n).get("labels") or {}).get(HOSTNAME_LABEL) or _md(n).get("name"))
                for n in self.nodes.lister().list()}

    async def ensure_storage_class(self) -> bool:
        """Create the ``local-path`` class if it does not exist; True when this call created it."""
        try:
            await self.client.get(STORAGECLASSES, CLASS_NAME)
            return False
        except NotFound:
            pass
        try:
            await self.client.create(STORAGECLASSES, default_storage_class_object())
        except AlreadyExists:
            return False
        log.info("created StorageClass %s", CLASS_NAME)
        return True

    async def _ensure_with_retries(self) -> None:
        backoff = Backoff(initial=0.2, maximum=10.0)
        while True:
            try:
                await self.ensure_storage_class()
                return
            except ApiError as e:
                log.warning("cannot ensure StorageClass %s: %s", CLASS_NAME, e)
                await self.clock.sleep(backoff.next())

    async def run(self) -> None:
        if self.ensure_class:
            await self._ensure_with_retries()
        await super().run()

    async def sync(self, key: ObjectKey) -> None:
        pvc = self.claims.lister().get_by_key(key)
        if pvc is None:
            return
        sc = self.classes.lister().get(claim_class(pvc)) if claim_class(pvc) else None
        exists = self.volumes.lister().get(volume_name(pvc)) is not None
        decision = decide(pvc, sc, exists, self._hostnames(), self.base_path)
        if decision.warning is not None:
            self._event(pvc, WARNING, "ProvisioningFailed", decision.warning)
            return
        if decision.volume is None:
            return
        md = _md(pvc)
        self._event(pvc, NORMAL, "Provisioning",
                    f'External provisioner is provisioning volume for claim "{md.get("namespace")}/{md.get("name")}"')
        pv = decision.volume
        try:
            await self.client.create(PERSISTENTVOLUMES, pv)
        except AlreadyExists:
            return
        except ApiError as e:
            self._event(pvc, WARNING, "ProvisioningFailed", f"failed to provision volume: {e}")
            raise
        self.provisioned += 1
        self._event(pvc, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {pv['metadata']['name']}")


def new(ctx: ControllerContext) -> LocalPathProvisioner:
    return LocalPathProvisioner(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                base_path=str(ctx.options.get("local_path_base", BASE_PATH)))
