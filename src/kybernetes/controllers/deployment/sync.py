"""Scaling, history cleanup and new-ReplicaSet construction (upstream ``sync.go``), pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..replicaset import owner_reference
from .util import (
    DESIRED_REPLICAS,
    POD_TEMPLATE_HASH,
    Obj,
    active,
    annotations,
    compute_hash,
    creation_key,
    find_active_or_latest,
    is_rolling_update,
    is_saturated,
    max_surge,
    md,
    name,
    new_rs_new_replicas,
    proportion,
    replica_count,
    revision,
    set_new_rs_annotations,
    spec_replicas,
    status_int,
)


def is_scaling_event(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> bool:
    """An active ReplicaSet whose desired-replicas annotation differs from ``spec.replicas``."""
    want = str(spec_replicas(d))
    for rs in active([new_rs, *old_rss]):
        desired = annotations(rs).get(DESIRED_REPLICAS)
        if desired is not None and desired != want:
            return True
    return False


def plan_scale(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> dict[str, int]:
    """Sizes for a scaling event; during a rollout, spread the change proportionally.

    Every ReplicaSet named in the result also needs its desired/max-replicas annotations refreshed
    (the caller writes them when the size or the annotations differ).
    """
    want = spec_replicas(d)
    only = find_active_or_latest(new_rs, old_rss)
    if only is not None:
        return {} if spec_replicas(only) == want else {name(only): want}
    if is_saturated(d, new_rs):
        return {name(rs): 0 for rs in active(old_rss)}
    if not is_rolling_update(d):
        return {}
    live = active([*old_rss, new_rs])
    allowed = want + max_surge(d) if want > 0 else 0
    to_add = allowed - replica_count(live)
    if to_add > 0:    # larger first, newer first on ties
        live = sorted(sorted(live, key=creation_key, reverse=True), key=lambda rs: -spec_replicas(rs))
    elif to_add < 0:  # larger first, older first on ties
        live = sorted(sorted(live, key=creation_key), key=lambda rs: -spec_replicas(rs))
    sizes = {name(rs): spec_replicas(rs) for rs in live}
    added = 0
    if to_add != 0:
        for rs in live:
            p = proportion(rs, d, to_add, added)
            sizes[name(rs)] = spec_replicas(rs) + p
            added += p
        if live:
            first = name(live[0])
            sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes


def plan_cleanup(d: Obj, old_rss: Sequence[Obj]) -> list[Obj]:
    """Old ReplicaSets to delete beyond ``revisionHistoryLimit`` (lowest revisions first)."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not md(rs).get("deletionTimestamp")]
    diff = len(alive) - int(limit)
    if diff <= 0:
        return []
    ordered = sorted(alive, key=lambda rs: (revision(rs), creation_key(rs)))
    out = []
    for rs in ordered[:diff]:
        if (status_int(rs, "replicas") != 0 or spec_replicas(rs) != 0
                or int(md(rs).get("generation") or 0) > status_int(rs, "observedGeneration")):
            continue
        out.append(rs)
    return out


def new_replica_set(d: Obj, old_rss: Sequence[Obj], new_revision: int) -> Obj:
    """The ReplicaSet to create for the Deployment's current template (replicas already decided)."""
    spec = d.get("spec") or {}
    collision = (d.get("status") or {}).get("collisionCount")
    template: dict[str, Any] = dict(spec.get("template") or {})
    pod_hash = compute_hash(template, collision)
    tmd = dict(template.get("metadata") or {})
    tmd["labels"] = {**(tmd.get("labels") or {}), POD_TEMPLATE_HASH: pod_hash}
    template["metadata"] = tmd
    selector = dict(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH: pod_hash}
    rs: Obj = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{name(d)}-{pod_hash}", "namespace": md(d).get("namespace"),
                     "labels": dict(tmd["labels"]),
                     "ownerReferences": [owner_reference(d, "Deployment", "apps/v1")]},
        "spec": {"replicas": 0, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                 "selector": selector, "template": template},
    }
    rs["spec"]["replicas"] = new_rs_new_replicas(d, [*old_rss, rs], rs)
    set_new_rs_annotations(d, rs, new_revision, exists=False)
    return rs

