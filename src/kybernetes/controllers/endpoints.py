"""The Endpoints controller: one core/v1 ``Endpoints`` per Service with a selector.

Shape (as upstream ``pkg/controller/endpoint``): Service, Pod and Endpoints events only map to
Service keys; ``sync(key)`` re-reads the Service, the pods its selector matches and the current
Endpoints from the listers and hands them to the pure ``reconcile``:

    pods       ``should_pod_be_in_endpoints``: not terminal, has an IP, not being deleted (kept
               while terminating only with ``publishNotReadyAddresses``)
    addresses  ready pods (or every pod with ``publishNotReadyAddresses``) go to ``addresses``, the
               others to ``notReadyAddresses``; ``hostname`` when the pod's ``subdomain`` names the
               Service; ``nodeName`` and a ``targetRef`` to the pod
    ports      each service port resolved per pod (``targetPort`` as a number, or as the name of a
               container port with the same protocol); a pod lacking a named port is left out of
               that port's subset; headless Services without ports get port-less subsets
    subsets    ``repack_subsets`` groups addresses by identical port sets, sorted

Services without a selector (e.g. ``default/kubernetes``, owned by the API server) and
ExternalName Services are left alone. When a Service is gone its Endpoints are deleted (only those
this controller wrote, recognised by the annotation below; hand-made ones stay). Writes
carry the ``endpoints.kubernetes.io/last-change-trigger-time`` annotation (the newest pod/Service
change among the inputs); an Endpoints object whose subsets and labels already match is not
rewritten.

The pod helpers (``find_port``, ``is_pod_ready``, ``should_set_hostname``, ...) are shared with the
EndpointSlice controller.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.labels import selector_from_set
from ..api.meta import parse_time
from ..client import Controller
from ..client.errors import NotFound
from ..client.keys import ObjectKey, key_of, split_key, tombstone_object
from ..client.resources import ENDPOINTS, PODS, SERVICES

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.keys import DeletedFinalStateUnknown
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "endpoints-controller"
ALIASES = ("endpoint",)

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
CLUSTER_IP_NONE = "None"


# ------------------------------------------------------------------------------------------------
# pod and service helpers (pure; shared with the EndpointSlice controller)
# ------------------------------------------------------------------------------------------------
def _md(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def is_headless(service: Mapping[str, Any]) -> bool:
    return _spec(service).get("clusterIP") == CLUSTER_IP_NONE


def managed_service(service: Mapping[str, Any]) -> bool:
    """Whether the endpoints controllers manage this Service (it has a selector, not ExternalName)."""
    spec = _spec(service)
    return spec.get("selector") is not None and spec.get("type") != "ExternalName"


def selects(service: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether the Service's selector (a plain label map) matches the pod, same namespace."""
    if _md(service).get("namespace") != _md(pod).get("namespace") or not managed_service(service):
        return False
    return selector_from_set(_spec(service).get("selector") or {}).matches(_md(pod).get("labels") or {})


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def is_pod_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_ipv4(pod: Mapping[str, Any]) -> str | None:
    """The pod's IPv4 address (from ``podIPs``, else ``podIP``), if any."""
    status = pod.get("status") or {}
    candidates = [p.get("ip") for p in status.get("podIPs") or () if isinstance(p, dict)]
    candidates.append(status.get("podIP"))
    for ip in candidates:
        if not ip:
            continue
        try:
            if ipaddress.ip_address(ip).version == 4:
                return str(ip)
        except ValueError:
            continue
    return None


def should_pod_be_in_endpoints(pod: Mapping[str, Any], include_terminating: bool) -> bool:
    """Upstream ``ShouldPodBeInEndpoints``: not terminal, has an address, and not being deleted
    (unless ``include_terminating``)."""
    if is_pod_terminal(pod) or pod_ipv4(pod) is None:
        return False
    return include_terminating or not _md(pod).get("deletionTimestamp")


def should_set_hostname(pod: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    """A pod's ``hostname`` is published when its ``subdomain`` names this Service."""
    spec = _spec(pod)
    return (bool(spec.get("hostname")) and spec.get("subdomain") == _md(service).get("name")
            and _md(pod).get("namespace") == _md(service).get("namespace"))


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """The pod port a service port targets: a number, or a named container port with the same
    protocol (sidecar init containers included); None when the pod has no such port."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = _spec(pod)
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def target_ref(pod: Mapping[str, Any]) -> Obj:
    md = _md(pod)
    return {"kind": "Pod", "namespace": md.get("namespace"), "name": md.get("name"), "uid": md.get("uid")}


def trigger_time(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> str | None:
    """The newest change among the inputs: the Service's creation, each pod's Ready transition
    (or creation). Upstream tracks the oldest unprocessed change; without per-pod memory the newest
    input change is the closest level-based equivalent."""
    best: tuple[float, str] | None = None

    def consider(value: str | None) -> None:
        nonlocal best
        t = parse_time(value)
        if t is not None and (best is None or t.timestamp() > best[0]):
            best = (t.timestamp(), str(value))

    consider(_md(service).get("creationTimestamp"))
    for pod in pods:
        ready = next((c for c in (pod.get("status") or {}).get("conditions") or ()
                      if c.get("type") == "Ready"), None)
        consider((ready or {}).get("lastTransitionTime") or _md(pod).get("creationTimestamp"))
    return None if best is None else best[1]


def service_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels for its endpoints objects, with the headless marker when headless."""
    labels = {k: v for k, v in (_md(service).get("labels") or {}).items() if k != HEADLESS_LABEL}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


# ------------------------------------------------------------------------------------------------
# subsets (pure)
# ------------------------------------------------------------------------------------------------
def endpoint_address(pod: Mapping[str, Any], service: Mapping[str, Any]) -> Obj:
    addr: Obj = {"ip": pod_ipv4(pod)}
    if should_set_hostname(pod, service):
        addr["hostname"] = _spec(pod)["hostname"]
    node = _spec(pod).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = target_ref(pod)
    return addr


def endpoint_port(service_port: Mapping[str, Any], number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _port_key(p: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
            str(p.get("appProtocol") or ""))


def _address_key(a: Mapping[str, Any]) -> tuple[tuple[int, ...], str, str]:
    try:
        ip: tuple[int, ...] = tuple(ipaddress.ip_address(a.get("ip") or "").packed)
    except ValueError:
        ip = ()
    ref = a.get("targetRef") or {}
    return (ip, str(ref.get("uid") or ""), str(a.get("hostname") or ""))


def repack_subsets(entries: Iterable[tuple[Obj, bool, Sequence[Obj]]]) -> list[Obj]:
    """Group (address, ready, ports) by identical port sets into sorted subsets.

    An address listed both ready and not ready in one subset counts as ready."""
    groups: dict[tuple[Any, ...], tuple[list[Obj], dict[Any, Obj], dict[Any, Obj]]] = {}
    for addr, ready, ports in entries:
        ports_sorted = sorted((dict(p) for p in ports), key=_port_key)
        gkey = tuple(_port_key(p) for p in ports_sorted)
        _, rdy, not_rdy = groups.setdefault(gkey, (ports_sorted, {}, {}))
        akey = _address_key(addr)
        (rdy if ready else not_rdy)[akey] = addr
    subsets = []
    for gkey in sorted(groups):
        ports, rdy, not_rdy = groups[gkey]
        subset: Obj = {}
        if rdy:
            subset["addresses"] = [rdy[k] for k in sorted(rdy)]
        nr = {k: v for k, v in not_rdy.items() if k not in rdy}
        if nr:
            subset["notReadyAddresses"] = [nr[k] for k in sorted(nr)]
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def compute_subsets(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The Endpoints subsets for ``service`` given candidate ``pods`` (already selected)."""
    publish = bool(_spec(service).get("publishNotReadyAddresses"))
    service_ports = list(_spec(service).get("ports") or ())
    entries: list[tuple[Obj, bool, Sequence[Obj]]] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish):
            continue
        addr = endpoint_address(pod, service)
        ready = publish or is_pod_ready(pod)
        if not service_ports:
            if is_headless(service):  # headless Services may have no ports
                entries.append((addr, ready, ()))
            continue
        for sp in service_ports:
            number = find_port(pod, sp)
            if number is not None:
                entries.append((addr, ready, (endpoint_port(sp, number),)))
    return repack_subsets(_merge_per_address(entries))


def _merge_per_address(entries: list[tuple[Obj, bool, Sequence[Obj]]]) -> list[tuple[Obj, bool, Sequence[Obj]]]:
    """One entry per (address, readiness) carrying all its resolved ports."""
    merged: dict[tuple[Any, ...], tuple[Obj, bool, list[Obj]]] = {}
    for addr, ready, ports in entries:
        k = (_address_key(addr), ready)
        _, _, acc = merged.setdefault(k, (addr, ready, []))
        acc.extend(ports)
    return [(a, r, p) for a, r, p in merged.values()]


def normalize_subsets(subsets: Iterable[Mapping[str, Any]] | None) -> list[Obj]:
    """Subsets in canonical order, so equal content compares equal whoever wrote it."""
    entries: list[tuple[Obj, bool, Sequence[Obj]]] = []
    for s in subsets or ():
        ports = [dict(p, protocol=p.get("protocol") or "TCP") for p in s.get("ports") or ()]
        entries += [(dict(a), True, ports) for a in s.get("addresses") or ()]
        entries += [(dict(a), False, ports) for a in s.get("notReadyAddresses") or ()]
    out = repack_subsets(entries)
    for s in out:  # a subset whose addresses list is empty after repacking is noise
        if not s.get("addresses") and not s.get("notReadyAddresses"):
            s.clear()
    return [s for s in out if s]


# ------------------------------------------------------------------------------------------------
# reconcile (pure)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observed:
    service: Obj
    pods: tuple[Obj, ...]           # pods the selector matches (any state)
    current: Obj | None             # the existing Endpoints, if any


@dataclass(frozen=True)
class Plan:
    create: Obj | None = None
    update: Obj | None = None


def reconcile(obs: Observed) -> Plan:
    """Decide whether to create or update the Service's Endpoints (nothing when already right)."""
    svc = obs.service
    subsets = compute_subsets(svc, obs.pods)
    labels = service_labels(svc)
    current = obs.current
    if current is not None and normalize_subsets(current.get("subsets")) == subsets \
            and (_md(current).get("labels") or {}) == labels:
        return Plan()
    md = _md(svc)
    annotations = dict((_md(current).get("annotations") or {}) if current is not None else {})
    stamp = trigger_time(svc, obs.pods)
    if stamp:
        annotations[TRIGGER_TIME_ANNOTATION] = stamp
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    new_md: Obj = {"name": md.get("name"), "namespace": md.get("namespace"), "labels": labels}
    if annotations:
        new_md["annotations"] = annotations
    if current is not None:
        new_md["resourceVersion"] = _md(current).get("resourceVersion")
    obj: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": new_md, "subsets": subsets}
    return Plan(update=obj) if current is not None else Plan(create=obj)


def orphaned_by_us(endpoints: Mapping[str, Any]) -> bool:
    """Whether Endpoints left without a Service were written by this controller (they carry the
    trigger-time annotation); hand-made Endpoints without a Service are left alone."""
    return TRIGGER_TIME_ANNOTATION in (_md(endpoints).get("annotations") or {})


# ------------------------------------------------------------------------------------------------
# the controller (I/O shell)
# ------------------------------------------------------------------------------------------------
class EndpointsController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 workers: int = 5) -> None:
        super().__init__(NAME, client, workers=workers, factory=factory)
        self.services = self.informer(SERVICES)
        self.endpoints = self.informer(ENDPOINTS)      # a deleted/edited Endpoints re-syncs its Service
        self.pods = self.informer(PODS, handle=False)
        self.pods.add_event_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)
        self.writes = 0

    # -- event handlers: map pods to the keys of the Services selecting them ---------------------
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

    # -- sync -------------------------------------------------------------------------------------
    async def sync(self, key: ObjectKey) -> None:
        ns, name = split_key(key)
        svc = self.services.lister().get_by_key(key)
        current = self.endpoints.lister().get_by_key(key)
        if svc is None:
            if current is not None and orphaned_by_us(current):
                await self._delete(ns, name)
            return
        if not managed_service(svc):
            return
        pods = tuple(p for p in self.pods.lister().list(ns) if selects(svc, p))
        plan = reconcile(Observed(svc, pods, current))
        if plan.create is not None:
            await self.client.create(ENDPOINTS, plan.create, ns)
            self.writes += 1
        elif plan.update is not None:
            await self.client.update(ENDPOINTS, plan.update, ns)
            self.writes += 1

    async def _delete(self, ns: str | None, name: str) -> None:
        try:
            await self.client.delete(ENDPOINTS, name, ns)
            self.writes += 1
        except NotFound:
            pass


def new(ctx: ControllerContext) -> EndpointsController:
    workers = int(ctx.options.get("concurrent_endpoint_syncs", 5))
    return EndpointsController(ctx.client, factory=ctx.factory, workers=workers)


