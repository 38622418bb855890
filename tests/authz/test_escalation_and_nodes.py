"""Escalation prevention, the Node authorizer and the review APIs against a TLS API server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.conftest import SecureServer
from tests.authz.test_kubectl_acceptance import RBAC, binding, setup
from tests.harness import wait_for

pytestmark = pytest.mark.integration

ESCALATION = "is attempting to grant RBAC permissions not currently held"


def role(name: str, rules: list[dict[str, Any]], ns: str = "a") -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
            "rules": rules}


async def test_escalation_is_refused(secure: SecureServer) -> None:
    u = await setup(secure)
    dave, admin = u["dave"], u["admin"]   # dave: admin in namespace a (through group ops)
    # rules dave holds: fine
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/roles",
                                   role("pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))
    assert st == 201, doc
    # rules dave does not hold: refused with upstream's message
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/roles",
                                   role("grab-nodes", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]))
    assert st == 403, doc
    assert doc["reason"] == "Forbidden" and doc["details"] == {"name": "grab-nodes", "group": "rbac.authorization.k8s.io", "kind": "roles"}
    assert doc["message"] == ('roles.rbac.authorization.k8s.io "grab-nodes" is forbidden: user "dave" (groups=["ops" '
                              '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
                              '{APIGroups:[""], Resources:["nodes"], Verbs:["list"]}')
    # the same through kubectl
    rc, _, err = await secure.kubectl(dave, "create", "role", "grab", "--verb=list", "--resource=nodes", "-n", "a")
    assert rc != 0 and ESCALATION in err and "Forbidden" in err
    # an update that adds an unheld rule is refused too; one within dave's rights passes
    patch = {"rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get"]}]}
    st, doc = await secure.request(dave, "PATCH", f"{RBAC}/namespaces/a/roles/pod-reader", patch,
                                   content_type="application/merge-patch+json")
    assert st == 200, doc
    patch = {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    st, doc = await secure.request(dave, "PATCH", f"{RBAC}/namespaces/a/roles/pod-reader", patch,
                                   content_type="application/merge-patch+json")
    assert st == 403 and ESCALATION in doc["message"]
    # binding a role whose rules dave holds (view within a): fine; cluster-admin: refused
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/rolebindings",
                                   binding("carol-view", "a", "view", {"kind": "User", "name": "carol"}))
    assert st == 201, doc
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/rolebindings",
                                   binding("carol-root", "a", "cluster-admin", {"kind": "User", "name": "carol"}))
    assert st == 403 and doc["message"].startswith('rolebindings.rbac.authorization.k8s.io "carol-root" is forbidden: user "dave"')
    assert ESCALATION in doc["message"]
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/rolebindings",
                                   binding("ghost", "a", "no-such-role", {"kind": "User", "name": "carol"}))
    assert st == 404 and doc["message"] == 'clusterroles.rbac.authorization.k8s.io "no-such-role" not found'
    # bob (edit in b) cannot even create bindings: plain authorization
    st, doc = await secure.request(u["bob"], "POST", f"{RBAC}/namespaces/b/rolebindings",
                                   binding("x", "b", "view", {"kind": "User", "name": "bob"}))
    assert st == 403 and "cannot create resource" in doc["message"]

    # `bind` on cluster-admin (granted in a) lets dave bind it there; `escalate` lets him write any role
    grant = role("delegate", [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cluster-admin"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}])
    assert (await secure.request(admin, "POST", f"{RBAC}/namespaces/a/roles", grant))[0] == 201
    rb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "dave-delegate", "namespace": "a"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "delegate"},
          "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dave"}]}
    assert (await secure.request(admin, "POST", f"{RBAC}/namespaces/a/rolebindings", rb))[0] == 201

    async def can_bind() -> bool:
        st, _ = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/rolebindings?dryRun=All",
                                     binding("carol-root", "a", "cluster-admin", {"kind": "User", "name": "carol"}))
        return st == 201

    await wait_for(can_bind, timeout=3, what="bind granted")
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/a/roles",
                                   role("grab-nodes", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]))
    assert st == 201, doc
    # bind/escalate in a do not reach b
    st, doc = await secure.request(dave, "POST", f"{RBAC}/namespaces/b/rolebindings",
                                   binding("x", "b", "cluster-admin", {"kind": "User", "name": "dave"}))
    assert st == 403


def pod(name: str, node: str, secret: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                     "volumes": [{"name": "s", "secret": {"secretName": secret}}]}}


async def test_node_authorizer(secure: SecureServer) -> None:
    u = await setup(secure)
    admin = u["admin"]
    for n in ("n1", "n2"):
        assert (await secure.request(admin, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}))[0] == 201
    for name in ("s1", "s2"):
        assert (await secure.request(admin, "POST", "/api/v1/namespaces/a/secrets",
                                     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": "dg=="}}))[0] == 201
    assert (await secure.request(admin, "POST", "/api/v1/namespaces/a/pods", pod("p1", "n1", "s1")))[0] == 201
    assert (await secure.request(admin, "POST", "/api/v1/namespaces/a/pods", pod("p2", "n2", "s2")))[0] == 201
    graph = secure.server.authz.graph
    await wait_for(lambda: graph.pod_bound("n1", "a", "p1") and graph.pod_bound("n2", "a", "p2"), timeout=3, what="graph")
    n1 = await secure.identity("system:node:n1", ("system:nodes",))

    st, doc = await secure.request(n1, "GET", "/api/v1/namespaces/a/secrets/s1")
    assert st == 200 and doc["data"]["k"]
    st, doc = await secure.request(n1, "GET", "/api/v1/namespaces/a/secrets/s2")
    assert st == 403
    assert doc["message"] == ('secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" '
                              "in the namespace \"a\": no relationship found between node 'n1' and this object")
    rc, _, err = await secure.kubectl(n1, "get", "secret", "s2", "-n", "a")
    assert rc != 0 and "Forbidden" in err and "no relationship found between node 'n1' and this object" in err
    # its own Node: read and patch; another's: neither
    merge = "application/merge-patch+json"
    assert (await secure.request(n1, "GET", "/api/v1/nodes/n1"))[0] == 200
    assert (await secure.request(n1, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"x": "1"}}}, content_type=merge))[0] == 200
    assert (await secure.request(n1, "PATCH", "/api/v1/nodes/n1/status", {"status": {"phase": "Running"}}, content_type=merge))[0] == 200
    st, doc = await secure.request(n1, "PATCH", "/api/v1/nodes/n2", {"metadata": {"labels": {"x": "1"}}}, content_type=merge)
    assert st == 403 and "node 'n1' cannot modify 'n2', only its own Node object" in doc["message"]
    assert (await secure.request(n1, "PATCH", "/api/v1/nodes/n2/status", {"status": {}}, content_type=merge))[0] == 403
    rc, _, err = await secure.kubectl(n1, "patch", "node", "n2", "-p", '{"metadata":{"labels":{"x":"1"}}}')
    assert rc != 0 and 'nodes "n2" is forbidden: User "system:node:n1" cannot' in err  # kubectl GETs first
    st, node2 = await secure.request(admin, "GET", "/api/v1/nodes/n2")
    assert "x" not in (node2["metadata"].get("labels") or {})
    assert (await secure.request(n1, "GET", "/api/v1/nodes/n2"))[0] == 403
    # pods: only its own, listed by field selector
    assert (await secure.request(n1, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1"))[0] == 200
    assert (await secure.request(n1, "GET", "/api/v1/pods"))[0] == 403
    assert (await secure.request(n1, "GET", "/api/v1/namespaces/a/pods/p1"))[0] == 200
    assert (await secure.request(n1, "GET", "/api/v1/namespaces/a/pods/p2"))[0] == 403
    assert (await secure.request(n1, "PATCH", "/api/v1/namespaces/a/pods/p2/status", {"status": {}}, content_type=merge))[0] == 403
    assert (await secure.request(n1, "PATCH", "/api/v1/namespaces/a/pods/p1/status", {"status": {"phase": "Running"}},
                                 content_type=merge))[0] == 200
    # its own Lease only
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}}
    assert (await secure.request(n1, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease))[0] == 201
    assert (await secure.request(n1, "GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2"))[0] == 403
    # a new pod on n1 that mounts s2 makes s2 readable to n1
    assert (await secure.request(admin, "POST", "/api/v1/namespaces/a/pods", pod("p3", "n1", "s2")))[0] == 201
    await wait_for(lambda: graph.references("n1", "secret", "a", "s2"), timeout=3, what="graph follows the new pod")
    assert (await secure.request(n1, "GET", "/api/v1/namespaces/a/secrets/s2"))[0] == 200


async def test_reviews(secure: SecureServer) -> None:
    u = await setup(secure)
    admin, alice = u["admin"], u["alice"]
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "alice", "groups": ["system:authenticated"],
                    "resourceAttributes": {"namespace": "a", "verb": "get", "resource": "pods"}}}
    st, doc = await secure.request(admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert st == 201 and doc["status"] == {
        "allowed": True, "reason": 'RBAC: allowed by RoleBinding "alice-view/a" of ClusterRole "view" to User "alice"'}
    sar["spec"]["resourceAttributes"]["verb"] = "delete"
    st, doc = await secure.request(admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert st == 201 and doc["status"] == {"allowed": False}
    # alice may not ask about others, only about herself
    st, doc = await secure.request(alice, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert st == 403
    st, doc = await secure.request(alice, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                   {"spec": {"nonResourceAttributes": {"path": "/version", "verb": "get"}}})
    assert st == 201 and doc["status"]["allowed"] is True
    # validation
    st, doc = await secure.request(admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                   {"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})
    assert st == 422 and doc["message"] == ('SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": '
                                            "at least one of user or group must be specified")
    lsar = {"spec": {"user": "alice", "resourceAttributes": {"namespace": "b", "verb": "get", "resource": "pods"}}}
    st, doc = await secure.request(admin, "POST", "/apis/authorization.k8s.io/v1/namespaces/a/localsubjectaccessreviews", lsar)
    assert st == 400 and doc["message"] == "spec.resourceAttributes.namespace must match namespace: a"
    lsar["spec"]["resourceAttributes"]["namespace"] = "a"
    st, doc = await secure.request(admin, "POST", "/apis/authorization.k8s.io/v1/namespaces/a/localsubjectaccessreviews", lsar)
    assert st == 201 and doc["status"]["allowed"] is True and doc["metadata"]["namespace"] == "a"
    # dave (admin of a) may ask local reviews in a
    st, doc = await secure.request(u["dave"], "POST", "/apis/authorization.k8s.io/v1/namespaces/a/localsubjectaccessreviews", lsar)
    assert st == 201 and doc["status"]["allowed"] is True
    st, doc = await secure.request(alice, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {}})
    assert st == 400 and doc["message"] == "no namespace on request"
    # a node's rules are not enumerable
    n1 = await secure.identity("system:node:n1", ("system:nodes",))
    st, doc = await secure.request(n1, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {"namespace": "a"}})
    assert st == 201 and doc["status"]["incomplete"] is True
    assert doc["status"]["evaluationError"] == "node authorizer does not support user rule resolution"
    # the admin sees everything
    st, doc = await secure.request(admin, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {"namespace": "a"}})
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in doc["status"]["resourceRules"]


async def test_decisions_are_audit_annotations(tmp_path: Any) -> None:
    import orjson

    from kybernetes.apiserver.audit import AuditConfig, LogOptions, parse_policy
    from tests.authz.conftest import secure_server

    log = tmp_path / "audit.log"
    policy = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                           "rules": [{"level": "Metadata"}]})
    async with secure_server(tmp_path, audit=AuditConfig(policy, LogOptions(str(log)))) as s:
        u = await setup(s)
        assert (await s.request(u["alice"], "GET", "/api/v1/namespaces/a/pods"))[0] == 200
        assert (await s.request(u["alice"], "GET", "/api/v1/namespaces/a/secrets"))[0] == 403

        def events() -> list[dict[str, Any]]:
            return [orjson.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        await wait_for(lambda: sum(e.get("user", {}).get("username") == "alice" for e in events()) >= 2, timeout=5,
                       what="audit events")
    by_uri = {e["requestURI"]: e for e in events() if e["user"]["username"] == "alice"}
    allowed, denied = by_uri["/api/v1/namespaces/a/pods"], by_uri["/api/v1/namespaces/a/secrets"]
    assert allowed["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert allowed["annotations"]["authorization.k8s.io/reason"] == \
        'RBAC: allowed by RoleBinding "alice-view/a" of ClusterRole "view" to User "alice"'
    assert denied["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert denied["responseStatus"]["code"] == 403
