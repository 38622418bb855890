"""PodTopologySpread: ``topologySpreadConstraints`` keep matching pods spread over topology
domains. ``DoNotSchedule`` constraints filter (skew = count in domain + self - global minimum must
stay within ``maxSkew``; fewer domains than ``minDomains`` makes the minimum 0);
``ScheduleAnyway`` constraints score (fewer matching pods in a node's domain scores higher)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kybernetes.api import labels as lbl
from kybernetes.api.errors import StatusError
from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import NODE, POD, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import SKIP, Status, unresolvable, unschedulable
from kybernetes.scheduler.framework.types import (
    LABEL_HOSTNAME,
    LABEL_ZONE,
    MAX_NODE_SCORE,
    NodeInfo,
    PodInfo,
    RequiredNodeAffinity,
    Snapshot,
    required_node_affinity,
)
from kybernetes.scheduler.plugins.taint_toleration import untolerated_taint

NAME = "PodTopologySpread"
PRE_FILTER_KEY = "PreFilter" + NAME
PRE_SCORE_KEY = "PreScore" + NAME
ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
DO_NOT_SCHEDULE, SCHEDULE_ANYWAY = "DoNotSchedule", "ScheduleAnyway"

# Applied (as upstream's "System" defaulting) when the pod has no constraints of its own and
# ``selector_for_pod`` finds the Services/ReplicaSets/StatefulSets that select it.
SYSTEM_DEFAULT_CONSTRAINTS: tuple[Mapping[str, Any], ...] = (
    {"topologyKey": LABEL_HOSTNAME, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 3},
    {"topologyKey": LABEL_ZONE, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 5},
)


@dataclass(frozen=True, slots=True)
class Constraint:
    max_skew: int
    topology_key: str
    selector: lbl.Selector
    min_domains: int = 1
    honor_node_affinity: bool = True  # nodeAffinityPolicy (default Honor)
    honor_node_taints: bool = False  # nodeTaintsPolicy (default Ignore)

    def includes_node(self, pod: PodInfo, required: RequiredNodeAffinity, node: NodeInfo) -> bool:
        if self.honor_node_affinity and not required.matches(node.labels, node.name):
            return False
        return not (self.honor_node_taints
                    and untolerated_taint(node.taints, pod.tolerations) is not None)


def parse_constraint(raw: Mapping[str, Any], pod: PodInfo) -> Constraint:
    ls = dict(raw.get("labelSelector") or {}) if raw.get("labelSelector") is not None else None
    keys = [k for k in raw.get("matchLabelKeys") or [] if k in pod.labels]
    if keys:
        ls = dict(ls or {})
        ls["matchExpressions"] = list(ls.get("matchExpressions") or []) + [
            {"key": k, "operator": "In", "values": [pod.labels[k]]} for k in keys]
    return Constraint(
        max_skew=int(raw.get("maxSkew") or 1),
        topology_key=str(raw.get("topologyKey", "")),
        selector=lbl.selector_from_label_selector(ls),
        min_domains=int(raw.get("minDomains") or 1),
        honor_node_affinity=(raw.get("nodeAffinityPolicy") or "Honor") == "Honor",
        honor_node_taints=(raw.get("nodeTaintsPolicy") or "Ignore") == "Honor",
    )


def count_matching(pods: Sequence[PodInfo], selector: lbl.Selector, namespace: str) -> int:
    n = 0
    for p in pods:
        if p.namespace == namespace and not p.terminating and selector.matches(p.labels):
            n += 1
    return n


def has_all_keys(labels: Mapping[str, str], constraints: Sequence[Constraint]) -> bool:
    return all(c.topology_key in labels for c in constraints)


class FilterState:
    """Matching-pod counts per constraint and domain, the minimum per constraint, and whether
    the incoming pod itself matches each constraint's selector."""

    __slots__ = ("constraints", "counts", "minimums", "pod", "required", "self_match")

    def __init__(self, pod: PodInfo, constraints: list[Constraint], required: RequiredNodeAffinity) -> None:
        self.pod, self.constraints, self.required = pod, constraints, required
        self.counts: list[dict[str, int]] = [{} for _ in constraints]
        self.minimums: list[int] = [0] * len(constraints)
        self.self_match = [1 if c.selector.matches(pod.labels) else 0 for c in constraints]

    def refresh_minimums(self) -> None:
        for i, c in enumerate(self.constraints):
            counts = self.counts[i]
            self.minimums[i] = 0 if len(counts) < c.min_domains else min(counts.values(), default=0)

    def clone(self) -> FilterState:
        c = FilterState.__new__(FilterState)
        c.pod, c.constraints, c.required = self.pod, self.constraints, self.required
        c.counts = [dict(d) for d in self.counts]
        c.minimums, c.self_match = list(self.minimums), self.self_match
        return c

    def update(self, other: PodInfo, node: NodeInfo, sign: int) -> None:
        if other.namespace != self.pod.namespace or not has_all_keys(node.labels, self.constraints):
            return
        for i, c in enumerate(self.constraints):
            if c.includes_node(self.pod, self.required, node) and c.selector.matches(other.labels):
                value = node.labels[c.topology_key]
                self.counts[i][value] = self.counts[i].get(value, 0) + sign
        self.refresh_minimums()


class PodTopologySpread:
    name = NAME

    def __init__(self, selector_for_pod: Callable[[PodInfo], lbl.Selector | None] | None = None,
                 default_constraints: Sequence[Mapping[str, Any]] = SYSTEM_DEFAULT_CONSTRAINTS) -> None:
        self.selector_for_pod = selector_for_pod
        self.default_constraints = tuple(default_constraints)

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(POD, ActionType.ADD | ActionType.UPDATE_POD_LABEL | ActionType.DELETE),
                ClusterEvent(NODE, ActionType.ADD | ActionType.DELETE | ActionType.UPDATE_NODE_LABEL
                             | ActionType.UPDATE_NODE_TAINT))

    def constraints(self, pod: PodInfo, when: str) -> list[Constraint]:
        raw = (pod.pod.get("spec") or {}).get("topologySpreadConstraints") or []
        if raw:
            return [parse_constraint(c, pod) for c in raw
                    if (c.get("whenUnsatisfiable") or DO_NOT_SCHEDULE) == when]
        selector = self.selector_for_pod(pod) if self.selector_for_pod else None
        if selector is None or selector.empty:
            return []
        return [Constraint(int(c["maxSkew"]), str(c["topologyKey"]), selector)
                for c in self.default_constraints if c["whenUnsatisfiable"] == when]

    # -- filter ------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        try:
            constraints = self.constraints(pod, DO_NOT_SCHEDULE)
        except StatusError as e:
            return unresolvable(f"parsing topologySpreadConstraints: {e.message}")
        if not constraints:
            return SKIP
        s = FilterState(pod, constraints, required_node_affinity(pod.pod))
        for ni in snapshot.node_infos:
            if not has_all_keys(ni.labels, constraints):
                continue
            for i, c in enumerate(constraints):
                if not c.includes_node(pod, s.required, ni):
                    continue
                value = ni.labels[c.topology_key]
                counts = s.counts[i]
                counts[value] = counts.get(value, 0) + count_matching(ni.pods, c.selector, pod.namespace)
        s.refresh_minimums()
        state.write(PRE_FILTER_KEY, s)
        return None

    def add_pod(self, state: CycleState, pod: PodInfo, pod_to_add: PodInfo,
                node: NodeInfo) -> Status | None:
        s: FilterState | None = state.get(PRE_FILTER_KEY)
        if s is not None:
            s.update(pod_to_add, node, 1)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, pod_to_remove: PodInfo,
                   node: NodeInfo) -> Status | None:
        s: FilterState | None = state.get(PRE_FILTER_KEY)
        if s is not None:
            s.update(pod_to_remove, node, -1)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: FilterState = state.read(PRE_FILTER_KEY)
        for i, c in enumerate(s.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                return unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH)
            skew = s.counts[i].get(value, 0) + s.self_match[i] - s.minimums[i]
            if skew > c.max_skew:
                return unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH)
        return None

    # -- score -------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  snapshot: Snapshot) -> Status | None:
        try:
            constraints = self.constraints(pod, SCHEDULE_ANYWAY)
        except StatusError as e:
            return unresolvable(f"parsing topologySpreadConstraints: {e.message}")
        if not constraints:
            return SKIP
        required = required_node_affinity(pod.pod)
        ignored = {ni.name for ni in nodes if not has_all_keys(ni.labels, constraints)}
        counts: list[dict[str, int]] = [{} for _ in constraints]
        for ni in nodes:
            if ni.name in ignored:
                continue
            for i, c in enumerate(constraints):
                if c.topology_key != LABEL_HOSTNAME:
                    counts[i].setdefault(ni.labels[c.topology_key], 0)
        weights = []
        for i, c in enumerate(constraints):
            size = len(nodes) - len(ignored) if c.topology_key == LABEL_HOSTNAME else len(counts[i])
            weights.append(math.log(size + 2))
        for ni in snapshot.node_infos:
            if not ni.pods or not has_all_keys(ni.labels, constraints):
                continue
            for i, c in enumerate(constraints):
                if c.topology_key == LABEL_HOSTNAME or not c.includes_node(pod, required, ni):
                    continue
                value = ni.labels[c.topology_key]
                if value in counts[i]:
                    counts[i][value] += count_matching(ni.pods, c.selector, pod.namespace)
        state.write(PRE_SCORE_KEY, (constraints, counts, weights, ignored))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        constraints, counts, weights, ignored = state.read(PRE_SCORE_KEY)
        if node.name in ignored:
            return 0
        total = 0.0
        for i, c in enumerate(constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == LABEL_HOSTNAME:
                cnt = count_matching(node.pods, c.selector, pod.namespace)
            else:
                cnt = counts[i].get(value, 0)
            total += cnt * weights[i] + (c.max_skew - 1)
        return math.floor(total + 0.5)  # Go math.Round (half away from zero)

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                        scores: list[int]) -> None:
        ignored: set[str] = state.read(PRE_SCORE_KEY)[3]
        kept = [s for ni, s in zip(nodes, scores) if ni.name not in ignored]
        lo, hi = min(kept, default=0), max(kept, default=0)
        for i, ni in enumerate(nodes):
            if ni.name in ignored:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - scores[i]) // hi


def new(args: Any = None) -> PodTopologySpread:
    args = args or {}
    defaults = args.get("defaultConstraints") or SYSTEM_DEFAULT_CONSTRAINTS
    return PodTopologySpread(args.get("selectorForPod"), defaults)
