"""The OpenAPI documents the API server serves: v3 (index + one document per group/version) and v2.

kubectl reads them for ``apply``/``create -f``/``replace``/``edit`` (it looks for the PATCH
operation of the object's kind carrying ``x-kubernetes-group-version-kind`` and a
``fieldValidation`` query parameter, and for client-side apply computes strategic merge patches
from ``components.schemas``) and for ``explain`` (walks the kind's schema).

Schemas come from the upstream v1.32 definitions (``api.openapi_defs``, a JSON-schema draft) and,
for custom resources, from each CRD version's ``openAPIV3Schema``. Converting the upstream draft:

* ``{"$ref": "#/$defs/X"}`` becomes ``#/components/schemas/X`` (v3) or ``#/definitions/X`` (v2);
  in v3 a ``$ref`` with sibling keys is wrapped as ``{"allOf": [{"$ref": ...}], ...siblings}``
  (as upstream does, since OpenAPI 3.0 ignores siblings of ``$ref``);
* ``"type": [t, "null"]`` becomes ``"type": t``: kubernetes-validate marks every field nullable,
  upstream's documents do not;
* IntOrString becomes ``{"format": "int-or-string", "oneOf": [integer, string]}`` (v3) or
  ``{"type": "string", "format": "int-or-string"}`` (v2); Quantity ``oneOf`` string/number (v3)
  or ``{"type": "string"}`` (v2);
* the ``enum`` kubernetes-validate adds to every ``apiVersion``/``kind`` property is dropped.

Documents are built lazily per group/version and cached as bytes; a new resource set (CRDs added
or removed) goes through ``update``, which drops the caches only if the set changed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from kybernetes.api.openapi_defs import definition_name_for, definitions, ref_name
from kybernetes.api.resources import ResourceInfo, SubresourceInfo

Schema = dict[str, Any]

SERVER_VERSION = "v1.32.4"
V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = META + "ObjectMeta"
LIST_META = META + "ListMeta"
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

JSON_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
SMP = "application/strategic-merge-patch+json"

# Subresources that are not plain JSON CRUD (streams, upgrades) get no operations.
_CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy", "log"})

_QUERY_PARAMS: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', the output is pretty printed."),
    "dryRun": ("string", "When present, modifications are not persisted. Valid value: All."),
    "fieldManager": ("string", "Name of the actor making the change, recorded in managedFields."),
    "fieldValidation": (
        "string",
        "How the server handles unknown or duplicate fields: Ignore, Warn or Strict.",
    ),
    "force": ("boolean", "Apply requests only: take ownership of conflicting fields."),
    "allowWatchBookmarks": ("boolean", "Watch only: ask for BOOKMARK events."),
    "continue": ("string", "Continue token from a previous paginated list."),
    "fieldSelector": ("string", "Restrict the list by field values."),
    "labelSelector": ("string", "Restrict the list by labels."),
    "limit": ("integer", "Maximum number of items to return; more come with a continue token."),
    "resourceVersion": ("string", "Which resource version the read is served from."),
    "resourceVersionMatch": ("string", "How resourceVersion applies: Exact, NotOlderThan."),
    "sendInitialEvents": ("boolean", "Watch only: begin with events for existing objects."),
    "timeoutSeconds": ("integer", "Timeout for list/watch calls."),
    "watch": ("boolean", "Watch for changes instead of listing."),
    "gracePeriodSeconds": ("integer", "Seconds before the object is deleted; 0 deletes now."),
    "orphanDependents": ("boolean", "Deprecated: use propagationPolicy."),
    "propagationPolicy": ("string", "Garbage collection policy: Orphan, Background or Foreground."),
}
_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds",
                "watch", "pretty")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")
_PATCH_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy", "pretty")


# --------------------------------------------------------------------------- schema conversion


def _single_type(t: Any) -> str | None:
    if isinstance(t, list):
        real = [x for x in t if x != "null"]
        return real[0] if len(real) == 1 else None
    return t if isinstance(t, str) else None


def convert_schema(node: Any, prefix: str = V3_PREFIX, *, v2: bool = False) -> Any:
    """Convert one upstream-draft (or CRD) schema node to OpenAPI 3.0 (or Swagger 2.0 if ``v2``)."""
    if isinstance(node, list):
        return [convert_schema(x, prefix, v2=v2) for x in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    ref: str | None = None
    for key, value in node.items():
        if key == "$ref":
            name = ref_name(node)
            ref = prefix + (name if name is not None else str(value).rsplit("/", 1)[-1])
        elif key == "type":
            t = _single_type(value)
            if t is not None:
                out["type"] = t
        elif key == "properties" and isinstance(value, dict):
            out[key] = {
                k: _drop_kind_enum(k, convert_schema(v, prefix, v2=v2)) for k, v in value.items()
            }
        elif key in ("items", "additionalProperties", "not", "oneOf", "anyOf", "allOf"):
            out[key] = convert_schema(value, prefix, v2=v2)
        else:
            out[key] = value
    if v2:
        _v2_downgrade(out)
    if ref is None:
        return out
    if not out or v2:  # Swagger 2 documents keep siblings next to $ref (as upstream v2 does)
        return {"$ref": ref, **out}
    return {"allOf": [{"$ref": ref}], **out}


def _drop_kind_enum(key: str, schema: Any) -> Any:
    if key in ("apiVersion", "kind") and isinstance(schema, dict) and "enum" in schema:
        schema = {k: v for k, v in schema.items() if k != "enum"}
    return schema


def _v2_downgrade(out: Schema) -> None:
    """Swagger 2.0 has no oneOf/anyOf/nullable: int-or-string and unions become strings."""
    union = out.pop("oneOf", None) or out.pop("anyOf", None)
    out.pop("nullable", None)
    out.pop("not", None)
    if union is not None and "type" not in out:
        out["type"] = "string"
    if out.get("x-kubernetes-int-or-string") and "type" not in out:
        out["type"] = "string"


def _special_v3(name: str, schema: Schema) -> Schema:
    if name == INT_OR_STRING:
        return {
            "description": "IntOrString holds either an int32 or a string.",
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }
    if name == QUANTITY:
        return {
            "description": schema.get("description", "A fixed-point number such as 100m or 1Gi."),
            "oneOf": [{"type": "string"}, {"type": "number"}],
        }
    return schema


def _special_v2(name: str, schema: Schema) -> Schema:
    if name == INT_OR_STRING:
        return {"description": "IntOrString holds either an int32 or a string.",
                "type": "string", "format": "int-or-string"}
    if name == QUANTITY:
        return {"description": schema.get("description", "A fixed-point number."), "type": "string"}
    return schema


@functools.cache
def upstream_schema_v3(name: str) -> Schema:
    """The converted v3 schema of one upstream definition (cached; do not mutate)."""
    return _special_v3(name, convert_schema(definitions()[name], V3_PREFIX))


@functools.cache
def upstream_schema_v2(name: str) -> Schema:
    return _special_v2(name, convert_schema(definitions()[name], V2_PREFIX, v2=True))


def iter_refs(node: Any, prefix: str = V3_PREFIX) -> Iterator[str]:
    """Names of every schema referenced (``$ref`` with ``prefix``) anywhere inside ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix):
            yield ref[len(prefix):]
        for value in node.values():
            yield from iter_refs(value, prefix)
    elif isinstance(node, list):
        for value in node:
            yield from iter_refs(value, prefix)


@functools.cache
def _upstream_refs(name: str, prefix: str) -> frozenset[str]:
    schema = upstream_schema_v3(name) if prefix == V3_PREFIX else upstream_schema_v2(name)
    return frozenset(iter_refs(schema, prefix))


# --------------------------------------------------------------------------- custom resources


def custom_schema_name(info: ResourceInfo, kind: str | None = None) -> str:
    """Upstream's CRD schema name: reversed group, version, kind (``com.example.v1.Widget``)."""
    rev = ".".join(reversed(info.group.split("."))) if info.group else "core"
    return f"{rev}.{info.version}.{kind or info.kind}"


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _api_version_prop() -> Schema:
    return {"type": "string", "description": "APIVersion defines the versioned schema of this "
            "representation of an object."}


def _kind_prop() -> Schema:
    return {"type": "string", "description": "Kind is a string value representing the REST "
            "resource this object represents."}


def _ref_prop(prefix: str, name: str, description: str, *, v2: bool) -> Schema:
    if v2:
        return {"$ref": prefix + name, "description": description}
    return {"allOf": [{"$ref": prefix + name}], "description": description}


def custom_kind_schema(info: ResourceInfo, *, v2: bool = False) -> Schema:
    """The schema of a custom resource kind: its openAPIV3Schema plus apiVersion/kind/metadata."""
    prefix = V2_PREFIX if v2 else V3_PREFIX
    raw: Schema = dict(info.schema or {"x-kubernetes-preserve-unknown-fields": True})
    schema: Schema = convert_schema(raw, prefix, v2=v2)
    schema["type"] = "object"
    props = dict(schema.get("properties") or {})
    props["apiVersion"] = _api_version_prop()
    props["kind"] = _kind_prop()
    props["metadata"] = _ref_prop(prefix, OBJECT_META, "Standard object's metadata.", v2=v2)
    schema["properties"] = props
    schema["x-kubernetes-group-version-kind"] = [_gvk(info.group, info.version, info.kind)]
    return schema


def custom_list_schema(info: ResourceInfo, *, v2: bool = False) -> Schema:
    prefix = V2_PREFIX if v2 else V3_PREFIX
    return {
        "description": f"{info.kind}List is a list of {info.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": _api_version_prop(),
            "kind": _kind_prop(),
            "items": {
                "type": "array",
                "description": f"List of {info.plural}.",
                "items": {"$ref": prefix + custom_schema_name(info)},
            },
            "metadata": _ref_prop(prefix, LIST_META, "Standard list metadata.", v2=v2),
        },
        "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.list_kind)],
    }


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    """One HTTP operation, rendered later as OpenAPI v3 or Swagger 2.0."""

    method: str                 # get, put, post, patch, delete
    action: str                 # x-kubernetes-action
    op_id: str
    gvk: dict[str, str]
    params: tuple[str, ...]
    response: str | None        # schema name of the 200 body
    body: str | None = None     # schema name of the request body
    body_types: tuple[str, ...] = ()
    description: str = ""


def _camel(s: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in s.replace("-", ".").split(".") if p)


def group_ident(group: str) -> str:
    """``""`` → Core, ``rbac.authorization.k8s.io`` → RbacAuthorization (upstream's op ids)."""
    if not group:
        return "Core"
    return _camel(group.removesuffix(".k8s.io"))


def gv_path(info: ResourceInfo) -> str:
    """The index key of a resource's group/version: ``api/v1`` or ``apis/<group>/<version>``."""
    return f"apis/{info.group}/{info.version}" if info.group else f"api/{info.version}"


@dataclass(frozen=True)
class _Names:
    """Schema names a resource's operations refer to."""

    kind: str
    list: str | None


class OpenAPIBuilder:
    """Builds and caches the OpenAPI documents for a set of resources (built-in and custom)."""

    def __init__(self, resources: Iterable[ResourceInfo], *, version: str = SERVER_VERSION) -> None:
        self._version = version
        self._resources: tuple[ResourceInfo, ...] = ()
        self._key: tuple[Any, ...] | None = None
        self.update(resources)

    # ---- resource set

    def update(self, resources: Iterable[ResourceInfo]) -> bool:
        """Replace the resource set; drops cached documents only if it changed. True if changed."""
        res = tuple(resources)
        key = tuple((r, orjson.dumps(r.schema, option=orjson.OPT_SORT_KEYS)) for r in res)
        if key == self._key:
            return False
        self._resources, self._key = res, key
        self._by_gv: dict[str, list[ResourceInfo]] = {}
        for r in res:
            self._by_gv.setdefault(gv_path(r), []).append(r)
        self._v3: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._index: Schema | None = None
        self._v2: bytes | None = None
        return True

    def gv_paths(self) -> list[str]:
        return list(self._by_gv)

    # ---- v3

    def v3_index(self) -> Schema:
        if self._index is None:
            self._index = {
                "paths": {
                    gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={self.v3_hash(gv)}"}
                    for gv in self._by_gv
                }
            }
        return self._index

    def v3_hash(self, gv: str) -> str:
        if gv not in self._hashes:
            self._hashes[gv] = hashlib.sha512(self.v3_document(gv)).hexdigest().upper()
        return self._hashes[gv]

    def v3_document(self, gv: str) -> bytes:
        """The OpenAPI 3.0 document of one group/version (``api/v1``, ``apis/apps/v1``).

        Raises KeyError for a group/version that is not served.
        """
        gv = gv.strip("/")
        cached = self._v3.get(gv)
        if cached is None:
            cached = orjson.dumps(self._build_v3(self._by_gv[gv]), option=orjson.OPT_SORT_KEYS)
            self._v3[gv] = cached
        return cached

    def _build_v3(self, resources: list[ResourceInfo]) -> Schema:
        paths: dict[str, Schema] = {}
        custom: dict[str, Schema] = {}
        for info in resources:
            names = self._names(info, custom, v2=False)
            for path, ops in _resource_paths(info, names):
                entry = paths.setdefault(path, {})
                entry.update({op.method: _render_v3(op, info) for op in ops})
                if "{name}" in path or "{namespace}" in path:
                    entry["parameters"] = _path_params_v3(path)
        schemas = _closure(paths, custom, V3_PREFIX)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": self._version},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    # ---- v2

    def v2_document(self) -> bytes:
        """One Swagger 2.0 document for every served group/version."""
        if self._v2 is None:
            self._v2 = orjson.dumps(self._build_v2(), option=orjson.OPT_SORT_KEYS)
        return self._v2

    def _build_v2(self) -> Schema:
        paths: dict[str, Schema] = {}
        custom: dict[str, Schema] = {}
        for info in self._resources:
            names = self._names(info, custom, v2=True)
            for path, ops in _resource_paths(info, names):
                entry = paths.setdefault(path, {})
                entry.update({op.method: _render_v2(op, info) for op in ops})
                if "{name}" in path or "{namespace}" in path:
                    entry["parameters"] = _path_params_v2(path)
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self._version},
            "paths": paths,
            "definitions": _closure(paths, custom, V2_PREFIX),
        }

    # ---- helpers

    def _names(self, info: ResourceInfo, custom: dict[str, Schema], *, v2: bool) -> _Names:
        if info.custom:
            kind_name = custom_schema_name(info)
            list_name = custom_schema_name(info, info.list_kind)
            custom[kind_name] = custom_kind_schema(info, v2=v2)
            custom[list_name] = custom_list_schema(info, v2=v2)
            return _Names(kind_name, list_name)
        kind_name = definition_name_for(info.group, info.version, info.kind)
        if kind_name is None:  # no upstream schema: describe it as an open object
            kind_name = custom_schema_name(info)
            custom[kind_name] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.kind)],
            }
        return _Names(kind_name, definition_name_for(info.group, info.version, info.list_kind))


def _closure(paths: Schema, custom: dict[str, Schema], prefix: str) -> dict[str, Schema]:
    """Every schema referenced from ``paths`` and ``custom``, transitively."""
    out: dict[str, Schema] = dict(custom)
    todo = list(iter_refs(paths, prefix))
    for schema in custom.values():
        todo += iter_refs(schema, prefix)
    known = definitions()
    while todo:
        name = todo.pop()
        if name in out or name not in known:
            continue
        out[name] = upstream_schema_v3(name) if prefix == V3_PREFIX else upstream_schema_v2(name)
        todo += _upstream_refs(name, prefix)
    return out


# --------------------------------------------------------------------------- paths


def _ident(info: ResourceInfo) -> str:
    return group_ident(info.group) + _camel(info.version)


def _resource_paths(info: ResourceInfo, names: _Names) -> list[tuple[str, list[Operation]]]:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    ns = "Namespaced" if info.namespaced else ""
    ns_base = f"{base}/namespaces/{{namespace}}" if info.namespaced else base
    coll = f"{ns_base}/{info.plural}"
    item = coll + "/{name}"
    gvk = _gvk(info.group, info.version, info.kind)
    ident, kind = _ident(info), info.kind
    verbs = set(info.verbs)
    out: list[tuple[str, list[Operation]]] = []

    c_ops: list[Operation] = []
    if "list" in verbs and names.list:
        c_ops.append(
            Operation("get", "list", f"list{ident}{ns}{kind}", gvk, _LIST_PARAMS, names.list)
        )
    if "create" in verbs:
        c_ops.append(Operation("post", "post", f"create{ident}{ns}{kind}", gvk, _WRITE_PARAMS,
                               names.kind, names.kind, JSON_TYPES))
    if "deletecollection" in verbs:
        c_ops.append(Operation("delete", "deletecollection", f"delete{ident}Collection{ns}{kind}",
                               gvk, _DELETE_PARAMS + _LIST_PARAMS[:-2], STATUS, DELETE_OPTIONS,
                               JSON_TYPES))
    if c_ops:
        out.append((coll, c_ops))
    if info.namespaced and "list" in verbs and names.list:
        out.append((f"{base}/{info.plural}", [Operation(
            "get", "list", f"list{ident}{kind}ForAllNamespaces", gvk, _LIST_PARAMS, names.list)]))

    i_ops = _item_ops(f"{ident}{ns}{kind}", gvk, verbs, names.kind, custom=info.custom)
    if "delete" in verbs:
        i_ops.append(Operation("delete", "delete", f"delete{ident}{ns}{kind}", gvk, _DELETE_PARAMS,
                               STATUS, DELETE_OPTIONS, JSON_TYPES))
    if i_ops:
        out.append((item, i_ops))
    for sub in info.subresources:
        ops = _subresource_ops(info, sub, f"{ident}{ns}{kind}{_camel(sub.name)}")
        if ops:
            out.append((f"{item}/{sub.name}", ops))
    return out


def _item_ops(
    op_suffix: str, gvk: dict[str, str], verbs: set[str], schema: str, *, custom: bool
) -> list[Operation]:
    ops: list[Operation] = []
    if "get" in verbs:
        ops.append(Operation("get", "get", f"read{op_suffix}", gvk, ("pretty",), schema))
    if "update" in verbs:
        ops.append(Operation("put", "put", f"replace{op_suffix}", gvk, _WRITE_PARAMS, schema,
                             schema, JSON_TYPES))
    if "patch" in verbs:
        # Strategic merge patch only where kubectl can compute it from complete schemas.
        types = tuple(t for t in PATCH_TYPES if not (custom and t == SMP))
        ops.append(Operation("patch", "patch", f"patch{op_suffix}", gvk, _PATCH_PARAMS, schema,
                             PATCH, types))
    return ops


def _subresource_ops(info: ResourceInfo, sub: SubresourceInfo, op_suffix: str) -> list[Operation]:
    if sub.name in _CONNECT_SUBRESOURCES:
        return []
    group = sub.group if sub.group or sub.version else info.group
    version = sub.version or info.version
    if info.custom and sub.kind == info.kind and (group, version) == (info.group, info.version):
        schema: str | None = custom_schema_name(info)
    else:
        schema = definition_name_for(group, version, sub.kind)
    if schema is None:
        return []
    gvk = _gvk(group, version, sub.kind)
    verbs = set(sub.verbs)
    ops = _item_ops(op_suffix, gvk, verbs, schema, custom=info.custom)
    if "create" in verbs:
        ops.append(Operation("post", "post", f"create{op_suffix}", gvk, _WRITE_PARAMS, schema,
                             schema, JSON_TYPES))
    return ops


# --------------------------------------------------------------------------- rendering


def _path_param_names(path: str) -> list[str]:
    return [n for n in ("name", "namespace") if "{" + n + "}" in path]


def _path_params_v3(path: str) -> list[Schema]:
    return [
        {"name": n, "in": "path", "required": True, "description": f"{n} of the object",
         "schema": {"type": "string", "uniqueItems": True}}
        for n in _path_param_names(path)
    ]


def _path_params_v2(path: str) -> list[Schema]:
    return [
        {"name": n, "in": "path", "required": True, "description": f"{n} of the object",
         "type": "string", "uniqueItems": True}
        for n in _path_param_names(path)
    ]


def _query_v3(name: str) -> Schema:
    t, desc = _QUERY_PARAMS[name]
    return {"name": name, "in": "query", "description": desc,
            "schema": {"type": t, "uniqueItems": True}}


def _query_v2(name: str) -> Schema:
    t, desc = _QUERY_PARAMS[name]
    return {"name": name, "in": "query", "description": desc, "type": t, "uniqueItems": True}


def _common(op: Operation, info: ResourceInfo) -> Schema:
    return {
        "operationId": op.op_id,
        "description": op.description or f"{op.action} {op.gvk['kind']}",
        "tags": [group_ident(info.group)[:1].lower() + group_ident(info.group)[1:]
                 + "_" + info.version],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": dict(op.gvk),
    }


def _responses_v3(op: Operation) -> Schema:
    ok: Schema = {"description": "OK"}
    if op.response:
        ref = {"$ref": V3_PREFIX + op.response}
        ok["content"] = {t: {"schema": ref} for t in JSON_TYPES}
    out: Schema = {"200": ok, "401": {"description": "Unauthorized"}}
    if op.action == "post":
        out["201"] = {**ok, "description": "Created"}
        out["202"] = {**ok, "description": "Accepted"}
    if op.action in ("put", "patch"):
        out["201"] = {**ok, "description": "Created"}
    if op.action == "delete":
        out["202"] = {**ok, "description": "Accepted"}
    return out


def _render_v3(op: Operation, info: ResourceInfo) -> Schema:
    out = _common(op, info)
    out["parameters"] = [_query_v3(p) for p in op.params]
    if op.body:
        ref = {"$ref": V3_PREFIX + op.body}
        out["requestBody"] = {"content": {t: {"schema": ref} for t in op.body_types},
                              "required": op.action != "delete"}
    out["responses"] = _responses_v3(op)
    return out


def _render_v2(op: Operation, info: ResourceInfo) -> Schema:
    out = _common(op, info)
    params = [_query_v2(p) for p in op.params]
    if op.body:
        params.insert(0, {"name": "body", "in": "body", "required": op.action != "delete",
                          "schema": {"$ref": V2_PREFIX + op.body}})
        out["consumes"] = list(op.body_types if op.action == "patch" else ("*/*",))
    out["parameters"] = params
    out["produces"] = list(JSON_TYPES)
    ok: Schema = {"description": "OK"}
    if op.response:
        ok["schema"] = {"$ref": V2_PREFIX + op.response}
    out["responses"] = {"200": ok, "401": {"description": "Unauthorized"}}
    out["schemes"] = ["https"]
    return out
