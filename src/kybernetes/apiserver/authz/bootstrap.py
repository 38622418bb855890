"""The default roles and bindings, created and reconciled at every API server start.

The rule contents are upstream's (``kube-apiserver`` 1.32 bootstrap policy) for the roles our
users and components rely on: the user-facing ``cluster-admin``, ``admin``, ``edit`` and ``view``
(the last three aggregated from ``system:aggregate-to-*`` through
``rbac.authorization.k8s.io/aggregate-to-*`` labels), discovery and self-review roles bound to
every authenticated user, and the ``system:*`` roles of the scheduler, controller manager,
nodes and proxy.

Two additions of ours, because our components differ from upstream's in one respect each:

* ``system:kybernetes:controller-manager`` — upstream runs each controller under its own
  service account (``--use-service-account-credentials``) with a ``system:controller:*`` role;
  our controller manager runs every controller under its one identity
  (``system:kube-controller-manager``), so it is bound to the union of the upstream controller
  roles of the controllers it runs: read/update/patch/delete anything (the garbage collector
  and namespace controller need that upstream too) and create exactly the kinds our
  controllers create.
* ``system:kybernetes:scheduler`` — our scheduler also watches PriorityClasses.

Every object carries the label ``kubernetes.io/bootstrapping: rbac-defaults`` and the annotation
``rbac.authorization.kubernetes.io/autoupdate: "true"``. Reconciliation (upstream's "union"
mode) adds whatever a default object lacks (rules, subjects, labels, annotations, aggregation
selectors) and never removes what an administrator added; setting the annotation to ``"false"``
opts an object out. A binding whose roleRef changed is deleted and recreated (roleRef is
immutable). Aggregated roles' rules are left to the aggregation controller.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from ...api import errors
from .policy import compile_rules, covers

if TYPE_CHECKING:
    from ..registry import Registry
    from ..rest import ApiStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
AGG_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
AGG_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
AGG_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"

RW = ["create", "delete", "deletecollection", "patch", "update"]
READ = ["get", "list", "watch"]
ALL_RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
EVENTS_WRITE = ["create", "patch", "update"]


def r(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> Obj:
    """A resource rule."""
    out: Obj = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


def nr(urls: list[str], verbs: list[str]) -> Obj:
    """A non-resource rule."""
    return {"nonResourceURLs": urls, "verbs": verbs}


def _meta(name: str, namespace: str = "", labels: dict[str, str] | None = None) -> Obj:
    md: Obj = {"name": name, "labels": {BOOTSTRAP_LABEL[0]: BOOTSTRAP_LABEL[1], **(labels or {})},
               "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        md["namespace"] = namespace
    return md


def cluster_role(name: str, rules: list[Obj], *, labels: dict[str, str] | None = None,
                 aggregate_from: str | None = None) -> Obj:
    obj: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(name, labels=labels),
                "rules": rules}
    if aggregate_from:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate_from: "true"}}]}
    return obj


def role(name: str, namespace: str, rules: list[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "Role", "metadata": _meta(name, namespace), "rules": rules}


def user(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "User", "name": name}


def group(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "Group", "name": name}


def service_account(namespace: str, name: str) -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def cluster_role_binding(name: str, role_name: str, subjects: list[Obj]) -> Obj:
    obj: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": _meta(name),
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role_name}}
    if subjects:
        obj["subjects"] = subjects
    return obj


def role_binding(name: str, namespace: str, role_name: str, subjects: list[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "RoleBinding", "metadata": _meta(name, namespace),
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": role_name}, "subjects": subjects}


# ------------------------------------------------------------------------------ the policy

CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
PROXY_USER = "system:kube-proxy"


def _aggregate_to_view() -> list[Obj]:
    return [
        r([""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                 "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                 "services/status"], READ),
        r([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                 "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"], READ),
        r([""], ["namespaces"], READ),
        r(["discovery.k8s.io"], ["endpointslices"], READ),
        r(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                     "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                     "statefulsets/scale", "statefulsets/status"], READ),
        r(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
        r(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        r(["extensions"], ["daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
                           "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale",
                           "replicasets/status", "replicationcontrollers/scale"], READ),
        r(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        r(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
    ]


def _aggregate_to_edit() -> list[Obj]:
    return [
        r([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], READ),
        r([""], ["serviceaccounts"], ["impersonate"]),
        r([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], RW),
        r([""], ["pods/eviction"], ["create"]),
        r([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                 "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"], RW),
        r([""], ["serviceaccounts/token"], ["create"]),
        r(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                     "replicasets/scale", "statefulsets", "statefulsets/scale"], RW),
        r(["autoscaling"], ["horizontalpodautoscalers"], RW),
        r(["batch"], ["cronjobs", "jobs"], RW),
        r(["extensions"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                           "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale"], RW),
        r(["policy"], ["poddisruptionbudgets"], RW),
        r(["networking.k8s.io"], ["ingresses", "networkpolicies"], RW),
        r(["coordination.k8s.io"], ["leases"], ALL_RW),
    ]


def _aggregate_to_admin() -> list[Obj]:
    return [
        r(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
        r([GROUP], ["rolebindings", "roles"], ALL_RW),
    ]


def _node_rules() -> list[Obj]:
    """``system:node``: what a kubelet may do at most (the Node authorizer narrows it further)."""
    return [
        r(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        r(["authorization.k8s.io"], ["localsubjectaccessreviews", "subjectaccessreviews"], ["create"]),
        r([""], ["services"], READ),
        r([""], ["nodes"], ["create", "get", "list", "watch"]),
        r([""], ["nodes/status"], ["patch", "update"]),
        r([""], ["nodes"], ["patch", "update"]),
        r([""], ["events"], EVENTS_WRITE),
        r([""], ["pods"], READ),
        r([""], ["pods"], ["create", "delete"]),
        r([""], ["pods/status"], ["patch", "update"]),
        r([""], ["pods/eviction"], ["create"]),
        r([""], ["configmaps", "secrets"], READ),
        r([""], ["persistentvolumeclaims", "persistentvolumes"], ["get"]),
        r([""], ["endpoints"], ["get"]),
        r(["certificates.k8s.io"], ["certificatesigningrequests"], ["create", "get", "list", "watch"]),
        r(["coordination.k8s.io"], ["leases"], ["create", "delete", "get", "patch", "update"]),
        r(["storage.k8s.io"], ["volumeattachments"], ["get"]),
        r([""], ["serviceaccounts/token"], ["create"]),
        r([""], ["persistentvolumeclaims/status"], ["get", "patch", "update"]),
        r(["storage.k8s.io"], ["csidrivers"], READ),
        r(["storage.k8s.io"], ["csinodes"], ["create", "delete", "get", "patch", "update"]),
        r(["node.k8s.io"], ["runtimeclasses"], READ),
    ]


NODE_RULES = _node_rules()


def cluster_roles() -> list[Obj]:
    events = r(["", "events.k8s.io"], ["events"], EVENTS_WRITE)
    return [
        cluster_role("cluster-admin", [r(["*"], ["*"], ["*"]), nr(["*"], ["*"])]),
        cluster_role("admin", [], aggregate_from=AGG_ADMIN),
        cluster_role("edit", [], labels={AGG_ADMIN: "true"}, aggregate_from=AGG_EDIT),
        cluster_role("view", [], labels={AGG_EDIT: "true"}, aggregate_from=AGG_VIEW),
        cluster_role("system:aggregate-to-admin", _aggregate_to_admin(), labels={AGG_ADMIN: "true"}),
        cluster_role("system:aggregate-to-edit", _aggregate_to_edit(), labels={AGG_EDIT: "true"}),
        cluster_role("system:aggregate-to-view", _aggregate_to_view(), labels={AGG_VIEW: "true"}),
        cluster_role("system:auth-delegator", [r(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
                                               r(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"])]),
        cluster_role("system:basic-user", [
            r(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
            r(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])]),
        cluster_role("system:discovery", [nr(["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                              "/openapi/*", "/readyz", "/version", "/version/"], ["get"])]),
        cluster_role("system:public-info-viewer", [nr(["/healthz", "/livez", "/readyz", "/version", "/version/"], ["get"])]),
        cluster_role("system:monitoring", [nr(["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics",
                                               "/metrics/slis", "/readyz", "/readyz/*"], ["get"])]),
        cluster_role("system:service-account-issuer-discovery", [nr(["/.well-known/openid-configuration",
                                                                     "/openid/v1/jwks"], ["get"])]),
        cluster_role("system:kube-controller-manager", [
            events,
            r(["coordination.k8s.io"], ["leases"], ["create"]),
            r(["coordination.k8s.io"], ["leases"], ["get", "update"], ["kube-controller-manager"]),
            r([""], ["secrets", "serviceaccounts"], ["create"]),
            r([""], ["secrets"], ["delete"]),
            r([""], ["configmaps", "namespaces", "secrets", "serviceaccounts"], ["get"]),
            r([""], ["secrets", "serviceaccounts"], ["update"]),
            r(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
            r(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
            r(["*"], ["*"], ["list", "watch"]),
            r([""], ["serviceaccounts/token"], ["create"]),
        ]),
        cluster_role("system:kube-scheduler", [
            events,
            r(["coordination.k8s.io"], ["leases"], ["create"]),
            r(["coordination.k8s.io"], ["leases"], ["get", "update"], ["kube-scheduler"]),
            r([""], ["nodes"], READ),
            r([""], ["pods"], ["delete", "get", "list", "watch"]),
            r([""], ["bindings", "pods/binding"], ["create"]),
            r([""], ["pods/status"], ["patch", "update"]),
            r([""], ["replicationcontrollers", "services"], READ),
            r(["apps", "extensions"], ["replicasets"], READ),
            r(["apps"], ["statefulsets"], READ),
            r(["policy"], ["poddisruptionbudgets"], READ),
            r([""], ["persistentvolumeclaims", "persistentvolumes"], READ),
            r(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
            r(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
            r(["storage.k8s.io"], ["csinodes"], READ),
            r([""], ["namespaces"], READ),
            r(["storage.k8s.io"], ["csidrivers"], READ),
            r(["storage.k8s.io"], ["csistoragecapacities"], READ),
        ]),
        cluster_role("system:volume-scheduler", [
            r([""], ["persistentvolumes"], ["get", "list", "patch", "update", "watch"]),
            r(["storage.k8s.io"], ["storageclasses"], READ),
            r([""], ["persistentvolumeclaims"], ["get", "list", "patch", "update", "watch"]),
        ]),
        cluster_role("system:kube-dns", [r([""], ["endpoints", "services"], ["list", "watch"])]),
        cluster_role("system:node", _node_rules()),
        cluster_role("system:node-proxier", [
            r([""], ["endpoints", "services"], ["list", "watch"]),
            r([""], ["nodes"], READ),
            events,
            r(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        ]),
        cluster_role("system:node-bootstrapper", [
            r(["certificates.k8s.io"], ["certificatesigningrequests"], ["create", "get", "list", "watch"])]),
        # what the CSR approver asks: may this requester get a kubelet client certificate?
        cluster_role("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [
            r(["certificates.k8s.io"], ["certificatesigningrequests/nodeclient"], ["create"])]),
        cluster_role("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [
            r(["certificates.k8s.io"], ["certificatesigningrequests/selfnodeclient"], ["create"])]),
        cluster_role("system:kubelet-api-admin", [
            r([""], ["nodes"], READ), r([""], ["nodes"], ["proxy"]),
            r([""], ["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"], ["*"])]),
        # metrics-server's role (our API server serves metrics.k8s.io itself): `kubectl top` for view/edit/admin
        cluster_role("system:aggregated-metrics-reader", [r(["metrics.k8s.io"], ["pods", "nodes"], READ)],
                     labels={AGG_VIEW: "true", AGG_EDIT: "true", AGG_ADMIN: "true"}),
        # ours (see the module docstring)
        cluster_role("system:kybernetes:controller-manager", [
            r(["*"], ["*"], ["delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
            r([""], ["configmaps", "endpoints", "events", "persistentvolumeclaims", "persistentvolumes", "pods",
                     "serviceaccounts"], ["create"]),
            r(["apps"], ["controllerrevisions", "replicasets"], ["create"]),
            r(["batch"], ["jobs"], ["create"]),
            r(["discovery.k8s.io"], ["endpointslices"], ["create"]),
            r(["events.k8s.io"], ["events"], ["create"]),
            r(["storage.k8s.io"], ["storageclasses"], ["create"]),
            r(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
            # upstream's certificate-controller: approve kubelet client CSRs, sign for the built-in signers
            r(["certificates.k8s.io"], ["signers"], ["approve"], ["kubernetes.io/kube-apiserver-client-kubelet"]),
            r(["certificates.k8s.io"], ["signers"], ["sign"], [
                "kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving", "kubernetes.io/legacy-unknown"]),
        ]),
        cluster_role("system:kybernetes:scheduler", [r(["scheduling.k8s.io"], ["priorityclasses"], READ)]),
    ]


def cluster_role_bindings() -> list[Obj]:
    return [
        cluster_role_binding("cluster-admin", "cluster-admin", [group("system:masters")]),
        cluster_role_binding("system:basic-user", "system:basic-user", [group("system:authenticated")]),
        cluster_role_binding("system:discovery", "system:discovery", [group("system:authenticated")]),
        cluster_role_binding("system:public-info-viewer", "system:public-info-viewer",
                             [group("system:authenticated"), group("system:unauthenticated")]),
        cluster_role_binding("system:monitoring", "system:monitoring", [group("system:monitoring")]),
        cluster_role_binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                             [group("system:serviceaccounts")]),
        cluster_role_binding("system:kube-controller-manager", "system:kube-controller-manager",
                             [user(CONTROLLER_MANAGER_USER)]),
        cluster_role_binding("system:kube-scheduler", "system:kube-scheduler", [user(SCHEDULER_USER)]),
        cluster_role_binding("system:volume-scheduler", "system:volume-scheduler", [user(SCHEDULER_USER)]),
        cluster_role_binding("system:kube-dns", "system:kube-dns", [service_account("kube-system", "kube-dns")]),
        cluster_role_binding("system:node", "system:node", []),
        cluster_role_binding("system:node-proxier", "system:node-proxier", [user(PROXY_USER)]),
        cluster_role_binding("system:kybernetes:controller-manager", "system:kybernetes:controller-manager",
                             [user(CONTROLLER_MANAGER_USER)]),
        cluster_role_binding("system:kybernetes:scheduler", "system:kybernetes:scheduler", [user(SCHEDULER_USER)]),
        # joining nodes: `kyb token create` tokens (kubeadm's kubeadm:kubelet-bootstrap)
        cluster_role_binding("kybernetes:kubelet-bootstrap", "system:node-bootstrapper",
                             [group("system:bootstrappers:kybernetes:default-node-token")]),
        cluster_role_binding("kybernetes:node-autoapprove-bootstrap",
                             "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                             [group("system:bootstrappers:kybernetes:default-node-token")]),
        cluster_role_binding("kybernetes:node-autoapprove-certificate-rotation",
                             "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                             [group("system:nodes")]),
    ]


def _leader_locking() -> list[Obj]:
    return [r(["coordination.k8s.io"], ["leases"], ["create", "get", "list", "update", "watch"])]


def roles() -> list[Obj]:
    return [
        role("system::leader-locking-kube-controller-manager", "kube-system", _leader_locking()),
        role("system::leader-locking-kube-scheduler", "kube-system", _leader_locking()),
        role("extension-apiserver-authentication-reader", "kube-system",
             [r([""], ["configmaps"], READ, ["extension-apiserver-authentication"])]),
    ]


def role_bindings() -> list[Obj]:
    return [
        role_binding("system::leader-locking-kube-controller-manager", "kube-system",
                     "system::leader-locking-kube-controller-manager",
                     [user(CONTROLLER_MANAGER_USER), service_account("kube-system", "kube-controller-manager")]),
        role_binding("system::leader-locking-kube-scheduler", "kube-system", "system::leader-locking-kube-scheduler",
                     [user(SCHEDULER_USER), service_account("kube-system", "kube-scheduler")]),
        role_binding("system::extension-apiserver-authentication-reader", "kube-system",
                     "extension-apiserver-authentication-reader", [user(CONTROLLER_MANAGER_USER), user(SCHEDULER_USER)]),
    ]


# ------------------------------------------------------------------------------ reconciliation


def _opted_out(existing: Obj) -> bool:
    return ((existing.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) == "false"


def _merge_meta(out: Obj, desired: Obj) -> bool:
    changed = False
    md = out.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        want = desired["metadata"].get(key) or {}
        have = md.setdefault(key, {}) if want else md.get(key) or {}
        for k, v in want.items():
            if k not in have:
                have[k] = v
                changed = True
    return changed


def reconcile_role(existing: Obj, desired: Obj) -> Obj | None:
    """The existing (Cluster)Role with what the default lacks added, or None when nothing is
    missing or the object opted out of updates."""
    if _opted_out(existing):
        return None
    out = copy.deepcopy(existing)
    changed = _merge_meta(out, desired)
    want_agg = desired.get("aggregationRule")
    if want_agg is not None:
        have = out.setdefault("aggregationRule", {}).setdefault("clusterRoleSelectors", [])
        for sel in want_agg.get("clusterRoleSelectors") or []:
            if sel not in have:
                have.append(copy.deepcopy(sel))
                changed = True
    else:
        held = compile_rules(out.get("rules") or [])
        for rule in desired.get("rules") or []:
            ok, _ = covers(held, [rule])
            if not ok:
                out.setdefault("rules", []).append(copy.deepcopy(rule))
                changed = True
    return out if changed else None


def reconcile_binding(existing: Obj, desired: Obj) -> tuple[str, Obj | None]:
    """("recreate", desired) when the roleRef differs, ("update", obj) when subjects/metadata
    are missing, ("none", None) otherwise (or when opted out)."""
    if _opted_out(existing):
        return "none", None
    if existing.get("roleRef") != desired.get("roleRef"):
        return "recreate", copy.deepcopy(desired)
    out = copy.deepcopy(existing)
    changed = _merge_meta(out, desired)
    have = out.setdefault("subjects", [])
    for s in desired.get("subjects") or []:
        if not any(h.get("kind") == s["kind"] and h.get("name") == s["name"]
                   and (h.get("namespace") or "") == (s.get("namespace") or "") for h in have):
            have.append(copy.deepcopy(s))
            changed = True
    if not have:
        out.pop("subjects", None)
    return ("update", out) if changed else ("none", None)


async def ensure_policy(api: "ApiStore", registry: "Registry") -> int:
    """Create or reconcile every default object; returns how many writes it made."""
    from ..rest import ListOptions, WriteOptions

    opts = WriteOptions(field_manager="kube-apiserver", field_validation="Ignore")
    writes = 0
    plan = (("clusterroles", cluster_roles(), False), ("roles", roles(), False),
            ("clusterrolebindings", cluster_role_bindings(), True), ("rolebindings", role_bindings(), True))
    for plural, desired_objs, is_binding in plan:
        info = registry.lookup(GROUP, "v1", plural)
        assert info is not None
        namespaces = sorted({(d["metadata"].get("namespace") or "") for d in desired_objs})
        existing: dict[tuple[str, str], Obj] = {}
        for ns in namespaces:
            items, _ = await api.list(info, ns, ListOptions())
            existing.update({(ns, (o.get("metadata") or {}).get("name", "")): o for o in items})
        for desired in desired_objs:
            ns = desired["metadata"].get("namespace") or ""
            name = desired["metadata"]["name"]
            have = existing.get((ns, name))
            try:
                if have is None:
                    await api.create(info, ns, copy.deepcopy(desired), opts)
                    writes += 1
                    continue
                if is_binding:
                    action, new = reconcile_binding(have, desired)
                    if action == "recreate":
                        await api.delete(info, ns, name, {}, False)
                        await api.create(info, ns, new, opts)  # type: ignore[arg-type]
                        writes += 2
                        continue
                else:
                    new = reconcile_role(have, desired)
                if new is not None:
                    def again(cur: Obj | None, desired: Obj = desired, is_binding: bool = is_binding) -> Obj:
                        assert cur is not None
                        redo = reconcile_binding(cur, desired)[1] if is_binding else reconcile_role(cur, desired)
                        return redo if redo is not None else cur
                    await api.guaranteed_update(info, ns, name, again, opts)
                    writes += 1
            except errors.StatusError as e:
                if e.code != 409:  # another API server did it first
                    raise
                log.info("bootstrap policy: %s %s/%s changed concurrently (%s)", plural, ns, name, e.message)
    return writes
