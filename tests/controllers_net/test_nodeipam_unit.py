"""The pod CIDR allocator (pure)."""

from __future__ import annotations

import pytest

from kybernetes.controllers.nodeipam import CIDRRangeFull, CIDRSet, node_pod_cidrs


def test_allocates_distinct_blocks_in_order() -> None:
    s = CIDRSet("10.244.0.0/16", 24)
    assert s.size == 256
    assert [s.allocate() for _ in range(3)] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]


def test_occupied_blocks_are_skipped_and_outside_ranges_ignored() -> None:
    s = CIDRSet("10.244.0.0/16", 24)
    assert s.occupy("10.244.0.0/24")
    assert not s.occupy("10.128.1.0/24")       # the fake kubelet's range: not ours
    assert not s.occupy("10.244.0.0/25")       # wrong size
    assert not s.occupy("garbage")
    assert s.allocate() == "10.244.1.0/24"
    assert s.used() == 2


def test_release_and_round_robin_reuse() -> None:
    s = CIDRSet("10.0.0.0/30", 31)             # two blocks
    a, b = s.allocate(), s.allocate()
    assert (a, b) == ("10.0.0.0/31", "10.0.0.2/31")
    with pytest.raises(CIDRRangeFull):
        s.allocate()
    s.release(a)
    assert s.allocate() == a


def test_released_block_is_not_reused_at_once() -> None:
    s = CIDRSet("10.244.0.0/16", 24)
    first = s.allocate()
    s.release(first)
    assert s.allocate() == "10.244.1.0/24"


def test_bad_mask_size() -> None:
    with pytest.raises(ValueError):
        CIDRSet("10.244.0.0/16", 8)


def test_node_pod_cidrs() -> None:
    assert node_pod_cidrs({"spec": {"podCIDR": "10.1.0.0/24"}}) == ["10.1.0.0/24"]
    assert node_pod_cidrs({"spec": {"podCIDR": "a", "podCIDRs": ["b", "c"]}}) == ["b", "c"]
    assert node_pod_cidrs({"spec": {}}) == []
