"""DefaultPreemption (PostFilter): when no node fits, find the node where evicting the fewest,
least important lower-priority pods makes room, and nominate it.

Pure victim selection only: the caller evicts the returned victims and sets
``status.nominatedNodeName``. Per node: remove every lower-priority pod, check the pod fits, then
give pods back ("reprieve") from the most important down, PDB-protected ones first, keeping only
those whose return still lets the pod fit. Among candidate nodes pick (upstream order): fewest
PDB violations, lowest highest-victim priority, lowest priority sum, fewest victims, latest start
of the highest-priority victims, then the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kybernetes.api import labels as lbl
from kybernetes.api.errors import StatusError
from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import FrameworkHandle, PostFilterResult
from kybernetes.scheduler.framework.runtime import Diagnosis, fit_error_message
from kybernetes.scheduler.framework.status import Code, Status, unresolvable, unschedulable
from kybernetes.scheduler.framework.types import NodeInfo, Obj, PodInfo, Snapshot

NAME = "DefaultPreemption"
MSG_NO_VICTIMS = "No preemption victims found for incoming pod"
MSG_NOT_HELPFUL = "Preemption is not helpful for scheduling"
MSG_POLICY_NEVER = "not eligible due to preemptionPolicy=Never."
MSG_TERMINATING = "not eligible due to a terminating pod on the nominated node."
_INT32_OFFSET = 2**31  # MaxInt32 + 1: keeps priority sums positive, as upstream
_NO_START = "9999"  # a pod without startTime counts as just started


@dataclass(frozen=True)
class Candidate:
    node_name: str
    victims: tuple[PodInfo, ...]
    num_pdb_violations: int


def importance_key(p: PodInfo) -> tuple[int, str]:
    """Sort key: most important first (higher priority, then earlier start)."""
    return (-p.priority, p.start_time or _NO_START)


def pod_eligible_to_preempt_others(pod: PodInfo, snapshot: Snapshot,
                                   statuses: Mapping[str, Status]) -> tuple[bool, str]:
    if (pod.pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return False, MSG_POLICY_NEVER
    nominated = ((pod.pod.get("status") or {}).get("nominatedNodeName")) or ""
    if nominated:
        st = statuses.get(nominated)
        if st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
            return True, ""
        ni = snapshot.get(nominated)
        if ni is not None and any(p.terminating and p.priority < pod.priority for p in ni.pods):
            return False, MSG_TERMINATING
    return True, ""


def split_by_pdb_violation(pods: Sequence[PodInfo],
                           pdbs: Sequence[Obj]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(violating, non-violating): evicting a violating pod would exceed a matching PDB's
    ``disruptionsAllowed`` (counted down as pods are considered in order)."""
    parsed: list[tuple[str, lbl.Selector, Mapping[str, Any], list[int]]] = []
    for pdb in pdbs:
        try:
            sel = lbl.selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        except StatusError:
            continue
        status = pdb.get("status") or {}
        parsed.append(((pdb.get("metadata") or {}).get("namespace", ""), sel,
                       status.get("disruptedPods") or {}, [int(status.get("disruptionsAllowed") or 0)]))
    violating, ok = [], []
    for p in pods:
        violated = False
        if p.labels:
            for ns, sel, disrupted, allowed in parsed:
                if ns != p.namespace or sel.empty or sel.nothing or not sel.matches(p.labels):
                    continue
                if p.name in disrupted:
                    continue
                allowed[0] -= 1
                if allowed[0] < 0:
                    violated = True
        (violating if violated else ok).append(p)
    return violating, ok


def select_victims_on_node(state: CycleState, pod: PodInfo, node: NodeInfo, pdbs: Sequence[Obj],
                           handle: FrameworkHandle) -> tuple[Candidate | None, Status | None]:
    ni, st = node.clone(), state.clone()
    potential = [p for p in ni.pods if p.priority < pod.priority]
    if not potential:
        return None, unresolvable(MSG_NO_VICTIMS)
    for p in potential:
        ni.remove_pod(p.key)
        handle.run_pre_filter_remove_pod(st, pod, p, ni)
    status = handle.run_filter_plugins(st, pod, ni)
    if status is not None:
        return None, status
    potential.sort(key=importance_key)
    violating, non_violating = split_by_pdb_violation(potential, pdbs)
    victims: list[PodInfo] = []

    def reprieve(p: PodInfo) -> bool:
        ni.add_pod(p)
        handle.run_pre_filter_add_pod(st, pod, p, ni)
        if handle.run_filter_plugins(st, pod, ni) is None:
            return True
        ni.remove_pod(p.key)
        handle.run_pre_filter_remove_pod(st, pod, p, ni)
        victims.append(p)
        return False

    violations = sum(1 for p in violating if not reprieve(p))
    for p in non_violating:
        reprieve(p)
    victims.sort(key=importance_key)
    return Candidate(ni.name, tuple(victims), violations), None


def _earliest_start_of_highest(victims: Sequence[PodInfo]) -> str:
    top = max(p.priority for p in victims)
    return min(p.start_time or _NO_START for p in victims if p.priority == top)


def pick_one_node(candidates: Sequence[Candidate]) -> Candidate:
    """Apply upstream's tie-breakers in order; the first candidate wins a full tie."""
    for c in candidates:
        if not c.victims:
            return c
    pool = list(candidates)
    criteria = (
        lambda c: c.num_pdb_violations,
        lambda c: c.victims[0].priority,
        lambda c: sum(p.priority + _INT32_OFFSET for p in c.victims),
        lambda c: len(c.victims),
    )
    for key in criteria:
        best = min(key(c) for c in pool)
        pool = [c for c in pool if key(c) == best]
        if len(pool) == 1:
            return pool[0]
    latest = max(_earliest_start_of_highest(c.victims) for c in pool)
    return next(c for c in pool if _earliest_start_of_highest(c.victims) == latest)


class DefaultPreemption:
    name = NAME

    def post_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                    statuses: Mapping[str, Status], handle: FrameworkHandle,
                    ) -> tuple[PostFilterResult | None, Status | None]:
        ok, msg = pod_eligible_to_preempt_others(pod, snapshot, statuses)
        if not ok:
            return None, unschedulable("preemption: " + msg)
        candidates, node_statuses = self.find_candidates(state, pod, snapshot, statuses, handle)
        if not candidates:
            text = fit_error_message(len(node_statuses), Diagnosis(node_to_status=node_statuses))
            return PostFilterResult(""), unschedulable("preemption: " + text)
        best = pick_one_node(candidates)
        return PostFilterResult(best.node_name, tuple(p.pod for p in best.victims)), None

    @staticmethod
    def find_candidates(state: CycleState, pod: PodInfo, snapshot: Snapshot,
                        statuses: Mapping[str, Status], handle: FrameworkHandle,
                        ) -> tuple[list[Candidate], dict[str, Status]]:
        node_statuses: dict[str, Status] = {}
        candidates = []
        for ni in snapshot.node_infos:
            st = statuses.get(ni.name)
            if st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                node_statuses[ni.name] = unresolvable(MSG_NOT_HELPFUL)
                continue
            candidate, st = select_victims_on_node(state, pod, ni, snapshot.pdbs, handle)
            if candidate is not None:
                candidates.append(candidate)
            elif st is not None:
                node_statuses[ni.name] = st
        return candidates, node_statuses


def new(args: object = None) -> DefaultPreemption:
    return DefaultPreemption()
