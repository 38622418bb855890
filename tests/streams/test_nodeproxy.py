"""API-server side decisions: container choice, log readiness, kubelet addresses (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.api.errors import StatusError
from kybernetes.apiserver import nodeproxy
from kybernetes.apiserver.kubeletclient import node_address
from kybernetes.kubelet.server import authorize, subresource_for


def make_pod(containers: list[str], init: list[str] | None = None, statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c} for c in init]
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec,
            "status": {"containerStatuses": statuses or []}}


def test_choose_container() -> None:
    assert nodeproxy.choose_container(make_pod(["only"]), None) == "only"
    assert nodeproxy.choose_container(make_pod(["a", "b"], init=["i"]), "i") == "i"
    with pytest.raises(StatusError) as e:
        nodeproxy.choose_container(make_pod(["a", "b"]), None)
    assert e.value.code == 400
    assert e.value.message == "a container name must be specified for pod p, choose one of: [a b]"
    with pytest.raises(StatusError) as e:
        nodeproxy.choose_container(make_pod(["a", "b"], init=["i1", "i2"]), "")
    assert e.value.message.endswith("choose one of: [a b] or one of the init containers: [i1 i2]")
    with pytest.raises(StatusError) as e:
        nodeproxy.choose_container(make_pod(["a"]), "x")
    assert e.value.message == "container x is not valid for pod p"


@pytest.mark.parametrize("status,previous,message", [
    pytest.param(None, False, 'container "c" in pod "p" is waiting to start: ContainerCreating', id="no-status"),
    pytest.param({"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}},
                 False, None, id="crashloop-shows-last-run"),
    pytest.param({"state": {"waiting": {"reason": "ImagePullBackOff"}}}, False,
                 'container "c" in pod "p" is waiting to start: trying and failing to pull image', id="pull-backoff"),
    pytest.param({"state": {"running": {}}}, False, None, id="running"),
    pytest.param({"state": {"terminated": {"exitCode": 0}}}, False, None, id="terminated"),
    pytest.param({"state": {"running": {}}}, True, 'previous terminated container "c" in pod "p" not found', id="no-previous"),
    pytest.param({"state": {"running": {}}, "lastState": {"terminated": {"exitCode": 2}}}, True, None, id="previous"),
])
def test_check_log_target(status: dict[str, Any] | None, previous: bool, message: str | None) -> None:
    pod = make_pod(["c"], statuses=[{"name": "c", **status}] if status else [])
    if message is None:
        nodeproxy.check_log_target(pod, "c", previous)
    else:
        with pytest.raises(StatusError) as e:
            nodeproxy.check_log_target(pod, "c", previous)
        assert e.value.code == 400 and e.value.message == message


def test_log_query_keeps_only_log_parameters() -> None:
    q = {"container": "c", "follow": "true", "tailLines": "3", "pretty": "1", "insecureSkipTLSVerifyBackend": "true"}
    assert nodeproxy.log_query(q) == [("follow", "true"), ("tailLines", "3")]


@pytest.mark.parametrize("addresses,port,expect", [
    pytest.param([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}], 10255,
                 ("10.0.0.5", 10255), id="internal-ip-first"),
    pytest.param([{"type": "Hostname", "address": "n1"}], None, ("n1", 10250), id="hostname-default-port"),
    pytest.param([{"type": "Weird", "address": "192.0.2.1"}], None, ("192.0.2.1", 10250), id="first-address"),
])
def test_node_address(addresses: list[dict[str, str]], port: int | None, expect: tuple[str, int]) -> None:
    status: dict[str, Any] = {"addresses": addresses}
    if port:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    assert node_address({"metadata": {"name": "n1"}, "status": status}) == expect


def test_node_without_address_is_503() -> None:
    with pytest.raises(StatusError) as e:
        node_address({"metadata": {"name": "n1"}, "status": {}})
    assert e.value.code == 503


def test_kubelet_authorization_table() -> None:
    assert authorize(("kube-apiserver-kubelet-client", ["system:masters"]), "/exec/a/b/c") is None
    assert authorize(("kube-apiserver-kubelet-client", []), "/stats/summary") is None
    assert authorize(("kubernetes-admin", ["system:masters"]), "/containerLogs/a/b/c") is None
    denied = authorize(("system:node:n1", ["system:nodes"]), "/portForward/a/b")
    assert denied is not None and denied.code == 403
    assert denied.message == "Forbidden (user=system:node:n1, verb=create, resource=nodes, subresource=proxy)"
    anon = authorize(None, "/stats/summary")
    assert anon is not None and anon.code == 401
    assert subresource_for("/containerLogs/x") == ("get", "log")
