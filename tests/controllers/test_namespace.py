"""The namespace controller: pure parts (discovery parsing, conditions) and against a real server."""

from __future__ import annotations

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import (
    CONFIGMAPS,
    CUSTOMRESOURCEDEFINITIONS,
    DEPLOYMENTS,
    NAMESPACES,
    Resource,
)
from kybernetes.controllers import namespace
from kybernetes.controllers.namespace import (
    CONDITION_TYPES,
    ApiResource,
    ContentTotals,
    DeletionReport,
    compute_conditions,
    deletable_resources,
    group_versions,
    needs_deletion,
    parse_group_version,
    parse_resource_list,
    status_with_conditions,
    without_finalizer,
)

from .conftest import WIDGETS, configmap, get_or_none, gone, running, wait_for, widget, widget_crd

NOW = "2024-05-01T00:00:00Z"
LATER = "2024-05-01T00:01:00Z"


def _res(plural: str, group: str = "", namespaced: bool = True, verbs: str = "list,delete,deletecollection",
         preferred: bool = True) -> ApiResource:
    return ApiResource(Resource(group, "v1", plural, plural.title(), namespaced), frozenset(verbs.split(",")), preferred)


@pytest.mark.parametrize(("gv", "want"), [
    pytest.param("v1", ("", "v1"), id="core"),
    pytest.param("apps/v1", ("apps", "v1"), id="group"),
])
def test_parse_group_version(gv: str, want: tuple[str, str]) -> None:
    assert parse_group_version(gv) == want


@pytest.mark.parametrize("gv", ["", "a/b/c", "/v1", "apps/"])
def test_parse_group_version_rejects(gv: str) -> None:
    with pytest.raises(ValueError):
        parse_group_version(gv)


def test_parse_resource_list_skips_subresources() -> None:
    doc = {"groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "kind": "Deployment", "namespaced": True, "verbs": ["list", "delete"]},
        {"name": "deployments/scale", "kind": "Scale", "namespaced": True, "verbs": ["get"]},
    ]}
    [r] = parse_resource_list(doc)
    assert r.resource == Resource("apps", "v1", "deployments", "Deployment", True)
    assert r.supports("list", "delete") and not r.supports("watch")


def test_group_versions_marks_preferred() -> None:
    doc = {"groups": [{"name": "autoscaling", "preferredVersion": {"groupVersion": "autoscaling/v2"},
                       "versions": [{"groupVersion": "autoscaling/v2"}, {"groupVersion": "autoscaling/v1"}]}]}
    assert group_versions(doc) == [("autoscaling/v2", True), ("autoscaling/v1", False)]


def test_deletable_resources_filters_and_puts_events_last() -> None:
    found = [_res("events"), _res("configmaps"), _res("nodes", namespaced=False), _res("widgets", "example.com"),
             _res("bindings", verbs="create"), _res("pods", preferred=False)]
    assert [r.plural for r in deletable_resources(found)] == ["configmaps", "widgets", "events"]


def test_content_totals_counts_resources_and_finalizers() -> None:
    t = ContentTotals()
    t.add(Resource("", "v1", "configmaps"), [{"metadata": {"finalizers": ["a/x"]}}, {"metadata": {}}])
    t.add(Resource("example.com", "v1", "widgets"), [{"metadata": {"finalizers": ["a/x", "b/y"]}}])
    t.add(Resource("", "v1", "secrets"), [])
    assert t.per_resource == {"configmaps.": 2, "widgets.example.com": 1}
    assert t.per_finalizer == {"a/x": 2, "b/y": 1}


def _by_type(conds: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["type"]: c for c in conds}


def test_conditions_all_ok() -> None:
    conds = compute_conditions([], DeletionReport(), NOW)
    assert [c["type"] for c in conds] == list(CONDITION_TYPES)
    assert all(c["status"] == "False" and c["lastTransitionTime"] == NOW for c in conds)
    assert _by_type(conds)["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert _by_type(conds)["NamespaceFinalizersRemaining"]["message"] == "All content-preserving finalizers finished"


def test_conditions_report_remaining_content_like_upstream() -> None:
    report = DeletionReport()
    report.totals.add(Resource("", "v1", "configmaps"), [{"metadata": {"finalizers": ["example.com/hold"]}}])
    conds = _by_type(compute_conditions([], report, NOW))
    rem = conds["NamespaceContentRemaining"]
    assert (rem["status"], rem["reason"]) == ("True", "SomeResourcesRemain")
    assert rem["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    fin = conds["NamespaceFinalizersRemaining"]
    assert (fin["status"], fin["reason"]) == ("True", "SomeFinalizersRemain")
    assert fin["message"] == ("Some content in the namespace has finalizers remaining: "
                              "example.com/hold in 1 resource instances")
    assert not report.done


def test_conditions_errors() -> None:
    report = DeletionReport(discovery_error="boom", parse_error="bad gv", content_errors=["b: x", "a: y"])
    conds = _by_type(compute_conditions([], report, NOW))
    assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "DiscoveryFailed"
    assert conds["NamespaceDeletionGroupVersionParsingFailure"]["status"] == "True"
    assert conds["NamespaceDeletionContentFailure"]["message"] == \
        "Failed to delete all resource types, 2 remaining: a: y, b: x"


def test_conditions_keep_transition_time_and_other_types() -> None:
    old = compute_conditions([{"type": "Other", "status": "True"}], DeletionReport(), NOW)
    report = DeletionReport()
    report.totals.add(Resource("", "v1", "pods"), [{}])
    new = _by_type(compute_conditions(old, report, LATER))
    assert new["Other"] == {"type": "Other", "status": "True"}
    assert new["NamespaceDeletionDiscoveryFailure"]["lastTransitionTime"] == NOW   # unchanged status
    assert new["NamespaceContentRemaining"]["lastTransitionTime"] == LATER         # False -> True


def test_status_with_conditions_only_when_changed() -> None:
    conds = compute_conditions([], DeletionReport(), NOW)
    ns = {"metadata": {"name": "x"}, "status": {"phase": "Terminating", "conditions": conds}}
    assert status_with_conditions(ns, conds) is None
    changed = status_with_conditions({"metadata": {"name": "x"}, "status": {"phase": "Active"}}, conds)
    assert changed is not None and changed["status"]["phase"] == "Terminating"


def test_without_finalizer_and_needs_deletion() -> None:
    ns = {"metadata": {"name": "x", "deletionTimestamp": NOW}, "spec": {"finalizers": ["kubernetes", "other"]}}
    assert needs_deletion(ns)
    out = without_finalizer(ns)
    assert out["spec"]["finalizers"] == ["other"] and ns["spec"]["finalizers"] == ["kubernetes", "other"]
    assert not needs_deletion(out)
    assert not needs_deletion({"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes"]}})
    assert not needs_deletion(None)


# ---------------------------------------------------------------------------------------------

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


@pytest.mark.integration
async def test_namespace_with_content_is_emptied_and_removed(client: ApiClient) -> None:
    await client.create(CUSTOMRESOURCEDEFINITIONS, widget_crd())
    await client.create(NAMESPACES, {"metadata": {"name": "doomed"}})
    for i in range(3):
        await client.create(CONFIGMAPS, configmap(f"cm-{i}", "doomed"))
    await client.create(DEPLOYMENTS, DEPLOYMENT, "doomed")
    await client.create(WIDGETS, widget("w", "doomed"))
    await client.create(CONFIGMAPS, configmap("survivor", "default"))
    async with running(client, namespace):
        await client.delete(NAMESPACES, "doomed")
        await wait_for(lambda: gone(client, NAMESPACES, "doomed"), what="namespace removed")
    assert await get_or_none(client, CONFIGMAPS, "survivor", "default") is not None
    assert (await client.list(WIDGETS, "doomed"))["items"] == []
    assert (await client.list(CONFIGMAPS, "doomed"))["items"] == []


@pytest.mark.integration
async def test_finalizer_blocks_namespace_until_removed(client: ApiClient) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "held"}})
    await client.create(CONFIGMAPS, configmap("pinned", "held", finalizers=["example.com/hold"]))
    await client.create(CONFIGMAPS, configmap("free", "held"))
    async with running(client, namespace):
        await client.delete(NAMESPACES, "held")

        async def blocked() -> bool:
            ns = await client.get(NAMESPACES, "held")
            conds = _by_type((ns.get("status") or {}).get("conditions") or [])
            rem = conds.get("NamespaceContentRemaining") or {}
            fin = conds.get("NamespaceFinalizersRemaining") or {}
            return (rem.get("message") == "Some resources are remaining: configmaps. has 1 resource instances"
                    and fin.get("status") == "True" and "example.com/hold in 1 resource instances" in fin["message"])

        await wait_for(blocked, what="condition explaining the block")
        ns = await client.get(NAMESPACES, "held")
        assert ns["status"]["phase"] == "Terminating"
        assert await gone(client, CONFIGMAPS, "free", "held")
        await client.patch(CONFIGMAPS, "pinned", {"metadata": {"finalizers": None}}, "held")
        await wait_for(lambda: gone(client, NAMESPACES, "held"), what="namespace removed")
