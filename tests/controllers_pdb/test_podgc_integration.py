"""The pod garbage collector against the in-process API server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kybernetes.client import InformerFactory
from kybernetes.client.errors import NotFound
from kybernetes.client.resources import NODES, PODS
from kybernetes.client.rest import ApiClient
from kybernetes.controllers.podgc import ORPHANED, TERMINATED, PodGCController

from .conftest import pod_body, running, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def podgc(client: ApiClient) -> AsyncIterator[PodGCController]:
    factory = InformerFactory(client)
    gc = PodGCController(client, factory=factory, period=0.05, quarantine_time=0.3, terminated_threshold=1)
    async with running(factory.run(), gc.run()):
        yield gc


async def exists(client: ApiClient, name: str) -> bool:
    try:
        await client.get(PODS, name, "default")
    except NotFound:
        return False
    return True


async def test_pods_of_a_deleted_node_are_removed(client: ApiClient, podgc: PodGCController) -> None:
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "doomed"}})
    await client.create(PODS, pod_body("on-doomed", {"app": "x"}, node="doomed"), "default")
    await client.create(PODS, pod_body("elsewhere", {"app": "x"}), "default")
    await wait_for(lambda: podgc.wait_for_sync(0.01), what="caches")
    await wait_for(lambda: podgc.syncs >= 3, what="a few GC passes")
    assert await exists(client, "on-doomed")          # its node exists: left alone

    await client.delete(NODES, "doomed")
    await wait_for(lambda: "doomed" in podgc.quarantine, what="quarantine")
    assert await exists(client, "on-doomed")          # not before the quarantine is over

    async def gone() -> bool:
        return not await exists(client, "on-doomed")
    await wait_for(gone, what="the orphan deleted")
    assert podgc.deleted.get(ORPHANED) == 1
    assert await exists(client, "elsewhere")
    await wait_for(lambda: podgc.quarantine == {}, what="quarantine cleared")


async def test_terminated_pods_over_the_threshold(client: ApiClient, podgc: PodGCController) -> None:
    for name in ("first", "second"):
        await client.create(PODS, pod_body(name, {"app": "job"}), "default")
        await client.patch_status(PODS, name, {"status": {"phase": "Succeeded"}}, "default")

    async def first_gone() -> bool:
        return not await exists(client, "first")
    await wait_for(first_gone, what="the oldest finished pod deleted")
    assert await exists(client, "second")             # the threshold (1) keeps the newest
    assert podgc.deleted.get(TERMINATED) == 1
