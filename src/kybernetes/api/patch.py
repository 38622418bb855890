"""The three PATCH formats on plain JSON values. Inputs are never mutated.

    json_patch(doc, ops)                        RFC 6902  (application/json-patch+json)
    merge_patch(doc, patch)                     RFC 7386  (application/merge-patch+json)
    strategic_merge_patch(doc, patch, schema)   Kubernetes (application/strategic-merge-patch+json)

Errors are ``StatusError``s: a malformed patch body is 400 BadRequest; a JSON patch operation
that cannot be applied (failed ``test``, missing path, index out of range) is 422 Invalid.

Strategic merge patch follows upstream ``k8s.io/apimachinery/pkg/util/strategicpatch``
(``StrategicMergeMapPatch``). Per-field behaviour comes from the upstream OpenAPI definition of
the object's kind (``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key`` on each
property); with ``schema=None`` maps merge and lists are replaced. For each map:

1. ``$patch``: ``replace`` -> the patch map (directives removed) replaces the live map;
   ``delete`` -> the map becomes ``{}``; ``merge`` -> default.
2. ``$retainKeys: [k...]`` -> live keys not listed are dropped (patch keys must be listed).
3. ``$setElementOrder/<f>: [...]`` -> list ``f`` is merged, then ordered: patch-side elements
   follow this order, live-only elements keep their relative order, interleaved best-effort.
4. other keys: ``null`` deletes; maps recurse (unless the field's strategy is ``replace``);
   lists with strategy ``merge`` merge (by merge key for maps, as a union for primitives;
   list elements ``{"<key>": v, "$patch": "delete"}`` delete, ``{"$patch": "replace"}`` makes
   the patch list authoritative); other lists are replaced; primitives overwrite.
5. ``$deleteFromPrimitiveList/<f>: [v...]`` -> remove these values from list ``f``.
Directive keys are never stored.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kybernetes.api import errors, openapi_defs

JSON = Any

# --------------------------------------------------------------------------------------------
# Shared helpers


def json_equal(a: JSON, b: JSON) -> bool:
    """Equality of JSON values (``True != 1``, ``1 == 1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _unprocessable(message: str) -> errors.StatusError:
    return errors.StatusError(422, "Invalid", message)


def _missing(op: str, path: str, what: str = "path") -> errors.StatusError:
    return _unprocessable(
        f'{op} operation does not apply: doc is missing {what}: "{path}": missing value')


# --------------------------------------------------------------------------------------------
# RFC 6902 JSON patch

_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


def _pointer(path: Any, op: str) -> list[str]:
    if not isinstance(path, str):
        raise _unprocessable(f"{op} operation does not apply: missing or invalid path")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f'{op} operation does not apply: invalid JSON pointer: "{path}"')
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(container: list[Any], token: str, op: str, path: str, *, allow_end: bool) -> int:
    """Array index named by ``token``; ``-`` (append position) only when ``allow_end``."""
    if allow_end and token == "-":
        return len(container)
    prefix = f"{op} operation does not apply"
    if not _INDEX_RE.fullmatch(token):
        raise _unprocessable(f'{prefix}: invalid array index "{token}" in "{path}"')
    i = int(token)
    if i > (len(container) if allow_end else len(container) - 1):
        raise _unprocessable(f'{prefix}: index out of bounds: {i} in "{path}"')
    return i


def _walk(doc: JSON, tokens: list[str], op: str, path: str) -> JSON:
    """The value at ``tokens`` (422 if any step is missing)."""
    cur = doc
    for tok in tokens:
        if isinstance(cur, dict):
            if tok not in cur:
                raise _missing(op, path)
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, op, path, allow_end=False)]
        else:
            raise _missing(op, path)
    return cur


def _add(doc: JSON, path: str, value: JSON, op: str = "add") -> JSON:
    tokens = _pointer(path, op)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, op, path, allow_end=True), value)
    else:
        raise _missing(op, path)
    return doc


def _remove(doc: JSON, path: str, op: str = "remove") -> tuple[JSON, JSON]:
    """Remove the value at ``path``; returns (doc, removed value)."""
    tokens = _pointer(path, op)
    if not tokens:
        raise _unprocessable(f"{op} operation does not apply: cannot remove the document root")
    parent = _walk(doc, tokens[:-1], op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _missing(op, path, "key")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, op, path, allow_end=False))
    raise _missing(op, path)


def _replace(doc: JSON, path: str, value: JSON) -> JSON:
    tokens = _pointer(path, "replace")
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], "replace", path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _missing("replace", path, "key")
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(parent, last, "replace", path, allow_end=False)] = value
    else:
        raise _missing("replace", path)
    return doc


def _value(op: dict[str, Any], kind: str) -> JSON:
    if "value" not in op:
        raise _unprocessable(f"{kind} operation does not apply: missing value")
    return copy.deepcopy(op["value"])


def _from(op: dict[str, Any], kind: str) -> str:
    src = op.get("from")
    if not isinstance(src, str):
        raise _unprocessable(f"{kind} operation does not apply: missing from path")
    return src


def _apply_op(doc: JSON, op: dict[str, Any]) -> JSON:
    kind = op.get("op")
    path = op.get("path")
    if kind == "add":
        return _add(doc, path, _value(op, "add"))  # type: ignore[arg-type]
    if kind == "remove":
        return _remove(doc, path)[0]  # type: ignore[arg-type]
    if kind == "replace":
        return _replace(doc, path, _value(op, "replace"))  # type: ignore[arg-type]
    if kind == "move":
        src = _from(op, "move")
        if src == path:
            _walk(doc, _pointer(src, "move"), "move", src)
            return doc
        if isinstance(path, str) and path.startswith(src + "/"):
            raise _unprocessable(
                f'move operation does not apply: cannot move "{src}" into its child "{path}"')
        doc, moved = _remove(doc, src, "move")
        return _add(doc, path, moved, "move")  # type: ignore[arg-type]
    if kind == "copy":
        src = _from(op, "copy")
        value = copy.deepcopy(_walk(doc, _pointer(src, "copy"), "copy", src))
        return _add(doc, path, value, "copy")  # type: ignore[arg-type]
    if kind == "test":
        expected = _value(op, "test")
        actual = _walk(doc, _pointer(path, "test"), "test", str(path))
        if not json_equal(actual, expected):
            raise _unprocessable(f"testing value {path} failed: test failed")
        return doc
    raise _unprocessable(f"Unexpected kind: {kind}")


def json_patch(doc: JSON, ops: Any) -> JSON:
    """Apply an RFC 6902 patch (list of operations) to a copy of ``doc``."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise errors.bad_request(
            "json: cannot unmarshal into Go value of type jsonpatch.Patch: "
            "a JSON patch must be an array of operation objects")
    result = copy.deepcopy(doc)
    for op in ops:
        result = _apply_op(result, op)
    return result


# --------------------------------------------------------------------------------------------
# RFC 7386 JSON merge patch


def _merge_into(target: JSON, patch: JSON) -> JSON:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


def merge_patch(doc: JSON, patch: JSON) -> JSON:
    """Apply an RFC 7386 merge patch: ``null`` deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        raise errors.bad_request("Invalid JSON Patch: a merge patch must be a JSON object")
    return _merge_into(copy.deepcopy(doc), patch)


# --------------------------------------------------------------------------------------------
# Strategic merge patch

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

Schema = dict[str, Any] | None


class _Drop:
    """Marker: the value is a ``$patch: delete`` and must not be stored."""


_DROP = _Drop()


def is_directive_key(key: str) -> bool:
    return (key in (PATCH, RETAIN_KEYS) or key.startswith(SET_ELEMENT_ORDER)
            or key.startswith(DELETE_FROM_PRIMITIVE_LIST))


def _bad(message: str) -> errors.StatusError:
    return errors.bad_request(message)


def _check_patch_type(directive: Any, where: Any) -> None:
    if directive not in ("replace", "delete", "merge"):
        raise _bad(f"unknown patch type: {directive} in map: {where}")


def _clean(value: JSON) -> JSON:
    """A patch value stored as-is: directives and nulls removed, deleted maps dropped."""
    if isinstance(value, dict):
        if PATCH in value:
            _check_patch_type(value[PATCH], value)
            if value[PATCH] == "delete":
                return _DROP
        out = {}
        for k, v in value.items():
            if is_directive_key(k) or v is None:
                continue
            cleaned = _clean(v)
            if cleaned is not _DROP:
                out[k] = cleaned
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value if not (isinstance(v, dict) and PATCH in v)]
    return value


def strip_directives(obj: JSON) -> JSON:
    """A copy of ``obj`` without SMP directives (and without nulls inside maps)."""
    cleaned = _clean(copy.deepcopy(obj))
    return {} if cleaned is _DROP else cleaned


def _prop(schema: Schema, key: str) -> Schema:
    if schema is None:
        return None
    return openapi_defs.child(schema, key)


def _meta(prop: Schema) -> tuple[list[str], str]:
    """(patch strategies, merge key) declared on a property schema."""
    if not prop:
        return [], ""
    raw = prop.get("x-kubernetes-patch-strategy") or ""
    merge_key = str(prop.get("x-kubernetes-patch-merge-key") or "")
    return [s for s in str(raw).split(",") if s], merge_key


def _items(prop: Schema) -> Schema:
    return openapi_defs.items(prop) if prop else None


def _index_of(items: list[Any], item: Any, merge_key: str) -> int:
    """Position of ``item`` in ``items`` (by merge key for maps, by value otherwise), or -1."""
    for i, cand in enumerate(items):
        if merge_key and isinstance(item, dict) and isinstance(cand, dict):
            if (merge_key in item and merge_key in cand
                    and json_equal(item[merge_key], cand[merge_key])):
                return i
        elif json_equal(item, cand):
            return i
    return -1


def _sorted_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    def rank(item: Any) -> int:
        i = _index_of(order, item, merge_key)
        return i if i >= 0 else len(order)

    return sorted(items, key=rank)


def _normalize_order(merged: list[Any], patch_order: list[Any], server_order: list[Any],
                     merge_key: str) -> list[Any]:
    """Order ``merged``: elements named in ``patch_order`` follow it; the others (live-only)
    keep their live order and are interleaved by their live positions (upstream best effort)."""
    patch_items = [x for x in merged if _index_of(patch_order, x, merge_key) >= 0]
    server_only = [x for x in merged if _index_of(patch_order, x, merge_key) < 0]
    left = _sorted_by(server_only, server_order, merge_key)
    right = _sorted_by(patch_items, patch_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index_of(server_order, left[i], merge_key)
            ri = _index_of(server_order, right[j], merge_key)
            if 0 <= li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if _index_of(out, v, "") < 0:
            out.append(v)
    return out


def _special_elements(original: list[Any], patch: list[Any],
                      merge_key: str) -> tuple[list[Any], list[Any]]:
    """Apply ``$patch`` list elements; returns (live list after deletes, plain patch elements)."""
    plain: list[Any] = []
    replace = False
    for elem in patch:
        if PATCH not in elem:
            plain.append(elem)
            continue
        directive = elem[PATCH]
        if directive == "delete":
            if merge_key not in elem:
                raise _bad(f"map: {elem} does not contain declared merge key: {merge_key}")
            original = [x for x in original
                        if not (isinstance(x, dict) and merge_key in x
                                and json_equal(x[merge_key], elem[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _bad("merging lists cannot yet be specified in the patch")
        else:
            _check_patch_type(directive, elem)
    if replace:
        return [_clean(x) for x in plain], []
    return original, plain


def _merge_list(original: list[Any], patch: list[Any], prop: Schema, merge_key: str,
                field: str) -> list[Any]:
    """Merge two lists of a field whose strategy is ``merge``."""
    if not original and not patch:
        return original
    everything = original + patch
    if any(isinstance(x, list) for x in everything):
        raise _bad("lists of lists are not supported")
    maps = [isinstance(x, dict) for x in everything]
    if any(maps) and not all(maps):
        raise _bad(f"list {field} mixes maps and other values")
    if not any(maps):
        return _normalize_order(_dedupe(everything), patch, original, "")
    if not merge_key:
        raise _bad(f"cannot merge lists without merge key for {field}")
    original, plain = _special_elements(original, patch, merge_key)
    merged = list(original)
    item_schema = _items(prop)
    for elem in plain:
        if merge_key not in elem:
            raise _bad(f"map: {elem} does not contain declared merge key: {merge_key}")
        i = _index_of(merged, elem, merge_key)
        if i >= 0:
            merged[i] = _merge_map(merged[i], elem, item_schema)
        else:
            merged.append(_merge_map({}, elem, item_schema))
    return _normalize_order(merged, plain, original, merge_key)


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    keys = patch.pop(RETAIN_KEYS)
    if not isinstance(keys, list):
        raise _bad("invalid patch format of retainKeys")
    allowed = set(k for k in keys if isinstance(k, str))
    for k, v in patch.items():
        if v is not None and not is_directive_key(k) and k not in allowed:
            raise _bad("invalid patch format of retainKeys")
    for k in list(original):
        if k not in allowed:
            del original[k]


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> None:
    """Merge and order each list named by a ``$setElementOrder/<field>`` directive."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        field = key[len(SET_ELEMENT_ORDER):]
        if not field or not isinstance(order, list):
            raise _bad("invalid patch format of setElementOrder list")
        live = original.get(field)
        live_list = live if isinstance(live, list) else None
        patch_list: list[Any] | None = None
        if field in patch:
            raw = patch.pop(field)
            if raw is None:
                original.pop(field, None)
                continue
            if not isinstance(raw, list):
                raise _bad("invalid patch format of setElementOrder list")
            patch_list = raw
        prop = _prop(schema, field)
        strategies, merge_key = _meta(prop)
        if live_list is not None and patch_list is not None:
            merged = (_merge_list(live_list, patch_list, prop, merge_key, field)
                      if "merge" in strategies else _clean(patch_list))
        elif live_list is not None:
            merged = live_list
        elif patch_list is not None:
            merged = _clean(patch_list)
        else:
            continue
        original[field] = _normalize_order(merged, order, live_list or [], merge_key)


def _delete_from_primitive_list(original: dict[str, Any], field: str, values: Any) -> None:
    if not field or not isinstance(values, list):
        raise _bad("invalid patch format of primitive list")
    live = original.get(field)
    if isinstance(live, list):
        original[field] = [x for x in live if _index_of(values, x, "") < 0]


def _set_value(original: dict[str, Any], key: str, value: JSON) -> None:
    cleaned = _clean(value)
    if cleaned is _DROP:
        original.pop(key, None)
    else:
        original[key] = cleaned


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` in place (both are private copies) and return it."""
    if PATCH in patch:
        directive = patch.pop(PATCH)
        _check_patch_type(directive, patch)
        if directive == "replace":
            return _clean(patch)  # type: ignore[no-any-return]
        if directive == "delete":
            return {}
    if RETAIN_KEYS in patch:
        _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, schema)
    deletions: list[tuple[str, Any]] = []
    for key, pv in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            deletions.append((key[len(DELETE_FROM_PRIMITIVE_LIST):], pv))
            continue
        if pv is None:
            original.pop(key, None)
            continue
        ov = original.get(key)
        if isinstance(ov, dict) and isinstance(pv, dict):
            prop = _prop(schema, key)
            strategies, _ = _meta(prop)
            if "replace" in strategies:
                _set_value(original, key, pv)
            else:
                original[key] = _merge_map(ov, pv, prop)
        elif isinstance(ov, list) and isinstance(pv, list):
            prop = _prop(schema, key)
            strategies, merge_key = _meta(prop)
            if "merge" in strategies:
                original[key] = _merge_list(ov, pv, prop, merge_key, key)
            else:
                _set_value(original, key, pv)
        else:
            _set_value(original, key, pv)
    for field, values in deletions:
        _delete_from_primitive_list(original, field, values)
    return original


def strategic_merge_patch(doc: JSON, patch: JSON, schema: Schema) -> JSON:
    """Apply a strategic merge patch to a copy of ``doc``.

    ``schema`` is the upstream OpenAPI definition of the object's kind
    (``openapi_defs.schema_for(group, version, kind)``) or ``None`` for unknown types.
    """
    if not isinstance(patch, dict):
        raise _bad("invalid JSON document: a strategic merge patch must be a JSON object")
    original = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    return _merge_map(original, copy.deepcopy(patch), schema)
