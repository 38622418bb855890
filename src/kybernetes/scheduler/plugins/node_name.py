"""NodeName: a pod that names a node (``spec.nodeName``) fits only that node."""

from __future__ import annotations

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import NODE, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import SKIP, Status, unresolvable
from kybernetes.scheduler.framework.types import NodeInfo, PodInfo, Snapshot

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"
_MISMATCH = unresolvable(ERR_REASON).with_plugin(NAME)


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not pod.node_name or pod.node_name == node.name


class NodeName:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE),)

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        return None if pod.node_name else SKIP  # nothing to check per node

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else _MISMATCH


def new(args: object = None) -> NodeName:
    return NodeName()
