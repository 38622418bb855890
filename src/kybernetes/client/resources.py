"""Resource addressing: group, version, plural (+ kind and scope) and the URL paths they give.

    PODS.path("default", "web-1")              -> /api/v1/namespaces/default/pods/web-1
    DEPLOYMENTS.path("default", "web", "scale") -> /apis/apps/v1/namespaces/default/deployments/web/scale
    NODES.path()                                -> /api/v1/nodes
    Resource.for_kind("apps/v1", "ReplicaSet")  -> REPLICASETS (built-in kinds only)

Well-known constants are looked up in ``api.resources.BUILTIN`` so kind and scope cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..api.resources import BUILTIN, ResourceInfo


@dataclass(frozen=True)
class Resource:
    group: str          # "" for the core group
    version: str
    plural: str
    kind: str = ""
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path; ``namespace`` is ignored for cluster-scoped resources."""
        p = self.prefix
        if self.namespaced and namespace:
            p += f"/namespaces/{quote(namespace, safe='')}"
        p += f"/{self.plural}"
        if name:
            p += f"/{quote(name, safe='')}"
            if subresource:
                p += f"/{subresource}"
        elif subresource:
            raise ValueError("a subresource needs an object name")
        return p

    def __str__(self) -> str:
        return f"{self.plural}.{self.version}.{self.group}" if self.group else f"{self.plural}.{self.version}"

    @classmethod
    def from_info(cls, info: ResourceInfo) -> Resource:
        return cls(info.group, info.version, info.plural, info.kind, info.namespaced)

    @classmethod
    def for_kind(cls, api_version: str, kind: str) -> Resource:
        """The built-in resource serving ``kind`` in ``api_version`` (KeyError if unknown)."""
        group, _, version = api_version.rpartition("/")
        for info in BUILTIN:
            if info.group == group and info.version == version and info.kind == kind:
                return cls.from_info(info)
        raise KeyError(f"no built-in resource for {api_version} {kind}")


def _builtin(group: str, plural: str, version: str = "v1") -> Resource:
    for info in BUILTIN:
        if info.group == group and info.plural == plural and info.version == version:
            return Resource.from_info(info)
    raise KeyError(f"{plural}.{group or 'core'}/{version} is not a built-in resource")


# core/v1
NAMESPACES = _builtin("", "namespaces")
PODS = _builtin("", "pods")
SERVICES = _builtin("", "services")
ENDPOINTS = _builtin("", "endpoints")
CONFIGMAPS = _builtin("", "configmaps")
SECRETS = _builtin("", "secrets")
SERVICEACCOUNTS = _builtin("", "serviceaccounts")
NODES = _builtin("", "nodes")
EVENTS = _builtin("", "events")
PERSISTENTVOLUMES = _builtin("", "persistentvolumes")
PERSISTENTVOLUMECLAIMS = _builtin("", "persistentvolumeclaims")
RESOURCEQUOTAS = _builtin("", "resourcequotas")
LIMITRANGES = _builtin("", "limitranges")
REPLICATIONCONTROLLERS = _builtin("", "replicationcontrollers")
PODTEMPLATES = _builtin("", "podtemplates")
# apps/v1
DEPLOYMENTS = _builtin("apps", "deployments")
REPLICASETS = _builtin("apps", "replicasets")
DAEMONSETS = _builtin("apps", "daemonsets")
STATEFULSETS = _builtin("apps", "statefulsets")
CONTROLLERREVISIONS = _builtin("apps", "controllerrevisions")
# batch/v1
JOBS = _builtin("batch", "jobs")
CRONJOBS = _builtin("batch", "cronjobs")
# others
HORIZONTALPODAUTOSCALERS = _builtin("autoscaling", "horizontalpodautoscalers", "v2")
PODDISRUPTIONBUDGETS = _builtin("policy", "poddisruptionbudgets")
INGRESSES = _builtin("networking.k8s.io", "ingresses")
INGRESSCLASSES = _builtin("networking.k8s.io", "ingressclasses")
NETWORKPOLICIES = _builtin("networking.k8s.io", "networkpolicies")
ENDPOINTSLICES = _builtin("discovery.k8s.io", "endpointslices")
LEASES = _builtin("coordination.k8s.io", "leases")
ROLES = _builtin("rbac.authorization.k8s.io", "roles")
ROLEBINDINGS = _builtin("rbac.authorization.k8s.io", "rolebindings")
CLUSTERROLES = _builtin("rbac.authorization.k8s.io", "clusterroles")
CLUSTERROLEBINDINGS = _builtin("rbac.authorization.k8s.io", "clusterrolebindings")
STORAGECLASSES = _builtin("storage.k8s.io", "storageclasses")
PRIORITYCLASSES = _builtin("scheduling.k8s.io", "priorityclasses")
CUSTOMRESOURCEDEFINITIONS = _builtin("apiextensions.k8s.io", "customresourcedefinitions")
