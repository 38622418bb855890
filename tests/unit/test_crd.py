"""Tests for kybernetes.api.crd: CRD validation/defaulting/status/resources and custom objects."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from kybernetes.api import crd as c
from kybernetes.api.errors import Cause

Obj = dict[str, Any]

CRONTAB_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string"},
                "image": {"type": "string"},
                "replicas": {"type": "integer"},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def crontab_crd(**spec_overrides: Any) -> Obj:
    """The CronTab CRD from the Kubernetes docs (stable.example.com/v1)."""
    spec: Obj = {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [{
            "name": "v1",
            "served": True,
            "storage": True,
            "schema": {"openAPIV3Schema": copy.deepcopy(CRONTAB_SCHEMA)},
        }],
    }
    spec.update(spec_overrides)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"}, "spec": spec}


def crontab(**spec: Any) -> Obj:
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "my-new-cron-object", "namespace": "default"},
            "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", **spec}}


def has(causes: list[Cause], field: str, message: str) -> bool:
    return any(x.field == field and message in x.message for x in causes)


# ------------------------------------------------------------------------------------------
# default_crd / validate_crd
# ------------------------------------------------------------------------------------------

def test_default_crd_fills_names_and_conversion() -> None:
    raw = crontab_crd()
    del raw["spec"]["names"]["singular"]
    out = c.default_crd(raw)
    names = out["spec"]["names"]
    assert names["singular"] == "crontab"
    assert names["listKind"] == "CronTabList"
    assert out["spec"]["conversion"] == {"strategy": "None"}
    assert "singular" not in raw["spec"]["names"]  # input untouched


def test_default_crd_keeps_explicit_values() -> None:
    raw = crontab_crd()
    raw["spec"]["names"]["listKind"] = "CronTabCollection"
    assert c.default_crd(raw)["spec"]["names"]["listKind"] == "CronTabCollection"


def _crd_with(path: str, value: Any) -> Obj:
    crd = c.default_crd(crontab_crd())
    cur: Any = crd
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    if value is ...:
        del cur[int(last) if isinstance(cur, list) else last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return crd


CRD_CASES = [
    pytest.param(c.default_crd(crontab_crd()), None, None, id="valid"),
    pytest.param(_crd_with("metadata.name", "crontab.stable.example.com"), "metadata.name",
                 'Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group', id="name-mismatch"),
    pytest.param(_crd_with("spec.group", ""), "spec.group", "Required value", id="group-required"),
    pytest.param(_crd_with("spec.group", "example"), "spec.group", "should be a domain with at least one dot", id="group-no-dot"),
    pytest.param(_crd_with("spec.group", "Example.com"), "spec.group", "RFC 1123 subdomain", id="group-syntax"),
    pytest.param(_crd_with("spec.scope", "Global"), "spec.scope",
                 'Unsupported value: "Global": supported values: "Cluster", "Namespaced"', id="scope-value"),
    pytest.param(_crd_with("spec.scope", ...), "spec.scope", "Required value", id="scope-required"),
    pytest.param(_crd_with("spec.names.plural", ""), "spec.names.plural", "Required value", id="plural-required"),
    pytest.param(_crd_with("spec.names.plural", "Cron_Tabs"), "spec.names.plural", "DNS-1035 label", id="plural-syntax"),
    pytest.param(_crd_with("spec.names.kind", ""), "spec.names.kind", "Required value", id="kind-required"),
    pytest.param(_crd_with("spec.names.kind", "Cron-Tab!"), "spec.names.kind", "may have mixed case, but should otherwise match", id="kind-syntax"),
    pytest.param(_crd_with("spec.names.listKind", "CronTab"), "spec.names.listKind", "kind and listKind may not be the same", id="listkind-same"),
    pytest.param(_crd_with("spec.names.shortNames", ["c t"]), "spec.names.shortNames[0]", "DNS-1035 label", id="shortname"),
    pytest.param(_crd_with("spec.versions", []), "spec.versions", "must have exactly one version marked as storage version", id="versions-empty"),
    pytest.param(_crd_with("spec.versions.0.storage", False), "spec.versions", "must have exactly one version marked as storage version", id="no-storage"),
    pytest.param(_crd_with("spec.versions.0.served", False), "spec.versions", "must have at least one served version", id="none-served"),
    pytest.param(_crd_with("spec.versions.0.name", "V1"), "spec.versions[0].name", "DNS-1035 label", id="version-name"),
    pytest.param(_crd_with("spec.versions.0.schema", ...), "spec.versions[0].schema.openAPIV3Schema",
                 "Required value: schemas are required", id="schema-required"),
    pytest.param(_crd_with("spec.versions.0.schema.openAPIV3Schema.type", "string"), "spec.versions[0].schema.openAPIV3Schema.type",
                 "must be object at the root", id="schema-root-type"),
    pytest.param(_crd_with("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.image", {}),
                 "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[image].type",
                 "must not be empty for specified object fields", id="schema-structural-type"),
    pytest.param(_crd_with("spec.versions.0.subresources", {"scale": {"specReplicasPath": "spec.replicas", "statusReplicasPath": ".status.replicas"}}),
                 "spec.versions[0].subresources.scale.specReplicasPath", "should be a json path under .spec", id="scale-path"),
    pytest.param(_crd_with("spec.versions.0.additionalPrinterColumns", [{"name": "Spec", "type": "text", "jsonPath": ".spec.cronSpec"}]),
                 "spec.versions[0].additionalPrinterColumns[0].type", "Unsupported value", id="column-type"),
    pytest.param(_crd_with("spec.conversion.strategy", "Magic"), "spec.conversion.strategy", "Unsupported value", id="conversion-strategy"),
    pytest.param(_crd_with("metadata.namespace", "default"), "metadata.namespace", "not allowed on this type", id="cluster-scoped"),
]


@pytest.mark.parametrize("crd,field,message", CRD_CASES)
def test_validate_crd(crd: Obj, field: str | None, message: str | None) -> None:
    causes = c.validate_crd(crd)
    if field is None:
        assert causes == []
    else:
        assert has(causes, field, message), causes  # type: ignore[arg-type]


def test_validate_crd_duplicate_versions() -> None:
    crd = c.default_crd(crontab_crd())
    v2 = copy.deepcopy(crd["spec"]["versions"][0])
    v2["storage"] = False
    crd["spec"]["versions"].append(v2)
    assert has(c.validate_crd(crd), "spec.versions", "must contain unique version names")
    v2["name"] = "v2"
    assert c.validate_crd(crd) == []


def _established(crd: Obj) -> Obj:
    return {**crd, "status": c.crd_status(crd, "2024-01-01T00:00:00Z")}


UPDATE_CASES = [
    pytest.param("spec.versions.0.schema.openAPIV3Schema.properties.spec.properties.image", {"type": "string", "maxLength": 100},
                 None, None, id="schema-change-ok"),
    pytest.param("spec.group", "other.example.com", "spec.group", "field is immutable", id="group-immutable"),
    pytest.param("spec.names.plural", "crons", "spec.names.plural", "field is immutable", id="plural-immutable"),
    pytest.param("spec.scope", "Cluster", "spec.scope", "field is immutable", id="scope-immutable-when-established"),
    pytest.param("spec.names.kind", "Cron", "spec.names.kind", "field is immutable", id="kind-immutable-when-established"),
]


@pytest.mark.parametrize("path,value,field,message", UPDATE_CASES)
def test_validate_crd_update(path: str, value: Any, field: str | None, message: str | None) -> None:
    old = _established(c.default_crd(crontab_crd()))
    new = _crd_with(path, value)
    causes = c.validate_crd(new, old)
    if field is None:
        assert causes == []
    else:
        assert has(causes, field, message), causes  # type: ignore[arg-type]


def test_scope_may_change_before_established() -> None:
    old = c.default_crd(crontab_crd())
    assert c.validate_crd(_crd_with("spec.scope", "Cluster"), old) == []


# ------------------------------------------------------------------------------------------
# crd_status / resources_for_crd
# ------------------------------------------------------------------------------------------

def test_crd_status() -> None:
    crd = c.default_crd(crontab_crd())
    st = c.crd_status(crd, dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc))
    conds = {x["type"]: x for x in st["conditions"]}
    assert conds["NamesAccepted"]["status"] == "True" and conds["NamesAccepted"]["reason"] == "NoConflicts"
    assert conds["Established"]["status"] == "True" and conds["Established"]["reason"] == "InitialNamesAccepted"
    assert conds["Established"]["lastTransitionTime"] == "2024-05-06T07:08:09Z"
    assert st["acceptedNames"] == crd["spec"]["names"]
    assert st["storedVersions"] == ["v1"]


def test_crd_status_keeps_history() -> None:
    crd = _established(c.default_crd(crontab_crd()))
    crd["spec"]["versions"][0]["storage"] = False
    crd["spec"]["versions"].append({"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}})
    st = c.crd_status(crd, "2025-01-01T00:00:00Z")
    assert st["storedVersions"] == ["v1", "v2"]
    assert all(x["lastTransitionTime"] == "2024-01-01T00:00:00Z" for x in st["conditions"])


def test_resources_for_crd() -> None:
    crd = c.default_crd(crontab_crd())
    crd["spec"]["names"]["categories"] = ["all"]
    cols = [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]
    v1 = crd["spec"]["versions"][0]
    v1["additionalPrinterColumns"] = cols
    v1["subresources"] = {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                  "statusReplicasPath": ".status.replicas",
                                                  "labelSelectorPath": ".status.labelSelector"}}
    crd["spec"]["versions"].append({"name": "v1beta1", "served": False, "storage": False,
                                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}})
    (info,) = c.resources_for_crd(crd)  # v1beta1 is not served
    assert (info.group, info.version, info.kind, info.plural, info.singular) == ("stable.example.com", "v1", "CronTab", "crontabs", "crontab")
    assert info.namespaced and info.custom
    assert info.short_names == ("ct",) and info.categories == ("all",)
    assert info.has_status and info.subresource("scale") is not None
    assert info.subresource("scale").kind == "Scale"  # type: ignore[union-attr]
    assert info.scale_paths == (".spec.replicas", ".status.replicas", ".status.labelSelector")
    assert info.printer_columns == tuple(cols)
    assert info.schema == v1["schema"]["openAPIV3Schema"]
    assert info.preserve_unknown is False
    assert info.key("default", "x") == "/registry/stable.example.com/crontabs/default/x"


def test_resources_for_cluster_scoped_preserving_crd() -> None:
    crd = c.default_crd(crontab_crd(scope="Cluster"))
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"] = True
    crd["spec"]["versions"].append({"name": "v2", "served": True, "storage": False, "schema": {"openAPIV3Schema": {"type": "object"}}})
    infos = c.resources_for_crd(crd)
    assert [i.version for i in infos] == ["v1", "v2"]
    assert not infos[0].namespaced and infos[0].preserve_unknown
    assert not infos[0].has_status and infos[0].scale_paths is None
    assert infos[0].storage_version is None and infos[1].storage_version == "v1"


# ------------------------------------------------------------------------------------------
# validate_custom_object
# ------------------------------------------------------------------------------------------

def test_crontab_objects() -> None:
    assert c.validate_custom_object(CRONTAB_SCHEMA, crontab(replicas=3)) == []
    causes = c.validate_custom_object(CRONTAB_SCHEMA, crontab(replicas="string"))
    assert [x.to_dict() for x in causes] == [{
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        "field": "spec.replicas",
    }]


def s_obj(props: Obj, **kw: Any) -> Obj:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props, **kw}}}


CUSTOM_CASES = [
    pytest.param(s_obj({"n": {"type": "integer"}}), {"n": 1.0}, None, None, id="integral-float-is-integer"),
    pytest.param(s_obj({"n": {"type": "number"}}), {"n": True}, "spec.n", 'must be of type number: "boolean"', id="bool-not-number"),
    pytest.param(s_obj({"s": {"type": "string"}}), {"s": None}, "spec.s", 'must be of type string: "null"', id="null-not-nullable"),
    pytest.param(s_obj({"s": {"type": "string", "nullable": True}}), {"s": None}, None, None, id="nullable"),
    pytest.param(s_obj({"a": {"type": "string"}}, required=["a"]), {}, "spec.a", "Required value", id="required"),
    pytest.param(s_obj({"a": {"type": "string"}}, required=["a"]), {"a": "x"}, None, None, id="required-present"),
    pytest.param(s_obj({"e": {"type": "string", "enum": ["a", "b"]}}), {"e": "x"}, "spec.e",
                 'Unsupported value: "x": supported values: "a", "b"', id="enum"),
    pytest.param(s_obj({"n": {"type": "integer", "maximum": 10}}), {"n": 11}, "spec.n",
                 "Invalid value: 11: spec.n in body should be less than or equal to 10", id="maximum"),
    pytest.param(s_obj({"n": {"type": "integer", "maximum": 10, "exclusiveMaximum": True}}), {"n": 10}, "spec.n",
                 "should be less than 10", id="exclusive-maximum"),
    pytest.param(s_obj({"n": {"type": "integer", "minimum": 1}}), {"n": 0}, "spec.n",
                 "should be greater than or equal to 1", id="minimum"),
    pytest.param(s_obj({"n": {"type": "integer", "minimum": 1, "exclusiveMinimum": True}}), {"n": 1}, "spec.n",
                 "should be greater than 1", id="exclusive-minimum"),
    pytest.param(s_obj({"n": {"type": "integer", "multipleOf": 5}}), {"n": 7}, "spec.n", "should be a multiple of 5", id="multiple-of"),
    pytest.param(s_obj({"s": {"type": "string", "maxLength": 3}}), {"s": "abcd"}, "spec.s", "Too long: may not be more than 3", id="max-length"),
    pytest.param(s_obj({"s": {"type": "string", "minLength": 2}}), {"s": "a"}, "spec.s", "should be at least 2 chars long", id="min-length"),
    pytest.param(s_obj({"s": {"type": "string", "pattern": "^[0-9]+$"}}), {"s": "12a"}, "spec.s", "should match '^[0-9]+$'", id="pattern"),
    pytest.param(s_obj({"s": {"type": "string", "pattern": "^[0-9]+$"}}), {"s": "12"}, None, None, id="pattern-ok"),
    pytest.param(s_obj({"l": {"type": "array", "items": {"type": "string"}, "maxItems": 1}}), {"l": ["a", "b"]}, "spec.l",
                 "Too many: 2: must have at most 1 items", id="max-items"),
    pytest.param(s_obj({"l": {"type": "array", "items": {"type": "string"}, "minItems": 1}}), {"l": []}, "spec.l",
                 "should have at least 1 items", id="min-items"),
    pytest.param(s_obj({"l": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}), {"l": ["a", "a"]}, "spec.l[1]",
                 'Duplicate value: "a"', id="unique-items"),
    pytest.param(s_obj({"l": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}}), {"l": ["a", "a"]},
                 "spec.l[1]", "Duplicate value", id="list-type-set"),
    pytest.param(s_obj({"l": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}),
                 {"l": [{"name": "a"}, {"name": "a"}]}, "spec.l[1]", "Duplicate value", id="list-type-map"),
    pytest.param(s_obj({"l": {"type": "array", "items": {"type": "integer"}}}), {"l": [1, "x"]}, "spec.l[1]",
                 'spec.l[1] in body must be of type integer: "string"', id="items"),
    pytest.param(s_obj({"m": {"type": "object", "additionalProperties": {"type": "integer"}}}), {"m": {"a": 1, "b": "x"}}, "spec.m.b",
                 "must be of type integer", id="additional-properties"),
    pytest.param(s_obj({"m": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}}}), {"m": {"a": "1", "b": "2"}},
                 "spec.m", "Too many: 2: must have at most 1 items", id="max-properties"),
    pytest.param(s_obj({"m": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}}}), {"m": {}},
                 "spec.m", "should have at least 1 properties", id="min-properties"),
    pytest.param(s_obj({"t": {"type": "string", "format": "date-time"}}), {"t": "yesterday"}, "spec.t",
                 'must be of type date-time: "yesterday"', id="format-date-time"),
    pytest.param(s_obj({"t": {"type": "string", "format": "date-time"}}), {"t": "2024-01-01T00:00:00Z"}, None, None, id="format-date-time-ok"),
    pytest.param(s_obj({"n": {"type": "integer", "format": "int32"}}), {"n": 2**31}, "spec.n", "must be of type int32", id="format-int32"),
    pytest.param(s_obj({"t": {"type": "string", "format": "somethingelse"}}), {"t": "x"}, None, None, id="format-unknown-lenient"),
    pytest.param(s_obj({"p": {"x-kubernetes-int-or-string": True}}), {"p": "50%"}, None, None, id="int-or-string-string"),
    pytest.param(s_obj({"p": {"x-kubernetes-int-or-string": True}}), {"p": 3}, None, None, id="int-or-string-int"),
    pytest.param(s_obj({"p": {"x-kubernetes-int-or-string": True}}), {"p": True}, "spec.p",
                 'must be of type integer,string: "boolean"', id="int-or-string-bad"),
    pytest.param(s_obj({"r": {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}}),
                 {"r": {"metadata": {}}}, "spec.r.apiVersion", "Required value", id="embedded-resource"),
    pytest.param(s_obj({"r": {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}}),
                 {"r": {"apiVersion": "v1", "kind": "Pod", "spec": {}}}, None, None, id="embedded-resource-ok"),
    pytest.param(s_obj({"any": {"x-kubernetes-preserve-unknown-fields": True}}), {"any": [1, {"a": None}]}, None, None, id="preserve-anything"),
    pytest.param(s_obj({"a": {"type": "string"}, "b": {"type": "string"}}, oneOf=[{"required": ["a"]}, {"required": ["b"]}]),
                 {"a": "x", "b": "y"}, "spec", "must validate one and only one schema (oneOf)", id="one-of"),
    pytest.param(s_obj({"a": {"type": "string"}, "b": {"type": "string"}}, oneOf=[{"required": ["a"]}, {"required": ["b"]}]),
                 {"a": "x"}, None, None, id="one-of-ok"),
    pytest.param(s_obj({"a": {"type": "string"}, "b": {"type": "string"}}, anyOf=[{"required": ["a"]}, {"required": ["b"]}]),
                 {}, "spec", "must validate at least one schema (anyOf)", id="any-of"),
    pytest.param(s_obj({"n": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]}}), {"n": 9}, "spec.n",
                 "should be less than or equal to 5", id="all-of"),
    pytest.param(s_obj({"s": {"type": "string", "not": {"enum": ["forbidden"]}}}), {"s": "forbidden"}, "spec.s",
                 "must not validate the schema (not)", id="not"),
]


@pytest.mark.parametrize("schema,spec,field,message", CUSTOM_CASES)
def test_validate_custom_object(schema: Obj, spec: Obj, field: str | None, message: str | None) -> None:
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "x"}, "spec": spec}
    causes = c.validate_custom_object(schema, obj)
    if field is None:
        assert causes == []
    else:
        assert has(causes, field, message), causes  # type: ignore[arg-type]


def test_root_meta_fields_are_skipped() -> None:
    schema = {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
              "properties": {"spec": {"type": "object"}}}
    assert c.validate_custom_object(schema, {"metadata": {"name": 5}, "spec": {}}) == []
    assert has(c.validate_custom_object(schema, {"metadata": {}}), "spec", "Required value")


# ------------------------------------------------------------------------------------------
# prune / unknown_fields / apply_schema_defaults
# ------------------------------------------------------------------------------------------

def test_prune_crontab() -> None:
    obj = crontab(replicas=1, foo="bar")
    obj["extra"] = {"x": 1}
    snapshot = copy.deepcopy(obj)
    out = c.prune(CRONTAB_SCHEMA, obj)
    assert obj == snapshot  # input untouched
    assert out == {**crontab(replicas=1)}
    assert out["metadata"] is obj["metadata"]
    assert c.unknown_fields(CRONTAB_SCHEMA, obj) == ["spec.foo", "extra"]


def test_prune_returns_same_object_when_clean() -> None:
    obj = crontab(replicas=1)
    assert c.prune(CRONTAB_SCHEMA, obj) is obj
    assert c.unknown_fields(CRONTAB_SCHEMA, obj) == []


PRUNE_CASES = [
    pytest.param({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, {"spec": {"a": 1}}, {"spec": {"a": 1}}, [],
                 id="root-preserve"),
    pytest.param(s_obj({"keep": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}),
                 {"spec": {"keep": {"any": {"thing": 1}}, "drop": 1}}, {"spec": {"keep": {"any": {"thing": 1}}}}, ["spec.drop"],
                 id="nested-preserve"),
    pytest.param(s_obj({"l": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}}}),
                 {"spec": {"l": [{"a": "x", "b": "y"}]}}, {"spec": {"l": [{"a": "x"}]}}, ["spec.l[0].b"], id="in-array"),
    pytest.param(s_obj({"m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}}}),
                 {"spec": {"m": {"k": {"a": "x", "z": 1}}}}, {"spec": {"m": {"k": {"a": "x"}}}}, ["spec.m.k.z"], id="additional-properties"),
    pytest.param(s_obj({"r": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {"spec": {"type": "object"}}}}),
                 {"spec": {"r": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1}}},
                 {"spec": {"r": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}}}, ["spec.r.junk"],
                 id="embedded-keeps-meta"),
    pytest.param(s_obj({}), {"spec": {"a": 1}}, {"spec": {}}, ["spec.a"], id="object-without-properties"),
]


@pytest.mark.parametrize("schema,obj,expected,dropped", PRUNE_CASES)
def test_prune(schema: Obj, obj: Obj, expected: Obj, dropped: list[str]) -> None:
    assert c.prune(schema, obj) == expected
    assert c.unknown_fields(schema, obj) == dropped


DEFAULT_SCHEMA: Obj = s_obj({
    "replicas": {"type": "integer", "default": 1},
    "image": {"type": "string"},
    "policy": {"type": "object", "default": {}, "properties": {"mode": {"type": "string", "default": "Auto"}}},
    "ports": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}}}},
    "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string", "default": "x"}}}},
})


@pytest.mark.parametrize("spec,expected", [
    pytest.param({}, {"replicas": 1, "policy": {"mode": "Auto"}}, id="top-level-and-nested-defaults"),
    pytest.param({"replicas": 3, "policy": {"mode": "Manual"}}, {"replicas": 3, "policy": {"mode": "Manual"}}, id="explicit-kept"),
    pytest.param({"replicas": None}, {"replicas": 1, "policy": {"mode": "Auto"}}, id="null-non-nullable-defaulted"),
    pytest.param({"ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}]},
                 {"replicas": 1, "policy": {"mode": "Auto"}, "ports": [{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}]},
                 id="array-items"),
    pytest.param({"labels": {"k": {}}}, {"replicas": 1, "policy": {"mode": "Auto"}, "labels": {"k": {"v": "x"}}}, id="map-values"),
])
def test_apply_schema_defaults(spec: Obj, expected: Obj) -> None:
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "x"}, "spec": spec}
    snapshot = copy.deepcopy(obj)
    out = c.apply_schema_defaults(DEFAULT_SCHEMA, obj)
    assert out["spec"] == expected
    assert obj == snapshot  # input untouched


def test_defaults_are_copies() -> None:
    a = c.apply_schema_defaults(DEFAULT_SCHEMA, {"spec": {}})
    a["spec"]["policy"]["mode"] = "changed"
    b = c.apply_schema_defaults(DEFAULT_SCHEMA, {"spec": {}})
    assert b["spec"]["policy"]["mode"] == "Auto"
    assert DEFAULT_SCHEMA["properties"]["spec"]["properties"]["policy"]["default"] == {}
