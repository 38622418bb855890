"""ControllerRevision history shared by the DaemonSet and StatefulSet controllers.

A workload's pod template is snapshotted as an ``apps/v1`` ControllerRevision (upstream
``pkg/controller/history``):

    name      ``<owner>-<hash>`` (the owner's name cut to 223 characters so the result fits 253)
    data      the template as a strategic-merge patch: ``{"spec": {"template": {..., "$patch": "replace"}}}``
    revision  1, 2, 3 ... a re-used old snapshot is renumbered to the next number
    labels    the template's labels plus a hash label
    owner     a controller ownerReference to the workload

Pure helpers compute names, hashes, equality, ordering and what to truncate; ``create_revision``
and ``claim`` are the two I/O helpers (creation with hash-collision probing, adopt/release by
selector). Hashes reuse the deployment controller's ``compute_hash`` (FNV-32a over sorted JSON).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..api.labels import Selector
from ..api.meta import parse_time
from ..client.errors import AlreadyExists, NotFound
from ..client.resources import CONTROLLERREVISIONS, Resource
from .deployment.util import compute_hash, drop_nulls
from .replicaset import classify_pods, owner_reference

if TYPE_CHECKING:
    from ..client.rest import ApiClient

Obj = dict[str, Any]

CONTROLLER_REVISION_HASH_LABEL = "controller.kubernetes.io/hash"   # on StatefulSet revisions
DEFAULT_REVISION_LABEL = "controller-revision-hash"                # on pods (and DaemonSet revisions)
MAX_PREFIX = 223
MAX_COLLISION_PROBES = 16


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


# ------------------------------------------------------------------------------------------------
# names, data, hashes (pure)
# ------------------------------------------------------------------------------------------------
def revision_name(prefix: str, hash_: str) -> str:
    """``<prefix>-<hash>`` with the prefix cut to 223 characters."""
    return f"{prefix[:MAX_PREFIX]}-{hash_}"


def template_patch(owner: Mapping[str, Any]) -> Obj:
    """The revision data of ``owner``: its pod template as a replacing strategic-merge patch."""
    template = copy.deepcopy(drop_nulls(dict((owner.get("spec") or {}).get("template") or {})))
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def hash_data(data: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The hash of revision data (``compute_hash`` of the deployment controller, same alphabet)."""
    return compute_hash(data, collision_count)


def new_revision(owner: Mapping[str, Any], kind: str, api_version: str, data: Obj, revision: int,
                 hash_: str, hash_label: str = CONTROLLER_REVISION_HASH_LABEL,
                 annotations: Mapping[str, str] | None = None) -> Obj:
    """A ControllerRevision object for ``owner`` (not yet created)."""
    template_labels = (((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    md: Obj = {"name": revision_name(str(_md(owner).get("name") or ""), hash_),
               "namespace": _md(owner).get("namespace"),
               "labels": {**template_labels, hash_label: hash_},
               "ownerReferences": [owner_reference(owner, kind, api_version)]}
    if annotations:
        md["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md,
            "data": data, "revision": revision}


def revision_number(rev: Mapping[str, Any]) -> int:
    return int(rev.get("revision") or 0)


def _sort_key(rev: Mapping[str, Any]) -> tuple[int, float, str]:
    t = parse_time(_md(rev).get("creationTimestamp"))
    return (revision_number(rev), t.timestamp() if t is not None else 0.0, str(_md(rev).get("name") or ""))


def sort_revisions(revs: Iterable[Obj]) -> list[Obj]:
    """By revision number, then creation time, then name (upstream ``SortControllerRevisions``)."""
    return sorted(revs, key=_sort_key)


def next_revision(revs: Iterable[Mapping[str, Any]]) -> int:
    return max((revision_number(r) for r in revs), default=0) + 1


def equal_revision(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same data (and, when both carry one, the same hash label)."""
    ha = (_md(a).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
    hb = (_md(b).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
    if ha is not None and hb is not None and ha != hb:
        return False
    return drop_nulls(a.get("data")) == drop_nulls(b.get("data"))


def find_equal_revisions(revs: Sequence[Obj], needle: Mapping[str, Any]) -> list[Obj]:
    return [r for r in revs if equal_revision(r, needle)]


def same_data(rev: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    return bool(drop_nulls(rev.get("data")) == drop_nulls(dict(data)))


def apply_revision(owner: Mapping[str, Any], rev: Mapping[str, Any]) -> Obj:
    """A copy of ``owner`` whose pod template is the one recorded in ``rev``."""
    out = copy.deepcopy(dict(owner))
    template = dict(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    out.setdefault("spec", {})["template"] = template
    return out


def revisions_to_delete(revs: Iterable[Obj], live: Iterable[str], limit: int) -> list[Obj]:
    """The oldest revisions not in ``live`` (names) beyond ``limit`` kept ones (upstream truncateHistory)."""
    live_set = set(live)
    old = [r for r in sort_revisions(revs) if _md(r).get("name") not in live_set]
    extra = len(old) - max(limit, 0)
    return old[:extra] if extra > 0 else []


# ------------------------------------------------------------------------------------------------
# I/O helpers
# ------------------------------------------------------------------------------------------------
async def create_revision(client: ApiClient, rev: Obj, collision_count: int,
                          rehash: Callable[[int], str]) -> tuple[Obj, int]:
    """Create ``rev``; on a name clash with different data, bump the collision count and rename.

    ``rehash(collision_count)`` gives the hash for a count. Returns (the stored revision, the
    collision count used). An existing revision with the same data is returned as is.
    """
    ns = _md(rev).get("namespace")
    prefix = str(rev["metadata"]["name"]).rsplit("-", 1)[0]
    for _ in range(MAX_COLLISION_PROBES):
        try:
            return await client.create(CONTROLLERREVISIONS, rev, ns), collision_count
        except AlreadyExists:
            try:
                existing = await client.get(CONTROLLERREVISIONS, rev["metadata"]["name"], ns)
            except NotFound:
                continue
            if same_data(existing, rev.get("data") or {}):
                return existing, collision_count
            collision_count += 1
            hash_ = rehash(collision_count)
            rev = copy.deepcopy(rev)
            rev["metadata"]["name"] = revision_name(prefix, hash_)
            labels = rev["metadata"].setdefault("labels", {})
            for key in (CONTROLLER_REVISION_HASH_LABEL, DEFAULT_REVISION_LABEL):
                if key in labels:
                    labels[key] = hash_
    raise RuntimeError(f"could not find a free name for revision {rev['metadata']['name']}")


async def claim(client: ApiClient, resource: Resource, owner: Obj, kind: str, api_version: str,
                selector: Selector, candidates: Iterable[Obj],
                still_alive: Callable[[], Awaitable[bool]]) -> list[Obj]:
    """Owned objects that match ``selector``: adopt matching orphans, release owned non-matching
    ones (upstream ``ClaimObject``); ``still_alive`` re-checks the owner before adopting."""
    md = _md(owner)
    uid = str(md.get("uid") or "")
    ns = md.get("namespace")
    deleting = bool(md.get("deletionTimestamp"))
    result = classify_pods(uid, selector, candidates, deleting)
    owned = list(result.owned)
    if result.adopt and await still_alive():
        ref = owner_reference(owner, kind, api_version)
        for obj in result.adopt:
            patch = {"metadata": {"ownerReferences": [ref], "uid": _md(obj).get("uid")}}
            try:
                owned.append(await client.patch(resource, _md(obj)["name"], patch, ns, patch_type="strategic"))
            except NotFound:
                continue
    for obj in result.release:
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}], "uid": _md(obj).get("uid")}}
        try:
            await client.patch(resource, _md(obj)["name"], patch, ns, patch_type="strategic")
        except NotFound:
            continue
    return owned
