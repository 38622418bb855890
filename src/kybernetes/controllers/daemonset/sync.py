"""The pure DaemonSet reconcile: ``reconcile(Observed) -> Plan``.

Order of decisions (upstream ``syncDaemonSet`` / ``manage`` / ``rollingUpdate``):

1. *manage*, per node: a node that should run a pod and has none gets one; failed (and succeeded)
   daemon pods are deleted (failed ones under a per-node back-off, see ``backoff_nodes``); extra
   running pods are deleted (the oldest is kept; with surge the oldest of each revision, until the
   new one is available); a node that should not keep a pod loses all of them. Unscheduled pods
   aimed at a node that no longer exists are deleted; pods *bound* to a deleted node are left to
   the pod garbage collector, as upstream.
2. Only when manage has nothing to do: the *rolling update* (``RollingUpdate`` strategy) deletes
   old pods within maxUnavailable (manage recreates them), or with maxSurge creates the new pod
   beside the old one and deletes the old one once the new one is available.
3. *status*: counts over the nodes that exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..replicaset import available_in, is_pod_available, is_pod_ready
from .util import (
    allows_surge,
    creation_order,
    is_rolling_update,
    is_updated,
    name_of,
    node_should_run,
    surge_and_unavailable,
    target_node,
    template_generation,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Observed:
    ds: Obj
    nodes: tuple[Obj, ...]
    pods: tuple[Obj, ...]                          # daemon pods owned by ds
    hash: str                                      # the current revision's hash
    now: dt.datetime
    backoff_nodes: frozenset[str] = frozenset()    # nodes whose failed pods wait for back-off
    collision_count: int | None = None


@dataclass(frozen=True)
class Plan:
    create_on: tuple[str, ...] = ()                # node names
    delete: tuple[str, ...] = ()                   # pod names
    failed: tuple[tuple[str, str], ...] = ()       # (pod name, node) of failed pods being deleted
    waiting_backoff: tuple[str, ...] = ()          # nodes with failed pods still in back-off
    rolling: bool = False                          # the creates/deletes come from the rolling update
    status: Obj = field(default_factory=dict)
    requeue_after: float | None = None


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _deleting(pod: Mapping[str, Any]) -> bool:
    return bool(_md(pod).get("deletionTimestamp"))


def _min_ready(ds: Mapping[str, Any]) -> int:
    return int((ds.get("spec") or {}).get("minReadySeconds") or 0)


def pods_by_node(pods: Sequence[Obj], *, include_deleted_terminal: bool = True) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        if not include_deleted_terminal and _deleting(pod) and _phase(pod) in ("Succeeded", "Failed"):
            continue
        node = target_node(pod)
        if node:
            out.setdefault(node, []).append(pod)
    return out


# ------------------------------------------------------------------------------------------------
# manage
# ------------------------------------------------------------------------------------------------
@dataclass
class _Manage:
    create_on: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def _prune_surge(running: list[Obj], hash_: str, generation: str | None, ds: Obj, now: dt.datetime) -> list[str]:
    """With surge: keep the oldest new and the oldest old pod while the new one is not available."""
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    out: list[str] = []
    for pod in sorted(running, key=creation_order):
        if is_updated(pod, hash_, generation):
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        out.append(name_of(pod))
    if oldest_new is not None and oldest_old is not None and (
            not is_pod_ready(oldest_old) or is_pod_available(oldest_new, _min_ready(ds), now)):
        out.append(name_of(oldest_old))
    return out


def _manage_node(m: _Manage, obs: Observed, node: str, pods: list[Obj], should_run: bool,
                 should_continue: bool) -> None:
    generation = template_generation(obs.ds)
    if should_run and not pods:
        m.create_on.append(node)
        return
    if should_continue:
        running: list[Obj] = []
        for pod in pods:
            if _deleting(pod):
                continue
            if _phase(pod) == "Failed":
                if node in obs.backoff_nodes:
                    m.waiting.append(node)
                    continue
                m.failed.append((name_of(pod), node))
                m.delete.append(name_of(pod))
            elif _phase(pod) == "Succeeded":
                m.delete.append(name_of(pod))
            else:
                running.append(pod)
        if len(running) <= 1:
            return
        if not allows_surge(obs.ds):
            m.delete.extend(name_of(p) for p in sorted(running, key=creation_order)[1:])
        else:
            m.delete.extend(_prune_surge(running, obs.hash, generation, obs.ds, obs.now))
        return
    if pods:
        m.delete.extend(name_of(p) for p in pods if not _deleting(p))


def manage(obs: Observed) -> _Manage:
    by_node = pods_by_node(obs.pods)
    m = _Manage()
    names = set()
    for node in obs.nodes:
        name = name_of(node)
        names.add(name)
        should_run, should_continue = node_should_run(node, obs.ds)
        _manage_node(m, obs, name, by_node.get(name, []), should_run, should_continue)
    for node, pods in by_node.items():
        if node in names:
            continue
        m.delete.extend(name_of(p) for p in pods
                        if not (p.get("spec") or {}).get("nodeName") and not _deleting(p))
    return m


# ------------------------------------------------------------------------------------------------
# rolling update
# ------------------------------------------------------------------------------------------------
def updated_pods_on_node(pods: Sequence[Obj], hash_: str, generation: str | None) -> tuple[Obj | None, Obj | None, bool]:
    """(new pod, old pod, ok): ok is False when the node has two new or two old live pods."""
    new: Obj | None = None
    old: Obj | None = None
    for pod in pods:
        if _deleting(pod):
            continue
        if is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _desired_nodes(obs: Observed) -> tuple[dict[str, list[Obj]], set[str]]:
    by_node = pods_by_node(obs.pods, include_deleted_terminal=False)
    should: set[str] = set()
    for node in obs.nodes:
        if node_should_run(node, obs.ds)[0]:
            should.add(name_of(node))
            by_node.setdefault(name_of(node), [])
    return by_node, should


def rolling_update(obs: Observed) -> tuple[list[str], list[str]]:
    """(nodes to create a new pod on, old pods to delete) for one rolling-update step."""
    by_node, should = _desired_nodes(obs)
    surge, unavailable = surge_and_unavailable(obs.ds, len(should))
    generation = template_generation(obs.ds)
    min_ready = _min_ready(obs.ds)
    if surge == 0:
        return [], _rolling_without_surge(obs, by_node, unavailable, generation, min_ready)
    return _rolling_with_surge(obs, by_node, should, surge, generation, min_ready)


def _rolling_without_surge(obs: Observed, by_node: dict[str, list[Obj]], max_unavailable: int,
                           generation: str | None, min_ready: int) -> list[str]:
    unavailable = 0
    replace_now: list[str] = []
    candidates: list[str] = []
    for node in sorted(by_node):
        new, old, ok = updated_pods_on_node(by_node[node], obs.hash, generation)
        if not ok or (new is None) == (old is None):
            unavailable += 1     # manage handles it; count it as unavailable
        elif new is not None:
            if not is_pod_available(new, min_ready, obs.now):
                unavailable += 1
        elif old is not None:
            if not is_pod_available(old, min_ready, obs.now):
                replace_now.append(name_of(old))     # replaced at once, but it is unavailable
                unavailable += 1
            else:
                candidates.append(name_of(old))
    room = min(max(max_unavailable - unavailable, 0), len(candidates))
    return replace_now + candidates[:room]


def _rolling_with_surge(obs: Observed, by_node: dict[str, list[Obj]], should: set[str], max_surge: int,
                        generation: str | None, min_ready: int) -> tuple[list[str], list[str]]:
    surged = 0
    create_now: list[str] = []
    candidates: list[str] = []
    delete: list[str] = []
    for node in sorted(by_node):
        new, old, ok = updated_pods_on_node(by_node[node], obs.hash, generation)
        if not ok:
            surged += 1
            continue
        if node not in should:
            continue
        if old is None:
            continue
        if new is None:
            if not is_pod_available(old, min_ready, obs.now):
                create_now.append(node)
            else:
                candidates.append(node)
            continue
        if not is_pod_available(new, min_ready, obs.now):
            surged += 1
            continue
        delete.append(name_of(old))
    room = min(max(max_surge - surged, 0), len(candidates))
    return create_now + candidates[:room], delete


# ------------------------------------------------------------------------------------------------
# status
# ------------------------------------------------------------------------------------------------
def compute_status(obs: Observed) -> tuple[Obj, float | None]:
    """The DaemonSet status and, if a ready pod becomes available later, the delay until then."""
    by_node = pods_by_node(obs.pods, include_deleted_terminal=False)
    generation = template_generation(obs.ds)
    min_ready = _min_ready(obs.ds)
    desired = current = misscheduled = ready = available = updated = 0
    wake: float | None = None
    for node in obs.nodes:
        pods = by_node.get(name_of(node), [])
        should_run, _ = node_should_run(node, obs.ds)
        if not should_run:
            misscheduled += 1 if pods else 0
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = min(pods, key=creation_order)
        after = available_in(pod, min_ready, obs.now)
        if after is not None:
            ready += 1
            if after == 0.0:
                available += 1
            else:
                wake = after if wake is None else min(wake, after)
        if is_updated(pod, obs.hash, generation):
            updated += 1
    status: Obj = {
        "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired, "numberReady": ready,
        "observedGeneration": int(_md(obs.ds).get("generation") or 0),
        "updatedNumberScheduled": updated, "numberAvailable": available,
        "numberUnavailable": desired - available,
    }
    cc = obs.collision_count
    if cc is None:
        cc = (obs.ds.get("status") or {}).get("collisionCount")
    if cc:
        status["collisionCount"] = cc
    conditions = (obs.ds.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status, wake


# ------------------------------------------------------------------------------------------------
# reconcile
# ------------------------------------------------------------------------------------------------
def reconcile(obs: Observed) -> Plan:
    status, wake = compute_status(obs)
    if _md(obs.ds).get("deletionTimestamp"):
        return Plan(status=status, requeue_after=wake)
    m = manage(obs)
    if m.create_on or m.delete:
        return Plan(create_on=tuple(m.create_on), delete=tuple(m.delete), failed=tuple(m.failed),
                    waiting_backoff=tuple(m.waiting), status=status, requeue_after=wake)
    create_on: list[str] = []
    delete: list[str] = []
    if is_rolling_update(obs.ds):
        create_on, delete = rolling_update(obs)
    return Plan(create_on=tuple(create_on), delete=tuple(delete), waiting_backoff=tuple(m.waiting),
                rolling=bool(create_on or delete), status=status, requeue_after=wake)
