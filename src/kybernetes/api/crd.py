"""CustomResourceDefinitions: validation, defaulting, status, and their custom objects.

CRD side (``apiextensions.k8s.io/v1`` objects as plain dicts):
    ``default_crd``        names.singular/listKind, conversion strategy, served/storage flags
    ``validate_crd``       upstream ``ValidateCustomResourceDefinition`` (the subset that matters)
    ``crd_status``         the status of an accepted CRD (NamesAccepted + Established)
    ``resources_for_crd``  one ``ResourceInfo`` per served version

Custom-object side (OpenAPI v3 *structural* schemas from ``openAPIV3Schema``):
    ``validate_custom_object``  type/required/enum/bounds/... with upstream messages
    ``prune`` / ``unknown_fields``  drop (or list, for Strict) fields the schema does not know
    ``apply_schema_defaults``   the ``default`` keyword

All functions are pure: inputs are never mutated (results share unchanged subtrees).
"""

from __future__ import annotations

import copy
import datetime as _dt
import ipaddress
import math
import re
from typing import Any

from kybernetes.api.errors import (
    FIELD_VALUE_INVALID,
    Cause,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
    too_long,
    type_invalid,
)
from kybernetes.api.resources import ResourceInfo, SubresourceInfo
from kybernetes.api.validation import (
    DNS1123_SUBDOMAIN,
    base64_error,
    is_dns1035_label,
    is_dns1123_subdomain,
    render_path,
    validate_object_meta,
)

Obj = dict[str, Any]
_ROOT_META_FIELDS = ("apiVersion", "kind", "metadata")

# --------------------------------------------------------------------------------------------
# CRD defaulting, validation and status.
# --------------------------------------------------------------------------------------------


def default_crd(crd: Obj) -> Obj:
    """A copy of ``crd`` with upstream v1 defaults filled in."""
    out = copy.deepcopy(crd)
    spec = out.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind") or ""
    if kind and not names.get("singular"):
        names["singular"] = kind.lower()
    if kind and not names.get("listKind"):
        names["listKind"] = kind + "List"
    conv = spec.setdefault("conversion", {})
    conv.setdefault("strategy", "None")
    for v in spec.get("versions") or ():
        if isinstance(v, dict):
            v.setdefault("served", False)
            v.setdefault("storage", False)
    return out


def _invalid_list(path: str, detail: str) -> Cause:
    return Cause(FIELD_VALUE_INVALID, f"Invalid value: [...]: {detail}", path)


def validate_crd(crd: Obj, old: Obj | None = None) -> list[Cause]:
    """Upstream CRD validation (metadata, spec, names, versions, schemas, update rules)."""
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    assert isinstance(names, dict)
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    meta = crd.get("metadata") if isinstance(crd.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    errs = validate_object_meta(meta, False, DNS1123_SUBDOMAIN)
    name = meta.get("name") or ""
    if name and name != f"{plural}.{group}":
        errs.append(invalid_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    errs += _validate_group(group)
    scope = spec.get("scope") or ""
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    errs += _validate_versions(spec.get("versions"))
    errs += _validate_names(names)
    conv = spec.get("conversion")
    if isinstance(conv, dict):
        strategy = conv.get("strategy") or ""
        if not strategy:
            errs.append(required("spec.conversion.strategy"))
        elif strategy not in ("None", "Webhook"):
            errs.append(not_supported("spec.conversion.strategy", strategy, ("None", "Webhook")))
        elif strategy == "Webhook" and not conv.get("webhook"):
            errs.append(required("spec.conversion.webhook", "required when strategy is set to Webhook"))
    if spec.get("preserveUnknownFields") is True:
        errs.append(invalid_value("spec.preserveUnknownFields", True, "must be false in order to use defaults in the schema"))
    if old is not None:
        errs += _validate_crd_update(spec, old)
    return errs


def _validate_group(group: str) -> list[Cause]:
    if not group:
        return [required("spec.group")]
    msgs = is_dns1123_subdomain(group)
    if msgs:
        return [invalid_value("spec.group", group, ",".join(msgs))]
    if "." not in group:
        return [invalid_value("spec.group", group, "should be a domain with at least one dot")]
    return []


def _validate_names(names: Obj) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errs.append(required(f"spec.names.{key}"))
    for key in ("plural", "singular"):
        v = names.get(key) or ""
        msgs = is_dns1035_label(v) if v else []
        if msgs:
            errs.append(invalid_value(f"spec.names.{key}", v, ",".join(msgs)))
    for key in ("kind", "listKind"):
        v = names.get(key) or ""
        msgs = is_dns1035_label(v.lower()) if v else []
        if msgs:
            errs.append(invalid_value(f"spec.names.{key}", v, "may have mixed case, but should otherwise match: " + ",".join(msgs)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(invalid_value("spec.names.listKind", names["listKind"], "kind and listKind may not be the same"))
    for i, s in enumerate(names.get("shortNames") or ()):
        msgs = is_dns1035_label(s) if isinstance(s, str) else ["must be a string"]
        if msgs:
            errs.append(invalid_value(f"spec.names.shortNames[{i}]", s, ",".join(msgs)))
    for i, c in enumerate(names.get("categories") or ()):
        msgs = is_dns1035_label(c) if isinstance(c, str) else ["must be a string"]
        if msgs:
            errs.append(invalid_value(f"spec.names.categories[{i}]", c, ",".join(msgs)))
    return errs


def _validate_versions(versions: Any) -> list[Cause]:
    versions = versions if isinstance(versions, list) else []
    errs: list[Cause] = []
    seen: set[str] = set()
    unique = True
    storage = 0
    for i, v in enumerate(versions):
        v = v if isinstance(v, dict) else {}
        p = f"spec.versions[{i}]"
        vname = v.get("name") or ""
        msgs = is_dns1035_label(vname)
        if msgs:
            errs.append(invalid_value(f"{p}.name", vname, ",".join(msgs)))
        if vname in seen:
            unique = False
        seen.add(vname)
        if v.get("storage") is True:
            storage += 1
        errs += _validate_version_schema(v.get("schema"), f"{p}.schema")
        errs += _validate_subresources(v.get("subresources"), f"{p}.subresources")
        for j, col in enumerate(v.get("additionalPrinterColumns") or ()):
            errs += _validate_column(col if isinstance(col, dict) else {}, f"{p}.additionalPrinterColumns[{j}]")
    if not unique:
        errs.append(_invalid_list("spec.versions", "must contain unique version names"))
    if storage != 1:
        errs.append(_invalid_list("spec.versions", "must have exactly one version marked as storage version"))
    if versions and not any(isinstance(v, dict) and v.get("served") is True for v in versions):
        errs.append(_invalid_list("spec.versions", "must have at least one served version"))
    return errs


_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")


def _validate_column(col: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if not col.get("name"):
        errs.append(required(f"{path}.name"))
    t = col.get("type") or ""
    if not t:
        errs.append(required(f"{path}.type"))
    elif t not in _COLUMN_TYPES:
        errs.append(not_supported(f"{path}.type", t, _COLUMN_TYPES))
    if not col.get("jsonPath"):
        errs.append(required(f"{path}.jsonPath"))
    return errs


def _validate_subresources(sub: Any, path: str) -> list[Cause]:
    if not isinstance(sub, dict):
        return []
    scale = sub.get("scale")
    if not isinstance(scale, dict):
        return []
    errs: list[Cause] = []
    for key, prefix in (("specReplicasPath", ".spec."), ("statusReplicasPath", ".status.")):
        val = scale.get(key) or ""
        if not val:
            errs.append(required(f"{path}.scale.{key}"))
        elif not val.startswith(prefix):
            errs.append(invalid_value(f"{path}.scale.{key}", val, f"should be a json path under {prefix[:-1]}"))
    sel = scale.get("labelSelectorPath")
    if sel and not (sel.startswith(".spec.") or sel.startswith(".status.")):
        errs.append(invalid_value(f"{path}.scale.labelSelectorPath", sel, "should be a json path under either .spec or .status"))
    return errs


def _validate_version_schema(schema: Any, path: str) -> list[Cause]:
    root = schema.get("openAPIV3Schema") if isinstance(schema, dict) else None
    p = f"{path}.openAPIV3Schema"
    if not isinstance(root, dict):
        return [required(p, "schemas are required")]
    errs: list[Cause] = []
    t = root.get("type")
    if t != "object":
        errs.append(invalid_value(f"{p}.type", t or "", "must be object at the root"))
    errs += _structural_errors(root, p, is_root=True)
    return errs


def _structural_errors(s: Obj, path: str, is_root: bool = False) -> list[Cause]:
    """Type must be set wherever a schema describes a field (structural schema rule)."""
    errs: list[Cause] = []
    if not is_root and not s.get("type") and not s.get("x-kubernetes-int-or-string") and not s.get("x-kubernetes-preserve-unknown-fields"):
        errs.append(required(f"{path}.type", "must not be empty for specified object fields"))
    if s.get("type") == "array" and not isinstance(s.get("items"), dict):
        errs.append(required(f"{path}.items", "must be specified"))
    for k, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            errs += _structural_errors(sub, f"{path}.properties[{k}]")
    if isinstance(s.get("items"), dict):
        errs += _structural_errors(s["items"], f"{path}.items")
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        if s.get("properties"):
            errs.append(forbidden(f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"))
        errs += _structural_errors(extra, f"{path}.additionalProperties")
    return errs


def _validate_crd_update(spec: Obj, old: Obj) -> list[Cause]:
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    assert isinstance(old_spec, dict)
    errs: list[Cause] = []
    if spec.get("group") != old_spec.get("group"):
        errs.append(invalid_value("spec.group", spec.get("group") or "", "field is immutable"))
    new_names = spec.get("names") or {}
    old_names = old_spec.get("names") or {}
    if new_names.get("plural") != old_names.get("plural"):
        errs.append(invalid_value("spec.names.plural", new_names.get("plural") or "", "field is immutable"))
    established = any(
        isinstance(c, dict) and c.get("type") == "Established" and c.get("status") == "True"
        for c in ((old.get("status") or {}).get("conditions") or ())
    )
    if established:
        if spec.get("scope") != old_spec.get("scope"):
            errs.append(invalid_value("spec.scope", spec.get("scope") or "", "field is immutable"))
        if new_names.get("kind") != old_names.get("kind"):
            errs.append(invalid_value("spec.names.kind", new_names.get("kind") or "", "field is immutable"))
    return errs


def storage_version(crd: Obj) -> str | None:
    for v in (crd.get("spec") or {}).get("versions") or ():
        if isinstance(v, dict) and v.get("storage") is True:
            return str(v.get("name"))
    return None


def crd_status(crd: Obj, now: _dt.datetime | str) -> Obj:
    """Status of an accepted CRD: NamesAccepted + Established, acceptedNames, storedVersions."""
    ts = now if isinstance(now, str) else now.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = copy.deepcopy((crd.get("spec") or {}).get("names") or {})
    old_status = crd.get("status") or {}
    stored = list(old_status.get("storedVersions") or [])
    sv = storage_version(crd)
    if sv and sv not in stored:
        stored.append(sv)
    old_conds = {c.get("type"): c for c in old_status.get("conditions") or () if isinstance(c, dict)}

    def cond(ctype: str, reason: str, message: str) -> Obj:
        prev = old_conds.get(ctype)
        when = prev["lastTransitionTime"] if prev and prev.get("status") == "True" and prev.get("lastTransitionTime") else ts
        return {"type": ctype, "status": "True", "lastTransitionTime": when, "reason": reason, "message": message}

    return {
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    }


def resources_for_crd(crd: Obj) -> list[ResourceInfo]:
    """One ``ResourceInfo`` per served version of a (defaulted) CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    kind = names.get("kind") or ""
    out: list[ResourceInfo] = []
    for v in spec.get("versions") or ():
        if not isinstance(v, dict) or not v.get("served"):
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        sub = v.get("subresources") or {}
        subs: list[SubresourceInfo] = []
        scale_paths: tuple[str, str, str | None] | None = None
        if "status" in sub and sub["status"] is not None:
            subs.append(SubresourceInfo("status", kind))
        scale = sub.get("scale")
        if isinstance(scale, dict):
            subs.append(SubresourceInfo("scale", "Scale", group="autoscaling", version="v1"))
            scale_paths = (scale.get("specReplicasPath") or "", scale.get("statusReplicasPath") or "", scale.get("labelSelectorPath"))
        out.append(ResourceInfo(
            group=spec.get("group") or "",
            version=v.get("name") or "",
            kind=kind,
            plural=names.get("plural") or "",
            singular=names.get("singular") or kind.lower(),
            namespaced=spec.get("scope") != "Cluster",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(subs),
            storage_version=sv if (sv := storage_version(crd)) != v.get("name") else None,
            custom=True,
            schema=schema,
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            scale_paths=scale_paths,
            preserve_unknown=bool(isinstance(schema, dict) and schema.get("x-kubernetes-preserve-unknown-fields")),
        ))
    return out


# --------------------------------------------------------------------------------------------
# Custom objects against structural schemas.
# --------------------------------------------------------------------------------------------

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return "integer"
    return _TYPE_NAMES.get(type(value), "object")


def _type_ok(t: str, value: Any) -> bool:
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _format_ok(fmt: str, value: Any) -> bool:
    """Lenient checks of the common ``format`` values; unknown formats always pass."""
    if isinstance(value, str):
        if fmt == "date-time":
            return bool(_RFC3339.match(value))
        if fmt == "date":
            return bool(_DATE.match(value))
        if fmt == "byte":
            return base64_error(value) is None
        if fmt == "uuid":
            return bool(_UUID.match(value))
        if fmt in ("ipv4", "ipv6"):
            try:
                ip = ipaddress.ip_address(value)
            except ValueError:
                return False
            return ip.version == (4 if fmt == "ipv4" else 6)
        return True
    if fmt in _INT_BOUNDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = _INT_BOUNDS[fmt]
        return lo <= value <= hi
    return True


def _in_body(path: str) -> str:
    return f"{path or 'body'} in body"


def validate_custom_object(schema: Obj, obj: Obj) -> list[Cause]:
    """Validate a custom object against its version's ``openAPIV3Schema``.

    apiVersion/kind/metadata at the root are the server's business and are skipped."""
    errs: list[Cause] = []
    if not isinstance(schema, dict):
        return errs
    _validate_node(schema, obj, [], errs, root=True)
    return errs


def _validate_node(s: Obj, value: Any, path: list[str | int], errs: list[Cause], root: bool = False) -> None:
    p = render_path(path)
    if value is None:
        if s.get("nullable") or not s.get("type"):
            return
        errs.append(type_invalid(p, "null", f'{_in_body(p)} must be of type {s["type"]}: "null"'))
        return
    if s.get("x-kubernetes-int-or-string"):
        if not (_type_ok("integer", value) or isinstance(value, str)):
            tn = _type_name(value)
            errs.append(type_invalid(p, tn, f'{_in_body(p)} must be of type integer,string: "{tn}"'))
            return
    t = s.get("type")
    if t and not _type_ok(t, value):
        tn = _type_name(value)
        errs.append(type_invalid(p, tn, f'{_in_body(p)} must be of type {t}: "{tn}"'))
        return
    _validate_value_keywords(s, value, p, errs)
    if isinstance(value, dict):
        _validate_object(s, value, path, errs, root)
    elif isinstance(value, list):
        _validate_array(s, value, path, errs)
    _validate_combinators(s, value, path, errs, root)


def _validate_value_keywords(s: Obj, value: Any, p: str, errs: list[Cause]) -> None:
    enum = s.get("enum")
    if enum is not None and value not in enum:
        errs.append(not_supported(p, value, [_enum_repr(e) for e in enum]))
    fmt = s.get("format")
    if fmt and not _format_ok(fmt, value):
        errs.append(invalid_value(p, value, f'{_in_body(p)} must be of type {fmt}: "{value}"'))
    if isinstance(value, str):
        _validate_string(s, value, p, errs)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(s, value, p, errs)


def _enum_repr(e: Any) -> str:
    if isinstance(e, str):
        return e
    if e is None:
        return "null"
    if isinstance(e, bool):
        return "true" if e else "false"
    return str(e)


def _validate_string(s: Obj, value: str, p: str, errs: list[Cause]) -> None:
    mx, mn, pat = s.get("maxLength"), s.get("minLength"), s.get("pattern")
    n = len(value)
    if mx is not None and n > mx:
        errs.append(too_long(p, value, mx))
    if mn is not None and n < mn:
        errs.append(invalid_value(p, value, f"{_in_body(p)} should be at least {mn} chars long"))
    if pat is not None:
        try:
            ok = re.search(pat, value) is not None
        except re.error:
            ok = True
        if not ok:
            errs.append(invalid_value(p, value, f"{_in_body(p)} should match '{pat}'"))


def _validate_number(s: Obj, value: float, p: str, errs: list[Cause]) -> None:
    mx, mn, mult = s.get("maximum"), s.get("minimum"), s.get("multipleOf")
    if mx is not None:
        if s.get("exclusiveMaximum") and value >= mx:
            errs.append(invalid_value(p, value, f"{_in_body(p)} should be less than {mx}"))
        elif value > mx:
            errs.append(invalid_value(p, value, f"{_in_body(p)} should be less than or equal to {mx}"))
    if mn is not None:
        if s.get("exclusiveMinimum") and value <= mn:
            errs.append(invalid_value(p, value, f"{_in_body(p)} should be greater than {mn}"))
        elif value < mn:
            errs.append(invalid_value(p, value, f"{_in_body(p)} should be greater than or equal to {mn}"))
    if mult:
        q = value / mult
        if not math.isclose(q, round(q), rel_tol=0, abs_tol=1e-9):
            errs.append(invalid_value(p, value, f"{_in_body(p)} should be a multiple of {mult}"))


def _too_many(p: str, n: int, limit: int) -> Cause:
    return Cause("FieldValueTooMany", f"Too many: {n}: must have at most {limit} items", p)


def _validate_object(s: Obj, value: Obj, path: list[str | int], errs: list[Cause], root: bool) -> None:
    p = render_path(path)
    props = s.get("properties") or {}
    for key in s.get("required") or ():
        if key not in value or value[key] is None and not (props.get(key) or {}).get("nullable"):
            if root and key in _ROOT_META_FIELDS:
                continue
            errs.append(required(render_path([*path, key])))
    n = len(value)
    if s.get("maxProperties") is not None and n > s["maxProperties"]:
        errs.append(_too_many(p, n, s["maxProperties"]))
    if s.get("minProperties") is not None and n < s["minProperties"]:
        errs.append(invalid_value(p, n, f"{_in_body(p)} should have at least {s['minProperties']} properties"))
    if s.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                errs.append(required(render_path([*path, key]), "must not be empty"))
    extra = s.get("additionalProperties")
    skip_meta = root or s.get("x-kubernetes-embedded-resource")
    for key, v in value.items():
        if skip_meta and key in _ROOT_META_FIELDS and key not in props:
            continue
        child = props.get(key)
        if child is None and isinstance(extra, dict):
            child = extra
        if child is None:
            continue
        path.append(key)
        _validate_node(child, v, path, errs)
        path.pop()


def _validate_array(s: Obj, value: list[Any], path: list[str | int], errs: list[Cause]) -> None:
    p = render_path(path)
    n = len(value)
    if s.get("maxItems") is not None and n > s["maxItems"]:
        errs.append(_too_many(p, n, s["maxItems"]))
    if s.get("minItems") is not None and n < s["minItems"]:
        errs.append(invalid_value(p, n, f"{_in_body(p)} should have at least {s['minItems']} items"))
    list_type = s.get("x-kubernetes-list-type")
    if s.get("uniqueItems") or list_type == "set":
        seen: list[Any] = []
        for i, v in enumerate(value):
            if v in seen:
                errs.append(duplicate(render_path([*path, i]), v))
            else:
                seen.append(v)
    elif list_type == "map":
        keys = s.get("x-kubernetes-list-map-keys") or ()
        seen_keys: set[tuple[Any, ...]] = set()
        for i, v in enumerate(value):
            if isinstance(v, dict):
                k = tuple(repr(v.get(x)) for x in keys)
                if k in seen_keys:
                    errs.append(duplicate(render_path([*path, i]), {x: v.get(x) for x in keys}))
                seen_keys.add(k)
    items = s.get("items")
    if isinstance(items, dict):
        for i, v in enumerate(value):
            path.append(i)
            _validate_node(items, v, path, errs)
            path.pop()


def _validate_combinators(s: Obj, value: Any, path: list[str | int], errs: list[Cause], root: bool) -> None:
    p = render_path(path)
    for sub in s.get("allOf") or ():
        _validate_node(sub, value, path, errs, root)

    def passes(sub: Obj) -> bool:
        tmp: list[Cause] = []
        _validate_node(sub, value, list(path), tmp, root)
        return not tmp

    any_of = s.get("anyOf")
    if any_of and not any(passes(x) for x in any_of):
        errs.append(invalid_value(p, value, f"{_in_body(p)} must validate at least one schema (anyOf)"))
    one_of = s.get("oneOf")
    if one_of and sum(1 for x in one_of if passes(x)) != 1:
        errs.append(invalid_value(p, value, f"{_in_body(p)} must validate one and only one schema (oneOf)"))
    not_ = s.get("not")
    if isinstance(not_, dict) and passes(not_):
        errs.append(invalid_value(p, value, f"{_in_body(p)} must not validate the schema (not)"))


def _prune(s: Obj, value: Any, path: list[str | int], dropped: list[str] | None, root: bool = False) -> Any:
    """Copy-on-write pruning; records dropped paths when ``dropped`` is a list."""
    if isinstance(value, dict):
        if s.get("x-kubernetes-preserve-unknown-fields") and not s.get("properties") and not isinstance(s.get("additionalProperties"), dict):
            return value
        props = s.get("properties") or {}
        extra = s.get("additionalProperties")
        keep_meta = root or bool(s.get("x-kubernetes-embedded-resource"))
        preserve = bool(s.get("x-kubernetes-preserve-unknown-fields")) or extra is True
        out: Obj | None = None
        for key, v in value.items():
            child = props.get(key)
            if child is None and isinstance(extra, dict):
                child = extra
            if child is None:
                if preserve or (keep_meta and key in _ROOT_META_FIELDS):
                    continue
                if dropped is not None:
                    dropped.append(render_path([*path, key]))
                if out is None:
                    out = dict(value)
                del out[key]
                continue
            path.append(key)
            nv = _prune(child, v, path, dropped)
            path.pop()
            if nv is not v:
                if out is None:
                    out = dict(value)
                out[key] = nv
        return value if out is None else out
    if isinstance(value, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return value
        new: list[Any] = []
        changed = False
        for i, v in enumerate(value):
            path.append(i)
            nv = _prune(items, v, path, dropped)
            path.pop()
            changed = changed or nv is not v
            new.append(nv)
        return new if changed else value
    return value


def prune(schema: Obj, obj: Obj) -> Obj:
    """``obj`` without the fields its structural schema does not specify."""
    if not isinstance(schema, dict):
        return obj
    out: Obj = _prune(schema, obj, [], None, root=True)
    return out


def unknown_fields(schema: Obj, obj: Obj) -> list[str]:
    """Dotted paths ``prune`` would drop (``unknown field "spec.foo"`` in Strict mode)."""
    dropped: list[str] = []
    if isinstance(schema, dict):
        _prune(schema, obj, [], dropped, root=True)
    return dropped


def _defaults(s: Obj, value: Any) -> Any:
    if isinstance(value, dict):
        props = s.get("properties") or {}
        extra = s.get("additionalProperties")
        out: Obj | None = None
        for key, child in props.items():
            if not isinstance(child, dict):
                continue
            cur = value.get(key, _MISSING)
            if "default" in child and (cur is _MISSING or (cur is None and not child.get("nullable"))):
                if out is None:
                    out = dict(value)
                out[key] = copy.deepcopy(child["default"])
        src = out if out is not None else value
        for key, v in src.items():
            child = props.get(key)
            if child is None and isinstance(extra, dict):
                child = extra
            if not isinstance(child, dict) or v is None:
                continue
            nv = _defaults(child, v)
            if nv is not v:
                if out is None:
                    out = dict(value)
                out[key] = nv
        return value if out is None else out
    if isinstance(value, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return value
        new = [_defaults(items, v) if v is not None else v for v in value]
        return new if any(a is not b for a, b in zip(new, value)) else value
    return value


_MISSING = object()


def apply_schema_defaults(schema: Obj, obj: Obj) -> Obj:
    """``obj`` with the schema's ``default`` values filled in where fields are absent."""
    if not isinstance(schema, dict):
        return obj
    out: Obj = _defaults(schema, obj)
    return out


__all__ = [
    "apply_schema_defaults",
    "crd_status",
    "default_crd",
    "prune",
    "resources_for_crd",
    "storage_version",
    "unknown_fields",
    "validate_crd",
    "validate_custom_object",
]
