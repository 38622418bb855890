"""OpenAPI v3/v2 documents: structure, self-contained refs, CRDs, and real kubectl reading them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kybernetes.api.resources import BUILTIN, ResourceInfo, SubresourceInfo
from kybernetes.apiserver.openapi import (
    INT_OR_STRING,
    SMP,
    OpenAPIBuilder,
    convert_schema,
    group_ident,
    iter_refs,
    upstream_schema_v2,
    upstream_schema_v3,
)

KUBECTL = "/usr/bin/kubectl"
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
DEPLOY_ITEM = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
WIDGET_ITEM = "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"

WIDGET_SCHEMA = {
    "type": "object",
    "description": "A widget for tests.",
    "properties": {
        "spec": {
            "type": "object",
            "description": "Desired state of the widget.",
            "properties": {
                "size": {"type": "integer", "description": "How big the widget is, in furlongs."},
                "port": {"x-kubernetes-int-or-string": True,
                         "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "note": {"type": "string", "nullable": True},
            },
        },
    },
}
WIDGET = ResourceInfo(
    group="example.com", version="v1", kind="Widget", plural="widgets", singular="widget",
    namespaced=True, custom=True, schema=WIDGET_SCHEMA,
    subresources=(SubresourceInfo("status", "Widget"),
                  SubresourceInfo("scale", "Scale", group="autoscaling", version="v1")),
)
RESOURCES = (*BUILTIN, WIDGET)


@pytest.fixture(scope="module")
def builder() -> OpenAPIBuilder:
    return OpenAPIBuilder(RESOURCES)


def _doc(builder: OpenAPIBuilder, gv: str) -> dict[str, Any]:
    return json.loads(builder.v3_document(gv))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- conversion (pure)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param({"type": ["string", "null"]}, {"type": "string"}, id="nullable-type-list"),
        pytest.param({"$ref": "#/$defs/X"}, {"$ref": "#/components/schemas/X"}, id="bare-ref"),
        pytest.param({"$ref": "#/$defs/X", "description": "d"},
                     {"allOf": [{"$ref": "#/components/schemas/X"}], "description": "d"},
                     id="ref-with-siblings"),
        pytest.param({"type": ["array", "null"], "items": {"$ref": "#/$defs/Y"}},
                     {"type": "array", "items": {"$ref": "#/components/schemas/Y"}}, id="items"),
        pytest.param({"properties": {"kind": {"type": "string", "enum": ["Pod"]},
                                     "phase": {"type": "string", "enum": ["Running"]}}},
                     {"properties": {"kind": {"type": "string"},
                                     "phase": {"type": "string", "enum": ["Running"]}}},
                     id="kind-enum-dropped-other-enums-kept"),
    ],
)
def test_convert_schema_v3(node: dict[str, Any], expected: dict[str, Any]) -> None:
    assert convert_schema(node) == expected


def test_convert_schema_v2_keeps_ref_siblings_and_drops_unions() -> None:
    assert convert_schema({"$ref": "#/$defs/X", "description": "d"}, "#/definitions/", v2=True) == {
        "$ref": "#/definitions/X", "description": "d"}
    assert convert_schema({"anyOf": [{"type": "integer"}, {"type": "string"}],
                           "x-kubernetes-int-or-string": True, "nullable": True},
                          "#/definitions/", v2=True) == {
        "type": "string", "x-kubernetes-int-or-string": True}


def test_int_or_string_and_patch_metadata_survive() -> None:
    assert upstream_schema_v3(INT_OR_STRING)["format"] == "int-or-string"
    assert upstream_schema_v2(INT_OR_STRING) == {
        "description": upstream_schema_v2(INT_OR_STRING)["description"],
        "type": "string", "format": "int-or-string"}
    containers = upstream_schema_v3("io.k8s.api.core.v1.PodSpec")["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


@pytest.mark.parametrize(("group", "ident"), [("", "Core"), ("apps", "Apps"),
                                              ("rbac.authorization.k8s.io", "RbacAuthorization"),
                                              ("example.com", "ExampleCom")])
def test_group_ident(group: str, ident: str) -> None:
    assert group_ident(group) == ident


# --------------------------------------------------------------------------- documents


def test_index_keys_and_hashes(builder: OpenAPIBuilder) -> None:
    paths = builder.v3_index()["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/example.com/v1"} <= set(paths)
    for gv, entry in paths.items():
        digest = hashlib.sha512(builder.v3_document(gv)).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{gv}?hash={digest}"
    assert builder.v3_document("/apis/apps/v1/") is builder.v3_document("apis/apps/v1")  # cached
    with pytest.raises(KeyError):
        builder.v3_document("apis/nope/v1")


def test_deployment_patch_operation(builder: OpenAPIBuilder) -> None:
    doc = _doc(builder, "apis/apps/v1")
    assert doc["openapi"].startswith("3.0")
    patch = doc["paths"][DEPLOY_ITEM]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1",
                                                       "kind": "Deployment"}
    assert patch["x-kubernetes-action"] == "patch"
    query = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= query
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json", SMP,
        "application/apply-patch+yaml"}
    assert [p["name"] for p in doc["paths"][DEPLOY_ITEM]["parameters"]] == ["name", "namespace"]
    assert {"get", "put", "delete"} <= set(doc["paths"][DEPLOY_ITEM])
    assert doc["paths"][DEPLOY_ITEM + "/scale"]["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}
    schema = doc["components"]["schemas"][DEPLOYMENT]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert schema["type"] == "object"


@pytest.mark.parametrize("gv", ["api/v1", "apis/apps/v1", "apis/example.com/v1",
                                "apis/authorization.k8s.io/v1"])
def test_every_ref_resolves_within_document(builder: OpenAPIBuilder, gv: str) -> None:
    doc = _doc(builder, gv)
    schemas = doc["components"]["schemas"]
    refs = set(iter_refs(doc))
    assert refs and refs <= set(schemas)
    assert not any("$defs" in r for r in json.dumps(doc).split('"$ref": ')[1:])


def test_custom_resource_schema_and_no_smp(builder: OpenAPIBuilder) -> None:
    doc = _doc(builder, "apis/example.com/v1")
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}]
    assert schema["properties"]["spec"]["properties"]["size"]["type"] == "integer"
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec"}
    patch = doc["paths"][WIDGET_ITEM]["patch"]
    assert SMP not in patch["requestBody"]["content"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    status = doc["paths"][WIDGET_ITEM + "/status"]["patch"]
    assert status["x-kubernetes-group-version-kind"]["kind"] == "Widget"
    assert SMP not in status["requestBody"]["content"]
    scale = doc["paths"][WIDGET_ITEM + "/scale"]["get"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1",
                                                       "kind": "Scale"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    lst = doc["components"]["schemas"]["com.example.v1.WidgetList"]
    assert lst["properties"]["items"]["items"] == {"$ref": "#/components/schemas/com.example.v1.Widget"}


def test_update_invalidates_only_on_change() -> None:
    b = OpenAPIBuilder(BUILTIN)
    assert "apis/example.com/v1" not in b.v3_index()["paths"]
    before = b.v3_document("apis/apps/v1")
    assert b.update(BUILTIN) is False
    assert b.v3_document("apis/apps/v1") is before
    assert b.update(RESOURCES) is True
    assert "apis/example.com/v1" in b.v3_index()["paths"]
    changed = ResourceInfo(**{**WIDGET.__dict__, "schema": {"type": "object"}})
    assert b.update((*BUILTIN, changed)) is True  # same resource, new schema


def test_v2_document(builder: OpenAPIBuilder) -> None:
    doc = json.loads(builder.v2_document())
    assert doc["swagger"] == "2.0"
    patch = doc["paths"][DEPLOY_ITEM]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert SMP in patch["consumes"]
    refs = set(iter_refs(doc, "#/definitions/"))
    assert refs <= set(doc["definitions"])
    assert DEPLOYMENT in refs and "com.example.v1.Widget" in refs
    assert "#/components/" not in json.dumps(doc)
    assert not list(_unions(doc))  # Swagger 2.0 has no oneOf/anyOf


def _unions(node: Any) -> Any:
    """Schema nodes using oneOf/anyOf (a list value; JSONSchemaProps has properties so named)."""
    if isinstance(node, dict):
        if any(isinstance(node.get(k), list) for k in ("oneOf", "anyOf")):
            yield node
        for v in node.values():
            yield from _unions(v)
    elif isinstance(node, list):
        for v in node:
            yield from _unions(v)


# --------------------------------------------------------------------------- real kubectl


def _legacy_resource(info: ResourceInfo) -> dict[str, Any]:
    return {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
            "kind": info.kind, "verbs": list(info.verbs), "shortNames": list(info.short_names)}


@dataclass
class FakeServer:
    """A minimal API server: version, legacy discovery, OpenAPI, one deployment to patch."""

    builder: OpenAPIBuilder
    resources: tuple[ResourceInfo, ...]
    patches: list[tuple[str, Any]] = field(default_factory=list)
    openapi_requests: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/version", self.version)
        r.add_get("/api", self.api)
        r.add_get("/apis", self.apis)
        r.add_get("/api/{version}", self.resource_list)
        r.add_get("/apis/{group}/{version}", self.resource_list)
        r.add_get("/openapi/v3", self.v3_index)
        r.add_get("/openapi/v3/{gv:.+}", self.v3_doc)
        r.add_get("/apis/apps/v1/namespaces/default/deployments/web", self.get_deploy)
        r.add_patch("/apis/apps/v1/namespaces/default/deployments/web", self.patch_deploy)
        return app

    async def version(self, _: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                                  "platform": "linux/amd64"})

    async def api(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"]})

    async def apis(self, _: web.Request) -> web.Response:
        groups: dict[str, list[str]] = {}
        for info in self.resources:
            if info.group and info.version not in groups.setdefault(info.group, []):
                groups[info.group].append(info.version)
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
             "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
            for g, vs in groups.items()]})

    async def resource_list(self, request: web.Request) -> web.Response:
        group, version = request.match_info.get("group", ""), request.match_info["version"]
        found = [i for i in self.resources if i.group == group and i.version == version]
        if not found:
            raise web.HTTPNotFound()
        gv = f"{group}/{version}" if group else version
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                  "groupVersion": gv,
                                  "resources": [_legacy_resource(i) for i in found]})

    async def v3_index(self, request: web.Request) -> web.Response:
        self.openapi_requests.append(request.path_qs)
        return web.json_response(self.builder.v3_index())

    async def v3_doc(self, request: web.Request) -> web.Response:
        self.openapi_requests.append(request.path_qs)
        try:
            body = self.builder.v3_document(request.match_info["gv"])
        except KeyError:
            raise web.HTTPNotFound() from None
        return web.Response(body=body, content_type="application/json")

    def _deployment(self, image: str, applied: str) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5",
                         "uid": "u1", "generation": 1, "annotations": {
                             "kubectl.kubernetes.io/last-applied-configuration": applied}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "api", "image": image,
                                         "ports": [{"containerPort": 80}]}]}}},
        }

    async def get_deploy(self, _: web.Request) -> web.Response:
        applied = self._deployment("nginx:1.25", "")
        applied["metadata"] = {"name": "web", "namespace": "default"}
        return web.json_response(self._deployment("nginx:1.25", json.dumps(applied)))

    async def patch_deploy(self, request: web.Request) -> web.Response:
        self.patches.append((request.content_type, await request.json()))
        return web.json_response(self._deployment("nginx:1.26", "{}"))


@pytest.fixture
async def fake_server(builder: OpenAPIBuilder) -> AsyncIterator[tuple[str, FakeServer]]:
    fake = FakeServer(builder, RESOURCES)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}", fake
    finally:
        await runner.cleanup()


@pytest.fixture
def kubectl_env(tmp_path: Path) -> dict[str, str]:
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl not installed")
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "KUBECACHEDIR": str(home / "cache"), "KUBECONFIG": str(home / "none")}


async def kubectl(env: dict[str, str], server: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, f"--server={server}", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_kubectl_explain_builtin_field(
    fake_server: tuple[str, FakeServer], kubectl_env: dict[str, str]
) -> None:
    server, fake = fake_server
    rc, out, err = await kubectl(kubectl_env, server, "explain", "deployments.spec.replicas",
                                 "--api-version=apps/v1")
    assert rc == 0, err
    assert "replicas" in out and "<integer>" in out
    assert "Number of desired pods" in out
    assert any(p.startswith("/openapi/v3/apis/apps/v1?hash=") for p in fake.openapi_requests)


async def test_kubectl_explain_follows_refs_into_lists(
    fake_server: tuple[str, FakeServer], kubectl_env: dict[str, str]
) -> None:
    server, _ = fake_server
    rc, out, err = await kubectl(kubectl_env, server, "explain", "pods.spec.containers")
    assert rc == 0, err
    assert "containers <[]Container>" in out
    assert "imagePullPolicy" in out and "livenessProbe" in out


async def test_kubectl_explain_custom_resource(
    fake_server: tuple[str, FakeServer], kubectl_env: dict[str, str]
) -> None:
    server, _ = fake_server
    rc, out, err = await kubectl(kubectl_env, server, "explain", "widgets.spec")
    assert rc == 0, err
    assert "Desired state of the widget." in out
    assert "size" in out and "How big the widget is, in furlongs." in out


async def test_kubectl_apply_computes_smp_from_our_schemas(
    fake_server: tuple[str, FakeServer], kubectl_env: dict[str, str], tmp_path: Path
) -> None:
    server, fake = fake_server
    manifest = tmp_path / "web.yaml"
    manifest.write_text(json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "containers": [{"name": "api", "image": "nginx:1.26",
                                     "ports": [{"containerPort": 80}]}]}}},
    }))
    rc, out, err = await kubectl(kubectl_env, server, "apply", "-f", str(manifest))
    assert rc == 0, err
    assert "warning" not in err.lower(), err  # no fallback from our v3 schemas
    assert len(fake.patches) == 1
    content_type, body = fake.patches[0]
    assert content_type == SMP
    pod_spec = body["spec"]["template"]["spec"]
    assert pod_spec["$setElementOrder/containers"] == [{"name": "api"}]
    assert pod_spec["containers"] == [{"image": "nginx:1.26", "name": "api"}]
