"""Unit tests: audit policy parsing and first-match evaluation (upstream checker semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.apiserver.audit import AuditPolicyError, evaluate, parse_policy
from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.authz.attributes import Attributes, from_request

ALICE = UserInfo("alice", groups=("dev", "system:authenticated"))
NODE = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))


def policy(*rules: dict[str, Any], **top: Any) -> Any:
    return parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **top})


def req(method: str, path: str, user: UserInfo = ALICE, **query: str) -> Attributes:
    return from_request(user, method, path, query)


PODS_A = req("GET", "/api/v1/namespaces/a/pods")
POD_GET = req("GET", "/api/v1/namespaces/a/pods/web")
POD_LOG = req("GET", "/api/v1/namespaces/a/pods/web/log")
POD_STATUS = req("PUT", "/api/v1/namespaces/a/pods/web/status")
SECRET_CREATE = req("POST", "/api/v1/namespaces/a/secrets")
DEPLOY_SCALE = req("PATCH", "/apis/apps/v1/namespaces/b/deployments/web/scale")
NODES = req("GET", "/api/v1/nodes")
HEALTHZ = req("GET", "/healthz")
VERSION = req("GET", "/version")
WATCH = req("GET", "/api/v1/namespaces/a/pods", watch="1")

CASES = [
    # (rule, request, matches)
    pytest.param({}, PODS_A, True, id="empty-rule-matches-all"),
    pytest.param({}, HEALTHZ, True, id="empty-rule-matches-nonresource"),
    pytest.param({"users": ["alice"]}, PODS_A, True, id="user-listed"),
    pytest.param({"users": ["bob"]}, PODS_A, False, id="user-not-listed"),
    pytest.param({"userGroups": ["dev"]}, PODS_A, True, id="group-listed"),
    pytest.param({"userGroups": ["system:nodes"]}, PODS_A, False, id="group-not-listed"),
    pytest.param({"userGroups": ["system:nodes"]}, req("GET", "/api/v1/nodes", NODE), True, id="node-group"),
    pytest.param({"verbs": ["list"]}, PODS_A, True, id="verb-list"),
    pytest.param({"verbs": ["get"]}, PODS_A, False, id="verb-get-vs-list"),
    pytest.param({"verbs": ["watch"]}, WATCH, True, id="verb-watch"),
    pytest.param({"verbs": ["get"]}, HEALTHZ, True, id="verb-nonresource-get"),
    pytest.param({"resources": [{"group": "", "resources": ["pods"]}]}, POD_GET, True, id="resource"),
    pytest.param({"resources": [{"group": "", "resources": ["pods"]}]}, POD_LOG, False, id="resource-not-subresource"),
    pytest.param({"resources": [{"group": "", "resources": ["pods/log"]}]}, POD_LOG, True, id="subresource"),
    pytest.param({"resources": [{"group": "", "resources": ["pods/*"]}]}, POD_LOG, True, id="resource-slash-star"),
    pytest.param({"resources": [{"group": "", "resources": ["*/status"]}]}, POD_STATUS, True, id="star-slash-sub"),
    pytest.param({"resources": [{"group": "", "resources": ["*/status"]}]}, POD_LOG, False, id="star-slash-other-sub"),
    pytest.param({"resources": [{"group": "", "resources": ["*"]}]}, POD_LOG, True, id="star-matches-subresources"),
    pytest.param({"resources": [{"group": ""}]}, SECRET_CREATE, True, id="group-only"),
    pytest.param({"resources": [{"group": "apps"}]}, SECRET_CREATE, False, id="other-group"),
    pytest.param({"resources": [{"group": "apps", "resources": ["deployments/scale"]}]}, DEPLOY_SCALE, True, id="apps-scale"),
    pytest.param({"resources": [{"group": "", "resources": ["pods"], "resourceNames": ["web"]}]}, POD_GET, True, id="resource-name"),
    pytest.param({"resources": [{"group": "", "resources": ["pods"], "resourceNames": ["db"]}]}, POD_GET, False, id="resource-other-name"),
    pytest.param({"resources": [{"group": "", "resources": ["pods"], "resourceNames": ["web"]}]}, PODS_A, False, id="resource-name-vs-list"),
    pytest.param({"namespaces": ["a"]}, PODS_A, True, id="namespace"),
    pytest.param({"namespaces": ["b"]}, PODS_A, False, id="other-namespace"),
    pytest.param({"namespaces": [""]}, NODES, True, id="cluster-scoped-empty-namespace"),
    pytest.param({"namespaces": ["a"]}, HEALTHZ, False, id="namespace-rule-vs-nonresource"),
    pytest.param({"resources": [{"group": ""}]}, HEALTHZ, False, id="resource-rule-vs-nonresource"),
    pytest.param({"nonResourceURLs": ["/healthz"]}, HEALTHZ, True, id="url-exact"),
    pytest.param({"nonResourceURLs": ["/health*"]}, HEALTHZ, True, id="url-prefix"),
    pytest.param({"nonResourceURLs": ["*"]}, VERSION, True, id="url-star"),
    pytest.param({"nonResourceURLs": ["/healthz"]}, VERSION, False, id="url-other"),
    pytest.param({"nonResourceURLs": ["*"]}, PODS_A, False, id="url-rule-vs-resource"),
    pytest.param({"users": ["alice"], "verbs": ["create"], "resources": [{"group": "", "resources": ["secrets"]}]},
                 SECRET_CREATE, True, id="all-conditions"),
    pytest.param({"users": ["alice"], "verbs": ["delete"], "resources": [{"group": "", "resources": ["secrets"]}]},
                 SECRET_CREATE, False, id="all-but-verb"),
]


@pytest.mark.parametrize("rule,attrs,matches", CASES)
def test_rule_matching(rule: dict[str, Any], attrs: Attributes, matches: bool) -> None:
    p = policy({"level": "Metadata", **rule})
    assert evaluate(p, attrs).level == ("Metadata" if matches else "None")


def test_first_matching_rule_wins_and_default_is_none() -> None:
    p = policy(
        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets", "configmaps"]}]},
        {"level": "RequestResponse", "namespaces": ["a"]},
        {"level": "Request", "verbs": ["create"]},
    )
    assert evaluate(p, req("POST", "/api/v1/namespaces/a/events")).level == "None"
    assert evaluate(p, SECRET_CREATE).level == "Metadata"
    assert evaluate(p, PODS_A).level == "RequestResponse"
    assert evaluate(p, req("POST", "/api/v1/namespaces/b/pods")).level == "Request"
    assert evaluate(p, req("GET", "/api/v1/namespaces/b/pods")).level == "None"


def test_omit_stages_union_and_managed_fields_override() -> None:
    p = policy({"level": "Metadata", "users": ["alice"], "omitStages": ["ResponseStarted"], "omitManagedFields": False},
               {"level": "Request"},
               omitStages=["RequestReceived"], omitManagedFields=True)
    cfg = evaluate(p, PODS_A)
    assert cfg.omit_stages == {"RequestReceived", "ResponseStarted"}
    assert cfg.omit_managed_fields is False
    other = evaluate(p, req("GET", "/api/v1/pods", UserInfo("bob")))
    assert other.omit_stages == {"RequestReceived"} and other.omit_managed_fields is True


def test_unauthenticated_requests_never_match_user_rules() -> None:
    p = policy({"level": "Metadata", "users": [""]}, {"level": "Request", "userGroups": ["system:unauthenticated"]})
    anon = from_request(UserInfo(""), "GET", "/api/v1/pods", {})
    assert evaluate(p, anon, authenticated=False).level == "None"


@pytest.mark.parametrize("doc,message", [
    pytest.param({"kind": "Policy", "apiVersion": "audit.k8s.io/v1beta1", "rules": [{"level": "None"}]},
                 'no kind "Policy" is registered for version "audit.k8s.io/v1beta1"', id="version"),
    pytest.param({"rules": []}, "loaded illegal policy with 0 rules", id="no-rules"),
    pytest.param({"rules": [{"level": "Verbose"}]}, 'Unsupported value: "Verbose"', id="level"),
    pytest.param({"rules": [{}]}, "rules[0].level: Required value", id="level-missing"),
    pytest.param({"rules": [{"level": "None", "omitStages": ["Done"]}]}, 'Unsupported value: "Done"', id="stage"),
    pytest.param({"rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]},
                 "rules cannot apply to both regular resources and non-resource URLs", id="both"),
    pytest.param({"rules": [{"level": "None", "nonResourceURLs": ["healthz"]}]}, 'must begin with a "/"', id="url-slash"),
    pytest.param({"rules": [{"level": "None", "nonResourceURLs": ["/a*/b"]}]}, "must be the final character", id="url-star"),
    pytest.param({"rules": [{"level": "None", "resources": [{"group": "", "resources": ["*"], "resourceNames": ["x"]}]}]},
                 "resourceNames with wildcard", id="names-with-wildcard"),
    pytest.param({"rules": [{"level": "None", "verb": ["get"]}]}, 'unknown field "rules[0].verb"', id="unknown-field"),
])
def test_policy_validation(doc: dict[str, Any], message: str) -> None:
    full = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **doc}
    with pytest.raises(AuditPolicyError) as ei:
        parse_policy(full)
    assert message in str(ei.value)


def test_load_policy_from_yaml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kybernetes.apiserver.audit import load_policy

    f = tmp_path / "policy.yaml"
    f.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                 "rules:\n- level: Metadata\n  resources:\n  - group: ''\n    resources: [secrets]\n")
    p = load_policy(f)
    assert evaluate(p, SECRET_CREATE).level == "Metadata"
    with pytest.raises(AuditPolicyError, match="nope.yaml"):
        load_policy(tmp_path / "nope.yaml")
