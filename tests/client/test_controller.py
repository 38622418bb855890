"""The base Controller: against the real server and against FakeApiClient."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from kybernetes.client.controller import Controller, Requeue
from kybernetes.client.fake import FakeApiClient
from kybernetes.client.keys import ObjectKey, split_key
from kybernetes.client.resources import CONFIGMAPS, PODS
from kybernetes.client.rest import ApiClient

from .conftest import cm, wait_for


class MirrorController(Controller):
    """Copies each ConfigMap's data into a ``<name>-mirror`` ConfigMap; scripted failures."""

    def __init__(self, client: ApiClient | FakeApiClient, fail_times: int = 0) -> None:
        super().__init__("mirror-controller", client, workers=3)  # type: ignore[arg-type]
        self.cms = self.informer(CONFIGMAPS, namespace="default")
        self.fail_left = fail_times
        self.calls: Counter[str] = Counter()
        self.active: set[str] = set()
        self.overlap = False

    async def sync(self, key: ObjectKey) -> None:
        self.calls[key] += 1
        if key in self.active:
            self.overlap = True
        self.active.add(key)
        try:
            ns, name = split_key(key)
            if name.endswith("-mirror"):
                return
            src = self.cms.lister().get(name, ns)
            if src is None:
                return
            if name == "flaky" and self.fail_left > 0:
                self.fail_left -= 1
                raise RuntimeError("transient")
            if name == "timed" and self.calls[key] == 1:
                raise Requeue(after=0.05)
            await asyncio.sleep(0.01)
            mirror = cm(f"{name}-mirror", ns or "default")
            mirror["data"] = dict(src.get("data") or {})
            if self.cms.lister().get(f"{name}-mirror", ns) is None:
                await self.client.create(CONFIGMAPS, mirror)
        finally:
            self.active.discard(key)


@pytest.mark.integration
async def test_controller_processes_keys_with_backoff_and_requeue(client: ApiClient) -> None:
    ctl = MirrorController(client, fail_times=2)
    for n in ("a", "b", "flaky", "timed"):
        await client.create(CONFIGMAPS, cm(n))
    task = asyncio.ensure_future(ctl.run())
    try:
        async def mirrored() -> bool:
            names = {i["metadata"]["name"] for i in (await client.list(CONFIGMAPS, "default"))["items"]}
            return {"a-mirror", "b-mirror", "flaky-mirror", "timed-mirror"} <= names
        await wait_for(mirrored, timeout=5)
        assert ctl.calls["default/flaky"] == 3          # two failures, then success
        assert ctl.queue.num_requeues(ObjectKey("default/flaky")) == 0   # forgotten on success
        assert ctl.calls["default/timed"] >= 2 and ctl.requeues >= 1
        assert not ctl.overlap
        st = ctl.statistics()
        assert st["errors"] == 2 and st["informers_synced"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert ctl.queue.shutting_down


async def test_controller_against_fake_client() -> None:
    fake = FakeApiClient()
    fake.seed(CONFIGMAPS, cm("x"))
    ctl = MirrorController(fake)
    task = asyncio.ensure_future(ctl.run())
    try:
        await wait_for(lambda: fake.stored(CONFIGMAPS, "x-mirror", "default") is not None)
        creates = fake.actions_for("create", CONFIGMAPS)
        assert [a.name for a in creates] == ["x-mirror"]
        await fake.delete(CONFIGMAPS, "x", "default")
        await wait_for(lambda: ctl.calls["default/x"] >= 2)    # the delete is a key to sync too
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_sync_handler_is_swappable_and_cancellation_is_clean() -> None:
    fake = FakeApiClient()
    for i in range(3):
        fake.seed(PODS, {"metadata": {"name": f"p{i}", "namespace": "default"}})
    ctl = Controller("pods", fake, workers=2)  # type: ignore[arg-type]
    ctl.informer(PODS)
    started = asyncio.Event()
    seen: list[str] = []

    async def slow(key: ObjectKey) -> None:
        seen.append(key)
        started.set()
        await asyncio.sleep(30)

    ctl.sync_handler = slow
    task = asyncio.ensure_future(ctl.run())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert ctl.queue.statistics()["processing"] == 0
    assert len(seen) == 2                               # two workers, each stuck on one key


def test_owner_mapper() -> None:
    from kybernetes.client.controller import controller_ref, owner_mapper

    owned = {"metadata": {"name": "p", "namespace": "ns", "ownerReferences": [
        {"kind": "Node", "name": "n", "apiVersion": "v1"},
        {"kind": "ReplicaSet", "name": "rs-1", "apiVersion": "apps/v1", "controller": True, "uid": "u"}]}}
    assert controller_ref(owned)["uid"] == "u"  # type: ignore[index]
    assert owner_mapper("ReplicaSet")(owned) == ["ns/rs-1"]
    assert owner_mapper("ReplicaSet", "apps/v1")(owned) == ["ns/rs-1"]
    assert owner_mapper("ReplicaSet", "extensions/v1beta1")(owned) == []
    assert owner_mapper("Job")(owned) == []
    assert owner_mapper("ReplicaSet")({"metadata": {"name": "orphan"}}) == []
