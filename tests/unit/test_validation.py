"""Tests for kybernetes.api.validation: schema (decode) checks and semantic per-kind rules."""

from __future__ import annotations

import copy
import json
import time
from decimal import Decimal
from typing import Any

import pytest

from kybernetes.api import validation as v
from kybernetes.api.errors import Cause

Obj = dict[str, Any]


# ------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------

def meta(name: str = "x", ns: str | None = "default", **extra: Any) -> Obj:
    m: Obj = {"name": name, **extra}
    if ns is not None:
        m["namespace"] = ns
    return m


def container(name: str = "c", image: str = "nginx", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


def pod(**spec: Any) -> Obj:
    s: Obj = {"containers": [container()], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web"), "spec": s}


def template(labels: Obj | None = None, **spec: Any) -> Obj:
    return {"metadata": {"labels": labels if labels is not None else {"app": "web"}},
            "spec": {"containers": [container()], **spec}}


def deployment(**spec: Any) -> Obj:
    s: Obj = {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"), "spec": s}


def job(**spec: Any) -> Obj:
    s: Obj = {"template": template(None, restartPolicy="Never"), **spec}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("pi"), "spec": s}


def cronjob(name: str = "cj", **spec: Any) -> Obj:
    s: Obj = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template(None, restartPolicy="OnFailure")}}, **spec}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(name), "spec": s}


def service(**spec: Any) -> Obj:
    s: Obj = {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "selector": {"app": "web"}, **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": s}


def configmap(**fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg"), "data": {"k": "v"}, **fields}


def secret(**fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta("s"), "data": {"k": "dmFsdWU="}, **fields}


def pvc(**spec: Any) -> Obj:
    s: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data"), "spec": s}


def ingress(paths: list[Obj] | None = None, **spec: Any) -> Obj:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    ps = paths if paths is not None else [{"path": "/", "pathType": "Prefix", "backend": backend}]
    s: Obj = {"rules": [{"host": "example.com", "http": {"paths": ps}}], **spec}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("ing"), "spec": s}


def hpa(**spec: Any) -> Obj:
    s: Obj = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
              "minReplicas": 1, "maxReplicas": 3, **spec}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("web"), "spec": s}


def role(kind: str = "Role", rules: list[Obj] | None = None) -> Obj:
    r = rules if rules is not None else [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": meta("reader", None if kind == "ClusterRole" else "default"), "rules": r}


def binding(role_ref: Obj | None = None, kind: str = "RoleBinding") -> Obj:
    ref = role_ref if role_ref is not None else {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    obj: Obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                "metadata": meta("rb", None if kind.startswith("Cluster") else "default"),
                "subjects": [{"kind": "User", "name": "bob"}]}
    if ref:
        obj["roleRef"] = ref
    return obj


def with_(obj: Obj, path: str, value: Any) -> Obj:
    """A deep copy of ``obj`` with the dotted ``path`` (``a.b.0.c``) set (or removed for ...)."""
    out = copy.deepcopy(obj)
    cur: Any = out
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    last = parts[-1]
    if value is ...:
        del cur[int(last) if isinstance(cur, list) else last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


def fields(causes: list[Cause]) -> list[str]:
    return [c.field for c in causes]


# ------------------------------------------------------------------------------------------
# check_schema
# ------------------------------------------------------------------------------------------

SCHEMA_CASES = [
    pytest.param("apps", "Deployment", deployment(), [], [], id="deployment-valid"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.replicas", "3"),
                 [("spec.replicas", "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32")],
                 [], id="replicas-string"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.replicas", 1.5),
                 [("spec.replicas", "cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32")],
                 [], id="replicas-float"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.replicas", 2**31),
                 [("spec.replicas", "of type int32")], [], id="replicas-int32-overflow"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.paused", "yes"),
                 [("spec.paused", "of type bool")], [], id="bool-as-string"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.replicas", True),
                 [("spec.replicas", "cannot unmarshal bool")], [], id="int-as-bool"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.foo", 1), [], ["spec.foo"], id="unknown-spec-field"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.template.spec.containers.0.imagee", "x"),
                 [], ["spec.template.spec.containers[0].imagee"], id="unknown-in-array"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.template.spec.containers", {"name": "c"}),
                 [("spec.template.spec.containers", "cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container")],
                 [], id="array-as-object"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.strategy", {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}),
                 [], [], id="intorstring-both-forms"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.strategy", {"rollingUpdate": {"maxSurge": 1.5}}),
                 [("spec.strategy.rollingUpdate.maxSurge", "of type int32")], [], id="intorstring-float"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.strategy", {"rollingUpdate": {"maxSurge": [1]}}),
                 [("spec.strategy.rollingUpdate.maxSurge", "cannot unmarshal array")], [], id="intorstring-array"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.template.spec.containers.0.resources", {"limits": {"cpu": "500m", "memory": 1024}}),
                 [], [], id="quantity-string-and-number"),
    pytest.param("apps", "Deployment", with_(deployment(), "spec.template.spec.containers.0.resources", {"limits": {"cpu": "five"}}),
                 [("spec.template.spec.containers[0].resources.limits.cpu", "quantities must match")], [], id="quantity-bad"),
    pytest.param("", "ConfigMap", configmap(data={"a": 1}),
                 [("data", "cannot unmarshal number into Go struct field ConfigMap.data of type string")], [], id="map-value-type"),
    pytest.param("", "ConfigMap", configmap(data=None), [], [], id="null-is-allowed"),
    pytest.param("", "ConfigMap", configmap(data=["a"]), [("data", "of type map[string]string")], [], id="map-as-array"),
    pytest.param("", "ConfigMap", configmap(metadata={"name": "x", "labels": {"a": "b"}, "creationTimestamp": "2024-01-02T03:04:05Z"}),
                 [], [], id="time-ok"),
    pytest.param("", "ConfigMap", configmap(metadata={"name": "x", "creationTimestamp": "yesterday"}),
                 [("metadata.creationTimestamp", 'parsing time "yesterday"')], [], id="time-bad"),
    pytest.param("", "Secret", secret(data={"k": "not base64!"}),
                 [("data.k", "illegal base64 data at input byte 3")], [], id="bytes-bad-base64"),
    pytest.param("", "Secret", secret(), [], [], id="bytes-ok"),
    pytest.param("", "ConfigMap", configmap(metadata={"name": "x", "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {}}}]}),
                 [], [], id="fieldsv1-anything"),
    pytest.param("apps", "ControllerRevision", {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta("r"),
                                                "revision": 1, "data": {"spec": {"anything": [1, 2]}}},
                 [], [], id="rawextension-anything"),
    pytest.param("apiextensions.k8s.io", "CustomResourceDefinition",
                 {"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": {"a": {"type": "string", "default": 5}}}}}]}},
                 [], [], id="recursive-jsonschemaprops"),
    pytest.param("autoscaling", "HorizontalPodAutoscaler", with_(hpa(), "spec.metrics", [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": "50"}}}]),
                 [("spec.metrics[0].resource.target.averageUtilization", "of type int32")], [], id="nested-refs"),
]


@pytest.mark.parametrize("group,kind,obj,type_errors,unknown", SCHEMA_CASES)
def test_check_schema(group: str, kind: str, obj: Obj, type_errors: list[tuple[str, str]], unknown: list[str]) -> None:
    version = "v2" if kind == "HorizontalPodAutoscaler" else "v1"
    res = v.check_schema(group, version, kind, obj)
    assert len(res.type_errors) == len(type_errors), res.type_errors
    for cause, (path, msg) in zip(res.type_errors, type_errors):
        assert cause.field == path
        assert msg in cause.message
    assert res.unknown_fields == unknown
    assert res.ok == (not type_errors and not unknown)


def test_check_schema_non_object_and_unknown_kind() -> None:
    res = v.check_schema("", "v1", "ConfigMap", [1])
    assert [c.message for c in res.type_errors] == ["json: cannot unmarshal array into Go value of type v1.ConfigMap"]
    assert v.check_schema("stable.example.com", "v1", "CronTab", {"spec": {"x": 1}}).ok


def test_check_schema_does_not_mutate_and_is_fast() -> None:
    cm = configmap(data={f"key{i}": "x" * 40 for i in range(20)})
    assert len(json.dumps(cm)) > 1000
    snapshot = copy.deepcopy(cm)
    v.check_schema("", "v1", "ConfigMap", cm)  # compile
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        assert v.check_schema("", "v1", "ConfigMap", cm).ok
    per_call = (time.perf_counter() - start) / n
    assert per_call < 1e-4  # well under 0.1 ms (typically a few microseconds)
    assert cm == snapshot


# ------------------------------------------------------------------------------------------
# drop_unknown_fields / find_duplicate_fields
# ------------------------------------------------------------------------------------------

def test_drop_unknown_fields_copy_on_write() -> None:
    obj = with_(with_(deployment(), "spec.foo", 1), "spec.template.spec.containers.0.imagee", "x")
    obj["metadata"]["bogus"] = True
    snapshot = copy.deepcopy(obj)
    out = v.drop_unknown_fields("apps", "v1", "Deployment", obj)
    assert obj == snapshot  # input untouched
    assert "foo" not in out["spec"]
    assert "imagee" not in out["spec"]["template"]["spec"]["containers"][0]
    assert "bogus" not in out["metadata"]
    assert out["spec"]["selector"] is obj["spec"]["selector"]  # unchanged subtrees shared
    assert v.check_schema("apps", "v1", "Deployment", out).ok


def test_drop_unknown_fields_returns_same_object_when_clean() -> None:
    obj = deployment()
    assert v.drop_unknown_fields("apps", "v1", "Deployment", obj) is obj
    cm = configmap()
    assert v.drop_unknown_fields("", "v1", "ConfigMap", cm) is cm


@pytest.mark.parametrize("raw,expected", [
    pytest.param(b'{"a":1,"b":2}', [], id="none"),
    pytest.param(b'{"a":1,"a":2}', ["a"], id="top-level"),
    pytest.param(b'{"spec":{"replicas":1,"replicas":2}}', ["spec.replicas"], id="nested"),
    pytest.param(b'{"spec":{"c":[{"n":1},{"n":1,"n":2}]}}', ["spec.c[1].n"], id="in-array"),
    pytest.param(b'{"a":1,"a":2,"a":3}', ["a"], id="reported-once"),
    pytest.param(b'not json', [], id="invalid-json"),
])
def test_find_duplicate_fields(raw: bytes, expected: list[str]) -> None:
    assert v.find_duplicate_fields(raw) == expected


# ------------------------------------------------------------------------------------------
# Names, labels, metadata
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("group,kind,rule", [
    pytest.param("", "Namespace", v.DNS1123_LABEL, id="namespace"),
    pytest.param("", "Service", v.DNS1035_LABEL, id="service"),
    pytest.param("", "Pod", v.DNS1123_SUBDOMAIN, id="pod"),
    pytest.param("", "Node", v.DNS1123_SUBDOMAIN, id="node"),
    pytest.param("apps", "Deployment", v.DNS1123_SUBDOMAIN, id="deployment"),
    pytest.param("rbac.authorization.k8s.io", "ClusterRole", v.PATH_SEGMENT, id="clusterrole"),
    pytest.param("rbac.authorization.k8s.io", "RoleBinding", v.PATH_SEGMENT, id="rolebinding"),
    pytest.param("authorization.k8s.io", "SelfSubjectAccessReview", v.NO_NAME, id="review"),
])
def test_name_rule_for(group: str, kind: str, rule: str) -> None:
    assert v.name_rule_for(group, kind) == rule


@pytest.mark.parametrize("rule,name,ok", [
    pytest.param(v.DNS1123_SUBDOMAIN, "web.example-1", True, id="subdomain-ok"),
    pytest.param(v.DNS1123_SUBDOMAIN, "Web", False, id="subdomain-upper"),
    pytest.param(v.DNS1123_SUBDOMAIN, "a" * 254, False, id="subdomain-too-long"),
    pytest.param(v.DNS1123_LABEL, "kube-system", True, id="label-ok"),
    pytest.param(v.DNS1123_LABEL, "a.b", False, id="label-dot"),
    pytest.param(v.DNS1123_LABEL, "a" * 64, False, id="label-too-long"),
    pytest.param(v.DNS1035_LABEL, "web", True, id="1035-ok"),
    pytest.param(v.DNS1035_LABEL, "1web", False, id="1035-digit-start"),
    pytest.param(v.PATH_SEGMENT, "system:controller:foo", True, id="segment-colons"),
    pytest.param(v.PATH_SEGMENT, "a/b", False, id="segment-slash"),
    pytest.param(v.PATH_SEGMENT, "..", False, id="segment-dotdot"),
    pytest.param(v.PATH_SEGMENT, "50%", False, id="segment-percent"),
])
def test_validate_name(rule: str, name: str, ok: bool) -> None:
    assert (v.validate_name(rule, name) == []) == ok


def test_generate_name_prefix_may_end_with_dash() -> None:
    assert v.validate_name(v.DNS1123_SUBDOMAIN, "web-", prefix=True) == []
    assert v.validate_name(v.DNS1123_SUBDOMAIN, "web-") != []


def _meta_causes(m: Any, namespaced: bool | None = True, rule: str = v.DNS1123_SUBDOMAIN) -> list[Cause]:
    return v.validate_object_meta(m, namespaced, rule)


META_CASES = [
    pytest.param(meta(), True, v.DNS1123_SUBDOMAIN, None, None, id="valid"),
    pytest.param({"namespace": "default"}, True, v.DNS1123_SUBDOMAIN, "metadata.name",
                 "Required value: name or generateName is required", id="name-required"),
    pytest.param({"generateName": "web-", "namespace": "default"}, True, v.DNS1123_SUBDOMAIN, None, None, id="generate-name-ok"),
    pytest.param({"generateName": "Web-", "namespace": "default"}, True, v.DNS1123_SUBDOMAIN, "metadata.generateName",
                 "a lowercase RFC 1123 subdomain", id="generate-name-bad"),
    pytest.param(meta("Bad_Name"), True, v.DNS1123_SUBDOMAIN, "metadata.name",
                 'Invalid value: "Bad_Name": ' + v.DNS1123_SUBDOMAIN_MSG, id="subdomain-message"),
    pytest.param(meta("a.b", None), False, v.DNS1123_LABEL, "metadata.name", "RFC 1123 label", id="namespace-label"),
    pytest.param(meta("my.svc"), True, v.DNS1035_LABEL, "metadata.name", "DNS-1035 label", id="service-1035"),
    pytest.param(meta("x", None), True, v.DNS1123_SUBDOMAIN, "metadata.namespace", "Required value", id="namespace-required"),
    pytest.param(meta("x", "default"), False, v.DNS1123_SUBDOMAIN, "metadata.namespace",
                 "Forbidden: not allowed on this type", id="namespace-forbidden"),
    pytest.param(meta("x", "Bad"), True, v.DNS1123_SUBDOMAIN, "metadata.namespace", "RFC 1123 label", id="namespace-syntax"),
    pytest.param(meta(labels={"app": "web", "example.com/tier": "front"}), True, v.DNS1123_SUBDOMAIN, None, None, id="labels-ok"),
    pytest.param(meta(labels={"bad key!": "x"}), True, v.DNS1123_SUBDOMAIN, "metadata.labels", "name part must consist", id="label-key"),
    pytest.param(meta(labels={"a/b/c": "x"}), True, v.DNS1123_SUBDOMAIN, "metadata.labels", "a qualified name must consist", id="label-key-slashes"),
    pytest.param(meta(labels={"app": "has space"}), True, v.DNS1123_SUBDOMAIN, "metadata.labels", "a valid label must be", id="label-value"),
    pytest.param(meta(labels={"app": "x" * 64}), True, v.DNS1123_SUBDOMAIN, "metadata.labels", "must be no more than 63 characters", id="label-value-long"),
    pytest.param(meta(annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"}), True, v.DNS1123_SUBDOMAIN, None, None, id="annotations-ok"),
    pytest.param(meta(annotations={"Bad Key": "x"}), True, v.DNS1123_SUBDOMAIN, "metadata.annotations", "name part", id="annotation-key"),
    pytest.param(meta(annotations={"big": "x" * (256 * 1024)}), True, v.DNS1123_SUBDOMAIN, "metadata.annotations", "Too long", id="annotations-size"),
    pytest.param(meta(finalizers=["example.com/cleanup", "kubernetes"]), True, v.DNS1123_SUBDOMAIN, None, None, id="finalizers-ok"),
    pytest.param(meta(finalizers=["cleanup"]), True, v.DNS1123_SUBDOMAIN, "metadata.finalizers[0]", "fully qualified", id="finalizer-unqualified"),
    pytest.param(meta(ownerReferences=[{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
                                       {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True}]),
                 True, v.DNS1123_SUBDOMAIN, "metadata.ownerReferences", "Only one reference can have Controller set to true", id="two-controllers"),
    pytest.param(meta(ownerReferences=[{"apiVersion": "v1", "kind": "A", "name": "a"}]), True, v.DNS1123_SUBDOMAIN,
                 "metadata.ownerReferences[0].uid", 'Invalid value: "": uid must not be empty', id="owner-uid-required"),
]


@pytest.mark.parametrize("m,namespaced,rule,field,message", META_CASES)
def test_validate_object_meta(m: Obj, namespaced: bool, rule: str, field: str | None, message: str | None) -> None:
    causes = v.validate_object_meta(m, namespaced, rule)
    if field is None:
        assert causes == []
    else:
        assert any(c.field == field and message in c.message for c in causes), causes  # type: ignore[operator]


def test_name_required_cause_shape() -> None:
    (cause,) = v.validate_object_meta({"namespace": "default"}, True, v.DNS1123_SUBDOMAIN)
    assert cause.to_dict() == {"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                               "field": "metadata.name"}


# ------------------------------------------------------------------------------------------
# Semantic validation per kind
# ------------------------------------------------------------------------------------------

G = {"Pod": "", "Service": "", "ConfigMap": "", "Secret": "", "Namespace": "", "Node": "", "PersistentVolumeClaim": "",
     "Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps", "Job": "batch",
     "CronJob": "batch", "Lease": "coordination.k8s.io", "Role": "rbac.authorization.k8s.io",
     "ClusterRole": "rbac.authorization.k8s.io", "RoleBinding": "rbac.authorization.k8s.io",
     "ClusterRoleBinding": "rbac.authorization.k8s.io", "Ingress": "networking.k8s.io",
     "HorizontalPodAutoscaler": "autoscaling", "PodDisruptionBudget": "policy", "PriorityClass": "scheduling.k8s.io"}


def run(obj: Obj, old: Obj | None = None) -> list[Cause]:
    kind = obj["kind"]
    return v.validate(G[kind], obj["apiVersion"].split("/")[-1], kind, obj, old)


def rs(**spec: Any) -> Obj:
    d = deployment(**spec)
    d["apiVersion"], d["kind"] = "apps/v1", "ReplicaSet"
    return d


def sts(**spec: Any) -> Obj:
    d = deployment(serviceName="web", **spec)
    d["kind"] = "StatefulSet"
    return d


def ds(**spec: Any) -> Obj:
    d = deployment(**spec)
    d["kind"] = "DaemonSet"
    del d["spec"]["replicas"]
    return d


def node(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta("node-1", None), "spec": spec}


def lease(**spec: Any) -> Obj:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta("l"), "spec": spec}


def pdb(**spec: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("p"), "spec": spec}


VALID = [
    pytest.param(pod(), id="pod"),
    pytest.param(pod(initContainers=[container("init")], volumes=[{"name": "data", "emptyDir": {}}],
                     containers=[container(ports=[{"name": "http", "containerPort": 80}],
                                           volumeMounts=[{"name": "data", "mountPath": "/data"}],
                                           env=[{"name": "MY_VAR", "value": "1"}, {"name": "my.var-2", "value": "2"}],
                                           resources={"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}})],
                     restartPolicy="OnFailure", tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]), id="pod-full"),
    pytest.param(deployment(), id="deployment"),
    pytest.param(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}), id="deployment-strategy"),
    pytest.param(deployment(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}), id="deployment-expressions"),
    pytest.param(rs(), id="replicaset"),
    pytest.param(sts(), id="statefulset"),
    pytest.param(ds(), id="daemonset"),
    pytest.param(job(), id="job"),
    pytest.param(job(completions=3, parallelism=2), id="job-counts"),
    pytest.param(cronjob(), id="cronjob"),
    pytest.param(cronjob(schedule="@hourly"), id="cronjob-macro"),
    pytest.param(cronjob(schedule="0 9-17 * jan-dec mon-fri"), id="cronjob-names"),
    pytest.param(service(), id="service"),
    pytest.param(service(clusterIP="None", ports=[]), id="service-headless"),
    pytest.param(service(type="ExternalName", externalName="db.example.com", ports=[]), id="service-externalname"),
    pytest.param(service(type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}, {"name": "https", "port": 443}]), id="service-nodeport"),
    pytest.param(service(clusterIP="10.96.0.10"), id="service-clusterip"),
    pytest.param(configmap(data={"app.properties": "x", "KEY_1": "y"}, binaryData={"bin": "AAE="}), id="configmap"),
    pytest.param(secret(stringData={"password": "p"}), id="secret"),
    pytest.param(secret(type="kubernetes.io/tls", data={"tls.crt": "YQ==", "tls.key": "Yg=="}), id="secret-tls"),
    pytest.param({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("team-a", None)}, id="namespace"),
    pytest.param(node(taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}], podCIDR="10.244.0.0/24"), id="node"),
    pytest.param(lease(holderIdentity="me", leaseDurationSeconds=15), id="lease"),
    pytest.param(role(), id="role"),
    pytest.param(role("ClusterRole", [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]), id="clusterrole-urls"),
    pytest.param(binding(), id="rolebinding"),
    pytest.param(binding({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, "ClusterRoleBinding"), id="clusterrolebinding"),
    pytest.param(ingress(), id="ingress"),
    pytest.param(pvc(), id="pvc"),
    pytest.param(hpa(), id="hpa"),
    pytest.param(pdb(minAvailable="50%"), id="pdb"),
]


@pytest.mark.parametrize("obj", VALID)
def test_valid_objects(obj: Obj) -> None:
    assert run(obj) == []


CP = "spec.containers[0]"
TP = "spec.template.spec"
INVALID = [
    # Pod
    pytest.param(pod(containers=[]), "spec.containers", "Required value", id="pod-no-containers"),
    pytest.param(pod(containers=[container(), container()]), "spec.containers[1].name", 'Duplicate value: "c"', id="pod-dup-container"),
    pytest.param(pod(initContainers=[container("c")]), "spec.containers[0].name", 'Duplicate value: "c"', id="pod-dup-init-container"),
    pytest.param(pod(containers=[container("Bad_Name")]), f"{CP}.name", "RFC 1123 label", id="pod-container-name"),
    pytest.param(pod(containers=[{"name": "c"}]), f"{CP}.image", "Required value", id="pod-image-required"),
    pytest.param(pod(containers=[container(ports=[{"containerPort": 70000}])]), f"{CP}.ports[0].containerPort",
                 "Invalid value: 70000: must be between 1 and 65535, inclusive", id="pod-port-range"),
    pytest.param(pod(containers=[container(ports=[{"containerPort": 0}])]), f"{CP}.ports[0].containerPort", "Required value", id="pod-port-zero"),
    pytest.param(pod(containers=[container(ports=[{"name": "a-very-long-port-name", "containerPort": 80}])]), f"{CP}.ports[0].name",
                 "must be no more than 15 characters", id="pod-port-name-long"),
    pytest.param(pod(containers=[container(ports=[{"name": "8080", "containerPort": 80}])]), f"{CP}.ports[0].name",
                 "must contain at least one letter", id="pod-port-name-letter"),
    pytest.param(pod(containers=[container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]), f"{CP}.ports[0].protocol",
                 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"', id="pod-port-protocol"),
    pytest.param(pod(restartPolicy="Sometimes"), "spec.restartPolicy",
                 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"', id="pod-restart-policy"),
    pytest.param(pod(containers=[container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})]),
                 f"{CP}.resources.requests[cpu]", 'Invalid value: "2": must be less than or equal to cpu limit of 1', id="pod-requests-gt-limits"),
    pytest.param(pod(containers=[container(resources={"requests": {"memory": "256Mi"}, "limits": {"memory": "0.25Gi"}})]),
                 None, None, id="pod-requests-eq-limits-units"),
    pytest.param(pod(containers=[container(resources={"requests": {"cpu": "-1"}})]), f"{CP}.resources.requests[cpu]",
                 "must be greater than or equal to 0", id="pod-negative-request"),
    pytest.param(pod(volumes=[{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]), "spec.volumes[1].name",
                 'Duplicate value: "a"', id="pod-dup-volume"),
    pytest.param(pod(volumes=[{"name": "a"}]), "spec.volumes[0]", "must specify a volume type", id="pod-volume-no-source"),
    pytest.param(pod(volumes=[{"name": "a", "emptyDir": {}, "hostPath": {"path": "/"}}]), "spec.volumes[0].hostPath",
                 "may not specify more than 1 volume type", id="pod-volume-two-sources"),
    pytest.param(pod(containers=[container(volumeMounts=[{"name": "missing", "mountPath": "/x"}])]), f"{CP}.volumeMounts[0].name",
                 'Not found: "missing"', id="pod-mount-unknown-volume"),
    pytest.param(pod(volumes=[{"name": "a", "emptyDir": {}}], containers=[container(volumeMounts=[{"name": "a"}])]),
                 f"{CP}.volumeMounts[0].mountPath", "Required value", id="pod-mount-path-required"),
    pytest.param(pod(containers=[container(env=[{"name": "A=B", "value": "1"}])]), f"{CP}.env[0].name",
                 "printable ASCII characters other than '='", id="pod-env-name"),
    pytest.param(pod(containers=[container(env=[{"value": "1"}])]), f"{CP}.env[0].name", "Required value", id="pod-env-name-required"),
    pytest.param(pod(tolerations=[{"key": "k", "operator": "Maybe"}]), "spec.tolerations[0].operator", "Unsupported value", id="pod-toleration-op"),
    # Deployment & friends
    pytest.param(with_(deployment(), "spec.replicas", -1), "spec.replicas",
                 "Invalid value: -1: must be greater than or equal to 0", id="deploy-negative-replicas"),
    pytest.param(with_(deployment(), "spec.selector", ...), "spec.selector", "Required value", id="deploy-selector-required"),
    pytest.param(with_(deployment(), "spec.selector", {}), "spec.selector", "empty selector is invalid for deployment", id="deploy-empty-selector"),
    pytest.param(with_(deployment(), "spec.template.metadata.labels", {"app": "other"}), "spec.template.metadata.labels",
                 'Invalid value: {"app":"other"}: `selector` does not match template `labels`', id="deploy-selector-mismatch"),
    pytest.param(deployment(selector={"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}),
                 "spec.template.metadata.labels", "does not match", id="deploy-expression-mismatch"),
    pytest.param(deployment(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
                 "spec.selector.matchExpressions[0].values", "must be specified when `operator` is 'In' or 'NotIn'", id="selector-values-required"),
    pytest.param(with_(deployment(), "spec.template.spec.containers.0.image", ""), f"{TP}.containers[0].image", "Required value", id="deploy-template-image"),
    pytest.param(with_(deployment(), "spec.template.spec.restartPolicy", "Never"), f"{TP}.restartPolicy",
                 'Unsupported value: "Never": supported values: "Always"', id="deploy-restart-never"),
    pytest.param(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
                 "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0", id="deploy-surge-unavailable-zero"),
    pytest.param(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}),
                 "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0", id="deploy-surge-zero-percent"),
    pytest.param(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "abc"}}),
                 "spec.strategy.rollingUpdate.maxSurge", "a valid percent string", id="deploy-bad-percent"),
    pytest.param(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}),
                 "spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%", id="deploy-percent-over-100"),
    pytest.param(deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}), "spec.strategy.rollingUpdate",
                 "may not be specified when strategy `type` is 'Recreate'", id="deploy-recreate-with-rolling"),
    pytest.param(deployment(strategy={"type": "Blue"}), "spec.strategy.type", "Unsupported value", id="deploy-strategy-type"),
    pytest.param(with_(rs(), "spec.replicas", -2), "spec.replicas", "must be greater than or equal to 0", id="rs-negative"),
    pytest.param(with_(rs(), "spec.template.metadata.labels", {}), "spec.template.metadata.labels", "does not match", id="rs-mismatch"),
    pytest.param(with_(sts(), "spec.template.metadata.labels", {"x": "y"}), "spec.template.metadata.labels", "does not match", id="sts-mismatch"),
    pytest.param(sts(podManagementPolicy="Random"), "spec.podManagementPolicy", "Unsupported value", id="sts-policy"),
    pytest.param(with_(ds(), "spec.template.metadata.labels", {"x": "y"}), "spec.template.metadata.labels", "does not match", id="ds-mismatch"),
    pytest.param(ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
                 "spec.updateStrategy.rollingUpdate.maxUnavailable", "may not be 0", id="ds-both-zero"),
    # Job / CronJob
    pytest.param(with_(job(), "spec.template.spec.restartPolicy", "Always"), f"{TP}.restartPolicy",
                 'Unsupported value: "Always": supported values: "OnFailure", "Never"', id="job-restart-always"),
    pytest.param(job(completions=-1), "spec.completions", "must be greater than or equal to 0", id="job-completions"),
    pytest.param(job(parallelism=-1), "spec.parallelism", "must be greater than or equal to 0", id="job-parallelism"),
    pytest.param(job(backoffLimit=-1), "spec.backoffLimit", "must be greater than or equal to 0", id="job-backoff"),
    pytest.param(job(completionMode="Indexed"), "spec.completions", "Required value", id="job-indexed-needs-completions"),
    pytest.param(with_(cronjob(), "spec.schedule", ...), "spec.schedule", "Required value", id="cronjob-schedule-required"),
    pytest.param(cronjob(schedule="* * *"), "spec.schedule", "expected exactly 5 fields, found 3", id="cronjob-fields"),
    pytest.param(cronjob(schedule="61 * * * *"), "spec.schedule", "end of range (61) above maximum (59)", id="cronjob-range"),
    pytest.param(cronjob(schedule="@sometimes"), "spec.schedule", "unrecognized descriptor", id="cronjob-macro"),
    pytest.param(cronjob(schedule="TZ=UTC 0 * * * *"), "spec.schedule", "cannot use TZ or CRON_TZ", id="cronjob-tz"),
    pytest.param(cronjob(concurrencyPolicy="Maybe"), "spec.concurrencyPolicy", "Unsupported value", id="cronjob-concurrency"),
    pytest.param(cronjob(name="c" * 53), "metadata.name", "must be no more than 52 characters", id="cronjob-name-length"),
    pytest.param(with_(cronjob(), "spec.jobTemplate.spec.template.spec.restartPolicy", "Always"),
                 "spec.jobTemplate.spec.template.spec.restartPolicy", "Unsupported value", id="cronjob-template-restart"),
    # Service
    pytest.param(service(ports=[]), "spec.ports", "Required value", id="svc-ports-required"),
    pytest.param(service(ports=[{"port": 0}]), "spec.ports[0].port", "must be between 1 and 65535, inclusive", id="svc-port-range"),
    pytest.param(service(ports=[{"port": 80}, {"port": 443}]), "spec.ports[0].name", "Required value", id="svc-names-required"),
    pytest.param(service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 443}]), "spec.ports[1].name", 'Duplicate value: "a"', id="svc-dup-names"),
    pytest.param(service(type="Magic"), "spec.type",
                 'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"', id="svc-type"),
    pytest.param(service(type="NodePort", ports=[{"port": 80, "nodePort": 80}]), "spec.ports[0].nodePort",
                 "The range of valid ports is 30000-32767", id="svc-nodeport-range"),
    pytest.param(service(ports=[{"port": 80, "nodePort": 30080}]), "spec.ports[0].nodePort",
                 "may not be used when `type` is 'ClusterIP'", id="svc-nodeport-clusterip"),
    pytest.param(service(clusterIP="10.0.0.300"), "spec.clusterIP", "must be a valid IP address", id="svc-clusterip"),
    pytest.param(service(type="ExternalName", ports=[]), "spec.externalName", "Required value", id="svc-externalname-required"),
    pytest.param(service(ports=[{"port": 80, "targetPort": 0}]), "spec.ports[0].targetPort", "must be between 1 and 65535", id="svc-targetport"),
    # ConfigMap / Secret
    pytest.param(configmap(data={"bad key": "x"}), "data[bad key]", "a valid config key must consist of alphanumeric characters", id="cm-key"),
    pytest.param(configmap(data={"..x": "x"}), "data[..x]", "must not start with '..'", id="cm-key-dotdot"),
    pytest.param(configmap(data={"k": "x"}, binaryData={"k": "AA=="}), "binaryData[k]", "duplicate of key present in data", id="cm-overlap"),
    pytest.param(secret(data={"k": "%%%"}), "data[k]", "illegal base64 data", id="secret-base64"),
    pytest.param(secret(data={"a b": "YQ=="}), "data[a b]", "a valid config key", id="secret-key"),
    pytest.param(secret(type="kubernetes.io/tls", data={"tls.crt": "YQ=="}), "data[tls.key]", "Required value", id="secret-tls-key"),
    # Namespace / Node / Lease
    pytest.param({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("My.NS", None)}, "metadata.name", "RFC 1123 label", id="ns-name"),
    pytest.param(node(taints=[{"key": "k", "effect": "Sometimes"}]), "spec.taints[0].effect", "Unsupported value", id="node-taint-effect"),
    pytest.param(node(taints=[{"effect": "NoSchedule"}]), "spec.taints[0].key", "Required value", id="node-taint-key"),
    pytest.param(node(podCIDR="nope"), "spec.podCIDR", "must be a valid CIDR", id="node-cidr"),
    pytest.param({"apiVersion": "v1", "kind": "Node", "metadata": meta("Node_1", None)}, "metadata.name", "RFC 1123 subdomain", id="node-name"),
    pytest.param(lease(leaseDurationSeconds=0), "spec.leaseDurationSeconds", "must be greater than 0", id="lease-duration"),
    # RBAC
    pytest.param(role(rules=[{"apiGroups": [""], "resources": ["pods"]}]), "rules[0].verbs",
                 "Required value: verbs must contain at least one value", id="role-verbs"),
    pytest.param(role(rules=[{"resources": ["pods"], "verbs": ["get"]}]), "rules[0].apiGroups",
                 "resource rules must supply at least one api group", id="role-apigroups"),
    pytest.param(role(rules=[{"nonResourceURLs": ["/x"], "verbs": ["get"]}]), "rules[0].nonResourceURLs",
                 "namespaced rules cannot apply to non-resource URLs", id="role-urls"),
    pytest.param(binding({}), "roleRef", "Required value", id="binding-roleref-required"),
    pytest.param(binding({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role"}), "roleRef.name", "Required value", id="binding-roleref-name"),
    pytest.param(binding({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "x"}), "roleRef.kind",
                 'Unsupported value: "Group": supported values: "Role", "ClusterRole"', id="binding-roleref-kind"),
    pytest.param(binding({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"}, "ClusterRoleBinding"),
                 "roleRef.kind", 'supported values: "ClusterRole"', id="crb-role-kind"),
    pytest.param({**role("ClusterRole"), "metadata": meta("a/b", None)}, "metadata.name", "may not contain '/'", id="role-name-segment"),
    # Ingress
    pytest.param(ingress([{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]),
                 "spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified", id="ing-pathtype-required"),
    pytest.param(ingress([{"path": "/", "pathType": "Glob", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]),
                 "spec.rules[0].http.paths[0].pathType", "Unsupported value", id="ing-pathtype-value"),
    pytest.param(ingress([{"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]),
                 "spec.rules[0].http.paths[0].path", "must be an absolute path", id="ing-relative-path"),
    pytest.param(ingress([{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {}}}}]),
                 "spec.rules[0].http.paths[0].backend.service.port", "port name or number is required", id="ing-port"),
    pytest.param(ingress(rules=[]), "spec", "either `defaultBackend` or `rules` must be specified", id="ing-empty"),
    # PVC
    pytest.param(pvc(accessModes=[]), "spec.accessModes", "Required value: at least 1 access mode is required", id="pvc-access-modes"),
    pytest.param(pvc(accessModes=["ReadWriteSometimes"]), "spec.accessModes", "Unsupported value", id="pvc-access-mode-value"),
    pytest.param(pvc(resources={}), "spec.resources[storage]", "Required value", id="pvc-storage-required"),
    # HPA / PDB / PriorityClass
    pytest.param(hpa(minReplicas=5, maxReplicas=2), "spec.maxReplicas",
                 "Invalid value: 2: must be greater than or equal to `minReplicas`", id="hpa-max-lt-min"),
    pytest.param(hpa(minReplicas=0), "spec.minReplicas", "must be greater than or equal to 1", id="hpa-min-zero"),
    pytest.param(hpa(maxReplicas=0, minReplicas=None), "spec.maxReplicas", "must be greater than 0", id="hpa-max-zero"),
    pytest.param(pdb(minAvailable=1, maxUnavailable=1), "spec", "cannot be both set", id="pdb-both"),
    pytest.param({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": meta("high", None)},
                 "value", "Required value", id="priorityclass-value"),
]


@pytest.mark.parametrize("obj,field,message", INVALID)
def test_invalid_objects(obj: Obj, field: str | None, message: str | None) -> None:
    causes = run(obj)
    if field is None:
        assert causes == []
        return
    assert any(c.field == field and message in c.message for c in causes), causes  # type: ignore[operator]


def _updated(obj: Obj, path: str, value: Any) -> tuple[Obj, Obj]:
    return with_(obj, path, value), obj


UPDATES = [
    pytest.param(*_updated(deployment(), "spec.replicas", 5), None, None, id="deploy-scale-ok"),
    pytest.param(*_updated(deployment(), "spec.template.spec.containers.0.image", "nginx:2"), None, None, id="deploy-image-ok"),
    pytest.param(with_(with_(deployment(), "spec.selector.matchLabels", {"app": "web", "v": "2"}), "spec.template.metadata.labels", {"app": "web", "v": "2"}),
                 deployment(), "spec.selector", "field is immutable", id="deploy-selector-immutable"),
    pytest.param(*_updated(rs(), "spec.selector.matchLabels", {}), "spec.selector", "field is immutable", id="rs-selector-immutable"),
    pytest.param(*_updated(ds(), "spec.selector.matchExpressions", [{"key": "app", "operator": "Exists"}]), "spec.selector",
                 "field is immutable", id="ds-selector-immutable"),
    pytest.param(*_updated(sts(), "spec.replicas", 3), None, None, id="sts-replicas-ok"),
    pytest.param(*_updated(sts(), "spec.serviceName", "other"), "spec", "updates to statefulset spec for fields other than", id="sts-forbidden"),
    pytest.param(*_updated(job(), "spec.template.spec.containers.0.image", "busybox"), "spec.template", "field is immutable", id="job-template-immutable"),
    pytest.param(*_updated(job(), "spec.parallelism", 4), None, None, id="job-parallelism-ok"),
    pytest.param(*_updated(service(clusterIP="10.96.0.10"), "spec.clusterIP", "10.96.0.11"), "spec.clusterIP", "field is immutable", id="svc-clusterip-immutable"),
    pytest.param(*_updated(service(clusterIP="10.96.0.10"), "spec.ports.0.port", 81), None, None, id="svc-port-change-ok"),
    pytest.param(*_updated(service(clusterIP="10.96.0.10"), "spec.clusterIP", ...), None, None, id="svc-clusterip-omitted-ok"),
    pytest.param(*_updated(sts(), "spec.revisionHistoryLimit", 3), None, None, id="sts-history-ok"),
    pytest.param(*_updated(configmap(immutable=True), "data.k", "changed"), "data", "Forbidden: field is immutable when `immutable` is set", id="cm-immutable-data"),
    pytest.param(*_updated(configmap(immutable=True), "immutable", False), "immutable", "field is immutable when `immutable` is set", id="cm-immutable-flag"),
    pytest.param(*_updated(configmap(immutable=True), "metadata.labels", {"a": "b"}), None, None, id="cm-immutable-metadata-ok"),
    pytest.param(*_updated(configmap(), "data.k", "changed"), None, None, id="cm-mutable-ok"),
    pytest.param(*_updated(secret(immutable=True), "data.k", "b3RoZXI="), "data", "field is immutable when `immutable` is set", id="secret-immutable"),
    pytest.param(*_updated(secret(), "type", "kubernetes.io/basic-auth"), "type", "field is immutable", id="secret-type-immutable"),
    pytest.param(*_updated(pvc(), "spec.accessModes", ["ReadWriteMany"]), "spec", "spec is immutable after creation", id="pvc-immutable"),
    pytest.param(*_updated(pvc(volumeName="pv-1"), "spec.resources.requests.storage", "2Gi"), None, None, id="pvc-bound-expand-ok"),
    pytest.param(*_updated(pvc(volumeName="pv-1"), "spec.resources.requests.storage", "512Mi"), "spec.resources.requests.storage",
                 "can not be less than previous value", id="pvc-shrink"),
    pytest.param(*_updated(binding(), "roleRef.name", "other"), "roleRef", "cannot change roleRef", id="binding-roleref-immutable"),
    pytest.param(*_updated(pod(), "spec.containers.0.image", "nginx:2"), None, None, id="pod-image-ok"),
    pytest.param(*_updated(pod(), "spec.nodeName", "node-1"), None, None, id="pod-binding-ok"),
    pytest.param(*_updated(pod(), "spec.activeDeadlineSeconds", 30), None, None, id="pod-deadline-ok"),
    pytest.param(*_updated(pod(), "spec.containers.0.name", "d"), "spec", "pod updates may not change fields other than", id="pod-spec-immutable"),
    pytest.param(*_updated(pod(tolerations=[{"key": "a", "operator": "Exists"}]), "spec.tolerations", []), "spec",
                 "pod updates may not change", id="pod-toleration-removal"),
]


@pytest.mark.parametrize("new,old,field,message", UPDATES)
def test_update_rules(new: Obj, old: Obj, field: str | None, message: str | None) -> None:
    causes = run(new, old)
    if field is None:
        assert causes == []
        return
    assert any(c.field == field and message in c.message for c in causes), causes  # type: ignore[operator]


def test_unknown_kind_gets_metadata_rules_only() -> None:
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "Bad"}, "spec": {"anything": 1}}
    causes = v.validate("stable.example.com", "v1", "CronTab", obj)
    assert fields(causes) == ["metadata.name"]


def test_validate_does_not_mutate() -> None:
    obj = with_(deployment(), "spec.replicas", -1)
    snapshot = copy.deepcopy(obj)
    v.validate("apps", "v1", "Deployment", obj, deployment())
    assert obj == snapshot


@pytest.mark.parametrize("text,expected", [
    pytest.param("500m", "0.5", id="milli"),
    pytest.param("1Gi", str(2**30), id="binary"),
    pytest.param("1e3", "1000", id="exponent"),
    pytest.param("2k", "2000", id="kilo"),
    pytest.param(3, "3", id="number"),
    pytest.param("1.5.2", None, id="bad-number"),
    pytest.param("1Zi", None, id="bad-suffix"),
    pytest.param("", None, id="empty"),
])
def test_parse_quantity(text: Any, expected: str | None) -> None:
    q = v.parse_quantity(text)
    assert q == (None if expected is None else Decimal(expected))


@pytest.mark.parametrize("schedule,ok", [
    pytest.param("*/15 * * * *", True, id="step"),
    pytest.param("0 0 1,15 * sun", True, id="list-and-name"),
    pytest.param("0 0 ? * *", True, id="question-mark"),
    pytest.param("@every 1h30m", True, id="every"),
    pytest.param("0 24 * * *", False, id="hour-out-of-range"),
    pytest.param("0 0 0 * *", False, id="dom-below-minimum"),
    pytest.param("5-1 * * * *", False, id="reversed-range"),
    pytest.param("*/0 * * * *", False, id="zero-step"),
    pytest.param("x * * * *", False, id="garbage"),
])
def test_parse_cron(schedule: str, ok: bool) -> None:
    assert (v.parse_cron_error(schedule) is None) == ok


def test_statefulset_mounts_may_name_volume_claim_templates() -> None:
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "serviceName": "nginx", "replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"restartPolicy": "Always", "containers": [
                {"name": "nginx", "image": "nginx", "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    }
    assert v.validate("apps", "v1", "StatefulSet", sts) == []
    sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "other"
    assert [c.field for c in v.validate("apps", "v1", "StatefulSet", sts)] == ["spec.template.spec.containers[0].volumeMounts[0].name"]
