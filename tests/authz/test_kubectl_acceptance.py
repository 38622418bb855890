"""Acceptance with the real kubectl and the Python client against a TLS API server (RBAC,Node).

Users (client certificates from the cluster CA, as `kyb` issues them):
  alice — RoleBinding to ClusterRole ``view`` in namespace ``a``
  bob   — RoleBinding to ClusterRole ``edit`` in namespace ``b``
  dave  — group ``ops``, RoleBinding of the group to ClusterRole ``admin`` in ``a``
  carol — no bindings at all
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.authz.conftest import Identity, SecureServer
from tests.harness import wait_for

pytestmark = pytest.mark.integration

RBAC = "/apis/rbac.authorization.k8s.io/v1"

# resource -> (API path prefix, namespaced, a minimal body for a dry-run create)
RESOURCES: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "pods": ("/api/v1", True, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    "secrets": ("/api/v1", True, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
    "configmaps": ("/api/v1", True, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    "deployments": ("/apis/apps/v1", True, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
            "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    "roles": (RBAC, True, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "x"}, "rules": []}),
    "rolebindings": (RBAC, True, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "x"},
                                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}}),
    "nodes": ("/api/v1", False, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "x"}}),
    "namespaces": ("/api/v1", False, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
}
KUBECTL_NAME = {"deployments": "deployments.apps", "roles": "roles.rbac.authorization.k8s.io",
                "rolebindings": "rolebindings.rbac.authorization.k8s.io"}

# (user, verb, resource, subresource, namespace ("" = cluster scope), allowed)
TABLE = [
    ("alice", "get", "pods", "", "a", True),
    ("alice", "list", "pods", "", "a", True),
    ("alice", "watch", "pods", "", "a", True),
    ("alice", "create", "pods", "", "a", False),
    ("alice", "delete", "pods", "", "a", False),
    ("alice", "get", "secrets", "", "a", False),
    ("alice", "list", "secrets", "", "a", False),
    ("alice", "get", "configmaps", "", "a", True),
    ("alice", "list", "deployments", "", "a", True),
    ("alice", "create", "deployments", "", "a", False),
    ("alice", "get", "pods", "", "b", False),
    ("alice", "list", "pods", "", "b", False),
    ("alice", "get", "pods", "log", "a", True),
    ("alice", "create", "pods", "exec", "a", False),
    ("alice", "get", "deployments", "scale", "a", True),
    ("alice", "update", "deployments", "scale", "a", False),
    ("alice", "list", "rolebindings", "", "a", False),
    ("alice", "list", "nodes", "", "", False),
    ("alice", "list", "namespaces", "", "", False),
    ("alice", "deletecollection", "pods", "", "a", False),
    ("bob", "create", "pods", "", "b", True),
    ("bob", "delete", "pods", "", "b", True),
    ("bob", "get", "secrets", "", "b", True),
    ("bob", "create", "secrets", "", "b", True),
    ("bob", "patch", "deployments", "", "b", True),
    ("bob", "create", "pods", "exec", "b", True),
    ("bob", "create", "roles", "", "b", False),
    ("bob", "create", "rolebindings", "", "b", False),
    ("bob", "get", "pods", "", "a", False),
    ("bob", "deletecollection", "configmaps", "", "b", True),
    ("bob", "update", "deployments", "scale", "b", True),
    ("dave", "create", "rolebindings", "", "a", True),
    ("dave", "create", "roles", "", "a", True),
    ("dave", "get", "secrets", "", "a", True),
    ("dave", "get", "pods", "", "b", False),
    ("dave", "list", "nodes", "", "", False),
    ("carol", "get", "pods", "", "a", False),
    ("carol", "list", "configmaps", "", "b", False),
]


async def users(s: SecureServer) -> dict[str, Identity]:
    return {"alice": await s.identity("alice"), "bob": await s.identity("bob"),
            "dave": await s.identity("dave", ("ops",)), "carol": await s.identity("carol"),
            "admin": await s.admin()}


def binding(name: str, ns: str, role: str, subject: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}]}


async def setup(s: SecureServer) -> dict[str, Identity]:
    u = await users(s)
    admin = u["admin"]
    for ns in ("a", "b"):
        st, doc = await s.request(admin, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        assert st == 201, doc
    for b in (binding("alice-view", "a", "view", {"kind": "User", "name": "alice"}),
              binding("bob-edit", "b", "edit", {"kind": "User", "name": "bob"}),
              binding("ops-admin", "a", "admin", {"kind": "Group", "name": "ops"})):
        st, doc = await s.request(admin, "POST", f"{RBAC}/namespaces/{b['metadata']['namespace']}/rolebindings", b)
        assert st == 201, doc
    index = s.server.authz.index
    await wait_for(lambda: all(k in index.bindings for k in (("a", "alice-view"), ("b", "bob-edit"), ("a", "ops-admin"))),
                   timeout=5, what="bindings reach the authorizer")
    return u


def request_for(verb: str, resource: str, sub: str, ns: str) -> tuple[str, str, Any]:
    """An HTTP request that needs exactly (verb, resource/sub, ns); writes are dry runs."""
    prefix, namespaced, body = RESOURCES[resource]
    coll = f"{prefix}/namespaces/{ns}/{resource}" if namespaced and ns else f"{prefix}/{resource}"
    obj = f"{coll}/missing" + (f"/{sub}" if sub else "")
    dry = "?dryRun=All"
    if verb == "get":
        return "GET", obj, None
    if verb == "list":
        return "GET", coll, None
    if verb == "watch":
        return "GET", coll + "?watch=true&timeoutSeconds=1", None
    if verb == "create":
        return ("POST", obj, {}) if sub else ("POST", coll + dry, body)
    if verb == "update":
        return "PUT", obj + dry, {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "missing"},
                                  "spec": {"replicas": 1}} if sub else body
    if verb == "patch":
        return "PATCH", obj + dry, {"metadata": {"labels": {"x": "y"}}}
    if verb == "delete":
        return "DELETE", obj + dry, None
    if verb == "deletecollection":
        return "DELETE", coll + dry, None
    raise ValueError(verb)


async def test_can_i_agrees_with_the_server_in_every_case(secure: SecureServer) -> None:
    assert len(TABLE) >= 30
    u = await setup(secure)
    sem = asyncio.Semaphore(4)

    async def one(user: str, verb: str, resource: str, sub: str, ns: str, want: bool) -> str | None:
        args = ["auth", "can-i", verb, KUBECTL_NAME.get(resource, resource)]
        if sub:
            args.append(f"--subresource={sub}")
        args += ["-n", ns] if ns else ["--all-namespaces"]
        async with sem:
            rc, out, err = await secure.kubectl(u[user], *args)
        answer = out.strip().splitlines()[-1] if out.strip() else ""
        method, path, body = request_for(verb, resource, sub, ns)
        ct = "application/merge-patch+json" if method == "PATCH" else "application/json"
        status, doc = await secure.request(u[user], method, path, body, content_type=ct)
        case = f"{user} {verb} {resource}{'/' + sub if sub else ''} in {ns or '<cluster>'}"
        if answer != ("yes" if want else "no") or rc != (0 if want else 1):
            return f"{case}: kubectl auth can-i said {answer!r} (rc {rc}, {err.strip()})"
        if (status != 403) != want:
            return f"{case}: the server answered {status} {doc}"
        if status == 403:
            assert doc["reason"] == "Forbidden" and f'User "{user}" cannot {verb} resource' in doc["message"], doc
        return None

    problems = [p for p in await asyncio.gather(*(one(*case) for case in TABLE)) if p]
    assert not problems, "\n".join(problems)


async def test_forbidden_messages_list_and_whoami(secure: SecureServer) -> None:
    u = await setup(secure)
    alice = u["alice"]
    rc, out, err = await secure.kubectl(alice, "get", "pods", "-n", "a")
    assert rc == 0, err
    pod = ('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},'
           '"spec":{"containers":[{"name":"c","image":"busybox"}]}}')
    rc, _, err = await secure.kubectl(alice, "create", "-n", "a", "-f", "-", stdin=pod)
    assert rc != 0
    assert ('Error from server (Forbidden): error when creating "STDIN": pods is forbidden: '
            'User "alice" cannot create resource "pods" in API group "" in the namespace "a"') in err
    rc, _, err = await secure.kubectl(alice, "get", "secrets", "-n", "a")
    assert 'Error from server (Forbidden): secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" ' \
           'in the namespace "a"' in err
    rc, _, err = await secure.kubectl(alice, "get", "pods", "-n", "b")
    assert 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "b"' in err
    rc, _, err = await secure.kubectl(alice, "get", "nodes")
    assert 'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope' in err

    rc, out, err = await secure.kubectl(alice, "auth", "can-i", "--list", "-n", "a")
    assert rc == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith(" ")}
    assert "[get list watch]" in rows["pods"] and "[get list watch]" in rows["deployments.apps"]
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows
    assert "secrets" not in rows and "pods/exec" not in rows
    assert "[/api/*]" in out and "[/version]" in out

    rc, out, err = await secure.kubectl(u["dave"], "auth", "whoami")
    assert rc == 0, err
    lines = dict(line.split(None, 1) for line in out.splitlines()[1:] if line.strip())
    assert lines["Username"].strip() == "dave" and lines["Groups"].strip() == "[ops system:authenticated]"

    # the official Python client with alice's certificate
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    cfg = client.Configuration()
    cfg.host = secure.base
    cfg.ssl_ca_cert = str(secure.pki.ca_cert)
    cfg.cert_file, cfg.key_file = str(alice.cert), str(alice.key)

    def python_calls() -> tuple[int, ApiException]:
        with client.ApiClient(cfg) as api:
            core = client.CoreV1Api(api)
            n = len(core.list_namespaced_pod("a").items)
            try:
                core.read_namespaced_secret("s", "a")
            except ApiException as e:
                return n, e
            raise AssertionError("alice read a secret")

    n, exc = await asyncio.to_thread(python_calls)
    assert n == 0 and exc.status == 403
    assert 'secrets \\"s\\" is forbidden: User \\"alice\\" cannot get resource \\"secrets\\"' in exc.body


async def test_grant_and_revoke_take_effect_within_a_moment(secure: SecureServer) -> None:
    u = await setup(secure)
    carol, admin = u["carol"], u["admin"]
    assert (await secure.request(carol, "GET", "/api/v1/namespaces/a/pods"))[0] == 403
    b = binding("carol-view", "a", "view", {"kind": "User", "name": "carol"})
    assert (await secure.request(admin, "POST", f"{RBAC}/namespaces/a/rolebindings", b))[0] == 201

    async def status() -> int:
        return (await secure.request(carol, "GET", "/api/v1/namespaces/a/pods"))[0]

    await wait_for(lambda: _is(status(), 200), timeout=3, what="granted")
    assert (await secure.request(admin, "DELETE", f"{RBAC}/namespaces/a/rolebindings/carol-view"))[0] == 200
    await wait_for(lambda: _is(status(), 403), timeout=3, what="revoked")
    # a role's rules changing is seen as well: aggregation into view
    widget = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
              "metadata": {"name": "class-viewer", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
              "rules": [{"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]}]}

    async def alice_lists_classes() -> bool:
        rc, out, _ = await secure.kubectl(u["alice"], "auth", "can-i", "list", "storageclasses.storage.k8s.io", "-n", "a")
        return out.strip().endswith("yes")

    assert not await alice_lists_classes()
    assert (await secure.request(admin, "POST", f"{RBAC}/clusterroles", widget))[0] == 201

    await wait_for(alice_lists_classes, timeout=5, interval=0.2, what="view aggregates the new role")
    st, view = await secure.request(admin, "GET", f"{RBAC}/clusterroles/view")
    assert widget["rules"][0] in view["rules"]
    st, edit = await secure.request(admin, "GET", f"{RBAC}/clusterroles/edit")
    assert widget["rules"][0] in edit["rules"]        # view feeds edit
    assert (await secure.request(admin, "DELETE", f"{RBAC}/clusterroles/class-viewer"))[0] == 200
    await wait_for(lambda: _not(alice_lists_classes()), timeout=5, interval=0.2, what="aggregated rule removed")


async def _is(aw: Any, want: int) -> bool:
    return (await aw) == want


async def _not(aw: Any) -> bool:
    return not await aw
