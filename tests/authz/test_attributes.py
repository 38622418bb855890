"""Request attributes from URL and method, as upstream's RequestInfoFactory reads them."""

from __future__ import annotations

import pytest

from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.authz.attributes import Attributes, forbidden, from_request, from_review

ALICE = UserInfo("alice", groups=("system:authenticated",))


def attrs(method: str, url: str) -> Attributes:
    path, _, qs = url.partition("?")
    query = dict(p.split("=", 1) for p in qs.split("&") if p) if qs else {}
    return from_request(ALICE, method, path, query)


# (method, url) -> (verb, resource request, namespace, group, version, resource, subresource, name)
CASES = [
    pytest.param("GET", "/api/v1/namespaces/a/pods/web", ("get", True, "a", "", "v1", "pods", "", "web"), id="get"),
    pytest.param("HEAD", "/api/v1/namespaces/a/pods/web", ("get", True, "a", "", "v1", "pods", "", "web"), id="head-is-get"),
    pytest.param("GET", "/api/v1/namespaces/a/pods", ("list", True, "a", "", "v1", "pods", "", ""), id="list"),
    pytest.param("GET", "/api/v1/pods", ("list", True, "", "", "v1", "pods", "", ""), id="list-all-namespaces"),
    pytest.param("GET", "/api/v1/namespaces/a/pods?watch=true", ("watch", True, "a", "", "v1", "pods", "", ""), id="watch-query"),
    pytest.param("GET", "/api/v1/namespaces/a/pods?watch=1", ("watch", True, "a", "", "v1", "pods", "", ""), id="watch-1"),
    pytest.param("GET", "/api/v1/namespaces/a/pods?watch=false", ("list", True, "a", "", "v1", "pods", "", ""), id="watch-false"),
    pytest.param("GET", "/api/v1/namespaces/a/pods?watch=0", ("list", True, "a", "", "v1", "pods", "", ""), id="watch-0"),
    pytest.param("GET", "/api/v1/watch/namespaces/a/pods", ("watch", True, "a", "", "v1", "pods", "", ""), id="watch-prefix"),
    pytest.param("GET", "/api/v1/watch/namespaces/a/pods/web", ("watch", True, "a", "", "v1", "pods", "", "web"), id="watch-prefix-name"),
    pytest.param("GET", "/api/v1/namespaces/a/secrets?fieldSelector=metadata.name=s1",
                 ("list", True, "a", "", "v1", "secrets", "", "s1"), id="list-one-by-field-selector"),
    pytest.param("GET", "/api/v1/namespaces/a/secrets?watch=true&fieldSelector=metadata.name=s1",
                 ("watch", True, "a", "", "v1", "secrets", "", "s1"), id="watch-one-by-field-selector"),
    pytest.param("POST", "/api/v1/namespaces/a/pods", ("create", True, "a", "", "v1", "pods", "", ""), id="create"),
    pytest.param("PUT", "/api/v1/namespaces/a/pods/web", ("update", True, "a", "", "v1", "pods", "", "web"), id="update"),
    pytest.param("PATCH", "/api/v1/namespaces/a/pods/web", ("patch", True, "a", "", "v1", "pods", "", "web"), id="patch"),
    pytest.param("DELETE", "/api/v1/namespaces/a/pods/web", ("delete", True, "a", "", "v1", "pods", "", "web"), id="delete"),
    pytest.param("DELETE", "/api/v1/namespaces/a/pods", ("deletecollection", True, "a", "", "v1", "pods", "", ""), id="deletecollection"),
    pytest.param("GET", "/api/v1/namespaces/a/pods/web/log", ("get", True, "a", "", "v1", "pods", "log", "web"), id="subresource"),
    pytest.param("POST", "/api/v1/namespaces/a/pods/web/exec", ("create", True, "a", "", "v1", "pods", "exec", "web"), id="exec"),
    pytest.param("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale",
                 ("update", True, "a", "apps", "v1", "deployments", "scale", "d"), id="group-subresource"),
    pytest.param("GET", "/apis/apps/v1/deployments", ("list", True, "", "apps", "v1", "deployments", "", ""), id="group-list"),
    pytest.param("GET", "/api/v1/namespaces", ("list", True, "", "", "v1", "namespaces", "", ""), id="list-namespaces"),
    pytest.param("GET", "/api/v1/namespaces/a", ("get", True, "a", "", "v1", "namespaces", "", "a"), id="namespace-itself"),
    pytest.param("PUT", "/api/v1/namespaces/a/finalize", ("update", True, "a", "", "v1", "namespaces", "finalize", "a"), id="namespace-finalize"),
    pytest.param("PUT", "/api/v1/namespaces/a/status", ("update", True, "a", "", "v1", "namespaces", "status", "a"), id="namespace-status"),
    pytest.param("GET", "/api/v1/nodes/n1", ("get", True, "", "", "v1", "nodes", "", "n1"), id="cluster-scoped"),
    pytest.param("GET", "/api/v1/proxy/namespaces/a/pods/web/some/path", ("proxy", True, "a", "", "v1", "pods", "", "web"), id="proxy-no-subresource"),
    pytest.param("GET", "/api/v1/nodes/n1/proxy/metrics", ("get", True, "", "", "v1", "nodes", "proxy", "n1"), id="node-proxy-subresource"),
    pytest.param("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                 ("create", True, "", "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "", ""), id="review"),
    pytest.param("OPTIONS", "/api/v1/namespaces/a/pods", ("", True, "a", "", "v1", "pods", "", ""), id="unknown-method"),
    # non-resource requests: the verb is the lower-cased method
    pytest.param("GET", "/version", ("get", False, "", "", "", "", "", ""), id="version"),
    pytest.param("GET", "/api", ("get", False, "", "", "", "", "", ""), id="api"),
    pytest.param("GET", "/api/v1", ("get", False, "", "", "", "", "", ""), id="api-v1"),
    pytest.param("GET", "/apis/apps/v1", ("get", False, "", "", "", "", "", ""), id="group-version-discovery"),
    pytest.param("GET", "/apis/apps", ("get", False, "", "", "", "", "", ""), id="group-discovery"),
    pytest.param("GET", "/openapi/v3/apis/apps/v1", ("get", False, "", "", "", "", "", ""), id="openapi"),
    pytest.param("POST", "/logs", ("post", False, "", "", "", "", "", ""), id="post-non-resource"),
    pytest.param("GET", "/api/v1/watch", ("get", False, "", "", "", "", "", ""), id="special-verb-without-resource"),
]


@pytest.mark.parametrize(("method", "url", "want"), CASES)
def test_request_attributes(method: str, url: str, want: tuple[object, ...]) -> None:
    a = attrs(method, url)
    assert (a.verb, a.resource_request, a.namespace, a.api_group, a.api_version, a.resource, a.subresource, a.name) == want
    assert a.path == url.partition("?")[0]


def test_field_selector_requirements_are_kept_for_collections() -> None:
    a = attrs("GET", "/api/v1/pods?fieldSelector=spec.nodeName=n1,status.phase!=Failed&labelSelector=app=x")
    assert a.verb == "list" and a.name == ""
    assert set(a.field_selector) == {("spec.nodeName", "=", "n1"), ("status.phase", "!=", "Failed")}
    assert a.label_selector == "app=x"
    assert attrs("GET", "/api/v1/pods?fieldSelector=metadata.name=..").name == ""  # not a valid path segment
    assert attrs("GET", "/api/v1/pods?fieldSelector=garbage").field_selector == ()


@pytest.mark.parametrize(("method", "url", "message"), [
    pytest.param("POST", "/api/v1/namespaces/a/pods",
                 'pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "a"', id="create"),
    pytest.param("GET", "/api/v1/namespaces/a/secrets/s",
                 'secrets "s" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "a"', id="named"),
    pytest.param("GET", "/apis/apps/v1/deployments",
                 'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope',
                 id="cluster-scope"),
    pytest.param("GET", "/api/v1/namespaces/a/pods/p/log",
                 'pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "a"', id="subresource"),
    pytest.param("GET", "/metrics", 'forbidden: User "alice" cannot get path "/metrics"', id="non-resource"),
])
def test_forbidden_messages(method: str, url: str, message: str) -> None:
    err = forbidden(attrs(method, url))
    assert err.code == 403 and err.reason == "Forbidden" and err.message == message


def test_forbidden_details_and_reason() -> None:
    err = forbidden(attrs("GET", "/apis/apps/v1/namespaces/a/deployments/d"), "RBAC: role.rbac.authorization.k8s.io \"x\" not found")
    assert err.details == {"name": "d", "group": "apps", "kind": "deployments"}
    assert err.message.endswith(': RBAC: role.rbac.authorization.k8s.io "x" not found')


def test_review_attributes() -> None:
    a = from_review(ALICE, {"resourceAttributes": {"namespace": "a", "verb": "get", "group": "apps", "resource": "deployments",
                                                   "subresource": "scale", "name": "d"}})
    assert (a.verb, a.namespace, a.api_group, a.combined_resource, a.name, a.resource_request) == \
        ("get", "a", "apps", "deployments/scale", "d", True)
    b = from_review(ALICE, {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    assert (b.resource_request, b.path, b.verb) == (False, "/healthz", "get")
