"""InterPodAffinity: required pod affinity / anti-affinity (the pod's own terms and existing
pods' anti-affinity towards it) filter nodes per topology domain; preferred terms of both sides
(and existing pods' required affinity, with weight 1) score them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import NODE, POD, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import SKIP, Status, unresolvable, unschedulable
from kybernetes.scheduler.framework.types import (
    MAX_NODE_SCORE,
    AffinityTerm,
    NodeInfo,
    PodInfo,
    Snapshot,
)

NAME = "InterPodAffinity"
PRE_FILTER_KEY = "PreFilter" + NAME
PRE_SCORE_KEY = "PreScore" + NAME
ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1
_AFFINITY = unresolvable(ERR_REASON_AFFINITY).with_plugin(NAME)
_ANTI_AFFINITY = unschedulable(ERR_REASON_ANTI_AFFINITY).with_plugin(NAME)
_EXISTING_ANTI_AFFINITY = unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY).with_plugin(NAME)

Pair = tuple[str, str]


def _bump(counts: dict[Pair, int], pair: Pair, delta: int) -> None:
    n = counts.get(pair, 0) + delta
    if n:
        counts[pair] = n
    else:
        counts.pop(pair, None)


def matches_all(terms: Sequence[AffinityTerm], pod: PodInfo, ns_labels: Any) -> bool:
    return bool(terms) and all(t.matches(pod, ns_labels) for t in terms)


class PreFilterState:
    """Per topology pair: how many existing pods forbid the incoming pod (existing_anti), and
    how many existing pods match the incoming pod's affinity / anti-affinity terms."""

    __slots__ = ("affinity", "anti", "existing_anti", "ns_labels")

    def __init__(self, ns_labels: Any) -> None:
        self.existing_anti: dict[Pair, int] = {}
        self.affinity: dict[Pair, int] = {}
        self.anti: dict[Pair, int] = {}
        self.ns_labels = ns_labels

    def clone(self) -> PreFilterState:
        c = PreFilterState(self.ns_labels)
        c.existing_anti, c.affinity, c.anti = dict(self.existing_anti), dict(self.affinity), dict(self.anti)
        return c

    def update_with_existing(self, pod: PodInfo, existing: PodInfo, node: NodeInfo, sign: int) -> None:
        labels = node.labels
        for term in existing.required_anti_affinity_terms:
            if term.topology_key in labels and term.matches(pod, self.ns_labels):
                _bump(self.existing_anti, (term.topology_key, labels[term.topology_key]), sign)
        if matches_all(pod.required_affinity_terms, existing, self.ns_labels):
            for term in pod.required_affinity_terms:
                if term.topology_key in labels:
                    _bump(self.affinity, (term.topology_key, labels[term.topology_key]), sign)
        for term in pod.required_anti_affinity_terms:
            if term.topology_key in labels and term.matches(existing, self.ns_labels):
                _bump(self.anti, (term.topology_key, labels[term.topology_key]), sign)


def satisfies_pod_affinity(s: PreFilterState, pod: PodInfo, node: NodeInfo) -> bool:
    pods_exist = True
    for term in pod.required_affinity_terms:
        value = node.labels.get(term.topology_key)
        if value is None:
            return False
        if s.affinity.get((term.topology_key, value), 0) <= 0:
            pods_exist = False
    if pods_exist:
        return True
    # The first pod of a group that has affinity to itself may go anywhere with the topology.
    return not s.affinity and matches_all(pod.required_affinity_terms, pod, s.ns_labels)


def satisfies_pod_anti_affinity(s: PreFilterState, pod: PodInfo, node: NodeInfo) -> bool:
    if not s.anti:
        return True
    for term in pod.required_anti_affinity_terms:
        value = node.labels.get(term.topology_key)
        if value is not None and s.anti.get((term.topology_key, value), 0) > 0:
            return False
    return True


def satisfies_existing_anti_affinity(s: PreFilterState, node: NodeInfo) -> bool:
    if not s.existing_anti:
        return True
    return not any(s.existing_anti.get(pair, 0) > 0 for pair in node.labels.items())


class InterPodAffinity:
    name = NAME

    def __init__(self, hard_pod_affinity_weight: int = HARD_POD_AFFINITY_WEIGHT,
                 ignore_preferred_terms_of_existing_pods: bool = False) -> None:
        self.hard_weight = hard_pod_affinity_weight
        self.ignore_existing_preferred = ignore_preferred_terms_of_existing_pods

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(POD, ActionType.ADD | ActionType.UPDATE_POD_LABEL | ActionType.DELETE),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL))

    # -- filter ------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        if pod.parse_error:
            return unresolvable(f"parsing pod: {pod.parse_error}")
        s = PreFilterState(snapshot.namespace_labels)
        memo: dict[int, bool] = {}  # identical (shared) terms are matched once per cycle
        for ni in snapshot.have_pods_with_required_anti_affinity:
            for existing in ni.pods_with_required_anti_affinity:
                for term in existing.required_anti_affinity_terms:
                    value = ni.labels.get(term.topology_key)
                    if value is None:
                        continue
                    hit = memo.get(id(term))
                    if hit is None:
                        hit = memo[id(term)] = term.matches(pod, s.ns_labels)
                    if hit:
                        _bump(s.existing_anti, (term.topology_key, value), 1)
        if not pod.required_affinity_terms and not pod.required_anti_affinity_terms:
            if not s.existing_anti:
                return SKIP
        else:
            self._count_incoming(s, pod, snapshot)
        state.write(PRE_FILTER_KEY, s)
        return None

    @staticmethod
    def _count_incoming(s: PreFilterState, pod: PodInfo, snapshot: Snapshot) -> None:
        aff, anti, ns_labels = pod.required_affinity_terms, pod.required_anti_affinity_terms, s.ns_labels
        for ni in snapshot.node_infos:
            if not ni.pods:
                continue
            labels = ni.labels
            for existing in ni.pods:
                if aff and matches_all(aff, existing, ns_labels):
                    for term in aff:
                        if term.topology_key in labels:
                            _bump(s.affinity, (term.topology_key, labels[term.topology_key]), 1)
                for term in anti:
                    if term.topology_key in labels and term.matches(existing, ns_labels):
                        _bump(s.anti, (term.topology_key, labels[term.topology_key]), 1)

    def add_pod(self, state: CycleState, pod: PodInfo, pod_to_add: PodInfo,
                node: NodeInfo) -> Status | None:
        s: PreFilterState | None = state.get(PRE_FILTER_KEY)
        if s is not None:
            s.update_with_existing(pod, pod_to_add, node, 1)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, pod_to_remove: PodInfo,
                   node: NodeInfo) -> Status | None:
        s: PreFilterState | None = state.get(PRE_FILTER_KEY)
        if s is not None:
            s.update_with_existing(pod, pod_to_remove, node, -1)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: PreFilterState = state.read(PRE_FILTER_KEY)
        if pod.required_affinity_terms and not satisfies_pod_affinity(s, pod, node):
            return _AFFINITY
        if s.anti and not satisfies_pod_anti_affinity(s, pod, node):
            return _ANTI_AFFINITY
        if s.existing_anti and not satisfies_existing_anti_affinity(s, node):
            return _EXISTING_ANTI_AFFINITY
        return None

    # -- score -------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                  snapshot: Snapshot) -> Status | None:
        has_constraints = bool(pod.preferred_affinity_terms or pod.preferred_anti_affinity_terms)
        if self.ignore_existing_preferred and not has_constraints:
            return SKIP
        scores: dict[str, dict[str, int]] = {}
        ns_labels = snapshot.namespace_labels
        infos = snapshot.node_infos if has_constraints else snapshot.have_pods_with_affinity
        for ni in infos:
            for existing in (ni.pods if has_constraints else ni.pods_with_affinity):
                self._score_existing(scores, pod, existing, ni, ns_labels)
        if not any(scores.values()):
            return SKIP
        state.write(PRE_SCORE_KEY, scores)
        return None

    def _score_existing(self, scores: dict[str, dict[str, int]], pod: PodInfo,
                        existing: PodInfo, node: NodeInfo, ns_labels: Any) -> None:
        labels = node.labels

        def add(term: AffinityTerm, target: PodInfo, weight: int) -> None:
            value = labels.get(term.topology_key)
            if value is not None and weight and term.matches(target, ns_labels):
                by_value = scores.setdefault(term.topology_key, {})
                by_value[value] = by_value.get(value, 0) + weight

        for wt in pod.preferred_affinity_terms:
            add(wt.term, existing, wt.weight)
        for wt in pod.preferred_anti_affinity_terms:
            add(wt.term, existing, -wt.weight)
        if self.hard_weight > 0:
            for term in existing.required_affinity_terms:
                add(term, pod, self.hard_weight)
        if not self.ignore_existing_preferred:
            for wt in existing.preferred_affinity_terms:
                add(wt.term, pod, wt.weight)
            for wt in existing.preferred_anti_affinity_terms:
                add(wt.term, pod, -wt.weight)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[str, dict[str, int]] = state.read(PRE_SCORE_KEY)
        total = 0
        for key, by_value in scores.items():
            value = node.labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                        scores: list[int]) -> None:
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * ((s - lo) / diff)) if diff > 0 else 0


def new(args: Any = None) -> InterPodAffinity:
    args = args or {}
    return InterPodAffinity(int(args.get("hardPodAffinityWeight", HARD_POD_AFFINITY_WEIGHT)),
                            bool(args.get("ignorePreferredTermsOfExistingPods", False)))
