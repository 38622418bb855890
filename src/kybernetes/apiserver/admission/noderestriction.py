"""NodeRestriction: what a kubelet may write, judged by the object's contents.

The Node authorizer (``authz/node.py``) decides *which* objects a kubelet may touch, from the
URL and its graph of pods; this plugin, as upstream's ``plugin/pkg/admission/noderestriction``,
checks *what* it writes, from the request body and the stored object. Both are needed: the
authorizer only says "no opinion" for a node, so an RBAC binding that grants ``system:nodes``
more (or a graph a moment behind the store) would otherwise let a kubelet through. It applies
only to users ``system:node:<name>`` in group ``system:nodes`` (a user ``system:node:`` with no
name is refused everything):

* **pods**: a node creates only mirror pods (annotation ``kubernetes.io/config.mirror``) bound to
  itself, with exactly one owner reference: its own Node (``v1``, matching UID, ``controller:
  true``, not ``blockOwnerDeletion``), and referencing no ServiceAccount, Secret, ConfigMap,
  PersistentVolumeClaim or ClusterTrustBundle (the same references ``authz.node.pod_references``
  turns into read access, so a mirror pod can never widen what its node may read; a generic
  ephemeral volume names a claim, so it counts as one here, which upstream leaves out). It
  deletes and evicts only pods bound to itself, updates ``pods/status`` only of those and
  without changing labels or resource-claim statuses, and never updates a pod otherwise or
  touches another pod subresource.
* **nodes**: only its own Node (any verb, any subresource). On create no ``spec.configSource``
  and no forbidden labels; on update no new ``spec.configSource``, no change to ``spec.taints``
  and no forbidden label added, changed or removed. Forbidden labels: ``node-restriction.
  kubernetes.io/`` (and sub-domains), and any other ``kubernetes.io`` / ``k8s.io`` label except
  the ones kubelets own (:func:`is_kubelet_label`).
* **persistentvolumeclaims**: only ``status`` updates that change nothing but
  ``status.capacity``, ``status.conditions`` and the allocated-resources fields.
* **leases**: only in ``kube-node-lease`` and only the one named after the node.
* **TokenRequests** (``serviceaccounts/token``) are served outside the chain; ``apiserver/tokens.py``
  asks :func:`token_request_problem`: only tokens bound to a pod (with its UID) on this node.

Refusals are 403 with upstream's wording (``pods "x" is forbidden: node "a" can only delete pods
with spec.nodeName set to itself``). Every decision is a pure ``*_problem`` function returning
the message or None; the plugin only reads the stored objects they need.

As upstream, the plugin runs in the mutating phase, right after ServiceAccount (so a mirror pod
with a secret volume hears ServiceAccount's "a mirror pod may not reference secrets" first): it
judges the object as the client sent it, before strategies or webhooks touch it. The eviction
handler (``apiserver/eviction.py``) does not call the chain for ``pods/eviction`` itself; a
node's eviction is still held to its own pods, because the status write and delete it makes
come through here as the node (the refusal then reads "can only update pod status ...").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..authz.node import pod_references
from .chain import CREATE, DELETE, UPDATE, Attributes, Plugin, forbidden

if TYPE_CHECKING:
    from ..rest import ApiStore

Obj = dict[str, Any]

NAME = "NodeRestriction"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"
MIRROR = "kubernetes.io/config.mirror"
NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"
#: Label keys a kubelet may set on its own Node (upstream ``k8s.io/kubelet/pkg/apis``).
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
})
#: Label namespaces (and their sub-domains) a kubelet may use freely.
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


# ------------------------------------------------------------------------------------------
# who
def node_identity(user: Mapping[str, Any]) -> tuple[str, bool]:
    """(node name, is a node) for a UserInfo dict, as upstream's default node identifier."""
    name = str(user.get("username") or user.get("name") or "")
    if not name.startswith(NODE_PREFIX) or NODES_GROUP not in (user.get("groups") or ()):
        return "", False
    return name[len(NODE_PREFIX):], True


def node_name_of(user: Mapping[str, Any]) -> str | None:
    """The node a user is ("" for a node whose name cannot be told), or None for anybody else."""
    name, is_node = node_identity(user)
    return name if is_node else None


# ------------------------------------------------------------------------------------------
# labels
def label_namespace(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _in_namespace(ns: str, domain: str) -> bool:
    return ns == domain or ns.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    """Whether ``key`` is one of the labels kubelets own."""
    if key in KUBELET_LABELS:
        return True
    ns = label_namespace(key)
    return any(_in_namespace(ns, allowed) for allowed in KUBELET_LABEL_NAMESPACES)


def is_kubernetes_label(key: str) -> bool:
    ns = label_namespace(key)
    return _in_namespace(ns, "kubernetes.io") or _in_namespace(ns, "k8s.io")


def kubelet_may_set(key: str) -> bool:
    """Whether a node may add, change or remove label ``key`` on its own Node."""
    if _in_namespace(label_namespace(key), NODE_RESTRICTION_NAMESPACE):
        return False
    return not is_kubernetes_label(key) or is_kubelet_label(key)


def changed_labels(old: Mapping[str, str] | None, new: Mapping[str, str] | None) -> list[str]:
    """Label keys added, removed or given another value (sorted)."""
    a, b = old or {}, new or {}
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k] != b[k])


def forbidden_labels(old: Mapping[str, str] | None, new: Mapping[str, str] | None) -> list[str]:
    """The changed label keys a node may not touch (sorted)."""
    return [k for k in changed_labels(old, new) if not kubelet_may_set(k)]


def _labels(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _spec(obj: Mapping[str, Any] | None) -> Obj:
    return dict((obj or {}).get("spec") or {})


# ------------------------------------------------------------------------------------------
# pods
def mirror_owner_problem(node: str, pod: Obj) -> str | None:
    """The annotation, binding and owner-reference rules for a pod node ``node`` creates."""
    md = pod.get("metadata") or {}
    if MIRROR not in (md.get("annotations") or {}):
        return f'pod does not have "{MIRROR}" annotation, node "{node}" can only create mirror pods'
    if _spec(pod).get("nodeName") != node:
        return f'node "{node}" can only create pods with spec.nodeName set to itself'
    owners = md.get("ownerReferences") or []
    if len(owners) > 1:
        return f'node "{node}" can only create pods with a single owner reference set to itself'
    if not owners:
        return f'node "{node}" can only create pods with an owner reference set to itself'
    owner = owners[0] or {}
    if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
        return f'node "{node}" can only create pods with an owner reference set to itself'
    if owner.get("controller") is not True:
        return f'node "{node}" can only create pods with a controller owner reference set to itself'
    if owner.get("blockOwnerDeletion") is True:
        return f'node "{node}" must not set blockOwnerDeletion on an owner reference'
    return None


def owner_uid_problem(node: str, owner_uid: str, node_uid: str) -> str | None:
    """The owner reference must carry the stored Node's UID (upstream's wording, order kept)."""
    if owner_uid != node_uid:
        return f"node {node} UID mismatch: expected {owner_uid} got {node_uid}"
    return None


def _references_cluster_trust_bundle(pod: Obj) -> bool:
    for v in _spec(pod).get("volumes") or []:
        for src in ((v or {}).get("projected") or {}).get("sources") or []:
            if (src or {}).get("clusterTrustBundle") is not None:
                return True
    return False


def mirror_references_problem(node: str, pod: Obj) -> str | None:
    """A mirror pod may reference no other API object (checked in upstream's order)."""
    kinds = {kind for kind, _ns, _name in pod_references(pod)}
    if "serviceaccount" in kinds:
        return f'node "{node}" can not create pods that reference a service account'
    if "secret" in kinds:
        return f'node "{node}" can not create pods that reference secrets'
    if "configmap" in kinds:
        return f'node "{node}" can not create pods that reference configmaps'
    if _references_cluster_trust_bundle(pod):
        return f'node "{node}" can not create pods that reference clustertrustbundles'
    if "pvc" in kinds:
        return f'node "{node}" can not create pods that reference persistentvolumeclaims'
    return None


def mirror_pod_problem(node: str, pod: Obj, node_uid: str | None = None) -> str | None:
    """Why node ``node`` may not create ``pod``, or None. ``node_uid``: the stored Node's UID
    (None: not checked; the plugin answers 404 itself when the Node does not exist)."""
    problem = mirror_owner_problem(node, pod)
    if problem is None and node_uid is not None:
        owner = ((pod.get("metadata") or {}).get("ownerReferences") or [{}])[0] or {}
        problem = owner_uid_problem(node, str(owner.get("uid") or ""), node_uid)
    return problem or mirror_references_problem(node, pod)


def pod_delete_problem(node: str, existing: Obj) -> str | None:
    if _spec(existing).get("nodeName") != node:
        return f'node "{node}" can only delete pods with spec.nodeName set to itself'
    return None


def _claim_statuses(pod: Obj | None) -> list[tuple[Any, Any]]:
    return [((s or {}).get("name"), (s or {}).get("resourceClaimName"))
            for s in ((pod or {}).get("status") or {}).get("resourceClaimStatuses") or []]


def pod_status_problem(node: str, old: Obj, new: Obj) -> str | None:
    """A status update of a pod bound to the node, changing neither labels nor claim statuses."""
    if _spec(old).get("nodeName") != node:
        return f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
    if _labels(old) != _labels(new):
        return f'node "{node}" cannot update labels through pod status'
    if _claim_statuses(old) != _claim_statuses(new):
        return f'node "{node}" cannot update resource claim statues'
    return None


def pod_eviction_problem(node: str, existing: Obj) -> str | None:
    if _spec(existing).get("nodeName") != node:
        return f"node {node} can only evict pods with spec.nodeName set to itself"
    return None


# ------------------------------------------------------------------------------------------
# nodes
def node_problem(node: str, operation: str, name: str, old: Obj | None, new: Obj | None) -> str | None:
    """Why node ``node`` may not write Node ``name`` (``old``: stored; ``new``: proposed)."""
    if name != node:
        return f'node "{node}" is not allowed to modify node "{name}"'
    if operation == CREATE and new is not None:
        if _spec(new).get("configSource") is not None:
            return f'node "{node}" is not allowed to create pods with a non-nil configSource'
        bad = forbidden_labels(None, _labels(new))
        if bad:
            return f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}'
    if operation == UPDATE and new is not None:
        source = _spec(new).get("configSource")
        if source is not None and source != _spec(old).get("configSource"):
            return f'node "{node}" is not allowed to update configSource to a new non-nil configSource'
        if (_spec(new).get("taints") or []) != (_spec(old).get("taints") or []):
            return f'node "{node}" is not allowed to modify taints'
        bad = forbidden_labels(_labels(old), _labels(new))
        if bad:
            return f'is not allowed to modify labels: {", ".join(bad)}'
    return None


# ------------------------------------------------------------------------------------------
# persistent volume claims, leases, tokens
_PVC_STATUS_NODE_FIELDS = ("capacity", "conditions", "allocatedResources", "allocatedResourceStatuses")


def _pruned(value: Any) -> Any:
    """``value`` without empty maps, lists and nulls (upstream compares semantically)."""
    if isinstance(value, Mapping):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _pvc_comparable(pvc: Obj) -> Obj:
    out = {k: v for k, v in pvc.items() if k not in ("metadata", "status")}
    out["metadata"] = {k: v for k, v in (pvc.get("metadata") or {}).items()
                       if k not in ("resourceVersion", "managedFields")}
    out["status"] = {k: v for k, v in (pvc.get("status") or {}).items() if k not in _PVC_STATUS_NODE_FIELDS}
    return _pruned(out)  # type: ignore[no-any-return]


def _diff_paths(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff_paths(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [prefix]


def pvc_status_problem(node: str, old: Obj, new: Obj) -> str | None:
    """A node's PVC status update may change only capacity, conditions and allocations."""
    a, b = _pvc_comparable(old), _pvc_comparable(new)
    if a != b:
        return (f'node "{node}" is not allowed to update fields other than status.quantity and '
                f'status.conditions: {", ".join(_diff_paths(a, b))}')
    return None


def lease_problem(node: str, namespace: str, name: str) -> str | None:
    if namespace != NODE_LEASE_NAMESPACE:
        return f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
    if name != node:
        return "can only access node lease with the same name as the requesting node"
    return None


def token_request_problem(node: str, ref: Mapping[str, Any] | None, pod: Obj | None) -> str | None:
    """Why node ``node`` may not get a token bound to ``ref`` (the TokenRequest's
    ``boundObjectRef``); ``pod``: the stored pod it names (looked up only for a Pod reference
    with a name and UID; a missing pod is the caller's 404)."""
    if not node:
        return f'could not determine node from user "{NODE_PREFIX}"'
    r = ref or {}
    if not ref or r.get("apiVersion") != "v1" or r.get("kind") != "Pod" or not r.get("name"):
        return "node requested token not bound to a pod"
    if not r.get("uid"):
        return "node requested token with a pod binding without a uid"
    if pod is None:
        return "node requested token bound to a pod scheduled on a different node"
    pod_uid = (pod.get("metadata") or {}).get("uid")
    if r["uid"] != pod_uid:
        return (f"the UID in the bound object reference ({r['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated")
    if _spec(pod).get("nodeName") != node:
        return "node requested token bound to a pod scheduled on a different node"
    return None


def token_request_needs_pod(ref: Mapping[str, Any] | None) -> bool:
    """Whether :func:`token_request_problem` needs the stored pod to decide."""
    r = ref or {}
    return bool(r.get("apiVersion") == "v1" and r.get("kind") == "Pod" and r.get("name") and r.get("uid"))


# ------------------------------------------------------------------------------------------
# the plugin
class NodeRestriction(Plugin):
    NAME = NAME
    operations = frozenset({CREATE, UPDATE, DELETE})
    resources = frozenset({("", "pods"), ("", "nodes"), ("", "persistentvolumeclaims"),
                           ("coordination.k8s.io", "leases")})
    subresources = None
    mutating = True   # upstream's plugin is a mutation-phase one: it sees the object as sent

    def __init__(self, api: "ApiStore") -> None:
        self.api = api

    async def admit(self, attrs: Attributes) -> None:
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return
        if not node:
            raise forbidden(attrs, f'could not determine node from user "{attrs.user.get("username")}"')
        problem: str | None = None
        if attrs.is_("", "pods"):
            problem = await self._pod(node, attrs)
        elif attrs.is_("", "nodes"):
            problem = node_problem(node, attrs.operation, attrs.name, attrs.old, attrs.obj)
        elif attrs.is_("", "persistentvolumeclaims"):
            if attrs.subresource != "status":
                problem = "may only update PVC status"
            elif attrs.operation != UPDATE or attrs.old is None or attrs.obj is None:
                problem = f'unexpected operation "{attrs.operation}"'
            else:
                problem = pvc_status_problem(node, attrs.old, attrs.obj)
        elif attrs.is_("coordination.k8s.io", "leases"):
            problem = lease_problem(node, attrs.namespace, attrs.name)
        if problem:
            raise forbidden(attrs, problem)

    async def _pod(self, node: str, attrs: Attributes) -> str | None:
        op, sub = attrs.operation, attrs.subresource
        if sub == "":
            if op == CREATE:
                return await self._create_mirror(node, attrs)
            if op == DELETE:
                return pod_delete_problem(node, attrs.old) if attrs.old is not None else None
            return f'unexpected operation "{op}", node "{node}" can only create and delete mirror pods'
        if sub == "status":
            if op != UPDATE or attrs.old is None or attrs.obj is None:
                return f'unexpected operation "{op}"'
            return pod_status_problem(node, attrs.old, attrs.obj)
        if sub == "eviction":
            if op != CREATE:
                return f"unexpected operation {op}"
            name = attrs.name or str(((attrs.obj or {}).get("metadata") or {}).get("name") or "")
            if not name:
                return "could not determine pod from request data"
            return pod_eviction_problem(node, await self._get("pods", attrs.namespace, name))
        return f"unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed"

    async def _create_mirror(self, node: str, attrs: Attributes) -> str | None:
        pod = attrs.obj or {}
        problem = mirror_owner_problem(node, pod)
        if problem:
            return problem
        stored = await self._get("nodes", "", node)   # 404 when the node is not registered
        return mirror_pod_problem(node, pod, node_uid=str((stored.get("metadata") or {}).get("uid") or ""))

    async def _get(self, plural: str, namespace: str, name: str) -> Obj:
        """The stored object (raises 404 as upstream's listers do when it is gone)."""
        info = self.api.registry.lookup("", "v1", plural)
        assert info is not None
        return await self.api.get(info, namespace, name)

