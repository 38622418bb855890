from __future__ import annotations

import pytest

from kybernetes.scheduler.cache import Cache
from kybernetes.scheduler.framework.types import Snapshot
from tests.builders import anti_affinity, make_node, make_pod


def names(snap: Snapshot) -> dict[str, list[str]]:
    return {ni.name: sorted(p.name for p in ni.pods) for ni in snap.node_infos}


def test_snapshot_copies_only_changed_nodes() -> None:
    cache = Cache()
    cache.add_node(make_node("a"))
    cache.add_node(make_node("b"))
    snap = cache.update_snapshot()
    a0, b0 = snap.get("a"), snap.get("b")
    cache.add_pod(make_pod("p", node="a", requests={"cpu": "1"}))
    assert names(snap) == {"a": [], "b": []}  # a taken snapshot never changes
    cache.update_snapshot(snap)
    assert snap.get("a") is not a0 and snap.get("b") is b0
    assert names(snap) == {"a": ["p"], "b": []}
    assert snap.get("a").requested.milli_cpu == 1000


def test_other_snapshot_is_compared_by_generation() -> None:
    cache = Cache()
    cache.add_node(make_node("a"))
    s1 = cache.update_snapshot()
    s2 = cache.update_snapshot()
    cache.add_pod(make_pod("p", node="a"))
    cache.update_snapshot(s2)
    cache.update_snapshot(s1)  # not the last one returned: full comparison
    assert names(s1) == names(s2) == {"a": ["p"]}


def test_assume_confirm_forget() -> None:
    cache = Cache()
    cache.add_node(make_node("a"))
    pod = make_pod("p", node="a")
    cache.assume_pod(pod)
    assert cache.is_assumed(pod)
    with pytest.raises(ValueError):
        cache.assume_pod(pod)
    cache.add_pod(pod)  # the informer confirms the binding
    assert not cache.is_assumed(pod)
    cache.forget_pod(pod)  # no longer assumed: nothing to forget
    assert names(cache.update_snapshot()) == {"a": ["p"]}
    other = make_pod("q", node="a")
    cache.assume_pod(other)
    cache.forget_pod(other)
    assert names(cache.update_snapshot()) == {"a": ["p"]}


def test_pod_moves_on_update_and_removal() -> None:
    cache = Cache()
    for n in "ab":
        cache.add_node(make_node(n))
    pod = make_pod("p", node="a")
    cache.add_pod(pod)
    pod = make_pod("p", node="b")
    cache.update_pod(pod)
    snap = cache.update_snapshot()
    assert names(snap) == {"a": [], "b": ["p"]}
    cache.remove_pod(pod)
    assert names(cache.update_snapshot(snap)) == {"a": [], "b": []}


def test_node_removed_with_pods_leaves_snapshot_and_returns() -> None:
    cache = Cache()
    cache.add_node(make_node("a"))
    cache.add_pod(make_pod("p", node="a"))
    snap = cache.update_snapshot()
    cache.remove_node("a")
    assert names(cache.update_snapshot(snap)) == {}
    cache.add_node(make_node("a"))
    assert names(cache.update_snapshot(snap)) == {"a": ["p"]}


def test_pod_before_node_is_kept() -> None:
    cache = Cache()
    cache.add_pod(make_pod("early", node="late"))
    assert names(cache.update_snapshot()) == {}
    cache.add_node(make_node("late"))
    assert names(cache.update_snapshot()) == {"late": ["early"]}


def test_affinity_lists_follow_updates() -> None:
    cache = Cache()
    cache.add_node(make_node("a"))
    snap = cache.update_snapshot()
    pod = make_pod("x", node="a", affinity=anti_affinity({"app": "x"}))
    cache.add_pod(pod)
    cache.update_snapshot(snap)
    assert [ni.name for ni in snap.have_pods_with_required_anti_affinity] == ["a"]
    cache.remove_pod(pod)
    cache.update_snapshot(snap)
    assert snap.have_pods_with_required_anti_affinity == []


def test_pdbs_and_namespaces_reach_the_snapshot() -> None:
    cache = Cache()
    cache.set_namespace({"metadata": {"name": "ns", "labels": {"team": "a"}}})
    pdb = {"metadata": {"name": "x", "namespace": "ns"}}
    cache.set_pdb(pdb)
    snap = cache.update_snapshot()
    assert snap.namespace_labels == {"ns": {"team": "a"}} and snap.pdbs == [pdb]
    cache.remove_pdb(pdb)
    assert cache.update_snapshot(snap).pdbs == []
