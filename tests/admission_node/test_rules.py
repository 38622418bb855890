"""NodeRestriction's pure decisions: who is a node, which labels a kubelet owns, mirror pods,
pod deletes/status/evictions, Node writes, PVC status, leases and TokenRequests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybernetes.apiserver.admission.noderestriction import (
    changed_labels,
    forbidden_labels,
    is_kubelet_label,
    kubelet_may_set,
    lease_problem,
    mirror_pod_problem,
    node_identity,
    node_name_of,
    node_problem,
    pod_delete_problem,
    pod_eviction_problem,
    pod_status_problem,
    pvc_status_problem,
    token_request_needs_pod,
    token_request_problem,
)

Obj = dict[str, Any]
NODE_UID = "uid-n1"


def mirror(node: str = "n1", *, owner: Obj | None = None, **spec: Any) -> Obj:
    """A mirror pod as our kubelet makes it (``static.mirror_pod``), bound to ``node``."""
    ref = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": NODE_UID, "controller": True}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"static-{node}", "namespace": "default",
                         "annotations": {"kubernetes.io/config.mirror": "hash"},
                         "ownerReferences": [owner if owner is not None else ref]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec}}


def pod(node: str | None, **extra: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "pod-uid", **extra},
            "spec": {"nodeName": node} if node else {}}


# -- who ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("user", "want"), [
    ({"username": "system:node:n1", "groups": ["system:nodes", "system:authenticated"]}, ("n1", True)),
    ({"username": "system:node:n1", "groups": ["system:authenticated"]}, ("", False)),   # not in the group
    ({"username": "alice", "groups": ["system:nodes"]}, ("", False)),
    ({"username": "system:node:", "groups": ["system:nodes"]}, ("", True)),             # a node, no name
    ({"username": "system:nodes:n1", "groups": ["system:nodes"]}, ("", False)),
])
def test_node_identity(user: Obj, want: tuple[str, bool]) -> None:
    assert node_identity(user) == want
    assert node_name_of(user) == (want[0] if want[1] else None)


# -- labels ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "ok"), [
    # upstream's kubelet labels
    ("kubernetes.io/hostname", True), ("kubernetes.io/arch", True), ("kubernetes.io/os", True),
    ("beta.kubernetes.io/arch", True), ("beta.kubernetes.io/os", True), ("beta.kubernetes.io/instance-type", True),
    ("node.kubernetes.io/instance-type", True), ("topology.kubernetes.io/zone", True),
    ("topology.kubernetes.io/region", True), ("failure-domain.beta.kubernetes.io/zone", True),
    ("failure-domain.beta.kubernetes.io/region", True),
    # the kubelet's own label namespaces, with sub-domains
    ("kubelet.kubernetes.io/anything", True), ("node.kubernetes.io/exclude-from-external-load-balancers", True),
    ("foo.node.kubernetes.io/x", True), ("foo.kubelet.kubernetes.io/x", True),
    # outside kubernetes.io / k8s.io: free
    ("example.com/team", True), ("plain", True), ("kybernetes.io/fake-node", True), ("notkubernetes.io/x", True),
    # node-restriction labels, and other kubernetes.io / k8s.io labels
    ("node-restriction.kubernetes.io/pool", False), ("a.node-restriction.kubernetes.io/pool", False),
    ("node-role.kubernetes.io/control-plane", False), ("kubernetes.io/role", False),
    ("beta.kubernetes.io/fluentd-ds-ready", False), ("topology.kubernetes.io/rack", False),
    ("k8s.io/x", False), ("foo.k8s.io/x", False),
])
def test_which_labels_a_kubelet_may_set(key: str, ok: bool) -> None:
    assert kubelet_may_set(key) is ok


def test_kubelet_label_set_and_changes() -> None:
    assert is_kubelet_label("kubernetes.io/hostname") and not is_kubelet_label("kubernetes.io/role")
    old = {"a": "1", "b": "2", "node-restriction.kubernetes.io/pool": "gold"}
    new = {"a": "1", "b": "3", "c": "4"}
    assert changed_labels(old, new) == ["b", "c", "node-restriction.kubernetes.io/pool"]
    assert changed_labels(None, None) == [] and changed_labels({"a": ""}, {}) == ["a"]
    assert forbidden_labels(old, new) == ["node-restriction.kubernetes.io/pool"]     # removing counts
    assert forbidden_labels(old, {**old, "x": "y"}) == []                            # kept as is: fine


# -- mirror pods ----------------------------------------------------------------------------
def test_a_clean_mirror_pod_bound_to_itself_and_owned_by_its_node() -> None:
    assert mirror_pod_problem("n1", mirror()) is None
    assert mirror_pod_problem("n1", mirror(), node_uid=NODE_UID) is None
    # downward-API projections and plain volumes reference nothing
    ok = mirror(volumes=[{"name": "d", "projected": {"sources": [{"downwardAPI": {"items": []}}]}},
                         {"name": "h", "hostPath": {"path": "/tmp"}}, {"name": "e", "emptyDir": {}}])
    assert mirror_pod_problem("n1", ok, node_uid=NODE_UID) is None


def test_mirror_pod_annotation_binding_and_owner_rules() -> None:
    plain = mirror()
    plain["metadata"]["annotations"] = {}
    assert mirror_pod_problem("n1", plain) == (
        'pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods')
    assert mirror_pod_problem("n1", mirror(node="n2")) == 'node "n1" can only create pods with spec.nodeName set to itself'
    unbound = mirror()
    del unbound["spec"]["nodeName"]
    assert "spec.nodeName set to itself" in (mirror_pod_problem("n1", unbound) or "")

    owner_msg = 'node "n1" can only create pods with an owner reference set to itself'
    none = mirror()
    none["metadata"]["ownerReferences"] = []
    assert mirror_pod_problem("n1", none) == owner_msg
    two = mirror()
    two["metadata"]["ownerReferences"] *= 2
    assert mirror_pod_problem("n1", two) == 'node "n1" can only create pods with a single owner reference set to itself'
    good = mirror()["metadata"]["ownerReferences"][0]
    for bad in ({**good, "name": "n2"}, {**good, "kind": "Pod"}, {**good, "apiVersion": "apps/v1"}):
        assert mirror_pod_problem("n1", mirror(owner=bad)) == owner_msg, bad
    for ctl in (None, False):
        ref = {**good, "controller": ctl} if ctl is not None else {k: v for k, v in good.items() if k != "controller"}
        assert mirror_pod_problem("n1", mirror(owner=ref)) == \
            'node "n1" can only create pods with a controller owner reference set to itself'
    assert mirror_pod_problem("n1", mirror(owner={**good, "blockOwnerDeletion": True})) == \
        'node "n1" must not set blockOwnerDeletion on an owner reference'
    assert mirror_pod_problem("n1", mirror(owner={**good, "blockOwnerDeletion": False})) is None
    assert mirror_pod_problem("n1", mirror(), node_uid="other") == "node n1 UID mismatch: expected uid-n1 got other"


@pytest.mark.parametrize(("extra", "word"), [
    ({"serviceAccountName": "default"}, "a service account"),
    ({"serviceAccount": "default"}, "a service account"),
    ({"imagePullSecrets": [{"name": "pull"}]}, "secrets"),
    ({"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}, "secrets"),
    ({"volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "s"}}]}}]}, "secrets"),
    ({"volumes": [{"name": "v", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "s"}}}]}, "secrets"),
    ({"volumes": [{"name": "v", "configMap": {"name": "c"}}]}, "configmaps"),
    ({"volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "c"}}]}}]}, "configmaps"),
    ({"volumes": [{"name": "v", "projected": {"sources": [{"clusterTrustBundle": {"name": "b", "path": "b"}}]}}]},
     "clustertrustbundles"),
    ({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]}, "persistentvolumeclaims"),
    ({"volumes": [{"name": "v", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]}, "persistentvolumeclaims"),
    ({"containers": [{"name": "c", "image": "x", "env": [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}, "secrets"),
    ({"initContainers": [{"name": "i", "image": "x", "envFrom": [{"configMapRef": {"name": "c"}}]}]}, "configmaps"),
    ({"ephemeralContainers": [{"name": "e", "image": "x", "envFrom": [{"secretRef": {"name": "s"}}]}]}, "secrets"),
])
def test_a_mirror_pod_references_no_other_object(extra: Obj, word: str) -> None:
    assert mirror_pod_problem("n1", mirror(**extra), node_uid=NODE_UID) == f'node "n1" can not create pods that reference {word}'


def test_mirror_pod_checks_come_in_upstreams_order() -> None:
    both = mirror(serviceAccountName="sa", volumes=[{"name": "v", "secret": {"secretName": "s"}}])
    assert "a service account" in (mirror_pod_problem("n1", both) or "")
    both["metadata"]["ownerReferences"] = []
    assert "owner reference" in (mirror_pod_problem("n1", both) or "")   # owner before references


# -- pods -----------------------------------------------------------------------------------
def test_pod_delete_status_and_eviction_only_of_its_own_pods() -> None:
    assert pod_delete_problem("n1", pod("n1")) is None
    assert pod_delete_problem("n1", pod("n2")) == 'node "n1" can only delete pods with spec.nodeName set to itself'
    assert pod_delete_problem("n1", pod(None)) is not None
    assert pod_eviction_problem("n1", pod("n1")) is None
    assert pod_eviction_problem("n1", pod("n2")) == "node n1 can only evict pods with spec.nodeName set to itself"

    old = pod("n1", labels={"app": "a"})
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    assert pod_status_problem("n1", old, new) is None
    assert pod_status_problem("n1", pod("n2"), pod("n2")) == \
        'node "n1" can only update pod status for pods with spec.nodeName set to itself'
    relabeled = copy.deepcopy(new)
    relabeled["metadata"]["labels"] = {"app": "b"}
    assert pod_status_problem("n1", old, relabeled) == 'node "n1" cannot update labels through pod status'
    claims = copy.deepcopy(new)
    claims["status"]["resourceClaimStatuses"] = [{"name": "gpu", "resourceClaimName": "p-gpu"}]
    assert pod_status_problem("n1", old, claims) == 'node "n1" cannot update resource claim statues'


# -- nodes ----------------------------------------------------------------------------------
def node(name: str = "n1", labels: Obj | None = None, taints: list[Obj] | None = None, **spec: Any) -> Obj:
    s = dict(spec)
    if taints is not None:
        s["taints"] = taints
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": s}


def test_node_create_rules() -> None:
    ok = node(labels={"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "team": "x"},
              taints=[{"key": "k", "effect": "NoSchedule"}])     # registering with taints is fine
    assert node_problem("n1", "CREATE", "n1", None, ok) is None
    assert node_problem("n1", "CREATE", "n9", None, node("n9")) == 'node "n1" is not allowed to modify node "n9"'
    bad = node(labels={"node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/pool": "a", "x": "y"})
    assert node_problem("n1", "CREATE", "n1", None, bad) == (
        'node "n1" is not allowed to set the following labels: '
        'node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane')
    assert node_problem("n1", "CREATE", "n1", None, node(configSource={"configMap": {}})) == \
        'node "n1" is not allowed to create pods with a non-nil configSource'


def test_node_update_rules() -> None:
    taint = {"key": "k", "effect": "NoSchedule"}
    old = node(labels={"node-restriction.kubernetes.io/pool": "a", "kubernetes.io/hostname": "n1"}, taints=[taint])
    same = node(labels={**old["metadata"]["labels"], "x": "1", "kubernetes.io/hostname": "h"}, taints=[taint])
    assert node_problem("n1", "UPDATE", "n1", old, same) is None, "own labels may change; restricted ones kept"
    assert node_problem("n1", "UPDATE", "n2", old, same) == 'node "n1" is not allowed to modify node "n2"'
    for taints in ([], [taint, {"key": "other", "effect": "NoExecute"}], [{**taint, "effect": "NoExecute"}]):
        assert node_problem("n1", "UPDATE", "n1", old, {**same, "spec": {"taints": taints}}) == \
            'node "n1" is not allowed to modify taints', taints
    assert node_problem("n1", "UPDATE", "n1", node(), node(taints=[])) is None     # missing == empty
    dropped = node(labels={"kubernetes.io/hostname": "n1", "kubernetes.io/role": "x"}, taints=[taint])
    assert node_problem("n1", "UPDATE", "n1", old, dropped) == \
        "is not allowed to modify labels: kubernetes.io/role, node-restriction.kubernetes.io/pool"
    assert node_problem("n1", "UPDATE", "n1", node(), node(configSource={"configMap": {"name": "c"}})) == \
        'node "n1" is not allowed to update configSource to a new non-nil configSource'
    kept = node(configSource={"configMap": {"name": "c"}})
    assert node_problem("n1", "UPDATE", "n1", kept, copy.deepcopy(kept)) is None
    assert node_problem("n1", "DELETE", "n1", old, None) is None
    assert node_problem("n1", "DELETE", "n2", None, None) == 'node "n1" is not allowed to modify node "n2"'


# -- claims, leases, tokens -----------------------------------------------------------------
def test_pvc_status_rules() -> None:
    old = {"metadata": {"name": "c", "resourceVersion": "5", "labels": {"a": "b"}},
           "spec": {"resources": {"requests": {"storage": "1Gi"}}},
           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "6"
    new["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    new["status"].update(capacity={"storage": "2Gi"}, conditions=[{"type": "Resizing", "status": "True"}],
                         allocatedResources={"storage": "2Gi"})
    assert pvc_status_problem("n1", old, new) is None
    lost = copy.deepcopy(new)
    lost["status"]["phase"] = "Lost"
    relabeled = copy.deepcopy(new)
    relabeled["metadata"]["labels"] = {}
    assert pvc_status_problem("n1", old, lost) == ('node "n1" is not allowed to update fields other than '
                                                  "status.quantity and status.conditions: status.phase")
    assert (pvc_status_problem("n1", old, relabeled) or "").endswith(": metadata.labels")


def test_lease_rules() -> None:
    assert lease_problem("n1", "kube-node-lease", "n1") is None
    assert lease_problem("n1", "kube-node-lease", "n2") == "can only access node lease with the same name as the requesting node"
    assert lease_problem("n1", "default", "n1") == 'can only access leases in the "kube-node-lease" system namespace'


def test_token_request_rules() -> None:
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "pod-uid"}
    assert token_request_needs_pod(ref) and not token_request_needs_pod({**ref, "uid": ""})
    assert token_request_problem("n1", ref, pod("n1")) is None
    not_bound = "node requested token not bound to a pod"
    for bad in (None, {}, {**ref, "kind": "Secret"}, {**ref, "apiVersion": "v2"}, {**ref, "name": ""}):
        assert token_request_problem("n1", bad, None) == not_bound, bad
    assert token_request_problem("n1", {**ref, "uid": ""}, None) == "node requested token with a pod binding without a uid"
    assert token_request_problem("n1", ref, pod("n2")) == "node requested token bound to a pod scheduled on a different node"
    assert token_request_problem("n1", {**ref, "uid": "old"}, pod("n1")) == (
        "the UID in the bound object reference (old) does not match the UID in record. "
        "The object might have been deleted and then recreated")
    assert token_request_problem("", ref, pod("")) is not None   # a node with no name gets nothing
