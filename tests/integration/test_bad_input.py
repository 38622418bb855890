"""Bad input gets a Kubernetes Status with the right code and reason, and loses nothing."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ApiClient

pytestmark = pytest.mark.integration

CM = "/api/v1/namespaces/default/configmaps"


def assert_status(code: int, doc: object, want_code: int, reason: str) -> dict:
    assert code == want_code, doc
    assert isinstance(doc, dict) and doc["kind"] == "Status" and doc["apiVersion"] == "v1", doc
    assert doc["status"] == "Failure" and doc["code"] == want_code and doc["reason"] == reason, doc
    return doc


async def test_malformed_json_and_yaml(api: ApiClient) -> None:
    code, doc, _ = await api.post(CM, None, raw=b'{"metadata": {"name": "x"', content_type="application/json")
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.post(CM, None, raw=b"metadata: [unclosed\n  name: x", content_type="application/yaml")
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.post(CM, None, raw=b"[1, 2]", content_type="application/json")
    assert_status(code, doc, 400, "BadRequest")


async def test_yaml_body_is_accepted(api: ApiClient) -> None:
    code, doc, _ = await api.post(CM, None, raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: b\n", content_type="application/yaml")
    assert code == 201 and doc["data"] == {"a": "b"}


async def test_python_client_body_without_content_type_or_kind(api: ApiClient) -> None:
    code, doc, _ = await api.post(CM, None, raw=b'{"metadata": {"name": "nokind"}}', content_type="")
    assert code == 201, doc
    assert doc["kind"] == "ConfigMap" and doc["apiVersion"] == "v1"


async def test_wrong_api_version_and_kind(api: ApiClient) -> None:
    code, doc, _ = await api.post(CM, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    assert_status(code, doc, 400, "BadRequest")
    assert "apps/v1" in doc["message"]
    code, doc, _ = await api.post(CM, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}})
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.post("/api/v1/namespaces/default/widgets", {"metadata": {"name": "a"}})
    assert_status(code, doc, 404, "NotFound")


async def test_namespace_mismatch(api: ApiClient) -> None:
    code, doc, _ = await api.post(CM, {"metadata": {"name": "a", "namespace": "kube-system"}})
    assert_status(code, doc, 400, "BadRequest")
    assert "does not match the namespace" in doc["message"]


@pytest.mark.parametrize("name", ["Bad_Name", "UPPER", "-lead", "a" * 254, "dots..x"])
async def test_invalid_names(api: ApiClient, name: str) -> None:
    code, doc, _ = await api.post(CM, {"metadata": {"name": name}})
    d = assert_status(code, doc, 422, "Invalid")
    assert d["details"]["kind"] == "ConfigMap"
    assert d["details"]["causes"][0]["field"] == "metadata.name"


async def test_missing_name_and_required_fields(api: ApiClient) -> None:
    code, doc, _ = await api.post(CM, {"metadata": {}})
    d = assert_status(code, doc, 422, "Invalid")
    assert d["details"]["causes"][0] == {"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}
    code, doc, _ = await api.post("/apis/apps/v1/namespaces/default/deployments", {"metadata": {"name": "d"}, "spec": {"replicas": 1}})
    d = assert_status(code, doc, 422, "Invalid")
    fields = {c["field"] for c in d["details"]["causes"]}
    assert "spec.selector" in fields and any(f.startswith("spec.template") for f in fields)
    code, doc, _ = await api.post("/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": {"containers": []}})
    assert_status(code, doc, 422, "Invalid")


async def test_unknown_fields_strict_warn_ignore(api: ApiClient) -> None:
    body = {"metadata": {"name": "uf"}, "data": {"a": "b"}, "bogus": 1}
    code, doc, _ = await api.post(CM, body, params={"fieldValidation": "Strict"})
    assert_status(code, doc, 400, "BadRequest")
    assert 'unknown field "bogus"' in doc["message"]
    code, doc, headers = await api.post(CM, body, params={"fieldValidation": "Warn"})
    assert code == 201 and "bogus" not in doc
    assert any("unknown field" in w for w in headers.getall("Warning", []))
    body["metadata"]["name"] = "uf2"
    code, doc, _ = await api.post(CM, body, params={"fieldValidation": "Ignore"})
    assert code == 201 and "bogus" not in doc


async def test_duplicate_fields_strict(api: ApiClient) -> None:
    raw = b'{"metadata": {"name": "dup", "name": "dup2"}}'
    code, doc, _ = await api.post(CM, None, raw=raw, params={"fieldValidation": "Strict"})
    assert_status(code, doc, 400, "BadRequest")
    assert "duplicate field" in doc["message"]


async def test_wrong_type_is_bad_request(api: ApiClient) -> None:
    code, doc, _ = await api.post("/apis/apps/v1/namespaces/default/deployments", {"metadata": {"name": "t"}, "spec": {"replicas": "three"}})
    assert_status(code, doc, 400, "BadRequest")


async def test_body_too_large(api: ApiClient) -> None:
    big = {"metadata": {"name": "big"}, "data": {"a": "x" * (4 * 1024 * 1024)}}
    code, doc, _ = await api.post(CM, big)
    assert_status(code, doc, 413, "RequestEntityTooLarge")
    code, doc, _ = await api.get(CM + "/big")
    assert code == 404


async def test_stale_resource_version_conflict(api: ApiClient) -> None:
    code, cm, _ = await api.post(CM, {"metadata": {"name": "rv"}, "data": {"a": "1"}})
    assert code == 201
    stale = json.loads(json.dumps(cm))
    cm["data"]["a"] = "2"
    code, doc, _ = await api.put(CM + "/rv", cm)
    assert code == 200 and doc["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]
    stale["data"]["a"] = "3"
    code, doc, _ = await api.put(CM + "/rv", stale)
    d = assert_status(code, doc, 409, "Conflict")
    assert "the object has been modified" in d["message"]
    code, doc, _ = await api.get(CM + "/rv")
    assert doc["data"]["a"] == "2"


async def test_already_exists(api: ApiClient) -> None:
    assert (await api.post(CM, {"metadata": {"name": "ae"}}))[0] == 201
    code, doc, _ = await api.post(CM, {"metadata": {"name": "ae"}})
    d = assert_status(code, doc, 409, "AlreadyExists")
    assert d["message"] == 'configmaps "ae" already exists'
    assert d["details"] == {"name": "ae", "kind": "configmaps"}


async def test_missing_and_terminating_namespace(api: ApiClient) -> None:
    code, doc, _ = await api.post("/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "x"}})
    d = assert_status(code, doc, 404, "NotFound")
    assert d["message"] == 'namespaces "nope" not found'
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "term"}}))[0] == 201
    code, doc, _ = await api.delete("/api/v1/namespaces/term")
    assert code == 200 and doc["status"]["phase"] == "Terminating"
    code, doc, _ = await api.post("/api/v1/namespaces/term/configmaps", {"metadata": {"name": "x"}})
    d = assert_status(code, doc, 403, "Forbidden")
    assert "being terminated" in d["message"]


async def test_patches_that_do_not_apply(api: ApiClient) -> None:
    assert (await api.post(CM, {"metadata": {"name": "pa"}, "data": {"a": "1"}}))[0] == 201
    code, doc, _ = await api.patch(CM + "/pa", [{"op": "test", "path": "/data/a", "value": "9"}], content_type="application/json-patch+json")
    assert_status(code, doc, 422, "Invalid")
    code, doc, _ = await api.patch(CM + "/pa", [{"op": "remove", "path": "/data/zzz"}], content_type="application/json-patch+json")
    assert_status(code, doc, 422, "Invalid")
    code, doc, _ = await api.patch(CM + "/pa", {"op": "nonsense"}, content_type="application/json-patch+json")
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.patch(CM + "/pa", None, raw=b"{not json", content_type="application/merge-patch+json")
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.patch(CM + "/pa", {"data": {"a": 5}}, content_type="application/merge-patch+json")
    assert code in (400, 422), doc
    code, doc, _ = await api.patch(CM + "/missing", {"data": {}}, content_type="application/merge-patch+json")
    assert_status(code, doc, 404, "NotFound")
    code, doc, _ = await api.patch(CM + "/pa", {"data": {}}, content_type="text/plain")
    assert_status(code, doc, 415, "UnsupportedMediaType")
    code, doc, _ = await api.get(CM + "/pa")
    assert doc["data"] == {"a": "1"}


async def test_watch_at_compacted_revision_is_gone(api: ApiClient) -> None:
    for i in range(5):
        assert (await api.post(CM, {"metadata": {"name": f"w{i}"}}))[0] == 201
    code, lst, _ = await api.get(CM)
    rev = int(lst["metadata"]["resourceVersion"])
    store = api.server.store
    await store.compact(rev)
    code, doc, _ = await api.get(CM, params={"watch": "true", "resourceVersion": "1", "timeoutSeconds": "2"})
    if code == 200:  # delivered as an ERROR event in the stream
        ev = doc if isinstance(doc, dict) else json.loads(str(doc).splitlines()[0])
        assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
    else:
        assert_status(code, doc, 410, "Expired")


async def test_bad_selectors_and_params(api: ApiClient) -> None:
    code, doc, _ = await api.get(CM, params={"labelSelector": "a in (b"})
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.get(CM, params={"fieldSelector": "spec.bogus=1"})
    assert_status(code, doc, 400, "BadRequest")
    assert "field label not supported" in doc["message"]
    code, doc, _ = await api.get(CM, params={"continue": "garbage!!"})
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.post(CM, {"metadata": {"name": "dr"}}, params={"dryRun": "Some"})
    assert_status(code, doc, 400, "BadRequest")
    code, doc, _ = await api.get(CM, params={"resourceVersionMatch": "Exact"})
    assert_status(code, doc, 400, "BadRequest")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
object_like = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["v1", "apps/v1", "x", ""]) | st.text(max_size=5),
        "kind": st.sampled_from(["ConfigMap", "Pod", "Deployment", "Service", ""]) | st.text(max_size=5),
        "metadata": st.fixed_dictionaries({}, optional={"name": st.text(max_size=15) | json_values, "labels": json_values, "namespace": json_values, "finalizers": json_values, "resourceVersion": json_values}) | json_values,
        "spec": json_values,
        "data": json_values,
        "status": json_values,
    },
)

TARGETS = [
    ("POST", "/api/v1/namespaces/default/configmaps"),
    ("POST", "/api/v1/namespaces/default/pods"),
    ("POST", "/apis/apps/v1/namespaces/default/deployments"),
    ("POST", "/api/v1/namespaces/default/services"),
    ("PUT", "/api/v1/namespaces/default/configmaps/keep"),
    ("PATCH", "/api/v1/namespaces/default/configmaps/keep"),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/keepd"),
]


async def test_fuzz_random_bodies_never_500(api: ApiClient) -> None:
    keep = {"metadata": {"name": "keep"}, "data": {"precious": "yes"}}
    assert (await api.post(CM, keep))[0] == 201
    dep = {"metadata": {"name": "keepd"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    assert (await api.post("/apis/apps/v1/namespaces/default/deployments", dep))[0] == 201
    sentinel = "/api/v1/namespaces/kube-system/configmaps"
    assert (await api.post(sentinel, {"metadata": {"name": "sentinel"}, "data": {"v": "1"}}))[0] == 201
    _, before, _ = await api.get(sentinel + "/sentinel")
    loop = asyncio.get_running_loop()
    failures: list[str] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(target=st.sampled_from(TARGETS), body=object_like | json_values,
           ct=st.sampled_from(["application/json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/json-patch+json", "application/yaml", ""]))
    def run(target: tuple[str, str], body: object, ct: str) -> None:
        method, path = target
        if method == "PATCH" and ct in ("application/json", "application/yaml", ""):
            ct = "application/merge-patch+json"
        if method == "PUT" and isinstance(body, dict):
            body = {**body, "metadata": {"name": "keep"}} if not isinstance(body.get("metadata"), dict) else body
        fut = asyncio.run_coroutine_threadsafe(api.request(method, path, body if body is not None else {}, content_type=ct), loop)
        code, doc, _ = fut.result(timeout=30)
        if code >= 500:
            failures.append(f"{method} {path} {ct} {body!r} -> {code} {doc!r}")

    await asyncio.to_thread(run)
    assert not failures, failures[:3]
    _, after, _ = await api.get(sentinel + "/sentinel")
    assert after == before  # an unrelated object is untouched
    _, ns_after, _ = await api.get("/api/v1/namespaces/default")
    assert ns_after["status"]["phase"] == "Active"
