"""ControllerRevision helpers: naming, data, hashing, ordering, equality, truncation."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.controllers import history

Obj = dict[str, Any]


def owner(image: str = "a:1", name: str = "web") -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def rev(name: str, number: int, created: str = "2024-01-01T00:00:00Z", data: Obj | None = None) -> Obj:
    return {"metadata": {"name": name, "creationTimestamp": created}, "revision": number,
            "data": data or {}}


def test_revision_name_truncates_prefix() -> None:
    assert history.revision_name("web", "abc") == "web-abc"
    assert history.revision_name("x" * 300, "abc") == "x" * 223 + "-abc"


def test_template_patch_replaces_and_drops_nulls() -> None:
    data = history.template_patch(owner())
    assert data == {"spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                          "spec": {"containers": [{"name": "c", "image": "a:1"}]},
                                          "$patch": "replace"}}}


def test_hash_is_stable_and_sensitive() -> None:
    d1, d2 = history.template_patch(owner("a:1")), history.template_patch(owner("a:2"))
    assert history.hash_data(d1) == history.hash_data(history.template_patch(owner("a:1")))
    assert history.hash_data(d1) != history.hash_data(d2)
    assert history.hash_data(d1, 1) != history.hash_data(d1)


def test_new_revision() -> None:
    data = history.template_patch(owner())
    r = history.new_revision(owner(), "StatefulSet", "apps/v1", data, 3, "h123")
    assert r["metadata"]["name"] == "web-h123"
    assert r["metadata"]["labels"] == {"app": "web", history.CONTROLLER_REVISION_HASH_LABEL: "h123"}
    assert r["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                   "uid": "u1", "controller": True, "blockOwnerDeletion": True}
    assert r["revision"] == 3 and r["data"] is data


def test_apply_revision_roundtrip() -> None:
    r = {"data": history.template_patch(owner("old:1"))}
    applied = history.apply_revision(owner("new:1"), r)
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == "old:1"
    assert "$patch" not in applied["spec"]["template"]


def test_sort_and_next() -> None:
    revs = [rev("c", 2), rev("b", 1, "2024-01-02T00:00:00Z"), rev("a", 1)]
    assert [r["metadata"]["name"] for r in history.sort_revisions(revs)] == ["a", "b", "c"]
    assert history.next_revision(revs) == 3
    assert history.next_revision([]) == 1


def test_equal_revision() -> None:
    a = {"metadata": {"labels": {history.CONTROLLER_REVISION_HASH_LABEL: "x"}}, "data": {"k": 1}}
    b = {"metadata": {"labels": {history.CONTROLLER_REVISION_HASH_LABEL: "x"}}, "data": {"k": 1}}
    c = {"metadata": {"labels": {history.CONTROLLER_REVISION_HASH_LABEL: "y"}}, "data": {"k": 1}}
    assert history.equal_revision(a, b)
    assert not history.equal_revision(a, c)
    assert history.find_equal_revisions([a, c, b], b) == [a, b]


@pytest.mark.parametrize(("live", "limit", "want"), [
    pytest.param(set(), 2, ["r1", "r2"], id="keep-newest-two"),
    pytest.param({"r1"}, 2, ["r2"], id="live-never-deleted"),
    pytest.param({"r4"}, 10, [], id="under-limit"),
    pytest.param({"r4"}, 0, ["r1", "r2", "r3"], id="limit-zero"),
])
def test_revisions_to_delete(live: set[str], limit: int, want: list[str]) -> None:
    revs = [rev(f"r{i}", i) for i in (4, 2, 1, 3)]
    assert [r["metadata"]["name"] for r in history.revisions_to_delete(revs, live, limit)] == want
