"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods that tolerate the
``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import (
    NODE,
    UNSCHEDULED_POD,
    ActionType,
    ClusterEvent,
)
from kybernetes.scheduler.framework.status import Status, unresolvable
from kybernetes.scheduler.framework.types import NodeInfo, PodInfo, tolerations_tolerate

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_REASON_UNKNOWN_CONDITION = "node(s) had unknown conditions"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT),
                ClusterEvent(UNSCHEDULED_POD, ActionType.UPDATE_POD_TOLERATIONS))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.node is None:
            return unresolvable(ERR_REASON_UNKNOWN_CONDITION)
        if node.unschedulable and not tolerations_tolerate(pod.tolerations, UNSCHEDULABLE_TAINT):
            return unresolvable(ERR_REASON_UNSCHEDULABLE)
        return None


def new(args: object = None) -> NodeUnschedulable:
    return NodeUnschedulable()
