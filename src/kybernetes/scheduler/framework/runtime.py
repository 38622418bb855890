"""Runs a profile's plugins for one pod against one snapshot (upstream ``framework.go`` plus the
pure part of ``schedule_one.go``).

    fw = Framework(plugins=[(plugin, weight), ...])
    outcome = fw.run_scheduling_cycle(pod_info, snapshot)   # ScheduleResult or FitError

Scheduling cycle: PreFilter (a rejection fails every node; ``Skip`` disables that plugin's
Filter) -> the nominated node first, if any -> Filter over the nodes, starting where the last
cycle stopped and stopping after ``num_feasible_nodes_to_find`` feasible ones -> PreScore -> Score
per plugin, NormalizeScore, times the weight, summed -> the highest total wins (ties broken by
the injected RNG). Nothing here performs I/O or reads the clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import ClusterEvent, PostFilterResult
from kybernetes.scheduler.framework.status import Code, Status
from kybernetes.scheduler.framework.types import NodeInfo, PodInfo, Snapshot

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODE_AVAILABLE_MSG = "0/{} nodes are available"
ERR_NO_NODES_AVAILABLE = "no nodes available to schedule pods"


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes to look for before scoring (upstream's adaptive percentage:
    50% - nodes/125, at least 5%, at least 100 nodes; all nodes below 100)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if percentage >= 100:
        return num_all_nodes
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class Diagnosis:
    node_to_status: dict[str, Status] = field(default_factory=dict)
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""


class FitError(Exception):
    """No node fits the pod; ``str()`` is the upstream event/condition message."""

    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis
        self.post_filter_result: PostFilterResult | None = None

    def __str__(self) -> str:
        return fit_error_message(self.num_all_nodes, self.diagnosis)


def reasons_histogram(statuses: Iterable[Status]) -> str:
    """``"2 node(s) had untolerated taint {a: b}, 3 Insufficient cpu"``: counts, sorted as strings."""
    counts: dict[str, int] = {}
    for st in statuses:
        for reason in st.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def _sentence(text: str) -> str:
    return f" {text.rstrip('.')}."


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis) -> str:
    msg = NO_NODE_AVAILABLE_MSG.format(num_all_nodes) + ":"
    if diagnosis.pre_filter_msg:
        msg += _sentence(diagnosis.pre_filter_msg)
    else:
        histogram = reasons_histogram(diagnosis.node_to_status.values())
        if histogram:
            msg += _sentence(histogram)
    if diagnosis.post_filter_msg:
        msg += _sentence(diagnosis.post_filter_msg)
    return msg


class SchedulingError(Exception):
    """A plugin failed with ``Error`` (not a verdict about the pod): retry with backoff."""


@dataclass(frozen=True)
class ScheduleResult:
    suggested_host: str
    evaluated_nodes: int
    feasible_nodes: int


def _has(plugin: object, method: str) -> bool:
    return callable(getattr(plugin, method, None))


class Framework:
    """The plugins of one profile, sorted by extension point."""

    def __init__(self, plugins: Sequence[tuple[Any, int]], scheduler_name: str = "default-scheduler",
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None) -> None:
        self.scheduler_name = scheduler_name
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.rng = rng or random.Random(0)
        self.plugins = {p.name: p for p, _ in plugins}
        self.pre_enqueue = [p for p, _ in plugins if _has(p, "pre_enqueue")]
        self.pre_filter = [p for p, _ in plugins if _has(p, "pre_filter")]
        self.pre_filter_ext = [p for p, _ in plugins if _has(p, "add_pod") and _has(p, "remove_pod")]
        self.filter = [p for p, _ in plugins if _has(p, "filter")]
        self.post_filter = [p for p, _ in plugins if _has(p, "post_filter")]
        self.pre_score = [p for p, _ in plugins if _has(p, "pre_score")]
        self.score = [(p, w) for p, w in plugins if _has(p, "score")]
        self.next_start_node_index = 0

    def handles(self, pod: Mapping[str, Any]) -> bool:
        """Is this profile responsible for ``pod`` (``spec.schedulerName``, defaulted)?"""
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") == self.scheduler_name

    # -- events ------------------------------------------------------------------------------

    def events_to_register(self) -> dict[str, tuple[ClusterEvent, ...]]:
        """Plugin name -> the cluster events that may make pods it rejected schedulable."""
        return {name: p.events_to_register() for name, p in self.plugins.items()
                if _has(p, "events_to_register")}

    # -- extension points --------------------------------------------------------------------

    def run_pre_enqueue_plugins(self, pod: PodInfo) -> Status | None:
        for p in self.pre_enqueue:
            st = p.pre_enqueue(pod)
            if st is not None and not st.is_success():
                return st.with_plugin(p.name)
        return None

    def run_pre_filter_plugins(self, state: CycleState, pod: PodInfo,
                               snapshot: Snapshot) -> Status | None:
        for p in self.pre_filter:
            st = p.pre_filter(state, pod, snapshot)
            if st is None or st.is_success():
                continue
            if st.is_skip():
                state.skip_filter_plugins.add(p.name)
                continue
            return st.with_plugin(p.name)
        return None

    def run_filter_plugins(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        skip = state.skip_filter_plugins
        for p in self.filter:
            if skip and p.name in skip:
                continue
            st = p.filter(state, pod, node)
            if st is not None and st.code != Code.SUCCESS:
                return st.with_plugin(p.name)
        return None

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                               node: NodeInfo) -> Status | None:
        for p in self.pre_filter_ext:
            if p.name not in state.skip_filter_plugins:
                st = p.add_pod(state, pod, added, node)
                if st is not None and not st.is_success():
                    return st.with_plugin(p.name)
        return None

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                                  node: NodeInfo) -> Status | None:
        for p in self.pre_filter_ext:
            if p.name not in state.skip_filter_plugins:
                st = p.remove_pod(state, pod, removed, node)
                if st is not None and not st.is_success():
                    return st.with_plugin(p.name)
        return None

    def run_post_filter_plugins(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                                statuses: Mapping[str, Status]) -> tuple[PostFilterResult | None, Status]:
        reasons: list[str] = []
        last: PostFilterResult | None = None
        for p in self.post_filter:
            result, st = p.post_filter(state, pod, snapshot, statuses, self)
            if st is None or st.is_success():
                return result, Status(Code.SUCCESS, plugin=p.name)
            if st.code == Code.ERROR:
                raise SchedulingError(f"running PostFilter plugin {p.name}: {st.message()}")
            reasons.extend(st.reasons)
            last = result if result is not None else last
        return last, Status(Code.UNSCHEDULABLE, tuple(reasons))

    def run_score_plugins(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                          snapshot: Snapshot) -> list[int]:
        """PreScore + Score + NormalizeScore, weighted and summed per node."""
        totals = [0] * len(nodes)
        active = []
        for p, w in self.score:
            if _has(p, "pre_score"):
                st = p.pre_score(state, pod, nodes, snapshot)
                if st is not None and st.is_skip():
                    continue
                if st is not None and not st.is_success():
                    raise SchedulingError(f"running PreScore plugin {p.name}: {st.message()}")
            active.append((p, w))
        for p in self.pre_score:  # PreScore-only plugins (none by default)
            if not _has(p, "score"):
                p.pre_score(state, pod, nodes, snapshot)
        for p, weight in active:
            score = p.score
            scores = [score(state, pod, ni) for ni in nodes]
            if _has(p, "normalize_score"):
                p.normalize_score(state, pod, nodes, scores)
            for i, s in enumerate(scores):
                totals[i] += s * weight
        return totals

    # -- the scheduling algorithm ------------------------------------------------------------

    def find_nodes_that_fit(self, state: CycleState, pod: PodInfo,
                            snapshot: Snapshot) -> tuple[list[NodeInfo], Diagnosis]:
        diagnosis = Diagnosis()
        all_nodes = snapshot.node_infos
        st = self.run_pre_filter_plugins(state, pod, snapshot)
        if st is not None:
            if st.code == Code.ERROR:
                raise SchedulingError(f"running PreFilter plugin {st.plugin}: {st.message()}")
            diagnosis.pre_filter_msg = st.message()
            diagnosis.unschedulable_plugins.add(st.plugin)
            diagnosis.node_to_status = {ni.name: st for ni in all_nodes}
            return [], diagnosis
        nominated = ((pod.pod.get("status") or {}).get("nominatedNodeName")) or ""
        ni = snapshot.get(nominated) if nominated else None
        if ni is not None and self.run_filter_plugins(state, pod, ni) is None:
            return [ni], diagnosis
        return self._filter_nodes(state, pod, all_nodes, diagnosis), diagnosis

    def _filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                      diagnosis: Diagnosis) -> list[NodeInfo]:
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.percentage_of_nodes_to_score) if self.score else n
        skip = state.skip_filter_plugins
        filters = [(p.name, p.filter) for p in self.filter if p.name not in skip]
        feasible: list[NodeInfo] = []
        start = self.next_start_node_index % n if n else 0
        statuses = diagnosis.node_to_status
        processed = 0
        order = nodes[start:] + nodes[:start] if start else nodes
        for ni in order:
            processed += 1
            for name, run in filters:
                st = run(state, pod, ni)
                if st is not None and st.code != Code.SUCCESS:
                    statuses[ni.name] = st.with_plugin(name)
                    diagnosis.unschedulable_plugins.add(name)
                    break
            else:
                feasible.append(ni)
                if len(feasible) >= want:
                    break
        self.next_start_node_index = (start + processed) % n if n else 0
        return feasible

    def select_host(self, nodes: Sequence[NodeInfo], scores: Sequence[int]) -> str:
        """The highest total; among equal totals a uniformly random one (injected RNG)."""
        best = max(scores)
        tied = [i for i, s in enumerate(scores) if s == best]
        return nodes[tied[0] if len(tied) == 1 else self.rng.choice(tied)].name

    def schedule_pod(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> ScheduleResult:
        """Pick a node or raise ``FitError`` / ``SchedulingError``."""
        if len(snapshot) == 0:
            raise SchedulingError(ERR_NO_NODES_AVAILABLE)
        feasible, diagnosis = self.find_nodes_that_fit(state, pod, snapshot)
        if not feasible:
            raise FitError(pod, len(snapshot), diagnosis)
        evaluated = len(feasible) + len(diagnosis.node_to_status)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals = self.run_score_plugins(state, pod, feasible, snapshot)
        return ScheduleResult(self.select_host(feasible, totals), evaluated, len(feasible))

    def run_scheduling_cycle(self, pod: PodInfo, snapshot: Snapshot,
                             state: CycleState | None = None) -> ScheduleResult | FitError:
        """``schedule_pod`` plus PostFilter (preemption) when nothing fits.

        On failure the returned ``FitError`` carries the PostFilter message and result
        (``post_filter_result.nominated_node_name`` and ``victims`` to evict).
        """
        state = state or CycleState()
        try:
            return self.schedule_pod(state, pod, snapshot)
        except FitError as fit:
            if not self.post_filter:
                return fit
            statuses = fit.diagnosis.node_to_status
            result, st = self.run_post_filter_plugins(state, pod, snapshot, statuses)
            if st.reasons:
                fit.diagnosis.post_filter_msg = st.message()
            fit.post_filter_result = result
            return fit

