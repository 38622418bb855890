from typing import Any

import pytest

from kybernetes.client.indexer import (
    BY_NODE_NAME,
    BY_OWNER_UID,
    NAMESPACE_INDEX,
    Indexer,
    index_by_field,
    index_by_label,
    index_by_node_name,
    index_by_owner_uid,
)
from kybernetes.client.lister import Lister, copy_obj


def pod(name: str, ns: str = "default", node: str | None = None, labels: dict[str, str] | None = None,
        owner: str | None = None, rv: str = "1") -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}, "resourceVersion": rv}
    if owner:
        md["ownerReferences"] = [{"uid": owner, "kind": "ReplicaSet", "name": "rs", "controller": True}]
    return {"metadata": md, "spec": {"nodeName": node} if node else {}}


def test_indexes_follow_updates_and_deletes() -> None:
    idx = Indexer({BY_NODE_NAME: index_by_node_name, BY_OWNER_UID: index_by_owner_uid})
    idx.upsert(pod("a", node="n1", owner="u1"))
    idx.upsert(pod("b", node="n1"))
    idx.upsert(pod("c", ns="other", node="n2", owner="u1"))
    assert [p["metadata"]["name"] for p in idx.by_index(BY_NODE_NAME, "n1")] == ["a", "b"]
    assert idx.index_keys(BY_OWNER_UID, "u1") == ["default/a", "other/c"]
    assert idx.index_keys(NAMESPACE_INDEX, "other") == ["other/c"]
    old = idx.upsert(pod("a", node="n2", owner="u1", rv="2"))     # moved node
    assert old is not None and old["spec"]["nodeName"] == "n1"
    assert idx.index_keys(BY_NODE_NAME, "n1") == ["default/b"]
    assert idx.index_keys(BY_NODE_NAME, "n2") == ["default/a", "other/c"]
    idx.delete(pod("b"))
    assert idx.index_values(BY_NODE_NAME) == ["n2"]        # empty buckets disappear
    assert idx.get("default/b") is None and len(idx) == 2


def test_added_indexer_covers_existing_objects() -> None:
    idx = Indexer()
    idx.upsert(pod("a", labels={"app": "web"}))
    idx.upsert(pod("b", labels={"app": "db"}))
    idx.add_indexers({"app": index_by_label("app")})
    assert idx.index_keys("app", "web") == ["default/a"]
    with pytest.raises(ValueError):
        idx.add_indexers({"app": index_by_field("spec", "nodeName")})
    with pytest.raises(KeyError):
        idx.by_index("nope", "x")


def test_replace_rebuilds() -> None:
    idx = Indexer({BY_NODE_NAME: index_by_node_name})
    idx.upsert(pod("a", node="n1"))
    idx.replace([pod("z", node="n9")])
    assert idx.keys() == ["default/z"]
    assert idx.index_keys(BY_NODE_NAME, "n1") == []
    assert idx.index_keys(BY_NODE_NAME, "n9") == ["default/z"]


def test_cluster_scoped_keys_and_field_index() -> None:
    idx = Indexer({"zone": index_by_field("metadata", "labels", "zone")})
    idx.upsert({"metadata": {"name": "node-1", "labels": {"zone": "a"}}})
    assert idx.get("node-1") is not None
    assert idx.index_keys("zone", "a") == ["node-1"]
    assert idx.index_keys(NAMESPACE_INDEX, "") == []


@pytest.mark.parametrize("selector,expected", [
    pytest.param(None, ["a", "b"], id="everything"),
    pytest.param("app=web", ["a"], id="text"),
    pytest.param({"app": "db"}, ["b"], id="label-map"),
    pytest.param("app notin (web,db)", [], id="set-based"),
])
def test_lister_by_namespace_and_selector(selector: Any, expected: list[str]) -> None:
    idx = Indexer()
    idx.upsert(pod("a", labels={"app": "web"}))
    idx.upsert(pod("b", labels={"app": "db"}))
    idx.upsert(pod("c", ns="x", labels={"app": "web"}))
    lister = Lister(idx)
    assert sorted(p["metadata"]["name"] for p in lister.list("default", selector)) == expected
    assert lister.get("c", "x") is not None and lister.get("c") is None


def test_copy_obj_is_deep() -> None:
    p = pod("a", labels={"app": "web"})
    c = copy_obj(p)
    c["metadata"]["labels"]["app"] = "changed"
    assert p["metadata"]["labels"]["app"] == "web"
