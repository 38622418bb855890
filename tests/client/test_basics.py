"""Pure pieces: typed errors, resource paths, keys."""

import pytest

from kybernetes.api import errors as api_errors
from kybernetes.client import errors as e
from kybernetes.client.keys import (
    DeletedFinalStateUnknown,
    key_of,
    make_key,
    split_key,
    tombstone_object,
)
from kybernetes.client.resources import DEPLOYMENTS, LEASES, NODES, PODS, Resource


@pytest.mark.parametrize("err,cls", [
    pytest.param(api_errors.not_found("pods", "", "x"), e.NotFound, id="404"),
    pytest.param(api_errors.already_exists("pods", "", "x"), e.AlreadyExists, id="exists"),
    pytest.param(api_errors.conflict("pods", "", "x", "stale"), e.Conflict, id="conflict"),
    pytest.param(api_errors.expired("too old"), e.Expired, id="expired"),
    pytest.param(api_errors.gone("gone"), e.Gone, id="gone"),
    pytest.param(api_errors.invalid("Pod", "", "x", [api_errors.required("spec")]), e.Invalid, id="422"),
    pytest.param(api_errors.forbidden_error("no"), e.Forbidden, id="403"),
    pytest.param(api_errors.too_many_requests("slow down", 3), e.TooManyRequests, id="429"),
    pytest.param(api_errors.internal("x"), e.InternalError, id="500"),
    pytest.param(api_errors.timeout("x"), e.ServerTimeout, id="504"),
])
def test_error_from_status(err: api_errors.StatusError, cls: type) -> None:
    got = e.error_from_status(err.code, err.to_status(), err.headers)
    assert type(got) is cls
    assert got.code == err.code and got.reason == err.reason and str(got) == err.message


def test_error_details() -> None:
    inv = e.error_from_status(422, api_errors.invalid("Pod", "", "x", [api_errors.required("spec.containers")]).to_status())
    assert inv.causes[0]["field"] == "spec.containers"
    tmr = e.error_from_status(429, api_errors.too_many_requests("x", 7).to_status(), {"Retry-After": "2"})
    assert tmr.retry_after == 2.0
    assert isinstance(e.error_from_status(410, api_errors.expired("x").to_status()), e.Gone)
    assert not isinstance(e.AlreadyExists(409, "AlreadyExists", ""), e.Conflict)


def test_error_from_non_status_body() -> None:
    err = e.error_from_status(502, "bad gateway")
    assert isinstance(err, e.InternalError) and err.code == 502 and err.message == "bad gateway"
    assert type(e.error_from_status(418, None)) is e.ApiError


def test_resource_paths() -> None:
    assert PODS.path("default", "web-1") == "/api/v1/namespaces/default/pods/web-1"
    assert PODS.path("default", "web-1", "binding") == "/api/v1/namespaces/default/pods/web-1/binding"
    assert PODS.path() == "/api/v1/pods"
    assert NODES.path("ignored", "n1", "status") == "/api/v1/nodes/n1/status"
    assert DEPLOYMENTS.path("ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert LEASES.api_version == "coordination.k8s.io/v1" and LEASES.kind == "Lease"
    assert Resource.for_kind("apps/v1", "Deployment") == DEPLOYMENTS
    assert Resource.for_kind("v1", "Pod") == PODS and not NODES.namespaced
    with pytest.raises(KeyError):
        Resource.for_kind("v1", "Nope")
    with pytest.raises(ValueError):
        PODS.path("default", None, "status")


def test_keys() -> None:
    assert key_of({"metadata": {"name": "a", "namespace": "ns"}}) == "ns/a"
    assert key_of({"metadata": {"name": "n1"}}) == "n1"
    assert split_key("ns/a") == ("ns", "a") and split_key("n1") == (None, "n1")
    assert make_key(None, "x") == "x"
    for bad in ("a/b/c", "/a", "a/"):
        with pytest.raises(ValueError):
            split_key(bad)
    obj = {"metadata": {"name": "a", "namespace": "ns"}}
    tomb = DeletedFinalStateUnknown(make_key("ns", "a"), obj)
    assert key_of(tomb) == "ns/a" and tombstone_object(tomb) is obj and tombstone_object(obj) is obj
