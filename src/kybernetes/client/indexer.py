"""The informer's local cache: objects by key plus secondary indexes (client-go ``cache.Indexer``).

    idx = Indexer({BY_NODE_NAME: index_by_node_name})   # the namespace index is always there
    idx.upsert(pod); idx.by_index(BY_NODE_NAME, "node-1"); idx.get("default/web-1")

An index function maps an object to zero or more index values. Objects stored here are shared and
read-only: never mutate one; copy it (``lister.copy_obj``) before changing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .keys import ObjectKey, key_of

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]
ObjList = list[Obj]
KeyList = list[ObjectKey]
StrList = list[str]

NAMESPACE_INDEX = "namespace"
BY_NODE_NAME = "spec.nodeName"
BY_OWNER_UID = "ownerUID"


def index_by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_node_name(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def index_by_owner_uid(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if r.get("uid")]


def index_by_label(label: str) -> IndexFunc:
    """An index function on one label's value."""

    def fn(obj: Obj) -> list[str]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return [value] if value is not None else []

    return fn


def index_by_field(*path: str) -> IndexFunc:
    """An index function on a scalar field, e.g. ``index_by_field("spec", "nodeName")``."""

    def fn(obj: Obj) -> list[str]:
        cur: Any = obj
        for p in path:
            if not isinstance(cur, Mapping):
                return []
            cur = cur.get(p)
        return [str(cur)] if cur not in (None, "") else []

    return fn


class Indexer:
    """Objects by key with named secondary indexes, updated incrementally."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None,
                 key_func: Callable[[Obj], ObjectKey] = key_of) -> None:
        self._key = key_func
        self._items: dict[ObjectKey, Obj] = {}
        self._funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: index_by_namespace}
        self._indices: dict[str, dict[str, set[ObjectKey]]] = {NAMESPACE_INDEX: {}}
        self.add_indexers(indexers or {})

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add index functions (existing objects are indexed at once). Re-adding a name is an error."""
        for name, fn in indexers.items():
            if name in self._funcs:
                if self._funcs[name] is fn:
                    continue
                raise ValueError(f"indexer {name!r} already exists")
            self._funcs[name] = fn
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, key, obj)

    def _index_one(self, name: str, key: ObjectKey, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._funcs[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex_one(self, name: str, key: ObjectKey, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._funcs[name](obj):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]

    def upsert(self, obj: Obj) -> Obj | None:
        """Add or replace an object; return the previous one (or None)."""
        key = self._key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        for name in self._funcs:
            if old is not None:
                self._unindex_one(name, key, old)
            self._index_one(name, key, obj)
        return old

    def delete_key(self, key: ObjectKey) -> Obj | None:
        """Remove by key; return the removed object (or None)."""
        old = self._items.pop(key, None)
        if old is not None:
            for name in self._funcs:
                self._unindex_one(name, key, old)
        return old

    def delete(self, obj: Obj) -> Obj | None:
        return self.delete_key(self._key(obj))

    def replace(self, objs: Iterable[Obj]) -> None:
        """Swap the whole content (indexes rebuilt)."""
        self._items = {}
        self._indices = {name: {} for name in self._funcs}
        for obj in objs:
            self.upsert(obj)

    def get(self, key: str) -> Obj | None:
        return self._items.get(ObjectKey(key))

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[ObjectKey]:
        return list(self._items)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def index_names(self) -> StrList:
        return list(self._funcs)

    def index_keys(self, index: str, value: str) -> KeyList:
        if index not in self._indices:
            raise KeyError(f"no index named {index!r}")
        return sorted(self._indices[index].get(value, ()))

    def by_index(self, index: str, value: str) -> ObjList:
        return [self._items[k] for k in self.index_keys(index, value)]

    def index_values(self, index: str) -> StrList:
        return sorted(self._indices[index])
