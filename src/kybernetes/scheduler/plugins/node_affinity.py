"""NodeAffinity: ``spec.nodeSelector`` and required node affinity filter nodes; preferred
terms add their weights to the score."""

from __future__ import annotations

from collections.abc import Sequence

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import NODE, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import SKIP, Status, unresolvable
from kybernetes.scheduler.framework.types import (
    MAX_NODE_SCORE,
    NodeInfo,
    NodeSelectorTerm,
    PodInfo,
    RequiredNodeAffinity,
    Snapshot,
    default_normalize_score,
    parse_node_selector_term,
    required_node_affinity,
)

NAME = "NodeAffinity"
PRE_FILTER_KEY = "PreFilter" + NAME
PRE_SCORE_KEY = "PreScore" + NAME
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"


def preferred_terms(pod: PodInfo) -> list[tuple[NodeSelectorTerm, int]]:
    na = ((pod.pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    out = []
    for t in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        weight = int(t.get("weight") or 0)
        if weight:
            out.append((parse_node_selector_term(t.get("preference") or {}), weight))
    return out


class NodeAffinity:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),)

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        required = required_node_affinity(pod.pod)
        if required.empty:
            return SKIP
        state.write(PRE_FILTER_KEY, required)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        required: RequiredNodeAffinity | None = state.get(PRE_FILTER_KEY)
        if required is None:
            required = required_node_affinity(pod.pod)
        return None if required.matches(node.labels, node.name) else unresolvable(ERR_REASON_POD)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  snapshot: Snapshot) -> Status | None:
        terms = preferred_terms(pod)
        if not terms:
            return SKIP
        state.write(PRE_SCORE_KEY, terms)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        terms: list[tuple[NodeSelectorTerm, int]] = state.read(PRE_SCORE_KEY)
        return sum(w for term, w in terms if term.matches(node.labels, node.name))

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                        scores: list[int]) -> None:
        default_normalize_score(MAX_NODE_SCORE, False, scores)


def new(args: object = None) -> NodeAffinity:
    return NodeAffinity()
