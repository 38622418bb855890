"""Pure core of the Endpoints controller."""

from __future__ import annotations

import pytest

from kybernetes.controllers.endpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    Observed,
    compute_subsets,
    find_port,
    normalize_subsets,
    orphaned_by_us,
    reconcile,
    selects,
    should_pod_be_in_endpoints,
)

from .helpers import pod, service


def ips(addresses: list[dict]) -> list[str]:
    return [a["ip"] for a in addresses]


def test_ready_pods_become_addresses_with_resolved_named_port() -> None:
    pods = [pod("a", ip="10.0.0.3"), pod("b", ip="10.0.0.1"), pod("c", ip="10.0.0.2")]
    subsets = compute_subsets(service(), pods)
    assert len(subsets) == 1
    assert ips(subsets[0]["addresses"]) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert subsets[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    a = subsets[0]["addresses"][0]
    assert a["nodeName"] == "n1"
    assert a["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}
    assert "notReadyAddresses" not in subsets[0]


def test_not_ready_pod_goes_to_not_ready_addresses() -> None:
    subsets = compute_subsets(service(), [pod("a", ip="10.0.0.1"), pod("b", ip="10.0.0.2", ready=False)])
    assert ips(subsets[0]["addresses"]) == ["10.0.0.1"]
    assert ips(subsets[0]["notReadyAddresses"]) == ["10.0.0.2"]


def test_publish_not_ready_addresses_makes_every_pod_ready_and_keeps_terminating() -> None:
    pods = [pod("a", ip="10.0.0.1", ready=False), pod("b", ip="10.0.0.2", deleting=True)]
    subsets = compute_subsets(service(publish=True), pods)
    assert ips(subsets[0]["addresses"]) == ["10.0.0.1", "10.0.0.2"]
    assert compute_subsets(service(), pods) == [
        {"notReadyAddresses": subsets[0]["addresses"][:1], "ports": subsets[0]["ports"]}]


@pytest.mark.parametrize("p,include,expected", [
    pytest.param(pod("a"), False, True, id="running"),
    pytest.param(pod("a", ip=None), False, False, id="no-ip"),
    pytest.param(pod("a", phase="Succeeded"), True, False, id="succeeded"),
    pytest.param(pod("a", phase="Failed"), True, False, id="failed"),
    pytest.param(pod("a", deleting=True), False, False, id="terminating"),
    pytest.param(pod("a", deleting=True), True, True, id="terminating-included"),
    pytest.param(pod("a", ip="fd00::1"), False, False, id="ipv6-only"),
])
def test_should_pod_be_in_endpoints(p: dict, include: bool, expected: bool) -> None:
    assert should_pod_be_in_endpoints(p, include) is expected


@pytest.mark.parametrize("target,ports,expected", [
    pytest.param(9000, None, 9000, id="number"),
    pytest.param("9000", None, 9000, id="numeric-string"),
    pytest.param(None, None, 80, id="defaults-to-port"),
    pytest.param("http", None, 8080, id="named"),
    pytest.param("metrics", None, None, id="unknown-name"),
    pytest.param("http", [{"name": "http", "containerPort": 53, "protocol": "UDP"}], None, id="protocol-mismatch"),
])
def test_find_port(target: object, ports: list | None, expected: int | None) -> None:
    sp = {"port": 80, "protocol": "TCP"}
    if target is not None:
        sp["targetPort"] = target
    assert find_port(pod("a", ports=ports), sp) == expected


def test_pods_resolving_named_port_differently_get_separate_subsets() -> None:
    p1 = pod("a", ip="10.0.0.1")
    p2 = pod("b", ip="10.0.0.2", ports=[{"name": "http", "containerPort": 9090}])
    p3 = pod("c", ip="10.0.0.3", ports=[])          # lacks the port: left out
    subsets = compute_subsets(service(), [p1, p2, p3])
    assert [(ips(s["addresses"]), s["ports"][0]["port"]) for s in subsets] == [
        (["10.0.0.1"], 8080), (["10.0.0.2"], 9090)]


def test_multiple_ports_are_all_listed() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http"},
                         {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}])
    subsets = compute_subsets(svc, [pod("a")])
    assert subsets[0]["ports"] == [{"name": "dns", "port": 5353, "protocol": "UDP"},
                                   {"name": "http", "port": 8080, "protocol": "TCP"}]


def test_headless_hostnames_and_portless_subsets() -> None:
    svc = service("db", headless=True, ports=[])
    pods = [pod("db-0", ip="10.0.0.1", hostname="db-0", subdomain="db"),
            pod("x", ip="10.0.0.2", hostname="x", subdomain="other")]
    subsets = compute_subsets(svc, pods)
    assert subsets == [{"addresses": [
        {"ip": "10.0.0.1", "hostname": "db-0", "nodeName": "n1",
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "db-0", "uid": "uid-db-0"}},
        {"ip": "10.0.0.2", "nodeName": "n1",
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "x", "uid": "uid-x"}}]}]
    assert compute_subsets(service(ports=[]), pods) == []   # non-headless without ports: nothing


def test_selects_requires_selector_and_namespace() -> None:
    assert selects(service(), pod("a"))
    assert not selects(service(), pod("a", labels={"app": "db"}))
    assert not selects(service(ns="other"), pod("a"))
    no_selector = service()
    del no_selector["spec"]["selector"]
    assert not selects(no_selector, pod("a"))


def test_reconcile_creates_then_is_quiet_then_updates() -> None:
    svc = service(labels={"team": "x"}, headless=True)
    pods = (pod("a", ip="10.0.0.1", ready_since="2024-05-01T11:00:00Z"),)
    plan = reconcile(Observed(svc, pods, None))
    assert plan.update is None and plan.create is not None
    ep = plan.create
    assert ep["metadata"]["name"] == "web" and ep["metadata"]["labels"] == {"team": "x", HEADLESS_LABEL: ""}
    assert ep["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2024-05-01T11:00:00Z"
    stored = {**ep, "metadata": {**ep["metadata"], "resourceVersion": "7"}}
    assert reconcile(Observed(svc, pods, stored)).create is None
    assert reconcile(Observed(svc, pods, stored)).update is None
    changed = reconcile(Observed(svc, (*pods, pod("b", ip="10.0.0.2")), stored))
    assert changed.update is not None and changed.update["metadata"]["resourceVersion"] == "7"
    assert ips(changed.update["subsets"][0]["addresses"]) == ["10.0.0.1", "10.0.0.2"]


def test_normalize_subsets_ignores_order() -> None:
    subsets = compute_subsets(service(), [pod("a", ip="10.0.0.1"), pod("b", ip="10.0.0.2")])
    shuffled = [{"ports": subsets[0]["ports"], "addresses": list(reversed(subsets[0]["addresses"]))}]
    assert normalize_subsets(shuffled) == subsets


def test_orphaned_by_us() -> None:
    assert orphaned_by_us({"metadata": {"annotations": {TRIGGER_TIME_ANNOTATION: "x"}}})
    assert not orphaned_by_us({"metadata": {"name": "manual"}})
