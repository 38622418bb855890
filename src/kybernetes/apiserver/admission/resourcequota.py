"""ResourceQuota admission: check hard limits and charge ``status.used`` before the object is stored.

Last of the validating plugins. For a create (services and PVCs: also updates) in a namespace
with quotas:

1. the quotas are read from the store (fresh, with their revisions);
2. :func:`compute_charges` (pure) decides, per quota that matches the object (its
   ``status.hard`` names something the object consumes, and its scopes select it): the
   constraint error (``failed quota: q: must specify requests.cpu for: c``), missing usage
   (``status unknown for quota: q, resources: pods``), or the limit error (``exceeded quota: q,
   requested: pods=1, used: pods=2, limited: pods=2``), else the new ``status.used``;
3. each charged quota is written with a compare-and-swap on its revision. A lost race re-reads
   and re-decides only the quotas still to charge, so concurrent creates can never push usage
   past ``hard``: with a 2-pod quota, 20 concurrent pod creates admit exactly 2.

Dry-run requests are checked but never charged. The charge happens before the object is
written; if that write then fails, usage stays too high until the resourcequota controller
recounts it (upstream behaves the same). Not done: the ``limitedResources`` admission
configuration ("insufficient quota to consume"), and in-place pod resize charging (alpha upstream
in 1.32).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...api import errors
from ...api.quantity import Quantity
from ...storage.errors import ConflictError, KeyNotFoundError, StoreError
from ...api import quota as qu
from .cache import PrefixCache
from .chain import CREATE, UPDATE, Attributes, Plugin, forbidden

if TYPE_CHECKING:
    from ..rest import ApiStore

Obj = dict[str, Any]
Usage = dict[str, Quantity]

NAME = "ResourceQuota"
MAX_ATTEMPTS = 64


class QuotaRefusal(Exception):
    """The request does not fit a quota; ``message`` is upstream's text (without the prefix)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Charge:
    name: str          # quota name
    used: dict[str, str]   # the new status.used


def _parse(values: Mapping[str, Any] | None) -> Usage:
    out: Usage = {}
    for k, v in (values or {}).items():
        try:
            out[str(k)] = Quantity.parse(v)
        except (ValueError, TypeError):
            continue
    return out


def pretty(values: Mapping[str, Quantity]) -> str:
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


def request_delta(group: str, plural: str, operation: str, obj: Obj, old: Obj | None) -> Usage:
    """What the request adds: the object's usage, minus the old object's on update (never < 0)."""
    new = qu.usage(group, plural, obj)
    if operation == UPDATE and old is not None:
        prev = qu.usage(group, plural, old)
        new = {k: (q - prev[k] if k in prev else q) for k, q in new.items()}
        new = {k: q for k, q in new.items() if q > 0}
    return {k: q for k, q in new.items() if q}


def compute_charges(quotas: Sequence[Obj], group: str, plural: str, operation: str, obj: Obj,
                    old: Obj | None = None, only: set[str] | None = None) -> list[Charge]:
    """The new ``status.used`` of every quota this request consumes, or raise QuotaRefusal.

    ``only`` limits the decision to those quota names (the retry after a lost race).
    """
    matching: list[tuple[Obj, list[str]]] = []
    for q in quotas:
        name = str((q.get("metadata") or {}).get("name") or "")
        if only is not None and name not in only:
            continue
        hard_names = list(((q.get("status") or {}).get("hard") or {}).keys())
        restricted = qu.tracked(group, plural, hard_names)
        if not restricted or not qu.matches_scopes(q, group, plural, obj):
            continue
        if (group, plural) == ("", "pods"):
            msg = qu.constraints(restricted, obj)
            if msg:
                raise QuotaRefusal(f"failed quota: {name}: {msg}")
        used = (q.get("status") or {}).get("used") or {}
        missing = [r for r in restricted if r not in used]
        if missing:
            raise QuotaRefusal(f"status unknown for quota: {name}, resources: {','.join(sorted(restricted))}")
        matching.append((q, restricted))
    if not matching:
        return []
    delta = request_delta(group, plural, operation, obj, old)
    for r, q in delta.items():
        if q < 0:
            raise QuotaRefusal(f"quota usage is negative for resource(s): {r}")
    if not delta:
        return []
    charges: list[Charge] = []
    for q, _restricted in matching:
        name = str(q["metadata"]["name"])
        status = q.get("status") or {}
        hard = _parse(status.get("hard"))
        used = _parse(status.get("used"))
        requested = {k: v for k, v in delta.items() if k in hard}
        if not requested:
            continue
        new_used = dict(used)
        for k, v in requested.items():
            new_used[k] = used[k] + v if k in used else v
        exceeded = sorted(k for k in requested if new_used[k] > hard[k])
        if exceeded:
            raise QuotaRefusal(
                f"exceeded quota: {name}, requested: {pretty({k: requested[k] for k in exceeded})}, "
                f"used: {pretty({k: used[k] for k in exceeded if k in used})}, "
                f"limited: {pretty({k: hard[k] for k in exceeded})}")
        out = {str(k): str(v) for k, v in (status.get("used") or {}).items()}
        out.update({k: str(v) for k, v in new_used.items() if k in requested})
        charges.append(Charge(name, out))
    return charges


class ResourceQuota(Plugin):
    NAME = NAME
    operations = frozenset({CREATE, UPDATE})
    subresources = frozenset({""})
    validating = True

    def __init__(self, api: "ApiStore", quotas: PrefixCache) -> None:
        self.api = api
        self.quotas = quotas
        self.conflicts = 0    # statistics: lost compare-and-swap races

    def handles(self, attrs: Attributes) -> bool:
        return (super().handles(attrs) and attrs.info.namespaced and bool(attrs.namespace)
                and attrs.obj is not None
                and attrs.operation in qu.charged_operations(attrs.group, attrs.resource))

    async def validate(self, attrs: Attributes) -> None:
        if not await self.quotas.list(attrs.namespace):
            return
        assert attrs.obj is not None
        prefix = f"/registry/resourcequotas/{attrs.namespace}/"
        pending: set[str] | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                page = await self.api.store.list(prefix)
            except StoreError as e:
                raise errors.internal(f"resource quota evaluation failed: {e}")
            from ..rest import decode, encode

            kvs = {str((o := decode(kv))["metadata"]["name"]): (kv, o) for kv in page.items}
            try:
                charges = compute_charges([o for _, o in kvs.values()], attrs.group, attrs.resource,
                                          attrs.operation, attrs.obj, attrs.old, pending)
            except QuotaRefusal as e:
                raise forbidden(attrs, e.message)
            if attrs.dry_run or not charges:
                return
            if pending is None:
                pending = {c.name for c in charges}
            for c in charges:
                kv, quota = kvs[c.name]
                quota.setdefault("status", {})["used"] = c.used
                try:
                    await self.api.store.update(kv.key, encode(quota), expected_revision=kv.mod_revision)
                except ConflictError:
                    self.conflicts += 1
                    continue
                except KeyNotFoundError:
                    pass  # the quota was deleted meanwhile: nothing to charge
                pending.discard(c.name)
            # quotas no longer charged by this request (deleted, or no longer matching) are done
            pending &= {c.name for c in charges}
            if not pending:
                return
            await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise errors.conflict("resourcequotas", "", sorted(pending or {""})[0], errors.MODIFIED_DETAIL)
