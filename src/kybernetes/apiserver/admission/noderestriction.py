"""NodeRestriction: what a kubelet may write, judged by the object's contents.

The Node authorizer (``authz/node.py``) decides *which* objects a node may touch; this plugin,
as upstream's ``plugin/pkg/admission/noderestriction``, checks *what* it writes. It applies only
to users ``system:node:<name>`` in ``system:nodes``:

* **Pods**: a node creates only mirror pods (annotation ``kubernetes.io/config.mirror``) bound
  to itself, which use no service account, no Secret / ConfigMap / PVC / projected /
  ephemeral volume, and are owned by nothing but its own Node; it deletes, updates the status
  of and evicts only pods bound to itself (a pod that is gone passes, so the answer is 404).
* **Nodes**: it creates and updates only its own Node; on update it may not change its taints,
  and it may never set, change or remove ``node-restriction.kubernetes.io/`` labels nor
  ``kubernetes.io`` / ``k8s.io`` labels other than the ones kubelets own (hostname, arch, os,
  instance type, zone and region, ``kubelet.kubernetes.io/*``, ``node.kubernetes.io/*``).
* **Leases** in ``kube-node-lease``: only its own (name = node name).
* **TokenRequests** (``serviceaccounts/token``, checked in ``apiserver/tokens.py`` with
  ``token_request_problem``): only bound to a pod on this node. Evictions are the Node
  authorizer's (pods bound to the node).

Messages follow upstream's wording (``pod "x" is forbidden: node "a" can only delete pods with
spec.nodeName set to itself``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chain import CREATE, DELETE, UPDATE, Attributes, Plugin, forbidden

if TYPE_CHECKING:
    from ..rest import ApiStore

Obj = dict[str, Any]

NAME = "NodeRestriction"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
MIRROR = "kubernetes.io/config.mirror"
RESTRICTED_PREFIX = "node-restriction.kubernetes.io/"
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
FORBIDDEN_VOLUME_SOURCES = ("secret", "configMap", "persistentVolumeClaim", "projected", "ephemeral")


def node_name_of(user: Obj) -> str | None:
    """The node a user is, or None for anybody else."""
    name = str(user.get("username") or "")
    if name.startswith(NODE_PREFIX) and NODES_GROUP in (user.get("groups") or []) and len(name) > len(NODE_PREFIX):
        return name[len(NODE_PREFIX):]
    return None


def _label_namespace(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def kubelet_may_set(key: str) -> bool:
    """Whether a node may set label ``key`` on itself (upstream's allowed kubelet labels)."""
    if key.startswith(RESTRICTED_PREFIX):
        return False
    ns = _label_namespace(key)
    if not (ns == "kubernetes.io" or ns.endswith(".kubernetes.io") or ns == "k8s.io" or ns.endswith(".k8s.io")):
        return True
    if key in KUBELET_LABELS:
        return True
    return any(ns == allowed or ns.endswith("." + allowed) for allowed in KUBELET_LABEL_NAMESPACES)


def changed_labels(old: Obj | None, new: Obj) -> list[str]:
    """Label keys added, removed or given another value by ``new`` (sorted)."""
    a = ((old or {}).get("metadata") or {}).get("labels") or {}
    b = (new.get("metadata") or {}).get("labels") or {}
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def mirror_pod_problem(node: str, pod: Obj) -> str | None:
    """Why node ``node`` may not create ``pod``, or None (upstream's wording)."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if MIRROR not in (md.get("annotations") or {}):
        return f'pod does not have "{MIRROR}" annotation, node "{node}" can only create mirror pods'
    if spec.get("nodeName") != node:
        return f'node "{node}" can only create pods with spec.nodeName set to itself'
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        return f'node "{node}" can not create pods that reference a service account'
    for v in spec.get("volumes") or []:
        for source in FORBIDDEN_VOLUME_SOURCES:
            if (v or {}).get(source) is not None:
                kind = {"configMap": "configmaps", "persistentVolumeClaim": "persistentvolumeclaims",
                        "secret": "secrets", "projected": "projected volumes",
                        "ephemeral": "ephemeral volumes"}[source]
                return f'node "{node}" can not create pods that reference {kind}'
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) + (spec.get("ephemeralContainers") or []):
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {})
            if ref.get("secretKeyRef") is not None:
                return f'node "{node}" can not create pods that reference secrets'
            if ref.get("configMapKeyRef") is not None:
                return f'node "{node}" can not create pods that reference configmaps'
        for src in c.get("envFrom") or []:
            if src.get("secretRef") is not None:
                return f'node "{node}" can not create pods that reference secrets'
            if src.get("configMapRef") is not None:
                return f'node "{node}" can not create pods that reference configmaps'
    owners = md.get("ownerReferences") or []
    if len(owners) > 1:
        return f'node "{node}" can only create pods with a single owner reference set to itself'
    if owners:
        o = owners[0]
        if o.get("apiVersion") != "v1" or o.get("kind") != "Node" or o.get("name") != node:
            return f'node "{node}" can only create pods with an owner reference set to itself'
        if o.get("blockOwnerDeletion"):
            return f'node "{node}" can only create pods with an owner reference that does not block deletion'
    return None


def token_request_problem(node: str, bound_kind: str | None, pod_node: str | None) -> str | None:
    """Why node ``node`` may not have a token bound to ``bound_kind`` (a pod on ``pod_node``)."""
    if bound_kind != "Pod":
        return f'node "{node}" can only create tokens with a bound object reference to a pod'
    if pod_node != node:
        return f'node "{node}" can only create tokens for pods scheduled on itself'
    return None


def node_update_problem(node: str, old: Obj | None, new: Obj) -> str | None:
    """Why node ``node`` may not write Node ``new`` (``old``: the stored one on update)."""
    name = (new.get("metadata") or {}).get("name")
    if name != node:
        return f'node "{node}" is not allowed to modify node "{name}"'
    if old is not None and ((old.get("spec") or {}).get("taints") or []) != ((new.get("spec") or {}).get("taints") or []):
        return "node is not allowed to modify taints"
    bad = [k for k in changed_labels(old, new) if not kubelet_may_set(k)]
    if bad:
        restricted = [k for k in bad if k.startswith(RESTRICTED_PREFIX)]
        if restricted:
            return f"is not allowed to modify labels: {', '.join(restricted)}"
        return f"is not allowed to set the following labels: {', '.join(bad)}"
    return None


class NodeRestriction(Plugin):
    NAME = NAME
    operations = frozenset({CREATE, UPDATE, DELETE})
    resources = frozenset({("", "pods"), ("", "nodes"), ("coordination.k8s.io", "leases")})
    subresources = frozenset({"", "status"})
    validating = True

    def __init__(self, api: "ApiStore") -> None:
        self.api = api

    async def validate(self, attrs: Attributes) -> None:
        node = node_name_of(attrs.user)
        if node is None:
            return
        if attrs.is_("", "pods"):
            await self._pod(node, attrs)
        elif attrs.is_("", "nodes"):
            if attrs.operation in (CREATE, UPDATE) and attrs.obj is not None:
                problem = node_update_problem(node, attrs.old if attrs.operation == UPDATE else None, attrs.obj)
                if problem:
                    raise forbidden(attrs, problem if problem.startswith("node") else f'node "{node}" {problem}')
        elif attrs.is_("coordination.k8s.io", "leases"):
            if attrs.operation == CREATE and attrs.namespace == "kube-node-lease" and attrs.name != node:
                raise forbidden(attrs, "can only access node lease with the same name as the requesting node")

    async def _pod(self, node: str, attrs: Attributes) -> None:
        if attrs.operation == CREATE and attrs.subresource == "":
            problem = mirror_pod_problem(node, attrs.obj or {})
            if problem:
                raise forbidden(attrs, problem)
            return
        existing = attrs.old
        if existing is None:
            return  # gone: the request ends in 404
        if (existing.get("spec") or {}).get("nodeName") == node:
            return
        if attrs.operation == DELETE:
            raise forbidden(attrs, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        raise forbidden(attrs, f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
