"""The RBAC authorizer over an in-memory index: bindings, subjects, reasons, caching, rules."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.authz import bootstrap as b
from kybernetes.apiserver.authz.attributes import Attributes
from kybernetes.apiserver.authz.rbac import RbacAuthorizer, RbacIndex
from kybernetes.apiserver.authz.union import ALLOW, NO_OPINION, PrivilegedGroup, Union

Obj = dict[str, Any]
P = "/registry/rbac.authorization.k8s.io"

ALICE = UserInfo("alice", groups=("system:authenticated",))
BOB = UserInfo("bob", groups=("devs", "system:authenticated"))
BOT = UserInfo("system:serviceaccount:a:bot", groups=("system:serviceaccounts", "system:serviceaccounts:a", "system:authenticated"))
ROOT = UserInfo("root", groups=("system:masters",))


def add(index: RbacIndex, obj: Obj) -> None:
    md = obj["metadata"]
    kind = obj["kind"]
    if kind == "ClusterRole":
        index.on_cluster_role(f"{P}/clusterroles/{md['name']}", obj)
    elif kind == "Role":
        index.on_role(f"{P}/roles/{md['namespace']}/{md['name']}", obj)
    elif kind == "ClusterRoleBinding":
        index.on_binding(False)(f"{P}/clusterrolebindings/{md['name']}", obj)
    else:
        index.on_binding(True)(f"{P}/rolebindings/{md['namespace']}/{md['name']}", obj)


def remove(index: RbacIndex, obj: Obj) -> None:
    md = obj["metadata"]
    if obj["kind"] == "RoleBinding":
        index.on_binding(True)(f"{P}/rolebindings/{md['namespace']}/{md['name']}", None)
    else:
        raise NotImplementedError


def rb_cluster_role(name: str, ns: str, role: str, subjects: list[Obj]) -> Obj:
    """A RoleBinding in ``ns`` to the ClusterRole ``role``."""
    return {**b.role_binding(name, ns, role, subjects), "roleRef": {"apiGroup": b.GROUP, "kind": "ClusterRole", "name": role}}


def req(user: UserInfo, verb: str, resource: str, ns: str = "a", *, group: str = "", sub: str = "", name: str = "") -> Attributes:
    return Attributes(user, verb, True, "", ns, group, "v1", resource, sub, name)


@pytest.fixture
def index() -> RbacIndex:
    idx = RbacIndex()
    add(idx, b.cluster_role("pod-reader", [b.r([""], ["pods", "pods/log"], ["get", "list", "watch"])]))
    add(idx, b.cluster_role("secret-one", [b.r([""], ["secrets"], ["get"], ["s1"])]))
    add(idx, b.role("deployer", "a", [b.r(["apps"], ["deployments"], ["create", "update"])]))
    add(idx, b.cluster_role_binding("discovery", "system:discovery", [b.group("system:authenticated")]))
    add(idx, b.cluster_role("system:discovery", [b.nr(["/api", "/api/*", "/version"], ["get"])]))
    add(idx, rb_cluster_role("alice-reads", "a", "pod-reader", [b.user("alice")]))
    add(idx, b.role_binding("devs-deploy", "a", "deployer", [b.group("devs")]))
    add(idx, rb_cluster_role("bot-secret", "a", "secret-one", [{"kind": "ServiceAccount", "name": "bot"}]))
    add(idx, rb_cluster_role("ghost", "b", "missing", [b.user("bob")]))
    return idx


CASES = [
    pytest.param(ALICE, req(ALICE, "get", "pods"), True, id="rolebinding-to-clusterrole"),
    pytest.param(ALICE, req(ALICE, "get", "pods", sub="log"), True, id="subresource-listed"),
    pytest.param(ALICE, req(ALICE, "create", "pods"), False, id="verb-not-granted"),
    pytest.param(ALICE, req(ALICE, "get", "pods", ns="b"), False, id="other-namespace"),
    pytest.param(ALICE, req(ALICE, "list", "pods", ns=""), False, id="rolebinding-not-cluster-wide"),
    pytest.param(ALICE, Attributes(ALICE, "get", False, "/api/v1"), True, id="group-clusterrolebinding-url"),
    pytest.param(ALICE, Attributes(ALICE, "get", False, "/metrics"), False, id="url-not-granted"),
    pytest.param(BOB, req(BOB, "create", "deployments", group="apps"), True, id="group-subject-local-role"),
    pytest.param(BOB, req(BOB, "create", "deployments", group="extensions"), False, id="group-mismatch"),
    pytest.param(BOT, req(BOT, "get", "secrets", name="s1"), True, id="sa-subject-defaults-namespace"),
    pytest.param(BOT, req(BOT, "get", "secrets", name="s2"), False, id="sa-resource-name"),
    pytest.param(BOT, req(BOT, "list", "secrets"), False, id="sa-list-with-names"),
    pytest.param(ROOT, req(ROOT, "delete", "nodes", ns=""), False, id="rbac-alone-has-no-superuser"),
]


@pytest.mark.parametrize(("user", "a", "want"), CASES)
def test_decisions(index: RbacIndex, user: UserInfo, a: Attributes, want: bool) -> None:
    assert RbacAuthorizer(index).authorize(a).allowed is want


def test_allow_reason_names_the_binding(index: RbacIndex) -> None:
    r = RbacAuthorizer(index).authorize(req(ALICE, "get", "pods"))
    assert r.decision == ALLOW
    assert r.reason == 'RBAC: allowed by RoleBinding "alice-reads/a" of ClusterRole "pod-reader" to User "alice"'
    r = RbacAuthorizer(index).authorize(req(BOT, "get", "secrets", name="s1"))
    assert r.reason == 'RBAC: allowed by RoleBinding "bot-secret/a" of ClusterRole "secret-one" to ServiceAccount "bot/a"'


def test_missing_role_is_the_denial_reason(index: RbacIndex) -> None:
    r = RbacAuthorizer(index).authorize(req(BOB, "get", "pods", ns="b"))
    assert r.decision == NO_OPINION
    assert r.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found'


def test_privileged_group_first_in_union(index: RbacIndex) -> None:
    u = Union([PrivilegedGroup(), RbacAuthorizer(index)])
    assert u.authorize(req(ROOT, "delete", "nodes", ns="")).allowed
    assert not u.authorize(req(ALICE, "delete", "nodes", ns="")).allowed


def test_cache_follows_changes(index: RbacIndex) -> None:
    authz = RbacAuthorizer(index)
    carol = UserInfo("carol", groups=("system:authenticated",))
    assert not authz.authorize(req(carol, "get", "pods")).allowed
    computed = authz.computed
    assert not authz.authorize(req(carol, "get", "pods")).allowed
    assert authz.computed == computed  # served from the cache
    grant = rb_cluster_role("carol", "a", "pod-reader", [b.user("carol")])
    add(index, grant)
    assert authz.authorize(req(carol, "get", "pods")).allowed
    remove(index, grant)
    assert not authz.authorize(req(carol, "get", "pods")).allowed
    # a role's rules changing also invalidates
    add(index, b.cluster_role("pod-reader", [b.r([""], ["pods"], ["*"])]))
    assert authz.authorize(req(ALICE, "delete", "pods")).allowed


def test_rules_for(index: RbacIndex) -> None:
    rr = RbacAuthorizer(index).rules_for(ALICE, "a")
    assert {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]} in rr.resource_rules
    assert {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/version"]} in rr.non_resource_rules
    assert not rr.incomplete
    rr = RbacAuthorizer(index).rules_for(BOB, "b")
    assert rr.incomplete and rr.errors == ['clusterrole.rbac.authorization.k8s.io "missing" not found']


def test_many_bindings_only_the_users_are_visited() -> None:
    idx = RbacIndex()
    add(idx, b.cluster_role("view-pods", [b.r([""], ["pods"], ["get"])]))
    for i in range(1000):
        add(idx, rb_cluster_role(f"rb-{i}", f"ns-{i % 50}", "view-pods", [b.user(f"user-{i}")]))
    u = UserInfo("user-7")
    assert [x.name for x in idx.bindings_for(u, "ns-7")] == ["rb-7"]
    assert RbacAuthorizer(idx).authorize(req(u, "get", "pods", ns="ns-7")).allowed
    assert not RbacAuthorizer(idx).authorize(req(u, "get", "pods", ns="ns-8")).allowed
