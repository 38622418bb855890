"""SchedulingGates: a pod with ``spec.schedulingGates`` waits outside the active queue."""

from __future__ import annotations

from kybernetes.scheduler.framework.interfaces import UNSCHEDULED_POD, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import Status, unresolvable
from kybernetes.scheduler.framework.types import PodInfo

NAME = "SchedulingGates"


class SchedulingGates:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(UNSCHEDULED_POD, ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED),)

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        gates = (pod.pod.get("spec") or {}).get("schedulingGates") or []
        if not gates:
            return None
        names = " ".join(str(g.get("name", "")) for g in gates)
        return unresolvable(f"waiting for scheduling gates: [{names}]")


def new(args: object = None) -> SchedulingGates:
    return SchedulingGates()
