"""TaintToleration: NoSchedule/NoExecute taints must be tolerated; untolerated PreferNoSchedule
taints lower a node's score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import (
    NODE,
    UNSCHEDULED_POD,
    ActionType,
    ClusterEvent,
)
from kybernetes.scheduler.framework.status import Status, unresolvable
from kybernetes.scheduler.framework.types import (
    MAX_NODE_SCORE,
    NodeInfo,
    PodInfo,
    Snapshot,
    default_normalize_score,
    tolerations_tolerate,
)

NAME = "TaintToleration"
PRE_SCORE_KEY = "PreScore" + NAME
_FILTER_EFFECTS = ("NoSchedule", "NoExecute")


def untolerated_taint(taints: Sequence[Mapping[str, Any]],
                      tolerations: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first NoSchedule/NoExecute taint that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in _FILTER_EFFECTS and not tolerations_tolerate(tolerations, taint):
            return taint
    return None


def count_intolerable_prefer_no_schedule(taints: Sequence[Mapping[str, Any]],
                                         tolerations: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for t in taints if t.get("effect") == "PreferNoSchedule"
               and not tolerations_tolerate(tolerations, t))


class TaintToleration:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT),
                ClusterEvent(UNSCHEDULED_POD, ActionType.UPDATE_POD_TOLERATIONS))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        taint = untolerated_taint(node.taints, pod.tolerations)
        if taint is None:
            return None
        return unresolvable(
            f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}")

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  snapshot: Snapshot) -> Status | None:
        prefer = tuple(t for t in pod.tolerations
                       if (t.get("effect") or "") in ("", "PreferNoSchedule"))
        state.write(PRE_SCORE_KEY, prefer)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        return count_intolerable_prefer_no_schedule(node.taints, state.read(PRE_SCORE_KEY))

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                        scores: list[int]) -> None:
        default_normalize_score(MAX_NODE_SCORE, True, scores)


def new(args: object = None) -> TaintToleration:
    return TaintToleration()
