"""Scheduling framework: statuses, cycle state, NodeInfo/PodInfo, plugin protocols, runtime."""

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.runtime import (
           FitError,
           Framework,
           ScheduleResult,
           SchedulingError,
)
from kybernetes.scheduler.framework.status import Code, Status
from kybernetes.scheduler.framework.types import NodeInfo, PodInfo, Snapshot

__all__ = ["Code", "CycleState", "FitError", "Framework", "NodeInfo", "PodInfo",
           "ScheduleResult", "SchedulingError", "Snapshot", "Status"]
