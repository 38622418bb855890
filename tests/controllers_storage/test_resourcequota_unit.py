"""Quota usage computation (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from kybernetes.client.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    SECRETS,
    SERVICES,
)
from kybernetes.controllers.resourcequota import (
    compute_status,
    compute_used,
    pod_amounts,
    pod_counts,
    pod_matches_scope,
    pvc_usage,
    resource_for,
    service_usage,
    usage_changed,
)

from .builders import container, pod, pvc, quota

NOW = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)


def used(q, objects):  # type: ignore[no-untyped-def]
    return {k: str(v) for k, v in compute_used(q, objects, NOW).items()}


@pytest.mark.parametrize("name, expected", [
    pytest.param("pods", PODS, id="pods"),
    pytest.param("count/pods", PODS, id="count-pods"),
    pytest.param("requests.cpu", PODS, id="requests-cpu"),
    pytest.param("memory", PODS, id="bare-memory"),
    pytest.param("limits.memory", PODS, id="limits"),
    pytest.param("requests.nvidia.com/gpu", PODS, id="extended"),
    pytest.param("hugepages-2Mi", PODS, id="hugepages"),
    pytest.param("requests.storage", PERSISTENTVOLUMECLAIMS, id="storage"),
    pytest.param("gold.storageclass.storage.k8s.io/requests.storage", PERSISTENTVOLUMECLAIMS, id="class-storage"),
    pytest.param("services.nodeports", SERVICES, id="nodeports"),
    pytest.param("configmaps", CONFIGMAPS, id="configmaps"),
    pytest.param("count/secrets", SECRETS, id="count-secrets"),
    pytest.param("count/deployments.apps", DEPLOYMENTS, id="count-deployments"),
    pytest.param("count/nodes", None, id="cluster-scoped"),
    pytest.param("count/widgets.example.com", None, id="unknown"),
    pytest.param("foo", None, id="untracked"),
])
def test_resource_for(name, expected) -> None:  # type: ignore[no-untyped-def]
    assert resource_for(name) == expected


def test_pod_requests_sum_containers_max_init_plus_overhead() -> None:
    p = pod("p", containers=[container("a", requests={"cpu": "100m", "memory": "64Mi"}),
                             container("b", requests={"cpu": "200m"}, limits={"memory": "128Mi"})],
            init=[container("i", requests={"cpu": "500m"})], overhead={"cpu": "10m"})
    req = {k: str(v) for k, v in pod_amounts(p, "requests").items()}
    # memory: 64Mi + limit-as-request 128Mi; cpu: max(300m, init 500m) + overhead 10m
    assert req == {"cpu": "510m", "memory": "192Mi"}
    assert {k: str(v) for k, v in pod_amounts(p, "limits").items()} == {"memory": "128Mi"}


def test_sidecars_add_to_the_sum() -> None:
    p = pod("p", containers=[container("a", requests={"cpu": "1"})],
            init=[container("side", requests={"cpu": "250m"}, restart="Always"),
                  container("init", requests={"cpu": "1"})])
    assert str(pod_amounts(p, "requests")["cpu"]) == "1250m"


@pytest.mark.parametrize("p, counts", [
    pytest.param(pod("a", phase="Running"), True, id="running"),
    pytest.param(pod("a", phase="Succeeded"), False, id="succeeded"),
    pytest.param(pod("a", phase="Failed"), False, id="failed"),
    pytest.param(pod("a", deleting="2024-05-01T10:00:10Z", grace=30), True, id="deleting-within-grace"),
    pytest.param(pod("a", deleting="2024-05-01T09:59:00Z", grace=30), False, id="deleting-past-grace"),
])
def test_pod_counts(p, counts) -> None:  # type: ignore[no-untyped-def]
    assert pod_counts(p, NOW) is counts


def test_compute_used_pods_and_compute() -> None:
    q = quota(hard={"pods": "10", "requests.cpu": "4", "cpu": "4", "requests.memory": "1Gi", "limits.memory": "2Gi",
                    "limits.cpu": "2"})
    pods = [pod("a", containers=[container(requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "512Mi"})]),
            pod("b", containers=[container(requests={"cpu": "750m", "memory": "256Mi"})]),
            pod("done", phase="Succeeded", containers=[container(requests={"cpu": "9"})])]
    assert used(q, {PODS: pods}) == {"pods": "2", "requests.cpu": "1", "cpu": "1", "requests.memory": "512Mi",
                                     "limits.memory": "512Mi", "limits.cpu": "0"}


def test_object_counts_and_zero() -> None:
    q = quota(hard={"configmaps": "5", "count/configmaps": "5", "secrets": "3", "count/deployments.apps": "2"})
    cms = [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]
    assert used(q, {CONFIGMAPS: cms}) == {"configmaps": "2", "count/configmaps": "2", "secrets": "0",
                                          "count/deployments.apps": "0"}


def test_services() -> None:
    svc_np = {"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}
    svc_lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "allocateLoadBalancerNodePorts": False}}
    assert {k: str(v) for k, v in service_usage(svc_np).items()} == {
        "services": "1", "count/services": "1", "services.nodeports": "2"}
    assert {k: str(v) for k, v in service_usage(svc_lb).items()} == {
        "services": "1", "count/services": "1", "services.loadbalancers": "1", "services.nodeports": "0"}
    q = quota(hard={"services": "9", "services.nodeports": "9", "services.loadbalancers": "9"})
    assert used(q, {SERVICES: [svc_np, svc_lb, {"spec": {}}]}) == {
        "services": "3", "services.nodeports": "2", "services.loadbalancers": "1"}


def test_pvcs_by_class() -> None:
    claims = [pvc("a", "1Gi", klass="gold"), pvc("b", "500Mi", klass="bronze"), pvc("c", "2Gi", klass=None)]
    assert {k: str(v) for k, v in pvc_usage(claims[0]).items()} == {
        "persistentvolumeclaims": "1", "count/persistentvolumeclaims": "1",
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1", "requests.storage": "1Gi",
        "gold.storageclass.storage.k8s.io/requests.storage": "1Gi"}
    q = quota(hard={"persistentvolumeclaims": "10", "requests.storage": "10Gi",
                    "gold.storageclass.storage.k8s.io/requests.storage": "5Gi"})
    assert used(q, {PERSISTENTVOLUMECLAIMS: claims}) == {
        "persistentvolumeclaims": "3", "requests.storage": "3572Mi",
        "gold.storageclass.storage.k8s.io/requests.storage": "1Gi"}


@pytest.mark.parametrize("selector, p, matches", [
    pytest.param({"scopeName": "Terminating"}, pod("a", deadline=60), True, id="terminating"),
    pytest.param({"scopeName": "NotTerminating"}, pod("a", deadline=60), False, id="not-terminating"),
    pytest.param({"scopeName": "BestEffort"}, pod("a"), True, id="best-effort"),
    pytest.param({"scopeName": "BestEffort"}, pod("a", containers=[container(requests={"cpu": "1"})]), False,
                 id="burstable-not-best-effort"),
    pytest.param({"scopeName": "NotBestEffort"}, pod("a", containers=[container(limits={"memory": "1Gi"})]), True,
                 id="not-best-effort"),
    pytest.param({"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}, pod("a", priority_class="high"),
                 True, id="priority-in"),
    pytest.param({"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}, pod("a"), False,
                 id="priority-in-none"),
    pytest.param({"scopeName": "PriorityClass", "operator": "NotIn", "values": ["high"]}, pod("a"), True,
                 id="priority-notin-none"),
    pytest.param({"scopeName": "PriorityClass", "operator": "Exists"}, pod("a", priority_class="low"), True,
                 id="priority-exists"),
    pytest.param({"scopeName": "PriorityClass", "operator": "DoesNotExist"}, pod("a", priority_class="low"), False,
                 id="priority-does-not-exist"),
])
def test_scopes(selector, p, matches) -> None:  # type: ignore[no-untyped-def]
    assert pod_matches_scope(p, selector) is matches


def test_scoped_quota_counts_only_matching_pods_and_no_other_kinds() -> None:
    q = quota(hard={"pods": "5", "configmaps": "5"}, scopes=["BestEffort"])
    pods = [pod("be"), pod("burst", containers=[container(requests={"cpu": "1"})])]
    assert used(q, {PODS: pods, CONFIGMAPS: [{"metadata": {"name": "x"}}]}) == {"pods": "1", "configmaps": "0"}
    q2 = quota(hard={"pods": "5"}, scope_selector=[{"scopeName": "PriorityClass", "operator": "In",
                                                     "values": ["high"]}])
    assert used(q2, {PODS: [pod("a", priority_class="high"), pod("b")]}) == {"pods": "1"}


def test_compute_status_canonical_hard_and_untracked_names() -> None:
    q = quota(hard={"requests.cpu": "1000m", "foo": "3", "pods": "2"})
    q["status"] = {"used": {"foo": "1", "pods": "9"}}
    dying = pod("d", deleting="2024-05-01T10:00:20Z", grace=0)
    status, wake = compute_status(q, {PODS: [pod("a"), dying]}, NOW)
    assert status == {"hard": {"requests.cpu": "1", "foo": "3", "pods": "2"},
                      "used": {"requests.cpu": "0", "pods": "2", "foo": "1"}}
    assert wake == pytest.approx(20.0)


def test_usage_changed() -> None:
    a = pod("a", phase="Running")
    assert not usage_changed(PODS, a, {**a, "status": {"phase": "Running", "podIP": "1.2.3.4"}})
    assert usage_changed(PODS, a, {**a, "status": {"phase": "Succeeded"}})
    assert usage_changed(PODS, a, {**a, "metadata": {**a["metadata"], "deletionTimestamp": "x"}})
    assert not usage_changed(CONFIGMAPS, {"data": {"a": "1"}}, {"data": {"a": "2"}})
