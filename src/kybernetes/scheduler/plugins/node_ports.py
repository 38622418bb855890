"""NodePorts: a pod's ``hostPort``s must be free on the node (0.0.0.0 conflicts with any IP)."""

from __future__ import annotations

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import ASSIGNED_POD, NODE, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import SKIP, Status, unschedulable
from kybernetes.scheduler.framework.types import NodeInfo, PodInfo, Snapshot

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"
_CONFLICT = unschedulable(ERR_REASON).with_plugin(NAME)


def fits_ports(ports: tuple[tuple[str, str, int], ...], node: NodeInfo) -> bool:
    for ip, proto, port in ports:
        if ip == ANY_IP:
            if (proto, port) in node.used_port_keys:
                return False
        elif (ip, proto, port) in node.used_ports or (ANY_IP, proto, port) in node.used_ports:
            return False
    return True


class NodePorts:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(ASSIGNED_POD, ActionType.DELETE),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE))

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits_ports(pod.host_ports, node) else _CONFLICT


def new(args: object = None) -> NodePorts:
    return NodePorts()
