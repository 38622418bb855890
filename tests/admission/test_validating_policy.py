"""ValidatingAdmissionPolicy: the pure CEL evaluation, then policies and bindings through the real API
server and the real kubectl (the example of the Kubernetes documentation, params, warnings,
failure policies, and refusal of a policy whose expression does not compile)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kybernetes.api import vap
from tests.conftest import ApiClient

from .test_podsecurity import kubectl, needs_kubectl, warnings_of

Obj = dict[str, Any]
ARG = "/apis/admissionregistration.k8s.io/v1"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"


def _act(obj: Obj | None, params: Any = None, variables: list[Obj] | None = None) -> dict[str, Any]:
    return vap.activation(obj=obj, old=None, request={"operation": "CREATE", "userInfo": {"username": "u"}},
                          params=params, namespace=None, variables=variables or [])


def test_validations_messages_and_errors() -> None:
    policy = {"spec": {"validations": [
        {"expression": "object.spec.replicas <= 5"},
        {"expression": "object.spec.replicas <= params.max", "message": "too many",
         "messageExpression": "'replicas ' + string(object.spec.replicas) + ' > ' + string(params.max)",
         "reason": "Forbidden"},
        {"expression": "object.spec.missing == 1"},
        {"expression": "object.metadata.name.startsWith('web') && has(object.spec.replicas)"},
        {"expression": "variables.twice == 12", "message": "not twelve"},
    ], "variables": [{"name": "twice", "expression": "object.spec.replicas * 2"}]}}
    obj = {"metadata": {"name": "web-1"}, "spec": {"replicas": 6}}
    act = _act(obj, {"max": 5}, policy["spec"]["variables"])
    assert vap.evaluate(policy, act) == [
        vap.Decision("failed expression: object.spec.replicas <= 5", index=0),
        vap.Decision("replicas 6 > 5", "Forbidden", 1),
        vap.Decision("expression 'object.spec.missing == 1' resulted in error: no such key: missing",
                     index=2),
    ]
    # Ignore: an error admits
    ignore = {"spec": {**policy["spec"], "failurePolicy": "Ignore"}}
    assert [d.message for d in vap.evaluate(ignore, act)] == ["failed expression: object.spec.replicas <= 5",
                                                              "replicas 6 > 5"]
    # a match condition that is false skips the validations
    gated = {"spec": {**policy["spec"], "matchConditions": [{"name": "big", "expression": "object.spec.replicas > 10"}]}}
    assert vap.evaluate(gated, act) == []


def test_a_failing_variable_only_fails_what_uses_it() -> None:
    variables = [{"name": "bad", "expression": "object.spec.nope"}, {"name": "good", "expression": "1"}]
    act = _act({"spec": {}}, None, variables)
    assert vap.run("variables.good == 1", act) is True
    with pytest.raises(vap.CelError, match="nope"):
        vap.run("variables.bad == 1", act)


def test_policy_and_binding_validation() -> None:
    causes = vap.validate_policy({"spec": {"validations": [{"expression": "object.spec.replicas <="}],
                                           "failurePolicy": "Sometimes"}})
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.failurePolicy", "FieldValueNotSupported"),
        ("spec.matchConstraints.resourceRules", "FieldValueRequired"),
        ("spec.validations[0].expression", "FieldValueInvalid")]
    assert "compilation failed: ERROR: <input>:1:22: Syntax error" in causes[2].message
    causes = vap.validate_binding({"spec": {"policyName": "p", "validationActions": ["Deny", "Warn"],
                                            "paramRef": {"name": "x"}}})
    assert [c.field for c in causes] == ["spec.validationActions", "spec.paramRef.parameterNotFoundAction"]


# ------------------------------------------------------------------------------------------
# through the API server
DOCS_POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  validations:
    - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "demo-binding-test.example.com"
spec:
  policyName: "demo-policy.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
"""


def deployment(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


@pytest.mark.integration
@needs_kubectl
async def test_the_documentation_example_with_kubectl(api: ApiClient, tmp_path: Path) -> None:
    rc, out, err = await kubectl(tmp_path, api.base, "apply", "-f", "-", stdin=DOCS_POLICY)
    assert rc == 0, err
    for ns, labels in (("test", {"environment": "test"}), ("prod", {"environment": "prod"})):
        st, doc, _ = await api.post("/api/v1/namespaces", {"metadata": {"name": ns, "labels": labels}})
        assert st == 201, doc
    rc, out, err = await kubectl(tmp_path, api.base, "create", "deployment", "nginx", "--image=nginx",
                                 "--replicas=6", "-n", "test")
    denial = ("ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' "
              "denied request: failed expression: object.spec.replicas <= 5")
    assert rc != 0
    assert err == f'error: failed to create deployment: deployments.apps "nginx" is forbidden: {denial}\n'
    # kubectl apply prints the Invalid status as in the Kubernetes documentation
    rc, out, err = await kubectl(tmp_path, api.base, "apply", "-n", "test", "-f", "-",
                                 stdin=json.dumps(deployment("nginx", 6)))
    assert rc != 0
    assert err == f'The deployments "nginx" is invalid: : {denial}\n'
    st, doc, _ = await api.post(DEPLOYMENTS.format(ns="test"), deployment("nginx", 6))
    message = ('deployments.apps "nginx" is forbidden: ValidatingAdmissionPolicy \'demo-policy.example.com\' with '
               "binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5")
    assert (st, doc["reason"], doc["message"]) == (422, "Invalid", message)
    assert doc["details"]["causes"] == [{"message": message.split(" is forbidden: ")[1]}]
    # within the limit, and in a namespace the binding does not select
    assert (await api.post(DEPLOYMENTS.format(ns="test"), deployment("small", 3)))[0] == 201
    assert (await api.post(DEPLOYMENTS.format(ns="prod"), deployment("big", 9)))[0] == 201
    # updates are checked too
    st, doc, _ = await api.request("PATCH", DEPLOYMENTS.format(ns="test") + "/small", {"spec": {"replicas": 7}},
                                   content_type="application/merge-patch+json")
    assert st == 422 and "denied request" in doc["message"]
    rc, out, err = await kubectl(tmp_path, api.base, "get", "validatingadmissionpolicies,validatingadmissionpolicybindings")
    assert rc == 0, err
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0] == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    assert lines[1][:3] == ["validatingadmissionpolicy.admissionregistration.k8s.io/demo-policy.example.com", "1",
                            "<unset>"]
    assert lines[2] == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert lines[3][:3] == ["validatingadmissionpolicybinding.admissionregistration.k8s.io/demo-binding-test.example.com",
                            "demo-policy.example.com", "<unset>"]


def _policy(name: str, validations: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                             "operations": ["CREATE"], "resources": ["deployments"]}]},
                     "validations": validations, **spec}}


def _binding(name: str, policy: str, actions: list[str], **spec: Any) -> Obj:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name}, "spec": {"policyName": policy, "validationActions": actions, **spec}}


@pytest.mark.integration
async def test_params_warnings_and_failure_policies(api: ApiClient) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits"}, "data": {"max": "2"}}
    assert (await api.post("/api/v1/namespaces/default/configmaps", cm))[0] == 201
    limit = _policy("limit", [{"expression": "object.spec.replicas <= int(params.data.max)",
                               "messageExpression": "'at most ' + params.data.max + ' replicas'",
                               "reason": "Forbidden"}],
                    paramKind={"apiVersion": "v1", "kind": "ConfigMap"})
    for body in (limit, _binding("limit-deny", "limit", ["Deny"],
                                 paramRef={"name": "limits", "parameterNotFoundAction": "Deny"})):
        st, doc, _ = await api.post(f"{ARG}/{'validatingadmissionpolicies' if body['kind'].endswith('Policy') else 'validatingadmissionpolicybindings'}", body)
        assert st == 201, doc
    st, doc, _ = await api.post(DEPLOYMENTS.format(ns="default"), deployment("three", 3))
    assert (st, doc["reason"]) == (403, "Forbidden")
    assert doc["message"].endswith("denied request: at most 2 replicas")
    assert (await api.post(DEPLOYMENTS.format(ns="default"), deployment("two", 2)))[0] == 201
    # the param is looked up in the request's namespace: none in "other" -> Deny
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "other"}}))[0] == 201
    st, doc, _ = await api.post(DEPLOYMENTS.format(ns="other"), deployment("one", 1))
    assert st == 422 and doc["message"].endswith(
        "denied request: failed to configure binding: no params found for policy binding with `Deny` "
        "parameterNotFoundAction"), doc
    st, doc, _ = await api.delete(f"{ARG}/validatingadmissionpolicybindings/limit-deny")
    assert st == 200, doc

    # Warn: admitted, with the warning kubectl prints
    warn = _binding("limit-warn", "limit", ["Warn"], paramRef={"name": "limits", "namespace": "default",
                                                             "parameterNotFoundAction": "Allow"})
    assert (await api.post(f"{ARG}/validatingadmissionpolicybindings", warn))[0] == 201
    st, doc, headers = await api.post(DEPLOYMENTS.format(ns="other"), deployment("four", 4))
    assert st == 201, doc
    assert warnings_of(headers) == ["Validation failed for ValidatingAdmissionPolicy 'limit' with binding "
                                    "'limit-warn': at most 2 replicas"]

    # an expression that fails at run time: Fail refuses, Ignore admits
    for failure, code in (("Fail", 422), ("Ignore", 201)):
        name = f"broken-{failure.lower()}"
        pol = _policy(name, [{"expression": "object.spec.template.spec.nodeName == 'x'"}], failurePolicy=failure)
        assert (await api.post(f"{ARG}/validatingadmissionpolicies", pol))[0] == 201
        assert (await api.post(f"{ARG}/validatingadmissionpolicybindings", _binding(name, name, ["Deny"])))[0] == 201
        st, doc, _ = await api.post(DEPLOYMENTS.format(ns="other"), deployment(f"d-{name}", 1))
        assert st == code, doc
        if st == 422:
            assert "expression 'object.spec.template.spec.nodeName == 'x'' resulted in error: no such key: nodeName" \
                in doc["message"]
        await api.delete(f"{ARG}/validatingadmissionpolicybindings/{name}")


@pytest.mark.integration
@needs_kubectl
async def test_a_policy_that_does_not_compile_is_refused(api: ApiClient, tmp_path: Path) -> None:
    bad = _policy("bad", [{"expression": "object.spec.replicas <="}])
    rc, _, err = await kubectl(tmp_path, api.base, "apply", "-f", "-", stdin=json.dumps(bad))
    assert rc != 0
    assert err == ('The ValidatingAdmissionPolicy "bad" is invalid: spec.validations[0].expression: Invalid value: '
                   '"object.spec.replicas <=": compilation failed: ERROR: <input>:1:22: Syntax error\n')
    st, doc, _ = await api.post(f"{ARG}/validatingadmissionpolicybindings", _binding("b", "p", []))
    assert (st, doc["reason"]) == (422, "Invalid")
    assert doc["details"]["causes"][0]["field"] == "spec.validationActions"
