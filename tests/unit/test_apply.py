"""Server-side apply and managedFields (kybernetes.api.apply) against the real upstream schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kybernetes.api import apply as ssa
from kybernetes.api import openapi_defs
from kybernetes.api.errors import StatusError

DEPLOYMENT = openapi_defs.schema_for("apps", "v1", "Deployment")
POD = openapi_defs.schema_for("", "v1", "Pod")
SERVICE = openapi_defs.schema_for("", "v1", "Service")
CONFIGMAP = openapi_defs.schema_for("", "v1", "ConfigMap")
T0, T1, T2 = "2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z", "2025-01-01T00:00:02Z"
KEY_NGINX = 'k:{"name":"nginx"}'


def deployment(
    replicas: int | None = 2,
    image: str = "nginx:1.25",
    containers: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": containers
                if containers is not None
                else [{"name": "nginx", "image": image}]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": labels if labels is not None else {"app": "web"},
        },
        "spec": spec,
    }


def do_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    schema: dict[str, Any] | None = DEPLOYMENT,
    api_version: str = "apps/v1",
    now: str = T0,
) -> dict[str, Any]:
    return ssa.apply(
        live, applied, manager=manager, force=force, api_version=api_version, schema=schema, now=now
    )


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any] | None:
    for e in obj["metadata"].get("managedFields", []):
        if e["manager"] == manager and e["operation"] == operation:
            return e  # type: ignore[no-any-return]
    return None


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> list[str]:
    e = entry(obj, manager, operation)
    return list(ssa.iter_paths(e["fieldsV1"])) if e else []


def conflict_of(fn: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        fn()
    assert info.value.code == 409 and info.value.reason == "Conflict"
    return info.value


# ---------------------------------------------------------------------------- fields_of

FIELDS_CASES = [
    pytest.param(
        deployment(),
        DEPLOYMENT,
        {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {KEY_NGINX: {".": {}, "f:image": {}, "f:name": {}}}},
                },
            },
        },
        id="deployment-atomic-selector-keyed-containers",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s", "uid": "u", "resourceVersion": "5"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]},
            "status": {"loadBalancer": {}},
        },
        SERVICE,
        {
            "f:spec": {
                "f:ports": {
                    'k:{"port":53,"protocol":"UDP"}': {".": {}, "f:port": {}, "f:protocol": {}},
                    'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}},
                }
            }
        },
        id="service-ports-multi-key-defaulted-protocol-status-and-server-meta-skipped",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {"a": "1"}},
            "data": {"k1": "v1", "k2": "v2"},
        },
        CONFIGMAP,
        {"f:data": {"f:k1": {}, "f:k2": {}}, "f:metadata": {"f:annotations": {"f:a": {}}}},
        id="configmap-data",
    ),
    pytest.param(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "finalizers": ["b", "a"]},
            "spec": {
                "nodeSelector": {"disk": "ssd"},
                "containers": [
                    {
                        "name": "c",
                        "image": "i",
                        "args": ["x"],
                        "env": [{"name": "E", "value": "1"}],
                        "resources": {},
                    }
                ],
            },
        },
        POD,
        {
            "f:metadata": {"f:finalizers": {'v:"a"': {}, 'v:"b"': {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"c"}': {
                        ".": {},
                        "f:args": {},
                        "f:env": {'k:{"name":"E"}': {".": {}, "f:name": {}, "f:value": {}}},
                        "f:image": {},
                        "f:name": {},
                        "f:resources": {},
                    }
                },
                "f:nodeSelector": {},
            },
        },
        id="pod-set-finalizers-atomic-map-atomic-args-empty-struct",
    ),
    pytest.param(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "labels": {"x": "y"}},
            "spec": {"size": 3, "tags": ["a"], "nested": {"deep": 1}},
        },
        None,
        {
            "f:metadata": {"f:labels": {"f:x": {}}},
            "f:spec": {".": {}, "f:nested": {".": {}, "f:deep": {}}, "f:size": {}, "f:tags": {}},
        },
        id="schemaless-custom-resource-maps-granular-lists-atomic",
    ),
    pytest.param(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"parts": [{"id": "p1", "size": 1}], "opts": {"a": 1}},
        },
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "parts": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["id"],
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "string"},
                                    "size": {"type": "integer"},
                                },
                            },
                        },
                        "opts": {"type": "object", "x-kubernetes-map-type": "atomic"},
                    },
                }
            },
        },
        {
            "f:spec": {
                "f:opts": {},
                "f:parts": {'k:{"id":"p1"}': {".": {}, "f:id": {}, "f:size": {}}},
            }
        },
        id="inline-crd-schema-list-map-and-atomic-map",
    ),
]


@pytest.mark.parametrize(("obj", "schema", "expected"), FIELDS_CASES)
def test_fields_of(
    obj: dict[str, Any], schema: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    got = ssa.fields_of(obj, schema)
    assert got == expected
    # fieldsV1 ordering follows upstream: "." first, then sorted path elements.
    assert json.dumps(got) == json.dumps(expected)


def test_fieldsv1_roundtrip_and_key_order() -> None:
    fields: dict[str, Any] = {
        "f:spec": {"f:ports": {'k:{"protocol":"TCP","port":443}': {".": {}, "f:port": {}}}}
    }
    paths = ssa.decode_fields(fields)
    assert paths == {
        ("f:spec", "f:ports", 'k:{"port":443,"protocol":"TCP"}'),
        ("f:spec", "f:ports", 'k:{"port":443,"protocol":"TCP"}', "f:port"),
    }
    assert ssa.encode_fields(paths) == {
        "f:spec": {"f:ports": {'k:{"port":443,"protocol":"TCP"}': {".": {}, "f:port": {}}}}
    }
    # Numeric keys sort numerically like upstream, not as text.
    two = ssa.encode_fields({("f:p", 'k:{"port":80}'), ("f:p", 'k:{"port":443}')})
    assert list(two["f:p"]) == ['k:{"port":80}', 'k:{"port":443}']


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (("f:spec", "f:containers", KEY_NGINX, "f:image"), '.spec.containers[name="nginx"].image'),
        (
            ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}'),
            '.spec.ports[port=80,protocol="TCP"]',
        ),
        (("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]'),
        (("f:x", "i:3"), ".x[3]"),
    ],
)
def test_path_string(path: tuple[str, ...], text: str) -> None:
    assert ssa.path_string(path) == text


# ---------------------------------------------------------------------------- apply


def test_apply_create_records_apply_entry() -> None:
    obj = do_apply(None, deployment(), "kubectl")
    assert obj["spec"]["replicas"] == 2
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": ssa.fields_of(deployment(), DEPLOYMENT),
        }
    ]


def test_reapply_same_config_is_noop() -> None:
    first = do_apply(None, deployment(), "kubectl")
    again = do_apply(first, deployment(), "kubectl", now=T1)
    assert again == first  # no change, same time, no conflict


def test_second_manager_conflicts_then_forces() -> None:
    a = do_apply(None, deployment(2), "A")
    err = conflict_of(lambda: do_apply(a, deployment(3), "B", now=T1))
    assert err.message == 'Apply failed with 1 conflict: conflict with "A": .spec.replicas'
    assert err.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "A"',
                "field": ".spec.replicas",
            }
        ]
    }

    forced = do_apply(a, deployment(3), "B", force=True, now=T1)
    assert forced["spec"]["replicas"] == 3
    assert ".spec.replicas" not in owned(forced, "A")
    assert ".spec.replicas" in owned(forced, "B")
    assert ".spec.selector" in owned(forced, "A")  # shared fields stay co-owned


def test_same_value_from_second_manager_is_shared_without_conflict() -> None:
    a = do_apply(None, deployment(2), "A")
    b = do_apply(a, deployment(2), "B", now=T1)
    assert ".spec.replicas" in owned(b, "A") and ".spec.replicas" in owned(b, "B")


def test_conflict_with_update_manager_names_api_version() -> None:
    created = deployment(2)
    created["metadata"]["managedFields"] = ssa.update_managed_fields(
        None,
        created,
        manager="kubectl-client-side-apply",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        now=T0,
    )
    err = conflict_of(lambda: do_apply(created, deployment(3), "kubectl", now=T1))
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
        "using apps/v1: .spec.replicas"
    )
    assert err.details["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


def _csa_created(replicas: int) -> dict[str, Any]:
    """An object created by client-side apply: last-applied annotation + Update entry."""
    manifest = deployment(replicas)
    obj = copy.deepcopy(manifest)
    obj["metadata"]["annotations"] = {ssa.LAST_APPLIED_ANNOTATION: json.dumps(manifest) + "\n"}
    obj["metadata"]["managedFields"] = ssa.update_managed_fields(
        None,
        obj,
        manager="kubectl-client-side-apply",
        api_version="apps/v1",
        schema=DEPLOYMENT,
        now=T0,
    )
    return obj


def test_kubectl_upgrades_from_client_side_apply_without_conflict() -> None:
    live = _csa_created(2)
    out = do_apply(live, deployment(3), "kubectl", now=T1)
    assert out["spec"]["replicas"] == 3
    assert ".spec.replicas" in owned(out, "kubectl")
    assert ".spec.replicas" not in owned(out, "kubectl-client-side-apply", "Update")
    # The annotation is re-synced to the applied config (Go JSON: sorted keys, trailing newline).
    annotation = out["metadata"]["annotations"][ssa.LAST_APPLIED_ANNOTATION]
    assert annotation.endswith("\n") and json.loads(annotation) == deployment(3)
    assert annotation == json.dumps(deployment(3), sort_keys=True, separators=(",", ":")) + "\n"


def test_upgrade_exemption_only_for_kubectl_and_matching_values() -> None:
    live = _csa_created(2)
    conflict_of(lambda: do_apply(live, deployment(3), "my-tool", now=T1))
    drifted = copy.deepcopy(live)
    drifted["spec"]["replicas"] = 5  # live no longer matches last-applied: not excused
    err = conflict_of(lambda: do_apply(drifted, deployment(3), "kubectl", now=T1))
    assert err.details["causes"][0]["field"] == ".spec.replicas"


def test_multiple_conflicts_message() -> None:
    a = do_apply(None, deployment(2, image="nginx:1"), "A")
    edited = copy.deepcopy(a)
    edited["metadata"]["labels"]["app"] = "changed"
    edited["metadata"]["managedFields"] = ssa.update_managed_fields(
        a, edited, manager="kubectl-edit", api_version="apps/v1", schema=DEPLOYMENT, now=T1
    )
    err = conflict_of(lambda: do_apply(edited, deployment(3, image="nginx:2"), "B", now=T2))
    assert err.message == (
        'Apply failed with 3 conflicts: conflicts with "A":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image\n'
        'conflicts with "kubectl-edit" using apps/v1:\n'
        "- .metadata.labels.app"
    )
    assert [c["field"] for c in err.details["causes"]] == [
        ".spec.replicas",
        '.spec.template.spec.containers[name="nginx"].image',
        ".metadata.labels.app",
    ]


def test_fields_dropped_from_config_are_removed() -> None:
    first = do_apply(None, deployment(2, labels={"app": "web", "tier": "fe"}), "A")
    second = do_apply(first, deployment(None, labels={"app": "web"}), "A", now=T1)
    assert second["metadata"]["labels"] == {"app": "web"}
    assert "replicas" not in second["spec"]
    assert ".spec.replicas" not in owned(second, "A")


def test_dropped_field_co_owned_by_another_manager_stays() -> None:
    a = do_apply(None, deployment(2, labels={"app": "web", "tier": "fe"}), "A")
    b = do_apply(
        a,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"tier": "fe"}},
        },
        "B",
        now=T1,
    )
    again = do_apply(b, deployment(2, labels={"app": "web"}), "A", now=T2)
    assert again["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert owned(again, "B") == [".metadata.labels.tier"]


def test_dropping_all_labels_removes_the_map_but_keeps_name() -> None:
    first = do_apply(None, deployment(2, labels={"app": "web"}), "A")
    applied = deployment(2)
    del applied["metadata"]["labels"]
    out = do_apply(first, applied, "A", now=T1)
    assert "labels" not in out["metadata"]
    assert out["metadata"]["name"] == "web"


def test_containers_merge_by_name_across_managers() -> None:
    a = do_apply(None, deployment(), "A")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy"}]}}},
    }
    b = do_apply(a, sidecar, "B", now=T1)
    assert [c["name"] for c in b["spec"]["template"]["spec"]["containers"]] == ["nginx", "sidecar"]
    assert owned(b, "B") == [
        '.spec.template.spec.containers[name="sidecar"]',
        '.spec.template.spec.containers[name="sidecar"].image',
        '.spec.template.spec.containers[name="sidecar"].name',
    ]
    # A re-applies its own container only: B's sidecar survives; A's image bump merges into nginx.
    again = do_apply(b, deployment(image="nginx:1.27"), "A", now=T2)
    containers = again["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "nginx", "image": "nginx:1.27"},
        {"name": "sidecar", "image": "envoy"},
    ]


def test_container_dropped_by_its_applier_is_removed() -> None:
    two = deployment(containers=[{"name": "nginx", "image": "n"}, {"name": "log", "image": "l"}])
    first = do_apply(None, two, "A")
    out = do_apply(first, deployment(image="n"), "A", now=T1)
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "n"}]


@pytest.mark.parametrize(
    ("live", "applied", "expected"),
    [
        pytest.param(["a", "b", "c"], ["c", "d"], ["a", "b", "c", "d"], id="new-after-shared"),
        pytest.param(["a", "b"], ["x", "b"], ["a", "x", "b"], id="new-before-shared"),
        pytest.param(["a", "b"], ["b", "a"], ["b", "a"], id="shared-follow-applied-order"),
    ],
)
def test_keyed_list_merge_order(live: list[str], applied: list[str], expected: list[str]) -> None:
    def dep(names: list[str]) -> dict[str, Any]:
        return deployment(containers=[{"name": n, "image": n} for n in names])

    out = do_apply(do_apply(None, dep(live), "A"), dep(applied), "B", now=T1)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == expected


def test_set_lists_union_and_atomic_lists_replace() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["a"]},
        "spec": {"containers": [{"name": "c", "image": "i", "args": ["1", "2"]}]},
    }
    first = do_apply(None, pod, "A", schema=POD, api_version="v1")
    other = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["b"]},
        "spec": {"containers": [{"name": "c", "args": ["3"]}]},
    }
    out = do_apply(first, other, "B", schema=POD, api_version="v1", force=True, now=T1)
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert out["spec"]["containers"][0]["args"] == ["3"]
    assert '.metadata.finalizers[="b"]' in owned(out, "B")
    assert '.spec.containers[name="c"].args' not in owned(out, "A")


def test_atomic_list_change_conflicts() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "args": ["1"]}]},
    }
    first = do_apply(None, pod, "A", schema=POD, api_version="v1")
    other = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "args": ["2"]}]},
    }
    err = conflict_of(lambda: do_apply(first, other, "B", schema=POD, api_version="v1", now=T1))
    assert err.message.endswith('.spec.containers[name="c"].args')


def test_null_in_config_removes_field() -> None:
    first = do_apply(None, deployment(2), "A")
    applied = deployment(None)
    applied["spec"]["replicas"] = None
    out = do_apply(first, applied, "A", now=T1)
    assert "replicas" not in out["spec"]


def test_service_ports_keyed_by_port_and_protocol() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]},
    }
    first = do_apply(None, svc, "A", schema=SERVICE, api_version="v1")
    udp = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "protocol": "UDP", "targetPort": 53}]},
    }
    out = do_apply(first, udp, "B", schema=SERVICE, api_version="v1", now=T1)
    assert out["spec"]["ports"] == [
        {"port": 80, "targetPort": 8080},
        {"port": 80, "protocol": "UDP", "targetPort": 53},
    ]


def test_configmap_key_removed_on_reapply() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1", "b": "2"},
    }
    first = do_apply(None, cm, "A", schema=CONFIGMAP, api_version="v1")
    out = do_apply(
        first, {**cm, "data": {"a": "1"}}, "A", schema=CONFIGMAP, api_version="v1", now=T1
    )
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_status_in_applied_config_is_not_owned() -> None:
    applied = deployment(2)
    applied["status"] = {"replicas": 9}
    out = do_apply(None, applied, "A")
    assert "f:status" not in out["metadata"]["managedFields"][0]["fieldsV1"]


def test_before_first_apply_owns_untracked_fields() -> None:
    live = deployment(2)
    live["metadata"]["uid"] = "u1"
    err = conflict_of(lambda: do_apply(live, deployment(3), "A", now=T1))
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" '
        "using apps/v1: .spec.replicas"
    )
    out = do_apply(live, deployment(3), "A", force=True, now=T1)
    before = entry(out, "before-first-apply", "Update")
    assert before is not None and before["time"] == T1
    assert ".spec.replicas" not in owned(out, "before-first-apply", "Update")
    assert [e["operation"] for e in out["metadata"]["managedFields"]] == ["Apply", "Update"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}], id="duplicate"),
        pytest.param([{"image": "x"}], id="missing-key"),
    ],
)
def test_applied_config_with_bad_keyed_list_is_rejected(bad: list[dict[str, Any]]) -> None:
    with pytest.raises(StatusError) as info:
        do_apply(None, deployment(containers=bad), "A")
    assert info.value.code == 500
    assert info.value.message.startswith(
        "failed to create typed patch object (apps/v1, Kind=Deployment): "
        ".spec.template.spec.containers: "
    )


def test_applied_config_must_not_carry_managed_fields() -> None:
    applied = deployment()
    applied["metadata"]["managedFields"] = []
    with pytest.raises(StatusError) as info:
        do_apply(None, applied, "A")
    assert info.value.code == 400 and info.value.message == "metadata.managedFields must be nil"


def test_apply_does_not_mutate_inputs() -> None:
    live = do_apply(None, deployment(2), "A")
    live_copy, applied = copy.deepcopy(live), deployment(3)
    do_apply(live, applied, "B", force=True, now=T1)
    assert live == live_copy and applied == deployment(3)


# ---------------------------------------------------------------------------- updates


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: str = T1,
    schema: dict[str, Any] | None = DEPLOYMENT,
    **kw: Any,
) -> list[dict[str, Any]]:
    return ssa.update_managed_fields(
        old, new, manager=manager, api_version="apps/v1", schema=schema, now=now, **kw
    )


def with_mf(obj: dict[str, Any], mf: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = mf
    return out


def test_create_records_all_fields_like_upstream() -> None:
    mf = update(None, deployment(), "kubectl-create", now=T0)
    assert mf == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            "f:containers": {KEY_NGINX: {".": {}, "f:image": {}, "f:name": {}}}
                        },
                    },
                },
            },
        }
    ]


def test_update_moves_ownership_to_last_writer_and_sorts_apply_first() -> None:
    applied = do_apply(None, deployment(2), "A")
    edited = copy.deepcopy(applied)
    edited["spec"]["replicas"] = 5
    mf = update(applied, edited, "kubectl-edit")
    assert [(e["manager"], e["operation"]) for e in mf] == [
        ("A", "Apply"),
        ("kubectl-edit", "Update"),
    ]
    assert list(ssa.iter_paths(mf[1]["fieldsV1"])) == [".spec.replicas"]
    assert ".spec.replicas" not in ssa.iter_paths(mf[0]["fieldsV1"])


def test_update_without_changes_keeps_entries() -> None:
    created = with_mf(deployment(), update(None, deployment(), "kubectl-create", now=T0))
    assert (
        update(created, copy.deepcopy(created), "kubectl-edit", now=T2)
        == created["metadata"]["managedFields"]
    )


def test_repeated_updates_accumulate_in_one_entry() -> None:
    created = with_mf(deployment(), update(None, deployment(), "c", now=T0))
    step1 = copy.deepcopy(created)
    step1["spec"]["replicas"] = 3
    step1["metadata"]["managedFields"] = update(created, step1, "x", now=T1)
    step2 = copy.deepcopy(step1)
    step2["spec"]["paused"] = True
    mf = update(step1, step2, "x", now=T2)
    x = [e for e in mf if e["manager"] == "x"]
    assert len(x) == 1 and x[0]["time"] == T2
    assert list(ssa.iter_paths(x[0]["fieldsV1"])) == [".spec.paused", ".spec.replicas"]


def test_removed_fields_leave_every_entry() -> None:
    created = with_mf(
        deployment(labels={"app": "web", "tier": "fe"}),
        update(None, deployment(labels={"app": "web", "tier": "fe"}), "c", now=T0),
    )
    new = copy.deepcopy(created)
    del new["metadata"]["labels"]["tier"]
    mf = update(created, new, "kubectl-label")
    assert ".metadata.labels.tier" not in ssa.iter_paths(mf[0]["fieldsV1"])
    assert [e["manager"] for e in mf] == ["c"]  # nothing changed/added: no entry for the remover


def test_untracked_object_stays_untracked_and_reset_clears() -> None:
    assert update(deployment(2), deployment(3), "x") == []
    created = with_mf(deployment(), update(None, deployment(), "c", now=T0))
    resets: list[list[dict[str, Any]]] = [[], [{}]]
    for reset in resets:
        assert update(created, with_mf(deployment(3), reset), "x") == []


def test_client_supplied_managed_fields_are_used() -> None:
    created = with_mf(deployment(), update(None, deployment(), "c", now=T0))
    supplied = [
        {
            "manager": "other",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:paused": {}}},
        }
    ]
    mf = update(created, with_mf(deployment(), supplied), "x")
    assert mf == supplied


def test_status_writes_tracked_only_on_status_subresource() -> None:
    created = with_mf(deployment(), update(None, deployment(), "c", now=T0))
    new = copy.deepcopy(created)
    new["status"] = {"replicas": 2}
    assert update(created, new, "x") == created["metadata"]["managedFields"]
    mf = update(created, new, "kube-controller-manager", subresource="status")
    status = [e for e in mf if e["manager"] == "kube-controller-manager"]
    assert status == [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:replicas": {}}},
            "subresource": "status",
        }
    ]


def test_update_managers_are_capped_into_ancient_changes() -> None:
    obj = with_mf(deployment(labels={}), update(None, deployment(labels={}), "c", now=T0))
    for i in range(11):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"][f"l{i}"] = "v"
        new["metadata"]["managedFields"] = update(
            obj, new, f"m{i:02d}", now=f"2025-01-01T00:01:{i:02d}Z"
        )
        obj = new
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10 and "ancient-changes" in managers
    ancient = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "ancient-changes")
    assert ".metadata.labels.l0" in ssa.iter_paths(ancient["fieldsV1"])


# ---------------------------------------------------------------------------- subresources / CRs


def test_status_subresource_apply_conflict_names_subresource() -> None:
    def status_cfg(n: int) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 9},
            "status": {"replicas": n},
        }

    live = do_apply(None, deployment(), "A")
    first = ssa.apply(
        live,
        status_cfg(1),
        manager="ctrl-a",
        force=False,
        api_version="apps/v1",
        schema=DEPLOYMENT,
        now=T1,
        subresource="status",
    )
    e = entry(first, "ctrl-a")
    assert e is not None and e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {"f:replicas": {}}}  # spec is not owned via status
    with pytest.raises(StatusError) as info:
        ssa.apply(
            first,
            status_cfg(2),
            manager="ctrl-b",
            force=False,
            api_version="apps/v1",
            schema=DEPLOYMENT,
            now=T2,
            subresource="status",
        )
    assert info.value.message == (
        'Apply failed with 1 conflict: conflict with "ctrl-a" with subresource "status": '
        ".status.replicas"
    )


def test_schemaless_custom_resource_apply_and_type_change() -> None:
    def widget(spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": spec,
        }

    a = do_apply(
        None,
        widget({"cfg": {"x": 1}, "tags": ["a"]}),
        "A",
        schema=None,
        api_version="example.com/v1",
    )
    new = copy.deepcopy(a)
    new["spec"]["cfg"] = "flat"
    mf = ssa.update_managed_fields(
        a, new, manager="edit", api_version="example.com/v1", schema=None, now=T1
    )
    by_manager = {e["manager"]: list(ssa.iter_paths(e["fieldsV1"])) for e in mf}
    assert by_manager["edit"] == [".spec.cfg"]
    # Without a schema every map entry is a member (spec included); cfg's children left A's entry.
    assert by_manager["A"] == [".spec", ".spec.tags"]
    # Atomic list under no schema: a different list from another applier conflicts as a whole.
    with pytest.raises(StatusError) as info:
        do_apply(a, widget({"tags": ["b"]}), "B", schema=None, api_version="example.com/v1")
    assert info.value.details["causes"][0]["field"] == ".spec.tags"


def test_status_owned_through_main_resource_when_not_ignored() -> None:
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "status": {"phase": "Ready"},
    }
    out = ssa.apply(
        None,
        cr,
        manager="A",
        force=False,
        api_version="example.com/v1",
        schema=None,
        now=T0,
        ignore_status=False,
    )
    assert ".status.phase" in owned(out, "A")
