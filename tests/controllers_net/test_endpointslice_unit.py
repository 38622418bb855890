"""Pure core of the EndpointSlice controller."""

from __future__ import annotations

import itertools
from typing import Any

from kybernetes.controllers.endpoints import HEADLESS_LABEL
from kybernetes.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Observed,
    Plan,
    SliceTracker,
    build_endpoint,
    reconcile,
)
from kybernetes.util.clock import FakeClock

from .helpers import pod, service

ZONES = {"n1": "zone-a", "n2": "zone-b"}
_names = itertools.count()


def store(plan: Plan, slices: tuple[dict[str, Any], ...] = ()) -> tuple[dict[str, Any], ...]:
    """Apply a plan the way the API server would (names for generateName)."""
    by_name = {s["metadata"]["name"]: s for s in slices}
    for name in plan.delete:
        del by_name[name]
    for s in plan.update:
        by_name[s["metadata"]["name"]] = s
    for s in plan.create:
        name = s["metadata"]["generateName"] + str(next(_names))
        by_name[name] = {**s, "metadata": {**s["metadata"], "name": name}}
    return tuple(by_name.values())


def endpoints_of(slices: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [ep for s in slices for ep in s["endpoints"]]


def test_one_slice_with_ready_endpoints_and_metadata() -> None:
    pods = (pod("a", ip="10.0.0.1"), pod("b", ip="10.0.0.2", node="n2"), pod("c", ip="10.0.0.3"))
    plan = reconcile(Observed(service(labels={"team": "x"}), pods, (), ZONES))
    assert len(plan.create) == 1 and not plan.update and not plan.delete
    s = plan.create[0]
    assert s["addressType"] == "IPv4"
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {"team": "x", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": "svc-web", "controller": True, "blockOwnerDeletion": True}]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [ep["addresses"] for ep in s["endpoints"]] == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"]]
    b = s["endpoints"][1]
    assert b["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert b["nodeName"] == "n2" and b["zone"] == "zone-b"
    assert b["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}


def test_conditions_for_not_ready_terminating_and_publish() -> None:
    svc = service()
    assert build_endpoint(pod("a", ready=False), svc, None)["conditions"] == \
        {"ready": False, "serving": False, "terminating": False}
    assert build_endpoint(pod("a", deleting=True), svc, None)["conditions"] == \
        {"ready": False, "serving": True, "terminating": True}
    assert build_endpoint(pod("a", ready=False), service(publish=True), None)["conditions"] == \
        {"ready": True, "serving": False, "terminating": False}
    assert "zone" not in build_endpoint(pod("a"), svc, None)


def test_headless_hostname_and_label() -> None:
    svc = service("db", headless=True)
    plan = reconcile(Observed(svc, (pod("db-0", hostname="db-0", subdomain="db"),), (), ZONES))
    s = plan.create[0]
    assert s["endpoints"][0]["hostname"] == "db-0"
    assert s["metadata"]["labels"][HEADLESS_LABEL] == ""


def test_steady_state_is_quiet_and_changes_are_updates() -> None:
    svc = service()
    pods = (pod("a", ip="10.0.0.1"), pod("b", ip="10.0.0.2"))
    slices = store(reconcile(Observed(svc, pods, (), ZONES)))
    assert reconcile(Observed(svc, pods, slices, ZONES)).empty
    plan = reconcile(Observed(svc, (pod("a", ip="10.0.0.1", ready=False),), slices, ZONES))
    assert not plan.create and not plan.delete and len(plan.update) == 1
    assert [ep["conditions"]["ready"] for ep in plan.update[0]["endpoints"]] == [False]


def test_max_endpoints_per_slice_and_stable_placement() -> None:
    svc = service()
    pods = tuple(pod(f"p{i:03}", ip=f"10.0.{i // 200}.{i % 200 + 1}") for i in range(250))
    slices = store(reconcile(Observed(svc, pods, (), ZONES)))
    assert sorted(len(s["endpoints"]) for s in slices) == [50, 100, 100]
    # removing pods from one slice and adding new ones: new pods fill the room, no new slice
    first = slices[0]
    gone = {ep["targetRef"]["name"] for ep in first["endpoints"][:10]}
    fresh = tuple(pod(f"q{i}", ip=f"10.1.0.{i + 1}") for i in range(5))
    pods2 = tuple(p for p in pods if p["metadata"]["name"] not in gone) + fresh
    plan = reconcile(Observed(svc, pods2, slices, ZONES))
    assert not plan.create and not plan.delete
    after = store(plan, slices)
    assert len(endpoints_of(after)) == 245
    assert max(len(s["endpoints"]) for s in after) <= 100


def test_placeholder_when_no_endpoints_and_empty_slices_removed() -> None:
    svc = service()
    plan = reconcile(Observed(svc, (), (), ZONES))
    assert len(plan.create) == 1 and plan.create[0]["endpoints"] == [] and plan.create[0]["ports"] == []
    placeholder = store(plan)
    assert reconcile(Observed(svc, (), placeholder, ZONES)).empty
    # endpoints appear: the placeholder (no ports) goes, a real slice comes
    plan = reconcile(Observed(svc, (pod("a"),), placeholder, ZONES))
    assert len(plan.create) == 1 and plan.delete == (placeholder[0]["metadata"]["name"],)
    real = store(plan, placeholder)
    # and back to none: one slice is kept as the placeholder
    plan = reconcile(Observed(svc, (), real, ZONES))
    assert not plan.create and not plan.delete and plan.update[0]["endpoints"] == []


def test_distinct_port_resolutions_get_distinct_slices() -> None:
    pods = (pod("a", ip="10.0.0.1"), pod("b", ip="10.0.0.2", ports=[{"name": "http", "containerPort": 9090}]))
    plan = reconcile(Observed(service(), pods, (), ZONES))
    assert sorted(s["ports"][0]["port"] for s in plan.create) == [8080, 9090]


def test_duplicate_endpoint_in_two_slices_is_kept_once() -> None:
    svc = service()
    pods = (pod("a", ip="10.0.0.1"),)
    s1 = store(reconcile(Observed(svc, pods, (), ZONES)))[0]
    s2 = {**s1, "metadata": {**s1["metadata"], "name": "web-dup"}}
    plan = reconcile(Observed(svc, pods, (s1, s2), ZONES))
    assert len(endpoints_of(store(plan, (s1, s2)))) == 1


def test_tracker_blocks_until_cache_shows_writes() -> None:
    clock = FakeClock()
    t = SliceTracker(clock, timeout=5)
    t.expect("default/web", {"web-1": 12, "web-old": None})
    assert t.stale("default/web", {"web-old": {"metadata": {"resourceVersion": "3"}}})
    assert t.stale("default/web", {"web-1": {"metadata": {"resourceVersion": "11"}}})
    assert not t.stale("default/web", {"web-1": {"metadata": {"resourceVersion": "12"}}})
    t.expect("default/web", {"web-2": 20})
    clock.advance(6)
    assert not t.stale("default/web", {})
