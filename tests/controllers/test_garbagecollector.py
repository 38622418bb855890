"""The garbage collector: the pure graph and decisions, and scenarios against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import CONFIGMAPS, CUSTOMRESOURCEDEFINITIONS, Resource
from kybernetes.controllers import garbagecollector
from kybernetes.controllers.garbagecollector import (
    FOREGROUND,
    ORPHAN,
    Graph,
    OwnerState,
    RestMapper,
    decide,
    monitored,
    owner_state,
    propagation_for,
)
from kybernetes.controllers.namespace import ApiResource

from .conftest import (
    WIDGETS,
    configmap,
    get_or_none,
    gone,
    owner_ref,
    running,
    wait_for,
    widget,
    widget_crd,
)

Obj = dict[str, Any]
S, D, W = OwnerState.SOLID, OwnerState.DANGLING, OwnerState.WAITING


def obj(uid: str, *owners: str, block: bool = False, deleting: bool = False, finalizers: tuple[str, ...] = (),
        name: str | None = None) -> Obj:
    md: Obj = {"uid": uid, "name": name or uid, "namespace": "ns"}
    if owners:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o, "uid": o,
                                  "blockOwnerDeletion": block} for o in owners]
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if finalizers:
        md["finalizers"] = list(finalizers)
    return {"metadata": md}


def observe(g: Graph, o: Obj) -> garbagecollector.Work:
    return g.observe(o, "v1", "ConfigMap")


# -- graph ------------------------------------------------------------------------------------


def test_unowned_objects_are_not_kept() -> None:
    g = Graph()
    w = observe(g, obj("a"))
    assert len(g) == 0 and w.delete == [] and w.orphan == []


def test_dependent_creates_virtual_owner_to_verify() -> None:
    g = Graph()
    w = observe(g, obj("b", "a"))
    assert w.delete == ["a"]
    assert g.nodes["a"].virtual and g.nodes["b"] in (g.nodes["a"].dependents or set())
    w = observe(g, obj("a"))            # the owner itself is observed
    assert not g.nodes["a"].virtual and w.delete == []


def test_owner_deleted_enqueues_dependents() -> None:
    g = Graph()
    observe(g, obj("b", "a"))
    observe(g, obj("c", "a"))
    observe(g, obj("a"))
    w = g.remove("a")
    assert sorted(w.delete) == ["b", "c"]
    assert "a" not in g.nodes


def test_dependent_removed_drops_virtual_owner() -> None:
    g = Graph()
    observe(g, obj("b", "a"))
    g.remove("b")
    assert len(g) == 0


def test_foreground_owner_enqueues_dependents_and_itself() -> None:
    g = Graph()
    observe(g, obj("b", "a", block=True))
    observe(g, obj("a"))
    w = observe(g, obj("a", deleting=True, finalizers=(FOREGROUND,)))
    assert sorted(w.delete) == ["a", "b"]
    assert [d.uid for d in g.blocking_dependents(g.nodes["a"])] == ["b"]
    w = g.remove("b")                   # the blocking dependent went away: look at the owner again
    assert w.delete == ["a"]
    assert g.blocking_dependents(g.nodes["a"]) == []


def test_orphan_finalizer_enqueues_orphaning() -> None:
    g = Graph()
    observe(g, obj("b", "a"))
    w = observe(g, obj("a", deleting=True, finalizers=(ORPHAN,)))
    assert w.orphan == ["a"]
    assert g.nodes["a"].orphaning


def test_owner_reference_changes_relink() -> None:
    g = Graph()
    observe(g, obj("c", "a"))
    observe(g, obj("c", "b"))
    assert "a" not in g.nodes           # its only dependent moved away
    assert g.nodes["c"] in (g.nodes["b"].dependents or set())
    observe(g, obj("c"))                # no owners, no dependents: forgotten
    assert len(g) == 0


def test_block_flag_change_wakes_foreground_owner() -> None:
    g = Graph()
    observe(g, obj("b", "a", block=True))
    observe(g, obj("a", deleting=True, finalizers=(FOREGROUND,)))
    w = observe(g, obj("b", "a", block=False))
    assert w.delete == ["a"]


def test_new_dependent_of_foreground_owner_is_enqueued() -> None:
    g = Graph()
    observe(g, obj("b", "a"))
    observe(g, obj("a", deleting=True, finalizers=(FOREGROUND,)))
    w = observe(g, obj("c", "a"))
    assert "c" in w.delete


def test_confirmed_owner_is_found_by_relist_diff() -> None:
    g = Graph()
    observe(g, obj("b", "a"))
    g.confirm(g.nodes["a"], "apps/v1", "Deployment", "a", "ns")
    assert g.uids_of("apps", "Deployment") == ["a"]
    assert sorted(g.remove("a").delete) == ["b"]


def test_uids_of_lists_observed_nodes_of_a_kind() -> None:
    g = Graph()
    observe(g, obj("b", "a"))
    assert g.uids_of("", "ConfigMap") == ["b"]   # "a" is virtual
    assert g.uids_of("apps", "ConfigMap") == []


def test_graph_memory_is_small() -> None:
    """An owned pod costs a few hundred bytes (10,000 pods: a few MB), not a copy of the object."""
    import tracemalloc

    g = Graph()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(500):
            g.observe(obj(f"pod-{i}", f"rs-{i % 10}"), "v1", "Pod")
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(g) == 510
    assert used / 510 < 700, used / 510


# -- decisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(("states", "has_deps", "deps_deleting", "finalizers", "want"), [
    pytest.param({}, False, False, (), garbagecollector.Decision(), id="no-owners"),
    pytest.param({"a": S}, False, False, (), garbagecollector.Decision(), id="solid"),
    pytest.param({"a": S, "b": D}, False, False, (), garbagecollector.Decision(remove_owners=("b",)), id="solid+dangling"),
    pytest.param({"a": S, "b": W}, True, False, (), garbagecollector.Decision(remove_owners=("b",)), id="solid+waiting"),
    pytest.param({"a": D}, False, False, (), garbagecollector.Decision(delete="Background"), id="dangling"),
    pytest.param({"a": D}, False, False, (ORPHAN,), garbagecollector.Decision(delete="Orphan"), id="dangling-orphan-fin"),
    pytest.param({"a": W}, False, False, (), garbagecollector.Decision(delete="Background"), id="waiting-no-deps"),
    pytest.param({"a": W}, True, False, (), garbagecollector.Decision(delete="Foreground"), id="waiting-with-deps"),
    pytest.param({"a": W, "b": D}, True, True, (),
                 garbagecollector.Decision(unblock_owners=("a",), delete="Foreground"), id="cycle-guard"),
])
def test_decide(states, has_deps, deps_deleting, finalizers, want) -> None:  # type: ignore[no-untyped-def]
    o = obj("x", finalizers=finalizers)
    assert decide(o, states, has_dependents=has_deps, dependent_deleting_dependents=deps_deleting) == want


@pytest.mark.parametrize(("owner", "want"), [
    pytest.param(None, D, id="absent"),
    pytest.param(obj("other"), D, id="other-uid"),
    pytest.param(obj("a"), S, id="present"),
    pytest.param(obj("a", deleting=True), S, id="deleting-background"),
    pytest.param(obj("a", deleting=True, finalizers=(FOREGROUND,)), W, id="foreground"),
])
def test_owner_state(owner, want) -> None:  # type: ignore[no-untyped-def]
    assert owner_state(owner, "a") is want


def test_propagation_for() -> None:
    assert propagation_for(obj("x")) == "Background"
    assert propagation_for(obj("x", finalizers=(FOREGROUND,))) == "Foreground"
    assert propagation_for(obj("x", finalizers=(ORPHAN,))) == "Orphan"


def _api(group: str, version: str, plural: str, kind: str, verbs: str, preferred: bool = True) -> ApiResource:
    return ApiResource(Resource(group, version, plural, kind), frozenset(verbs.split(",")), preferred)


def test_monitored_and_mapper() -> None:
    found = [_api("", "v1", "configmaps", "ConfigMap", "list,watch,delete"),
             _api("", "v1", "events", "Event", "list,watch,delete"),
             _api("", "v1", "bindings", "Binding", "create"),
             _api("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "list,watch,delete"),
             _api("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "list,watch,delete",
                  preferred=False)]
    assert [r.plural for r in monitored(found)] == ["configmaps", "horizontalpodautoscalers"]
    m = RestMapper(found)
    assert m.resolve("autoscaling/v1", "HorizontalPodAutoscaler") == found[4].resource
    assert m.resolve("autoscaling/v2beta2", "HorizontalPodAutoscaler") == found[3].resource
    assert m.resolve("v1", "Nope") is None


def test_apply_discovery_starts_and_stops_monitors() -> None:
    from kybernetes.client import ApiClient as Client
    from kybernetes.controllers.namespace import Discovery

    from .conftest import make_context

    gc = garbagecollector.new(make_context(Client("http://127.0.0.1:9")))
    cms = _api("", "v1", "configmaps", "ConfigMap", "list,watch,delete")
    widgets = _api("example.com", "v1", "widgets", "Widget", "list,watch,delete")
    gc.apply_discovery(Discovery(resources=[cms, widgets]))
    assert set(gc.monitors) == {cms.resource, widgets.resource}
    gc.graph.observe(obj("kid", "w"), "example.com/v1", "Widget")
    gc.graph.observe(obj("cm", "kid"), "v1", "ConfigMap")
    before = len(gc.queue)
    gc.apply_discovery(Discovery(resources=[cms], failed={}))     # the CRD went away
    assert set(gc.monitors) == {cms.resource}
    assert "kid" not in gc.graph.nodes and len(gc.queue) > before  # its dependent "cm" is re-checked
    gc.apply_discovery(Discovery(resources=[], failed={"v1": "boom"}))  # a failing group keeps its monitor
    assert set(gc.monitors) == {cms.resource}


# -- against a real server --------------------------------------------------------------------


async def _cm(client: ApiClient, name: str, **kw: Any) -> Obj:
    return await client.create(CONFIGMAPS, configmap(name, **kw))


@pytest.mark.integration
async def test_background_owner_deleted_then_dependent(client: ApiClient) -> None:
    async with running(client, garbagecollector):
        owner = await _cm(client, "owner")
        await _cm(client, "dep", owners=[owner_ref(owner)])
        await _cm(client, "bystander")
        await asyncio.sleep(0.2)
        assert await get_or_none(client, CONFIGMAPS, "dep", "default") is not None
        await client.delete(CONFIGMAPS, "owner", "default")
        await wait_for(lambda: gone(client, CONFIGMAPS, "dep", "default"), what="dependent collected")
        assert await get_or_none(client, CONFIGMAPS, "bystander", "default") is not None


@pytest.mark.integration
async def test_dependent_of_absent_or_replaced_owner_is_collected(client: ApiClient) -> None:
    owner = await _cm(client, "owner")
    async with running(client, garbagecollector):
        ghost = {**owner_ref(owner), "uid": "00000000-0000-0000-0000-000000000000"}
        await _cm(client, "dep-of-ghost", owners=[ghost])
        await _cm(client, "dep-of-owner", owners=[owner_ref(owner)])
        await wait_for(lambda: gone(client, CONFIGMAPS, "dep-of-ghost", "default"), what="ghost's dependent collected")
        assert await get_or_none(client, CONFIGMAPS, "dep-of-owner", "default") is not None


@pytest.mark.integration
async def test_partially_owned_dependent_loses_only_the_dangling_reference(client: ApiClient) -> None:
    async with running(client, garbagecollector):
        a = await _cm(client, "a")
        b = await _cm(client, "b")
        await _cm(client, "dep", owners=[owner_ref(a), owner_ref(b)])
        await client.delete(CONFIGMAPS, "a", "default")

        async def one_owner_left() -> bool:
            dep = await client.get(CONFIGMAPS, "dep", "default")
            return [r["name"] for r in dep["metadata"].get("ownerReferences") or []] == ["b"]

        await wait_for(one_owner_left, what="dangling reference dropped")


@pytest.mark.integration
async def test_foreground_owner_waits_for_blocking_dependent(client: ApiClient) -> None:
    async with running(client, garbagecollector):
        owner = await _cm(client, "owner")
        # the dependent holds a finalizer, so it lingers while being deleted
        await _cm(client, "dep", owners=[owner_ref(owner, block=True)], finalizers=["example.com/hold"])
        await client.delete(CONFIGMAPS, "owner", "default", propagation_policy="Foreground")

        async def dep_deleting() -> bool:
            dep = await get_or_none(client, CONFIGMAPS, "dep", "default")
            return dep is not None and bool(dep["metadata"].get("deletionTimestamp"))

        await wait_for(dep_deleting, what="dependent being deleted")
        await asyncio.sleep(0.3)
        still = await client.get(CONFIGMAPS, "owner", "default")
        assert FOREGROUND in still["metadata"]["finalizers"]
        await client.patch(CONFIGMAPS, "dep", {"metadata": {"finalizers": None}}, "default")
        await wait_for(lambda: gone(client, CONFIGMAPS, "owner", "default"), what="owner removed")


@pytest.mark.integration
async def test_foreground_without_dependents_finishes(client: ApiClient) -> None:
    async with running(client, garbagecollector):
        await _cm(client, "lonely")
        await client.delete(CONFIGMAPS, "lonely", "default", propagation_policy="Foreground")
        await wait_for(lambda: gone(client, CONFIGMAPS, "lonely", "default"), what="owner removed")


@pytest.mark.integration
async def test_orphan_keeps_dependent_and_strips_reference(client: ApiClient) -> None:
    async with running(client, garbagecollector):
        owner = await _cm(client, "owner")
        other = await _cm(client, "other")
        await _cm(client, "dep", owners=[owner_ref(owner), owner_ref(other)])
        await asyncio.sleep(0.1)
        await client.delete(CONFIGMAPS, "owner", "default", propagation_policy="Orphan")
        await wait_for(lambda: gone(client, CONFIGMAPS, "owner", "default"), what="owner removed")
        dep = await client.get(CONFIGMAPS, "dep", "default")
        assert [r["name"] for r in dep["metadata"]["ownerReferences"]] == ["other"]


@pytest.mark.integration
async def test_custom_resource_owner_and_dependent(client: ApiClient) -> None:
    async with running(client, garbagecollector) as (gc,):
        await client.create(CUSTOMRESOURCEDEFINITIONS, widget_crd())
        # the CRD informer triggers re-discovery (much sooner than the 5 s period)
        await wait_for(lambda: WIDGETS in gc.monitors and gc.monitors[WIDGETS].synced.is_set(), timeout=3,
                       what="widgets monitored")
        w = await client.create(WIDGETS, widget("parent"))
        await _cm(client, "child", owners=[owner_ref(w)])
        await client.create(WIDGETS, widget("kid", owners=[owner_ref(w)]))
        await asyncio.sleep(0.3)
        assert await get_or_none(client, CONFIGMAPS, "child", "default") is not None
        await client.delete(WIDGETS, "parent", "default")
        await wait_for(lambda: gone(client, CONFIGMAPS, "child", "default"), what="configmap child collected")
        await wait_for(lambda: gone(client, WIDGETS, "kid", "default"), what="widget child collected")
        # deleting the CRD deletes its objects; their dependents follow although the kind is gone
        p2 = await client.create(WIDGETS, widget("p2"))
        await _cm(client, "child2", owners=[owner_ref(p2)])
        await wait_for(lambda: "child2" in {n.name for n in gc.graph.nodes.values()}, what="child2 seen")
        await client.delete(CUSTOMRESOURCEDEFINITIONS, "widgets.example.com")
        await wait_for(lambda: gone(client, CONFIGMAPS, "child2", "default"), what="child of a dropped kind")
        await wait_for(lambda: WIDGETS not in gc.monitors, what="widgets monitor stopped")


@pytest.mark.integration
async def test_all_four_controllers_together(client: ApiClient) -> None:
    """A deployment -> replicaset -> pod chain is collected; then the namespace goes, and the
    service-account and root-CA controllers do not fight the namespace controller."""
    from kybernetes.client.resources import (
        DEPLOYMENTS,
        NAMESPACES,
        PODS,
        REPLICASETS,
        SERVICEACCOUNTS,
    )
    from kybernetes.controllers import namespace, rootcacert, serviceaccount

    from .conftest import TEST_CA

    labels = {"app": "web"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    async with running(client, garbagecollector, namespace, serviceaccount, rootcacert):
        await client.create(NAMESPACES, {"metadata": {"name": "app"}})
        await wait_for(lambda: get_or_none(client, SERVICEACCOUNTS, "default", "app"), what="default SA")
        await wait_for(lambda: get_or_none(client, CONFIGMAPS, "kube-root-ca.crt", "app"), what="root CA")
        assert (await client.get(CONFIGMAPS, "kube-root-ca.crt", "app"))["data"]["ca.crt"] == TEST_CA.decode()
        d = await client.create(DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": labels}, "template": template}}, "app")
        rs = await client.create(REPLICASETS, {"metadata": {"name": "web-1", "labels": labels,
                                                             "ownerReferences": [owner_ref(d, block=True, controller=True)]},
                                                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                                                         "template": template}}, "app")
        await client.create(PODS, {"metadata": {"name": "web-1-a", "labels": labels,
                                                "ownerReferences": [owner_ref(rs, block=True, controller=True)]},
                                   "spec": template["spec"]}, "app")
        await client.delete(DEPLOYMENTS, "web", "app", propagation_policy="Foreground")
        await wait_for(lambda: gone(client, DEPLOYMENTS, "web", "app"), what="deployment removed")
        assert await gone(client, REPLICASETS, "web-1", "app")
        assert await gone(client, PODS, "web-1-a", "app")
        await client.create(CONFIGMAPS, configmap("cfg", "app"))
        await client.delete(NAMESPACES, "app")
        await wait_for(lambda: gone(client, NAMESPACES, "app"), what="namespace removed")


def test_monitor_relist_replays_vanished_objects_as_deletions() -> None:
    from kybernetes.client import ApiClient as Client

    from .conftest import make_context

    gc = garbagecollector.new(make_context(Client("http://127.0.0.1:9")))
    mon = garbagecollector.Monitor(gc, Resource("", "v1", "configmaps", "ConfigMap"))
    a, b = {**obj("a"), "kind": "ConfigMap"}, obj("b", "a")
    mon.on_list([a, b], "1")
    assert mon.synced.is_set() and gc.graph.nodes["a"].virtual
    mon.on_watch_event("MODIFIED", obj("a", deleting=True, finalizers=(FOREGROUND,)))
    assert gc.graph.nodes["a"].deleting_dependents and not gc.graph.nodes["a"].virtual
    mon.on_list([b], "2")                       # "a" vanished while the watch was down
    assert "a" not in gc.graph.nodes and "b" in gc.graph.nodes
    mon.on_watch_event("DELETED", b)
    assert len(gc.graph) == 0


@pytest.mark.integration
async def test_stale_graph_does_not_delete_a_live_dependent(client: ApiClient) -> None:
    async with running(client, garbagecollector) as (gc,):
        owner = await _cm(client, "owner")
        await _cm(client, "dep", owners=[owner_ref(owner)])
        await wait_for(lambda: "dep" in {n.name for n in gc.graph.nodes.values()}, what="dep in graph")
        # pretend the graph missed the owner's existence and believes it deleted
        before = gc.syncs
        gc.enqueue_work(gc.graph.remove(owner["metadata"]["uid"]))
        await wait_for(lambda: gc.syncs > before and gc.queue.statistics()["processing"] == 0
                       and len(gc.queue) == 0, what="dependent looked at")
        assert await get_or_none(client, CONFIGMAPS, "dep", "default") is not None
