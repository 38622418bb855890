"""NodeResourcesBalancedAllocation: prefer nodes where CPU and memory would be used in similar
fractions after placing the pod (score = (1 - std of the fractions) * 100)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.status import SKIP, Status
from kybernetes.scheduler.framework.types import (
    CPU,
    MAX_NODE_SCORE,
    MEMORY,
    NodeInfo,
    PodInfo,
    Snapshot,
)
from kybernetes.scheduler.plugins.node_resources_fit import requested_and_allocatable

NAME = "NodeResourcesBalancedAllocation"


def balanced_score(fractions: Sequence[float]) -> int:
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * MAX_NODE_SCORE)


class BalancedAllocation:
    name = NAME

    def __init__(self, resources: Sequence[str] = (CPU, MEMORY)) -> None:
        self.resources = tuple(resources)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  snapshot: Snapshot) -> Status | None:
        # Best-effort pods would otherwise all pile onto the same "balanced" node.
        if all(pod.requests.get(r) == 0 for r in self.resources):
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        alloc = node.allocatable
        if self.resources == (CPU, MEMORY) and alloc.milli_cpu and alloc.memory:  # hot path
            used, req = node.requested, pod.requests
            cpu = min((used.milli_cpu + req.milli_cpu) / alloc.milli_cpu, 1.0)
            mem = min((used.memory + req.memory) / alloc.memory, 1.0)
            return int((1 - abs(cpu - mem) / 2) * MAX_NODE_SCORE)
        fractions = []
        for name in self.resources:
            requested, allocatable = requested_and_allocatable(pod, node, name, False)
            if allocatable:
                fractions.append(min(requested / allocatable, 1.0))
        return balanced_score(fractions)


def new(args: object = None) -> BalancedAllocation:
    return BalancedAllocation()
