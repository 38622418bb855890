"""The CertificateApproval, CertificateSigning and CertificateSubjectRestriction admission plugins:
the signer check itself (pure, with a recording authorizer), then against the TLS API server with
RBAC, with the real kubectl for approvals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kybernetes.apiserver.admission.certificates import authorized_for_signer
from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.authz.attributes import Attributes
from kybernetes.apiserver.authz.union import ALLOW, NO_OPINION, Result
from kybernetes.client.resources import CLUSTERROLEBINDINGS, CLUSTERROLES

from .conftest import CSRS, Env, csr, request_pem

Obj = dict[str, Any]
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


class Recording:
    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self.allowed = allowed
        self.asked: list[Attributes] = []

    def authorize(self, attrs: Attributes) -> Result:
        self.asked.append(attrs)
        return Result(ALLOW if (attrs.verb, attrs.name) in self.allowed else NO_OPINION)


@pytest.mark.parametrize(("allowed", "expected", "names_asked"), [
    ({("approve", "example.com/widgets")}, True, ["example.com/widgets"]),
    ({("approve", "example.com/*")}, True, ["example.com/widgets", "example.com/*"]),
    ({("sign", "example.com/widgets")}, False, ["example.com/widgets", "example.com/*"]),
    ({("approve", "other.io/*")}, False, ["example.com/widgets", "example.com/*"]),
])
def test_the_signer_check_asks_for_the_name_then_the_domain_wildcard(
        allowed: set[tuple[str, str]], expected: bool, names_asked: list[str]) -> None:
    authz = Recording(allowed)
    user = UserInfo(name="alice", groups=("system:authenticated",))
    assert authorized_for_signer(authz, user, "approve", "example.com/widgets") is expected
    assert [a.name for a in authz.asked] == names_asked
    first = authz.asked[0]
    assert (first.verb, first.api_group, first.api_version, first.resource, first.resource_request, first.user) == (
        "approve", "certificates.k8s.io", "*", "signers", True, user)


async def _grant(env: Env, name: str, user: str, rules: list[Obj]) -> None:
    await env.admin.create(CLUSTERROLES, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                          "metadata": {"name": name}, "rules": rules})
    await env.admin.create(CLUSTERROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})


def _signers(verb: str, *names: str) -> Obj:
    return {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": [verb], "resourceNames": list(names)}


def _conditions(obj: Obj) -> list[str]:
    return [c["type"] for c in (obj.get("status") or {}).get("conditions") or []]


async def test_approving_and_signing_need_the_verb_on_the_signer(env: Env) -> None:
    s = env.server
    alice = await s.identity("alice")
    # everything on the CSR API itself, nothing on signers yet
    await _grant(env, "csr-operator", "alice", [
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["get", "list"]},
        {"apiGroups": ["certificates.k8s.io"],
         "resources": ["certificatesigningrequests/approval", "certificatesigningrequests/status"],
         "verbs": ["update", "patch"]}])
    await env.admin.create(CSRS, csr("widget", request_pem("w")[0], signer="example.com/widgets",
                                     usages=("client auth",)))

    rc, out, err = await s.kubectl(alice, "certificate", "approve", "widget")
    assert rc != 0
    assert ('certificatesigningrequests.certificates.k8s.io "widget" is forbidden: user not permitted to approve '
            'requests with signerName "example.com/widgets"') in err
    assert _conditions(await env.admin.get(CSRS, "widget")) == []

    # the domain wildcard is enough
    await _grant(env, "widget-approver", "alice", [_signers("approve", "example.com/*")])
    rc, out, err = await s.kubectl(alice, "certificate", "approve", "widget")
    assert rc == 0 and "approved" in out, err
    current = await env.admin.get(CSRS, "widget")
    assert _conditions(current) == ["Approved"]

    # /status: a write that changes nothing needs no signer right; a condition or certificate does
    code, body = await s.request(alice, "PUT", f"{CSR_PATH}/widget/status", current)
    assert code == 200, body
    failed = {"type": "Failed", "status": "True", "reason": "NotOurs", "message": "left to another signer"}
    change = {**body, "status": {**body["status"], "conditions": [*body["status"]["conditions"], failed]}}
    code, status = await s.request(alice, "PUT", f"{CSR_PATH}/widget/status", change)
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == ('certificatesigningrequests.certificates.k8s.io "widget" is forbidden: '
                                 'user not permitted to sign requests with signerName "example.com/widgets"')
    assert _conditions(await env.admin.get(CSRS, "widget")) == ["Approved"]
    await _grant(env, "widget-signer", "alice", [_signers("sign", "example.com/widgets")])
    code, body = await s.request(alice, "PUT", f"{CSR_PATH}/widget/status", change)
    assert code == 200, body
    assert _conditions(await env.admin.get(CSRS, "widget")) == ["Approved", "Failed"]

    # the approve right is per domain: another domain's request stays refused
    await env.admin.create(CSRS, csr("gadget", request_pem("g")[0], signer="other.io/gadgets",
                                     usages=("client auth",)))
    rc, out, err = await s.kubectl(alice, "certificate", "approve", "gadget")
    assert rc != 0 and 'user not permitted to approve requests with signerName "other.io/gadgets"' in err


async def test_no_client_certificate_for_system_masters_through_the_api(env: Env) -> None:
    s = env.server
    admin = await s.admin()
    masters, _ = request_pem("mallory", ("system:masters",))
    body = csr("mallory", masters, signer="kubernetes.io/kube-apiserver-client", usages=("client auth",))
    code, status = await s.request(admin, "POST", CSR_PATH, body)
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == ('certificatesigningrequests.certificates.k8s.io "mallory" is forbidden: use of '
                                 'kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed')
    rc, _, err = await s.kubectl(admin, "create", "-f", "-", stdin=json.dumps(body))
    assert rc != 0 and "with system:masters group is not allowed" in err
    # other groups, and other signers, are not restricted
    devs, _ = request_pem("dave", ("devs",))
    code, _ = await s.request(admin, "POST", CSR_PATH, csr("dave", devs, signer="kubernetes.io/kube-apiserver-client",
                                                            usages=("client auth",)))
    assert code == 201
    code, _ = await s.request(admin, "POST", CSR_PATH, csr("elsewhere", masters, signer="example.com/x",
                                                            usages=("client auth",)))
    assert code == 201
