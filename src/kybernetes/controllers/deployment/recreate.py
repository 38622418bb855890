"""Recreate decisions (upstream ``recreate.go``): kill every old pod, then start the new ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .util import Obj, actual_replica_count, md, name, spec_replicas


def scale_down_old_for_recreate(old_rss: Sequence[Obj]) -> dict[str, int]:
    return {name(rs): 0 for rs in old_rss if spec_replicas(rs) > 0}


def old_pods_running(new_rs: Obj | None, old_rss: Sequence[Obj], pods_by_rs_uid: Mapping[str, Iterable[Mapping[str, Any]]]) -> bool:
    """True while any old ReplicaSet reports replicas or any old pod is not terminal."""
    if actual_replica_count(old_rss) > 0:
        return True
    new_uid = md(new_rs).get("uid") if new_rs is not None else None
    for uid, pods in pods_by_rs_uid.items():
        if uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False


def scale_up_new_for_recreate(d: Obj, new_rs: Obj) -> dict[str, int]:
    want = spec_replicas(d)
    return {} if spec_replicas(new_rs) == want else {name(new_rs): want}
