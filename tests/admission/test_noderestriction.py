"""NodeRestriction: the pure rules, and a kubelet certificate against a real RBAC,Node server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kybernetes.apiserver.admission.noderestriction import (
    kubelet_may_set,
    mirror_pod_problem,
    node_name_of,
    node_update_problem,
    token_request_problem,
)
from tests.authz.conftest import SecureServer, secure_server
from tests.harness import wait_for

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"


def mirror(name: str = "static", node: str = "n1", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"kubernetes.io/config.mirror": "hash"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec}}


def test_node_name_of() -> None:
    assert node_name_of({"username": "system:node:n1", "groups": ["system:nodes"]}) == "n1"
    assert node_name_of({"username": "system:node:n1", "groups": []}) is None
    assert node_name_of({"username": "alice", "groups": ["system:nodes"]}) is None


@pytest.mark.parametrize(("key", "ok"), [
    ("kubernetes.io/hostname", True), ("topology.kubernetes.io/zone", True), ("node.kubernetes.io/instance-type", True),
    ("kubelet.kubernetes.io/anything", True), ("foo.node.kubernetes.io/x", True), ("example.com/team", True),
    ("plain", True), ("kybernetes.io/fake-node", True),
    ("node-restriction.kubernetes.io/pool", False), ("node-role.kubernetes.io/control-plane", False),
    ("kubernetes.io/role", False), ("k8s.io/x", False), ("foo.k8s.io/x", False),
])
def test_kubelet_labels(key: str, ok: bool) -> None:
    assert kubelet_may_set(key) is ok


def test_mirror_pod_rules() -> None:
    assert mirror_pod_problem("n1", mirror()) is None
    plain = mirror()
    plain["metadata"]["annotations"] = {}
    assert "can only create mirror pods" in (mirror_pod_problem("n1", plain) or "")
    assert "spec.nodeName set to itself" in (mirror_pod_problem("n1", mirror(node="n2")) or "")
    assert "service account" in (mirror_pod_problem("n1", mirror(serviceAccountName="default")) or "")
    for vol, word in (({"secret": {"secretName": "s"}}, "secrets"), ({"configMap": {"name": "c"}}, "configmaps"),
                      ({"persistentVolumeClaim": {"claimName": "c"}}, "persistentvolumeclaims"),
                      ({"projected": {"sources": []}}, "projected")):
        assert word in (mirror_pod_problem("n1", mirror(volumes=[{"name": "v", **vol}])) or ""), vol
    env = mirror(containers=[{"name": "c", "image": "x", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}])
    assert "secrets" in (mirror_pod_problem("n1", env) or "")
    owned = mirror()
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u"}]
    assert mirror_pod_problem("n1", owned) is None
    owned["metadata"]["ownerReferences"][0]["name"] = "n2"
    assert "owner reference set to itself" in (mirror_pod_problem("n1", owned) or "")


def test_node_update_rules() -> None:
    old = {"metadata": {"name": "n1", "labels": {"node-restriction.kubernetes.io/pool": "a"}},
           "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    same = {"metadata": {"name": "n1", "labels": {"node-restriction.kubernetes.io/pool": "a", "x": "1"}},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    assert node_update_problem("n1", old, same) is None, "other labels may change; restricted ones kept"
    assert node_update_problem("n1", old, {**same, "spec": {}}) == "node is not allowed to modify taints"
    dropped = {**same, "metadata": {"name": "n1", "labels": {}}}
    assert "node-restriction.kubernetes.io/pool" in (node_update_problem("n1", old, dropped) or "")
    assert "not allowed to modify node" in (node_update_problem("n1", None, {"metadata": {"name": "n2"}}) or "")
    assert token_request_problem("n1", "Pod", "n1") is None
    assert token_request_problem("n1", "Pod", "n2") and token_request_problem("n1", None, None)


@pytest.fixture
async def secure(tmp_path: Any) -> AsyncIterator[SecureServer]:
    async with secure_server(tmp_path) as s:
        yield s


@pytest.mark.integration
async def test_a_kubelet_certificate_is_held_to_its_own_objects(secure: SecureServer) -> None:
    admin = await secure.admin()
    for n in ("n1", "n2"):
        assert (await secure.request(admin, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                                      "metadata": {"name": n}}))[0] == 201
    for ns_obj in ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},):
        await secure.request(admin, "POST", "/api/v1/namespaces", ns_obj)
    assert (await secure.request(admin, "POST", "/api/v1/namespaces/a/serviceaccounts",
                                 {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}))[0] in (201, 409)
    for name, node in (("p1", "n1"), ("p2", "n2")):
        st, doc = await secure.request(admin, "POST", "/api/v1/namespaces/a/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
        assert st == 201, doc
    graph = secure.server.authz.graph
    await wait_for(lambda: graph.pod_bound("n1", "a", "p1"), timeout=3, what="graph")
    n1 = await secure.identity("system:node:n1", ("system:nodes",))

    # pods: mirror pods only, bound to itself, without secrets
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/pods", {**mirror("plain"), "metadata": {"name": "plain"}})
    assert st == 403 and doc["message"] == ('pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" '
                                            'annotation, node "n1" can only create mirror pods')
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/pods",
                                   mirror("withsecret", volumes=[{"name": "v", "secret": {"secretName": "s"}}]))
    assert st == 403 and "a mirror pod may not reference secrets" in doc["message"]  # ServiceAccount admission first
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/pods",
                                   mirror("withcm", volumes=[{"name": "v", "configMap": {"name": "c"}}]))
    assert st == 403 and 'node "n1" can not create pods that reference configmaps' in doc["message"]
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/pods", mirror("elsewhere", node="n2"))
    assert st == 403 and "spec.nodeName set to itself" in doc["message"]
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/pods", mirror("static-n1"))
    assert st == 201, doc
    assert (await secure.request(n1, "DELETE", "/api/v1/namespaces/a/pods/p2"))[0] == 403
    assert (await secure.request(n1, "DELETE", "/api/v1/namespaces/a/pods/static-n1"))[0] == 200

    # its Node: labels it owns yes, restricted ones and taints no; never another's Node
    ok = await secure.request(n1, "PATCH", "/api/v1/nodes/n1",
                              {"metadata": {"labels": {"kubernetes.io/hostname": "n1", "team": "x"}}}, content_type=MERGE)
    assert ok[0] == 200, ok
    st, doc = await secure.request(n1, "PATCH", "/api/v1/nodes/n1",
                                   {"metadata": {"labels": {"node-restriction.kubernetes.io/pool": "gold"}}}, content_type=MERGE)
    assert st == 403 and "node-restriction.kubernetes.io/pool" in doc["message"]
    st, doc = await secure.request(n1, "PATCH", "/api/v1/nodes/n1",
                                   {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}}, content_type=MERGE)
    assert st == 403 and "is not allowed to set the following labels: node-role.kubernetes.io/control-plane" in doc["message"]
    st, doc = await secure.request(n1, "PATCH", "/api/v1/nodes/n1",
                                   {"spec": {"taints": [{"key": "mine", "effect": "NoSchedule"}]}}, content_type=MERGE)
    assert st == 403 and "node is not allowed to modify taints" in doc["message"]
    st, doc = await secure.request(n1, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n9"}})
    assert st == 403 and 'node "n1" is not allowed to modify node "n9"' in doc["message"]
    # admins still may
    assert (await secure.request(admin, "PATCH", "/api/v1/nodes/n1", {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
                                 content_type=MERGE))[0] == 200

    # leases: only its own name
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n2"}, "spec": {}}
    st, doc = await secure.request(n1, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
    assert st == 403 and "same name as the requesting node" in doc["message"]

    # tokens: only bound to its own pods
    tr = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
          "spec": {"audiences": [], "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p1"}}}
    await wait_for(lambda: graph.references("n1", "serviceaccount", "a", "default"), timeout=3, what="graph: sa")
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/serviceaccounts/default/token", tr)
    assert st == 201, doc
    unbound = {**tr, "spec": {"audiences": []}}
    st, doc = await secure.request(n1, "POST", "/api/v1/namespaces/a/serviceaccounts/default/token", unbound)
    assert st == 403 and "bound object reference to a pod" in doc["message"]
