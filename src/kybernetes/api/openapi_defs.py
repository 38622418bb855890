"""The upstream Kubernetes v1.32 OpenAPI definitions, as shipped by ``kubernetes-validate``.

They are the source of truth for types, required fields, list semantics
(``x-kubernetes-list-type``/``-list-map-keys``) and strategic-merge-patch keys
(``x-kubernetes-patch-merge-key``/``-patch-strategy``). Loaded once, lazily.

``definitions()`` maps a definition name (``io.k8s.api.apps.v1.Deployment``) to its JSON schema,
where references look like ``{"$ref": "#/$defs/<name>"}``. Use ``resolve`` to follow them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "v1.32.0"
_REF_PREFIXES = ("#/$defs/", "/api/_definitions.json#/$defs/", "#/definitions/")


def _defs_path() -> Path:
    import kubernetes_validate

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    return root / f"{SCHEMA_VERSION}-local" / "_definitions.json"


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    with _defs_path().open("rb") as f:
        return json.load(f)["$defs"]  # type: ignore[no-any-return]


@functools.cache
def gvk_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, for every top-level kind."""
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            out.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return out


def definition_name_for(group: str, version: str, kind: str) -> str | None:
    return gvk_index().get((group, version, kind))


def ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    if not ref:
        return None
    for p in _REF_PREFIXES:
        if ref.startswith(p):
            return str(ref[len(p):])
    return None


def resolve(node: dict[str, Any] | None) -> dict[str, Any]:
    """Follow ``$ref`` (and a single-element ``allOf``) until a concrete schema is reached."""
    seen = 0
    while node is not None and seen < 32:
        seen += 1
        name = ref_name(node)
        if name is not None:
            node = definitions().get(name)
            continue
        all_of = node.get("allOf")
        if all_of and len(all_of) == 1 and "properties" not in node:
            node = all_of[0]
            continue
        return node
    return node or {}


def schema_for(group: str, version: str, kind: str) -> dict[str, Any] | None:
    name = definition_name_for(group, version, kind)
    return definitions()[name] if name else None


def child(node: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The (unresolved) schema of property ``key`` of object schema ``node`` (resolved first)."""
    n = resolve(node)
    props = n.get("properties")
    if props and key in props:
        return props[key]  # type: ignore[no-any-return]
    extra = n.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return None


def items(node: dict[str, Any]) -> dict[str, Any] | None:
    n = resolve(node)
    it = n.get("items")
    return it if isinstance(it, dict) else None
