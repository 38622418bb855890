"""What the plugins look at: ``PodInfo`` (a pod parsed once), ``NodeInfo`` (a node plus the pods
on it, their summed requests and host ports, kept up to date by ``add_pod``/``remove_pod``) and
``Snapshot`` (all NodeInfos, frozen for one scheduling cycle).

Pods and nodes stay the plain JSON dicts the API serves; these classes only cache what the hot
paths read (quantities parsed to integers, selectors compiled), as upstream's
``framework.PodInfo``/``NodeInfo`` do.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kybernetes.api import labels as lbl
from kybernetes.api.errors import StatusError
from kybernetes.api.quantity import int_value, milli_value

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0
DEFAULT_MILLI_CPU_REQUEST = 100  # "non-zero" requests used for scoring pods that set none
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"

_generation = itertools.count(1)


def next_generation() -> int:
    return next(_generation)


@functools.lru_cache(maxsize=8192)
def _quantity(name: str, q: str | float) -> int:
    """One resource quantity as an integer (CPU in millicores), parsed once per distinct string."""
    return milli_value(q) if name == CPU else int_value(q)


class Resource:
    """Integer resource amounts: CPU in millicores, bytes for memory/storage, counts otherwise."""

    __slots__ = ("allowed_pods", "ephemeral_storage", "memory", "milli_cpu", "scalar")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0,
                 allowed_pods: int = 0, scalar: dict[str, int] | None = None) -> None:
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.allowed_pods = allowed_pods
        self.scalar: dict[str, int] = scalar if scalar is not None else {}

    @classmethod
    def from_list(cls, resources: Mapping[str, Any] | None) -> Resource:
        r = cls()
        for name, q in (resources or {}).items():
            r.set(name, _quantity(name, q))
        return r

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pods
        return self.scalar.get(name, 0)

    def set(self, name: str, value: int) -> None:
        if name == CPU:
            self.milli_cpu = value
        elif name == MEMORY:
            self.memory = value
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage = value
        elif name == PODS:
            self.allowed_pods = value
        else:
            self.scalar[name] = value

    def names(self) -> list[str]:
        out = [n for n, v in ((CPU, self.milli_cpu), (MEMORY, self.memory),
                              (EPHEMERAL_STORAGE, self.ephemeral_storage)) if v]
        return out + [n for n, v in self.scalar.items() if v]

    def add(self, other: Resource, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        self.allowed_pods += sign * other.allowed_pods
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def maximize(self, other: Resource) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for k, v in other.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage
                    or any(self.scalar.values()))

    def clone(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pods,
                        dict(self.scalar))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resource):
            return NotImplemented
        own = {k: v for k, v in self.scalar.items() if v}
        theirs = {k: v for k, v in other.scalar.items() if v}
        return (self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pods, own) == (
            other.milli_cpu, other.memory, other.ephemeral_storage, other.allowed_pods, theirs)

    def __repr__(self) -> str:
        return (f"Resource(cpu={self.milli_cpu}m, memory={self.memory}, "
                f"ephemeral={self.ephemeral_storage}, pods={self.allowed_pods}, {self.scalar})")


# --------------------------------------------------------------------------------------------
# Pod requests (upstream resourcehelper.PodRequests, 1.32 semantics)

def _container_requests(c: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((c.get("resources") or {}).get("requests")) or {}


def compute_pod_requests(pod: Mapping[str, Any]) -> tuple[Resource, int, int]:
    """(requests, non-zero CPU, non-zero memory) of a pod.

    Requests are the sum over containers, raised to the largest init container (sidecar init
    containers, ``restartPolicy: Always``, keep running and so add up), plus ``spec.overhead``.
    The non-zero variants count a container without a CPU/memory request as 100m/200Mi.
    """
    spec = pod.get("spec") or {}
    total, nz_cpu, nz_mem = Resource(), 0, 0
    for c in spec.get("containers") or []:
        reqs = _container_requests(c)
        r = Resource.from_list(reqs)
        total.add(r)
        nz_cpu += r.milli_cpu if CPU in reqs else DEFAULT_MILLI_CPU_REQUEST
        nz_mem += r.memory if MEMORY in reqs else DEFAULT_MEMORY_REQUEST
    sidecars, init_max = Resource(), Resource()
    sidecar_cpu = sidecar_mem = init_cpu = init_mem = 0
    for c in spec.get("initContainers") or []:
        reqs = _container_requests(c)
        r = Resource.from_list(reqs)
        c_cpu = r.milli_cpu if CPU in reqs else DEFAULT_MILLI_CPU_REQUEST
        c_mem = r.memory if MEMORY in reqs else DEFAULT_MEMORY_REQUEST
        if c.get("restartPolicy") == "Always":
            total.add(r)
            sidecars.add(r)
            nz_cpu, nz_mem = nz_cpu + c_cpu, nz_mem + c_mem
            sidecar_cpu, sidecar_mem = sidecar_cpu + c_cpu, sidecar_mem + c_mem
            init_max.maximize(sidecars)
            init_cpu, init_mem = max(init_cpu, sidecar_cpu), max(init_mem, sidecar_mem)
        else:
            r.add(sidecars)
            init_max.maximize(r)
            init_cpu, init_mem = max(init_cpu, c_cpu + sidecar_cpu), max(init_mem, c_mem + sidecar_mem)
    total.maximize(init_max)
    nz_cpu, nz_mem = max(nz_cpu, init_cpu), max(nz_mem, init_mem)
    overhead = spec.get("overhead")
    if overhead:
        o = Resource.from_list(overhead)
        total.add(o)
        nz_cpu += o.milli_cpu
        nz_mem += o.memory
    return total, nz_cpu, nz_mem


# --------------------------------------------------------------------------------------------
# Affinity terms

@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A parsed PodAffinityTerm: which pods (namespaces + selector) in which topology domain."""

    selector: lbl.Selector
    topology_key: str
    namespaces: frozenset[str]
    namespace_selector: lbl.Selector  # NOTHING unless the term sets namespaceSelector
    equalities: tuple[tuple[str, str], ...] | None = None  # the selector, if only k=v pairs

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]] | None = None) -> bool:
        if pod.namespace not in self.namespaces:
            ns_sel = self.namespace_selector
            if ns_sel.nothing:
                return False
            if not ns_sel.empty and not ns_sel.matches((ns_labels or {}).get(pod.namespace)):
                return False
        eq = self.equalities
        if eq is not None:
            labels = pod.labels
            for k, v in eq:
                if labels.get(k) != v:
                    return False
            return True
        return self.selector.matches(pod.labels)


@dataclass(frozen=True, slots=True)
class WeightedAffinityTerm:
    term: AffinityTerm
    weight: int


def _equalities(sel: lbl.Selector) -> tuple[tuple[str, str], ...] | None:
    if sel.nothing or not sel.requirements:
        return None
    out = []
    for r in sel.requirements:
        if r.operator not in (lbl.EQUALS, lbl.DOUBLE_EQUALS, lbl.IN) or len(r.values) != 1:
            return None
        out.append((r.key, r.values[0]))
    return tuple(out)


def parse_affinity_term(term: Mapping[str, Any], namespace: str) -> AffinityTerm:
    """Raises ``StatusError`` for an invalid label selector. Identical terms are shared, so
    per-cycle results can be memoised by identity."""
    return _parse_affinity_term_cached(json.dumps(term, sort_keys=True), namespace)


@functools.lru_cache(maxsize=4096)
def _parse_affinity_term_cached(term_json: str, namespace: str) -> AffinityTerm:
    term = json.loads(term_json)
    sel = lbl.selector_from_label_selector(term.get("labelSelector"))
    ns_sel_raw = term.get("namespaceSelector")
    ns_sel = lbl.NOTHING if ns_sel_raw is None else lbl.selector_from_label_selector(ns_sel_raw)
    namespaces = frozenset(term.get("namespaces") or ())
    if not namespaces and ns_sel_raw is None:
        namespaces = frozenset((namespace,))
    return AffinityTerm(sel, str(term.get("topologyKey", "")), namespaces, ns_sel, _equalities(sel))


# --------------------------------------------------------------------------------------------
# Node selectors (spec.nodeSelector + nodeAffinity)

_NODE_OPS = {"In": lbl.IN, "NotIn": lbl.NOT_IN, "Exists": lbl.EXISTS,
             "DoesNotExist": lbl.DOES_NOT_EXIST, "Gt": lbl.GREATER_THAN, "Lt": lbl.LESS_THAN}


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """ANDed requirements on node labels and fields; an empty or invalid term matches nothing."""

    requirements: tuple[lbl.Requirement, ...]
    field_requirements: tuple[lbl.Requirement, ...]  # only metadata.name is supported upstream
    valid: bool

    def matches(self, node_labels: Mapping[str, str], node_name: str) -> bool:
        if not self.valid:
            return False
        for r in self.requirements:
            if not r.matches(node_labels):
                return False
        fields = {"metadata.name": node_name}
        return all(r.matches(fields) for r in self.field_requirements)


def _requirement(expr: Mapping[str, Any], fields: bool) -> lbl.Requirement | None:
    op = _NODE_OPS.get(str(expr.get("operator", "")))
    key = str(expr.get("key", ""))
    values = tuple(str(v) for v in expr.get("values") or ())
    if op is None:
        return None
    if fields and (key != "metadata.name" or op not in (lbl.IN, lbl.NOT_IN) or len(values) != 1):
        return None
    if op in (lbl.IN, lbl.NOT_IN) and not values:
        return None
    if op in (lbl.EXISTS, lbl.DOES_NOT_EXIST) and values:
        return None
    if op in (lbl.GREATER_THAN, lbl.LESS_THAN) and (
            len(values) != 1 or not values[0].lstrip("-").isdigit()):
        return None
    return lbl.Requirement(key, op, values)


def parse_node_selector_term(term: Mapping[str, Any]) -> NodeSelectorTerm:
    exprs = term.get("matchExpressions") or []
    field_exprs = term.get("matchFields") or []
    reqs = [_requirement(e, False) for e in exprs]
    freqs = [_requirement(e, True) for e in field_exprs]
    valid = bool(reqs or freqs) and None not in reqs and None not in freqs
    return NodeSelectorTerm(tuple(r for r in reqs if r), tuple(r for r in freqs if r), valid)


@dataclass(frozen=True, slots=True)
class RequiredNodeAffinity:
    """``spec.nodeSelector`` AND (any of the required nodeAffinity terms)."""

    node_selector: tuple[tuple[str, str], ...]
    terms: tuple[NodeSelectorTerm, ...] | None  # None: no required node affinity

    def matches(self, node_labels: Mapping[str, str], node_name: str) -> bool:
        for k, v in self.node_selector:
            if node_labels.get(k) != v:
                return False
        if self.terms is None:
            return True
        return any(t.matches(node_labels, node_name) for t in self.terms)

    @property
    def empty(self) -> bool:
        return not self.node_selector and self.terms is None


def required_node_affinity(pod: Mapping[str, Any]) -> RequiredNodeAffinity:
    spec = pod.get("spec") or {}
    selector = tuple(sorted((str(k), str(v)) for k, v in (spec.get("nodeSelector") or {}).items()))
    na = ((spec.get("affinity") or {}).get("nodeAffinity")) or {}
    required = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None
    if required is not None:
        terms = tuple(parse_node_selector_term(t) for t in required.get("nodeSelectorTerms") or [])
    return RequiredNodeAffinity(selector, terms)


# --------------------------------------------------------------------------------------------
# PodInfo

def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _host_ports(spec: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    out = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            hp = p.get("hostPort") or 0
            if hp > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
    return tuple(out)


class PodInfo:
    """A pod with what scheduling reads from it parsed once."""

    __slots__ = (
        "has_affinity",
        "host_ports",
        "key",
        "labels",
        "name",
        "namespace",
        "node_name",
        "non0_cpu",
        "non0_mem",
        "parse_error",
        "pod",
        "preferred_affinity_terms",
        "preferred_anti_affinity_terms",
        "priority",
        "requests",
        "required_affinity_terms",
        "required_anti_affinity_terms",
        "start_time",
        "terminating",
        "tolerations",
    )

    def __init__(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.name: str = meta.get("name", "")
        self.namespace: str = meta.get("namespace", "")
        self.key = pod_key(pod)
        self.labels: dict[str, str] = meta.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        self.priority: int = int(spec.get("priority") or 0)
        self.requests, self.non0_cpu, self.non0_mem = compute_pod_requests(pod)
        self.host_ports = _host_ports(spec)
        self.tolerations: tuple[Obj, ...] = tuple(spec.get("tolerations") or ())
        self.terminating = bool(meta.get("deletionTimestamp"))
        self.start_time: str = ((pod.get("status") or {}).get("startTime")) or ""
        self.parse_error: str | None = None
        self.required_affinity_terms: tuple[AffinityTerm, ...] = ()
        self.required_anti_affinity_terms: tuple[AffinityTerm, ...] = ()
        self.preferred_affinity_terms: tuple[WeightedAffinityTerm, ...] = ()
        self.preferred_anti_affinity_terms: tuple[WeightedAffinityTerm, ...] = ()
        affinity = spec.get("affinity") or {}
        pa, paa = affinity.get("podAffinity"), affinity.get("podAntiAffinity")
        self.has_affinity = pa is not None or paa is not None
        if self.has_affinity:
            try:
                self._parse_pod_affinity(pa or {}, paa or {})
            except StatusError as e:
                self.parse_error = e.message

    def _parse_pod_affinity(self, pa: Obj, paa: Obj) -> None:
        ns = self.namespace
        req = "requiredDuringSchedulingIgnoredDuringExecution"
        pref = "preferredDuringSchedulingIgnoredDuringExecution"
        self.required_affinity_terms = tuple(parse_affinity_term(t, ns) for t in pa.get(req) or [])
        self.required_anti_affinity_terms = tuple(
            parse_affinity_term(t, ns) for t in paa.get(req) or [])
        self.preferred_affinity_terms = tuple(
            WeightedAffinityTerm(parse_affinity_term(t.get("podAffinityTerm") or {}, ns),
                                 int(t.get("weight") or 0)) for t in pa.get(pref) or [])
        self.preferred_anti_affinity_terms = tuple(
            WeightedAffinityTerm(parse_affinity_term(t.get("podAffinityTerm") or {}, ns),
                                 int(t.get("weight") or 0)) for t in paa.get(pref) or [])

    def __repr__(self) -> str:
        return f"PodInfo({self.namespace}/{self.name})"


# --------------------------------------------------------------------------------------------
# NodeInfo

class NodeInfo:
    """A node, the pods assigned to it and their aggregated requests and host ports.

    ``node`` is ``None`` for a placeholder that holds pods whose node the cache has not seen yet.
    Every change bumps ``generation`` so snapshots copy only what changed.
    """

    __slots__ = (
        "allocatable",
        "generation",
        "image_states",
        "labels",
        "name",
        "node",
        "non_zero_requested",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "requested",
        "taints",
        "unschedulable",
        "used_port_keys",
        "used_ports",
    )

    def __init__(self, node: Obj | None = None, pods: Iterable[PodInfo | Obj] = ()) -> None:
        self.node: Obj | None = None
        self.name = ""
        self.labels: dict[str, str] = {}
        self.taints: tuple[Obj, ...] = ()
        self.unschedulable = False
        self.allocatable = Resource()
        self.image_states: dict[str, int] = {}
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.pods: list[PodInfo] = []
        self.pods_with_affinity: list[PodInfo] = []
        self.pods_with_required_anti_affinity: list[PodInfo] = []
        self.used_ports: dict[tuple[str, str, int], int] = {}  # (ip, protocol, port) -> count
        self.used_port_keys: dict[tuple[str, int], int] = {}  # (protocol, port) -> count
        self.generation = next_generation()
        if node is not None:
            self.set_node(node)
        for p in pods:
            self.add_pod(p)

    def set_node(self, node: Obj) -> None:
        meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        self.node = node
        self.name = meta.get("name", "")
        self.labels = meta.get("labels") or {}
        self.taints = tuple(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = Resource.from_list(status.get("allocatable"))
        self.image_states = {}
        for image in status.get("images") or []:
            for name in image.get("names") or []:
                self.image_states[name] = int(image.get("sizeBytes") or 0)
        self.generation = next_generation()

    def remove_node(self) -> None:
        self.node = None
        self.generation = next_generation()

    def add_pod(self, pod: PodInfo | Obj) -> PodInfo:
        pi = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        self.pods.append(pi)
        if pi.has_affinity:
            self.pods_with_affinity.append(pi)
            if pi.required_anti_affinity_terms:
                self.pods_with_required_anti_affinity.append(pi)
        self._update(pi, 1)
        return pi

    def remove_pod(self, key: str) -> PodInfo | None:
        """Remove the pod with ``key`` (see ``pod_key``); returns it, or None if absent."""
        for i, pi in enumerate(self.pods):
            if pi.key == key:
                break
        else:
            return None
        del self.pods[i]
        if pi.has_affinity:
            self.pods_with_affinity = [p for p in self.pods_with_affinity if p.key != key]
            self.pods_with_required_anti_affinity = [
                p for p in self.pods_with_required_anti_affinity if p.key != key]
        self._update(pi, -1)
        return pi

    def _update(self, pi: PodInfo, sign: int) -> None:
        self.requested.add(pi.requests, sign)
        self.non_zero_requested.milli_cpu += sign * pi.non0_cpu
        self.non_zero_requested.memory += sign * pi.non0_mem
        for ip, proto, port in pi.host_ports:
            for table, k in ((self.used_ports, (ip, proto, port)),
                             (self.used_port_keys, (proto, port))):
                n = table.get(k, 0) + sign  # type: ignore[call-overload]
                if n > 0:
                    table[k] = n  # type: ignore[index]
                else:
                    table.pop(k, None)  # type: ignore[call-overload]
        self.generation = next_generation()

    def clone(self) -> NodeInfo:
        c = NodeInfo.__new__(NodeInfo)
        c.node, c.name, c.labels, c.taints = self.node, self.name, self.labels, self.taints
        c.unschedulable, c.image_states = self.unschedulable, self.image_states
        c.allocatable = self.allocatable.clone()
        c.requested = self.requested.clone()
        c.non_zero_requested = self.non_zero_requested.clone()
        c.pods = list(self.pods)
        c.pods_with_affinity = list(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = list(self.pods_with_required_anti_affinity)
        c.used_ports = dict(self.used_ports)
        c.used_port_keys = dict(self.used_port_keys)
        c.generation = self.generation
        return c

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={[p.name for p in self.pods]})"


class Snapshot:
    """All NodeInfos (with a node) for one scheduling cycle, in a stable order."""

    def __init__(self, node_infos: Iterable[NodeInfo] = (),
                 namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
                 pdbs: Iterable[Obj] = ()) -> None:
        self.node_infos: list[NodeInfo] = []
        self.by_name: dict[str, NodeInfo] = {}
        self.namespace_labels: Mapping[str, Mapping[str, str]] = namespace_labels or {}
        self.pdbs: list[Obj] = list(pdbs)  # PodDisruptionBudgets, for preemption
        self.generation = 0
        self.set_node_infos(list(node_infos))

    def set_node_infos(self, infos: list[NodeInfo]) -> None:
        self.node_infos = infos
        self.by_name = {ni.name: ni for ni in infos}
        self.refresh_lists()

    def refresh_lists(self) -> None:
        self.have_pods_with_affinity = [ni for ni in self.node_infos if ni.pods_with_affinity]
        self.have_pods_with_required_anti_affinity = [
            ni for ni in self.node_infos if ni.pods_with_required_anti_affinity]

    def get(self, name: str) -> NodeInfo | None:
        return self.by_name.get(name)

    def __len__(self) -> int:
        return len(self.node_infos)


def default_normalize_score(max_priority: int, reverse: bool, scores: list[int]) -> None:
    """Scale ``scores`` to [0, max_priority] by the highest one; ``reverse`` flips them
    (upstream ``helper.DefaultNormalizeScore``)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [max_priority] * len(scores)
        return
    for i, s in enumerate(scores):
        s = max_priority * s // highest
        scores[i] = max_priority - s if reverse else s


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Upstream ``Toleration.ToleratesTaint``: empty effect/key match any; Exists ignores value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerations_tolerate(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)
