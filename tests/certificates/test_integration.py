"""Bootstrap tokens and CertificateSigningRequests against a real TLS API server with RBAC and
the Node authorizer, with the controller manager's certificate controllers and token cleaner
running in-process under the controller manager's identity; kubectl is the real binary."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from typing import Any

import pytest

from kybernetes.apiserver import bootstraptoken as bt
from kybernetes.client import ApiClient, Invalid, NotFound, Unauthorized
from kybernetes.client.resources import NODES, SECRETS

from .conftest import CSRS, Env, csr, eventually, request_pem

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


async def whoami(client: ApiClient) -> Obj:
    out: Obj = await client.request("POST", SSR, body=REVIEW)
    return dict(out["status"]["userInfo"])


async def issued(env: Env, name: str) -> str:
    try:
        obj = await env.admin.get(CSRS, name)
    except NotFound:
        return ""
    return str((obj.get("status") or {}).get("certificate") or "")


async def test_a_bootstrap_token_authenticates_until_deleted_and_expired_ones_are_cleaned(env: Env) -> None:
    await env.create_token(groups=("system:bootstrappers:kybernetes:default-node-token",))
    boot = env.as_token()
    wrong = env.as_token("abcdef.0000000000000000")
    unknown = env.as_token("zzzzzz.0123456789abcdef")
    try:
        me = await whoami(boot)
        assert me["username"] == "system:bootstrap:abcdef"
        assert me["groups"] == ["system:bootstrappers", "system:bootstrappers:kybernetes:default-node-token",
                                "system:authenticated"]
        for bad in (wrong, unknown):
            with pytest.raises(Unauthorized):
                await whoami(bad)
        # RBAC: the default group may create CSRs, nothing more
        await boot.create(CSRS, csr("mine", request_pem("x")[0], signer="example.com/x"))
        with pytest.raises(Exception, match="forbidden"):
            await boot.list(SECRETS, "kube-system")
        await env.admin.delete(SECRETS, "bootstrap-token-abcdef", "kube-system")
        await eventually(lambda: _rejected(boot), "the deleted token to stop working")
        # an expired token does not authenticate; the token cleaner deletes its Secret
        past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        await env.admin.create(SECRETS, bt.token_secret("aaaaaa.0123456789abcdef", ttl_seconds=3600, now=past),
                               "kube-system")
        await env.create_token("bbbbbb.0123456789abcdef", ttl=None)
        with pytest.raises(Unauthorized):
            await whoami(env.as_token("aaaaaa.0123456789abcdef"))
        await eventually(lambda: _gone(env, "bootstrap-token-aaaaaa"), "the expired token's Secret deleted")
        assert (await whoami(env.as_token("bbbbbb.0123456789abcdef")))["username"] == "system:bootstrap:bbbbbb"
        # a token that expires while in use
        await env.create_token("cccccc.0123456789abcdef", ttl=2)
        short = env.as_token("cccccc.0123456789abcdef")
        try:
            assert (await whoami(short))["username"] == "system:bootstrap:cccccc"
            await eventually(lambda: _rejected(short), "the token to expire", timeout=10)
        finally:
            await short.close()
    finally:
        for c in (boot, wrong, unknown):
            await c.close()


async def _rejected(client: ApiClient) -> bool:
    try:
        await whoami(client)
    except Unauthorized:
        return True
    return False


async def _gone(env: Env, name: str) -> bool:
    try:
        await env.admin.get(SECRETS, name, "kube-system")
    except NotFound:
        return True
    return False


async def test_a_node_csr_from_a_bootstrap_token_is_approved_signed_and_authenticates(env: Env) -> None:
    await env.create_token()
    boot = env.as_token()
    node = None
    try:
        # something else first: another subject, and another signer, stay pending
        sneaky, _ = request_pem("system:node:n1", ("system:masters",))
        await boot.create(CSRS, csr("sneaky", sneaky))
        client_req, _ = request_pem("system:node:n1", ("system:nodes",))
        await boot.create(CSRS, csr("other-signer", client_req, signer="kubernetes.io/kube-apiserver-client",
                                    usages=("client auth",)))
        req, key = request_pem("system:node:n1", ("system:nodes",))
        created = await boot.create(CSRS, csr("node-csr-n1", req, username="system:admin", groups=["system:masters"]))
        assert created["spec"]["username"] == "system:bootstrap:abcdef", "the server records the requester"
        assert "system:masters" not in created["spec"]["groups"]
        cert = await eventually(lambda: issued(env, "node-csr-n1"), "the node certificate")
        obj = await env.admin.get(CSRS, "node-csr-n1")
        approved = obj["status"]["conditions"][0]
        assert (approved["type"], approved["reason"]) == ("Approved", "AutoApproved")
        assert approved["message"] == "Auto approving kubelet client certificate after SubjectAccessReview."
        node = env.as_cert(cert, key)
        me = await whoami(node)
        assert me["username"] == "system:node:n1" and "system:nodes" in me["groups"]
        # the node may now register itself (Node authorizer)
        await node.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        for name in ("sneaky", "other-signer"):
            other = await env.admin.get(CSRS, name)
            assert not (other.get("status") or {}).get("conditions"), name
    finally:
        await boot.close()
        if node is not None:
            await node.close()


async def test_renewal_by_the_same_node_is_approved_as_selfnodeclient(env: Env) -> None:
    ident = await env.server.identity("system:node:n2", ("system:nodes",))
    node = env.as_cert(base64.b64encode(ident.cert.read_bytes()).decode(), ident.key.read_bytes())
    try:
        req, _ = request_pem("system:node:n2", ("system:nodes",))
        await node.create(CSRS, csr("renew-n2", req))
        await eventually(lambda: issued(env, "renew-n2"), "the renewed certificate")
        cond = (await env.admin.get(CSRS, "renew-n2"))["status"]["conditions"][0]
        assert cond["message"] == "Auto approving self kubelet client certificate after SubjectAccessReview."
        # another node's name is not renewal, and nodes may not ask for new nodes
        other, _ = request_pem("system:node:n3", ("system:nodes",))
        await node.create(CSRS, csr("n2-for-n3", other))
        await node.create(CSRS, csr("n2-again", request_pem("system:node:n2", ("system:nodes",))[0]))
        await eventually(lambda: issued(env, "n2-again"), "a later renewal")
        assert not ((await env.admin.get(CSRS, "n2-for-n3")).get("status") or {}).get("conditions")
    finally:
        await node.close()


async def test_kubectl_certificate_approve_and_the_csr_table(env: Env) -> None:
    s = env.server
    admin = await s.admin()
    req, key = request_pem("alice", ("devs",))
    rc, out, err = await s.kubectl(admin, "create", "-f", "-", stdin=json.dumps(
        csr("alice", req, signer="kubernetes.io/kube-apiserver-client", usages=("client auth",),
            expirationSeconds=3600)))
    assert rc == 0, err
    rc, out, err = await s.kubectl(admin, "get", "csr", "alice")
    assert rc == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    assert row.split()[2:] == ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "60m", "Pending"]
    rc, out, err = await s.kubectl(admin, "certificate", "approve", "alice")
    assert rc == 0 and "approved" in out, err
    cert = await eventually(lambda: issued(env, "alice"), "alice's certificate")
    rc, out, _ = await s.kubectl(admin, "get", "csr", "alice", "--no-headers")
    assert out.split()[-1] == "Approved,Issued"
    alice = env.as_cert(cert, key)
    try:
        me = await whoami(alice)
        assert me["username"] == "alice" and "devs" in me["groups"]
    finally:
        await alice.close()
    rc, out, err = await s.kubectl(admin, "certificate", "deny", "alice")
    assert rc != 0 and "already Approved" in err
    # denied with kubectl: never signed
    other, _ = request_pem("bob")
    await env.admin.create(CSRS, csr("bob", other, signer="kubernetes.io/kube-apiserver-client", usages=("client auth",)))
    rc, out, err = await s.kubectl(admin, "certificate", "deny", "bob")
    assert rc == 0, err
    rc, out, _ = await s.kubectl(admin, "get", "csr", "bob", "--no-headers")
    assert out.split()[-1] == "Denied"


async def test_approval_and_status_rules(env: Env) -> None:
    req, _ = request_pem("carol")
    obj = await env.admin.create(CSRS, csr("carol", req, signer="example.com/manual", usages=("client auth",)))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    approved = {"type": "Approved", "status": "True", "reason": "Test", "lastUpdateTime": now}
    denied = {"type": "Denied", "status": "True", "reason": "Test", "lastUpdateTime": now}
    # conditions and certificate through the object itself are ignored
    sneaky = {**obj, "status": {"conditions": [approved]}}
    sneaky["metadata"] = {**obj["metadata"], "labels": {"team": "x"}}
    out = await env.admin.update(CSRS, sneaky)
    assert out["metadata"]["labels"] == {"team": "x"} and not (out.get("status") or {}).get("conditions")
    # a certificate before approval
    with pytest.raises(Invalid, match="can only be set once the request is approved"):
        await env.admin.update_status(CSRS, {**out, "status": {"certificate": base64.b64encode(b"x").decode()}})
    # approval through /status is ignored; through /approval it is not
    out2 = await env.admin.update_status(CSRS, {**out, "status": {"conditions": [approved]}})
    assert not (out2.get("status") or {}).get("conditions")
    both = {**out2, "status": {"conditions": [approved, denied]}}
    with pytest.raises(Invalid) as e:
        await env.admin.update(CSRS, both, subresource="approval")
    assert e.value.code == 422
    assert e.value.message == ('CertificateSigningRequest.certificates.k8s.io "carol" is invalid: '
                               'status.conditions[1].type: Invalid value: "Denied": Approved and Denied '
                               'conditions are mutually exclusive')
    out3 = await env.admin.update(CSRS, {**out2, "status": {"conditions": [approved]}}, subresource="approval")
    assert [c["type"] for c in out3["status"]["conditions"]] == ["Approved"]
    with pytest.raises(Invalid, match='updates may not remove a condition of type "Approved"'):
        await env.admin.update(CSRS, {**out3, "status": {"conditions": []}}, subresource="approval")
    # the signer is not ours: nobody signs it; an approved kubelet request it cannot sign fails
    bad, _ = request_pem("system:node:n9", ("system:nodes",), dns=("n9.example",))
    await env.admin.create(CSRS, csr("bad-kubelet", bad))
    got = await env.admin.get(CSRS, "bad-kubelet")
    await env.admin.update(CSRS, {**got, "status": {"conditions": [approved]}}, subresource="approval")

    async def failed() -> Obj | None:
        conds = ((await env.admin.get(CSRS, "bad-kubelet")).get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Failed"), None)

    cond = await eventually(failed, "the signer to refuse")
    assert (cond["reason"], cond["message"]) == ("SignerValidationFailure", "DNS subjectAltNames are not allowed")
    assert not await issued(env, "carol")


async def test_the_cleaner_deletes_old_denied_requests(env: Env) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, when in (("stale", old), ("fresh", None)):
        req, _ = request_pem(name)
        obj = await env.admin.create(CSRS, csr(name, req, signer="example.com/manual", usages=("client auth",)))
        cond = {"type": "Denied", "status": "True", "reason": "Test", **({"lastUpdateTime": when} if when else {})}
        await env.admin.update(CSRS, {**obj, "status": {"conditions": [cond]}}, subresource="approval")
    await eventually(lambda: _csr_gone(env, "stale"), "the stale request deleted")
    await asyncio.sleep(0.3)
    assert await env.admin.get(CSRS, "fresh")


async def _csr_gone(env: Env, name: str) -> bool:
    try:
        await env.admin.get(CSRS, name)
    except NotFound:
        return True
    return False
