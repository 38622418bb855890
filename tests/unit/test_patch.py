"""JSON patch, JSON merge patch and strategic merge patch (with the real upstream schemas)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kybernetes.api import errors, openapi_defs
from kybernetes.api.patch import (
    json_equal,
    json_patch,
    merge_patch,
    strategic_merge_patch,
    strip_directives,
)

DEPLOYMENT = openapi_defs.schema_for("apps", "v1", "Deployment")
POD = openapi_defs.schema_for("", "v1", "Pod")
NODE = openapi_defs.schema_for("", "v1", "Node")
SERVICE = openapi_defs.schema_for("", "v1", "Service")
PDB = openapi_defs.schema_for("policy", "v1", "PodDisruptionBudget")
SCHEMAS = {"Deployment": DEPLOYMENT, "Pod": POD, "Node": NODE, "Service": SERVICE, "PDB": PDB, None: None}


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default", "finalizers": ["a", "b"],
                     "annotations": {"old": "1"},
                     "ownerReferences": [{"uid": "u1", "name": "o1", "kind": "X", "apiVersion": "v1"}]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"spec": {
                "containers": [
                    {"name": "api", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "args": ["--x", "--y"]},
                    {"name": "side", "image": "busybox"},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            }},
        },
    }


def test_schemas_loaded() -> None:
    assert all(s is not None for k, s in SCHEMAS.items() if k is not None)


# --------------------------------------------------------------------------------------------
# Strategic merge patch

def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_smp_kubectl_apply_keeps_ports() -> None:
    live = _deployment()
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
             "spec": {"replicas": 3, "template": {"spec": {
                 "$setElementOrder/containers": [{"name": "api"}, {"name": "side"}],
                 "containers": [{"image": "nginx:1.26", "name": "api"}]}}}}
    out = strategic_merge_patch(live, patch, DEPLOYMENT)
    assert out["spec"]["replicas"] == 3
    api = _containers(out)[0]
    assert api["image"] == "nginx:1.26" and api["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert [c["name"] for c in _containers(out)] == ["api", "side"]
    assert out["metadata"]["annotations"] == {"old": "1", "kubectl.kubernetes.io/last-applied-configuration": "{}\n"}
    assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]
    assert live == _deployment()  # input untouched


def test_smp_same_patch_as_merge_patch_loses_data() -> None:
    # The reason SMP exists: RFC 7386 would replace the container list.
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "nginx:1.26", "name": "api"}]}}}}
    assert "ports" not in _containers(merge_patch(_deployment(), patch))[0]
    assert "ports" in _containers(strategic_merge_patch(_deployment(), patch, DEPLOYMENT))[0]


def _pod_spec_patch(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "side", "$patch": "delete"}]}),
            lambda o: [c["name"] for c in _containers(o)] == ["api"], id="delete-container"),
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "new", "image": "x"}]}),
            lambda o: [c["name"] for c in _containers(o)] == ["new", "api", "side"], id="add-container-no-order"),
        pytest.param(
            _pod_spec_patch({"$setElementOrder/containers": [{"name": "api"}, {"name": "side"}, {"name": "new"}],
                             "containers": [{"name": "new", "image": "x"}]}),
            lambda o: [c["name"] for c in _containers(o)] == ["api", "side", "new"], id="add-container-ordered"),
        pytest.param(
            _pod_spec_patch({"$setElementOrder/containers": [{"name": "side"}, {"name": "api"}]}),
            lambda o: [c["name"] for c in _containers(o)] == ["side", "api"], id="reorder-only"),
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "api", "env": [{"name": "B", "value": "3"},
                                                                      {"name": "C", "value": "4"}]}]}),
            lambda o: _containers(o)[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                                                   {"name": "C", "value": "4"}], id="env-merged-by-name"),
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "api", "env": [{"name": "A", "$patch": "delete"}]}]}),
            lambda o: _containers(o)[0]["env"] == [{"name": "B", "value": "2"}], id="env-delete"),
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "api", "args": ["--z"]}]}),
            lambda o: _containers(o)[0]["args"] == ["--z"], id="args-atomic"),
        pytest.param(
            _pod_spec_patch({"tolerations": [{"key": "other", "operator": "Exists"}]}),
            lambda o: o["spec"]["template"]["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}],
            id="tolerations-atomic"),
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "api", "ports": [{"containerPort": 443}]}]}),
            lambda o: [p["containerPort"] for p in _containers(o)[0]["ports"]] == [443, 80],
            id="ports-merged-by-containerPort"),
        pytest.param(
            _pod_spec_patch({"containers": [{"name": "api", "image": None}]}),
            lambda o: "image" not in _containers(o)[0] and _containers(o)[0]["ports"], id="null-deletes-field"),
        pytest.param(
            _pod_spec_patch({"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}),
            lambda o: _containers(o) == [{"name": "only", "image": "x"}], id="list-replace-directive"),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}},
            lambda o: o["spec"]["strategy"] == {"type": "Recreate"}, id="retain-keys-strategy"),
        pytest.param(
            {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}},
            lambda o: o["spec"]["strategy"] == {"type": "Recreate"}, id="map-replace-directive"),
        pytest.param(
            {"spec": {"strategy": {"$patch": "delete"}}},
            lambda o: o["spec"]["strategy"] == {}, id="map-delete-directive"),
        pytest.param(
            _pod_spec_patch({"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"],
                                          "hostPath": {"path": "/x"}}]}),
            lambda o: o["spec"]["template"]["spec"]["volumes"] == [
                {"name": "data", "hostPath": {"path": "/x"}}, {"name": "cfg", "configMap": {"name": "c"}}],
            id="volumes-retain-keys"),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
            lambda o: o["metadata"]["finalizers"] == ["b"], id="delete-from-primitive-list"),
        pytest.param(
            {"metadata": {"finalizers": ["c", "a"]}},
            lambda o: o["metadata"]["finalizers"] == ["c", "a", "b"], id="finalizers-union"),
        pytest.param(
            {"metadata": {"$setElementOrder/finalizers": ["b", "c"], "finalizers": ["c"],
                          "$deleteFromPrimitiveList/finalizers": ["a"]}},
            lambda o: o["metadata"]["finalizers"] == ["b", "c"], id="finalizers-apply-remove-add"),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/nothere": ["a"]}},
            lambda o: "nothere" not in o["metadata"], id="delete-from-missing-list"),
        pytest.param(
            {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}, {"uid": "u2", "name": "o2"}]}},
            lambda o: o["metadata"]["ownerReferences"] == [
                {"uid": "u1", "name": "o1", "kind": "X", "apiVersion": "v1", "controller": True},
                {"uid": "u2", "name": "o2"}], id="owner-references-by-uid"),
        pytest.param(
            {"metadata": {"annotations": {"old": None, "new": "2"}}},
            lambda o: o["metadata"]["annotations"] == {"new": "2"}, id="annotations-map"),
        pytest.param(
            {"metadata": {"labels": {"a": "b", "gone": None}}},
            lambda o: o["metadata"]["labels"] == {"a": "b"}, id="new-map-drops-nulls"),
        pytest.param(
            {"spec": {"paused": None}},
            lambda o: "paused" not in o["spec"], id="null-missing-key"),
        pytest.param(
            {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t"}}}}},
            lambda o: o["spec"]["template"]["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "t"},
            id="rollout-restart"),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "$patch": "merge"}}},
            lambda o: o["spec"]["strategy"] == {"type": "Recreate"}, id="explicit-merge-directive"),
    ],
)
def test_smp_deployment(patch: dict[str, Any], check: Any) -> None:
    out = strategic_merge_patch(_deployment(), patch, DEPLOYMENT)
    assert check(out), out
    assert "$" not in repr(out)


def test_smp_nested_order_and_delete_in_element() -> None:
    # kubectl apply after removing env B from container "api" and adding a named port.
    patch = _pod_spec_patch({
        "$setElementOrder/containers": [{"name": "api"}, {"name": "side"}],
        "containers": [{"name": "api",
                        "$setElementOrder/env": [{"name": "A"}],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 8443}],
                        "ports": [{"containerPort": 8443, "name": "https"}]}]})
    out = strategic_merge_patch(_deployment(), patch, DEPLOYMENT)
    api = _containers(out)[0]
    assert api["env"] == [{"name": "A", "value": "1"}]
    assert api["ports"] == [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8443, "name": "https"}]
    assert "$" not in repr(out)


def test_smp_new_element_with_directives_is_cleaned() -> None:
    patch = _pod_spec_patch({"containers": [{"name": "new", "$setElementOrder/env": [{"name": "X"}],
                                             "env": [{"name": "X", "value": "1"}], "image": None}]})
    out = strategic_merge_patch(_deployment(), patch, DEPLOYMENT)
    assert _containers(out)[0] == {"name": "new", "env": [{"name": "X", "value": "1"}]}


def test_smp_node_taints_atomic_and_unschedulable() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"},
                                                            {"key": "b", "effect": "NoExecute"}]}}
    out = strategic_merge_patch(node, {"spec": {"taints": [{"key": "c", "effect": "NoSchedule"}],
                                                "unschedulable": True}}, NODE)
    assert out["spec"] == {"taints": [{"key": "c", "effect": "NoSchedule"}], "unschedulable": True}
    out = strategic_merge_patch(out, {"spec": {"taints": None, "unschedulable": None}}, NODE)
    assert out["spec"] == {}


def test_smp_node_status_conditions_by_type() -> None:
    node = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}
    out = strategic_merge_patch(node, {"status": {"conditions": [{"type": "Ready", "status": "True"}],
                                                  "addresses": [{"type": "Hostname", "address": "n1"}]}}, NODE)
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]
    assert [a["type"] for a in out["status"]["addresses"]] == ["Hostname", "InternalIP"]


def test_smp_service_ports_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, SERVICE)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "name": "http"}, {"port": 443, "name": "https"}]


def test_smp_pdb_selector_replace_strategy() -> None:
    pdb = {"spec": {"selector": {"matchLabels": {"a": "b"}}}}
    out = strategic_merge_patch(pdb, {"spec": {"selector": {"matchLabels": {"c": "d"}}}}, PDB)
    assert out["spec"]["selector"] == {"matchLabels": {"c": "d"}}


def test_smp_pod_containers_direct() -> None:
    pod = {"spec": {"containers": [{"name": "c", "image": "a", "volumeMounts": [{"mountPath": "/a", "name": "v"}]}]}}
    out = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "c", "volumeMounts": [
        {"mountPath": "/b", "name": "w"}]}]}}, POD)
    assert [m["mountPath"] for m in out["spec"]["containers"][0]["volumeMounts"]] == ["/b", "/a"]


def test_smp_top_level_replace() -> None:
    out = strategic_merge_patch({"a": 1, "b": {"c": 2}}, {"$patch": "replace", "b": {"d": 3}}, None)
    assert out == {"b": {"d": 3}}


# Upstream ordering cases (apimachinery strategicpatch "set elements order ... server-only items").
@pytest.mark.parametrize(
    ("live", "order", "patch_list", "expected"),
    [
        pytest.param([1, 3, 4, 2, 9], [4, 2, 3, 1], None, [4, 2, 3, 1, 9], id="server-only-last"),
        pytest.param([1, 2, 9, 3, 4], [2, 1, 4, 3], None, [2, 1, 9, 4, 3], id="server-only-interleaved"),
        pytest.param([1, 2, 7, 9, 8, 3, 4], [2, 1, 4, 3], None, [2, 1, 7, 9, 8, 4, 3], id="server-only-run"),
        pytest.param([1, 2], [3, 1, 2], [3], [3, 1, 2], id="add-first"),
        pytest.param([1, 2], [4, 1, 2, 3], [4, 3], [4, 1, 2, 3], id="add-two"),
    ],
)
def test_smp_set_element_order(live: list[int], order: list[int], patch_list: list[int] | None,
                               expected: list[int]) -> None:
    def named(names: list[int]) -> list[dict[str, Any]]:
        return [{"name": str(n)} for n in names]

    doc = {"spec": {"containers": named(live)}}
    patch: dict[str, Any] = {"$setElementOrder/containers": named(order)}
    if patch_list is not None:
        patch["containers"] = [{"name": str(n), "image": "x"} for n in patch_list]
    out = strategic_merge_patch(doc, {"spec": patch}, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == [str(n) for n in expected]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        pytest.param({"a": {"b": None, "c": 2}}, {"a": {"c": 2}, "l": [1, 2]}, id="maps-merge"),
        pytest.param({"l": [4]}, {"a": {"b": 1}, "l": [4]}, id="lists-replace"),
        pytest.param({"a": [1]}, {"a": [1], "l": [1, 2]}, id="type-change"),
        pytest.param({"l": {"$patch": "delete"}}, {"a": {"b": 1}}, id="delete-directive-on-new-type"),
    ],
)
def test_smp_without_schema(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert strategic_merge_patch({"a": {"b": 1}, "l": [1, 2]}, patch, None) == expected


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param([{"op": "add"}], id="not-an-object"),
        pytest.param({"spec": {"$patch": "bogus"}}, id="unknown-patch-type"),
        pytest.param({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, id="missing-merge-key"),
        pytest.param({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}},
                     id="delete-without-key"),
        pytest.param({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}}},
                     id="merge-directive-in-list"),
        pytest.param({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, id="retain-keys-mismatch"),
        pytest.param({"spec": {"strategy": {"$retainKeys": "type"}}}, id="retain-keys-not-list"),
        pytest.param({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, id="delete-list-not-list"),
        pytest.param({"spec": {"$setElementOrder/": []}}, id="order-without-field"),
        pytest.param({"metadata": {"finalizers": [["x"]]}}, id="list-of-lists"),
    ],
)
def test_smp_errors(patch: Any) -> None:
    with pytest.raises(errors.StatusError) as exc:
        strategic_merge_patch(_deployment(), patch, DEPLOYMENT)
    assert exc.value.code == 400


def test_strip_directives() -> None:
    obj = {"a": {"$retainKeys": ["x"], "x": 1, "y": None},
           "l": [{"name": "a"}, {"name": "b", "$patch": "delete"}],
           "$setElementOrder/l": [{"name": "a"}], "m": {"$patch": "delete"}}
    assert strip_directives(obj) == {"a": {"x": 1}, "l": [{"name": "a"}]}


# --------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386 appendix A examples)

@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="delete"),
        pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="delete-one"),
        pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="list-to-scalar"),
        pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="scalar-to-list"),
        pytest.param({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested"),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="list-replaced"),
        pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="existing-null-kept"),
        pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="new-nested-nulls-dropped"),
        pytest.param({"a": "b"}, {"a": {"c": None}}, {"a": {}}, id="scalar-to-object"),
    ],
)
def test_merge_patch(doc: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert merge_patch(doc, patch) == expected
    assert doc == before


def test_merge_patch_rejects_non_object() -> None:
    with pytest.raises(errors.StatusError) as exc:
        merge_patch({"a": 1}, [1])
    assert exc.value.code == 400


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)
_docs = st.dictionaries(st.text(max_size=3), _json, max_size=4)


@settings(max_examples=50)
@given(_docs)
def test_merge_patch_empty_is_identity(doc: dict[str, Any]) -> None:
    assert merge_patch(doc, {}) == doc


@settings(max_examples=50)
@given(_docs, _docs)
def test_merge_patch_idempotent(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    once = merge_patch(doc, patch)
    assert merge_patch(once, patch) == once


@settings(max_examples=50)
@given(_docs)
def test_smp_without_schema_empty_is_identity(doc: dict[str, Any]) -> None:
    # Plain data without "$" keys: an empty SMP changes nothing.
    doc = {k: v for k, v in doc.items() if not k.startswith("$")}
    assert strategic_merge_patch(doc, {}, None) == doc


# --------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)

@pytest.mark.parametrize(
    ("doc", "ops", "expected"),
    [
        pytest.param({"a": 1}, [{"op": "add", "path": "/b", "value": 2}], {"a": 1, "b": 2}, id="add-key"),
        pytest.param({"l": [1, 3]}, [{"op": "add", "path": "/l/1", "value": 2}], {"l": [1, 2, 3]}, id="add-insert"),
        pytest.param({"l": [1]}, [{"op": "add", "path": "/l/-", "value": 2}], {"l": [1, 2]}, id="add-append"),
        pytest.param({"l": [1]}, [{"op": "add", "path": "/l/1", "value": 2}], {"l": [1, 2]}, id="add-at-end"),
        pytest.param({"a": 1}, [{"op": "add", "path": "", "value": {"x": 1}}], {"x": 1}, id="add-root"),
        pytest.param({"a": 1}, [{"op": "add", "path": "/n", "value": None}], {"a": 1, "n": None}, id="add-null"),
        pytest.param({"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}, id="remove"),
        pytest.param({"l": [1, 2, 3]}, [{"op": "remove", "path": "/l/0"}], {"l": [2, 3]}, id="remove-index"),
        pytest.param({"a": 1}, [{"op": "replace", "path": "/a", "value": 5}], {"a": 5}, id="replace"),
        pytest.param({"a": {"b": 1}}, [{"op": "move", "from": "/a/b", "path": "/c"}], {"a": {}, "c": 1}, id="move"),
        pytest.param({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}],
                     {"a": {"b": 1}, "c": {"b": 1}}, id="copy"),
        pytest.param({"a/b": 1, "m~n": 2}, [{"op": "replace", "path": "/a~1b", "value": 3},
                                            {"op": "remove", "path": "/m~0n"}], {"a/b": 3}, id="escapes"),
        pytest.param({"a": [1, {"b": True}]}, [{"op": "test", "path": "/a", "value": [1.0, {"b": True}]},
                                               {"op": "add", "path": "/ok", "value": 1}],
                     {"a": [1, {"b": True}], "ok": 1}, id="test-passes"),
        pytest.param({"metadata": {"annotations": {"x": "1"}}, "spec": {"template": {"a": 1}}},
                     [{"op": "replace", "path": "/spec/template", "value": {"b": 2}},
                      {"op": "replace", "path": "/metadata/annotations", "value": {"y": "2"}}],
                     {"metadata": {"annotations": {"y": "2"}}, "spec": {"template": {"b": 2}}}, id="rollout-undo"),
        pytest.param({"a": 1}, [], {"a": 1}, id="no-ops"),
    ],
)
def test_json_patch(doc: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert json_patch(doc, ops) == expected
    assert doc == before


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param([{"op": "test", "path": "/a", "value": 2}], "testing value /a failed", id="test-fails"),
        pytest.param([{"op": "test", "path": "/b", "value": True}], "test", id="test-type-strict"),
        pytest.param([{"op": "replace", "path": "/x", "value": 1}], "missing", id="replace-missing"),
        pytest.param([{"op": "remove", "path": "/x"}], "missing", id="remove-missing"),
        pytest.param([{"op": "add", "path": "/x/y", "value": 1}], "missing", id="add-missing-parent"),
        pytest.param([{"op": "add", "path": "/l/5", "value": 1}], "out of bounds", id="add-out-of-range"),
        pytest.param([{"op": "remove", "path": "/l/-"}], "invalid array index", id="remove-dash"),
        pytest.param([{"op": "add", "path": "x", "value": 1}], "invalid JSON pointer", id="bad-pointer"),
        pytest.param([{"op": "move", "from": "/c", "path": "/c/d"}], "child", id="move-into-child"),
        pytest.param([{"op": "bogus", "path": "/a"}], "Unexpected kind: bogus", id="unknown-op"),
        pytest.param([{"op": "add", "path": "/z"}], "missing value", id="add-without-value"),
        pytest.param([{"op": "add", "path": "/ok", "value": 1}, {"op": "test", "path": "/a", "value": 9}],
                     "failed", id="later-op-fails"),
    ],
)
def test_json_patch_errors(ops: list[dict[str, Any]], message: str) -> None:
    doc = {"a": 1, "b": 1, "l": [1], "c": {}}
    with pytest.raises(errors.StatusError) as exc:
        json_patch(doc, ops)
    assert exc.value.code == 422 and exc.value.reason == "Invalid"
    assert message in exc.value.message
    assert doc == {"a": 1, "b": 1, "l": [1], "c": {}}


@pytest.mark.parametrize("ops", [pytest.param({"op": "add"}, id="object"), pytest.param([1], id="non-object-op")])
def test_json_patch_malformed(ops: Any) -> None:
    with pytest.raises(errors.StatusError) as exc:
        json_patch({}, ops)
    assert exc.value.code == 400


_keys = st.text(alphabet="ab~/", min_size=1, max_size=4)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@settings(max_examples=50)
@given(_docs, _keys, _json)
def test_json_patch_add_remove_roundtrip(doc: dict[str, Any], key: str, value: Any) -> None:
    doc.pop(key, None)
    path = "/" + _escape(key)
    added = json_patch(doc, [{"op": "add", "path": path, "value": value}])
    assert json_equal(added[key], value)
    assert json_patch(added, [{"op": "test", "path": path, "value": value}]) == added
    assert json_patch(added, [{"op": "remove", "path": path}]) == doc


@settings(max_examples=50)
@given(st.lists(st.integers(), max_size=5), st.data())
def test_json_patch_list_insert_remove(items: list[int], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(items)))
    doc = {"l": items}
    added = json_patch(doc, [{"op": "add", "path": f"/l/{i}", "value": 99}])
    assert added["l"][i] == 99 and len(added["l"]) == len(items) + 1
    assert json_patch(added, [{"op": "remove", "path": f"/l/{i}"}]) == doc


def test_json_equal() -> None:
    assert json_equal(1, 1.0) and not json_equal(1, True) and not json_equal(0, None)
    assert json_equal({"a": [1, "x"]}, {"a": [1, "x"]}) and not json_equal({"a": 1}, {"b": 1})
