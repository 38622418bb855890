"""Discovery documents (legacy and aggregated apidiscovery.k8s.io/v2), built from the registry."""

from __future__ import annotations

from typing import Any

from ..api.resources import ResourceInfo
from .registry import Registry

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_CT_BETA = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(reg: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in reg.groups().items() if g],
    }


def api_group(reg: Registry, group: str) -> dict[str, Any] | None:
    vs = reg.groups().get(group)
    if not vs or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, vs)}


def api_resource_list(reg: Registry, group: str, version: str) -> dict[str, Any] | None:
    rs = reg.resources_in(group, version)
    if not rs:
        return None
    out: list[dict[str, Any]] = []
    for r in rs:
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for s in r.subresources:
            sub: dict[str, Any] = {"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced, "kind": s.kind, "verbs": list(s.verbs)}
            if s.group or s.version:
                sub["group"] = s.group
                sub["version"] = s.version
            out.append(sub)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(group, version), "resources": out}


def _aggregated_resource(r: ResourceInfo) -> dict[str, Any]:
    d: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        d["shortNames"] = list(r.short_names)
    if r.categories:
        d["categories"] = list(r.categories)
    subs = []
    for s in r.subresources:
        subs.append({
            "subresource": s.name,
            "responseKind": {"group": s.group if s.group or s.version else r.group,
                             "version": s.version or r.version, "kind": s.kind},
            "verbs": list(s.verbs),
        })
    if subs:
        d["subresources"] = subs
    return d


def aggregated(reg: Registry, core: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict[str, Any]:
    items = []
    for g, versions in reg.groups().items():
        if bool(g) == core:
            continue
        vitems = []
        for v in versions:
            vitems.append({
                "version": v,
                "resources": [_aggregated_resource(r) for r in sorted(reg.resources_in(g, v), key=lambda r: r.plural)],
                "freshness": "Current",
            })
        md: dict[str, Any] = {"creationTimestamp": None}
        if g:
            md["name"] = g
        items.append({"metadata": md, "versions": vitems})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def wants_aggregated(accept: str) -> str | None:
    """The aggregated content type to answer with, if the Accept header asks for one."""
    for part in accept.split(","):
        params = {}
        for p in part.split(";")[1:]:
            if "=" in p:
                k, v = p.strip().split("=", 1)
                params[k] = v
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") == "v2":
                return AGGREGATED_CT
            if params.get("v") == "v2beta1":
                return AGGREGATED_CT_BETA
    return None
