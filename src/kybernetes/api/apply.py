"""Server-side apply and ``metadata.managedFields`` on plain JSON dicts (no I/O).

This follows the semantics of upstream structured-merge-diff (SMD) and the apiserver field manager:

* A *field set* is a set of paths; a path is a tuple of path elements written exactly as in
  ``fieldsV1``: ``f:<field>``, ``k:<compact JSON of the key fields, sorted by name>``
  (map-list item), ``v:<compact JSON value>`` (set item), ``i:<index>``. ``fieldsV1`` nests
  them; ``".": {}`` marks a path that is itself a member *and* has children.
* List semantics come from the schema: ``x-kubernetes-list-type`` (atomic | set | map +
  ``x-kubernetes-list-map-keys``); without a list type, ``x-kubernetes-patch-strategy: merge``
  makes a map-list keyed by ``x-kubernetes-patch-merge-key`` (or a set when there is no key).
  Maps are granular unless ``x-kubernetes-map-type: atomic``. No schema: maps granular, lists
  atomic.
* Apply: merge the applied config into the live object, prune what this manager applied last
  time but no longer does (unless someone else owns it), detect conflicts (fields owned by
  another manager whose value would change), and record the applied config's field set as this
  manager's ``Apply`` entry.
* Update (create/update/patch): the fields that changed move to the writer's ``Update`` entry.

Public API: :func:`fields_of`, :func:`apply`, :func:`update_managed_fields`.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kybernetes.api import openapi_defs
from kybernetes.api.errors import Cause, StatusError

Path = tuple[str, ...]
FieldSet = frozenset[Path]
Schema = dict[str, Any] | None

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10
CONFLICT_CAUSE = "FieldManagerConflict"

_OBJECT_META = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
# Key fields upstream defaults when absent (schema ``default``); our definitions omit it.
_KEY_DEFAULTS = {"protocol": "TCP"}
# Paths never recorded in managedFields (upstream strips these, plus deletion bookkeeping we own).
_STRIPPED: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {
        ("f:metadata", "f:" + n)
        for n in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    }
)


class _Missing:
    """Marker for an absent value (distinct from JSON null)."""


MISSING: Any = _Missing()


# --------------------------------------------------------------------------------------------
# Schema navigation (works for upstream $ref definitions and inline CRD schemas alike)


def _resolved(node: Schema) -> dict[str, Any]:
    return openapi_defs.resolve(node) if node is not None else {}


def _ext(node: Schema, key: str) -> Any:
    """An extension on the (unresolved) property node, else on the definition it refers to."""
    if node is None:
        return None
    if key in node:
        return node[key]
    return _resolved(node).get(key)


def _child(node: Schema, key: str) -> tuple[Schema, bool]:
    """(schema of ``key`` inside object schema ``node``, is ``key`` a named struct field)."""
    n = _resolved(node)
    props = n.get("properties")
    if isinstance(props, dict) and key in props:
        return props[key], True
    extra = n.get("additionalProperties")
    if isinstance(extra, dict):
        return extra, False
    return None, False


def _item_schema(node: Schema) -> Schema:
    it = _resolved(node).get("items")
    return it if isinstance(it, dict) else None


def _atomic_map(node: Schema) -> bool:
    return bool(_ext(node, "x-kubernetes-map-type") == "atomic")


def _list_semantics(node: Schema) -> tuple[str, list[str]]:
    """("atomic" | "set" | "map", key field names)."""
    list_type = _ext(node, "x-kubernetes-list-type")
    if list_type == "map":
        keys = _ext(node, "x-kubernetes-list-map-keys") or []
        return ("map", list(keys)) if keys else ("atomic", [])
    if list_type == "set":
        return "set", []
    if list_type is not None:
        return "atomic", []
    strategy = _ext(node, "x-kubernetes-patch-strategy")
    if strategy in ("merge", "merge,retainKeys"):
        key = _ext(node, "x-kubernetes-patch-merge-key")
        return ("map", [key]) if isinstance(key, str) else ("set", [])
    return "atomic", []


def _root(schema: Schema) -> dict[str, Any]:
    """The top-level schema; ``metadata`` is always ObjectMeta (as upstream does for CRDs)."""
    n = _resolved(schema)
    props = dict(n.get("properties") or {})
    meta = props.get("metadata")
    if meta is None or not (meta.get("$ref") or _resolved(meta).get("properties")):
        props["metadata"] = _OBJECT_META
    root = {k: v for k, v in n.items() if k != "properties"}
    root["properties"] = props
    return root


# --------------------------------------------------------------------------------------------
# Path elements


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _key_element(item: Any, keys: list[str], item_node: Schema) -> str | None:
    if not isinstance(item, dict):
        return None
    fields: dict[str, Any] = {}
    for k in keys:
        if k in item and item[k] is not None:
            fields[k] = item[k]
            continue
        default = _ext(_child(item_node, k)[0], "default")
        if default is None:
            default = _KEY_DEFAULTS.get(k)
        if default is None:
            return None
        fields[k] = default
    return "k:" + _dumps(fields)


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _list_elements(value: list[Any], node: Schema) -> list[str] | None:
    """Path elements of a granular list's items; None when the list must be treated as atomic."""
    kind, keys = _list_semantics(node)
    if kind == "atomic":
        return None
    if kind == "set":
        pes: list[str | None] = ["v:" + _dumps(v) if _is_scalar(v) else None for v in value]
    else:
        item_node = _item_schema(node)
        pes = [_key_element(v, keys, item_node) for v in value]
    if any(pe is None for pe in pes) or len(set(pes)) != len(pes):
        return None
    return [pe for pe in pes if pe is not None]


def _list_error(value: list[Any], node: Schema) -> str | None:
    """Why a granular list in an applied config is unusable (upstream refuses such patches)."""
    kind, keys = _list_semantics(node)
    if kind != "map":
        return None
    item_node = _item_schema(node)
    seen: set[str] = set()
    for i, item in enumerate(value):
        pe = _key_element(item, keys, item_node)
        if pe is None:
            missing = next(
                (k for k in keys if not isinstance(item, dict) or item.get(k) is None), keys[0]
            )
            return (
                f"element {i}: associative list with keys has an element that omits key field "
                f'"{missing}"'
                " (and doesn't have default value)"
            )
        if pe in seen:
            return f"duplicate entries for key {_element_str(pe)}"
        seen.add(pe)
    return None


@functools.lru_cache(maxsize=4096)
def _element_sort_key(pe: str) -> tuple[Any, ...]:
    """Upstream PathElement order: fields < keys < values < indexes, each compared by content."""
    kind, body = pe[:1], pe[2:]
    try:
        if kind == "f":
            return (0, body)
        if kind == "k":
            d = json.loads(body)
            return (1, tuple((n, _value_sort_key(d[n])) for n in sorted(d)))
        if kind == "v":
            return (2, _value_sort_key(json.loads(body)))
        if kind == "i":
            return (3, int(body))
    except (ValueError, TypeError):
        pass
    return (4, pe)


def _value_sort_key(v: Any) -> tuple[Any, ...]:
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, _dumps(v))
    if isinstance(v, dict):
        return (4, _dumps(v))
    return (5, 0)


def _value_str(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(_value_str(x) for x in v) + "]"
    if isinstance(v, dict):
        return "".join(f"{k}={_value_str(x)}" for k, x in v.items())
    return str(v)


def _element_str(pe: str) -> str:
    kind, body = pe[:1], pe[2:]
    if kind == "f":
        return "." + body
    if kind == "k":
        d = json.loads(body)
        return "[" + ",".join(f"{n}={_value_str(d[n])}" for n in sorted(d)) + "]"
    if kind == "v":
        return "[=" + _value_str(json.loads(body)) + "]"
    if kind == "i":
        return f"[{body}]"
    return pe


def path_string(path: Path) -> str:
    """Upstream display form, e.g. ``.spec.template.spec.containers[name="nginx"].image``."""
    return "".join(_element_str(pe) for pe in path)


def _canonical_element(pe: str) -> str:
    kind = pe[:2]
    try:
        if kind in ("k:", "v:"):
            return kind + _dumps(json.loads(pe[2:]))
        if kind == "i:":
            return "i:" + str(int(pe[2:]))
    except (ValueError, TypeError):
        pass
    return pe


# --------------------------------------------------------------------------------------------
# Field sets <-> fieldsV1


@dataclass
class _Trie:
    member: bool = False
    children: dict[str, _Trie] = field(default_factory=dict)


def _trie(paths: Iterable[Path]) -> _Trie:
    root = _Trie()
    for p in paths:
        node = root
        for pe in p:
            node = node.children.setdefault(pe, _Trie())
        node.member = True
    return root


def _encode_trie(node: _Trie) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if node.member and node.children:
        out["."] = {}
    for pe in sorted(node.children, key=_element_sort_key):
        out[pe] = _encode_trie(node.children[pe])
    return out


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """A field set as the nested ``fieldsV1`` dict."""
    return _encode_trie(_trie(paths))


def decode_fields(fields_v1: Any) -> FieldSet:
    """The nested ``fieldsV1`` dict as a field set (path elements canonicalised)."""
    out: set[Path] = set()

    def walk(d: dict[str, Any], path: Path) -> None:
        for k, v in d.items():
            if k == ".":
                if path:
                    out.add(path)
                continue
            p = path + (_canonical_element(k),)
            if isinstance(v, dict) and v:
                walk(v, p)
            else:
                out.add(p)

    if isinstance(fields_v1, dict):
        walk(fields_v1, ())
    return frozenset(out)


def _ordered(paths: Iterable[Path]) -> list[Path]:
    """Upstream set iteration order: per level, the members first, then the children (sorted)."""
    result: list[Path] = []

    def walk(node: _Trie, prefix: Path) -> None:
        keys = sorted(node.children, key=_element_sort_key)
        result.extend(prefix + (k,) for k in keys if node.children[k].member)
        for k in keys:
            walk(node.children[k], prefix + (k,))

    walk(_trie(paths), ())
    return result


def _proper_prefixes(paths: Iterable[Path]) -> set[Path]:
    return {p[:i] for p in paths for i in range(1, len(p))}


# --------------------------------------------------------------------------------------------
# ToFieldSet: every field set in a value


def _collect(value: Any, node: Schema, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict):
        if _atomic_map(node):
            out.add(path)
            return
        for k, v in value.items():
            child, named = _child(node, k)
            cp = path + ("f:" + k,)
            _collect(v, child, cp, out)
            if v is None or v == {} or not named:
                out.add(cp)
    elif isinstance(value, list):
        pes = _list_elements(value, node)
        if pes is None:
            out.add(path)
            return
        item_node = _item_schema(node)
        for pe, item in zip(pes, value):
            _collect(item, item_node, path + (pe,), out)
            out.add(path + (pe,))
    elif path:
        out.add(path)


def _field_set(obj: dict[str, Any], root: dict[str, Any]) -> set[Path]:
    out: set[Path] = set()
    _collect(obj, root, (), out)
    return out


# --------------------------------------------------------------------------------------------
# Compare: which paths were added / modified / removed between two objects


@dataclass
class _Diff:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def changed(self) -> set[Path]:
        return self.added | self.modified

    def excluding(self, ignored: Callable[[Path], bool]) -> _Diff:
        return _Diff(
            {p for p in self.added if not ignored(p)},
            {p for p in self.modified if not ignored(p)},
            {p for p in self.removed if not ignored(p)},
        )


def _empty(v: Any) -> bool:
    return v is MISSING or v is None or v == {} or v == []


def _compare(lhs: Any, rhs: Any, node: Schema, path: Path, d: _Diff) -> None:
    is_map = isinstance(lhs, dict) or isinstance(rhs, dict)
    is_list = isinstance(lhs, list) or isinstance(rhs, list)
    mismatch = (
        lhs is not MISSING
        and lhs is not None
        and rhs is not MISSING
        and rhs is not None
        and (type(lhs) is not type(rhs))
        and (is_map or is_list)
    )
    if mismatch:
        d.modified.add(path)
        for p in _field_set_of(lhs, node, path):
            if p != path:
                d.removed.add(p)
        return
    if is_map and not _atomic_map(node) and not (_empty(lhs) and _empty(rhs)):
        lm = lhs if isinstance(lhs, dict) else {}
        rm = rhs if isinstance(rhs, dict) else {}
        for k in list(lm) + [k for k in rm if k not in lm]:
            _compare(
                lm.get(k, MISSING), rm.get(k, MISSING), _child(node, k)[0], path + ("f:" + k,), d
            )
    elif is_list and not (_empty(lhs) and _empty(rhs)) and _compare_lists(lhs, rhs, node, path, d):
        pass
    else:
        if lhs is MISSING:
            d.added.add(path)
        elif rhs is MISSING:
            d.removed.add(path)
        elif lhs != rhs:
            d.modified.add(path)
        return
    if lhs is MISSING:
        d.added.add(path)
    elif rhs is MISSING:
        d.removed.add(path)


def _compare_lists(lhs: Any, rhs: Any, node: Schema, path: Path, d: _Diff) -> bool:
    """Compare a granular list item by item; False when it must be compared as a leaf."""
    ll = lhs if isinstance(lhs, list) else []
    rl = rhs if isinstance(rhs, list) else []
    lp, rp = _list_elements(ll, node), _list_elements(rl, node)
    if lp is None or rp is None:
        return False
    item_node = _item_schema(node)
    l_by, r_by = dict(zip(lp, ll)), dict(zip(rp, rl))
    for pe in lp + [pe for pe in rp if pe not in l_by]:
        _compare(l_by.get(pe, MISSING), r_by.get(pe, MISSING), item_node, path + (pe,), d)
    return True


def _field_set_of(value: Any, node: Schema, path: Path) -> set[Path]:
    out: set[Path] = {path}
    _collect(value, node, path, out)
    return out


def _baseline(new: Any, node: Schema) -> dict[str, Any]:
    """Roughly the Go zero value of ``new``'s type, which upstream compares writes against: nested
    structs and required lists exist (so they never get a ``"."`` of their own), the rest is
    absent."""
    out: dict[str, Any] = {}
    if not isinstance(new, dict):
        return out
    n = _resolved(node)
    props = n.get("properties") or {}
    required = set(n.get("required") or ())
    for k, v in new.items():
        if k not in props:
            continue
        child = props[k]
        if (
            isinstance(v, dict)
            and v
            and _resolved(child).get("properties")
            and not _atomic_map(child)
        ):
            out[k] = _baseline(v, child)
        elif k in required and isinstance(v, list):
            out[k] = None
    return out


def _overlay(base: dict[str, Any], obj: dict[str, Any] | None) -> dict[str, Any]:
    """``obj`` on top of the zero-value skeleton ``base`` (values of ``obj`` win)."""
    out = dict(base)
    for k, v in (obj or {}).items():
        b = out.get(k)
        out[k] = _overlay(b, v) if isinstance(b, dict) and isinstance(v, dict) else v
    return out


# --------------------------------------------------------------------------------------------
# Merge (apply config onto live) and prune


def _merge(lhs: Any, rhs: Any, node: Schema) -> Any:
    if isinstance(rhs, dict):
        if not isinstance(lhs, dict) or _atomic_map(node):
            return _drop_nulls(rhs)
        out = dict(lhs)
        for k, v in rhs.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(out.get(k, MISSING), v, _child(node, k)[0])
        return out
    if isinstance(rhs, list) and isinstance(lhs, list):
        lp, rp = _list_elements(lhs, node), _list_elements(rhs, node)
        if lp is not None and rp is not None:
            return _merge_list(lhs, rhs, lp, rp, _item_schema(node))
    return rhs


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    return v


def _merge_list(
    lhs: list[Any], rhs: list[Any], lp: list[str], rp: list[str], item_node: Schema
) -> list[Any]:
    """Merge keyed/set lists like upstream: items only in live keep their place, shared items
    follow the applied order, new items go just before the next shared item (or at the end)."""
    l_by, r_by = dict(zip(lp, lhs)), dict(zip(rp, rhs))
    shared = [pe for pe in rp if pe in l_by]
    out: list[Any] = []
    done: set[str] = set()
    ri = si = 0

    def emit(pe: str) -> None:
        out.append(_merge(l_by.get(pe, MISSING), r_by[pe], item_node))
        done.add(pe)

    for pe, item in zip(lp, lhs):
        if pe not in r_by:
            out.append(item)
            continue
        if pe in done or (si < len(shared) and shared[si] != pe):
            continue
        while ri < len(rp):
            rpe = rp[ri]
            ri += 1
            if rpe not in done:
                emit(rpe)
            if rpe == pe:
                break
        while si < len(shared) and shared[si] in done:
            si += 1
    for rpe in rp[ri:]:
        if rpe not in done:
            emit(rpe)
    return out


@dataclass(frozen=True)
class _Owned:
    """A field set where named struct fields with owned children count as owned
    (upstream EnsureNamedFieldsAreMembers)."""

    paths: frozenset[Path]
    prefixes: frozenset[Path]

    @staticmethod
    def of(paths: Iterable[Path]) -> _Owned:
        ps = frozenset(paths)
        return _Owned(ps, frozenset(_proper_prefixes(ps)))

    def has(self, p: Path, named: bool) -> bool:
        return p in self.paths or (named and p in self.prefixes)


def _prune(value: Any, node: Schema, path: Path, last: _Owned, keep: _Owned) -> Any:
    """Drop what ``last`` owned and nobody (``keep``) owns any more; returns a new value."""
    if isinstance(value, dict) and not _atomic_map(node):
        out = {}
        for k, v in value.items():
            child, named = _child(node, k)
            cp = path + ("f:" + k,)
            if last.has(cp, named) and not keep.has(cp, named):
                continue
            out[k] = _prune(v, child, cp, last, keep) if cp in last.prefixes else v
        return out
    if isinstance(value, list):
        pes = _list_elements(value, node)
        if pes is None:
            return value
        item_node = _item_schema(node)
        items = []
        for pe, item in zip(pes, value):
            ip = path + (pe,)
            if ip in last.paths and not keep.has(ip, False):
                continue
            items.append(_prune(item, item_node, ip, last, keep) if ip in last.prefixes else item)
        return items
    return value


# --------------------------------------------------------------------------------------------
# managedFields entries


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: frozenset[Path]
    # the stored fieldsV1 these fields were decoded from: re-used while the fields are unchanged
    raw: Any = field(default=None, compare=False, repr=False)
    raw_fields: frozenset[Path] | None = field(default=None, compare=False, repr=False)

    def ident(self) -> tuple[str, str, str, str]:
        """Upstream manager identity: Apply entries do not include the apiVersion."""
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        s = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            s += " with subresource " + json.dumps(self.subresource, ensure_ascii=False)
        if self.operation == "Update":
            s += f" using {self.api_version}"
        return s

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            d["time"] = self.time
        d["fieldsType"] = "FieldsV1"
        unchanged = self.raw is not None and self.raw_fields is not None and self.fields == self.raw_fields
        d["fieldsV1"] = self.raw if unchanged else encode_fields(self.fields)
        if self.subresource:
            d["subresource"] = self.subresource
        return d


def _decode_entries(raw: Any) -> list[_Entry]:
    """Valid entries of a managedFields list; invalid ones are dropped, duplicates merged."""
    by_ident: dict[tuple[str, str, str, str], _Entry] = {}
    for e in raw if isinstance(raw, list) else ():
        if not isinstance(e, dict) or e.get("operation") not in ("Apply", "Update"):
            continue
        if e.get("fieldsType") != "FieldsV1" or not e.get("apiVersion"):
            continue
        entry = _Entry(
            str(e.get("manager") or ""),
            e["operation"],
            str(e["apiVersion"]),
            str(e.get("subresource") or ""),
            e.get("time") if isinstance(e.get("time"), str) else None,
            decode_fields(e.get("fieldsV1")),
        )
        entry.raw, entry.raw_fields = e.get("fieldsV1"), entry.fields
        prev = by_ident.get(entry.ident())
        if prev is not None:
            entry.fields = prev.fields | entry.fields
        by_ident[entry.ident()] = entry
    return list(by_ident.values())


def _sort_entries(entries: list[_Entry]) -> list[_Entry]:
    return sorted(
        entries, key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource)
    )


def _encode_entries(entries: list[_Entry]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in _sort_entries([e for e in entries if e.fields])]


def _cap_updaters(entries: list[_Entry], limit: int = MAX_UPDATE_MANAGERS) -> list[_Entry]:
    """Merge the oldest Update entries into per-version "ancient-changes" buckets over ``limit``."""
    updaters = sorted(
        (e for e in entries if e.operation == "Update"), key=lambda e: (e.time or "", e.ident())
    )
    length = len(updaters)
    if length <= limit:
        return entries
    result = list(entries)
    first_by_version: dict[str, _Entry] = {}
    buckets: dict[str, _Entry] = {}
    for e in updaters:
        if length <= limit:
            break
        first = first_by_version.get(e.api_version)
        if first is None:
            first_by_version[e.api_version] = e
            continue
        bucket = buckets.get(e.api_version)
        if bucket is None:
            bucket = _Entry(ANCIENT_CHANGES, "Update", e.api_version, "", first.time, first.fields)
            buckets[e.api_version] = bucket
            result = [x for x in result if x is not first] + [bucket]
        bucket.fields = bucket.fields | e.fields
        bucket.time = e.time
        result = [x for x in result if x is not e]
        length -= 1
    return result


def _strip(paths: Iterable[Path]) -> frozenset[Path]:
    return frozenset(p for p in paths if p not in _STRIPPED)


def _ignore_filter(subresource: str, ignore_status: bool) -> Callable[[Path], bool]:
    """Fields a write through this endpoint never takes ownership of (upstream "reset fields")."""
    if subresource == "status":
        return lambda p: bool(p) and p[0] == "f:spec"
    if not subresource and ignore_status:
        return lambda p: bool(p) and p[0] == "f:status"
    return lambda p: False


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _read_only_without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without managedFields for code that only reads it: copies two dicts, not the tree."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    m = (obj or {}).get("metadata")
    return m if isinstance(m, dict) else {}


def _set_managed_fields(obj: dict[str, Any], encoded: list[dict[str, Any]]) -> None:
    meta = obj.setdefault("metadata", {})
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


def _changed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    root: dict[str, Any],
    ignored: Callable[[Path], bool],
) -> _Diff:
    base = _overlay(_baseline(new, root), old)
    d = _Diff()
    _compare(base, new, root, (), d)
    return d.excluding(ignored)


# --------------------------------------------------------------------------------------------
# Public API


def fields_of(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """The ``fieldsV1`` of every field set in ``obj`` (what an Apply of ``obj`` would own):
    server-owned metadata and top-level ``status`` are left out."""
    root = _root(schema)
    paths = _strip(_field_set(_without_managed_fields(obj), root))
    return encode_fields(p for p in paths if p[0] != "f:status")


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    schema: Schema,
    now: str,
    subresource: str = "",
    ignore_status: bool = True,
) -> list[dict[str, Any]]:
    """The managedFields list after an ordinary write (``old`` is None on create).

    The fields that changed move to ``manager``'s Update entry (one per manager, apiVersion and
    subresource) and are taken from every other entry. A client may set managedFields itself on the
    main resource (``[]`` or ``[{}]`` clears them); an existing object without managedFields stays
    untracked, as upstream.
    """
    raw_new = _meta(new).get("managedFields", MISSING)
    if not subresource and isinstance(raw_new, list) and (raw_new == [] or raw_new == [{}]):
        return []
    entries = [] if subresource else _decode_entries(raw_new)
    if not entries:
        entries = _decode_entries(_meta(old).get("managedFields"))
    if old is not None and not entries:
        return []
    root = _root(schema)
    old_obj = None if old is None else _read_only_without_managed_fields(old)
    diff = _changed_fields(
        old_obj, _read_only_without_managed_fields(new), root, _ignore_filter(subresource, ignore_status)
    )
    entries = _take_update_ownership(
        entries, diff, manager=manager, api_version=api_version, subresource=subresource, now=now
    )
    return _encode_entries(_cap_updaters(entries))


def _take_update_ownership(
    entries: list[_Entry],
    diff: _Diff,
    *,
    manager: str,
    api_version: str,
    subresource: str,
    now: str,
) -> list[_Entry]:
    changed, removed = diff.changed(), diff.removed
    for e in entries:
        e.fields = e.fields - changed - removed
    taken = _strip(changed)
    if taken:
        ident = (manager, "Update", api_version, subresource)
        mine = next((e for e in entries if e.ident() == ident), None)
        if mine is None:
            mine = _Entry(manager, "Update", api_version, subresource, now, frozenset())
            entries.append(mine)
        mine.fields = mine.fields | taken
        mine.time = now
    return [e for e in entries if e.fields]


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    schema: Schema,
    now: str,
    subresource: str = "",
    ignore_status: bool = True,
) -> dict[str, Any]:
    """Server-side apply ``applied`` (the request body) onto ``live`` (None: create).

    Returns the new object with updated managedFields, or raises a 409 Conflict StatusError
    (upstream wording). ``ignore_status``: top-level ``status`` is never owned through the main
    resource (upstream resets it there); pass False for custom resources without a status
    subresource.
    """
    if _meta(applied).get("managedFields") is not None:
        raise StatusError(400, "BadRequest", "metadata.managedFields must be nil")
    root = _root(schema)
    _check_applied(applied, root, api_version)
    ignored = _ignore_filter(subresource, ignore_status)
    live_obj = {} if live is None else _without_managed_fields(live)
    entries = _decode_entries(_meta(live).get("managedFields"))
    if live is not None and not entries:
        diff = _changed_fields(None, live_obj, root, ignored)
        entries = _take_update_ownership(
            [],
            diff,
            manager=BEFORE_FIRST_APPLY,
            api_version=api_version,
            subresource=subresource,
            now=now,
        )
    config = copy.deepcopy(applied)
    applied_full = _field_set(config, root)
    applied_set = _strip(p for p in applied_full if not ignored(p))
    ident = (manager, "Apply", "", subresource)
    last = next((e for e in entries if e.ident() == ident), None)
    others = [e for e in entries if e.ident() != ident]

    merged = _merge(live_obj, config, root)
    if last is not None and last.fields:
        keep = _Owned.of(applied_full.union(*(e.fields for e in others)))
        merged = _prune(merged, root, (), _Owned.of(last.fields), keep)

    diff = _Diff()
    _compare(live_obj, merged, root, (), diff)
    diff = diff.excluding(ignored)
    conflicts = _conflicts(others, diff.changed())
    if conflicts and not force:
        conflicts = _unexcused(conflicts, live_obj, root, manager, api_version)
        if conflicts:
            raise _conflict_error(conflicts)

    changed = diff.changed()
    for e in others:
        e.fields = e.fields - changed - diff.removed
    time = now if (merged != live_obj or last is None) else last.time
    mine = _Entry(manager, "Apply", api_version, subresource, time, applied_set)
    result_entries = [e for e in others if e.fields] + ([mine] if mine.fields else [])

    if manager == "kubectl" and LAST_APPLIED_ANNOTATION in (_meta(merged).get("annotations") or {}):
        merged["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = _last_applied_value(applied)
    _set_managed_fields(merged, _encode_entries(result_entries))
    return merged  # type: ignore[no-any-return]


def _check_applied(applied: dict[str, Any], root: dict[str, Any], api_version: str) -> None:
    """Reject applied configs whose keyed lists cannot be merged (missing or duplicate keys)."""

    def walk(v: Any, node: Schema, path: Path) -> None:
        if isinstance(v, dict) and not _atomic_map(node):
            for k, x in v.items():
                walk(x, _child(node, k)[0], path + ("f:" + k,))
        elif isinstance(v, list):
            err = _list_error(v, node)
            if err:
                group_version = api_version if "/" in api_version else "/" + api_version
                gvk = f"{group_version}, Kind={applied.get('kind', '')}"
                raise StatusError(
                    500,
                    "",
                    f"failed to create typed patch object ({gvk}): {path_string(path)}: {err}",
                )
            if _list_semantics(node)[0] == "map":
                for item in v:
                    walk(item, _item_schema(node), path)

    walk(applied, root, ())


def _conflicts(others: list[_Entry], changed: set[Path]) -> list[tuple[_Entry, Path]]:
    out: list[tuple[_Entry, Path]] = []
    for e in sorted(others, key=lambda e: e.ident()):
        out.extend((e, p) for p in _ordered(e.fields & changed))
    return out


def _unexcused(
    conflicts: list[tuple[_Entry, Path]],
    live: dict[str, Any],
    root: dict[str, Any],
    manager: str,
    api_version: str,
) -> list[tuple[_Entry, Path]]:
    """Upstream lets ``kubectl`` take over, without force, the fields that client-side apply
    recorded in the last-applied annotation and that still hold that value."""
    if manager != "kubectl":
        return conflicts
    raw = (_meta(live).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not raw:
        return conflicts
    try:
        last_applied = json.loads(raw)
    except ValueError:
        return conflicts
    if not isinstance(last_applied, dict) or last_applied.get("apiVersion") != api_version:
        return conflicts
    diff = _Diff()
    _compare(last_applied, live, root, (), diff)
    allowed = _field_set(last_applied, root) - diff.modified - diff.added - diff.removed
    return [(e, p) for e, p in conflicts if p not in allowed]


def _conflict_error(conflicts: list[tuple[_Entry, Path]]) -> StatusError:
    causes = [
        Cause(CONFLICT_CAUSE, f"conflict with {e.describe()}", path_string(p)).to_dict()
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.describe()}: {path_string(p)}"
    else:
        lines: list[str] = []
        current: _Entry | None = None
        for e, p in conflicts:
            if e is not current:
                lines.append(f"conflicts with {e.describe()}:")
                current = e
            lines.append(f"- {path_string(p)}")
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


def _last_applied_value(applied: dict[str, Any]) -> str:
    """The applied config minus the annotation, encoded like Go's JSON encoder (sorted keys,
    HTML-escaped, trailing newline)."""
    obj = copy.deepcopy(applied)
    annotations = _meta(obj).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED_ANNOTATION, None)
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text + "\n"


def iter_paths(fields_v1: dict[str, Any]) -> Iterator[str]:
    """Display paths (``.spec.replicas``) of a ``fieldsV1`` dict, in upstream order."""
    for p in _ordered(decode_fields(fields_v1)):
        yield path_string(p)
