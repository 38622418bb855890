"""Small drivers that run one plugin the way the runtime does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kybernetes.scheduler.cache import snapshot_from
from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.status import Code, Status
from kybernetes.scheduler.framework.types import PodInfo, Snapshot

Obj = dict[str, Any]


def run_filter(plugin: Any, pod: Obj, node: Obj, pods: Sequence[Obj] = (),
               other_nodes: Sequence[Obj] = ()) -> Status | None:
    """PreFilter (if any; Skip means pass) then Filter of ``plugin`` on ``node``."""
    snap = snapshot_from([node, *other_nodes], pods)
    return filter_in(plugin, pod, snap, snap.node_infos[0].name)


def filter_in(plugin: Any, pod: Obj, snap: Snapshot, node_name: str) -> Status | None:
    state, pi = CycleState(), PodInfo(pod)
    if hasattr(plugin, "pre_filter"):
        st = plugin.pre_filter(state, pi, snap)
        if st is not None and st.code == Code.SKIP:
            return None
        if st is not None:
            return st
    ni = snap.get(node_name)
    assert ni is not None
    return plugin.filter(state, pi, ni)


def run_scores(plugin: Any, pod: Obj, nodes: Sequence[Obj], pods: Sequence[Obj] = (),
               normalize: bool = True) -> dict[str, int] | None:
    """PreScore + Score (+ NormalizeScore) over all ``nodes``; None when PreScore skips."""
    snap = snapshot_from(nodes, pods)
    state, pi = CycleState(), PodInfo(pod)
    infos = snap.node_infos
    if hasattr(plugin, "pre_score"):
        st = plugin.pre_score(state, pi, infos, snap)
        if st is not None and st.code == Code.SKIP:
            return None
    scores = [plugin.score(state, pi, ni) for ni in infos]
    if normalize and hasattr(plugin, "normalize_score"):
        plugin.normalize_score(state, pi, infos, scores)
    return {ni.name: s for ni, s in zip(infos, scores)}


def reasons(st: Status | None) -> tuple[int, tuple[str, ...]] | None:
    return None if st is None else (int(st.code), st.reasons)
