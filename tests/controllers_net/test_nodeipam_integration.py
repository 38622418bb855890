"""Node IPAM controller against the real API server."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import NODES
from kybernetes.controllers import nodeipam
from tests.controllers.conftest import running

from .conftest import wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def node_body(name: str, cidr: str | None = None) -> Obj:
    spec: Obj = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}


async def cidrs(client: ApiClient) -> dict[str, str | None]:
    items, _ = await client.list_all(NODES)
    return {n["metadata"]["name"]: (n.get("spec") or {}).get("podCIDR") for n in items}


async def all_assigned(client: ApiClient, n: int) -> bool:
    c = await cidrs(client)
    return len(c) == n and all(c.values())


async def test_assigns_distinct_blocks_keeps_existing_and_survives_restart(client: ApiClient) -> None:
    await client.create(NODES, node_body("fake", "10.128.1.0/24"))   # outside the cluster CIDR: kept
    await client.create(NODES, node_body("taken", "10.244.0.0/24"))  # inside: kept and marked used
    for i in range(3):
        await client.create(NODES, node_body(f"n{i}"))
    async with running(client, nodeipam, cluster_cidr="10.244.0.0/16", node_cidr_mask_size=24) as (ctl,):
        await wait_for(lambda: all_assigned(client, 5), what="pod CIDRs assigned")
        c = await cidrs(client)
        assert c["fake"] == "10.128.1.0/24" and c["taken"] == "10.244.0.0/24"
        new = [c[f"n{i}"] for i in range(3)]
        assert len(set(new) | {c["taken"]}) == 4
        for cidr in new:
            net = ipaddress.ip_network(cidr)
            assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("10.244.0.0/16"))
        node = await client.get(NODES, "n0")
        assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]
        assert ctl.allocations == 3
        await client.delete(NODES, "n1")
        await wait_for(lambda: "n1" not in ctl.by_node, what="n1 released")
        assert ctl.cidrs.used() == 3
    # a fresh controller (restart) rebuilds from the nodes: the new node gets an unused block
    await client.create(NODES, node_body("n3"))
    async with running(client, nodeipam, cluster_cidr="10.244.0.0/16", node_cidr_mask_size=24) as (ctl,):
        await wait_for(lambda: all_assigned(client, 5), what="n3 assigned")
        c = await cidrs(client)
        others = {v for k, v in c.items() if k != "n3"}
        assert c["n3"] not in others
        assert ctl.allocations == 1


async def test_small_range_runs_out(client: ApiClient) -> None:
    for i in range(3):
        await client.create(NODES, node_body(f"n{i}"))
    async with running(client, nodeipam, cluster_cidr="10.0.0.0/23", node_cidr_mask_size=24) as (ctl,):
        async def two_assigned() -> bool:
            return sum(1 for v in (await cidrs(client)).values() if v) == 2

        await wait_for(two_assigned, what="two nodes assigned")
        await wait_for(lambda: ctl.errors > 0, what="range full reported")
        assert sorted(v for v in (await cidrs(client)).values() if v) == ["10.0.0.0/24", "10.0.1.0/24"]
