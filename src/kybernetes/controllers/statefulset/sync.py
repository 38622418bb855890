"""The pure StatefulSet reconcile: ``reconcile(Observed) -> Plan`` (upstream ``updateStatefulSet``).

Replicas are the ordinals ``[start, start + replicas)``; other member pods are *condemned*.

1. In ordinal order, each replica: a finished (Failed/Succeeded) pod is deleted (recreated on a
   later sync); a missing pod is created (PVCs first), from the current revision below the
   partition, else from the update revision. With ``OrderedReady`` the walk stops at the first
   pod it creates, at a terminating pod, and at a pod that is not Running+Ready (and available).
2. Condemned pods, highest ordinal first, are deleted; ``OrderedReady`` deletes one at a time and
   only when every other pod is healthy (the first unhealthy pod may go).
3. ``RollingUpdate``: from the highest ordinal down to the partition, the first pod not at the
   update revision is deleted (it is recreated at the update revision by step 1); the walk stops
   at an unhealthy pod. One pod at a time, for both pod management policies.

Status counts every created pod; the rolling update completes (currentRevision := updateRevision)
when all pods are updated and ready.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .util import (
    available_after,
    identity_matches,
    is_finished,
    is_healthy,
    is_parallel,
    is_running_and_ready,
    is_terminating,
    name_of,
    new_pod,
    ordinal_of,
    partition,
    pod_revision,
    replicas_of,
    start_ordinal,
    update_type,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Observed:
    sts: Obj
    pods: tuple[Obj, ...]          # member pods owned by the set
    current_set: Obj               # the set with the current revision's template
    update_set: Obj                # the set with the update revision's template
    current_revision: str          # revision names
    update_revision: str
    now: dt.datetime
    collision_count: int | None = None


@dataclass(frozen=True)
class Plan:
    create: tuple[Obj, ...] = ()              # pods to create, in order (their PVCs first)
    delete: tuple[str, ...] = ()              # pod names, in order
    fix_identity: tuple[str, ...] = ()        # pods whose identity labels must be restored
    ensure_claims: tuple[int, ...] = ()       # ordinals of existing pods whose PVCs must exist
    status: Obj = field(default_factory=dict)
    requeue_after: float | None = None


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _min_ready(sts: Mapping[str, Any]) -> int:
    return int((sts.get("spec") or {}).get("minReadySeconds") or 0)


def versioned_pod(obs: Observed, ordinal: int) -> Obj:
    """A new replica: current revision below the partition (RollingUpdate), else update revision."""
    if update_type(obs.sts) == "RollingUpdate" and ordinal < start_ordinal(obs.sts) + partition(obs.sts):
        return new_pod(obs.current_set, ordinal, obs.current_revision)
    return new_pod(obs.update_set, ordinal, obs.update_revision)


def split_pods(obs: Observed) -> tuple[list[Obj | None], list[Obj]]:
    """(replicas by index, None where missing; condemned sorted by ordinal)."""
    start, count = start_ordinal(obs.sts), replicas_of(obs.sts)
    replicas: list[Obj | None] = [None] * count
    condemned: list[Obj] = []
    for pod in obs.pods:
        ordinal = ordinal_of(pod)
        if start <= ordinal < start + count:
            replicas[ordinal - start] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    condemned.sort(key=ordinal_of)
    return replicas, condemned


# ------------------------------------------------------------------------------------------------
# status
# ------------------------------------------------------------------------------------------------
def compute_status(obs: Observed) -> tuple[Obj, float | None]:
    min_ready = _min_ready(obs.sts)
    replicas = ready = available = current = updated = 0
    wake: float | None = None
    for pod in obs.pods:
        replicas += 1
        if is_running_and_ready(pod):
            ready += 1
            after = available_after(pod, min_ready, obs.now)
            if after == 0.0:
                available += 1
            elif after is not None:
                wake = after if wake is None else min(wake, after)
        if not is_terminating(pod):
            current += pod_revision(pod) == obs.current_revision
            updated += pod_revision(pod) == obs.update_revision
    old = obs.sts.get("status") or {}
    status: Obj = {"observedGeneration": int(_md(obs.sts).get("generation") or 0), "replicas": replicas,
                   "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": updated,
                   "availableReplicas": available, "currentRevision": obs.current_revision,
                   "updateRevision": obs.update_revision}
    cc = obs.collision_count if obs.collision_count is not None else old.get("collisionCount")
    status["collisionCount"] = int(cc or 0)
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    if update_type(obs.sts) == "RollingUpdate" and updated == replicas and ready == replicas:
        status["currentReplicas"] = updated
        status["currentRevision"] = obs.update_revision
    return status, wake


# ------------------------------------------------------------------------------------------------
# reconcile
# ------------------------------------------------------------------------------------------------
@dataclass
class _Acc:
    create: list[Obj] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    fix: list[str] = field(default_factory=list)
    claims: list[int] = field(default_factory=list)


def _first_unhealthy(replicas: list[Obj | None], condemned: list[Obj], min_ready: int,
                     now: dt.datetime) -> str | None:
    for pod in replicas:
        if pod is None or not is_healthy(pod, min_ready, now):
            return None if pod is None else name_of(pod)
    for pod in reversed(condemned):
        if not is_healthy(pod, min_ready, now):
            return name_of(pod)
    return None


def _process_replicas(obs: Observed, replicas: list[Obj | None], acc: _Acc, monotonic: bool) -> bool:
    """Step 1; True when the walk must stop (OrderedReady waiting)."""
    start, min_ready = start_ordinal(obs.sts), _min_ready(obs.sts)
    for i, pod in enumerate(replicas):
        if pod is None:
            acc.create.append(versioned_pod(obs, start + i))
            if monotonic:
                return True
            continue
        if is_finished(pod):
            if not is_terminating(pod):
                acc.delete.append(name_of(pod))
            if monotonic:
                return True
            continue
        if not is_terminating(pod):
            acc.claims.append(start + i)
        if monotonic and (is_terminating(pod) or not is_healthy(pod, min_ready, obs.now)):
            return True
        if not identity_matches(obs.sts, pod) and not is_terminating(pod):
            acc.fix.append(name_of(pod))
    return False


def _process_condemned(obs: Observed, replicas: list[Obj | None], condemned: list[Obj], acc: _Acc,
                       monotonic: bool) -> bool:
    """Step 2; True when the walk must stop."""
    min_ready = _min_ready(obs.sts)
    first_unhealthy = _first_unhealthy(replicas, condemned, min_ready, obs.now)
    for pod in reversed(condemned):
        if is_terminating(pod):
            if monotonic:
                return True
            continue
        if monotonic and not is_healthy(pod, min_ready, obs.now) and name_of(pod) != first_unhealthy:
            return True
        acc.delete.append(name_of(pod))
        if monotonic:
            return True
    return False


def _rolling_update(obs: Observed, replicas: list[Obj | None], acc: _Acc) -> None:
    """Step 3: delete the highest-ordinal pod not at the update revision, one at a time."""
    min_ready = _min_ready(obs.sts)
    floor = max(partition(obs.sts), 0)
    for i in range(len(replicas) - 1, floor - 1, -1):
        pod = replicas[i]
        if pod is None:
            return
        if pod_revision(pod) != obs.update_revision and not is_terminating(pod):
            if name_of(pod) not in acc.delete:
                acc.delete.append(name_of(pod))
            return
        if not is_healthy(pod, min_ready, obs.now):
            return


def reconcile(obs: Observed) -> Plan:
    status, wake = compute_status(obs)
    if _md(obs.sts).get("deletionTimestamp"):
        return Plan(status=status, requeue_after=wake)
    replicas, condemned = split_pods(obs)
    monotonic = not is_parallel(obs.sts)
    acc = _Acc()
    stop = _process_replicas(obs, replicas, acc, monotonic)
    if not stop:
        stop = _process_condemned(obs, replicas, condemned, acc, monotonic)
    if not stop and update_type(obs.sts) == "RollingUpdate":
        _rolling_update(obs, replicas, acc)
    return Plan(create=tuple(acc.create), delete=tuple(acc.delete), fix_identity=tuple(acc.fix),
                ensure_claims=tuple(acc.claims), status=status, requeue_after=wake)
