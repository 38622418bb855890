"""The root-CA publisher: a ConfigMap ``kube-root-ca.crt`` holding the cluster CA in every namespace.

Keys are namespace names. Namespace events and events of the ``kube-root-ca.crt`` ConfigMaps (the
informer watches only that name) enqueue the namespace; ``sync`` creates the ConfigMap when it is
missing and rewrites it when its data or description annotation drifted (a manual edit is undone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..client import AlreadyExists, Controller, Forbidden, NotFound, ObjectKey
from ..client.lister import copy_obj
from ..client.resources import CONFIGMAPS, NAMESPACES

if TYPE_CHECKING:
    from .manager import ControllerContext

NAME = "root-ca-cert-publisher"
ALIASES = ("root-ca-cert-publisher",)
CONFIGMAP_NAME = "kube-root-ca.crt"
DATA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)

Obj = dict[str, Any]


def desired_configmap(namespace: str, ca: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "namespace": namespace,
            "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
        },
        "data": {DATA_KEY: ca},
    }


def repaired(cm: Obj, ca: str) -> Obj | None:
    """A copy of ``cm`` with the CA data and annotation restored, or None when it is correct."""
    annotations = (cm.get("metadata") or {}).get("annotations") or {}
    if cm.get("data") == {DATA_KEY: ca} and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION:
        return None
    new = copy_obj(cm)
    new["data"] = {DATA_KEY: ca}
    new.pop("binaryData", None)
    new.setdefault("metadata", {}).setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = (
        DESCRIPTION
    )
    return new


def is_active(ns: Obj | None) -> bool:
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (ns.get("status") or {}).get("phase", "Active") == "Active"


class RootCACertPublisher(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(
            NAME,
            ctx.client,
            workers=int(ctx.options.get("rootca_workers", 2)),
            factory=ctx.factory,
            clock=ctx.clock,
        )
        self.ca = ctx.cluster_ca.decode()
        self.namespaces = self.informer(NAMESPACES)
        self.configmaps = self.informer(
            CONFIGMAPS,
            field_selector=f"metadata.name={CONFIGMAP_NAME}",
            mapper=lambda cm: [str((cm.get("metadata") or {}).get("namespace") or "")],
        )

    async def sync(self, key: ObjectKey) -> None:
        if not is_active(self.namespaces.lister().get_by_key(key)):
            return
        cm = self.configmaps.lister().get(CONFIGMAP_NAME, key)
        try:
            if cm is None:
                await self.client.create(CONFIGMAPS, desired_configmap(key, self.ca), key)
                return
            fixed = repaired(cm, self.ca)
            if fixed is not None:
                await self.client.update(CONFIGMAPS, fixed, key)
        except AlreadyExists:  # the cache was behind; its event will bring us back
            pass
        except (NotFound, Forbidden):  # namespace gone or terminating
            pass


def new(ctx: ControllerContext) -> RootCACertPublisher:
    return RootCACertPublisher(ctx)
