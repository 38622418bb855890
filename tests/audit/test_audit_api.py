"""Integration: an API server with an audit policy and log; requests produce the right events."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kybernetes.apiserver.audit import AuditConfig, LogOptions, parse_policy
from kybernetes.storage import open_store
from tests.conftest import ApiClient, start_test_server
from tests.harness import wait_for

pytestmark = pytest.mark.integration

POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "rules": [
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*"]},
        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "Request", "resources": [{"group": "", "resources": ["configmaps"]}], "namespaces": ["req"]},
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}],
         "namespaces": ["rr"], "omitManagedFields": True},
        {"level": "Metadata", "omitStages": ["RequestReceived"], "resources": [{"group": "", "resources": ["nodes"]}]},
        {"level": "Metadata"},
    ],
}


class Audited:
    def __init__(self, api: ApiClient, log: Path) -> None:
        self.api = api
        self.log = log

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        data = self.log.read_bytes()
        lines = data.split(b"\n")[:-1]  # the writer may be mid-line: only complete lines count
        return [orjson.loads(x) for x in lines if x.strip()]

    async def events_of(self, audit_id: str, count: int) -> list[dict[str, Any]]:
        await wait_for(lambda: len([e for e in self.events() if e["auditID"] == audit_id]) >= count,
                       timeout=10, what=f"{count} audit events for {audit_id}")
        await asyncio.sleep(0.05)  # nothing more should come
        return [e for e in self.events() if e["auditID"] == audit_id]


@contextlib.asynccontextmanager
async def audited(tmp_path: Path, policy: dict[str, Any] = POLICY, **log_opts: Any) -> AsyncIterator[Audited]:
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    log = tmp_path / "audit" / "audit.log"
    cfg = AuditConfig(parse_policy(policy), LogOptions(str(log), **log_opts))
    srv, task, port = await start_test_server(store, audit=cfg)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield Audited(ApiClient(f"http://127.0.0.1:{port}", session, srv), log)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[Audited]:
    async with audited(tmp_path) as a:
        yield a


async def ensure_ns(api: ApiClient, name: str) -> None:
    code, body, _ = await api.post("/api/v1/namespaces", {"metadata": {"name": name}})
    assert code in (201, 409), body


def stages(events: list[dict[str, Any]]) -> list[str]:
    return [e["stage"] for e in events]


async def test_metadata_level_for_secrets_never_logs_their_data(audit: Audited) -> None:
    secret_value = "audit-plain-" + base64.b32encode(b"s3cr3t").decode()
    b64 = base64.b64encode(secret_value.encode()).decode()
    code, body, headers = await audit.api.post(
        "/api/v1/namespaces/default/secrets",
        {"metadata": {"name": "db"}, "data": {"password": b64}, "stringData": {"other": secret_value}},
        headers={"User-Agent": "kubectl/v1.32.4 (linux/amd64)"})
    assert code == 201, body
    audit_id = headers["Audit-Id"]
    evs = await audit.events_of(audit_id, 2)
    assert stages(evs) == ["RequestReceived", "ResponseComplete"]
    done = evs[1]
    assert done["level"] == "Metadata" and done["verb"] == "create"
    assert done["apiVersion"] == "audit.k8s.io/v1" and done["kind"] == "Event"
    assert done["requestURI"] == "/api/v1/namespaces/default/secrets"
    assert done["objectRef"] == {"resource": "secrets", "namespace": "default", "name": "db", "apiVersion": "v1"}
    assert done["responseStatus"] == {"metadata": {}, "code": 201}
    assert done["user"]["username"] == "system:anonymous"
    assert done["sourceIPs"] == ["127.0.0.1"] and done["userAgent"] == "kubectl/v1.32.4 (linux/amd64)"
    assert done["requestReceivedTimestamp"] == evs[0]["requestReceivedTimestamp"] == evs[0]["stageTimestamp"]
    assert done["stageTimestamp"] >= done["requestReceivedTimestamp"]
    assert "requestObject" not in done and "responseObject" not in done
    # a read of the secret at Metadata level: still no data
    code, _, headers = await audit.api.get("/api/v1/namespaces/default/secrets/db")
    assert code == 200
    await audit.events_of(headers["Audit-Id"], 2)
    raw = audit.log.read_bytes()
    assert secret_value.encode() not in raw and b64.encode() not in raw


async def test_request_level_logs_the_request_body_only(audit: Audited) -> None:
    await ensure_ns(audit.api, "req")
    code, body, headers = await audit.api.post("/api/v1/namespaces/req/configmaps",
                                               {"metadata": {"name": "c1"}, "data": {"k": "v1"}})
    assert code == 201, body
    evs = await audit.events_of(headers["Audit-Id"], 2)
    assert "requestObject" not in evs[0]  # not decoded yet at RequestReceived
    done = evs[1]
    assert done["level"] == "Request"
    assert done["requestObject"]["data"] == {"k": "v1"}
    assert "responseObject" not in done


async def test_request_response_level_logs_both_without_managed_fields(audit: Audited) -> None:
    await ensure_ns(audit.api, "rr")
    code, body, headers = await audit.api.post("/api/v1/namespaces/rr/configmaps",
                                               {"metadata": {"name": "c2"}, "data": {"k": "v2"}})
    assert code == 201 and body["metadata"].get("managedFields"), body
    done = (await audit.events_of(headers["Audit-Id"], 2))[1]
    assert done["level"] == "RequestResponse"
    assert done["requestObject"]["data"] == {"k": "v2"}
    assert done["responseObject"]["metadata"]["uid"] == body["metadata"]["uid"]
    assert "managedFields" not in done["responseObject"]["metadata"]
    # a PATCH: the patch document is the request object
    code, _, headers = await audit.api.patch("/api/v1/namespaces/rr/configmaps/c2", {"data": {"k": "v3"}})
    assert code == 200
    done = (await audit.events_of(headers["Audit-Id"], 2))[1]
    assert done["verb"] == "patch" and done["requestObject"] == {"data": {"k": "v3"}}
    assert done["responseObject"]["data"] == {"k": "v3"}
    # a list at RequestResponse: the list, items without managedFields
    code, _, headers = await audit.api.get("/api/v1/namespaces/rr/configmaps")
    done = (await audit.events_of(headers["Audit-Id"], 2))[1]
    assert done["verb"] == "list" and done["responseObject"]["kind"] == "ConfigMapList"
    assert all("managedFields" not in i["metadata"] for i in done["responseObject"]["items"])


async def test_errors_carry_their_status(audit: Audited) -> None:
    code, _, headers = await audit.api.get("/api/v1/namespaces/default/configmaps/missing")
    assert code == 404
    done = (await audit.events_of(headers["Audit-Id"], 2))[1]
    st = done["responseStatus"]
    assert st["code"] == 404 and st["reason"] == "NotFound" and st["status"] == "Failure"
    assert st["message"] == 'configmaps "missing" not found'
    assert done["objectRef"]["name"] == "missing"


async def test_level_none_and_omitted_stages(audit: Audited) -> None:
    code, _, h1 = await audit.api.get("/healthz")
    assert code == 200 and h1.get("Audit-Id")  # the header is set even when nothing is logged
    code, _, h2 = await audit.api.get("/api/v1/namespaces/default/events")
    code, _, h3 = await audit.api.get("/api/v1/nodes")
    evs = await audit.events_of(h3["Audit-Id"], 1)
    assert stages(evs) == ["ResponseComplete"]  # RequestReceived omitted by the rule
    ids = {e["auditID"] for e in audit.events()}
    assert h1["Audit-Id"] not in ids and h2["Audit-Id"] not in ids


async def test_client_supplied_audit_id_is_kept(audit: Audited) -> None:
    code, _, headers = await audit.api.get("/api/v1/namespaces", headers={"Audit-ID": "my-own-id-123"})
    assert code == 200 and headers["Audit-Id"] == "my-own-id-123"
    evs = await audit.events_of("my-own-id-123", 2)
    assert evs[1]["verb"] == "list" and evs[1]["objectRef"] == {"resource": "namespaces", "apiVersion": "v1"}


async def test_watch_has_response_started(audit: Audited) -> None:
    url = f"{audit.api.base}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
    async with audit.api.session.get(url) as resp:
        assert resp.status == 200
        audit_id = resp.headers["Audit-Id"]
        await resp.read()
    evs = await audit.events_of(audit_id, 3)
    assert stages(evs) == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert all(e["verb"] == "watch" for e in evs)
    assert evs[1]["responseStatus"] == {"metadata": {}, "code": 200}


async def test_failed_authentication_is_audited_without_a_user(audit: Audited) -> None:
    code, body, headers = await audit.api.get("/api/v1/namespaces",
                                              headers={"Authorization": "Bearer not-a-valid-token"})
    assert code == 401, body
    evs = await audit.events_of(headers["Audit-Id"], 2)
    assert stages(evs) == ["RequestReceived", "ResponseComplete"]
    assert evs[1]["user"] == {} and evs[1]["responseStatus"]["code"] == 401


async def test_request_level_on_secrets_does_log_their_data(tmp_path: Path) -> None:
    """As upstream: a Request-level rule logs Secret bodies (docs warn: keep secrets at Metadata)."""
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Request"}]}
    async with audited(tmp_path, policy) as a:
        code, _, headers = await a.api.post("/api/v1/namespaces/default/secrets",
                                            {"metadata": {"name": "s"}, "data": {"k": "c2VjcmV0"}})
        assert code == 201
        done = (await a.events_of(headers["Audit-Id"], 2))[1]
        assert done["requestObject"]["data"] == {"k": "c2VjcmV0"}


async def test_rotation_while_serving(tmp_path: Path) -> None:
    async with audited(tmp_path, max_size_mb=1, max_backups=2) as a:
        await ensure_ns(a.api, "rr")
        big = {"metadata": {"name": "big"}, "data": {"k": "x" * 200_000}}
        code, _, _ = await a.api.post("/api/v1/namespaces/rr/configmaps", big)
        assert code == 201
        for _ in range(6):  # each GET logs ~200 kB (RequestResponse)
            code, _, headers = await a.api.get("/api/v1/namespaces/rr/configmaps/big")
            assert code == 200
        await a.events_of(headers["Audit-Id"], 2)
        files = sorted(p.name for p in a.log.parent.iterdir())
        assert "audit.log" in files and 2 <= len(files) <= 3, files
        assert all((a.log.parent / n).stat().st_size <= 1024 * 1024 for n in files)
        assert a.api.server.audit.statistics()["rotations"] >= 1


async def test_a_handler_bug_is_logged_at_the_panic_stage(audit: Audited, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(audit.api.server.handlers, "resource", broken)
    code, body, headers = await audit.api.get("/api/v1/namespaces/default/pods")
    assert code == 500 and body["reason"] == "InternalError"
    evs = await audit.events_of(headers["Audit-Id"], 2)
    assert stages(evs) == ["RequestReceived", "Panic"]
    assert evs[1]["responseStatus"]["code"] == 500 and evs[1]["responseStatus"]["reason"] == "InternalError"
    assert audit.api.server.audit.statistics()["panics"] == 1


async def test_requests_denied_by_authorization_are_audited(audit: Audited, monkeypatch: pytest.MonkeyPatch) -> None:
    from kybernetes.apiserver.authz.attributes import forbidden, from_request

    def deny(request: Any, user: Any) -> None:
        raise forbidden(from_request(user, request.method, request.path, request.query))

    monkeypatch.setattr(audit.api.server.authz, "authorize_request", deny)
    code, body, headers = await audit.api.get("/api/v1/namespaces/default/secrets/x")
    assert code == 403, body
    evs = await audit.events_of(headers["Audit-Id"], 2)
    assert stages(evs) == ["RequestReceived", "ResponseComplete"]
    assert evs[1]["user"]["username"] == "system:anonymous"
    assert evs[1]["responseStatus"]["reason"] == "Forbidden" and evs[1]["responseStatus"]["code"] == 403
    assert evs[1]["objectRef"] == {"resource": "secrets", "namespace": "default", "name": "x", "apiVersion": "v1"}


async def test_admission_annotates_the_audit_events(audit: Audited) -> None:
    """PodSecurity's enforce-policy and audit-violations, and a ValidatingAdmissionPolicy's Audit action."""
    code, body, _ = await audit.api.post("/api/v1/namespaces", {"metadata": {
        "name": "audited", "labels": {"pod-security.kubernetes.io/audit": "restricted"}}})
    assert code == 201, body
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
    code, body, headers = await audit.api.post("/api/v1/namespaces/audited/pods", pod)
    assert code == 201, body
    done = (await audit.events_of(headers["Audit-Id"], 2))[1]
    assert done["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "privileged:latest"
    assert done["annotations"]["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": privileged (container "c" must not set '
        'securityContext.privileged=true), allowPrivilegeEscalation != false')

    arg = "/apis/admissionregistration.k8s.io/v1"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": "cm-policy"},
              "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                               "operations": ["CREATE"], "resources": ["configmaps"]}]},
                       "validations": [{"expression": "object.data.k == 'ok'"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": "cm-audit"}, "spec": {"policyName": "cm-policy", "validationActions": ["Audit"]}}
    assert (await audit.api.post(f"{arg}/validatingadmissionpolicies", policy))[0] == 201
    assert (await audit.api.post(f"{arg}/validatingadmissionpolicybindings", binding))[0] == 201
    code, body, headers = await audit.api.post("/api/v1/namespaces/audited/configmaps",
                                               {"metadata": {"name": "c"}, "data": {"k": "bad"}})
    assert code == 201, body
    done = (await audit.events_of(headers["Audit-Id"], 2))[1]
    assert orjson.loads(done["annotations"]["validation.policy.admission.k8s.io/validation_failure"]) == [{
        "message": "failed expression: object.data.k == 'ok'", "policy": "cm-policy", "binding": "cm-audit",
        "expressionIndex": 0, "validationActions": ["Audit"]}]
