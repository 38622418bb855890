"""The garbage collector: deletes dependents whose owners are gone, for every kind of object.

Upstream shape (``pkg/controller/garbagecollector``), in three parts:

* **Graph** (pure, no I/O): one ``Node`` per object that takes part in ownership, keyed by uid:
  its identity, its ``ownerReferences`` and the set of its dependents. Owners referenced before
  they are observed get a *virtual* node, checked with a live GET. Objects with no owners and no
  dependents are not kept (they cost nothing until they matter), and the node holds only a few
  interned strings, so memory stays small even with tens of thousands of pods.
* **Monitors**: one reflector per discovered resource that supports list, watch and delete
  (custom resources included; events are ignored, as upstream). They feed the graph directly
  (no object cache is kept). Discovery runs again periodically and whenever a
  CustomResourceDefinition changes; monitors are started and stopped to match.
* **Workers** take two kinds of keys: ``delete:<uid>`` (``attempt_to_delete``: delete the object
  if all its owners are gone, drop dangling owner references if some owner remains, or process a
  foreground deletion) and ``orphan:<uid>`` (``attempt_to_orphan``: strip the owner from its
  dependents' ``ownerReferences`` and remove the ``orphan`` finalizer). Owners are always checked
  with a live GET (compared by uid) before a dependent is deleted, so a stale graph never causes
  a wrong deletion; the decision itself is the pure ``decide``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..client import ApiError, Conflict, Controller, NotFound, ObjectKey, TransportError
from ..client.reflector import Reflector
from ..client.resources import CUSTOMRESOURCEDEFINITIONS, Resource
from ..util.backoff import Backoff
from ..util.tasks import Supervisor
from .namespace import ApiResource, Discovery, discover

if TYPE_CHECKING:
    from .manager import ControllerContext

NAME = "garbage-collector-controller"
ALIASES = ("garbagecollector",)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
IGNORED_RESOURCES: frozenset[tuple[str, str]] = frozenset(
    {("", "events"), ("events.k8s.io", "events")}
)
DELETE_PREFIX = "delete:"
ORPHAN_PREFIX = "orphan:"

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


# ---------------------------------------------------------------------------------------------
# the graph (pure)


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    block: bool = False  # blockOwnerDeletion
    controller: bool = False


def owner_refs(obj: Mapping[str, Any]) -> tuple[OwnerRef, ...]:
    out = []
    for r in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if not r.get("uid"):
            continue
        out.append(
            OwnerRef(
                sys.intern(str(r.get("apiVersion") or "")),
                sys.intern(str(r.get("kind") or "")),
                str(r.get("name") or ""),
                str(r["uid"]),
                bool(r.get("blockOwnerDeletion")),
                bool(r.get("controller")),
            )
        )
    return tuple(out)


class Node:
    """One object in the ownership graph (identity, owners, dependents, deletion state)."""

    __slots__ = (
        "api_version",
        "being_deleted",
        "deleting_dependents",
        "dependents",
        "kind",
        "name",
        "namespace",
        "orphaning",
        "owners",
        "uid",
        "virtual",
    )

    def __init__(
        self,
        uid: str,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        *,
        virtual: bool = False,
    ) -> None:
        self.uid = uid
        self.api_version = sys.intern(api_version)
        self.kind = sys.intern(kind)
        self.name = name
        self.namespace = sys.intern(namespace)
        self.owners: tuple[OwnerRef, ...] = ()
        self.dependents: set[Node] | None = None
        self.being_deleted = False
        self.deleting_dependents = False  # deletionTimestamp + foregroundDeletion finalizer
        self.orphaning = False  # deletionTimestamp + orphan finalizer
        self.virtual = virtual

    def deps(self) -> list[Node]:
        return list(self.dependents or ())

    def disposable(self) -> bool:
        """Nothing to remember: no owners, no dependents, no deletion work pending."""
        return (
            not self.owners
            and not self.dependents
            and not self.deleting_dependents
            and not self.orphaning
        )

    def __repr__(self) -> str:
        v = " virtual" if self.virtual else ""
        return f"<Node {self.kind} {self.namespace}/{self.name} {self.uid}{v}>"


@dataclass
class Work:
    """Keys a graph change asks the workers to look at."""

    delete: list[str] = field(default_factory=list)  # uids for attempt_to_delete
    orphan: list[str] = field(default_factory=list)  # uids for attempt_to_orphan

    def extend(self, other: Work) -> None:
        self.delete.extend(other.delete)
        self.orphan.extend(other.orphan)


class Graph:
    """The uid -> Node map and the rules that turn object events into work."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def _link(self, node: Node, ref: OwnerRef, work: Work) -> None:
        owner = self.nodes.get(ref.uid)
        if owner is None:
            owner = Node(ref.uid, ref.api_version, ref.kind, ref.name, node.namespace, virtual=True)
            self.nodes[ref.uid] = owner
            work.delete.append(ref.uid)  # verify that the owner exists
        if owner.dependents is None:
            owner.dependents = set()
        owner.dependents.add(node)
        if owner.deleting_dependents:
            work.delete.append(node.uid)

    def _unlink(self, node: Node, uid: str, work: Work) -> None:
        owner = self.nodes.get(uid)
        if owner is None:
            return
        if owner.dependents:
            owner.dependents.discard(node)
        if owner.deleting_dependents:
            work.delete.append(owner.uid)
        self._maybe_drop(owner)

    def _maybe_drop(self, node: Node) -> None:
        if node.disposable() and self.nodes.get(node.uid) is node:
            del self.nodes[node.uid]

    def observe(self, obj: Mapping[str, Any], api_version: str, kind: str) -> Work:
        """An object was added or changed."""
        work = Work()
        md = obj.get("metadata") or {}
        uid = str(md.get("uid") or "")
        if not uid:
            return work
        owners = owner_refs(obj)
        finalizers = md.get("finalizers") or ()
        being_deleted = bool(md.get("deletionTimestamp"))
        deleting_deps = being_deleted and FOREGROUND in finalizers
        orphaning = being_deleted and ORPHAN in finalizers
        node = self.nodes.get(uid)
        if node is None:
            if not owners and not deleting_deps and not orphaning:
                return work
            node = Node(
                uid, api_version, kind, str(md.get("name") or ""), str(md.get("namespace") or "")
            )
            self.nodes[uid] = node
            was_deleting = False
            old: dict[str, OwnerRef] = {}
        else:
            name, namespace = str(md.get("name") or ""), str(md.get("namespace") or "")
            self.confirm(node, api_version, kind, name, namespace)
            was_deleting = node.deleting_dependents
            old = {r.uid: r for r in node.owners}
        new = {r.uid: r for r in owners}
        node.owners = owners
        node.being_deleted = being_deleted
        node.deleting_dependents = deleting_deps
        node.orphaning = orphaning
        for ref_uid in old.keys() - new.keys():
            self._unlink(node, ref_uid, work)
        for ref_uid, ref in new.items():
            prev = old.get(ref_uid)
            if prev is None:
                self._link(node, ref, work)
            elif prev.block != ref.block:
                owner = self.nodes.get(ref_uid)
                if owner is not None and owner.deleting_dependents:
                    work.delete.append(ref_uid)
        if orphaning:
            work.orphan.append(uid)
        if deleting_deps:
            if not was_deleting:
                work.delete.extend(d.uid for d in node.deps())
            work.delete.append(uid)
        self._maybe_drop(node)
        return work

    def remove(self, uid: str) -> Work:
        """An object is gone (observed deletion, or a live check found it absent)."""
        work = Work()
        node = self.nodes.pop(uid, None)
        if node is None:
            return work
        for ref in node.owners:
            self._unlink(node, ref.uid, work)
        work.delete.extend(d.uid for d in node.deps())
        return work

    def confirm(self, node: Node, api_version: str, kind: str, name: str, namespace: str) -> None:
        """A live GET found a virtual node's object: take its real identity. Its owners and
        deletion state stay as they are until its monitor reports the object."""
        node.virtual = False
        node.api_version, node.kind = sys.intern(api_version), sys.intern(kind)
        node.name, node.namespace = name, sys.intern(namespace)

    def blocking_dependents(self, node: Node) -> list[Node]:
        """Dependents whose reference to ``node`` has blockOwnerDeletion."""
        return [d for d in node.deps() if any(r.uid == node.uid and r.block for r in d.owners)]

    def uids_of(self, group: str, kind: str) -> list[str]:
        return [
            u
            for u, n in self.nodes.items()
            if not n.virtual and n.kind == kind and _group(n.api_version) == group
        ]


# ---------------------------------------------------------------------------------------------
# decisions (pure)


class OwnerState(Enum):
    SOLID = "solid"  # exists, same uid, not waiting for its dependents
    DANGLING = "dangling"  # absent, or the name now belongs to another uid
    WAITING = "waiting"  # being deleted in the foreground (waits for dependents)


@dataclass(frozen=True)
class Decision:
    remove_owners: tuple[str, ...] = ()  # owner uids to drop from ownerReferences
    unblock_owners: tuple[str, ...] = ()  # owner uids whose blockOwnerDeletion to clear
    delete: str | None = None  # propagation policy for deleting the object


def owner_state(owner: Mapping[str, Any] | None, uid: str) -> OwnerState:
    """Classify a live owner lookup (None: not found)."""
    if owner is None:
        return OwnerState.DANGLING
    md = owner.get("metadata") or {}
    if md.get("uid") != uid:
        return OwnerState.DANGLING
    if md.get("deletionTimestamp") and FOREGROUND in (md.get("finalizers") or ()):
        return OwnerState.WAITING
    return OwnerState.SOLID


def propagation_for(obj: Mapping[str, Any]) -> str:
    """How to delete an object: as its own finalizers already ask, else in the background."""
    fins = (obj.get("metadata") or {}).get("finalizers") or ()
    if ORPHAN in fins:
        return "Orphan"
    if FOREGROUND in fins:
        return "Foreground"
    return "Background"


def decide(
    obj: Mapping[str, Any],
    states: Mapping[str, OwnerState],
    *,
    has_dependents: bool,
    dependent_deleting_dependents: bool,
) -> Decision:
    """What to do with a dependent given the state of each owner (uid -> state).

    Some owner solid: keep it, dropping references to dangling or waiting owners. Otherwise, if an
    owner waits for its dependents and this object has dependents of its own: delete it in the
    foreground (clearing blockOwnerDeletion first when one of its dependents is itself deleting
    dependents, to break cycles). Otherwise delete it (policy from its own finalizers).
    """
    solid = [u for u, s in states.items() if s is OwnerState.SOLID]
    dangling = [u for u, s in states.items() if s is OwnerState.DANGLING]
    waiting = [u for u, s in states.items() if s is OwnerState.WAITING]
    if not states:
        return Decision()
    if solid:
        return Decision(remove_owners=tuple(dangling + waiting))
    if waiting and has_dependents:
        unblock = tuple(waiting) if dependent_deleting_dependents else ()
        return Decision(unblock_owners=unblock, delete="Foreground")
    return Decision(delete=propagation_for(obj))


def monitored(
    found: Iterable[ApiResource], ignored: frozenset[tuple[str, str]] = IGNORED_RESOURCES
) -> list[Resource]:
    """Resources the collector watches: preferred versions that support list, watch and delete."""
    return [
        r.resource
        for r in found
        if r.preferred
        and r.supports("list", "watch", "delete")
        and (r.resource.group, r.resource.plural) not in ignored
    ]


class RestMapper:
    """(apiVersion, kind) -> Resource, from discovery; falls back to another version of the group."""

    def __init__(self, found: Iterable[ApiResource] = ()) -> None:
        self.exact: dict[tuple[str, str], Resource] = {}
        self.by_group: dict[tuple[str, str], Resource] = {}
        for r in found:
            res = r.resource
            self.exact.setdefault((res.api_version, res.kind), res)
            if r.preferred or (res.group, res.kind) not in self.by_group:
                self.by_group[(res.group, res.kind)] = res

    def resolve(self, api_version: str, kind: str) -> Resource | None:
        return self.exact.get((api_version, kind)) or self.by_group.get((_group(api_version), kind))


class AbsentOwners:
    """A bounded LRU of owners known to be gone: (uid, group, kind, namespace, name)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._d: OrderedDict[tuple[str, ...], None] = OrderedDict()

    def add(self, key: tuple[str, ...]) -> None:
        self._d[key] = None
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._d


class UnknownKind(ApiError):
    """An ownerReference names a kind discovery does not know (yet)."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(0, "UnknownKind", f"unable to map {api_version} {kind} to a resource")


# ---------------------------------------------------------------------------------------------
# the I/O shell


class Monitor:
    """A reflector sink that feeds one resource's objects into the graph."""

    def __init__(self, gc: GarbageCollector, resource: Resource) -> None:
        self.gc = gc
        self.resource = resource
        self.synced = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None
        self.reflector = Reflector(
            gc.client, resource, self, watch_timeout=gc.watch_timeout, clock=gc.clock
        )

    def on_list(self, items: list[Obj], resource_version: str) -> None:
        g = self.gc.graph
        seen: set[str] = set()
        for obj in items:
            seen.add(str((obj.get("metadata") or {}).get("uid") or ""))
            self.gc.enqueue_work(g.observe(obj, self.resource.api_version, self.resource.kind))
        for uid in g.uids_of(self.resource.group, self.resource.kind):
            if uid not in seen:
                self.gc.observed_deleted(uid)
        self.synced.set()

    def on_watch_event(self, event_type: str, obj: Obj) -> None:
        g = self.gc.graph
        if event_type in ("ADDED", "MODIFIED"):
            self.gc.enqueue_work(g.observe(obj, self.resource.api_version, self.resource.kind))
        elif event_type == "DELETED":
            self.gc.observed_deleted(str((obj.get("metadata") or {}).get("uid") or ""))


class GarbageCollector(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(
            NAME,
            ctx.client,
            workers=int(ctx.options.get("gc_workers", 10)),
            factory=ctx.factory,
            clock=ctx.clock,
        )
        self.ctx = ctx
        self.graph = Graph()
        self.mapper = RestMapper()
        self.absent = AbsentOwners()
        self.monitors: dict[Resource, Monitor] = {}
        self.discovery_period = float(ctx.options.get("gc_discovery_period", 30.0))
        self.sync_timeout_s = float(ctx.options.get("gc_sync_timeout", 30.0))
        self.watch_timeout = int(ctx.options.get("gc_watch_timeout", 300))
        self.ignored = frozenset(ctx.options.get("gc_ignored_resources", IGNORED_RESOURCES))
        self._rediscover = asyncio.Event()
        self._discovered = asyncio.Event()
        self._sup: Supervisor | None = None
        crds = self.informer(CUSTOMRESOURCEDEFINITIONS, handle=False)
        crds.add_event_handler(
            on_add=lambda _o: self._rediscover.set(),
            on_update=lambda _o, _n: self._rediscover.set(),
            on_delete=lambda _o: self._rediscover.set(),
        )

    # -- graph -> queue ---------------------------------------------------------------------------
    def enqueue_work(self, work: Work) -> None:
        for uid in work.delete:
            self.queue.add(ObjectKey(DELETE_PREFIX + uid))
        for uid in work.orphan:
            self.queue.add(ObjectKey(ORPHAN_PREFIX + uid))

    def observed_deleted(self, uid: str) -> None:
        """A monitor saw ``uid`` go: remember it as an absent owner (a uid is never reused, so
        this holds whatever kind its dependents think it is) and look at its dependents."""
        node = self.graph.nodes.get(uid)
        if node is not None and node.dependents:
            self.absent.add((uid,))
        self.enqueue_work(self.graph.remove(uid))

    # -- monitors ---------------------------------------------------------------------------------
    def apply_discovery(self, found: Discovery) -> None:
        """Start monitors for new resources, stop those for resources no longer served."""
        self.mapper = RestMapper(found.resources)
        wanted = set(monitored(found.resources, self.ignored))
        failed_gvs = set(found.failed)
        for res, mon in list(self.monitors.items()):
            if res in wanted or res.api_version in failed_gvs:
                continue
            if mon.task is not None:
                mon.task.cancel()
            del self.monitors[res]
            for uid in self.graph.uids_of(res.group, res.kind):
                self.enqueue_work(self.graph.remove(uid))
        for res in sorted(wanted - self.monitors.keys(), key=str):
            mon = Monitor(self, res)
            self.monitors[res] = mon
            if self._sup is not None:
                mon.task = self._sup.start(mon.reflector.run(), name=f"monitor/{res}")

    async def _discovery_loop(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.5)
        while True:
            try:
                found = await discover(self.client)
            except (ApiError, TransportError) as e:
                delay = backoff.next()
                self.log.warning("discovery failed: %s; retrying in %.1fs", e, delay)
                await self.clock.sleep(delay)
                continue
            backoff.reset()
            self.apply_discovery(found)
            self._discovered.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.discovery_period):
                    await self._rediscover.wait()
                await self.clock.sleep(0.1)  # let a burst of CRD events collapse into one discovery
            self._rediscover.clear()

    async def wait_for_monitors(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._discovered.wait()
                for mon in list(self.monitors.values()):
                    await mon.synced.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        async with Supervisor(f"{self.name}/monitors", logger=self.log) as sup:
            self._sup = sup
            try:
                sup.start(self._discovery_loop(), name="discovery")
                if not await self.wait_for_monitors(self.sync_timeout_s):
                    self.log.warning(
                        "not every monitor synced within %.0fs; starting anyway",
                        self.sync_timeout_s,
                    )
                await super().run()
            finally:
                self._sup = None

    # -- workers ----------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self.attempt_to_orphan(key[len(ORPHAN_PREFIX) :])
        elif key.startswith(DELETE_PREFIX):
            await self.attempt_to_delete(key[len(DELETE_PREFIX) :])

    def _resource(self, api_version: str, kind: str) -> Resource:
        res = self.mapper.resolve(api_version, kind)
        if res is None:
            raise UnknownKind(api_version, kind)
        return res

    async def _get(self, res: Resource, name: str, namespace: str) -> Obj | None:
        try:
            return await self.client.get(res, name, namespace or None)
        except NotFound:
            return None

    async def _get_node(self, node: Node) -> Obj | None:
        """The live object of ``node`` (None when absent or replaced by another uid)."""
        res = self._resource(node.api_version, node.kind)
        if res.namespaced and not node.namespace:
            return None
        obj = await self._get(res, node.name, node.namespace)
        if obj is None or (obj.get("metadata") or {}).get("uid") != node.uid:
            return None
        return obj

    def _absent(self, node: Node) -> None:
        """A live check found ``node`` gone: forget it and look at its dependents."""
        if node.deps():
            self.absent.add(
                (node.uid, _group(node.api_version), node.kind, node.namespace, node.name)
            )
        if self.graph.nodes.get(node.uid) is node:
            self.enqueue_work(self.graph.remove(node.uid))

    async def attempt_to_delete(self, uid: str) -> None:
        node = self.graph.nodes.get(uid)
        if node is None or (node.being_deleted and not node.deleting_dependents):
            return
        latest = await self._get_node(node)
        if latest is None:
            self._absent(node)
            return
        md = latest.get("metadata") or {}
        if node.virtual:  # the owner exists; from now on its monitor keeps the node current
            res = self._resource(node.api_version, node.kind)
            self.graph.confirm(
                node,
                str(latest.get("apiVersion") or res.api_version),
                str(latest.get("kind") or res.kind),
                str(md.get("name") or node.name),
                str(md.get("namespace") or ""),
            )
            return
        if md.get("deletionTimestamp"):
            if FOREGROUND in (md.get("finalizers") or ()):
                await self.process_deleting_dependents(node)
            return
        ns = str(md.get("namespace") or "")
        refs = owner_refs(latest)
        if not refs:
            return
        states = {ref.uid: await self.classify(ref, ns) for ref in refs}
        deps = node.deps()
        decision = decide(
            latest,
            states,
            has_dependents=bool(deps),
            dependent_deleting_dependents=any(d.deleting_dependents for d in deps),
        )
        await self.carry_out(node, latest, decision)

    async def classify(self, ref: OwnerRef, namespace: str) -> OwnerState:
        """Look the owner up live (upstream ``isDangling``), remembering owners found absent."""
        key = (ref.uid, _group(ref.api_version), ref.kind, namespace, ref.name)
        if (ref.uid,) in self.absent or key in self.absent:
            return OwnerState.DANGLING
        res = self._resource(ref.api_version, ref.kind)
        if res.namespaced and not namespace:
            return (
                OwnerState.DANGLING
            )  # a cluster-scoped object cannot be owned by a namespaced one
        owner = await self._get(res, ref.name, namespace if res.namespaced else "")
        state = owner_state(owner, ref.uid)
        if state is OwnerState.DANGLING:
            self.absent.add(key)
        return state

    async def carry_out(self, node: Node, latest: Obj, decision: Decision) -> None:
        res = self._resource(node.api_version, node.kind)
        if decision.remove_owners:
            drop = set(decision.remove_owners)
            await self._patch_owner_refs(
                res, latest, [r for r in _raw_refs(latest) if r.get("uid") not in drop]
            )
        if decision.unblock_owners:
            unblock = set(decision.unblock_owners)
            refs = [
                {**r, "blockOwnerDeletion": False} if r.get("uid") in unblock else r
                for r in _raw_refs(latest)
            ]
            latest = await self._patch_owner_refs(res, latest, refs) or latest
        if decision.delete:
            self.log.info(
                "deleting %s %s/%s (%s)", node.kind, node.namespace, node.name, decision.delete
            )
            try:
                await self.client.delete(
                    res,
                    node.name,
                    node.namespace or None,
                    propagation_policy=decision.delete,
                    preconditions={"uid": node.uid},
                )
            except NotFound:
                pass
            except Conflict:  # replaced by a new object of the same name
                self._absent(node)

    async def _patch_owner_refs(self, res: Resource, latest: Obj, refs: list[Obj]) -> Obj | None:
        md = latest.get("metadata") or {}
        patch = {
            "metadata": {
                "ownerReferences": refs or None,
                "uid": md.get("uid"),
                "resourceVersion": md.get("resourceVersion"),
            }
        }
        try:
            return await self.client.patch(
                res, str(md.get("name")), patch, md.get("namespace") or None
            )
        except NotFound:
            return None

    async def process_deleting_dependents(self, node: Node) -> None:
        """Foreground deletion: when no blocking dependent is left, drop the finalizer."""
        blocking = self.graph.blocking_dependents(node)
        if not blocking:
            await self.remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.being_deleted:
                self.queue.add(ObjectKey(DELETE_PREFIX + dep.uid))

    async def attempt_to_orphan(self, uid: str) -> None:
        """Orphan propagation: strip the owner from every dependent, then drop ``orphan``."""
        node = self.graph.nodes.get(uid)
        if node is None or not node.orphaning:
            return
        for dep in node.deps():
            res = self._resource(dep.api_version, dep.kind)
            latest = await self._get_node(dep)
            if latest is None:
                continue
            refs = _raw_refs(latest)
            kept = [r for r in refs if r.get("uid") != uid]
            if len(kept) != len(refs):
                await self._patch_owner_refs(res, latest, kept)
        await self.remove_finalizer(node, ORPHAN)

    async def remove_finalizer(self, node: Node, finalizer: str) -> None:
        res = self._resource(node.api_version, node.kind)
        latest = await self._get_node(node)
        if latest is None:
            return
        md = latest.get("metadata") or {}
        fins = list(md.get("finalizers") or ())
        if finalizer not in fins:
            return
        patch = {
            "metadata": {
                "finalizers": [f for f in fins if f != finalizer],
                "uid": node.uid,
                "resourceVersion": md.get("resourceVersion"),
            }
        }
        try:
            await self.client.patch(res, node.name, patch, node.namespace or None)
        except NotFound:
            pass

    def statistics(self) -> dict[str, Any]:
        return {
            **super().statistics(),
            "graph_nodes": len(self.graph),
            "monitors": len(self.monitors),
            "monitors_synced": sum(m.synced.is_set() for m in self.monitors.values()),
        }


def _raw_refs(obj: Mapping[str, Any]) -> list[Obj]:
    return [dict(r) for r in (obj.get("metadata") or {}).get("ownerReferences") or ()]


def new(ctx: ControllerContext) -> GarbageCollector:
    return GarbageCollector(ctx)
