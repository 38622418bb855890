"""Object validation for built-in kinds: decode-time schema checks and semantic rules.

Two layers, mirroring what the upstream API server does on every write:

``check_schema`` / ``drop_unknown_fields`` / ``find_duplicate_fields``
    What Go's JSON decoding would reject or silently drop: wrong JSON types (400 BadRequest),
    unknown fields (``fieldValidation`` Strict → 400, Warn → warning header, Ignore → dropped)
    and duplicate keys (Strict only). Driven by the upstream OpenAPI definitions, compiled once
    per definition into small ``_Node`` trees so a write costs one cheap walk.

``validate`` / ``validate_object_meta``
    Semantic rules (422 Invalid) per kind: names, labels, pod specs, selectors, ports,
    immutable fields on update. Every function returns ``list[Cause]`` with upstream-style
    dotted paths (``spec.template.spec.containers[0].image``) and messages.

Everything here is pure: inputs are never mutated.
"""

from __future__ import annotations

import binascii
import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from kybernetes.api import csr as _csr
from kybernetes.api import vap as _vap
from kybernetes.api import labels as _labels
from kybernetes.api import openapi_defs
from kybernetes.api import quantity as _quantity
from kybernetes.api.errors import (
    FIELD_VALUE_INVALID,
    FIELD_VALUE_TYPE_INVALID,
    Cause,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
    too_long,
)

Obj = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Schema layer: compile upstream OpenAPI definitions into decoder-like check trees.
# --------------------------------------------------------------------------------------------

_ANY, _OBJECT, _MAP, _ARRAY, _STRING, _BYTES, _TIME, _INT, _NUMBER, _BOOL, _INTSTR, _QUANTITY = range(12)
# Kinds whose values never contain nested objects (nothing to drop or recurse into).
_LEAF = frozenset({_ANY, _STRING, _BYTES, _TIME, _INT, _NUMBER, _BOOL, _INTSTR, _QUANTITY})

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Definitions that accept any JSON value (no Go struct behind them).
_ANY_DEFS = frozenset({
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
})
_INTSTR_DEF = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"


class _Node:
    """One compiled schema node. ``go`` is the Go type name used in decode error messages."""

    __slots__ = ("kind", "props", "values", "items", "fmt", "go", "struct", "preserve")

    def __init__(self) -> None:
        self.kind = _ANY
        self.props: dict[str, _Node] = {}
        self.values: _Node | None = None
        self.items: _Node | None = None
        self.fmt = ""
        self.go = "interface {}"
        self.struct = ""
        self.preserve = False


_DEF_CACHE: dict[str, _Node] = {}


def _go_name(def_name: str) -> str:
    parts = def_name.split(".")
    return f"{parts[-2]}.{parts[-1]}" if len(parts) >= 2 else def_name


def _compiled_def(name: str) -> _Node:
    node = _DEF_CACHE.get(name)
    if node is not None:
        return node
    node = _Node()
    _DEF_CACHE[name] = node  # registered before filling in: definitions may be recursive
    node.go = _go_name(name)
    if name in _ANY_DEFS:
        node.kind = _ANY
    elif name == _INTSTR_DEF:
        node.kind = _INTSTR
    elif name == _QUANTITY_DEF:
        node.kind = _QUANTITY
    else:
        raw = openapi_defs.definitions().get(name, {})
        _fill(node, raw)
        node.go = _go_name(name)
        if node.kind == _OBJECT:
            node.struct = name.rsplit(".", 1)[-1]
    return node


def _compile(raw: dict[str, Any]) -> _Node:
    ref = openapi_defs.ref_name(raw)
    if ref is not None:
        return _compiled_def(ref)
    all_of = raw.get("allOf")
    if all_of and len(all_of) == 1 and "properties" not in raw:
        return _compile(all_of[0])
    node = _Node()
    _fill(node, raw)
    return node


def _primary_type(raw: dict[str, Any]) -> str:
    t = raw.get("type")
    if isinstance(t, list):
        for x in t:
            if x != "null":
                return str(x)
        return ""
    return str(t or "")


def _fill(node: _Node, raw: dict[str, Any]) -> None:
    node.preserve = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
    if raw.get("x-kubernetes-int-or-string"):
        node.kind, node.go = _INTSTR, "intstr.IntOrString"
        return
    t = _primary_type(raw)
    fmt = str(raw.get("format") or "")
    node.fmt = fmt
    if t == "object":
        props = raw.get("properties")
        extra = raw.get("additionalProperties")
        if props is not None or (extra is None and not node.preserve):
            node.kind = _OBJECT
            node.props = {k: _compile(v) for k, v in (props or {}).items()}
            node.go = "struct"
        elif isinstance(extra, dict):
            node.kind = _MAP
            node.values = _compile(extra)
            node.go = f"map[string]{node.values.go}"
        else:
            node.kind, node.go = _ANY, "map[string]interface {}"
    elif t == "array":
        node.kind = _ARRAY
        it = raw.get("items")
        node.items = _compile(it) if isinstance(it, dict) else _Node()
        node.go = f"[]{node.items.go}"
    elif t == "string":
        node.kind = {"byte": _BYTES, "date-time": _TIME}.get(fmt, _STRING)
        node.go = {"byte": "[]uint8", "date-time": "v1.Time"}.get(fmt, "string")
    elif t == "integer":
        node.kind, node.go = _INT, fmt if fmt in _INT_RANGES else "int64"
        node.fmt = node.go
    elif t == "number":
        node.kind, node.go = _NUMBER, "float64"
    elif t == "boolean":
        node.kind, node.go = _BOOL, "bool"
    else:
        node.kind = _ANY


@functools.lru_cache(maxsize=512)
def _root(group: str, version: str, kind: str) -> _Node | None:
    name = openapi_defs.definition_name_for(group, version, kind)
    return _compiled_def(name) if name else None


@dataclass
class SchemaResult:
    """Outcome of ``check_schema``: decode type errors (400) and unknown field paths."""

    type_errors: list[Cause] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.type_errors and not self.unknown_fields


def render_path(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """``["spec", "containers", 0, "image"]`` -> ``spec.containers[0].image``."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        else:
            out.append(f".{p}" if out else p)
    return "".join(out)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(res: SchemaResult, path: list[str | int], struct: str, what: str, go: str) -> None:
    go_path = ".".join(p for p in path if isinstance(p, str))
    if struct and go_path:
        msg = f"json: cannot unmarshal {what} into Go struct field {struct}.{go_path} of type {go}"
    else:
        msg = f"json: cannot unmarshal {what} into Go value of type {go}"
    res.type_errors.append(Cause(FIELD_VALUE_TYPE_INVALID, msg, render_path(path)))


def _plain_error(res: SchemaResult, path: list[str | int], msg: str) -> None:
    res.type_errors.append(Cause(FIELD_VALUE_TYPE_INVALID, msg, render_path(path)))


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_BASE64_CHARS = re.compile(r"[^A-Za-z0-9+/=]")


def base64_error(s: str) -> str | None:
    try:
        binascii.a2b_base64(s.encode(), strict_mode=True)
        return None
    except (binascii.Error, ValueError):
        m = _BASE64_CHARS.search(s)
        pos = m.start() if m else len(s) - (len(s) % 4 or 4) if s else 0
        return f"illegal base64 data at input byte {pos}"


def _check(node: _Node, value: Any, path: list[str | int], res: SchemaResult, struct: str) -> None:
    """Check ``value`` (never None) against ``node``; append problems to ``res``."""
    k = node.kind
    if k == _ANY:
        return
    if k == _OBJECT:
        if type(value) is not dict:
            _type_error(res, path, struct, _json_type(value), node.go if node.go != "struct" else "object")
            return
        props = node.props
        sname = node.struct or struct
        for key, v in value.items():
            child = props.get(key)
            if child is None:
                if not node.preserve:
                    path.append(key)
                    res.unknown_fields.append(render_path(path))
                    path.pop()
                continue
            if v is None:
                continue
            ck = child.kind
            if (ck == _STRING and type(v) is str) or (ck == _BOOL and type(v) is bool):
                continue
            path.append(key)
            _check(child, v, path, res, sname)
            path.pop()
        return
    if k == _MAP:
        if type(value) is not dict:
            _type_error(res, path, struct, _json_type(value), node.go)
            return
        vn = node.values
        assert vn is not None
        if vn.kind == _STRING:
            for key, v in value.items():
                if v is not None and type(v) is not str:
                    _type_error(res, path, struct, _json_type(v), "string")
            return
        for key, v in value.items():
            if v is not None:
                path.append(key)
                _check(vn, v, path, res, struct)
                path.pop()
        return
    if k == _ARRAY:
        if type(value) is not list:
            _type_error(res, path, struct, _json_type(value), node.go)
            return
        it = node.items
        assert it is not None
        if it.kind == _ANY:
            return
        for i, v in enumerate(value):
            if v is not None:
                path.append(i)
                _check(it, v, path, res, struct)
                path.pop()
        return
    _check_scalar(node, value, path, res, struct)


def _check_scalar(node: _Node, value: Any, path: list[str | int], res: SchemaResult, struct: str) -> None:
    k = node.kind
    tv = type(value)
    if k == _STRING:
        if tv is not str:
            _type_error(res, path, struct, _json_type(value), "string")
    elif k == _BOOL:
        if tv is not bool:
            _type_error(res, path, struct, _json_type(value), "bool")
    elif k == _INT:
        _check_int(node.fmt, value, path, res, struct)
    elif k == _NUMBER:
        if tv is bool or tv not in (int, float):
            _type_error(res, path, struct, _json_type(value), "float64")
    elif k == _INTSTR:
        if tv is not str:
            _check_int("int32", value, path, res, struct)
    elif k == _QUANTITY:
        if tv is str:
            if parse_quantity(value) is None:
                _plain_error(res, path, QUANTITY_FORMAT_MESSAGE)
        elif tv is bool or tv not in (int, float):
            _type_error(res, path, struct, _json_type(value), "resource.Quantity")
    elif k == _TIME:
        if tv is not str:
            _type_error(res, path, struct, _json_type(value), "v1.Time")
        elif not _RFC3339.match(value):
            _plain_error(res, path, f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse')
    elif k == _BYTES:
        if tv is not str:
            _type_error(res, path, struct, _json_type(value), "[]uint8")
        else:
            err = base64_error(value)
            if err:
                _plain_error(res, path, err)


def _check_int(fmt: str, value: Any, path: list[str | int], res: SchemaResult, struct: str) -> None:
    tv = type(value)
    go = fmt or "int64"
    if tv is int:
        lo, hi = _INT_RANGES.get(go, _INT_RANGES["int64"])
        if not lo <= value <= hi:
            _type_error(res, path, struct, f"number {value}", go)
    elif tv is float:
        _type_error(res, path, struct, f"number {value!r}", go)
    else:
        _type_error(res, path, struct, _json_type(value), go)


def check_schema(group: str, version: str, kind: str, obj: Any) -> SchemaResult:
    """Decode-time check of ``obj`` against the upstream schema of group/version/kind.

    Unknown kinds (custom resources) yield an empty result; use ``crd`` helpers for them.
    """
    res = SchemaResult()
    root = _root(group, version, kind)
    if root is None:
        return res
    if type(obj) is not dict:
        _type_error(res, [], "", _json_type(obj), root.go)
        return res
    _check(root, obj, [], res, root.struct)
    return res


def _drop(node: _Node, value: Any) -> Any:
    """Copy-on-write removal of unknown fields: unchanged subtrees are returned as is."""
    k = node.kind
    if k == _OBJECT and type(value) is dict:
        out: dict[str, Any] | None = None
        for key, v in value.items():
            child = node.props.get(key)
            if child is None:
                if node.preserve:
                    continue
                if out is None:
                    out = dict(value)
                del out[key]
                continue
            if v is None or child.kind in _LEAF:
                continue
            nv = _drop(child, v)
            if nv is not v:
                if out is None:
                    out = dict(value)
                out[key] = nv
        return value if out is None else out
    if k == _MAP and type(value) is dict:
        vn = node.values
        assert vn is not None
        if vn.kind in _LEAF:
            return value
        changed = {key: nv for key, v in value.items() if v is not None and (nv := _drop(vn, v)) is not v}
        return {**value, **changed} if changed else value
    if k == _ARRAY and type(value) is list:
        it = node.items
        assert it is not None
        if it.kind in _LEAF:
            return value
        new = [_drop(it, v) if v is not None else v for v in value]
        return new if any(a is not b for a, b in zip(new, value)) else value
    return value


def drop_unknown_fields(group: str, version: str, kind: str, obj: Obj) -> Obj:
    """``obj`` without the fields Go decoding would ignore. The input is not modified; when
    nothing is unknown the very same object is returned."""
    root = _root(group, version, kind)
    if root is None or type(obj) is not dict:
        return obj
    out: Obj = _drop(root, obj)
    return out


class _PairsDict(dict):  # type: ignore[type-arg]
    """A dict that remembers which keys appeared more than once while parsing."""

    __slots__ = ("dups",)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _PairsDict:
    d = _PairsDict()
    dups: list[str] = []
    for k, v in pairs:
        if k in d and k not in dups:
            dups.append(k)
        d[k] = v
    d.dups = dups
    return d


def find_duplicate_fields(raw_json: bytes) -> list[str]:
    """Dotted paths of keys repeated within one JSON object (Strict ``duplicate field "x"``).

    Invalid JSON yields ``[]`` (the normal decoder reports it)."""
    try:
        doc = json.loads(raw_json, object_pairs_hook=_pairs_hook)
    except ValueError:
        return []
    out: list[str] = []
    _collect_dups(doc, [], out)
    return out


def _collect_dups(value: Any, path: list[str | int], out: list[str]) -> None:
    if isinstance(value, _PairsDict):
        for k in value.dups:
            out.append(render_path([*path, k]))
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                path.append(k)
                _collect_dups(v, path, out)
                path.pop()
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                path.append(i)
                _collect_dups(v, path, out)
                path.pop()


# --------------------------------------------------------------------------------------------
# Quantities (enough to compare requests with limits).
# --------------------------------------------------------------------------------------------

QUANTITY_FORMAT_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (``"500m"``, ``"1Gi"``, ``"1e3"``, ``2``) as a Decimal, else None."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        q = _quantity.parse_quantity(value)
    except (ValueError, TypeError):
        return None
    return Decimal(q.numerator) / Decimal(q.denominator)


# --------------------------------------------------------------------------------------------
# Name, label and key syntax (apimachinery validation rules; messages as upstream words them).
# --------------------------------------------------------------------------------------------

DNS1123_SUBDOMAIN = "dns1123subdomain"
DNS1123_LABEL = "dns1123label"
DNS1035_LABEL = "dns1035label"
PATH_SEGMENT = "pathsegment"
NO_NAME = "none"

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(f"^{_LABEL_FMT}$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")

DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_ENV_NAME_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def is_dns1123_subdomain(value: str) -> list[str]:
    return _labels.dns1123_subdomain_errors(value)


def is_dns1123_label(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(DNS1123_LABEL_MSG)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1035_RE.match(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def is_path_segment_name(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def is_qualified_name(value: str) -> list[str]:
    return _labels.qualified_name_errors(value)


def is_label_value(value: str) -> list[str]:
    return _labels.label_value_errors(value)


def is_config_key(value: str) -> list[str]:
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY_RE.match(value):
        errs.append(_CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


_NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {
    DNS1123_SUBDOMAIN: is_dns1123_subdomain,
    DNS1123_LABEL: is_dns1123_label,
    DNS1035_LABEL: is_dns1035_label,
    PATH_SEGMENT: is_path_segment_name,
}

_RBAC = "rbac.authorization.k8s.io"
_NAME_RULES: dict[tuple[str, str], str] = {
    ("", "Namespace"): DNS1123_LABEL,
    ("", "Service"): DNS1035_LABEL,
    (_RBAC, "Role"): PATH_SEGMENT,
    (_RBAC, "ClusterRole"): PATH_SEGMENT,
    (_RBAC, "RoleBinding"): PATH_SEGMENT,
    (_RBAC, "ClusterRoleBinding"): PATH_SEGMENT,
    ("certificates.k8s.io", "CertificateSigningRequest"): PATH_SEGMENT,  # kubelets name them node-csr-<base64url>
    ("authentication.k8s.io", "TokenReview"): NO_NAME,
    ("authentication.k8s.io", "SelfSubjectReview"): NO_NAME,
    ("authorization.k8s.io", "SubjectAccessReview"): NO_NAME,
    ("authorization.k8s.io", "SelfSubjectAccessReview"): NO_NAME,
    ("authorization.k8s.io", "SelfSubjectRulesReview"): NO_NAME,
    ("authorization.k8s.io", "LocalSubjectAccessReview"): NO_NAME,
}


def name_rule_for(group: str, kind: str) -> str:
    """The name syntax upstream enforces for a kind (DNS-1123 subdomain unless listed)."""
    return _NAME_RULES.get((group, kind), DNS1123_SUBDOMAIN)


def validate_name(rule: str, name: str, prefix: bool = False) -> list[str]:
    """Messages for ``name`` under ``rule``; ``prefix`` validates a generateName prefix."""
    if rule == NO_NAME:
        return []
    if prefix and rule != PATH_SEGMENT and len(name) > 1 and name.endswith("-"):
        name = name[:-1] + "a"
    return _NAME_CHECKS.get(rule, is_dns1123_subdomain)(name)


# --------------------------------------------------------------------------------------------
# Small helpers for semantic validation.
# --------------------------------------------------------------------------------------------

def _fmt_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return ""


def _invalid(path: str, value: Any, detail: str) -> Cause:
    """Like ``errors.invalid_value`` but renders maps and lists as compact JSON."""
    if isinstance(value, (dict, list)):
        return Cause(FIELD_VALUE_INVALID, f"Invalid value: {_fmt_value(value)}: {detail}", path)
    return invalid_value(path, value, detail)


def _not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", f'Not found: "{value}"', path)


def _immutable(path: str, value: Any) -> Cause:
    return _invalid(path, value, "field is immutable")


def _dict(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _non_negative(obj: Obj, key: str, path: str) -> list[Cause]:
    v = obj.get(key)
    if _is_int(v) and v < 0:
        return [invalid_value(f"{path}.{key}", v, "must be greater than or equal to 0")]
    return []


def _port_range(path: str, v: Any) -> list[Cause]:
    if not _is_int(v) or not 1 <= v <= 65535:
        return [invalid_value(path, v, "must be between 1 and 65535, inclusive")]
    return []


def is_valid_port_name(name: str) -> list[str]:
    errs = [_max_len(15)] if len(name) > 15 else []
    if not re.match(r"^[-a-z0-9]+$", name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _check_enum(obj: Obj, key: str, path: str, allowed: tuple[str, ...], require: bool = False) -> list[Cause]:
    v = obj.get(key)
    if v is None or v == "":
        return [required(f"{path}.{key}")] if require else []
    if v not in allowed:
        return [not_supported(f"{path}.{key}", v, allowed)]
    return []


# --------------------------------------------------------------------------------------------
# ObjectMeta.
# --------------------------------------------------------------------------------------------

_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def validate_object_meta(meta: Any, namespaced: bool | None, name_rule: str) -> list[Cause]:
    """Upstream ``ValidateObjectMeta``. ``namespaced=None`` skips the namespace presence rule."""
    if not isinstance(meta, dict):
        meta = {}
    errs: list[Cause] = []
    name = meta.get("name") or ""
    gen = meta.get("generateName") or ""
    if name_rule != NO_NAME:
        if gen:
            errs += [invalid_value("metadata.generateName", gen, m) for m in validate_name(name_rule, gen, True)]
        if not name and not gen:
            errs.append(required("metadata.name", "name or generateName is required"))
        elif name:
            errs += [invalid_value("metadata.name", name, m) for m in validate_name(name_rule, name)]
    errs += _validate_namespace_field(meta.get("namespace") or "", namespaced)
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    errs += _validate_finalizers(meta.get("finalizers"))
    errs += _validate_owner_refs(meta.get("ownerReferences"))
    return errs


def _validate_namespace_field(ns: str, namespaced: bool | None) -> list[Cause]:
    if namespaced is True:
        if not ns:
            return [required("metadata.namespace")]
        return [invalid_value("metadata.namespace", ns, m) for m in is_dns1123_label(ns)]
    if namespaced is False and ns:
        return [forbidden("metadata.namespace", "not allowed on this type")]
    return []


def validate_labels(labels: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for k, v in _dict(labels).items():
        errs += [invalid_value(path, k, m) for m in is_qualified_name(k)]
        if not isinstance(v, str):
            continue
        errs += [invalid_value(path, v, m) for m in is_label_value(v)]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    total = 0
    for k, v in _dict(annotations).items():
        errs += [invalid_value(path, k, m) for m in is_qualified_name(k.lower())]
        total += len(k) + len(v if isinstance(v, str) else "")
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _validate_finalizers(finalizers: Any) -> list[Cause]:
    errs: list[Cause] = []
    for i, f in enumerate(_list(finalizers)):
        p = f"metadata.finalizers[{i}]"
        if not isinstance(f, str):
            continue
        msgs = is_qualified_name(f)
        if msgs:
            errs += [invalid_value(p, f, m) for m in msgs]
        elif "/" not in f and f not in _STANDARD_FINALIZERS:
            errs.append(invalid_value(p, f, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def _validate_owner_refs(refs: Any) -> list[Cause]:
    errs: list[Cause] = []
    controllers: list[str] = []
    for i, ref in enumerate(_list(refs)):
        p = f"metadata.ownerReferences[{i}]"
        ref = _dict(ref)
        for key, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(key):
                errs.append(invalid_value(f"{p}.{key}", ref.get(key) or "", f"{what} must not be empty"))
        if ref.get("controller") is True:
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        errs.append(invalid_value("metadata.ownerReferences", "", "Only one reference can have Controller set to true. Found \"true\" in references for " + " and ".join(controllers)))
    return errs


# --------------------------------------------------------------------------------------------
# Label selectors.
# --------------------------------------------------------------------------------------------

_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel: Any, path: str) -> list[Cause]:
    sel = _dict(sel)
    errs = validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(_list(sel.get("matchExpressions"))):
        p = f"{path}.matchExpressions[{i}]"
        expr = _dict(expr)
        op = expr.get("operator")
        values = _list(expr.get("values"))
        if op in ("In", "NotIn") and not values:
            errs.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            errs.append(forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        elif op not in _SELECTOR_OPS:
            errs.append(invalid_value(f"{p}.operator", op, "not a valid selector operator"))
        key = expr.get("key") or ""
        errs += [invalid_value(f"{p}.key", key, m) for m in is_qualified_name(key)]
    return errs


def selector_is_empty(sel: Any) -> bool:
    sel = _dict(sel)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def selector_matches(sel: Any, labels: Any) -> bool:
    """LabelSelector semantics (matchLabels AND matchExpressions)."""
    return _labels.label_selector_matches(_dict(sel), _dict(labels))


# --------------------------------------------------------------------------------------------
# Pods and pod templates.
# --------------------------------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
_TOLERATION_OPS = ("Equal", "Exists")


def validate_pod_spec(spec: Any, path: str, extra_volumes: frozenset[str] = frozenset()) -> list[Cause]:
    """Upstream ``ValidatePodSpec`` (the commonly hit subset).

    ``extra_volumes`` names volumes that exist without being listed (a StatefulSet's
    volumeClaimTemplates)."""
    spec = _dict(spec)
    errs: list[Cause] = []
    volumes, verrs = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    volumes = volumes | extra_volumes
    errs += verrs
    containers = _list(spec.get("containers"))
    if not containers:
        errs.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(_list(spec.get(key))):
            errs += _validate_container(_dict(c), f"{path}.{key}[{i}]", seen, volumes)
    errs += _check_enum(spec, "restartPolicy", path, _RESTART_POLICIES)
    errs += _check_enum(spec, "dnsPolicy", path, _DNS_POLICIES)
    for key in ("terminationGracePeriodSeconds",):
        errs += _non_negative(spec, key, path)
    ads = spec.get("activeDeadlineSeconds")
    if _is_int(ads) and ads <= 0:
        errs.append(invalid_value(f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"))
    for i, t in enumerate(_list(spec.get("tolerations"))):
        errs += _validate_toleration(_dict(t), f"{path}.tolerations[{i}]")
    errs += _validate_labels_map(spec.get("nodeSelector"), f"{path}.nodeSelector")
    return errs


def _validate_labels_map(m: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for k, v in _dict(m).items():
        errs += [invalid_value(path, k, msg) for msg in is_qualified_name(k)]
        if isinstance(v, str):
            errs += [invalid_value(f"{path}[{k}]", v, msg) for msg in is_label_value(v)]
    return errs


def _validate_toleration(t: Obj, path: str) -> list[Cause]:
    errs = _check_enum(t, "operator", path, _TOLERATION_OPS) + _check_enum(t, "effect", path, _TAINT_EFFECTS)
    key = t.get("key") or ""
    if key:
        errs += [invalid_value(f"{path}.key", key, m) for m in is_qualified_name(key)]
    elif t.get("operator") != "Exists":
        errs.append(invalid_value(f"{path}.operator", t.get("operator") or "", "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
    if t.get("operator") == "Exists" and t.get("value"):
        errs.append(invalid_value(f"{path}.operator", t.get("value"), "value must be empty when `operator` is 'Exists'"))
    return errs


def _validate_volumes(vols: Any, path: str) -> tuple[set[str], list[Cause]]:
    names: set[str] = set()
    errs: list[Cause] = []
    for i, v in enumerate(_list(vols)):
        v = _dict(v)
        p = f"{path}[{i}]"
        name = v.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        else:
            errs += [invalid_value(f"{p}.name", name, m) for m in is_dns1123_label(name)]
            if name in names:
                errs.append(duplicate(f"{p}.name", name))
            names.add(name)
        sources = [k for k in v if k != "name" and v[k] is not None]
        if not sources:
            errs.append(required(p, "must specify a volume type"))
        elif len(sources) > 1:
            errs.append(forbidden(f"{p}.{sources[1]}", "may not specify more than 1 volume type"))
    return names, errs


def _validate_container(c: Obj, path: str, seen: set[str], volumes: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs += [invalid_value(f"{path}.name", name, m) for m in is_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(f"{path}.name", name))
        seen.add(name)
    image = c.get("image")
    if not image or (isinstance(image, str) and not image.strip()):
        errs.append(required(f"{path}.image"))
    errs += _check_enum(c, "imagePullPolicy", path, _PULL_POLICIES)
    errs += _validate_container_ports(c.get("ports"), f"{path}.ports")
    errs += _validate_env(c.get("env"), f"{path}.env")
    errs += _validate_mounts(c.get("volumeMounts"), f"{path}.volumeMounts", volumes)
    errs += _validate_resources(c.get("resources"), f"{path}.resources")
    return errs


def _validate_container_ports(ports: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(_list(ports)):
        port = _dict(port)
        p = f"{path}[{i}]"
        pname = port.get("name")
        if pname:
            errs += [invalid_value(f"{p}.name", pname, m) for m in is_valid_port_name(pname)]
            if pname in names:
                errs.append(duplicate(f"{p}.name", pname))
            names.add(pname)
        cp = port.get("containerPort")
        if cp is None or cp == 0:
            errs.append(required(f"{p}.containerPort"))
        else:
            errs += _port_range(f"{p}.containerPort", cp)
        hp = port.get("hostPort")
        if hp:
            errs += _port_range(f"{p}.hostPort", hp)
        errs += _check_enum(port, "protocol", p, _PROTOCOLS)
    return errs


def _validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, e in enumerate(_list(env)):
        e = _dict(e)
        p = f"{path}[{i}]"
        name = e.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        elif "=" in name or any(not 32 <= ord(ch) <= 126 for ch in name):
            errs.append(invalid_value(f"{p}.name", name, _ENV_NAME_MSG))
        if e.get("value") and e.get("valueFrom"):
            errs.append(invalid_value(f"{p}.valueFrom", "", "may not be specified when `value` is not empty"))
    return errs


def _validate_mounts(mounts: Any, path: str, volumes: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    paths: set[str] = set()
    for i, m in enumerate(_list(mounts)):
        m = _dict(m)
        p = f"{path}[{i}]"
        name = m.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        elif name not in volumes:
            errs.append(_not_found(f"{p}.name", name))
        mp = m.get("mountPath") or ""
        if not mp:
            errs.append(required(f"{p}.mountPath"))
        elif mp in paths:
            errs.append(invalid_value(f"{p}.mountPath", mp, "must be unique"))
        paths.add(mp)
        sub = m.get("subPath") or ""
        if sub.startswith("/"):
            errs.append(invalid_value(f"{p}.subPath", sub, "must be a relative path"))
        elif ".." in sub.split("/"):
            errs.append(invalid_value(f"{p}.subPath", sub, "must not contain '..'"))
    return errs


def _validate_resources(res: Any, path: str) -> list[Cause]:
    res = _dict(res)
    errs: list[Cause] = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for key in ("limits", "requests"):
        parsed[key] = {}
        for rname, q in _dict(res.get(key)).items():
            p = f"{path}.{key}[{rname}]"
            val = parse_quantity(q)
            if val is None:
                errs.append(invalid_value(p, q, QUANTITY_FORMAT_MESSAGE))
                continue
            if val < 0:
                errs.append(invalid_value(p, q, "must be greater than or equal to 0"))
            parsed[key][rname] = val
    for rname, req in parsed["requests"].items():
        lim = parsed["limits"].get(rname)
        if lim is not None and req > lim:
            raw_req = _dict(res.get("requests"))[rname]
            raw_lim = _dict(res.get("limits"))[rname]
            errs.append(invalid_value(f"{path}.requests[{rname}]", str(raw_req), f"must be less than or equal to {rname} limit of {raw_lim}"))
    return errs


def validate_pod_template(tpl: Any, path: str, allowed_restart: tuple[str, ...] | None = None,
                          extra_volumes: frozenset[str] = frozenset()) -> list[Cause]:
    """A PodTemplateSpec at ``path`` (``spec.template``)."""
    tpl = _dict(tpl)
    meta = _dict(tpl.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    spec = _dict(tpl.get("spec"))
    errs += validate_pod_spec(spec, f"{path}.spec", extra_volumes)
    rp = spec.get("restartPolicy")
    if allowed_restart and rp and rp in _RESTART_POLICIES and rp not in allowed_restart:
        errs.append(not_supported(f"{path}.spec.restartPolicy", rp, allowed_restart))
    return errs


_POD_MUTABLE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _pod_spec_comparable(spec: Obj, old: Obj) -> Obj:
    """``spec`` with the fields a pod update may change replaced by ``old``'s values."""
    out = dict(spec)
    for key in ("containers", "initContainers"):
        new_cs, old_cs = _list(spec.get(key)), _list(old.get(key))
        if new_cs and len(new_cs) == len(old_cs):
            out[key] = [{**_dict(n), "image": _dict(o).get("image")} for n, o in zip(new_cs, old_cs)]
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "schedulingGates"):
        if key in old:
            out[key] = old[key]
        else:
            out.pop(key, None)
    old_tol = _list(old.get("tolerations"))
    new_tol = _list(spec.get("tolerations"))
    if all(t in new_tol for t in old_tol):  # additions only
        if "tolerations" in old:
            out["tolerations"] = old["tolerations"]
        else:
            out.pop("tolerations", None)
    if not old.get("nodeName") and spec.get("nodeName"):
        out["nodeName"] = old.get("nodeName")  # binding fills it in once
    return {k: v for k, v in out.items() if v is not None}


def _validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = validate_pod_spec(obj.get("spec"), "spec")
    if old is not None:
        spec, old_spec = _dict(obj.get("spec")), _dict(old.get("spec"))
        if _pod_spec_comparable(spec, old_spec) != {k: v for k, v in old_spec.items() if v is not None}:
            errs.append(forbidden("spec", _POD_MUTABLE_MSG))
    return errs


# --------------------------------------------------------------------------------------------
# Workloads.
# --------------------------------------------------------------------------------------------

_PERCENT_RE = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%', regex used for validation is '[0-9]+%')"
)


def _int_or_percent_value(v: Any) -> int | None:
    if _is_int(v):
        return int(v)
    if isinstance(v, str) and _PERCENT_RE.match(v):
        return int(v[:-1])
    return None


def _validate_int_or_percent(v: Any, path: str) -> list[Cause]:
    if v is None:
        return []
    if isinstance(v, str):
        if not _PERCENT_RE.match(v):
            return [invalid_value(path, v, _PERCENT_MSG)]
        if int(v[:-1]) > 100:
            return [invalid_value(path, v, "must not be greater than 100%")]
        return []
    if _is_int(v) and v < 0:
        return [invalid_value(path, v, "must be greater than or equal to 0")]
    return []


def _validate_selector_and_template(spec: Obj, kind: str, restart: tuple[str, ...] | None,
                                    extra_volumes: frozenset[str] = frozenset()) -> list[Cause]:
    errs: list[Cause] = []
    sel = spec.get("selector")
    if sel is None:
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(sel, "spec.selector")
        if selector_is_empty(sel):
            errs.append(_invalid("spec.selector", sel, f"empty selector is invalid for {kind}"))
    tpl = spec.get("template")
    if tpl is None:
        errs.append(required("spec.template"))
        return errs
    labels = _dict(_dict(_dict(tpl).get("metadata")).get("labels"))
    if sel is not None and not selector_is_empty(sel) and not selector_matches(sel, labels):
        errs.append(_invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    errs += validate_pod_template(tpl, "spec.template", restart, extra_volumes)
    return errs


def _validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec")
    errs += _validate_selector_and_template(spec, "deployment", ("Always",))
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        errs += _non_negative(spec, key, "spec")
    pds = spec.get("progressDeadlineSeconds")
    mrs = spec.get("minReadySeconds")
    if _is_int(pds) and _is_int(mrs) and pds <= mrs:
        errs.append(invalid_value("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    errs += _validate_deployment_strategy(_dict(spec.get("strategy")))
    if old is not None:
        old_sel = _dict(old.get("spec")).get("selector")
        if spec.get("selector") != old_sel:
            errs.append(_immutable("spec.selector", spec.get("selector")))
    return errs


def _validate_deployment_strategy(strategy: Obj) -> list[Cause]:
    errs = _check_enum(strategy, "type", "spec.strategy", ("Recreate", "RollingUpdate"))
    ru = strategy.get("rollingUpdate")
    if ru is None:
        return errs
    if strategy.get("type") == "Recreate":
        errs.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
        return errs
    ru = _dict(ru)
    p = "spec.strategy.rollingUpdate"
    errs += _validate_int_or_percent(ru.get("maxUnavailable"), f"{p}.maxUnavailable")
    errs += _validate_int_or_percent(ru.get("maxSurge"), f"{p}.maxSurge")
    if _int_or_percent_value(ru.get("maxSurge")) == 0 and _int_or_percent_value(ru.get("maxUnavailable")) == 0:
        errs.append(invalid_value(f"{p}.maxUnavailable", ru.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0"))
    return errs


def _validate_replicaset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec") + _non_negative(spec, "minReadySeconds", "spec")
    errs += _validate_selector_and_template(spec, "replicaset", ("Always",))
    if old is not None and spec.get("selector") != _dict(old.get("spec")).get("selector"):
        errs.append(_immutable("spec.selector", spec.get("selector")))
    return errs


def _validate_daemonset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs = _validate_selector_and_template(spec, "daemonset", ("Always",))
    strategy = _dict(spec.get("updateStrategy"))
    errs += _check_enum(strategy, "type", "spec.updateStrategy", ("OnDelete", "RollingUpdate"))
    ru = _dict(strategy.get("rollingUpdate"))
    p = "spec.updateStrategy.rollingUpdate"
    errs += _validate_int_or_percent(ru.get("maxUnavailable"), f"{p}.maxUnavailable")
    errs += _validate_int_or_percent(ru.get("maxSurge"), f"{p}.maxSurge")
    if ru and _int_or_percent_value(ru.get("maxSurge")) == 0 and _int_or_percent_value(ru.get("maxUnavailable")) == 0:
        errs.append(invalid_value(f"{p}.maxUnavailable", ru.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0"))
    if old is not None and spec.get("selector") != _dict(old.get("spec")).get("selector"):
        errs.append(_immutable("spec.selector", spec.get("selector")))
    return errs


_STS_MUTABLE = (
    "replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds", "revisionHistoryLimit",
)
_STS_FORBIDDEN_MSG = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def _validate_statefulset(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec")
    errs += _check_enum(spec, "podManagementPolicy", "spec", ("OrderedReady", "Parallel"))
    errs += _check_enum(_dict(spec.get("updateStrategy")), "type", "spec.updateStrategy", ("OnDelete", "RollingUpdate"))
    claims = frozenset(
        str(_dict(_dict(t).get("metadata")).get("name"))
        for t in _list(spec.get("volumeClaimTemplates"))
        if _dict(_dict(t).get("metadata")).get("name")
    )
    errs += _validate_selector_and_template(spec, "statefulset", ("Always",), claims)
    if old is not None:
        old_spec = _dict(old.get("spec"))
        strip = lambda s: {k: v for k, v in s.items() if k not in _STS_MUTABLE}  # noqa: E731
        if strip(spec) != strip(old_spec):
            errs.append(forbidden("spec", _STS_FORBIDDEN_MSG))
    return errs


def _validate_job_spec(spec: Obj, path: str, manual_selector: bool = False) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        errs += _non_negative(spec, key, path)
    errs += _check_enum(spec, "completionMode", path, ("Indexed", "NonIndexed"))
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    tpl = spec.get("template")
    if tpl is None:
        errs.append(required(f"{path}.template"))
        return errs
    tspec = _dict(_dict(tpl).get("spec"))
    rp = tspec.get("restartPolicy")
    if rp not in ("OnFailure", "Never"):
        errs.append(not_supported(f"{path}.template.spec.restartPolicy", rp or "", ("OnFailure", "Never")))
    errs += validate_pod_template(tpl, f"{path}.template")
    sel = spec.get("selector")
    if sel is not None:
        errs += validate_label_selector(sel, f"{path}.selector")
        labels = _dict(_dict(_dict(tpl).get("metadata")).get("labels"))
        if not selector_is_empty(sel) and not selector_matches(sel, labels):
            errs.append(_invalid(f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    return errs


def _validate_job(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs = _validate_job_spec(spec, "spec")
    if old is not None:
        old_spec = _dict(old.get("spec"))
        for key in ("selector", "template", "completionMode"):
            if key in old_spec and spec.get(key) != old_spec.get(key):
                errs.append(_immutable(f"spec.{key}", spec.get(key)))
        oc, nc = old_spec.get("completions"), spec.get("completions")
        if oc != nc and spec.get("completionMode") != "Indexed":
            errs.append(_immutable("spec.completions", nc))
    return errs


_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_CRON_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("dom", 1, 31, {}),
                ("month", 1, 12, {m: i + 1 for i, m in enumerate(
                    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
                ("dow", 0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}))
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def parse_cron_error(schedule: str) -> str | None:
    """Why ``schedule`` is not a standard 5-field cron spec or ``@macro``; None when valid."""
    s = schedule.strip()
    if s.startswith("@"):
        if s in _CRON_MACROS:
            return None
        if s.startswith("@every "):
            return None if _DURATION_RE.match(s[7:].strip()) else f"failed to parse duration {s}"
        return f"unrecognized descriptor: {s}"
    fields = s.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for text, (_, lo, hi, names) in zip(fields, _CRON_FIELDS):
        for part in text.split(","):
            err = _cron_part_error(part, lo, hi, names)
            if err:
                return err
    return None


def _cron_part_error(part: str, lo: int, hi: int, names: dict[str, int]) -> str | None:
    rng, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"failed to parse int from {step}" if not step.isdigit() else f"step of range should be a positive number: {part}"
    if rng in ("*", "?"):
        return None
    bounds = rng.split("-")
    if len(bounds) > 2:
        return f"too many hyphens: {part}"
    vals: list[int] = []
    for b in bounds:
        if b.lower() in names:
            vals.append(names[b.lower()])
        elif b.isdigit():
            vals.append(int(b))
        else:
            return f"failed to parse int from {b}"
    if vals[0] < lo:
        return f"beginning of range ({vals[0]}) below minimum ({lo}): {part}"
    if vals[-1] > hi:
        return f"end of range ({vals[-1]}) above maximum ({hi}): {part}"
    if vals[0] > vals[-1]:
        return f"beginning of range ({vals[0]}) beyond end of range ({vals[-1]}): {part}"
    return None


def _validate_cronjob(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    name = _dict(obj.get("metadata")).get("name") or ""
    if len(name) > 52:
        errs.append(invalid_value("metadata.name", name, _max_len(52)))
    sched = spec.get("schedule")
    if not sched:
        errs.append(required("spec.schedule"))
    elif isinstance(sched, str):
        if "TZ=" in sched:
            errs.append(invalid_value("spec.schedule", sched, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
        else:
            err = parse_cron_error(sched)
            if err:
                errs.append(invalid_value("spec.schedule", sched, err))
    errs += _check_enum(spec, "concurrencyPolicy", "spec", ("Allow", "Forbid", "Replace"))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += _non_negative(spec, key, "spec")
    jt = spec.get("jobTemplate")
    if jt is None:
        errs.append(required("spec.jobTemplate"))
    else:
        errs += _validate_job_spec(_dict(_dict(jt).get("spec")), "spec.jobTemplate.spec")
    return errs


# --------------------------------------------------------------------------------------------
# Services, config and the rest.
# --------------------------------------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def _is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


def _validate_service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    stype = spec.get("type") or "ClusterIP"
    if stype not in _SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, _SERVICE_TYPES))
    cip = spec.get("clusterIP") or ""
    headless = cip == "None"
    if cip and not headless and not _is_ip(cip):
        errs.append(invalid_value("spec.clusterIP", cip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    if stype == "ExternalName":
        ext = spec.get("externalName") or ""
        if not ext:
            errs.append(required("spec.externalName"))
        else:
            errs += [invalid_value("spec.externalName", ext, m) for m in is_dns1123_subdomain(ext.rstrip("."))]
    ports = _list(spec.get("ports"))
    if not ports and stype != "ExternalName" and not headless:
        errs.append(required("spec.ports"))
    errs += _validate_service_ports(ports, stype)
    errs += _validate_labels_map(spec.get("selector"), "spec.selector")
    errs += _check_enum(spec, "sessionAffinity", "spec", ("ClientIP", "None"))
    errs += _check_enum(spec, "externalTrafficPolicy", "spec", ("Cluster", "Local"))
    if old is not None:
        old_cip = _dict(old.get("spec")).get("clusterIP") or ""
        # An empty clusterIP on update means "keep the allocated one" (upstream copies it over).
        old_type = _dict(old.get("spec")).get("type")
        if old_cip and cip and cip != old_cip and "ExternalName" not in (stype, old_type):
            errs.append(_immutable("spec.clusterIP", cip))
    return errs


def _validate_service_ports(ports: list[Any], stype: str) -> list[Cause]:
    errs: list[Cause] = []
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = _dict(port)
        p = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(required(f"{p}.name"))
        elif name:
            errs += [invalid_value(f"{p}.name", name, m) for m in is_dns1123_label(name)]
            if name in names:
                errs.append(duplicate(f"{p}.name", name))
            names.add(name)
        errs += _port_range(f"{p}.port", port.get("port"))
        errs += _check_enum(port, "protocol", p, _PROTOCOLS)
        key = (port.get("port"), port.get("protocol") or "TCP")
        if key in seen:
            errs.append(duplicate(p, {"port": key[0], "protocol": key[1]}))
        seen.add(key)
        tp = port.get("targetPort")
        if _is_int(tp):
            errs += _port_range(f"{p}.targetPort", tp)
        elif isinstance(tp, str) and tp:
            errs += [invalid_value(f"{p}.targetPort", tp, m) for m in is_valid_port_name(tp)]
        np_ = port.get("nodePort")
        if np_:
            if stype in ("ClusterIP", "ExternalName"):
                errs.append(forbidden(f"{p}.nodePort", f"may not be used when `type` is '{stype}'"))
            elif not _is_int(np_) or not NODE_PORT_RANGE[0] <= np_ <= NODE_PORT_RANGE[1]:
                errs.append(invalid_value(f"{p}.nodePort", np_, "provided port is not in the valid range. The range of valid ports is 30000-32767"))
    return errs


_IMMUTABLE_SET_MSG = "field is immutable when `immutable` is set"


def _validate_config_data(obj: Obj, keys_from: tuple[str, ...]) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for section in keys_from:
        for k in _dict(obj.get(section)):
            errs += [invalid_value(f"{section}[{k}]", k, m) for m in is_config_key(k)]
            if k in seen and section == "binaryData":
                errs.append(invalid_value(f"{section}[{k}]", k, "duplicate of key present in data"))
            seen.add(k)
    return errs


def _validate_immutable_data(obj: Obj, old: Obj | None, sections: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    errs: list[Cause] = []
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", _IMMUTABLE_SET_MSG))
    for section in sections:
        if (obj.get(section) or {}) != (old.get(section) or {}):
            errs.append(forbidden(section, _IMMUTABLE_SET_MSG))
    return errs


def _validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = _validate_config_data(obj, ("data", "binaryData"))
    size = sum(len(k) + len(v) for sec in ("data", "binaryData") for k, v in _dict(obj.get(sec)).items() if isinstance(v, str))
    if size > 1024 * 1024:
        errs.append(too_long("", "", 1024 * 1024))
    return errs + _validate_immutable_data(obj, old, ("data", "binaryData"))


def _validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    errs = _validate_config_data(obj, ("data", "stringData"))
    for k, v in _dict(obj.get("data")).items():
        if isinstance(v, str):
            err = base64_error(v)
            if err:
                errs.append(invalid_value(f"data[{k}]", "<secret contents redacted>", err))
    stype = obj.get("type") or ""
    data = {**_dict(obj.get("data")), **_dict(obj.get("stringData"))}
    needs = {
        "kubernetes.io/tls": ("tls.crt", "tls.key"),
        "kubernetes.io/basic-auth": (),
        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
        "kubernetes.io/dockercfg": (".dockercfg",),
        "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    }.get(stype, ())
    for key in needs:
        if key not in data:
            errs.append(required(f"data[{key}]"))
    if stype == "kubernetes.io/service-account-token":
        ann = _dict(_dict(obj.get("metadata")).get("annotations"))
        if not ann.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None and (old.get("type") or "Opaque") != (stype or "Opaque"):
        errs.append(_immutable("type", stype))
    return errs + _validate_immutable_data(obj, old, ("data",))


def _validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    for i, f in enumerate(_list(_dict(obj.get("spec")).get("finalizers"))):
        if isinstance(f, str):
            errs += [invalid_value(f"spec.finalizers[{i}]", f, m) for m in is_qualified_name(f)]
    return errs


def _validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    keys: set[tuple[Any, Any]] = set()
    for i, t in enumerate(_list(spec.get("taints"))):
        t = _dict(t)
        p = f"spec.taints[{i}]"
        key = t.get("key") or ""
        if not key:
            errs.append(required(f"{p}.key"))
        else:
            errs += [invalid_value(f"{p}.key", key, m) for m in is_qualified_name(key)]
        errs += _check_enum(t, "effect", p, _TAINT_EFFECTS, require=True)
        if t.get("value"):
            errs += [invalid_value(f"{p}.value", t["value"], m) for m in is_label_value(t["value"])]
        if (key, t.get("effect")) in keys:
            errs.append(duplicate(p, f"{key}:{t.get('effect')}"))
        keys.add((key, t.get("effect")))
    cidr = spec.get("podCIDR")
    if cidr:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errs.append(invalid_value("spec.podCIDR", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    return errs


def _validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    d = spec.get("leaseDurationSeconds")
    if _is_int(d) and d <= 0:
        errs.append(invalid_value("spec.leaseDurationSeconds", d, "must be greater than 0"))
    errs += _non_negative(spec, "leaseTransitions", "spec")
    return errs


def _validate_rules(rules: Any, namespaced: bool) -> list[Cause]:
    errs: list[Cause] = []
    for i, r in enumerate(_list(rules)):
        r = _dict(r)
        p = f"rules[{i}]"
        if not r.get("verbs"):
            errs.append(required(f"{p}.verbs", "verbs must contain at least one value"))
        has_urls = bool(r.get("nonResourceURLs"))
        if has_urls:
            if namespaced:
                errs.append(_invalid(f"{p}.nonResourceURLs", r["nonResourceURLs"], "namespaced rules cannot apply to non-resource URLs"))
            if r.get("apiGroups") or r.get("resources") or r.get("resourceNames"):
                errs.append(_invalid(f"{p}.nonResourceURLs", r["nonResourceURLs"], "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not r.get("apiGroups"):
            errs.append(required(f"{p}.apiGroups", "resource rules must supply at least one api group"))
        if not r.get("resources"):
            errs.append(required(f"{p}.resources", "resource rules must supply at least one resource"))
    return errs


def _validate_role(obj: Obj, old: Obj | None) -> list[Cause]:
    return _validate_rules(obj.get("rules"), True)


def _validate_cluster_role(obj: Obj, old: Obj | None) -> list[Cause]:
    return _validate_rules(obj.get("rules"), False)


_SUBJECT_KINDS = ("Group", "ServiceAccount", "User")


def _validate_binding(obj: Obj, old: Obj | None, cluster: bool) -> list[Cause]:
    errs: list[Cause] = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        errs.append(required("roleRef"))
        ref = {}
    else:
        kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
        errs += _check_enum(ref, "kind", "roleRef", kinds, require=True)
        errs += _check_enum(ref, "apiGroup", "roleRef", (_RBAC,), require=False)
        name = ref.get("name") or ""
        if not name:
            errs.append(required("roleRef.name"))
        else:
            errs += [invalid_value("roleRef.name", name, m) for m in is_path_segment_name(name)]
    for i, s in enumerate(_list(obj.get("subjects"))):
        s = _dict(s)
        p = f"subjects[{i}]"
        if not s.get("name"):
            errs.append(required(f"{p}.name"))
        errs += _check_enum(s, "kind", p, _SUBJECT_KINDS, require=True)
        if s.get("kind") == "ServiceAccount" and cluster and not s.get("namespace"):
            errs.append(required(f"{p}.namespace"))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        errs.append(_invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    return errs


_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def _validate_ingress_backend(b: Any, path: str) -> list[Cause]:
    b = _dict(b)
    svc, res = b.get("service"), b.get("resource")
    if svc and res:
        return [_invalid(path, b, "cannot set both resource and service backends")]
    if not svc and not res:
        return [_invalid(path, b, "resource or service backend is required")]
    if not svc:
        return []
    svc = _dict(svc)
    errs: list[Cause] = []
    if not svc.get("name"):
        errs.append(required(f"{path}.service.name"))
    port = _dict(svc.get("port"))
    if port.get("name") and port.get("number"):
        errs.append(_invalid(f"{path}.service.port", port, "cannot set both port name & port number"))
    elif not port.get("name") and not port.get("number"):
        errs.append(_invalid(f"{path}.service.port", port, "port name or number is required"))
    elif port.get("number"):
        errs += _port_range(f"{path}.service.port.number", port["number"])
    return errs


def _validate_ingress(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    rules = _list(spec.get("rules"))
    if spec.get("defaultBackend") is None and not rules:
        errs.append(_invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += _validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        rule = _dict(rule)
        host = rule.get("host") or ""
        if host:
            check = host[2:] if host.startswith("*.") else host
            errs += [invalid_value(f"spec.rules[{i}].host", host, m) for m in is_dns1123_subdomain(check)]
        http = rule.get("http")
        if http is None:
            continue
        paths = _list(_dict(http).get("paths"))
        if not paths:
            errs.append(required(f"spec.rules[{i}].http.paths"))
        for j, hp in enumerate(paths):
            hp = _dict(hp)
            p = f"spec.rules[{i}].http.paths[{j}]"
            pt = hp.get("pathType")
            if not pt:
                errs.append(required(f"{p}.pathType", "pathType must be specified"))
            elif pt not in _PATH_TYPES:
                errs.append(not_supported(f"{p}.pathType", pt, _PATH_TYPES))
            path_val = hp.get("path") or ""
            if pt in ("Exact", "Prefix") and not path_val.startswith("/"):
                errs.append(invalid_value(f"{p}.path", path_val, "must be an absolute path"))
            errs += _validate_ingress_backend(hp.get("backend"), f"{p}.backend")
    return errs


_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_PVC_IMMUTABLE_MSG = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"


def _validate_pvc(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    modes = _list(spec.get("accessModes"))
    if not modes:
        errs.append(required("spec.accessModes", "at least 1 access mode is required"))
    for m in modes:
        if m not in _ACCESS_MODES:
            errs.append(not_supported("spec.accessModes", m, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access modes"))
    requests = _dict(_dict(spec.get("resources")).get("requests"))
    storage = requests.get("storage")
    if storage is None:
        errs.append(required("spec.resources[storage]"))
    else:
        q = parse_quantity(storage)
        if q is None or q <= 0:
            errs.append(invalid_value("spec.resources.requests[storage]", str(storage), "must be greater than zero"))
    errs += _check_enum(spec, "volumeMode", "spec", ("Block", "Filesystem"))
    if old is not None:
        errs += _validate_pvc_update(spec, _dict(old.get("spec")))
    return errs


def _validate_pvc_update(spec: Obj, old_spec: Obj) -> list[Cause]:
    def strip(s: Obj) -> Obj:
        out = {k: v for k, v in s.items() if k not in ("resources", "volumeAttributesClassName", "volumeName")}
        return out

    errs: list[Cause] = []
    if strip(spec) != strip(old_spec) or (old_spec.get("volumeName") and spec.get("volumeName") != old_spec.get("volumeName")):
        errs.append(forbidden("spec", _PVC_IMMUTABLE_MSG))
    new_req = _dict(_dict(spec.get("resources")).get("requests")).get("storage")
    old_req = _dict(_dict(old_spec.get("resources")).get("requests")).get("storage")
    nq, oq = parse_quantity(new_req), parse_quantity(old_req)
    if nq is not None and oq is not None and nq != oq and not old_spec.get("volumeName"):
        errs.append(forbidden("spec", _PVC_IMMUTABLE_MSG))
    elif nq is not None and oq is not None and nq < oq:
        errs.append(forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    return errs


def _validate_hpa(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    mn, mx = spec.get("minReplicas"), spec.get("maxReplicas")
    if _is_int(mn) and mn < 1:
        errs.append(invalid_value("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if not _is_int(mx) or mx < 1:
        errs.append(invalid_value("spec.maxReplicas", mx if mx is not None else 0, "must be greater than 0"))
    if _is_int(mn) and _is_int(mx) and mx < mn:
        errs.append(invalid_value("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    ref = _dict(spec.get("scaleTargetRef"))
    for key in ("kind", "name"):
        if not ref.get(key):
            errs.append(required(f"spec.scaleTargetRef.{key}"))
    cpu = spec.get("targetCPUUtilizationPercentage")
    if _is_int(cpu) and cpu < 1:
        errs.append(invalid_value("spec.targetCPUUtilizationPercentage", cpu, "must be greater than or equal to 1"))
    return errs


def _validate_pdb(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    errs: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid_value("spec", "", "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        errs += _validate_int_or_percent(spec.get(key), f"spec.{key}")
    if spec.get("selector") is not None:
        errs += validate_label_selector(spec["selector"], "spec.selector")
    return errs


def _validate_priority_class(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    v = obj.get("value")
    if v is None:
        errs.append(required("value"))
    name = _dict(obj.get("metadata")).get("name") or ""
    if name.startswith("system-") and name not in ("system-cluster-critical", "system-node-critical"):
        errs.append(forbidden("metadata.name", "priority class names with 'system-' prefix are reserved"))
    if old is not None and old.get("value") != v:
        errs.append(forbidden("value", "may not be changed in an update."))
    return errs


def _validate_webhook_configuration(obj: Obj, old: Obj | None, *, mutating: bool) -> list[Cause]:
    """admissionregistration.k8s.io/v1 webhooks: the rules upstream enforces for v1 objects."""
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, hook in enumerate(_list(obj.get("webhooks"))):
        p = f"webhooks[{i}]"
        hook = _dict(hook)
        name = hook.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        elif name.count(".") < 2:
            errs.append(invalid_value(f"{p}.name", name, "should be a domain with at least three segments separated by dots"))
        elif name in seen:
            errs.append(duplicate(f"{p}.name", name))
        seen.add(name)
        versions = [v for v in _list(hook.get("admissionReviewVersions")) if isinstance(v, str)]
        if not versions:
            errs.append(required(f"{p}.admissionReviewVersions", "must specify one of v1, v1beta1"))
        elif not any(v in ("v1", "v1beta1") for v in versions):
            errs.append(invalid_value(f"{p}.admissionReviewVersions", versions, "must include at least one of v1, v1beta1"))
        se = hook.get("sideEffects")
        if se is None:
            errs.append(required(f"{p}.sideEffects", "must specify one of None, NoneOnDryRun"))
        elif se not in ("None", "NoneOnDryRun"):
            errs.append(not_supported(f"{p}.sideEffects", se, ["None", "NoneOnDryRun"]))
        t = hook.get("timeoutSeconds")
        if isinstance(t, int) and not 1 <= t <= 30:
            errs.append(invalid_value(f"{p}.timeoutSeconds", t, "the timeout value must be between 1 and 30 seconds"))
        for key, allowed in (("failurePolicy", ["Fail", "Ignore"]), ("matchPolicy", ["Exact", "Equivalent"])) + (
                (("reinvocationPolicy", ["Never", "IfNeeded"]),) if mutating else ()):
            if hook.get(key) is not None and hook[key] not in allowed:
                errs.append(not_supported(f"{p}.{key}", hook[key], allowed))
        errs += _vap.named_expressions(f"{p}.matchConditions", _list(hook.get("matchConditions")))
        cc = _dict(hook.get("clientConfig"))
        if bool(cc.get("url")) == bool(cc.get("service")):
            errs.append(required(f"{p}.clientConfig", "exactly one of url or service is required"))
        elif cc.get("url"):
            url = str(cc["url"])
            scheme = url.split("://", 1)[0] if "://" in url else ""
            if scheme != "https":
                errs.append(not_supported(f"{p}.clientConfig.url", scheme, ["https"]))
            elif "?" in url or "#" in url:
                errs.append(invalid_value(f"{p}.clientConfig.url", url, "query parameters and fragments are not allowed"))
        else:
            svc = _dict(cc.get("service"))
            for k in ("namespace", "name"):
                if not svc.get(k):
                    errs.append(required(f"{p}.clientConfig.service.{k}"))
            port = svc.get("port")
            if isinstance(port, int) and not 1 <= port <= 65535:
                errs.append(invalid_value(f"{p}.clientConfig.service.port", port, "port is not valid: must be between 1 and 65535, inclusive"))
        for j, rule in enumerate(_list(hook.get("rules"))):
            for op in _list(_dict(rule).get("operations")):
                if op not in ("*", "CREATE", "UPDATE", "DELETE", "CONNECT"):
                    errs.append(not_supported(f"{p}.rules[{j}].operations", op, ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]))
            scope = _dict(rule).get("scope")
            if scope is not None and scope not in ("*", "Cluster", "Namespaced"):
                errs.append(not_supported(f"{p}.rules[{j}].scope", scope, ["*", "Cluster", "Namespaced"]))
    return errs


Validator = Callable[[Obj, "Obj | None"], list[Cause]]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _validate_pod,
    ("", "Service"): _validate_service,
    ("", "ConfigMap"): _validate_configmap,
    ("", "Secret"): _validate_secret,
    ("", "Namespace"): _validate_namespace,
    ("", "Node"): _validate_node,
    ("", "PersistentVolumeClaim"): _validate_pvc,
    ("", "ReplicationController"): lambda o, old: _non_negative(_dict(o.get("spec")), "replicas", "spec")
    + validate_pod_template(_dict(o.get("spec")).get("template"), "spec.template", ("Always",)),
    ("", "PodTemplate"): lambda o, old: validate_pod_template(o.get("template"), "template"),
    ("apps", "Deployment"): _validate_deployment,
    ("apps", "ReplicaSet"): _validate_replicaset,
    ("apps", "StatefulSet"): _validate_statefulset,
    ("apps", "DaemonSet"): _validate_daemonset,
    ("batch", "Job"): _validate_job,
    ("batch", "CronJob"): _validate_cronjob,
    ("coordination.k8s.io", "Lease"): _validate_lease,
    (_RBAC, "Role"): _validate_role,
    (_RBAC, "ClusterRole"): _validate_cluster_role,
    (_RBAC, "RoleBinding"): lambda o, old: _validate_binding(o, old, cluster=False),
    (_RBAC, "ClusterRoleBinding"): lambda o, old: _validate_binding(o, old, cluster=True),
    ("networking.k8s.io", "Ingress"): _validate_ingress,
    ("autoscaling", "HorizontalPodAutoscaler"): _validate_hpa,
    ("policy", "PodDisruptionBudget"): _validate_pdb,
    ("scheduling.k8s.io", "PriorityClass"): _validate_priority_class,
    ("certificates.k8s.io", "CertificateSigningRequest"): lambda o, old: _csr.validate_csr(o, old),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        lambda o, old: _validate_webhook_configuration(o, old, mutating=True),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        lambda o, old: _validate_webhook_configuration(o, old, mutating=False),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): lambda o, old: _vap.validate_policy(o, old),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): lambda o, old: _vap.validate_binding(o, old),
}


@functools.lru_cache(maxsize=256)
def _namespaced(group: str, kind: str) -> bool | None:
    from kybernetes.api.resources import BUILTIN

    for info in BUILTIN:
        if info.group == group and info.kind == kind:
            return info.namespaced
    return None


def validate(group: str, version: str, kind: str, obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Semantic validation (422 causes) of a built-in object; ``old`` turns on update rules.

    Unknown kinds get the ObjectMeta rules only (namespace presence is then the caller's job).
    """
    errs = validate_object_meta(obj.get("metadata"), _namespaced(group, kind), name_rule_for(group, kind))
    fn = _VALIDATORS.get((group, kind))
    if fn is not None:
        errs += fn(obj, old)
    return errs
