"""One small protocol per extension point; a plugin implements only the ones it needs.

Every plugin has a ``name`` (its upstream name, from the module's ``NAME`` constant). Filter and
Score are pure functions of (pod, node info) plus what PreFilter/PreScore left in the
``CycleState``. ``None`` means success. Cluster events tell the queue which changes could make a
pod rejected by this plugin schedulable again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Protocol, runtime_checkable

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.status import Status
from kybernetes.scheduler.framework.types import NodeInfo, Obj, PodInfo, Snapshot


class ActionType(IntFlag):
    """What happened to an object (upstream ``framework.ActionType``)."""

    ADD = 1
    DELETE = 2
    UPDATE_NODE_ALLOCATABLE = 4
    UPDATE_NODE_LABEL = 8
    UPDATE_NODE_TAINT = 16
    UPDATE_NODE_CONDITION = 32
    UPDATE_NODE_ANNOTATION = 64
    UPDATE_POD_LABEL = 128
    UPDATE_POD_SCALE_DOWN = 256
    UPDATE_POD_TOLERATIONS = 512
    UPDATE_POD_SCHEDULING_GATES_ELIMINATED = 1024
    UPDATE = (UPDATE_NODE_ALLOCATABLE | UPDATE_NODE_LABEL | UPDATE_NODE_TAINT
              | UPDATE_NODE_CONDITION | UPDATE_NODE_ANNOTATION | UPDATE_POD_LABEL
              | UPDATE_POD_SCALE_DOWN | UPDATE_POD_TOLERATIONS
              | UPDATE_POD_SCHEDULING_GATES_ELIMINATED)
    ALL = ADD | DELETE | UPDATE


# Event resources. "Pod" matches AssignedPod and UnscheduledPod events too.
POD, ASSIGNED_POD, UNSCHEDULED_POD, NODE, WILDCARD = (
    "Pod", "AssignedPod", "UnscheduledPod", "Node", "*")


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    resource: str
    action: ActionType

    def matches(self, incoming: ClusterEvent) -> bool:
        """Does ``incoming`` fall under this registered event (same or more specific)?"""
        if self.resource == WILDCARD and self.action == ActionType.ALL:
            return True
        if not (self.resource == WILDCARD or self.resource == incoming.resource
                or (self.resource == POD and incoming.resource in (ASSIGNED_POD, UNSCHEDULED_POD))):
            return False
        return bool(self.action & incoming.action) and incoming.action <= self.action

    @property
    def label(self) -> str:
        return f"{self.resource}{self.action.name or int(self.action)}"


@dataclass(frozen=True)
class PostFilterResult:
    nominated_node_name: str = ""
    victims: tuple[Obj, ...] = ()


@dataclass
class NodeScore:
    name: str
    score: int


class Plugin(Protocol):
    name: str


@runtime_checkable
class PreEnqueuePlugin(Plugin, Protocol):
    def pre_enqueue(self, pod: PodInfo) -> Status | None: ...


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None: ...


@runtime_checkable
class PreFilterExtensions(Plugin, Protocol):
    """Lets preemption ask "what if this pod were added/removed" without a new PreFilter."""

    def add_pod(self, state: CycleState, pod: PodInfo, pod_to_add: PodInfo,
                node: NodeInfo) -> Status | None: ...

    def remove_pod(self, state: CycleState, pod: PodInfo, pod_to_remove: PodInfo,
                   node: NodeInfo) -> Status | None: ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...


class FrameworkHandle(Protocol):
    """What PostFilter plugins may use from the runtime."""

    def run_filter_plugins(self, state: CycleState, pod: PodInfo,
                           node: NodeInfo) -> Status | None: ...

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                                  node: NodeInfo) -> Status | None: ...

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                               node: NodeInfo) -> Status | None: ...


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                    statuses: Mapping[str, Status], handle: FrameworkHandle,
                    ) -> tuple[PostFilterResult | None, Status | None]: ...


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  snapshot: Snapshot) -> Status | None: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...


@runtime_checkable
class ScoreExtensions(Plugin, Protocol):
    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                        scores: list[int]) -> None: ...


@runtime_checkable
class EnqueueExtensions(Plugin, Protocol):
    def events_to_register(self) -> tuple[ClusterEvent, ...]: ...


@dataclass(frozen=True)
class PluginConfig:
    """One enabled plugin of a profile: its name, score weight and arguments."""

    name: str
    weight: int = 1
    args: Mapping[str, object] = field(default_factory=dict)
