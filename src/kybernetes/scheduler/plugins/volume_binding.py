"""VolumeBinding: a pod whose PersistentVolumeClaims cannot be used is not scheduled, and a pod
whose claims are bound to node-local volumes goes only where those volumes are.

As upstream's plugin, for every ``persistentVolumeClaim`` volume (and every generic ephemeral
volume, whose claim is named ``<pod>-<volume>``):

* PreFilter: the claim must exist (``persistentvolumeclaim "x" not found``) and not be being
  deleted (``... is being deleted``); an unbound claim is fine only when its StorageClass binds
  on first consumer (``WaitForFirstConsumer``; the PV controller then provisions or binds for
  the node the pod lands on), otherwise the pod waits: ``pod has unbound immediate
  PersistentVolumeClaims``. All of these are unresolvable by preemption.
* Filter: a bound claim's PersistentVolume with ``spec.nodeAffinity.required`` must match the
  node (``node(s) had volume node affinity conflict``), e.g. the local-path volumes.

Pods are retried when claims, volumes or storage classes are added or change. Upstream also picks
matching PVs for delayed-binding claims and provisions per node in its Reserve/PreBind steps;
here the PV controller does that after the pod is bound (see controllers/persistentvolume.py).
Without volume listers in the snapshot (unit tests of other plugins) the plugin is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kybernetes.scheduler.framework.cycle_state import CycleState
from kybernetes.scheduler.framework.interfaces import NODE, ActionType, ClusterEvent
from kybernetes.scheduler.framework.status import SKIP, Status, unresolvable
from kybernetes.scheduler.framework.types import NodeInfo, NodeSelectorTerm, PodInfo, Snapshot, parse_node_selector_term

NAME = "VolumeBinding"
PRE_FILTER_KEY = "PreFilter" + NAME
PVC, PV, STORAGE_CLASS = "PersistentVolumeClaim", "PersistentVolume", "StorageClass"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

Obj = dict[str, Any]


@dataclass(frozen=True)
class VolumeListers:
    """Lookups into the scheduler's informers (read during one synchronous cycle)."""

    claim: Callable[[str, str], Obj | None]          # (namespace, name)
    volume: Callable[[str], Obj | None]              # name
    storage_class: Callable[[str], Obj | None]       # name


def claim_names(pod: Mapping[str, Any]) -> list[str]:
    """The claims ``pod`` uses: ``persistentVolumeClaim`` volumes and generic ephemeral ones."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        if (v.get("persistentVolumeClaim") or {}).get("claimName"):
            out.append(str(v["persistentVolumeClaim"]["claimName"]))
        elif v.get("ephemeral") is not None:
            out.append(f"{name}-{v.get('name', '')}")
    return out


def volume_terms(pv: Mapping[str, Any]) -> tuple[NodeSelectorTerm, ...] | None:
    """The required node affinity of a PersistentVolume (None: any node)."""
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not required:
        return None
    return tuple(parse_node_selector_term(t) for t in required.get("nodeSelectorTerms") or [])


def check_claims(namespace: str, names: list[str], listers: VolumeListers) -> tuple[Status | None, list[Obj]]:
    """PreFilter's verdict (pure over ``listers``) and the PVs of the bound claims."""
    volumes: list[Obj] = []
    unbound_immediate = False
    for name in names:
        claim = listers.claim(namespace, name)
        if claim is None:
            return unresolvable(f'persistentvolumeclaim "{name}" not found'), []
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            return unresolvable(f'persistentvolumeclaim "{name}" is being deleted'), []
        pv_name = (claim.get("spec") or {}).get("volumeName")
        if pv_name:
            pv = listers.volume(str(pv_name))
            if pv is None:  # bound to a volume we do not see yet: wait for it
                return unresolvable(f'persistentvolume "{pv_name}" not found'), []
            volumes.append(pv)
            continue
        sc_name = (claim.get("spec") or {}).get("storageClassName")
        sc = listers.storage_class(str(sc_name)) if sc_name else None
        if (sc or {}).get("volumeBindingMode") != WAIT_FOR_FIRST_CONSUMER:
            unbound_immediate = True
    if unbound_immediate:
        return unresolvable(ERR_UNBOUND_IMMEDIATE), []
    return None, volumes


class VolumeBinding:
    name = NAME

    def events_to_register(self) -> tuple[ClusterEvent, ...]:
        return (ClusterEvent(PVC, ActionType.ADD | ActionType.UPDATE),
                ClusterEvent(PV, ActionType.ADD | ActionType.UPDATE),
                ClusterEvent(STORAGE_CLASS, ActionType.ADD),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL))

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        listers: VolumeListers | None = getattr(snapshot, "volumes", None)
        names = claim_names(pod.pod)
        if listers is None or not names:
            return SKIP
        ns = str((pod.pod.get("metadata") or {}).get("namespace") or "default")
        status, volumes = check_claims(ns, names, listers)
        if status is not None:
            return status
        terms = [t for t in (volume_terms(pv) for pv in volumes) if t is not None]
        if not terms:
            return SKIP
        state.write(PRE_FILTER_KEY, terms)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        terms: list[tuple[NodeSelectorTerm, ...]] | None = state.get(PRE_FILTER_KEY)
        if not terms:
            return None
        for per_volume in terms:
            if not any(t.matches(node.labels, node.name) for t in per_volume):
                return unresolvable(ERR_NODE_CONFLICT)
        return None


def new(args: object = None) -> VolumeBinding:
    return VolumeBinding()
