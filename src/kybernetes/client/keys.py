"""Object keys: ``"namespace/name"`` for namespaced objects, ``"name"`` for cluster-scoped ones.

Keys are built only here (``key_of``, ``make_key``) and taken apart only here (``split_key``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NewType

ObjectKey = NewType("ObjectKey", str)
Obj = dict[str, Any]


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """A delete the informer inferred from a relist: the watch missed the real DELETED event.

    ``obj`` is the last state the cache held, which may be stale. Delete handlers receive either an
    object dict or one of these; ``tombstone_object`` unwraps both.
    """

    key: ObjectKey
    obj: Obj


def make_key(namespace: str | None, name: str) -> ObjectKey:
    return ObjectKey(f"{namespace}/{name}" if namespace else name)


def key_of(obj: Mapping[str, Any] | DeletedFinalStateUnknown) -> ObjectKey:
    """The key of an object dict (or of a tombstone)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    md = obj.get("metadata") or {}
    name = md.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    return make_key(md.get("namespace") or None, str(name))


def split_key(key: str) -> tuple[str | None, str]:
    """``"ns/name"`` -> ``("ns", "name")``; ``"name"`` -> ``(None, "name")``."""
    parts = key.split("/")
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise ValueError(f"unexpected key format: {key!r}")


def tombstone_object(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object inside a delete notification (unwraps ``DeletedFinalStateUnknown``)."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
