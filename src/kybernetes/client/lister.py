"""Read helpers over an informer's cache (client-go listers).

    pods = informer.lister()
    pods.get("web-1", "default")                  # Obj | None
    pods.list("default", "app=web")              # by namespace and label selector
    pods.by_index(BY_NODE_NAME, "node-1")

Everything returned is the cached object itself: read-only. ``copy_obj`` before changing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..api.labels import Selector, parse_selector, selector_from_set
from .indexer import NAMESPACE_INDEX, Indexer
from .keys import make_key

Obj = dict[str, Any]
ObjList = list[Obj]
SelectorLike = Selector | str | Mapping[str, str] | None


def copy_obj(obj: Obj) -> Obj:
    """A deep copy of a JSON object (fast JSON round trip)."""
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def to_selector(selector: SelectorLike) -> Selector | None:
    """Selector text (``"app=web,tier!=db"``), a label map (exact match) or a ``Selector``."""
    if selector is None:
        return None
    if isinstance(selector, Selector):
        return selector
    if isinstance(selector, str):
        return parse_selector(selector)
    return selector_from_set(selector)


class Lister:
    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.indexer.get(make_key(namespace, name))

    def get_by_key(self, key: str) -> Obj | None:
        return self.indexer.get(key)

    def list(self, namespace: str | None = None, selector: SelectorLike = None) -> list[Obj]:
        """Objects in ``namespace`` (None: all) whose labels match ``selector`` (None: all)."""
        objs = self.indexer.by_index(NAMESPACE_INDEX, namespace) if namespace else self.indexer.list()
        sel = to_selector(selector)
        if sel is None or sel.empty:
            return objs
        return [o for o in objs if sel.matches((o.get("metadata") or {}).get("labels") or {})]

    def by_index(self, index: str, value: str) -> ObjList:
        return self.indexer.by_index(index, value)
