"""Field selectors: parsing, escapes, the upstream support table and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kybernetes.api import errors
from kybernetes.api.fields import (
    EQUALS,
    NOT_EQUALS,
    FieldRequirement,
    check_supported,
    escape_value,
    field_value,
    parse_field_selector,
    required_value,
    single_name,
    supported_fields,
)

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
}
EVENT = {
    "metadata": {"name": "web-1.abc", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1",
                       "apiVersion": "v1", "fieldPath": "spec.containers{c}"},
    "reason": "Started", "type": "Normal", "source": {"component": "kubelet"},
    "reportingComponent": "kubelet",
}


@pytest.mark.parametrize(
    ("text", "reqs"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("a=b", [("a", EQUALS, "b")], id="equals"),
        pytest.param("a==b", [("a", EQUALS, "b")], id="double-equals"),
        pytest.param("a!=b", [("a", NOT_EQUALS, "b")], id="not-equals"),
        pytest.param("a=", [("a", EQUALS, "")], id="empty-value"),
        pytest.param("b=2,a=1", [("a", EQUALS, "1"), ("b", EQUALS, "2")], id="sorted-terms"),
        pytest.param(r"a=x\,y\=z\\w", [("a", EQUALS, "x,y=z\\w")], id="escapes"),
        pytest.param("a=b,,c=d", [("a", EQUALS, "b"), ("c", EQUALS, "d")], id="empty-term-skipped"),
    ],
)
def test_parse(text: str, reqs: list[tuple[str, str, str]]) -> None:
    sel = parse_field_selector(text)
    assert [(r.field, r.operator, r.value) for r in sel.requirements] == reqs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("abc", "invalid selector: 'abc'; can't understand 'abc'", id="no-operator"),
        pytest.param(r"a=b\x", r"invalid field selector: invalid escape sequence: \x", id="bad-escape"),
        pytest.param("a=b\\", "invalid field selector: invalid escape sequence: \\", id="trailing-backslash"),
        pytest.param("a=b=c", "invalid field selector: unescaped character in value: 61", id="unescaped-equals"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(errors.StatusError) as exc:
        parse_field_selector(text)
    assert exc.value.code == 400 and exc.value.message == message


@pytest.mark.parametrize(
    ("group", "kind", "obj", "text", "expected"),
    [
        pytest.param("", "Pod", POD, "spec.nodeName=node1", True, id="pod-node"),
        pytest.param("", "Pod", POD, "spec.nodeName=node1,status.phase!=Succeeded,status.phase!=Failed",
                     True, id="describe-node"),
        pytest.param("", "Pod", POD, "status.phase=Pending", False, id="pod-phase-miss"),
        pytest.param("", "Pod", POD, "status.podIP=10.0.0.5", True, id="pod-ip"),
        pytest.param("", "Pod", POD, "spec.hostNetwork=false", True, id="host-network-default"),
        pytest.param("", "Pod", POD, "spec.host=node1", True, id="legacy-spec-host"),
        pytest.param("", "Pod", {"metadata": {"name": "x"}}, "spec.nodeName=", True, id="unset-is-empty"),
        pytest.param("", "Pod", POD, "metadata.name=web-1,metadata.namespace=default", True, id="meta"),
        pytest.param("", "Event", EVENT,
                     "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u1",
                     True, id="describe-pod-events"),
        pytest.param("", "Event", EVENT,
                     "involvedObject.kind=Pod,involvedObject.apiVersion=v1,involvedObject.name=web-1",
                     True, id="kubectl-events-for"),
        pytest.param("", "Event", EVENT, "involvedObject.kind=Deployment", False, id="event-kind-miss"),
        pytest.param("", "Event", EVENT, "source=kubelet,reason=Started,type=Normal,reportingComponent=kubelet",
                     True, id="event-misc"),
        pytest.param("", "Event", EVENT, "involvedObject.resourceVersion=", True, id="event-empty-rv"),
        pytest.param("events.k8s.io", "Event",
                     {"metadata": {"name": "e"}, "regarding": {"name": "web-1", "kind": "Pod"},
                      "reportingController": "kubelet", "deprecatedSource": {"component": "kubelet"}},
                     "involvedObject.name=web-1,involvedObject.kind=Pod,reportingComponent=kubelet,source=kubelet",
                     True, id="events-k8s-io"),
        pytest.param("", "Node", {"spec": {"unschedulable": True}}, "spec.unschedulable=true", True,
                     id="node-unschedulable"),
        pytest.param("", "Node", {"spec": {}}, "spec.unschedulable=false", True, id="node-schedulable"),
        pytest.param("", "Namespace", {"status": {"phase": "Active"}}, "status.phase=Active", True,
                     id="namespace-phase"),
        pytest.param("", "Secret", {"type": "kubernetes.io/tls"}, "type=kubernetes.io/tls", True,
                     id="secret-type"),
        pytest.param("apps", "ReplicaSet", {"status": {"replicas": 3}}, "status.replicas=3", True,
                     id="rs-replicas"),
        pytest.param("apps", "ReplicaSet", {}, "status.replicas=0", True, id="rs-replicas-default"),
        pytest.param("", "ReplicationController", {"status": {"replicas": 2}}, "status.replicas!=2", False,
                     id="rc-replicas"),
        pytest.param("batch", "Job", {"status": {"succeeded": 1}}, "status.successful=1", True,
                     id="job-successful"),
    ],
)
def test_matches(group: str, kind: str, obj: dict, text: str, expected: bool) -> None:
    sel = parse_field_selector(text)
    check_supported(sel, group, kind)
    assert sel.matches(group, kind, obj) is expected


@pytest.mark.parametrize(
    ("group", "kind", "field"),
    [
        pytest.param("", "ConfigMap", "data.x", id="configmap-data"),
        pytest.param("", "Pod", "spec.containers", id="pod-other-field"),
        pytest.param("apps", "Deployment", "status.replicas", id="deployment-replicas"),
        pytest.param("", "Secret", "status.phase", id="secret-phase"),
    ],
)
def test_unsupported_fields(group: str, kind: str, field: str) -> None:
    with pytest.raises(errors.StatusError) as exc:
        check_supported(parse_field_selector(f"{field}=x"), group, kind)
    assert exc.value.code == 400
    assert exc.value.message == f"field label not supported: {field}"


def test_supported_fields_table() -> None:
    assert supported_fields("", "ConfigMap") == {"metadata.name", "metadata.namespace"}
    assert {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP",
            "status.nominatedNodeName"} <= supported_fields("", "Pod")
    assert "involvedObject.fieldPath" in supported_fields("", "Event")
    assert supported_fields("events.k8s.io", "Event") == supported_fields("", "Event")


def test_field_value() -> None:
    assert field_value("", "Pod", POD, "status.podIP") == "10.0.0.5"
    assert field_value("", "Pod", POD, "spec.hostNetwork") == "false"
    assert field_value("", "Pod", {"spec": {"hostNetwork": True}}, "spec.hostNetwork") == "true"
    assert field_value("", "Pod", POD, "nope") == ""


def test_single_name() -> None:
    assert single_name(parse_field_selector("metadata.name=web")) == "web"
    assert single_name(parse_field_selector("metadata.name!=web")) is None
    assert single_name(parse_field_selector("metadata.name=web,metadata.namespace=x")) is None
    assert single_name(parse_field_selector("")) is None
    assert required_value(parse_field_selector("a=1,metadata.namespace=x"), "metadata.namespace") == "x"


@given(st.text(alphabet=st.sampled_from("ab,=\\x "), max_size=12))
def test_escape_roundtrip(value: str) -> None:
    sel = parse_field_selector("f=" + escape_value(value))
    assert sel.requirements == (FieldRequirement("f", EQUALS, value),)
    assert parse_field_selector(str(sel)) == sel
