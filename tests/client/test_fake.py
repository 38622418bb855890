"""FakeApiClient behaves like the server for the verbs components use, and records actions."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.client import errors as e
from kybernetes.client.fake import NOT_HANDLED, Action, FakeApiClient
from kybernetes.client.informer import SharedInformer
from kybernetes.client.resources import NODES, PODS

from .conftest import wait_for


def pod(name: str, **spec: object) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": dict(spec)}


async def test_crud_semantics_and_recording() -> None:
    c = FakeApiClient()
    p = await c.create(PODS, pod("a"))
    assert p["metadata"]["resourceVersion"] == "1" and p["metadata"]["uid"]
    with pytest.raises(e.AlreadyExists):
        await c.create(PODS, pod("a"))
    stale = dict(p)
    p2 = await c.update(PODS, {**p, "spec": {"x": 1}})
    assert p2["metadata"]["generation"] == 2
    with pytest.raises(e.Conflict):
        await c.update(PODS, stale)
    st = await c.patch_status(PODS, "a", {"status": {"phase": "Running"}}, "default")
    assert st["status"] == {"phase": "Running"} and st["metadata"]["generation"] == 2
    kept = await c.update(PODS, {**st, "status": {"phase": "Lies"}})     # main PUT keeps status
    assert kept["status"] == {"phase": "Running"}
    await c.create(PODS, {"target": {"name": "node-1"}}, "default", subresource="binding", name="a")
    assert c.stored(PODS, "a", "default")["spec"]["nodeName"] == "node-1"
    jp = await c.patch(PODS, "a", [{"op": "add", "path": "/metadata/labels", "value": {"l": "1"}}], "default", patch_type="json")
    assert jp["metadata"]["labels"] == {"l": "1"}
    assert (await c.list(PODS, "default", label_selector="l=1"))["items"][0]["metadata"]["name"] == "a"
    await c.delete(PODS, "a", "default")
    with pytest.raises(e.NotFound):
        await c.get(PODS, "a", "default")
    assert [a.verb for a in c.actions] == ["create", "create", "update", "update", "patch", "update",
                                          "create", "patch", "list", "delete", "get"]


async def test_reactors_inject_errors() -> None:
    c = FakeApiClient()
    calls: list[Action] = []

    def fail_nodes(a: Action) -> object:
        calls.append(a)
        if a.name == "bad":
            raise e.ServiceUnavailable(503, "ServiceUnavailable", "down")
        return NOT_HANDLED

    c.prepend_reactor("create", "nodes", fail_nodes)
    await c.create(NODES, {"metadata": {"name": "ok"}})
    with pytest.raises(e.ServiceUnavailable):
        await c.create(NODES, {"metadata": {"name": "bad"}})
    assert len(calls) == 2 and c.stored(NODES, "ok") is not None


async def test_informer_runs_on_fake_and_relists_when_history_is_gone() -> None:
    c = FakeApiClient(history=3)
    c.seed(PODS, pod("a"))
    inf = SharedInformer(c, PODS)  # type: ignore[arg-type]
    names: list[str] = []
    inf.add_event_handler(on_add=lambda o: names.append(o["metadata"]["name"]))
    task = asyncio.ensure_future(inf.run())
    try:
        assert await inf.wait_for_sync(2)
        await c.create(PODS, pod("b"))
        await wait_for(lambda: "b" in names)
        c.stop_watches()                     # the watch ends; meanwhile history rolls over
        for i in range(5):
            await c.create(PODS, pod(f"x{i}"))
        await wait_for(lambda: len(inf.indexer) == 7)
        assert inf.reflector.expired == 1 and inf.reflector.lists == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
