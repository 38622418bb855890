"""Pure Deployment arithmetic and ReplicaSet bookkeeping (upstream ``deployment/util``).

Everything here takes and returns plain JSON dicts or numbers; nothing awaits or reads a clock.
Functions whose name starts with ``set_`` change the dict they are given (pass a copy).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ...api.meta import now_rfc3339, parse_time

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

# annotations never copied from a Deployment to its ReplicaSets
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO})

# condition types and reasons
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MIN_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MIN_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "FailedRSCreate"


# -- small accessors -------------------------------------------------------------------------------
def md(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def name(obj: Mapping[str, Any]) -> str:
    return str(md(obj).get("name") or "")


def annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return md(obj).get("annotations") or {}


def spec_replicas(obj: Mapping[str, Any] | None) -> int:
    if obj is None:
        return 0
    v = (obj.get("spec") or {}).get("replicas")
    return 1 if v is None else int(v)


def status_int(obj: Mapping[str, Any] | None, key: str) -> int:
    return int(((obj or {}).get("status") or {}).get(key) or 0)


def with_replicas(rs: Obj, replicas: int) -> Obj:
    """A shallow copy of ``rs`` with ``spec.replicas`` replaced (for simulating a scale)."""
    return {**rs, "spec": {**(rs.get("spec") or {}), "replicas": replicas}}


def creation_key(rs: Mapping[str, Any]) -> tuple[float, str]:
    t = parse_time(md(rs).get("creationTimestamp"))
    return (t.timestamp() if t is not None else 0.0, name(rs))


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest first, ties by name (upstream ``ReplicaSetsByCreationTimestamp``)."""
    return sorted(rss, key=creation_key)


def revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(annotations(obj).get(REVISION) or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def is_rolling_update(d: Mapping[str, Any]) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def is_paused(d: Mapping[str, Any]) -> bool:
    return bool((d.get("spec") or {}).get("paused"))


def progress_deadline(d: Mapping[str, Any]) -> int | None:
    """``spec.progressDeadlineSeconds`` unless unset or MaxInt32 (no deadline)."""
    v = (d.get("spec") or {}).get("progressDeadlineSeconds")
    if v is None or int(v) == MAX_INT32:
        return None
    return int(v)


def min_ready_seconds(obj: Mapping[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)


# -- maxSurge / maxUnavailable ----------------------------------------------------------------------
def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An int-or-percent against ``total``: ``"25%"`` of 10 is 3 rounded up, 2 rounded down."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if not text.endswith("%"):
        try:
            return int(text)
        except ValueError:
            raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage") from None
    pct = int(text[:-1])
    exact = pct * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for ``desired`` replicas; both 0 becomes unavailable 1."""
    surge = scaled_value(max_surge if max_surge is not None else 0, desired, True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else 0, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    ru = _rolling(d)
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), spec_replicas(d))


def max_surge(d: Mapping[str, Any]) -> int:
    if not is_rolling_update(d):
        return 0
    return _fenceposts(d)[0]


def max_unavailable(d: Mapping[str, Any]) -> int:
    if not is_rolling_update(d) or spec_replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], spec_replicas(d))


# -- replica counts ----------------------------------------------------------------------------------
def replica_count(rss: Iterable[Obj | None]) -> int:
    """Sum of ``spec.replicas``."""
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    """ReplicaSets with ``spec.replicas > 0``."""
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def new_rs_new_replicas(d: Mapping[str, Any], all_rss: Sequence[Obj | None], new_rs: Obj) -> int:
    """How many replicas the new ReplicaSet may have now (upstream ``NewRSNewReplicas``)."""
    if not is_rolling_update(d):
        return spec_replicas(d)
    current = replica_count(all_rss)
    max_total = spec_replicas(d) + max_surge(d)
    if current >= max_total:
        return spec_replicas(new_rs)
    up = min(max_total - current, spec_replicas(d) - spec_replicas(new_rs))
    return spec_replicas(new_rs) + up


def is_saturated(d: Mapping[str, Any], rs: Obj | None) -> bool:
    if rs is None:
        return False
    want = spec_replicas(d)
    desired = annotations(rs).get(DESIRED_REPLICAS)
    return (desired == str(want) and spec_replicas(rs) == want
            and status_int(rs, "availableReplicas") == want)


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """The only active ReplicaSet, or the newest one when none is active; None if several are."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=creation_key, reverse=True)
    live = active([*newest_first, new_rs])
    if len(live) == 0:
        return new_rs if new_rs is not None else (newest_first[0] if newest_first else None)
    if len(live) == 1:
        return live[0]
    return None


def max_replicas_annotation(rs: Mapping[str, Any]) -> int | None:
    v = annotations(rs).get(MAX_REPLICAS)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _round_half_away(x: float) -> int:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def replica_set_fraction(rs: Mapping[str, Any], d: Mapping[str, Any]) -> int:
    """The change in ``rs`` size proportional to the Deployment's new size (may be negative)."""
    if spec_replicas(d) == 0:
        return -spec_replicas(rs)
    deployment_replicas = spec_replicas(d) + max_surge(d)
    annotated = max_replicas_annotation(rs)
    if annotated is None:
        annotated = status_int(d, "replicas")
    if annotated == 0:
        return 0
    new_size = spec_replicas(rs) * deployment_replicas / annotated
    return _round_half_away(new_size) - spec_replicas(rs)


def proportion(rs: Mapping[str, Any] | None, d: Mapping[str, Any], to_add: int, added: int) -> int:
    if rs is None or spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# -- templates and hashing ---------------------------------------------------------------------------
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Map each character to the alphabet without vowels (upstream ``rand.SafeEncodeString``)."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in s)


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The pod-template-hash: FNV-32a over the canonical JSON of the template (+ collision count).

    Upstream hashes a Go-specific dump of the struct; ours hashes sorted-key JSON, so values differ
    from a real cluster's but have the same properties (stable, short, collision count changes it).
    """
    data = orjson.dumps(drop_nulls(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode(str(fnv32a(data)))


def drop_nulls(value: Any) -> Any:
    """JSON ``null`` means "unset" for typed fields (kubectl's rollout undo sends the old template
    with ``creationTimestamp: null``): compare and hash templates without them."""
    if isinstance(value, Mapping):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def template_without_hash(template: Mapping[str, Any] | None) -> Obj:
    t = drop_nulls(dict(template or {}))
    tmd = dict(t.get("metadata") or {})
    labels = dict(tmd.get("labels") or {})
    labels.pop(POD_TEMPLATE_HASH, None)
    if labels:
        tmd["labels"] = labels
    else:
        tmd.pop("labels", None)
    if tmd:
        t["metadata"] = tmd
    else:
        t.pop("metadata", None)
    return t


def equal_ignore_hash(t1: Mapping[str, Any] | None, t2: Mapping[str, Any] | None) -> bool:
    return template_without_hash(t1) == template_without_hash(t2)


def find_new_replica_set(d: Mapping[str, Any], rss: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the Deployment's (ignoring the hash label)."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def find_old_replica_sets(d: Mapping[str, Any], rss: Iterable[Obj]) -> list[Obj]:
    rss = list(rss)
    new_rs = find_new_replica_set(d, rss)
    return [rs for rs in rss if new_rs is None or md(rs).get("uid") != md(new_rs).get("uid")]


# -- annotations -------------------------------------------------------------------------------------
def _annotations_of(obj: Obj) -> dict[str, str]:
    m = obj.setdefault("metadata", {})
    a = m.get("annotations")
    if a is None:
        a = {}
        m["annotations"] = a
    return a  # type: ignore[no-any-return]


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    a = _annotations_of(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if a.get(key) != value:
            a[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Mapping[str, Any], desired: int, max_replicas: int) -> bool:
    a = annotations(rs)
    return a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(max_replicas)


def copy_deployment_annotations(d: Mapping[str, Any], rs: Obj) -> bool:
    """Copy the Deployment's annotations (but the skipped ones) onto ``rs``."""
    a = _annotations_of(rs)
    changed = False
    for k, v in annotations(d).items():
        if k in SKIPPED_ANNOTATIONS or a.get(k) == v:
            continue
        a[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Mapping[str, Any], rs: Obj, new_revision: int, exists: bool,
                           max_history_chars: int = MAX_REVISION_HISTORY_CHARS) -> bool:
    """Copy annotations, bump the revision (keeping a revision-history) and, for a new RS, set
    desired/max replicas. True if anything changed."""
    changed = copy_deployment_annotations(d, rs)
    a = _annotations_of(rs)
    old_text = a.get(REVISION, "")
    try:
        old_rev = int(old_text) if old_text else 0
    except ValueError:
        return False
    if old_rev < new_revision:
        a[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = [h for h in (a.get(REVISION_HISTORY) or "").split(",") if h]
            history.append(old_text)
            while history and len(",".join(history)) > max_history_chars:
                history.pop(0)
            a[REVISION_HISTORY] = ",".join(history)
    if not exists and set_replicas_annotations(rs, spec_replicas(d), spec_replicas(d) + max_surge(d)):
        changed = True
    return changed


# -- conditions --------------------------------------------------------------------------------------
def new_condition(ctype: str, status: str, reason: str, message: str, now: dt.datetime) -> Obj:
    t = now_rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": t, "lastTransitionTime": t,
            "reason": reason, "message": message}


def get_condition(status: Mapping[str, Any] | None, ctype: str) -> Obj | None:
    for c in (status or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return dict(c)
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream ``SetDeploymentCondition``: no-op when status and reason are unchanged; keep the
    transition time when only the reason changed."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    others = [c for c in status.get("conditions") or () if c.get("type") != cond["type"]]
    status["conditions"] = [*others, cond]


def remove_condition(status: Obj, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or () if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


# -- rollout state -----------------------------------------------------------------------------------
def deployment_complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    want = spec_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(md(d).get("generation") or 0))


def deployment_progressing(d: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    old = d.get("status") or {}

    def g(s: Mapping[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: Mapping[str, Any], status: Mapping[str, Any], now: dt.datetime) -> bool:
    deadline = progress_deadline(d)
    if deadline is None:
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + dt.timedelta(seconds=deadline) < now
