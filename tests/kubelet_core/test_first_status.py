"""A new pod's first status waits FIRST_STATUS_GRACE for its start: a quick start is reported
once (already Running); a slow one shows Pending / ContainerCreating once the grace is over."""

from __future__ import annotations

import asyncio
from typing import Any

from kybernetes.client.resources import PODS
from kybernetes.kubelet.podsync import FIRST_STATUS_GRACE
from kybernetes.kubelet.runtime.base import LABEL_POD_UID

from .conftest import Env, container_status, make_pod


async def test_a_quick_start_is_reported_once_already_running(env: Env) -> None:
    env.images.add("busybox:1.36")
    kl = await env.start()
    await env.client.create(PODS, make_pod("quick"), "default")

    async def running() -> bool:
        return ((await env.pod("quick")).get("status") or {}).get("phase") == "Running"

    await env.pump(running, what="pod Running")     # the fake clock does not move: no grace passes
    assert kl.status_writes == 1
    st = (await env.pod("quick"))["status"]
    assert "running" in container_status({"status": st}, "app")["state"]
    assert st["startTime"] and st["hostIP"] == "127.0.0.1"


async def test_a_slow_start_shows_container_creating_after_the_grace(env: Env) -> None:
    release = asyncio.Event()
    pull = env.images.pull

    async def slow_pull(ref: str, **kw: Any) -> Any:
        await release.wait()
        return await pull(ref, **kw)

    env.images.pull = slow_pull  # type: ignore[method-assign]
    kl = await env.start()
    await env.client.create(PODS, make_pod("slow"), "default")
    await env.pump(lambda: kl.synced, what="first sync")
    await asyncio.sleep(0.1)
    assert kl.status_writes == 0 and "containerStatuses" not in ((await env.pod("slow")).get("status") or {})

    env.clock.advance(FIRST_STATUS_GRACE)

    async def creating() -> bool:
        st = (await env.pod("slow")).get("status") or {}
        return container_status({"status": st}, "app").get("state") == {"waiting": {"reason": "ContainerCreating"}}

    await env.pump(creating, what="ContainerCreating")
    assert (await env.pod("slow"))["status"]["phase"] == "Pending"

    release.set()

    async def running() -> bool:
        return ((await env.pod("slow")).get("status") or {}).get("phase") == "Running"

    await env.pump(running, what="pod Running")
    assert kl.status_writes == 2


async def test_sandboxes_are_listed_by_pod(env: Env) -> None:
    env.images.add("busybox:1.36")
    await env.start()
    for name in ("a", "b"):
        await env.client.create(PODS, make_pod(name), "default")

    async def both() -> bool:
        return len(await env.runtime.list_sandboxes()) == 2

    await env.pump(both, what="two sandboxes")
    uid = (await env.pod("a"))["metadata"]["uid"]
    [only] = await env.runtime.list_sandboxes({LABEL_POD_UID: uid})
    assert only.labels[LABEL_POD_UID] == uid
    assert await env.runtime.list_sandboxes({LABEL_POD_UID: "no-such-uid"}) == []
