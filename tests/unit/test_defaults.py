"""API defaulting (upstream v1.32 SetDefaults_*): table-driven minimal objects in, fields out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybernetes.api.defaults import apply_defaults, default_pull_policy, has_defaults, image_tag


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "c", "image": "nginx:1.27", **extra}


def template(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container()], **spec}}


def get(obj: Any, path: str) -> Any:
    """Follow a dotted path; integers index lists."""
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


# (group, version, kind, minimal object, {path: expected value})
CASES: list[Any] = [
    pytest.param("", "v1", "Pod", {"metadata": {"name": "p"}, "spec": {"containers": [container()]}}, {
        "spec.restartPolicy": "Always", "spec.dnsPolicy": "ClusterFirst",
        "spec.schedulerName": "default-scheduler", "spec.terminationGracePeriodSeconds": 30,
        "spec.securityContext": {}, "spec.enableServiceLinks": True,
        "spec.containers.0.imagePullPolicy": "IfNotPresent",
        "spec.containers.0.terminationMessagePath": "/dev/termination-log",
        "spec.containers.0.terminationMessagePolicy": "File", "spec.containers.0.resources": {},
    }, id="pod"),
    pytest.param("", "v1", "Pod", {"spec": {
        "initContainers": [container(name="i", image="busybox")],
        "containers": [container(
            ports=[{"containerPort": 80}],
            livenessProbe={"httpGet": {"port": 80}},
            readinessProbe={"grpc": {"port": 9000}, "periodSeconds": 5},
            lifecycle={"preStop": {"httpGet": {"port": 8080, "path": "/stop"}}},
            env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}],
            resources={"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
        )],
        "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}},
                    {"name": "c", "secret": {"secretName": "s"}}, {"name": "d", "hostPath": {"path": "/x"}},
                    {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                                                            {"downwardAPI": {"items": [
                                                                {"path": "n", "fieldRef": {"fieldPath": "x"}}]}}]}},
                    {"name": "f", "downwardAPI": {}},
                    {"name": "g", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["RWO"]}}}}],
    }}, {
        "spec.initContainers.0.imagePullPolicy": "Always",
        "spec.initContainers.0.terminationMessagePath": "/dev/termination-log",
        "spec.containers.0.ports.0.protocol": "TCP",
        "spec.containers.0.livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                                            "timeoutSeconds": 1, "periodSeconds": 10,
                                            "successThreshold": 1, "failureThreshold": 3},
        "spec.containers.0.readinessProbe.grpc.service": "",
        "spec.containers.0.readinessProbe.periodSeconds": 5,
        "spec.containers.0.lifecycle.preStop.httpGet": {"port": 8080, "path": "/stop", "scheme": "HTTP"},
        "spec.containers.0.env.0.valueFrom.fieldRef.apiVersion": "v1",
        "spec.containers.0.env.1.valueFrom.resourceFieldRef.divisor": "0",
        "spec.containers.0.resources.requests": {"memory": "1Gi", "cpu": "1"},
        "spec.volumes.0.emptyDir": {}, "spec.volumes.1.configMap.defaultMode": 420,
        "spec.volumes.2.secret.defaultMode": 420, "spec.volumes.3.hostPath.type": "",
        "spec.volumes.4.projected.defaultMode": 420,
        "spec.volumes.4.projected.sources.0.serviceAccountToken.expirationSeconds": 3600,
        "spec.volumes.4.projected.sources.1.downwardAPI.items.0.fieldRef.apiVersion": "v1",
        "spec.volumes.5.downwardAPI.defaultMode": 420,
        "spec.volumes.6.ephemeral.volumeClaimTemplate.spec.volumeMode": "Filesystem",
    }, id="pod-details"),
    pytest.param("", "v1", "Pod", {"spec": {"hostNetwork": True, "containers": [
        container(ports=[{"containerPort": 8080}])]}},
        {"spec.containers.0.ports.0.hostPort": 8080}, id="pod-host-network-ports"),
    pytest.param("apps", "v1", "Deployment", {"spec": {"template": template()}}, {
        "spec.replicas": 1, "spec.strategy": {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "spec.revisionHistoryLimit": 10, "spec.progressDeadlineSeconds": 600,
        "spec.template.spec.restartPolicy": "Always",
        "spec.template.spec.containers.0.imagePullPolicy": "IfNotPresent",
    }, id="deployment"),
    pytest.param("apps", "v1", "Deployment", {"spec": {"strategy": {"type": "Recreate"}, "template": template()}},
                 {"spec.strategy": {"type": "Recreate"}}, id="deployment-recreate"),
    pytest.param("apps", "v1", "ReplicaSet", {"spec": {"template": template()}},
                 {"spec.replicas": 1, "spec.template.spec.dnsPolicy": "ClusterFirst"}, id="replicaset"),
    pytest.param("apps", "v1", "DaemonSet", {"spec": {"template": template()}}, {
        "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "spec.revisionHistoryLimit": 10,
    }, id="daemonset"),
    pytest.param("apps", "v1", "StatefulSet", {"spec": {"template": template(), "volumeClaimTemplates": [
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}, {
        "spec.replicas": 1, "spec.podManagementPolicy": "OrderedReady",
        "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "spec.revisionHistoryLimit": 10,
        "spec.persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "spec.volumeClaimTemplates.0.spec.volumeMode": "Filesystem",
        "spec.volumeClaimTemplates.0.status.phase": "Pending",
    }, id="statefulset"),
    pytest.param("apps", "v1", "StatefulSet", {"spec": {"template": template(),
                                                        "updateStrategy": {"type": "RollingUpdate"}}},
                 {"spec.updateStrategy": {"type": "RollingUpdate"}}, id="statefulset-explicit-strategy"),
    pytest.param("batch", "v1", "Job", {"spec": {"template": template(restartPolicy="Never")}}, {
        "spec.completions": 1, "spec.parallelism": 1, "spec.backoffLimit": 6,
        "spec.completionMode": "NonIndexed", "spec.suspend": False,
        "spec.podReplacementPolicy": "TerminatingOrFailed", "metadata.labels": {"app": "web"},
        "spec.template.spec.restartPolicy": "Never",
    }, id="job"),
    pytest.param("batch", "v1", "Job", {"spec": {"parallelism": 3, "backoffLimitPerIndex": 1,
                                                 "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                                                 "onPodConditions": [{"type": "X"}]}]},
                                                 "template": template()}}, {
        "spec.parallelism": 3, "spec.backoffLimit": 2147483647, "spec.podReplacementPolicy": "Failed",
        "spec.podFailurePolicy.rules.0.onPodConditions.0.status": "True",
    }, id="job-parallel"),
    pytest.param("batch", "v1", "CronJob", {"spec": {"schedule": "* * * * *", "jobTemplate": {
        "spec": {"template": template(restartPolicy="OnFailure")}}}}, {
        "spec.concurrencyPolicy": "Allow", "spec.suspend": False, "spec.successfulJobsHistoryLimit": 3,
        "spec.failedJobsHistoryLimit": 1,
        "spec.jobTemplate.spec.template.spec.containers.0.terminationMessagePolicy": "File",
    }, id="cronjob"),
    pytest.param("", "v1", "Service", {"spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}, {
        "spec.type": "ClusterIP", "spec.sessionAffinity": "None",
        "spec.ports.0": {"port": 80, "protocol": "TCP", "targetPort": 80},
        "spec.internalTrafficPolicy": "Cluster", "spec.ipFamilyPolicy": "SingleStack",
        "spec.ipFamilies": ["IPv4"],
    }, id="service"),
    pytest.param("", "v1", "Service", {"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                                                "ports": [{"port": 443, "targetPort": "https"}]}}, {
        "spec.externalTrafficPolicy": "Cluster", "spec.allocateLoadBalancerNodePorts": True,
        "spec.sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "spec.ports.0.targetPort": "https",
    }, id="service-lb"),
    pytest.param("", "v1", "Service", {"spec": {"type": "ExternalName", "externalName": "x.example"}},
                 {"spec": {"type": "ExternalName", "externalName": "x.example", "sessionAffinity": "None"}},
                 id="service-externalname"),
    pytest.param("", "v1", "Secret", {"data": {}}, {"type": "Opaque"}, id="secret"),
    pytest.param("", "v1", "Namespace", {"metadata": {"name": "dev"}}, {
        "metadata.labels": {"kubernetes.io/metadata.name": "dev"}, "spec.finalizers": ["kubernetes"],
        "status.phase": "Active",
    }, id="namespace"),
    pytest.param("", "v1", "Node", {"status": {"capacity": {"cpu": "4"}}},
                 {"status.allocatable": {"cpu": "4"}}, id="node"),
    pytest.param("", "v1", "PersistentVolume", {"spec": {"capacity": {"storage": "1Gi"}}}, {
        "spec.persistentVolumeReclaimPolicy": "Retain", "spec.volumeMode": "Filesystem", "status.phase": "Pending",
    }, id="pv"),
    pytest.param("", "v1", "PersistentVolumeClaim", {"spec": {}},
                 {"spec.volumeMode": "Filesystem", "status.phase": "Pending"}, id="pvc"),
    pytest.param("", "v1", "ReplicationController", {"spec": {"template": template()}}, {
        "spec.replicas": 1, "spec.selector": {"app": "web"}, "metadata.labels": {"app": "web"},
        "spec.template.spec.schedulerName": "default-scheduler",
    }, id="replicationcontroller"),
    pytest.param("", "v1", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]},
                 {"subsets.0.ports.0.protocol": "TCP"}, id="endpoints"),
    pytest.param("", "v1", "LimitRange", {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
        {"type": "Pod", "max": {"cpu": "4"}}]}}, {
        "spec.limits.0.default": {"cpu": "2"}, "spec.limits.0.defaultRequest": {"cpu": "2", "memory": "64Mi"},
        "spec.limits.1": {"type": "Pod", "max": {"cpu": "4"}},
    }, id="limitrange"),
    pytest.param("", "v1", "PodTemplate", {"template": template()},
                 {"template.spec.restartPolicy": "Always"}, id="podtemplate"),
    pytest.param("autoscaling", "v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}},
                 {"spec": {"maxReplicas": 3, "minReplicas": 1}}, id="hpa-v1"),
    pytest.param("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}}, {
        "spec.minReplicas": 1,
        "spec.metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}],
    }, id="hpa-v2"),
    pytest.param("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3, "behavior": {
        "scaleDown": {"stabilizationWindowSeconds": 60}}}}, {
        "spec.behavior.scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "spec.behavior.scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    }, id="hpa-v2-behavior"),
    pytest.param("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}, "egress": [
        {"ports": [{"port": 53}]}]}}, {
        "spec.policyTypes": ["Ingress", "Egress"], "spec.egress.0.ports.0.protocol": "TCP",
    }, id="networkpolicy"),
    pytest.param("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}}},
                 {"spec.policyTypes": ["Ingress"]}, id="networkpolicy-ingress-only"),
    pytest.param("networking.k8s.io", "v1", "IngressClass", {"spec": {"controller": "x", "parameters": {
        "kind": "K", "name": "n"}}}, {"spec.parameters.scope": "Cluster"}, id="ingressclass"),
    pytest.param("rbac.authorization.k8s.io", "v1", "RoleBinding", {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
                     {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]}, {
        "roleRef.apiGroup": "rbac.authorization.k8s.io",
        "subjects": [{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "ServiceAccount", "name": "s", "namespace": "n"}],
    }, id="rolebinding"),
    pytest.param("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", {
        "roleRef": {"kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}]},
        {"subjects.0.apiGroup": "rbac.authorization.k8s.io"}, id="clusterrolebinding"),
    pytest.param("storage.k8s.io", "v1", "StorageClass", {"provisioner": "p"},
                 {"reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}, id="storageclass"),
    pytest.param("scheduling.k8s.io", "v1", "PriorityClass", {"value": 10},
                 {"preemptionPolicy": "PreemptLowerPriority"}, id="priorityclass"),
    pytest.param("discovery.k8s.io", "v1", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]},
                 {"ports.0": {"port": 80, "name": "", "protocol": "TCP"}}, id="endpointslice"),
    pytest.param("apiextensions.k8s.io", "v1", "CustomResourceDefinition", {"spec": {
        "group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}}}, {
        "spec.names.singular": "widget", "spec.names.listKind": "WidgetList", "spec.conversion": {"strategy": "None"},
    }, id="crd"),
    pytest.param("apiextensions.k8s.io", "v1", "CustomResourceDefinition", {"spec": {
        "names": {"kind": "Widget"}, "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {
            "service": {"name": "s", "namespace": "n"}}}}}},
        {"spec.conversion.webhook.clientConfig.service.port": 443}, id="crd-webhook"),
]


@pytest.mark.parametrize(("group", "version", "kind", "obj", "expected"), CASES)
def test_defaults(group: str, version: str, kind: str, obj: dict[str, Any], expected: dict[str, Any]) -> None:
    apply_defaults(group, version, kind, obj)
    for path, value in expected.items():
        assert get(obj, path) == value, path


@pytest.mark.parametrize(("group", "version", "kind", "obj", "expected"), CASES)
def test_defaults_are_idempotent(group: str, version: str, kind: str, obj: dict[str, Any],
                                 expected: dict[str, Any]) -> None:
    once = copy.deepcopy(obj)
    apply_defaults(group, version, kind, once)
    twice = copy.deepcopy(once)
    apply_defaults(group, version, kind, twice)
    assert twice == once


USER_SET: list[Any] = [
    pytest.param("", "v1", "Pod", {"spec": {
        "restartPolicy": "Never", "dnsPolicy": "Default", "schedulerName": "mine",
        "terminationGracePeriodSeconds": 0, "securityContext": {"runAsUser": 1}, "enableServiceLinks": False,
        "containers": [container(image="nginx", imagePullPolicy="Never", terminationMessagePath="/t",
                                 terminationMessagePolicy="FallbackToLogsOnError",
                                 resources={"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}},
                                 ports=[{"containerPort": 53, "protocol": "UDP"}],
                                 readinessProbe={"exec": {"command": ["x"]}, "timeoutSeconds": 5,
                                                 "periodSeconds": 3, "successThreshold": 2,
                                                 "failureThreshold": 9})],
        "volumes": [{"name": "s", "secret": {"secretName": "x", "defaultMode": 256}}]}}, id="pod"),
    pytest.param("apps", "v1", "Deployment", {"spec": {
        "replicas": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 30,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": template(restartPolicy="Always", dnsPolicy="ClusterFirst", schedulerName="x",
                             terminationGracePeriodSeconds=1, securityContext={})}}, id="deployment"),
    pytest.param("batch", "v1", "Job", {"metadata": {"labels": {"own": "label"}}, "spec": {
        "completions": 5, "parallelism": 2, "backoffLimit": 0, "completionMode": "Indexed", "suspend": True,
        "podReplacementPolicy": "Failed", "template": template(restartPolicy="Never")}}, id="job"),
    pytest.param("", "v1", "Service", {"spec": {
        "type": "NodePort", "sessionAffinity": "None", "externalTrafficPolicy": "Local",
        "internalTrafficPolicy": "Local", "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6"],
        "ports": [{"port": 80, "targetPort": 8080, "protocol": "SCTP"}]}}, id="service"),
]


@pytest.mark.parametrize(("group", "version", "kind", "obj"), USER_SET)
def test_defaults_never_overwrite_user_values(group: str, version: str, kind: str, obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    apply_defaults(group, version, kind, obj)

    def walk(orig: Any, now: Any, path: str) -> None:
        if isinstance(orig, dict):
            for k, v in orig.items():
                walk(v, now[k], f"{path}.{k}")
        elif isinstance(orig, list):
            assert len(now) == len(orig), path
            for i, (a, b) in enumerate(zip(orig, now, strict=True)):
                walk(a, b, f"{path}.{i}")
        else:
            assert now == orig, path

    walk(before, obj, kind)


@pytest.mark.parametrize(("image", "tag", "policy"), [
    pytest.param("nginx", "latest", "Always", id="no-tag"),
    pytest.param("nginx:latest", "latest", "Always", id="latest"),
    pytest.param("nginx:1.27", "1.27", "IfNotPresent", id="tag"),
    pytest.param("localhost:5000/app", "latest", "Always", id="registry-port-no-tag"),
    pytest.param("localhost:5000/app:v2", "v2", "IfNotPresent", id="registry-port-tag"),
    pytest.param("nginx@sha256:" + "a" * 64, "", "IfNotPresent", id="digest"),
    pytest.param("nginx:latest@sha256:" + "b" * 64, "latest", "Always", id="tag-and-digest"),
])
def test_image_pull_policy(image: str, tag: str, policy: str) -> None:
    assert image_tag(image) == tag
    assert default_pull_policy(image) == policy


def test_unknown_kinds_are_left_alone() -> None:
    obj = {"metadata": {"name": "x"}, "spec": {}}
    apply_defaults("example.com", "v1", "Widget", obj)
    assert obj == {"metadata": {"name": "x"}, "spec": {}}
    assert not has_defaults("example.com", "v1", "Widget")
    assert has_defaults("apps", "v1", "Deployment")


def test_apps_kinds_do_not_default_labels() -> None:
    d = {"spec": {"template": template()}}
    apply_defaults("apps", "v1", "Deployment", d)
    assert "metadata" not in d
