"""StorageClass helpers shared by the API server and the volume controllers (pure, no I/O).

    default_storage_class(pvc, classes)      -> "local-path" | None   (DefaultStorageClass admission)
    apply_default_storage_class(pvc, classes) -> True when it set spec.storageClassName (in place)
    claim_class(pvc) / volume_class(pv)       -> the class name ("" = no class)

Upstream the ``DefaultStorageClass`` admission plugin runs on PVC *create*: a claim that does not
name a class (no ``spec.storageClassName`` and no beta annotation) gets the default class; an
explicit ``storageClassName: ""`` means "no class" and is left alone. A class is the default when
its ``storageclass.kubernetes.io/is-default-class`` (or the beta) annotation is ``"true"``; with
several defaults the newest (``creationTimestamp``) wins, ties broken by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]

IS_DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"

WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
IMMEDIATE = "Immediate"
NO_PROVISIONER = "kubernetes.io/no-provisioner"


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def is_default_class(sc: Mapping[str, Any]) -> bool:
    ann = _annotations(sc)
    return ann.get(IS_DEFAULT_CLASS_ANNOTATION) == "true" or ann.get(BETA_IS_DEFAULT_CLASS_ANNOTATION) == "true"


def claim_has_class(pvc: Mapping[str, Any]) -> bool:
    """Did the user ask for a class (possibly ``""``, meaning none)?"""
    spec = pvc.get("spec") or {}
    return spec.get("storageClassName") is not None or BETA_STORAGE_CLASS_ANNOTATION in _annotations(pvc)


def claim_class(pvc: Mapping[str, Any]) -> str:
    """The claim's class: the beta annotation wins over ``spec.storageClassName``; ``""`` = none."""
    ann = _annotations(pvc)
    if BETA_STORAGE_CLASS_ANNOTATION in ann:
        return str(ann[BETA_STORAGE_CLASS_ANNOTATION] or "")
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def volume_class(pv: Mapping[str, Any]) -> str:
    ann = _annotations(pv)
    if BETA_STORAGE_CLASS_ANNOTATION in ann:
        return str(ann[BETA_STORAGE_CLASS_ANNOTATION] or "")
    return str((pv.get("spec") or {}).get("storageClassName") or "")


def is_wait_for_first_consumer(sc: Mapping[str, Any] | None) -> bool:
    return sc is not None and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER


def choose_default_class(classes: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The default class among ``classes``: newest marked default, then by name; None if none."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None

    def rank(c: Mapping[str, Any]) -> tuple[str, str]:
        md = c.get("metadata") or {}
        return (str(md.get("creationTimestamp") or ""), str(md.get("name") or ""))

    # newest first: the latest timestamp; on equal timestamps the smallest name
    newest = max(str((c.get("metadata") or {}).get("creationTimestamp") or "") for c in defaults)
    tied = [c for c in defaults if rank(c)[0] == newest]
    return min(tied, key=lambda c: rank(c)[1])


def default_storage_class(pvc: Mapping[str, Any], storage_classes: Iterable[Mapping[str, Any]]) -> str | None:
    """The class name DefaultStorageClass admission would set on ``pvc``, or None to leave it."""
    if claim_has_class(pvc):
        return None
    sc = choose_default_class(storage_classes)
    if sc is None:
        return None
    return str((sc.get("metadata") or {}).get("name") or "") or None


def apply_default_storage_class(pvc: Obj, storage_classes: Iterable[Mapping[str, Any]]) -> bool:
    """Admission mutation: set ``spec.storageClassName`` in place; True when it changed ``pvc``."""
    name = default_storage_class(pvc, storage_classes)
    if name is None:
        return False
    spec = pvc.setdefault("spec", {})
    if not isinstance(spec, dict):
        return False
    spec["storageClassName"] = name
    return True
