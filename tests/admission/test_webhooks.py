"""Admission webhooks: rule matching and response checks (pure), and real HTTPS webhooks called by
the in-process API server (a tiny aiohttp webhook server with a certificate from a test CA)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from kybernetes.api.resources import BUILTIN
from kybernetes.apiserver.admission import webhook_rules as wr
from kybernetes.apiserver.admission.chain import Attributes
from kybernetes.pki import certs
from tests.conftest import ApiClient

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def info_of(group: str, plural: str) -> Any:
    return next(i for i in BUILTIN if i.group == group and i.plural == plural)


def attrs(group: str = "", plural: str = "pods", op: str = "CREATE", ns: str = "default", sub: str = "", obj: Obj | None = None) -> Attributes:
    return Attributes(info=info_of(group, plural), operation=op, namespace=ns, name="x", subresource=sub,
                      obj=obj if obj is not None else {"metadata": {"name": "x"}})


@pytest.mark.parametrize("rule,a,want", [
    pytest.param({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}, attrs(), True, id="exact"),
    pytest.param({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}, attrs(sub="status"), False,
                 id="star-excludes-subresources"),
    pytest.param({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}, attrs(sub="status"), True, id="star-star"),
    pytest.param({"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*"]}, attrs(op="UPDATE"), True,
                 id="pods-star-includes-main"),
    pytest.param({"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/status"]}, attrs(op="UPDATE"),
                 False, id="status-only"),
    pytest.param({"operations": ["CREATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["pods"]}, attrs(), False, id="group"),
    pytest.param({"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}, attrs(), False, id="operation"),
    pytest.param({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"}, attrs(), False,
                 id="cluster-scope"),
    pytest.param({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"},
                 attrs(plural="namespaces", ns=""), True, id="namespaces-are-cluster"),
    pytest.param({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Namespaced"},
                 attrs(plural="namespaces", ns=""), False, id="namespaces-not-namespaced"),
])
def test_rule_matching(rule: Obj, a: Attributes, want: bool) -> None:
    assert wr.rule_matches(rule, a) is want


def test_selectors_and_exemptions() -> None:
    hook = wr.Webhook.from_config("c", {"name": "h.example.com", "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
                                                                          "resources": ["*"]}],
                                        "namespaceSelector": {"matchLabels": {"team": "a"}},
                                        "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}})
    assert wr.matches(hook, attrs(), {"team": "a"})
    assert not wr.matches(hook, attrs(), {"team": "b"})
    assert not wr.matches(hook, attrs(obj={"metadata": {"labels": {"skip": "1"}}}), {"team": "a"})
    cluster = attrs("storage.k8s.io", "storageclasses", ns="")
    assert wr.matches(hook, cluster, None)           # the namespace selector does not apply to cluster-scoped objects
    assert not wr.matches(hook, attrs(wr.GROUP, "validatingwebhookconfigurations", ns=""), None)


def test_response_checks_and_denials() -> None:
    ok = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": True}}
    assert wr.parse_response("h", ok, "u", "v1", False).allowed
    with pytest.raises(wr.WebhookCallError, match='expected response.uid="u", got "v"'):
        wr.parse_response("h", {**ok, "response": {"uid": "v", "allowed": True}}, "u", "v1", False)
    patch = base64.b64encode(b'[{"op":"add","path":"/a","value":1}]').decode()
    with pytest.raises(wr.WebhookCallError, match="response.patch but not response.patchType"):
        wr.parse_response("h", {**ok, "response": {"uid": "u", "allowed": True, "patch": patch}}, "u", "v1", True)
    v = wr.parse_response("h", {**ok, "response": {"uid": "u", "allowed": True, "patch": patch, "patchType": "JSONPatch"}}, "u", "v1", True)
    assert v.patch == [{"op": "add", "path": "/a", "value": 1}]
    e = wr.denied("h.example.com", {"code": 403, "reason": "Forbidden", "message": "no"})
    assert (e.code, e.reason, e.message) == (403, "Forbidden", 'admission webhook "h.example.com" denied the request: no')
    e = wr.denied("h.example.com", None)
    assert (e.code, e.message) == (400, 'admission webhook "h.example.com" denied the request without explanation')


# ------------------------------------------------------------------------------------------
# a real HTTPS webhook
@dataclass
class WebhookServer:
    port: int
    ca_bundle: str
    reviews: dict[str, list[Obj]] = field(default_factory=dict)
    queries: dict[str, list[str]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


def _respond(review: Obj, **response: Any) -> web.Response:
    return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                              "response": {"uid": review["request"]["uid"], **response}})


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookServer]:
    ca, ca_key = certs.make_ca("webhook-test-ca")
    cert, key = certs.make_serving_cert(ca, ca_key, ["hook.wh.svc"], [ipaddress.ip_address("127.0.0.1")])
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        Path(d, "tls.crt").write_bytes(certs.cert_to_pem(cert))
        Path(d, "tls.key").write_bytes(certs.key_to_pem(key))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(Path(d, "tls.crt")), str(Path(d, "tls.key")))
    server = WebhookServer(0, base64.b64encode(certs.cert_to_pem(ca)).decode())

    async def handle(request: web.Request) -> web.StreamResponse:
        review = await request.json()
        server.reviews.setdefault(request.path, []).append(review)
        server.queries.setdefault(request.path, []).append(request.query_string)
        obj = review["request"].get("object") or {}
        if request.path == "/deny":
            return _respond(review, allowed=False, status={"code": 403, "reason": "Forbidden", "message": "configmaps named deny-me are not welcome"})
        if request.path == "/deny-plain":
            return _respond(review, allowed=False)
        if request.path == "/slow":
            await asyncio.sleep(2.5)
            return _respond(review, allowed=True)
        if request.path == "/bad-uid":
            return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                      "response": {"uid": "nope", "allowed": True}})
        if request.path == "/mutate":
            ops: list[Obj] = []
            if not (obj.get("metadata") or {}).get("labels"):
                ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
            ops.append({"op": "add", "path": "/metadata/labels/mutated", "value": "yes"})
            ops.append({"op": "add", "path": "/data", "value": {"injected": "by-webhook"}})
            patch = base64.b64encode(orjson.dumps(ops)).decode()
            return _respond(review, allowed=True, patchType="JSONPatch", patch=patch, warnings=["mutated by the test webhook"])
        return _respond(review, allowed=True, warnings=["seen by the test webhook"])

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server
    finally:
        await runner.cleanup()


def hook(name: str, client_config: Obj, *, resources: tuple[str, ...] = ("configmaps",), operations: tuple[str, ...] = ("CREATE",),
         **extra: Any) -> Obj:
    return {"name": name, "clientConfig": client_config, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 1, "rules": [{"operations": list(operations), "apiGroups": [""], "apiVersions": ["v1"],
                                            "resources": list(resources)}], **extra}


async def configure(api: ApiClient, kind: str, name: str, *hooks: Obj) -> None:
    plural = kind.lower() + "s"
    st, doc, _ = await api.post(f"/apis/admissionregistration.k8s.io/v1/{plural}",
                                {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
                                 "webhooks": list(hooks)})
    assert st == 201, doc


def cm(name: str, **labels: str) -> Obj:
    md: Obj = {"name": name}
    if labels:
        md["labels"] = labels
    return {"metadata": md}


async def test_a_denying_webhook_is_obeyed(api: ApiClient, webhook: WebhookServer) -> None:
    await configure(api, "ValidatingWebhookConfiguration", "policy",
                    hook("deny.example.com", {"url": webhook.url("/deny"), "caBundle": webhook.ca_bundle},
                         objectSelector={"matchLabels": {"check": "yes"}}),
                    hook("plain.example.com", {"url": webhook.url("/deny-plain"), "caBundle": webhook.ca_bundle},
                         objectSelector={"matchLabels": {"check": "plain"}}))
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("deny-me", check="yes"))
    assert (st, doc["reason"], doc["message"]) == (403, "Forbidden", 'admission webhook "deny.example.com" denied the request: '
                                                                     "configmaps named deny-me are not welcome")
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("other", check="plain"))
    assert (st, doc["message"]) == (400, 'admission webhook "plain.example.com" denied the request without explanation')
    st, _, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("unchecked"))
    assert st == 201
    assert (await api.get("/api/v1/namespaces/default/configmaps/deny-me"))[0] == 404
    # what the webhook received
    [review] = webhook.reviews["/deny"]
    req = review["request"]
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert (req["operation"], req["namespace"], req["name"], req["dryRun"]) == ("CREATE", "default", "deny-me", False)
    assert req["userInfo"]["username"] == "system:anonymous"
    assert req["object"]["metadata"]["name"] == "deny-me" and req["oldObject"] is None
    assert req["options"]["kind"] == "CreateOptions"
    assert webhook.queries["/deny"] == ["timeout=1s"]


async def test_timeouts_follow_the_failure_policy(api: ApiClient, webhook: WebhookServer) -> None:
    cfg = {"url": webhook.url("/slow"), "caBundle": webhook.ca_bundle}
    await configure(api, "ValidatingWebhookConfiguration", "slow",
                    hook("ignore.example.com", cfg, failurePolicy="Ignore", objectSelector={"matchLabels": {"policy": "ignore"}}),
                    hook("fail.example.com", cfg, failurePolicy="Fail", objectSelector={"matchLabels": {"policy": "fail"}}))
    st, _, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("admitted", policy="ignore"))
    assert st == 201
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("refused", policy="fail"))
    assert (st, doc["reason"]) == (500, "InternalError")
    assert doc["message"] == (f'Internal error occurred: failed calling webhook "fail.example.com": failed to call webhook: '
                              f'Post "{webhook.url("/slow")}?timeout=1s": context deadline exceeded')
    assert (await api.get("/api/v1/namespaces/default/configmaps/refused"))[0] == 404


async def test_unreachable_and_invalid_webhooks(api: ApiClient, webhook: WebhookServer) -> None:
    await configure(api, "ValidatingWebhookConfiguration", "broken",
                    hook("uid.example.com", {"url": webhook.url("/bad-uid"), "caBundle": webhook.ca_bundle},
                         objectSelector={"matchLabels": {"case": "uid"}}),
                    hook("tls.example.com", {"url": webhook.url("/ok")},  # no caBundle: the test CA is not trusted
                         objectSelector={"matchLabels": {"case": "tls"}}))
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("a", case="uid"))
    assert st == 500 and 'received invalid webhook response: expected response.uid="' in doc["message"]
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("b", case="tls"))
    assert st == 500 and 'failed calling webhook "tls.example.com": failed to call webhook' in doc["message"]
    assert "/ok" not in webhook.reviews   # the handshake failed: nothing was sent


async def test_mutating_webhook_patch_and_warnings(api: ApiClient, webhook: WebhookServer) -> None:
    await configure(api, "MutatingWebhookConfiguration", "inject",
                    hook("mutate.example.com", {"url": webhook.url("/mutate"), "caBundle": webhook.ca_bundle}))
    await configure(api, "ValidatingWebhookConfiguration", "observe",
                    hook("observe.example.com", {"url": webhook.url("/observe"), "caBundle": webhook.ca_bundle}))
    st, doc, headers = await api.post("/api/v1/namespaces/default/configmaps", cm("patched"))
    assert st == 201, doc
    assert doc["metadata"]["labels"] == {"mutated": "yes"} and doc["data"] == {"injected": "by-webhook"}
    assert headers.getall("Warning") == ['299 - "mutated by the test webhook"', '299 - "seen by the test webhook"']
    # validating webhooks see the mutated object; mutating ones see it before uid/creationTimestamp
    assert webhook.reviews["/observe"][0]["request"]["object"]["data"] == {"injected": "by-webhook"}
    assert "uid" not in webhook.reviews["/mutate"][0]["request"]["object"]["metadata"]
    _, stored, _ = await api.get("/api/v1/namespaces/default/configmaps/patched")
    assert stored["data"] == {"injected": "by-webhook"}
    # dry-run: sideEffects None webhooks are called with dryRun true, nothing is stored
    st, _, _ = await api.post("/api/v1/namespaces/default/configmaps?dryRun=All", cm("dry"))
    assert st == 201 and webhook.reviews["/mutate"][-1]["request"]["dryRun"] is True
    assert (await api.get("/api/v1/namespaces/default/configmaps/dry"))[0] == 404


async def test_update_delete_and_namespace_selector(api: ApiClient, webhook: WebhookServer) -> None:
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "watched", "labels": {"admission": "on"}}}))[0] == 201
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "free"}}))[0] == 201
    for ns in ("watched", "free"):
        assert (await api.post(f"/api/v1/namespaces/{ns}/configmaps", cm("c")))[0] == 201
    await configure(api, "ValidatingWebhookConfiguration", "changes",
                    hook("record.example.com", {"url": webhook.url("/record"), "caBundle": webhook.ca_bundle},
                         operations=("UPDATE",), namespaceSelector={"matchLabels": {"admission": "on"}}),
                    hook("nodelete.example.com", {"url": webhook.url("/deny"), "caBundle": webhook.ca_bundle},
                         operations=("DELETE",), namespaceSelector={"matchLabels": {"admission": "on"}}))
    for ns in ("watched", "free"):
        assert (await api.patch(f"/api/v1/namespaces/{ns}/configmaps/c", {"data": {"k": "v"}}))[0] == 200
    [review] = webhook.reviews["/record"]
    req = review["request"]
    assert (req["operation"], req["namespace"], req["options"]["kind"]) == ("UPDATE", "watched", "UpdateOptions")
    assert req["object"]["data"] == {"k": "v"} and "data" not in req["oldObject"]
    st, doc, _ = await api.delete("/api/v1/namespaces/watched/configmaps/c")
    assert st == 403 and doc["message"].startswith('admission webhook "nodelete.example.com" denied the request')
    delete_req = webhook.reviews["/deny"][-1]["request"]
    assert delete_req["operation"] == "DELETE" and delete_req["object"] is None and delete_req["oldObject"]["metadata"]["name"] == "c"
    assert (await api.delete("/api/v1/namespaces/free/configmaps/c"))[0] == 200


async def test_service_reference_and_configuration_validation(api: ApiClient, webhook: WebhookServer) -> None:
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "wh"}}))[0] == 201
    svc = {"metadata": {"name": "hook"}, "spec": {"ports": [{"name": "https", "port": 443, "targetPort": webhook.port}]}}
    assert (await api.post("/api/v1/namespaces/wh/services", svc))[0] == 201
    ep = {"metadata": {"name": "hook"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                                                       "ports": [{"name": "https", "port": webhook.port}]}]}
    assert (await api.post("/api/v1/namespaces/wh/endpoints", ep))[0] == 201
    await configure(api, "ValidatingWebhookConfiguration", "by-service",
                    hook("svc.example.com", {"service": {"namespace": "wh", "name": "hook", "path": "/deny"},
                                             "caBundle": webhook.ca_bundle}))
    _, stored, _ = await api.get("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/by-service")
    h = stored["webhooks"][0]   # upstream defaults
    assert (h["failurePolicy"], h["matchPolicy"], h["clientConfig"]["service"]["port"], h["rules"][0]["scope"]) == \
        ("Fail", "Equivalent", 443, "*")
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("x"))
    assert st == 403 and "svc.example.com" in doc["message"]
    bad = hook("bad", {"url": "http://example.com/x"}, sideEffects="Some", timeoutSeconds=40)
    st, doc, _ = await api.post("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                                {"metadata": {"name": "bad"}, "webhooks": [bad]})
    assert st == 422
    assert [c["field"] for c in doc["details"]["causes"]] == ["webhooks[0].name", "webhooks[0].sideEffects", "webhooks[0].timeoutSeconds",
                                                              "webhooks[0].clientConfig.url"]


async def test_match_conditions_decide_which_requests_a_webhook_sees(api: ApiClient, webhook: WebhookServer) -> None:
    cfg = {"url": webhook.url("/deny"), "caBundle": webhook.ca_bundle}
    await configure(api, "ValidatingWebhookConfiguration", "conditions",
                    hook("named.example.com", cfg, objectSelector={"matchLabels": {"case": "named"}}, matchConditions=[
                        {"name": "not-exempt", "expression": "object.metadata.name != 'exempt'"},
                        {"name": "anonymous", "expression": "request.userInfo.username == 'system:anonymous'"}]),
                    hook("broken-fail.example.com", cfg, failurePolicy="Fail",
                         objectSelector={"matchLabels": {"case": "fail"}},
                         matchConditions=[{"name": "missing", "expression": "object.data.x == 'y'"}]),
                    hook("broken-ignore.example.com", cfg, failurePolicy="Ignore",
                         objectSelector={"matchLabels": {"case": "ignore"}},
                         matchConditions=[{"name": "missing", "expression": "object.data.x == 'y'"}]))
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("checked", case="named"))
    assert (st, doc["message"]) == (403, 'admission webhook "named.example.com" denied the request: '
                                         "configmaps named deny-me are not welcome")
    assert (await api.post("/api/v1/namespaces/default/configmaps", cm("exempt", case="named")))[0] == 201
    assert [r["request"]["name"] for r in webhook.reviews["/deny"]] == ["checked"]
    # a condition that fails to evaluate: Fail refuses without calling, Ignore skips the webhook
    st, doc, _ = await api.post("/api/v1/namespaces/default/configmaps", cm("f", case="fail"))
    assert (st, doc["reason"]) == (500, "InternalError")
    assert doc["message"] == ("Internal error occurred: failed calling webhook \"broken-fail.example.com\": failed to "
                              "evaluate match conditions: matchCondition 'missing': no such key: data")
    assert (await api.post("/api/v1/namespaces/default/configmaps", cm("i", case="ignore")))[0] == 201
    assert len(webhook.reviews["/deny"]) == 1
    # a condition that does not compile is refused with the configuration
    bad = hook("bad.example.com", cfg, matchConditions=[{"name": "c", "expression": "object.metadata.name =="}])
    st, doc, _ = await api.post("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                                {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                                 "metadata": {"name": "bad"}, "webhooks": [bad]})
    assert (st, doc["reason"]) == (422, "Invalid")
    assert doc["details"]["causes"][0]["field"] == "webhooks[0].matchConditions[0].expression"


async def test_kubectl_columns_for_webhook_configurations(api: ApiClient, webhook: WebhookServer) -> None:
    cfg = {"url": webhook.url("/allow"), "caBundle": webhook.ca_bundle}
    await configure(api, "MutatingWebhookConfiguration", "two", hook("a.example.com", cfg), hook("b.example.com", cfg))
    st, table, _ = await api.get("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                                 headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert st == 200, table
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Webhooks", "Age"]
    assert [r["cells"][:2] for r in table["rows"]] == [["two", 2]]
