"""The API behaves the same over the SQLite and the etcd store."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.conftest import ApiClient

pytestmark = pytest.mark.integration

CM = "/api/v1/namespaces/default/configmaps"


async def test_crud_conflict_list_watch(any_api: ApiClient) -> None:
    api = any_api
    code, cm, _ = await api.post(CM, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    assert code == 201
    rv0 = cm["metadata"]["resourceVersion"]
    code, cm2, _ = await api.patch(CM + "/a", {"data": {"k": "2"}})
    assert code == 200 and int(cm2["metadata"]["resourceVersion"]) > int(rv0)
    stale = {**cm, "data": {"k": "x"}}
    code, doc, _ = await api.put(CM + "/a", stale)
    assert code == 409 and doc["reason"] == "Conflict"
    code, doc, _ = await api.post(CM, {"metadata": {"name": "a"}})
    assert code == 409 and doc["reason"] == "AlreadyExists"
    for i in range(12):
        assert (await api.post(CM, {"metadata": {"name": f"p{i:02d}"}}))[0] == 201
    names: list[str] = []
    token = None
    rv = None
    while True:
        params = {"limit": "5", **({"continue": token} if token else {})}
        _, page, _ = await api.get(CM, params=params)
        rv = rv or page["metadata"]["resourceVersion"]
        assert page["metadata"]["resourceVersion"] == rv
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        await api.post(CM, {"metadata": {"generateName": "late-"}})
    assert len(names) == 13 and not any(n.startswith("late-") for n in names)

    events: list[dict] = []

    async def watch() -> None:
        async with api.session.get(api.base + CM, params={"watch": "1", "resourceVersion": cm2["metadata"]["resourceVersion"], "fieldSelector": "metadata.name=a"}) as r:
            async for line in r.content:
                if line.strip():
                    events.append(orjson.loads(line))
                if len(events) == 2:
                    return

    t = asyncio.ensure_future(watch())
    await asyncio.sleep(0.3)
    await api.patch(CM + "/a", {"data": {"k": "3"}})
    await api.delete(CM + "/a")
    await asyncio.wait_for(t, 10)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]


async def test_compaction_then_old_watch_is_gone(any_api: ApiClient) -> None:
    api = any_api
    for i in range(3):
        await api.post(CM, {"metadata": {"name": f"c{i}"}})
    _, lst, _ = await api.get(CM)
    await api.server.store.compact(int(lst["metadata"]["resourceVersion"]))
    code, doc, _ = await api.get(CM, params={"watch": "true", "resourceVersion": "2", "timeoutSeconds": "1"})
    assert code == 410 and doc["reason"] == "Expired"
    code, doc, _ = await api.get(CM, params={"resourceVersion": "2", "resourceVersionMatch": "Exact"})
    assert code == 410


async def test_crd_on_each_store(any_api: ApiClient) -> None:
    api = any_api
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gizmos.example.org"},
           "spec": {"group": "example.org", "scope": "Namespaced",
                    "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    assert (await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd))[0] == 201
    code, g, _ = await api.post("/apis/example.org/v1/namespaces/default/gizmos", {"apiVersion": "example.org/v1", "kind": "Gizmo", "metadata": {"name": "g"}, "anything": {"x": 1}})
    assert code == 201 and g["anything"] == {"x": 1}
