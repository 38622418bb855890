"""The EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for Services with a selector.

Shape (as upstream ``pkg/controller/endpointslice``): Service, Pod, Node and managed
EndpointSlice events map to Service keys; ``sync(key)`` reads everything from the listers and
the pure ``reconcile`` returns which slices to create, update and delete:

    endpoints  one per pod (``should_pod_be_in_endpoints`` including terminating pods) with its
               IPv4 address, conditions ready / serving / terminating, ``nodeName``, ``zone`` (the
               node's ``topology.kubernetes.io/zone`` label), ``targetRef`` and ``hostname``
    ports      service ports resolved per pod; pods whose ports resolve alike share slices
    slices     at most ``max_endpoints_per_slice`` (100) endpoints each; endpoints stay in the slice
               that holds them, new ones fill slices with room before new slices are created, empty
               slices are deleted; a Service without endpoints keeps one empty placeholder slice
    metadata   ``generateName: <service>-``, labels ``kubernetes.io/service-name`` and
               ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` (plus the
               Service's labels), a controller ownerReference to the Service (the garbage collector
               removes the slices with it) and the last-change-trigger-time annotation

Services without a selector (their slices, like the API server's ``default/kubernetes``, are
written out of band) and ExternalName Services are left alone.

Slices created with ``generateName`` show up in the cache only after their watch event, so every
write is recorded in ``SliceTracker``; a Service whose last writes the cache does not yet reflect is
not reconciled (it is looked at again shortly), which keeps a lagging cache from creating duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..client import Controller, Requeue
from ..client.errors import NotFound
from ..client.indexer import index_by_label
from ..client.keys import (
    DeletedFinalStateUnknown,
    ObjectKey,
    key_of,
    make_key,
    split_key,
    tombstone_object,
)
from ..client.resources import ENDPOINTSLICES, NODES, PODS, SERVICES
from ..util.clock import Clock, RealClock
from .endpoints import (
    TRIGGER_TIME_ANNOTATION,
    find_port,
    is_pod_ready,
    managed_service,
    pod_ipv4,
    selects,
    service_labels,
    should_pod_be_in_endpoints,
    should_set_hostname,
    target_ref,
    trigger_time,
)

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "endpointslice-controller"
ALIASES = ("endpointslice",)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
ADDRESS_TYPE = "IPv4"
BY_SERVICE = "byServiceName"
TRACKER_TIMEOUT = 30.0          # seconds before an unobserved write stops blocking syncs
STALE_RETRY = 0.1               # seconds: look again when the cache lags our own writes


def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


# ------------------------------------------------------------------------------------------------
# endpoints and ports (pure)
# ------------------------------------------------------------------------------------------------
def build_endpoint(pod: Mapping[str, Any], service: Mapping[str, Any], zone: str | None) -> Obj:
    """One slice endpoint for a pod; ``ready`` is never true while terminating unless the Service
    publishes not-ready addresses."""
    serving = is_pod_ready(pod)
    terminating = bool(_md(pod).get("deletionTimestamp"))
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    ep: Obj = {"addresses": [pod_ipv4(pod)],
               "conditions": {"ready": publish or (serving and not terminating),
                              "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, service):
        ep["hostname"] = (pod.get("spec") or {})["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
    if zone:
        ep["zone"] = zone
    ep["targetRef"] = target_ref(pod)
    return ep


def endpoint_ports(pod: Mapping[str, Any], service: Mapping[str, Any]) -> list[Obj]:
    """The service ports resolved for this pod (ports the pod lacks are left out)."""
    ports = []
    for sp in (service.get("spec") or {}).get("ports") or ():
        number = find_port(pod, sp)
        if number is None:
            continue
        port: Obj = {"name": sp.get("name") or "", "port": number, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    return ports


PortsKey = tuple[tuple[str, int, str, str], ...]


def ports_key(ports: Iterable[Mapping[str, Any]] | None) -> PortsKey:
    return tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
                         str(p.get("appProtocol") or "")) for p in ports or ()))


def endpoint_id(ep: Mapping[str, Any]) -> str:
    """Identity of an endpoint across syncs: its pod's uid, else its first address."""
    uid = (ep.get("targetRef") or {}).get("uid")
    return str(uid) if uid else "ip:" + str((ep.get("addresses") or [""])[0])


@dataclass(frozen=True)
class Group:
    ports: tuple[Obj, ...]
    endpoints: dict[str, Obj]       # endpoint_id -> endpoint, in pod order


def desired_groups(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]],
                   zones: Mapping[str, str]) -> dict[PortsKey, Group]:
    """Endpoints for ``pods`` grouped by their resolved port sets."""
    groups: dict[PortsKey, Group] = {}
    for pod in sorted(pods, key=lambda p: str(_md(p).get("name") or "")):
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = endpoint_ports(pod, service)
        node = (pod.get("spec") or {}).get("nodeName") or ""
        ep = build_endpoint(pod, service, zones.get(node))
        g = groups.setdefault(ports_key(ports), Group(tuple(sorted(ports, key=lambda p: ports_key([p]))), {}))
        g.endpoints.setdefault(endpoint_id(ep), ep)
    return groups


# ------------------------------------------------------------------------------------------------
# reconcile (pure)
# ------------------------------------------------------------------------------------------------
def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels (headless marker included) plus the two that tie a slice to it."""
    labels = {k: v for k, v in service_labels(service).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = str(_md(service).get("name"))
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def owner_reference(service: Mapping[str, Any]) -> Obj:
    md = _md(service)
    return {"apiVersion": "v1", "kind": "Service", "name": md.get("name"), "uid": md.get("uid"),
            "controller": True, "blockOwnerDeletion": True}


def generate_name_prefix(service_name: str) -> str:
    return f"{service_name}-"


def new_slice(service: Mapping[str, Any], ports: Sequence[Obj], endpoints: list[Obj]) -> Obj:
    md = _md(service)
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": generate_name_prefix(str(md.get("name"))),
                         "namespace": md.get("namespace"), "labels": slice_labels(service),
                         "ownerReferences": [owner_reference(service)]},
            "addressType": ADDRESS_TYPE, "endpoints": endpoints, "ports": [dict(p) for p in ports]}


@dataclass(frozen=True)
class Observed:
    service: Obj
    pods: tuple[Obj, ...]
    slices: tuple[Obj, ...]          # the slices this controller manages for the Service
    zones: Mapping[str, str]         # node name -> zone
    max_per_slice: int = MAX_ENDPOINTS_PER_SLICE


@dataclass(frozen=True)
class Plan:
    create: tuple[Obj, ...] = ()
    update: tuple[Obj, ...] = ()
    delete: tuple[str, ...] = ()     # slice names

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


@dataclass
class _Draft:
    original: Obj | None
    ports: tuple[Obj, ...]
    endpoints: list[Obj] = field(default_factory=list)


def _slice_name(s: Mapping[str, Any]) -> str:
    return str(_md(s).get("name") or "")


def reconcile(obs: Observed) -> Plan:
    """Slices to create / update / delete so that they hold exactly the desired endpoints."""
    svc = obs.service
    groups = desired_groups(svc, obs.pods, obs.zones)
    drafts: dict[PortsKey, list[_Draft]] = {}
    delete: list[str] = []
    placed: set[tuple[PortsKey, str]] = set()
    for s in sorted(obs.slices, key=_slice_name):
        key = ports_key(s.get("ports"))
        group = groups.get(key)
        if s.get("addressType") != ADDRESS_TYPE or group is None:
            delete.append(_slice_name(s))
            continue
        d = _Draft(s, group.ports)
        for ep in s.get("endpoints") or ():
            eid = endpoint_id(ep)
            if eid in group.endpoints and (key, eid) not in placed:
                placed.add((key, eid))
                d.endpoints.append(group.endpoints[eid])
        drafts.setdefault(key, []).append(d)
    for key, group in groups.items():
        fresh = [ep for eid, ep in group.endpoints.items() if (key, eid) not in placed]
        _fill(drafts.setdefault(key, []), group.ports, fresh, obs.max_per_slice)
    create: list[Obj] = []
    update: list[Obj] = []
    keep_placeholder = not groups
    for d in (d for ds in drafts.values() for d in ds):
        if not d.endpoints and not keep_placeholder:
            if d.original is not None:
                delete.append(_slice_name(d.original))
            continue
        _emit(svc, d, create, update)
    if keep_placeholder:
        create, update, delete = _placeholder(svc, obs.slices, create, update, delete)
    return Plan(tuple(create), tuple(update), tuple(delete))


def _fill(drafts: list[_Draft], ports: tuple[Obj, ...], fresh: list[Obj], limit: int) -> None:
    """Put new endpoints into slices with room (fullest first), then into new slices."""
    for d in sorted(drafts, key=lambda d: -len(d.endpoints)):
        room = limit - len(d.endpoints)
        if room > 0 and fresh:
            d.endpoints.extend(fresh[:room])
            fresh = fresh[room:]
    while fresh:
        drafts.append(_Draft(None, ports, fresh[:limit]))
        fresh = fresh[limit:]


def _emit(svc: Mapping[str, Any], d: _Draft, create: list[Obj], update: list[Obj]) -> None:
    if d.original is None:
        create.append(new_slice(svc, d.ports, d.endpoints))
        return
    o = d.original
    labels = slice_labels(svc)
    if (o.get("endpoints") or []) == d.endpoints and ports_key(o.get("ports")) == ports_key(d.ports) \
            and (_md(o).get("labels") or {}) == labels and _owned_by(o, svc):
        return
    obj = {**o, "endpoints": d.endpoints, "ports": [dict(p) for p in d.ports]}
    md = dict(_md(o))
    md["labels"] = labels
    md["ownerReferences"] = [owner_reference(svc)]
    obj["metadata"] = md
    update.append(obj)


def _owned_by(s: Mapping[str, Any], svc: Mapping[str, Any]) -> bool:
    return any(r.get("uid") == _md(svc).get("uid") and r.get("controller")
               for r in _md(s).get("ownerReferences") or ())


def _placeholder(svc: Mapping[str, Any], slices: Sequence[Obj], create: list[Obj], update: list[Obj],
                 delete: list[str]) -> tuple[list[Obj], list[Obj], list[str]]:
    """No endpoints at all: keep exactly one empty slice (reuse an existing one if any)."""
    existing = sorted((s for s in slices if s.get("addressType") == ADDRESS_TYPE), key=_slice_name)
    if not existing:
        return [new_slice(svc, (), [])], [], delete
    keep = existing[0]
    delete = [n for n in {*delete, *(_slice_name(s) for s in existing[1:])} if n != _slice_name(keep)]
    out_update: list[Obj] = []
    _emit(svc, _Draft(keep, ()), [], out_update)
    return [], out_update, sorted(delete)


# ------------------------------------------------------------------------------------------------
# write tracking (cache freshness)
# ------------------------------------------------------------------------------------------------
def _rv(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class SliceTracker:
    """Remembers the slices each Service's last sync wrote (name -> resourceVersion, or None for a
    deletion) until the cache shows them (upstream ``EndpointSliceTracker``)."""

    def __init__(self, clock: Clock | None = None, timeout: float = TRACKER_TIMEOUT) -> None:
        self.clock = clock or RealClock()
        self.timeout = timeout
        self._expect: dict[str, tuple[dict[str, int | None], float]] = {}

    def expect(self, service_key: str, written: Mapping[str, int | None]) -> None:
        if written:
            self._expect[service_key] = (dict(written), self.clock.monotonic())

    def forget(self, service_key: str) -> None:
        self._expect.pop(service_key, None)

    def stale(self, service_key: str, cached: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether the cached slices (by name) still miss one of the recorded writes."""
        entry = self._expect.get(service_key)
        if entry is None:
            return False
        written, since = entry
        if self.clock.monotonic() - since > self.timeout:
            self.forget(service_key)
            return False
        for name, rv in written.items():
            obj = cached.get(name)
            if rv is None and obj is not None:
                return True
            if rv is not None and (obj is None or _rv(_md(obj).get("resourceVersion")) < rv):
                return True
        self.forget(service_key)
        return False


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
def _slice_service_keys(s: Obj) -> list[str]:
    labels = _md(s).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [make_key(_md(s).get("namespace"), str(labels[SERVICE_NAME_LABEL]))]


class EndpointSliceController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 clock: Clock | None = None, workers: int = 5,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory, clock=clock)
        self.max_per_slice = max_endpoints_per_slice
        self.tracker = SliceTracker(self.clock)
        self.services = self.informer(SERVICES)
        self.slices = self.informer(ENDPOINTSLICES, mapper=_slice_service_keys,
                                    indexers={BY_SERVICE: index_by_label(SERVICE_NAME_LABEL)})
        self.pods = self.informer(PODS, handle=False)
        self.pods.add_event_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)
        self.nodes = self.informer(NODES, handle=False)
        self.nodes.add_event_handler(on_update=self._node_updated)
        self.writes = 0

    # -- event handlers --------------------------------------------------------------------------
    def _service_keys(self, pod: Mapping[str, Any]) -> list[str]:
        ns = _md(pod).get("namespace")
        return [key_of(s) for s in self.services.lister().list(ns) if selects(s, pod)]

    def _pod_changed(self, pod: Obj) -> None:
        for k in self._service_keys(pod):
            self.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _md(old).get("resourceVersion") == _md(new).get("resourceVersion") and old is not new:
            return
        for k in set(self._service_keys(old)) | set(self._service_keys(new)):
            self.enqueue(k)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._pod_changed(tombstone_object(obj))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        """A node's zone changed: every Service with a pod on it is re-synced."""
        if (_md(old).get("labels") or {}).get(ZONE_LABEL) == (_md(new).get("labels") or {}).get(ZONE_LABEL):
            return
        node = _md(new).get("name")
        for pod in self.pods.lister().list():
            if (pod.get("spec") or {}).get("nodeName") == node:
                self._pod_changed(pod)

    # -- sync -------------------------------------------------------------------------------------
    def _zones(self) -> dict[str, str]:
        out = {}
        for n in self.nodes.lister().list():
            zone = (_md(n).get("labels") or {}).get(ZONE_LABEL)
            if zone:
                out[str(_md(n).get("name"))] = str(zone)
        return out

    async def sync(self, key: ObjectKey) -> None:
        ns, name = split_key(key)
        svc = self.services.lister().get_by_key(key)
        if svc is None:
            self.tracker.forget(key)
            return  # the garbage collector removes the slices with their owner
        slices = [s for s in self.slices.indexer.by_index(BY_SERVICE, name)
                  if _md(s).get("namespace") == ns and _slice_service_keys(s)]
        if not managed_service(svc):
            return  # e.g. default/kubernetes: its slices are written out of band (the API server)
        if self.tracker.stale(key, {_slice_name(s): s for s in slices}):
            raise Requeue(after=STALE_RETRY, reason="slice cache behind our writes")
        pods = tuple(p for p in self.pods.lister().list(ns) if selects(svc, p))
        plan = reconcile(Observed(svc, pods, tuple(slices), self._zones(), self.max_per_slice))
        if plan.empty:
            return
        await self._apply(key, ns, plan, trigger_time(svc, pods))

    async def _apply(self, key: str, ns: str | None, plan: Plan, stamp: str | None) -> None:
        written: dict[str, int | None] = {}
        try:
            for name in plan.delete:
                try:
                    await self.client.delete(ENDPOINTSLICES, name, ns)
                except NotFound:
                    pass
                written[name] = None
                self.writes += 1
            for obj in (*plan.update, *plan.create):
                body = _with_trigger_time(obj, stamp)
                if _md(obj).get("name"):
                    stored = await self.client.update(ENDPOINTSLICES, body, ns)
                else:
                    stored = await self.client.create(ENDPOINTSLICES, body, ns)
                written[_slice_name(stored)] = _rv(_md(stored).get("resourceVersion"))
                self.writes += 1
        finally:
            self.tracker.expect(key, written)


def _with_trigger_time(obj: Obj, stamp: str | None) -> Obj:
    md = dict(_md(obj))
    annotations = dict(md.get("annotations") or {})
    if stamp:
        annotations[TRIGGER_TIME_ANNOTATION] = stamp
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    return {**obj, "metadata": md}


def new(ctx: ControllerContext) -> EndpointSliceController:
    return EndpointSliceController(
        ctx.client, factory=ctx.factory, clock=ctx.clock,
        workers=int(ctx.options.get("concurrent_service_endpoint_syncs", 5)),
        max_endpoints_per_slice=int(ctx.options.get("max_endpoints_per_slice", MAX_ENDPOINTS_PER_SLICE)))
