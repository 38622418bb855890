"""RollingUpdate decisions (upstream ``rolling.go``), pure: each returns ``{rs name: new replicas}``.

One step of a rollout either scales the new ReplicaSet up (bounded by maxSurge) or scales old ones
down (bounded by maxUnavailable): first old replicas that are not available, then available ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from .util import (
    Obj,
    available_replica_count,
    by_creation,
    max_unavailable,
    name,
    new_rs_new_replicas,
    replica_count,
    spec_replicas,
    status_int,
    with_replicas,
)

Scales = dict[str, int]


def reconcile_new_replica_set(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj) -> int | None:
    """The new ReplicaSet's next size, or None when it is already right."""
    want = spec_replicas(d)
    have = spec_replicas(new_rs)
    if have == want:
        return None
    if have > want:
        return want
    n = new_rs_new_replicas(d, all_rss, new_rs)
    return None if n == have else n


def cleanup_unhealthy_replicas(old_rss: Sequence[Obj], max_cleanup: int) -> tuple[list[Obj], Scales]:
    """Scale old ReplicaSets down by their unavailable replicas, oldest first, at most ``max_cleanup``."""
    out: list[Obj] = []
    scales: Scales = {}
    total = 0
    for rs in by_creation(old_rss):
        replicas = spec_replicas(rs)
        unhealthy = replicas - status_int(rs, "availableReplicas")
        if total >= max_cleanup or replicas == 0 or unhealthy <= 0:
            out.append(rs)
            continue
        down = min(max_cleanup - total, unhealthy)
        scales[name(rs)] = replicas - down
        out.append(with_replicas(rs, replicas - down))
        total += down
    return out, scales


def scale_down_old_for_rolling_update(d: Obj, all_rss: Sequence[Obj | None], old_rss: Sequence[Obj]) -> Scales:
    """Scale old ReplicaSets down (oldest first) as far as availability above minAvailable allows."""
    min_available = spec_replicas(d) - max_unavailable(d)
    available = available_replica_count(all_rss)
    if available <= min_available:
        return {}
    budget = available - min_available
    scales: Scales = {}
    total = 0
    for rs in by_creation(old_rss):
        if total >= budget:
            break
        replicas = spec_replicas(rs)
        if replicas == 0:
            continue
        down = min(replicas, budget - total)
        scales[name(rs)] = replicas - down
        total += down
    return scales


def reconcile_old_replica_sets(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> Scales:
    """Scale-downs of the (active) old ReplicaSets for this step."""
    old_pods = replica_count(old_rss)
    if old_pods == 0:
        return {}
    all_pods = replica_count([*old_rss, new_rs])
    min_available = spec_replicas(d) - max_unavailable(d)
    new_unavailable = spec_replicas(new_rs) - status_int(new_rs, "availableReplicas") if new_rs else 0
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    cleaned, scales = cleanup_unhealthy_replicas(old_rss, max_scaled_down)
    more = scale_down_old_for_rolling_update(d, [*cleaned, new_rs], cleaned)
    scales.update(more)
    return scales


def plan_rolling(d: Obj, new_rs: Obj, old_rss: Sequence[Obj]) -> Scales:
    """The scales for one RollingUpdate step (empty: nothing to do, the rollout may be complete)."""
    all_rss: list[Obj | None] = [*old_rss, new_rs]
    n = reconcile_new_replica_set(d, all_rss, new_rs)
    if n is not None:
        return {name(new_rs): n}
    live_old = [rs for rs in old_rss if spec_replicas(rs) > 0]
    return reconcile_old_replica_sets(d, new_rs, live_old)
