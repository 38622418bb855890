"""The namespace controller: empties a terminating namespace, then lets the API server remove it.

Deleting a namespace makes the API server set ``metadata.deletionTimestamp`` and
``status.phase: Terminating``; the namespace keeps ``spec.finalizers: ["kubernetes"]``. For such a
namespace ``sync`` (upstream ``namespaced_resources_deleter.go``):

1. discovers every namespaced resource (preferred versions, custom resources included) that can be
   listed and deleted; events go last;
2. deletes everything in the namespace (``deletecollection`` where allowed, then one DELETE per
   object still not terminating, propagation Background), and lists again to see what remains;
3. writes the five upstream deletion conditions to ``status`` (``NamespaceDeletionDiscoveryFailure``,
   ``NamespaceDeletionGroupVersionParsingFailure``, ``NamespaceDeletionContentFailure``,
   ``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``), each ``False`` when all is well;
4. while objects remain (e.g. held by finalizers) it looks again after a growing delay; once nothing
   remains it removes ``kubernetes`` from ``spec.finalizers`` through ``PUT .../finalize`` and the
   server deletes the namespace.

Discovery helpers (``discover``, ``ApiResource``) live here too; the garbage collector reuses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api.meta import now_rfc3339
from ..client import ApiError, Controller, MethodNotAllowed, NotFound, ObjectKey, Requeue
from ..client.lister import copy_obj
from ..client.resources import NAMESPACES, Resource
from ..client.workqueue import ItemExponentialFailureRateLimiter
from ..util.backoff import exponential_delay

if TYPE_CHECKING:
    from ..client import ApiClient
    from .manager import ControllerContext

NAME = "namespace-controller"
ALIASES = ("namespace",)

Obj = dict[str, Any]
FINALIZER = "kubernetes"
BACKGROUND = "Background"

# ---------------------------------------------------------------------------------------------
# discovery (shared with the garbage collector)


@dataclass(frozen=True)
class ApiResource:
    """One resource as discovery announces it."""

    resource: Resource
    verbs: frozenset[str]
    preferred: bool = True

    def supports(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)


@dataclass
class Discovery:
    """Everything discovery found, plus the group versions that failed (gv -> error text)."""

    resources: list[ApiResource] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unparsable: list[str] = field(default_factory=list)

    def preferred(self) -> list[ApiResource]:
        return [r for r in self.resources if r.preferred]


def parse_group_version(gv: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")``; ValueError otherwise."""
    parts = gv.split("/")
    if len(parts) == 1 and parts[0]:
        return "", parts[0]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise ValueError(f"unexpected GroupVersion string: {gv}")


def parse_resource_list(doc: Mapping[str, Any], *, preferred: bool = True) -> list[ApiResource]:
    """The top-level resources of an ``APIResourceList`` (subresources such as ``pods/status``
    are skipped). Raises ValueError when the groupVersion cannot be parsed."""
    group, version = parse_group_version(str(doc.get("groupVersion") or ""))
    out: list[ApiResource] = []
    for r in doc.get("resources") or ():
        name = str(r.get("name") or "")
        if not name or "/" in name:
            continue
        res = Resource(group, version, name, str(r.get("kind") or ""), bool(r.get("namespaced")))
        out.append(ApiResource(res, frozenset(r.get("verbs") or ()), preferred))
    return out


def group_versions(group_list: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """``(groupVersion, is_preferred)`` for every version of every group of an ``APIGroupList``."""
    out: list[tuple[str, bool]] = []
    for g in group_list.get("groups") or ():
        pref = (g.get("preferredVersion") or {}).get("groupVersion") or (
            (g.get("versions") or [{}])[0]
        ).get("groupVersion")
        for v in g.get("versions") or ():
            gv = str(v.get("groupVersion") or "")
            if gv:
                out.append((gv, gv == pref))
    return out


async def discover(client: ApiClient, *, concurrency: int = 8) -> Discovery:
    """Legacy discovery: ``/api/v1`` plus ``/apis`` and every ``/apis/<group>/<version>``.

    A group version that fails to answer is recorded in ``failed``; the rest is still returned.
    Failing to read ``/apis`` itself raises.
    """
    found = Discovery()
    gvs: list[tuple[str, bool]] = [("v1", True)]
    gvs += group_versions(await client.request("GET", "/apis"))
    sem = asyncio.Semaphore(concurrency)

    async def one(gv: str, preferred: bool) -> None:
        path = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
        try:
            async with sem:
                doc = await client.request("GET", path)
            found.resources.extend(parse_resource_list(doc, preferred=preferred))
        except ValueError:
            found.unparsable.append(gv)
        except ApiError as e:
            found.failed[gv] = str(e)

    async with asyncio.TaskGroup() as tg:
        for gv, preferred in gvs:
            tg.create_task(one(gv, preferred))
    found.resources.sort(key=lambda r: (r.resource.group, r.resource.version, r.resource.plural))
    return found


# ---------------------------------------------------------------------------------------------
# pure parts of the namespace deleter

CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
OK_REASONS = {
    "NamespaceDeletionDiscoveryFailure": "ResourcesDiscovered",
    "NamespaceDeletionGroupVersionParsingFailure": "ParsedGroupVersions",
    "NamespaceDeletionContentFailure": "ContentDeleted",
    "NamespaceContentRemaining": "ContentRemoved",
    "NamespaceFinalizersRemaining": "ContentHasNoFinalizers",
}
OK_MESSAGES = {
    "NamespaceDeletionDiscoveryFailure": "All resources successfully discovered",
    "NamespaceDeletionGroupVersionParsingFailure": "All legacy kube types successfully parsed",
    "NamespaceDeletionContentFailure": "All content successfully deleted, may be waiting on finalization",
    "NamespaceContentRemaining": "All content successfully removed",
    "NamespaceFinalizersRemaining": "All content-preserving finalizers finished",
}


def deletable_resources(found: Iterable[ApiResource]) -> list[Resource]:
    """Namespaced, preferred-version resources that can be listed and deleted; events last."""
    out = [
        r.resource
        for r in found
        if r.preferred and r.resource.namespaced and r.supports("list", "delete")
    ]
    return sorted(out, key=lambda r: (r.plural == "events", r.group, r.plural))


@dataclass
class ContentTotals:
    """What is left in the namespace: instances per resource and per finalizer."""

    per_resource: dict[str, int] = field(default_factory=dict)  # "configmaps." -> 1
    per_finalizer: dict[str, int] = field(default_factory=dict)  # "example.com/hold" -> 1

    def add(self, res: Resource, remaining: Iterable[Obj]) -> None:
        n = 0
        for obj in remaining:
            n += 1
            for f in (obj.get("metadata") or {}).get("finalizers") or ():
                self.per_finalizer[f] = self.per_finalizer.get(f, 0) + 1
        if n:
            label = f"{res.plural}.{res.group}"
            self.per_resource[label] = self.per_resource.get(label, 0) + n

    @property
    def empty(self) -> bool:
        return not self.per_resource


@dataclass
class DeletionReport:
    """The outcome of one pass over the namespace's content."""

    discovery_error: str = ""
    parse_error: str = ""
    content_errors: list[str] = field(default_factory=list)
    totals: ContentTotals = field(default_factory=ContentTotals)

    @property
    def done(self) -> bool:
        return (
            not self.discovery_error
            and not self.parse_error
            and not self.content_errors
            and self.totals.empty
        )


def failure_conditions(report: DeletionReport) -> dict[str, tuple[str, str]]:
    """Condition type -> (reason, message) for every failing condition of ``report``."""
    out: dict[str, tuple[str, str]] = {}
    if report.discovery_error:
        out["NamespaceDeletionDiscoveryFailure"] = ("DiscoveryFailed", report.discovery_error)
    if report.parse_error:
        out["NamespaceDeletionGroupVersionParsingFailure"] = (
            "GroupVersionParsingFailed",
            report.parse_error,
        )
    if report.content_errors:
        msgs = sorted(report.content_errors)
        out["NamespaceDeletionContentFailure"] = (
            "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(msgs)} remaining: {', '.join(msgs)}",
        )
    t = report.totals
    if t.per_resource:
        parts = sorted(f"{k} has {v} resource instances" for k, v in t.per_resource.items() if v)
        out["NamespaceContentRemaining"] = (
            "SomeResourcesRemain",
            f"Some resources are remaining: {', '.join(parts)}",
        )
    if t.per_finalizer:
        parts = sorted(f"{k} in {v} resource instances" for k, v in t.per_finalizer.items() if v)
        out["NamespaceFinalizersRemaining"] = (
            "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {', '.join(parts)}",
        )
    return out


def compute_conditions(old: list[Obj], report: DeletionReport, now: str) -> list[Obj]:
    """The namespace's conditions after ``report``: the five deletion conditions in upstream order
    (True with the failure, else False with the OK reason); other conditions are kept.
    ``lastTransitionTime`` changes only when a condition's status does."""
    failing = failure_conditions(report)
    by_type = {c.get("type"): c for c in old}
    out = [c for c in old if c.get("type") not in CONDITION_TYPES]
    for ctype in CONDITION_TYPES:
        status, (reason, message) = (
            ("True", failing[ctype])
            if ctype in failing
            else ("False", (OK_REASONS[ctype], OK_MESSAGES[ctype]))
        )
        prev = by_type.get(ctype)
        ltt = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
        out.append(
            {
                "type": ctype,
                "status": status,
                "lastTransitionTime": ltt or now,
                "reason": reason,
                "message": message,
            }
        )
    return out


def status_with_conditions(ns: Obj, conditions: list[Obj]) -> Obj | None:
    """A copy of ``ns`` with ``conditions`` (and phase Terminating), or None if nothing changes."""
    status = ns.get("status") or {}
    if status.get("conditions") == conditions and status.get("phase") == "Terminating":
        return None
    new = copy_obj(ns)
    new["status"] = {**status, "phase": "Terminating", "conditions": conditions}
    return new


def without_finalizer(ns: Obj, finalizer: str = FINALIZER) -> Obj:
    """The body for ``PUT /api/v1/namespaces/<ns>/finalize``: ``spec.finalizers`` minus ours."""
    new = copy_obj(ns)
    spec = new.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != finalizer]
    return new


def needs_deletion(ns: Obj | None) -> bool:
    """A namespace this controller must empty: terminating and still holding our finalizer."""
    if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return FINALIZER in ((ns.get("spec") or {}).get("finalizers") or ())


def retry_delay(attempt: int, base: float, maximum: float) -> float:
    """Back-off for a namespace whose content is still going away."""
    return exponential_delay(attempt, base, maximum)


# ---------------------------------------------------------------------------------------------
# the controller


class NamespaceController(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(
            NAME,
            ctx.client,
            workers=int(ctx.options.get("namespace_workers", 5)),
            factory=ctx.factory,
            clock=ctx.clock,
            rate_limiter=ItemExponentialFailureRateLimiter(0.005, 60.0),
        )
        self.ctx = ctx
        self.namespaces = self.informer(NAMESPACES)
        self.retry_base = float(ctx.options.get("namespace_retry_base", 0.1))
        self.retry_max = float(ctx.options.get("namespace_retry_max", 15.0))
        self._attempts: dict[str, int] = {}

    async def sync(self, key: ObjectKey) -> None:
        ns = self.namespaces.lister().get_by_key(key)
        if not needs_deletion(ns):
            self._attempts.pop(key, None)
            return
        assert ns is not None
        name = str(ns["metadata"]["name"])
        report = await self.delete_all_content(name)
        now = now_rfc3339(self.clock.wall())
        conds = compute_conditions(
            list((ns.get("status") or {}).get("conditions") or []), report, now
        )
        new = status_with_conditions(ns, conds)
        if new is not None:
            try:
                await self.client.update_status(NAMESPACES, new)
            except NotFound:
                return
        if not report.done:
            n = self._attempts.get(key, 0)
            self._attempts[key] = n + 1
            raise Requeue(
                retry_delay(n, self.retry_base, self.retry_max), "namespace content remains"
            )
        self._attempts.pop(key, None)
        await self.finalize(name)

    async def finalize(self, name: str) -> None:
        """Drop our finalizer from the live namespace (the server then deletes it)."""
        try:
            live = await self.client.get(NAMESPACES, name)
        except NotFound:
            return
        if not needs_deletion(live):
            return
        await self.client.request(
            "PUT", NAMESPACES.path(None, name, "finalize"), body=without_finalizer(live)
        )

    async def delete_all_content(self, namespace: str) -> DeletionReport:
        report = DeletionReport()
        try:
            found = await discover(self.client)
        except ApiError as e:
            report.discovery_error = str(e)
            return report
        if found.failed:
            errs = ", ".join(f"{gv}: {msg}" for gv, msg in sorted(found.failed.items()))
            report.discovery_error = (
                f"Discovery failed for some groups, {len(found.failed)} failing: {errs}"
            )
        if found.unparsable:
            report.parse_error = (
                f"unexpected GroupVersion string: {', '.join(sorted(found.unparsable))}"
            )
        resources = deletable_resources(found.resources)
        verbs = {r.resource: r.verbs for r in found.resources}
        for res in resources:
            try:
                remaining = await self.delete_resource(res, namespace, verbs.get(res, frozenset()))
            except ApiError as e:
                report.content_errors.append(f"{res.plural}.{res.group}: {e}")
                continue
            report.totals.add(res, remaining)
        return report

    async def delete_resource(
        self, res: Resource, namespace: str, verbs: frozenset[str]
    ) -> list[Obj]:
        """Delete every ``res`` object in ``namespace``; return those still there afterwards."""
        params = {"propagationPolicy": BACKGROUND}
        if "deletecollection" in verbs:
            try:
                await self.client.request("DELETE", res.path(namespace), params=params)
            except (MethodNotAllowed, NotFound):
                pass
        items, _ = await self.client.list_all(res, namespace)
        pending = [o for o in items if not (o.get("metadata") or {}).get("deletionTimestamp")]
        if not pending:
            return items
        for obj in pending:
            try:
                await self.client.delete(
                    res, str(obj["metadata"]["name"]), namespace, propagation_policy=BACKGROUND
                )
            except NotFound:
                pass
        items, _ = await self.client.list_all(res, namespace)
        return items


def new(ctx: ControllerContext) -> NamespaceController:
    return NamespaceController(ctx)


__all__ = ["ALIASES", "NAME", "ApiResource", "Discovery", "NamespaceController", "discover", "new"]
