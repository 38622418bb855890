"""RBAC rule matching and coverage (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.authz.attributes import Attributes
from kybernetes.apiserver.authz.escalation import escalation_message
from kybernetes.apiserver.authz.policy import Rule, compact_string, compile_rules, covers

U = UserInfo("u")


def res(verb: str, resource: str, *, group: str = "", sub: str = "", name: str = "", ns: str = "a") -> Attributes:
    return Attributes(U, verb, True, "", ns, group, "v1", resource, sub, name)


def url(verb: str, path: str) -> Attributes:
    return Attributes(U, verb, False, path)


def rule(**kw: Any) -> Rule:
    return Rule.compile(kw)


MATCH = [
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods"]), res("get", "pods"), True, id="exact"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods"]), res("list", "pods"), False, id="other-verb"),
    pytest.param(rule(verbs=["*"], apiGroups=[""], resources=["pods"]), res("deletecollection", "pods"), True, id="verb-star"),
    pytest.param(rule(verbs=["get"], apiGroups=["apps"], resources=["pods"]), res("get", "pods"), False, id="other-group"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["deployments"]), res("get", "deployments", group="apps"), True,
                 id="group-star"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["*"]), res("get", "pods", sub="log"), True, id="resource-star-covers-sub"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods"]), res("get", "pods", sub="log"), False, id="no-sub-from-parent"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]), res("get", "pods", sub="log"), True, id="sub-exact"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods/log"]), res("get", "pods"), False, id="sub-not-parent"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["*/scale"]), res("get", "deployments", group="apps", sub="scale"), True,
                 id="star-slash-sub"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["*/scale"]), res("get", "deployments", group="apps", sub="status"), False,
                 id="star-slash-other-sub"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["*/scale"]), res("get", "deployments", group="apps"), False,
                 id="star-slash-not-main"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["secrets"], resourceNames=["s1"]), res("get", "secrets", name="s1"), True,
                 id="name-match"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["secrets"], resourceNames=["s1"]), res("get", "secrets", name="s2"), False,
                 id="name-mismatch"),
    pytest.param(rule(verbs=["list"], apiGroups=[""], resources=["secrets"], resourceNames=["s1"]), res("list", "secrets"), False,
                 id="names-never-match-unnamed"),
    pytest.param(rule(verbs=["create"], apiGroups=[""], resources=["secrets"]), res("create", "secrets", name=""), True, id="no-names-create"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("get", "/healthz"), True, id="url-exact"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/healthz"]), url("get", "/healthz/etcd"), False, id="url-no-prefix"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/apis/*"]), url("get", "/apis/apps/v1"), True, id="url-star-suffix"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/apis/*"]), url("get", "/apis"), False, id="url-star-needs-slash"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["*"]), url("get", "/anything"), True, id="url-all"),
    pytest.param(rule(verbs=["post"], nonResourceURLs=["*"]), url("get", "/anything"), False, id="url-verb"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["*"]), res("get", "pods"), False, id="url-rule-not-for-resources"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["*"]), url("get", "/version"), False, id="resource-rule-not-for-urls"),
]


@pytest.mark.parametrize(("r", "a", "want"), MATCH)
def test_rule_matching(r: Rule, a: Attributes, want: bool) -> None:
    assert r.allows(a) is want


COVERS = [
    pytest.param([dict(apiGroups=["*"], resources=["*"], verbs=["*"])], [dict(apiGroups=["apps"], resources=["deployments"], verbs=["get"])],
                 True, id="star"),
    pytest.param([dict(apiGroups=[""], resources=["pods"], verbs=["get", "list"])], [dict(apiGroups=[""], resources=["pods"], verbs=["get"])],
                 True, id="subset"),
    pytest.param([dict(apiGroups=[""], resources=["pods"], verbs=["get"])], [dict(apiGroups=[""], resources=["pods"], verbs=["get", "list"])],
                 False, id="superset"),
    pytest.param([dict(apiGroups=[""], resources=["pods"], verbs=["get"]), dict(apiGroups=[""], resources=["pods"], verbs=["list"])],
                 [dict(apiGroups=[""], resources=["pods"], verbs=["get", "list"])], True, id="split-over-rules"),
    pytest.param([dict(apiGroups=[""], resources=["*/scale"], verbs=["get"])], [dict(apiGroups=[""], resources=["deployments/scale"], verbs=["get"])],
                 True, id="star-sub"),
    pytest.param([dict(apiGroups=[""], resources=["secrets"], verbs=["get"], resourceNames=["a"])],
                 [dict(apiGroups=[""], resources=["secrets"], verbs=["get"])], False, id="named-does-not-cover-all"),
    pytest.param([dict(apiGroups=[""], resources=["secrets"], verbs=["get"])],
                 [dict(apiGroups=[""], resources=["secrets"], verbs=["get"], resourceNames=["a"])], True, id="all-covers-named"),
    pytest.param([dict(nonResourceURLs=["/apis/*"], verbs=["get"])], [dict(nonResourceURLs=["/apis/apps"], verbs=["get"])], True, id="url-prefix"),
    pytest.param([dict(nonResourceURLs=["/apis"], verbs=["get"])], [dict(nonResourceURLs=["/apis/apps"], verbs=["get"])], False, id="url-exact"),
]


@pytest.mark.parametrize(("owner", "wanted", "want"), COVERS)
def test_covers(owner: list[dict[str, Any]], wanted: list[dict[str, Any]], want: bool) -> None:
    assert covers(compile_rules(owner), wanted)[0] is want


def test_missing_rules_and_message() -> None:
    ok, missing = covers(compile_rules([dict(apiGroups=[""], resources=["pods"], verbs=["get"])]),
                         [dict(apiGroups=["", "apps"], resources=["pods"], verbs=["get", "list"])])
    assert not ok and len(missing) == 3
    msg = escalation_message(UserInfo("alice", groups=("system:authenticated", "devs")), missing)
    assert msg == ('user "alice" (groups=["system:authenticated" "devs"]) is attempting to grant RBAC permissions not currently held:\n'
                   '{APIGroups:[""], Resources:["pods"], Verbs:["list"]}\n'
                   '{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "list"]}')


def test_compact_string() -> None:
    assert compact_string({"nonResourceURLs": ["/x"], "verbs": ["get"]}) == '{NonResourceURLs:["/x"], Verbs:["get"]}'
    assert compact_string({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s"], "verbs": ["get"]}) == \
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["s"], Verbs:["get"]}'
