"""The one table of built-in resources the API server serves.

Routes, discovery, OpenAPI, tables and storage keys are all generated from these entries; a
resource is added by adding a line here (plus, if it needs them, defaulting/validation/table
entries keyed by group and kind elsewhere in ``api/``). Custom resources become
``ResourceInfo`` values at run time from their CustomResourceDefinition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class SubresourceInfo:
    name: str                 # "status", "scale", "binding", "log", ...
    kind: str                 # response kind
    group: str = ""           # response kind's group when it differs from the parent's
    version: str = ""         # response kind's version when it differs
    verbs: tuple[str, ...] = ("get", "patch", "update")


STATUS = SubresourceInfo  # alias used in the table below for readability


@dataclass(frozen=True)
class ResourceInfo:
    group: str                # "" for core
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[SubresourceInfo, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    # Storage: objects of every version of one resource share ``storage_resource`` under
    # ``storage_group`` (e.g. HPA autoscaling/v1 and v2 share one key space).
    storage_group: str | None = None
    storage_version: str | None = None
    # Custom resources carry their CRD-derived schema and printer columns.
    custom: bool = False
    schema: dict | None = field(default=None, compare=False, hash=False)  # type: ignore[type-arg]
    printer_columns: tuple[dict, ...] = field(default=(), compare=False, hash=False)  # type: ignore[type-arg]
    scale_paths: tuple[str, str, str | None] | None = None  # spec, status, labelSelector paths
    preserve_unknown: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``: the name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)

    def subresource(self, name: str) -> SubresourceInfo | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    @property
    def key_group(self) -> str:
        return self.storage_group if self.storage_group is not None else self.group

    def key_prefix(self, namespace: str | None = None) -> str:
        """Storage key prefix: ``/registry/<group>/<plural>/[<ns>/]`` (core: no group)."""
        g = self.key_group
        base = f"/registry/{g}/{self.plural}/" if g else f"/registry/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        return self.key_prefix(namespace if self.namespaced else None) + name


def _status(kind: str) -> SubresourceInfo:
    return SubresourceInfo("status", kind)


_SCALE = SubresourceInfo("scale", "Scale", group="autoscaling", version="v1")


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    ns: bool = True,
    short: tuple[str, ...] = (),
    cat: tuple[str, ...] = (),
    sub: tuple[SubresourceInfo, ...] = (),
    verbs: tuple[str, ...] = STANDARD_VERBS,
    storage_group: str | None = None,
    storage_version: str | None = None,
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=ns,
        short_names=short,
        categories=cat,
        subresources=sub,
        verbs=verbs,
        storage_group=storage_group,
        storage_version=storage_version,
    )


_ALL = ("all",)

BUILTIN: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", ns=False, short=("ns",), sub=(_status("Namespace"), SubresourceInfo("finalize", "Namespace", verbs=("update",)))),
    _r("", "v1", "Pod", "pods", short=("po",), cat=_ALL, sub=(
        _status("Pod"),
        SubresourceInfo("binding", "Binding", verbs=("create",)),
        SubresourceInfo("eviction", "Eviction", group="policy", version="v1", verbs=("create",)),
        SubresourceInfo("log", "Pod", verbs=("get",)),
        SubresourceInfo("exec", "PodExecOptions", verbs=("create", "get")),
        SubresourceInfo("attach", "PodAttachOptions", verbs=("create", "get")),
        SubresourceInfo("portforward", "PodPortForwardOptions", verbs=("create", "get")),
        SubresourceInfo("ephemeralcontainers", "Pod"),
    )),
    _r("", "v1", "Binding", "bindings", verbs=("create",)),
    _r("", "v1", "Service", "services", short=("svc",), cat=_ALL, sub=(_status("Service"),)),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",), sub=(
        SubresourceInfo("token", "TokenRequest", group="authentication.k8s.io", version="v1", verbs=("create",)),
    )),
    _r("", "v1", "Node", "nodes", ns=False, short=("no",), sub=(_status("Node"),)),
    _r("", "v1", "Event", "events", short=("ev",)),
    _r("", "v1", "PersistentVolume", "persistentvolumes", ns=False, short=("pv",), sub=(_status("PersistentVolume"),)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=(_status("PersistentVolumeClaim"),)),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), sub=(_status("ResourceQuota"),)),
    _r("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short=("rc",), cat=_ALL, sub=(_status("ReplicationController"), _SCALE)),
    _r("", "v1", "PodTemplate", "podtemplates"),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", short=("deploy",), cat=_ALL, sub=(_status("Deployment"), _SCALE)),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), cat=_ALL, sub=(_status("ReplicaSet"), _SCALE)),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), cat=_ALL, sub=(_status("DaemonSet"),)),
    _r("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), cat=_ALL, sub=(_status("StatefulSet"), _SCALE)),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", cat=_ALL, sub=(_status("Job"),)),
    _r("batch", "v1", "CronJob", "cronjobs", short=("cj",), cat=_ALL, sub=(_status("CronJob"),)),
    # autoscaling: v2 is preferred and is the storage version; v1 is converted.
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), cat=_ALL, sub=(_status("HorizontalPodAutoscaler"),)),
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), cat=_ALL, sub=(_status("HorizontalPodAutoscaler"),), storage_version="v2"),
    # policy/v1
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), sub=(_status("PodDisruptionBudget"),)),
    # networking.k8s.io/v1
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), sub=(_status("Ingress"),)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", ns=False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    # rbac.authorization.k8s.io/v1
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", ns=False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", ns=False),
    # storage.k8s.io/v1
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", ns=False, short=("sc",)),
    _r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", ns=False,
       short=("csr",), sub=(_status("CertificateSigningRequest"),
                            SubresourceInfo("approval", "CertificateSigningRequest", verbs=("get", "patch", "update")))),
    # scheduling.k8s.io/v1
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", ns=False, short=("pc",)),
    # admissionregistration.k8s.io/v1
    _r("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", ns=False, cat=("api-extensions",)),
    _r("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", ns=False, cat=("api-extensions",)),
    _r("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", ns=False,
       cat=("api-extensions",), sub=(_status("ValidatingAdmissionPolicy"),)),
    _r("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings",
       ns=False, cat=("api-extensions",)),
    # events.k8s.io/v1 shares storage with core/v1 events (converted on the way in and out).
    _r("events.k8s.io", "v1", "Event", "events", short=("ev",), storage_group=""),
    # apiextensions.k8s.io/v1
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", ns=False, short=("crd", "crds"), cat=("api-extensions",), sub=(_status("CustomResourceDefinition"),)),
    # review-style resources (create only, never stored)
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", ns=False, verbs=("create",)),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", ns=False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", ns=False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", ns=False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", ns=False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", verbs=("create",)),
)

# Group order for discovery (preferred version first within a group).
GROUP_ORDER = (
    "", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling",
    "batch", "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io",
    "discovery.k8s.io",
)


def is_stored(info: ResourceInfo) -> bool:
    return "get" in info.verbs
