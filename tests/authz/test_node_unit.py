"""The Node authorizer over a graph built from pod and PVC events (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.authz.attributes import Attributes
from kybernetes.apiserver.authz.node import NodeAuthorizer, NodeGraph, node_identity, pod_references

N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
Obj = dict[str, Any]


def pod(name: str, node: str | None, ns: str = "a", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node, "serviceAccountName": "sa-" + name,
                                                                  "containers": [{"name": "c"}], **spec}}


def graph() -> NodeGraph:
    g = NodeGraph()
    g.on_pod("/registry/pods/a/p1", pod("p1", "n1", volumes=[
        {"name": "s", "secret": {"secretName": "s1"}},
        {"name": "c", "configMap": {"name": "cm1"}},
        {"name": "d", "persistentVolumeClaim": {"claimName": "claim1"}},
        {"name": "proj", "projected": {"sources": [{"secret": {"name": "s-proj"}}, {"configMap": {"name": "cm-proj"}}]}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {}}},
    ], imagePullSecrets=[{"name": "pull"}], containers=[{"name": "c", "env": [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}}], "envFrom": [{"configMapRef": {"name": "cm-env"}}]}]))
    g.on_pod("/registry/pods/a/p2", pod("p2", "n2", volumes=[{"name": "s", "secret": {"secretName": "s2"}}]))
    g.on_pod("/registry/pods/a/pending", pod("pending", None, volumes=[{"name": "s", "secret": {"secretName": "s3"}}]))
    g.on_claim("/registry/persistentvolumeclaims/a/claim1",
               {"metadata": {"name": "claim1", "namespace": "a"}, "spec": {"volumeName": "pv1"}})
    g.on_claim("/registry/persistentvolumeclaims/a/claim2",
               {"metadata": {"name": "claim2", "namespace": "a"}, "spec": {"volumeName": "pv2"}})
    return g


def req(verb: str, resource: str, name: str = "", ns: str = "a", *, sub: str = "", group: str = "",
        fs: tuple[tuple[str, str, str], ...] = (), user: UserInfo = N1) -> Attributes:
    return Attributes(user, verb, True, "", ns, group, "v1", resource, sub, name, fs)


CASES = [
    pytest.param(req("get", "secrets", "s1"), True, "", id="own-pod-secret"),
    pytest.param(req("watch", "secrets", "s1"), True, "", id="watch-one-secret"),
    pytest.param(req("get", "secrets", "s-proj"), True, "", id="projected-secret"),
    pytest.param(req("get", "secrets", "s-env"), True, "", id="env-secret"),
    pytest.param(req("get", "secrets", "pull"), True, "", id="image-pull-secret"),
    pytest.param(req("get", "secrets", "s2"), False, "no relationship found between node 'n1' and this object", id="other-node-secret"),
    pytest.param(req("get", "secrets", "s3"), False, "no relationship found between node 'n1' and this object", id="unscheduled-pod-secret"),
    pytest.param(req("list", "secrets"), False, "No Object name found", id="list-all-secrets"),
    pytest.param(req("update", "secrets", "s1"), False, "can only read resources of this type", id="write-secret"),
    pytest.param(req("get", "configmaps", "cm1"), True, "", id="configmap-volume"),
    pytest.param(req("get", "configmaps", "cm-env"), True, "", id="configmap-envfrom"),
    pytest.param(req("get", "configmaps", "cm-other"), False, "no relationship found between node 'n1' and this object", id="other-cm"),
    pytest.param(req("get", "persistentvolumeclaims", "claim1"), True, "", id="pvc"),
    pytest.param(req("get", "persistentvolumeclaims", "p1-eph"), True, "", id="ephemeral-pvc"),
    pytest.param(req("list", "persistentvolumeclaims"), False, "can only get individual resources of this type", id="list-pvc"),
    pytest.param(req("patch", "persistentvolumeclaims", "claim1", sub="status"), True, "", id="pvc-status"),
    pytest.param(req("get", "persistentvolumes", "pv1", ns=""), True, "", id="pv-via-claim"),
    pytest.param(req("get", "persistentvolumes", "pv2", ns=""), False, "no relationship found between node 'n1' and this object", id="other-pv"),
    pytest.param(req("create", "serviceaccounts", "sa-p1", sub="token"), True, "", id="token-own-pod-sa"),
    pytest.param(req("create", "serviceaccounts", "sa-p2", sub="token"), False, "no relationship found between node 'n1' and this object",
                 id="token-other-sa"),
    pytest.param(req("get", "serviceaccounts", "sa-p1"), False, "can only create tokens for individual service accounts", id="get-sa"),
    pytest.param(req("get", "nodes", "n1", ns=""), True, "", id="own-node"),
    pytest.param(req("get", "nodes", "n2", ns=""), False, "node 'n1' cannot read 'n2', only its own Node object", id="other-node"),
    pytest.param(req("list", "nodes", ns=""), False, "node 'n1' cannot read all nodes, only its own Node object", id="all-nodes"),
    pytest.param(req("watch", "nodes", "n1", ns=""), True, "", id="watch-own-node-by-selector"),
    pytest.param(req("patch", "nodes", "n1", ns=""), True, "", id="patch-own-node"),
    pytest.param(req("patch", "nodes", "n2", ns=""), False, "node 'n1' cannot modify 'n2', only its own Node object", id="patch-other-node"),
    pytest.param(req("update", "nodes", "n2", ns="", sub="status"), False, "node 'n1' cannot modify 'n2', only its own Node object",
                 id="other-node-status"),
    pytest.param(req("patch", "nodes", "n1", ns="", sub="status"), True, "", id="own-node-status"),
    pytest.param(req("create", "nodes", ns=""), True, "", id="register"),
    pytest.param(req("delete", "nodes", "n1", ns=""), False, "", id="delete-own-node"),
    pytest.param(req("get", "pods", "p1"), True, "", id="own-pod"),
    pytest.param(req("get", "pods", "p2"), False, "no relationship found between node 'n1' and this object", id="other-pod"),
    pytest.param(req("list", "pods", ns="", fs=(("spec.nodeName", "=", "n1"),)), True, "", id="list-own-pods"),
    pytest.param(req("watch", "pods", ns="", fs=(("spec.nodeName", "=", "n2"),)), False,
                 "can only list/watch pods with spec.nodeName field selector", id="watch-other-nodes-pods"),
    pytest.param(req("list", "pods", ns=""), False, "can only list/watch pods with spec.nodeName field selector", id="list-all-pods"),
    pytest.param(req("patch", "pods", "p1", sub="status"), True, "", id="own-pod-status"),
    pytest.param(req("patch", "pods", "p2", sub="status"), False, "no relationship found between node 'n1' and this object",
                 id="other-pod-status"),
    pytest.param(req("create", "pods"), True, "", id="mirror-pod"),
    pytest.param(req("delete", "pods", "p1"), True, "", id="delete-own-pod"),
    pytest.param(req("delete", "pods", "p2"), False, "no relationship found between node 'n1' and this object", id="delete-other-pod"),
    pytest.param(req("update", "leases", "n1", ns="kube-node-lease", group="coordination.k8s.io"), True, "", id="own-lease"),
    pytest.param(req("update", "leases", "n2", ns="kube-node-lease", group="coordination.k8s.io"), False,
                 "can only access node lease with the same name as the requesting node", id="other-lease"),
    pytest.param(req("get", "leases", "n1", ns="default", group="coordination.k8s.io"), False,
                 'can only access leases in the "kube-node-lease" system namespace', id="lease-elsewhere"),
    pytest.param(req("list", "services", ns=""), True, "", id="static-rules-services"),
    pytest.param(req("create", "events"), True, "", id="static-rules-events"),
    pytest.param(req("get", "endpoints", "kubernetes", ns="default"), True, "", id="static-rules-endpoints"),
    pytest.param(req("list", "deployments", group="apps"), False, "", id="nothing-else"),
]


@pytest.mark.parametrize(("a", "allowed", "reason"), CASES)
def test_node_decisions(a: Attributes, allowed: bool, reason: str) -> None:
    r = NodeAuthorizer(graph()).authorize(a)
    assert (r.allowed, r.reason) == (allowed, reason)


def test_non_nodes_get_no_opinion() -> None:
    auth = NodeAuthorizer(graph())
    alice = UserInfo("alice", groups=("system:nodes",))
    assert node_identity(alice) == ("", False)
    assert node_identity(UserInfo("system:node:x")) == ("", False)   # not in system:nodes
    assert auth.authorize(req("get", "secrets", "s1", user=alice)).reason == ""
    assert NodeAuthorizer(graph()).rules_for(N1, "a").incomplete


def test_graph_follows_pod_changes() -> None:
    g = graph()
    auth = NodeAuthorizer(g)
    assert auth.authorize(req("get", "secrets", "s1")).allowed
    g.on_pod("/registry/pods/a/p1", None)                    # deleted
    assert not auth.authorize(req("get", "secrets", "s1")).allowed
    assert not auth.authorize(req("get", "pods", "p1")).allowed
    g.on_pod("/registry/pods/a/pending", pod("pending", "n1", volumes=[{"name": "s", "secret": {"secretName": "s3"}}]))
    assert auth.authorize(req("get", "secrets", "s3")).allowed   # bound later
    # two pods share a secret: it stays readable until both are gone
    g.on_pod("/registry/pods/a/q1", pod("q1", "n1", volumes=[{"name": "s", "secret": {"secretName": "shared"}}]))
    g.on_pod("/registry/pods/a/q2", pod("q2", "n1", volumes=[{"name": "s", "secret": {"secretName": "shared"}}]))
    g.on_pod("/registry/pods/a/q1", None)
    assert auth.authorize(req("get", "secrets", "shared")).allowed
    g.on_pod("/registry/pods/a/q2", None)
    assert not auth.authorize(req("get", "secrets", "shared")).allowed


def test_pod_references() -> None:
    refs = pod_references(pod("x", "n", volumes=[{"name": "v", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-s"}}}]))
    assert refs == {("serviceaccount", "a", "sa-x"), ("secret", "a", "csi-s")}
