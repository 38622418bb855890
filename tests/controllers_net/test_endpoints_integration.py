"""Endpoints and EndpointSlice controllers against the real in-process API server."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.client import ApiClient, NotFound
from kybernetes.client.resources import ENDPOINTS, ENDPOINTSLICES, NODES, PODS, SERVICES
from kybernetes.controllers import endpoints, endpointslice
from tests.controllers.conftest import running

from .conftest import set_pod_status, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def pod_body(name: str, *, node: str = "n1", hostname: str | None = None, subdomain: str | None = None,
             app: str = "web") -> Obj:
    spec: Obj = {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "ports": [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}
    if hostname:
        spec["hostname"] = hostname
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}}, "spec": spec}


def service_body(name: str = "web", *, headless: bool = False, app: str = "web") -> Obj:
    spec: Obj = {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def get_endpoints(client: ApiClient, name: str = "web") -> Obj | None:
    try:
        return await client.get(ENDPOINTS, name, "default")
    except NotFound:
        return None


async def slices_of(client: ApiClient, name: str = "web") -> list[Obj]:
    items, _ = await client.list_all(ENDPOINTSLICES, "default",
                                     label_selector=f"kubernetes.io/service-name={name}")
    return items


def addresses(ep: Obj | None, field: str = "addresses") -> list[str]:
    return sorted(a["ip"] for s in (ep or {}).get("subsets") or () for a in s.get(field) or ())


def ready_map(slices: list[Obj]) -> dict[str, bool]:
    return {e["addresses"][0]: e["conditions"]["ready"] for s in slices for e in s.get("endpoints") or ()}


async def test_service_endpoints_and_slices_follow_pods(client: ApiClient) -> None:
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
    for i in range(3):
        await client.create(PODS, pod_body(f"web-{i}"), "default")
        await set_pod_status(client, f"web-{i}", f"10.1.0.{i + 1}")
    await client.create(PODS, pod_body("other", app="other"), "default")
    await set_pod_status(client, "other", "10.1.0.9")
    svc = await client.create(SERVICES, service_body(), "default")
    kube_eps_before = await get_endpoints(client, "kubernetes")
    async with running(client, endpoints, endpointslice) as ctls:
        ips = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]

        async def eps_ready(expected: list[str]) -> bool:
            return addresses(await get_endpoints(client)) == expected

        await wait_for(lambda: eps_ready(ips), what="3 ready addresses")
        ep = await get_endpoints(client)
        assert ep is not None
        assert ep["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert ep["subsets"][0]["addresses"][0]["targetRef"]["name"] == "web-0"
        assert ep["subsets"][0]["addresses"][0]["nodeName"] == "n1"
        assert endpoints.TRIGGER_TIME_ANNOTATION in ep["metadata"]["annotations"]

        async def one_slice(expected: dict[str, bool]) -> bool:
            s = await slices_of(client)
            return len(s) == 1 and ready_map(s) == expected

        await wait_for(lambda: one_slice(dict.fromkeys(ips, True)), what="one slice with 3 ready endpoints")
        (sl,) = await slices_of(client)
        assert sl["addressType"] == "IPv4"
        assert sl["metadata"]["name"].startswith("web-")
        assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert sl["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
        assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert {e["zone"] for e in sl["endpoints"]} == {"zone-a"}

        # a pod turns not ready
        await set_pod_status(client, "web-1", "10.1.0.2", ready=False)
        await wait_for(lambda: eps_ready(["10.1.0.1", "10.1.0.3"]), what="web-1 leaves addresses")
        assert addresses(await get_endpoints(client), "notReadyAddresses") == ["10.1.0.2"]
        await wait_for(lambda: one_slice({"10.1.0.1": True, "10.1.0.2": False, "10.1.0.3": True}),
                       what="slice: web-1 not ready")

        # publishNotReadyAddresses: every pod counts as ready
        await client.patch(SERVICES, "web", {"spec": {"publishNotReadyAddresses": True}}, "default")
        await wait_for(lambda: eps_ready(ips), what="published not-ready address")
        await wait_for(lambda: one_slice(dict.fromkeys(ips, True)), what="slice: published not ready")

        # a pod goes away
        await client.delete(PODS, "web-2", "default", grace_period_seconds=0)
        await wait_for(lambda: eps_ready(["10.1.0.1", "10.1.0.2"]), what="web-2 removed")
        await wait_for(lambda: one_slice({"10.1.0.1": True, "10.1.0.2": True}), what="slice: web-2 removed")

        # quiet in steady state: no rewrites without changes
        await wait_for(lambda: all(idle(c) for c in ctls), what="controllers idle")
        writes, syncs = [c.writes for c in ctls], [c.syncs for c in ctls]
        await client.patch(SERVICES, "web", {"metadata": {"annotations": {"touch": "1"}}}, "default")
        await wait_for(lambda: all(c.syncs > n and idle(c) for c, n in zip(ctls, syncs, strict=True)),
                       what="touch synced")
        assert [c.writes for c in ctls] == writes

        # the Service goes: its Endpoints go too; the API server's own Endpoints are untouched
        await client.delete(SERVICES, "web", "default")
        await wait_for(lambda: _is_none(get_endpoints(client)), what="endpoints deleted")
        kube_eps = await get_endpoints(client, "kubernetes")
        assert kube_eps is not None and kube_eps_before is not None
        assert kube_eps["metadata"]["resourceVersion"] == kube_eps_before["metadata"]["resourceVersion"]
        assert (await client.get(ENDPOINTSLICES, "kubernetes", "default"))["metadata"]["name"] == "kubernetes"


def idle(c: Any) -> bool:
    st = c.queue.statistics()
    return st["depth"] == 0 and st["processing"] == 0


async def _is_none(aw: Any) -> bool:
    return await aw is None


async def test_headless_service_publishes_hostnames(client: ApiClient) -> None:
    await client.create(SERVICES, service_body("db", headless=True, app="db"), "default")
    await client.create(PODS, pod_body("db-0", hostname="db-0", subdomain="db", app="db"), "default")
    await set_pod_status(client, "db-0", "10.2.0.1")
    async with running(client, endpoints, endpointslice):
        async def hostnames() -> bool:
            ep = await get_endpoints(client, "db")
            s = await slices_of(client, "db")
            return bool(ep and s) and ep["subsets"][0]["addresses"][0].get("hostname") == "db-0" \
                and s[0]["endpoints"][0].get("hostname") == "db-0"

        await wait_for(hostnames, what="hostnames published")
        ep = await get_endpoints(client, "db")
        assert ep is not None and ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}


async def test_service_without_selector_is_left_alone(client: ApiClient) -> None:
    body = service_body("manual")
    del body["spec"]["selector"]
    await client.create(SERVICES, body, "default")
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual"},
              "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}
    created = await client.create(ENDPOINTS, manual, "default")
    async with running(client, endpoints, endpointslice) as ctls:
        await wait_for(lambda: all(c.syncs > 0 and idle(c) for c in ctls), what="controllers synced")
        ep = await get_endpoints(client, "manual")
        assert ep is not None and ep["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert await slices_of(client, "manual") == []
