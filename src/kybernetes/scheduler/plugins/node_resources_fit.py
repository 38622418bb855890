"""NodeResourcesFit: the pod's requests must fit in allocatable minus what is already requested
(and one more pod must fit the ``pods`` count). Scores with a strategy, ``LeastAllocated`` by
default (``MostAllocated`` also available), over CPU and memory weighted 1:1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import (
    ASSIGNED_POD,
    NODE,
    UNSCHEDULED_POD,
    ActionType,
    ClusterEvent,
)
from kybernetes.scheduler.framework.status import Status, unschedulable
from kybernetes.scheduler.framework.types import CPU, MAX_NODE_SCORE, MEMORY, NodeInfo, PodInfo

NAME = "NodeResourcesFit"
LEAST_ALLOCATED, MOST_ALLOCATED = "LeastAllocated", "MostAllocated"
DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Reasons the pod does not fit (``Too many pods``, ``Insufficient cpu`` ...), in upstream order."""
    reasons = []
    if len(node.pods) + 1 > node.allocatable.allowed_pods:
        reasons.append("Too many pods")
    req, alloc, used = pod.requests, node.allocatable, node.requested
    if req.milli_cpu and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if req.memory and req.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
    if req.ephemeral_storage and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        reasons.append("Insufficient ephemeral-storage")
    for name, amount in req.scalar.items():
        if amount and amount > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    return min(requested, capacity) * MAX_NODE_SCORE // capacity


def requested_and_allocatable(pod: PodInfo, node: NodeInfo, name: str,
                              non_zero: bool) -> tuple[int, int]:
    """(node requested + pod request, allocatable) for one resource; (0, 0) means "not scored"."""
    if name == CPU:
        if non_zero:
            return node.non_zero_requested.milli_cpu + pod.non0_cpu, node.allocatable.milli_cpu
        return node.requested.milli_cpu + pod.requests.milli_cpu, node.allocatable.milli_cpu
    if name == MEMORY:
        if non_zero:
            return node.non_zero_requested.memory + pod.non0_mem, node.allocatable.memory
        return node.requested.memory + pod.requests.memory, node.allocatable.memory
    pod_req = pod.requests.get(name)
    if pod_req == 0 and name not in ("ephemeral-storage",):
        return 0, 0
    return node.requested.get(name) + pod_req, node.allocatable.get(name)


class NodeResourcesFit:
    name = NAME

    def __init__(self, strategy: str = LEAST_ALLOCATED,
                 resources: Sequence[tuple[str, int]] = DEFAULT_RESOURCES) -> None:
        self.strategy = strategy
        self.resources = tuple(resources)
        self._scorer = least_requested_score if strategy == LEAST_ALLOCATED else most_requested_score

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(ASSIGNED_POD, ActionType.DELETE | ActionType.UPDATE_POD_SCALE_DOWN),
                ClusterEvent(UNSCHEDULED_POD, ActionType.UPDATE_POD_SCALE_DOWN),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_ALLOCATABLE))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        # Fast path: the common "fits comfortably" case without building a list.
        req, alloc, used = pod.requests, node.allocatable, node.requested
        if (len(node.pods) < alloc.allowed_pods and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and req.memory <= alloc.memory - used.memory and not req.ephemeral_storage
                and not req.scalar):
            return None
        reasons = insufficient_resources(pod, node)
        return unschedulable(*reasons) if reasons else None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if self.resources == DEFAULT_RESOURCES:  # hot path: CPU and memory, weights 1:1
            alloc, used = node.allocatable, node.non_zero_requested
            if alloc.milli_cpu and alloc.memory:
                scorer = self._scorer
                return (scorer(used.milli_cpu + pod.non0_cpu, alloc.milli_cpu)
                        + scorer(used.memory + pod.non0_mem, alloc.memory)) // 2
        total = weight_sum = 0
        for name, weight in self.resources:
            requested, allocatable = requested_and_allocatable(pod, node, name, True)
            if allocatable == 0:
                continue
            total += self._scorer(requested, allocatable) * weight
            weight_sum += weight
        return total // weight_sum if weight_sum else 0


def new(args: Mapping[str, Any] | None = None) -> NodeResourcesFit:
    strategy = ((args or {}).get("scoringStrategy") or {})
    resources = tuple((r["name"], int(r.get("weight", 1)))
                      for r in strategy.get("resources") or []) or DEFAULT_RESOURCES
    return NodeResourcesFit(strategy.get("type") or LEAST_ALLOCATED, resources)
