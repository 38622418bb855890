"""The Node authorizer: what a kubelet (``system:node:<name>`` in ``system:nodes``) may touch.

A kubelet may read only what the pods bound to its node need. :class:`NodeGraph` keeps, from
the pods and PersistentVolumeClaims the watch cache delivers, which Secrets, ConfigMaps, PVCs,
PVs and ServiceAccounts each node's pods reference (volumes, projected sources, env and envFrom,
imagePullSecrets, generic ephemeral volumes' claims, the pod's service account; a PV through
the ``spec.volumeName`` of a referenced claim). :class:`NodeAuthorizer` then decides as
upstream's Node authorizer (with ``AuthorizeNodeWithSelectors``):

* Secrets, ConfigMaps: get/list/watch of a named object referenced by one of its pods;
  PVCs and PVs: get of such an object; PVC status updates likewise;
* ServiceAccounts: ``create serviceaccounts/token`` for the service account of one of its pods;
* Nodes: read only its own Node; create any (the name is in the body); Leases: its own Lease
  in ``kube-node-lease``;
* Pods: get a pod bound to it; list/watch only with ``fieldSelector=spec.nodeName=<it>``;
  create/delete (mirror pods), status updates and evictions;
* everything else: the static ``system:node`` rules (services, endpoints, events, ...).

Where upstream leaves the rest to the NodeRestriction admission plugin, but the URL already
names the object, this authorizer refuses directly: updating, patching or deleting another
node (or its status), and deleting, evicting or updating the status of a pod not bound to it.
(What only the request body reveals — the node a created mirror pod is bound to, the name of a
created Node or Lease — is admission's to check.)

Reasons use upstream's wording (``no relationship found between node 'n1' and this object``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..authn import UserInfo
from .attributes import Attributes
from .bootstrap import NODE_RULES
from .policy import compile_rules, rules_allow
from .union import ALLOW_RESULT, NO_OPINION_RESULT, NO_OPINION, Result, RulesResult

Obj = dict[str, Any]
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"
Ref = tuple[str, str, str]          # (type, namespace, name); type in secret/configmap/pvc/serviceaccount

_SECRET_REF_VOLUMES = ("azureFile", "cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos", "csi")


def node_identity(user: UserInfo) -> tuple[str, bool]:
    """(node name, is a node) as upstream's default node identifier decides."""
    if not user.name.startswith(NODE_PREFIX) or NODES_GROUP not in user.groups:
        return "", False
    return user.name[len(NODE_PREFIX):], True


def pod_references(pod: Mapping[str, Any]) -> set[Ref]:
    """Every Secret, ConfigMap, PVC and ServiceAccount a pod uses (pure)."""
    md = pod.get("metadata") or {}
    ns = str(md.get("namespace") or "")
    spec = pod.get("spec") or {}
    refs: set[Ref] = set()

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            refs.add((kind, ns, name))

    add("serviceaccount", spec.get("serviceAccountName") or spec.get("serviceAccount"))
    for s in spec.get("imagePullSecrets") or []:
        add("secret", (s or {}).get("name"))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(group) or []:
            for e in c.get("env") or []:
                vf = (e or {}).get("valueFrom") or {}
                add("secret", (vf.get("secretKeyRef") or {}).get("name"))
                add("configmap", (vf.get("configMapKeyRef") or {}).get("name"))
            for ef in c.get("envFrom") or []:
                add("secret", ((ef or {}).get("secretRef") or {}).get("name"))
                add("configmap", ((ef or {}).get("configMapRef") or {}).get("name"))
    for v in spec.get("volumes") or []:
        if not isinstance(v, Mapping):
            continue
        add("secret", (v.get("secret") or {}).get("secretName"))
        add("configmap", (v.get("configMap") or {}).get("name"))
        add("pvc", (v.get("persistentVolumeClaim") or {}).get("claimName"))
        if v.get("ephemeral") is not None and v.get("name"):
            add("pvc", f"{md.get('name')}-{v['name']}")
        for src in (v.get("projected") or {}).get("sources") or []:
            add("secret", ((src or {}).get("secret") or {}).get("name"))
            add("configmap", ((src or {}).get("configMap") or {}).get("name"))
        for kind in _SECRET_REF_VOLUMES:
            vs = v.get(kind)
            if isinstance(vs, Mapping):
                add("secret", vs.get("secretName") or (vs.get("secretRef") or {}).get("name")
                    or (vs.get("nodePublishSecretRef") or {}).get("name"))
    return refs


class NodeGraph:
    """Which node may reach which object, kept current from pod and PVC changes."""

    def __init__(self) -> None:
        self.pod_node: dict[tuple[str, str], str] = {}          # (ns, pod) -> node
        self._pod_refs: dict[tuple[str, str], set[Ref]] = {}
        self.refs: dict[str, Counter[Ref]] = {}                  # node -> referenced objects (counted)
        self.claim_volume: dict[tuple[str, str], str] = {}      # (ns, pvc) -> PV name
        self.volume_claims: dict[str, set[tuple[str, str]]] = {}  # PV -> claims bound to it

    def on_pod(self, key: str, new: Obj | None) -> None:
        parts = key.rstrip("/").split("/")
        pid = (parts[-2], parts[-1])
        node = self.pod_node.pop(pid, None)
        old_refs = self._pod_refs.pop(pid, set())
        counts = self.refs.get(node) if node is not None else None
        if counts is not None:  # absent when the node's other pods referenced nothing either
            counts.subtract(old_refs)
            for ref in [r for r, n in counts.items() if n <= 0]:
                del counts[ref]
            if not counts:
                del self.refs[node]
        if new is None:
            return
        node = (new.get("spec") or {}).get("nodeName")
        if not node:
            return
        refs = pod_references(new)
        self.pod_node[pid] = node
        self._pod_refs[pid] = refs
        self.refs.setdefault(node, Counter()).update(refs)

    def on_claim(self, key: str, new: Obj | None) -> None:
        parts = key.rstrip("/").split("/")
        cid = (parts[-2], parts[-1])
        pv = self.claim_volume.pop(cid, None)
        if pv is not None:
            claims = self.volume_claims.get(pv)
            if claims is not None:
                claims.discard(cid)
                if not claims:
                    del self.volume_claims[pv]
        pv = ((new or {}).get("spec") or {}).get("volumeName")
        if new is not None and pv:
            self.claim_volume[cid] = pv
            self.volume_claims.setdefault(pv, set()).add(cid)

    def pod_bound(self, node: str, namespace: str, name: str) -> bool:
        return self.pod_node.get((namespace, name)) == node

    def references(self, node: str, kind: str, namespace: str, name: str) -> bool:
        counts = self.refs.get(node)
        if not counts:
            return False
        if kind == "pv":
            return any(counts.get(("pvc", ns, claim), 0) > 0 for ns, claim in self.volume_claims.get(name, ()))
        return counts.get((kind, namespace, name), 0) > 0


def _deny(reason: str) -> Result:
    return Result(NO_OPINION, reason)


class NodeAuthorizer:
    def __init__(self, graph: NodeGraph) -> None:
        self.graph = graph
        self.rules = compile_rules(NODE_RULES)

    def rules_for(self, user: UserInfo, namespace: str) -> RulesResult:
        if node_identity(user)[1]:
            return RulesResult(incomplete=True, errors=["node authorizer does not support user rule resolution"])
        return RulesResult()

    def authorize(self, attrs: Attributes) -> Result:
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return NO_OPINION_RESULT
        if not node:
            return _deny(f'unknown node for user "{attrs.user.name}"')
        if attrs.resource_request:
            group, resource = attrs.api_group, attrs.resource
            if group == "":
                if resource in ("secrets", "configmaps"):
                    return self._read_namespaced(node, resource[:-1], attrs)
                if resource == "persistentvolumeclaims":
                    if attrs.subresource == "status":
                        return self._status_update(node, "pvc", attrs)
                    return self._get(node, "pvc", attrs)
                if resource == "persistentvolumes":
                    return self._get(node, "pv", attrs)
                if resource == "serviceaccounts":
                    return self._create_token(node, attrs)
                if resource == "nodes":
                    return self._node(node, attrs)
                if resource == "pods":
                    return self._pod(node, attrs)
            elif group == "coordination.k8s.io" and resource == "leases":
                return self._lease(node, attrs)
        return ALLOW_RESULT if rules_allow(attrs, self.rules) else NO_OPINION_RESULT

    # -- per resource -------------------------------------------------------------------
    def _related(self, node: str, kind: str, attrs: Attributes) -> Result:
        if not attrs.name:
            return _deny("No Object name found")
        if self.graph.references(node, kind, attrs.namespace, attrs.name):
            return ALLOW_RESULT
        return _deny(f"no relationship found between node '{node}' and this object")

    def _read_namespaced(self, node: str, kind: str, attrs: Attributes) -> Result:
        if attrs.verb not in ("get", "list", "watch"):
            return _deny("can only read resources of this type")
        if attrs.subresource:
            return _deny("cannot read subresource")
        if not attrs.namespace:
            return _deny("can only read namespaced object of this type")
        return self._related(node, kind, attrs)

    def _get(self, node: str, kind: str, attrs: Attributes) -> Result:
        if attrs.verb != "get":
            return _deny("can only get individual resources of this type")
        if attrs.subresource:
            return _deny("cannot get subresource")
        return self._related(node, kind, attrs)

    def _status_update(self, node: str, kind: str, attrs: Attributes) -> Result:
        if attrs.verb not in ("update", "patch"):
            return _deny("can only get/update/patch this type")
        if attrs.subresource != "status":
            return _deny("can only update status subresource")
        return self._related(node, kind, attrs)

    def _create_token(self, node: str, attrs: Attributes) -> Result:
        if attrs.verb != "create" or not attrs.name:
            return _deny("can only create tokens for individual service accounts")
        if attrs.subresource != "token":
            return _deny("can only create token subresource of serviceaccount")
        return self._related(node, "serviceaccount", attrs)

    def _lease(self, node: str, attrs: Attributes) -> Result:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return _deny("can only get, create, update, patch, or delete a node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return _deny(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        if attrs.verb != "create" and attrs.name != node:
            return _deny("can only access node lease with the same name as the requesting node")
        return ALLOW_RESULT

    def _node(self, node: str, attrs: Attributes) -> Result:
        verb, name, sub = attrs.verb, attrs.name, attrs.subresource
        if sub == "":
            if verb == "create":
                return ALLOW_RESULT
            if verb in ("update", "patch", "delete"):
                if name == node:
                    return ALLOW_RESULT if verb != "delete" else NO_OPINION_RESULT
                return _deny(f"node '{node}' cannot modify '{name}', only its own Node object")
            if verb in ("get", "list", "watch"):
                if name == node:
                    return ALLOW_RESULT
                if not name:
                    return _deny(f"node '{node}' cannot read all nodes, only its own Node object")
                return _deny(f"node '{node}' cannot read '{name}', only its own Node object")
        elif sub == "status" and verb in ("update", "patch"):
            if name == node:
                return ALLOW_RESULT
            return _deny(f"node '{node}' cannot modify '{name}', only its own Node object")
        return NO_OPINION_RESULT

    def _pod(self, node: str, attrs: Attributes) -> Result:
        verb, sub = attrs.verb, attrs.subresource
        bound = self.graph.pod_bound(node, attrs.namespace, attrs.name) if attrs.name else False
        not_related = f"no relationship found between node '{node}' and this object"
        if sub == "":
            if verb == "get":
                return self._get_pod(node, attrs)
            if verb in ("list", "watch"):
                for f, op, value in attrs.field_selector:
                    if f == "spec.nodeName" and op == "=" and value == node:
                        return ALLOW_RESULT
                if attrs.name:
                    return ALLOW_RESULT if bound else _deny(not_related)
                return _deny("can only list/watch pods with spec.nodeName field selector")
            if verb == "create":
                return ALLOW_RESULT
            if verb == "delete":
                return ALLOW_RESULT if bound else _deny(not_related)
        elif sub == "status" and verb in ("update", "patch"):
            return ALLOW_RESULT if bound else _deny(not_related)
        elif sub == "eviction" and verb == "create":
            return ALLOW_RESULT if bound else _deny(not_related)
        return NO_OPINION_RESULT

    def _get_pod(self, node: str, attrs: Attributes) -> Result:
        if not attrs.name:
            return _deny("No Object name found")
        if self.graph.pod_bound(node, attrs.namespace, attrs.name):
            return ALLOW_RESULT
        return _deny(f"no relationship found between node '{node}' and this object")
