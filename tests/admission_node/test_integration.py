"""NodeRestriction against a real TLS API server (RBAC,Node authorization) on loopback, with
kubelet client certificates (``CN=system:node:<name>``, ``O=system:nodes``).

Two layers refuse a kubelet: the Node authorizer (from the URL and its pod graph) and this
admission plugin (from the objects). Where the authorizer already says no, the tests check the
403; then an over-generous ClusterRoleBinding lets the node past the authorizer, and the
plugin's own refusals (upstream's wording) show.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kybernetes.apiserver.admission import chain as ch
from kybernetes.apiserver.admission.noderestriction import NodeRestriction
from kybernetes.api import errors
from tests.authz.conftest import Identity, SecureServer, secure_server
from tests.harness import wait_for

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"
PODS = "/api/v1/namespaces/a/pods"


@pytest.fixture
async def secure(tmp_path: Any) -> AsyncIterator[SecureServer]:
    async with secure_server(tmp_path) as s:
        yield s


async def ok(secure: SecureServer, who: Identity, method: str, path: str, body: Any = None, *,
             content_type: str = "application/json", want: tuple[int, ...] = (200, 201)) -> Obj:
    st, doc = await secure.request(who, method, path, body, content_type=content_type)
    assert st in want, (method, path, st, doc)
    return doc  # type: ignore[no-any-return]


async def refused(secure: SecureServer, who: Identity, method: str, path: str, body: Any = None, *,
                  content_type: str = "application/json") -> str:
    st, doc = await secure.request(who, method, path, body, content_type=content_type)
    assert st == 403 and doc["reason"] == "Forbidden", (method, path, st, doc)
    return str(doc["message"])


def mirror(name: str, node: str, node_uid: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"kubernetes.io/config.mirror": "hash"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid,
                                              "controller": True}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec}}


async def cluster(secure: SecureServer) -> tuple[Identity, Identity, dict[str, str]]:
    """Nodes n1, n2; namespace ``a`` with SA ``default``, claim ``c1``; pod p1 (on n1, using c1)
    and p2 (on n2). Returns (admin, n1's identity, node UIDs)."""
    admin = await secure.admin()
    uids = {}
    for n in ("n1", "n2"):
        doc = await ok(secure, admin, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                                "metadata": {"name": n}})
        uids[n] = doc["metadata"]["uid"]
    await ok(secure, admin, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    await ok(secure, admin, "POST", "/api/v1/namespaces/a/serviceaccounts",
             {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}, want=(201, 409))
    await ok(secure, admin, "POST", "/api/v1/namespaces/a/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    for name, node, extra in (("p1", "n1", {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c1"}}]}),
                              ("p2", "n2", {})):
        await ok(secure, admin, "POST", PODS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **extra}})
    graph = secure.server.authz.graph
    await wait_for(lambda: graph.pod_bound("n1", "a", "p1") and graph.pod_bound("n2", "a", "p2")
                   and graph.references("n1", "pvc", "a", "c1"), timeout=5, what="node graph")
    return admin, await secure.identity("system:node:n1", ("system:nodes",)), uids


async def test_pods(secure: SecureServer) -> None:
    admin, n1, uids = await cluster(secure)

    # creates: mirror pods only, bound to itself, owned by its Node, referencing nothing
    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
             "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}
    assert await refused(secure, n1, "POST", PODS, plain) == (
        'pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, '
        'node "n1" can only create mirror pods')
    # a secret volume: ServiceAccount admission (earlier in the chain, as upstream) says it first
    assert await refused(secure, n1, "POST", PODS, mirror("s", "n1", uids["n1"], volumes=[
        {"name": "v", "secret": {"secretName": "s"}}])) == 'pods "s" is forbidden: a mirror pod may not reference secrets'
    assert await refused(secure, n1, "POST", PODS, mirror("cm", "n1", uids["n1"], volumes=[
        {"name": "v", "configMap": {"name": "c"}}])) == \
        'pods "cm" is forbidden: node "n1" can not create pods that reference configmaps'
    assert await refused(secure, n1, "POST", PODS, mirror("claim", "n1", uids["n1"], volumes=[
        {"name": "v", "persistentVolumeClaim": {"claimName": "c1"}}])) == \
        'pods "claim" is forbidden: node "n1" can not create pods that reference persistentvolumeclaims'
    assert await refused(secure, n1, "POST", PODS, mirror("elsewhere", "n2", uids["n2"])) == \
        'pods "elsewhere" is forbidden: node "n1" can only create pods with spec.nodeName set to itself'
    unowned = mirror("unowned", "n1", uids["n1"])
    del unowned["metadata"]["ownerReferences"]
    assert await refused(secure, n1, "POST", PODS, unowned) == \
        'pods "unowned" is forbidden: node "n1" can only create pods with an owner reference set to itself'
    assert await refused(secure, n1, "POST", PODS, mirror("stale", "n1", "not-the-uid")) == \
        f'pods "stale" is forbidden: node n1 UID mismatch: expected not-the-uid got {uids["n1"]}'
    created = await ok(secure, n1, "POST", PODS, mirror("static-n1", "n1", uids["n1"]))
    assert created["metadata"]["ownerReferences"][0]["uid"] == uids["n1"]
    await wait_for(lambda: secure.server.authz.graph.pod_bound("n1", "a", "static-n1"), timeout=5, what="graph")
    await ok(secure, n1, "DELETE", f"{PODS}/static-n1")

    # status of its own pods (not their labels), deletes and evictions of its own pods
    doc = await ok(secure, n1, "PATCH", f"{PODS}/p1/status", {"status": {"message": "from n1"}}, content_type=MERGE)
    assert doc["status"]["message"] == "from n1"
    assert "cannot patch resource" in await refused(secure, n1, "PATCH", f"{PODS}/p2/status",
                                                    {"status": {"message": "x"}}, content_type=MERGE)
    assert "cannot delete resource" in await refused(secure, n1, "DELETE", f"{PODS}/p2")
    p1 = await ok(secure, admin, "GET", f"{PODS}/p1")
    relabel = {**p1, "metadata": {**p1["metadata"], "labels": {"app": "stolen"}}}
    assert await refused(secure, n1, "PUT", f"{PODS}/p1/status", relabel) == \
        'pods "p1" is forbidden: node "n1" cannot update labels through pod status'
    await ok(secure, n1, "POST", f"{PODS}/p1/eviction",
             {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p1"},
              "deleteOptions": {"gracePeriodSeconds": 0}})

    # an RBAC binding that gives the node more does not get it past admission
    await grant_everything_on_pods_and_nodes(secure, admin)
    delete_p2 = 'pods "p2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'
    msg = await until_admission(secure, n1, "DELETE", f"{PODS}/p2", expect=delete_p2)
    assert msg == delete_p2
    assert await refused(secure, n1, "PATCH", f"{PODS}/p2/status", {"status": {"message": "x"}}, content_type=MERGE) == \
        'pods "p2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself'
    assert await refused(secure, n1, "PATCH", f"{PODS}/p2", {"metadata": {"labels": {"x": "y"}}}, content_type=MERGE) == \
        'pods "p2" is forbidden: unexpected operation "UPDATE", node "n1" can only create and delete mirror pods'
    # eviction: the eviction handler writes the pod's status as the node first, so that refuses
    assert "can only update pod status for pods with spec.nodeName set to itself" in await refused(
        secure, n1, "POST", f"{PODS}/p2/eviction", {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p2"}})
    await ok(secure, admin, "GET", f"{PODS}/p2")   # still there


async def grant_everything_on_pods_and_nodes(secure: SecureServer, admin: Identity) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    await ok(secure, admin, "POST", f"{rbac}/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "too-generous"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/status", "pods/eviction", "nodes", "nodes/status",
                                                    "persistentvolumeclaims", "persistentvolumeclaims/status"],
                   "verbs": ["*"]},
                  {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]}]})
    await ok(secure, admin, "POST", f"{rbac}/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "too-generous"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "too-generous"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:node:n1"}]})


async def until_admission(secure: SecureServer, who: Identity, method: str, path: str, *, expect: str,
                          body: Any = None, content_type: str = "application/json") -> str:
    """Repeat a refused request until the new RBAC binding is in effect and admission answers."""
    last = ""

    async def answered() -> bool:
        nonlocal last
        last = await refused(secure, who, method, path, body, content_type=content_type)
        return last == expect
    try:
        await wait_for(answered, timeout=5, what=f"admission's answer to {method} {path}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last answer: {last}") from None
    return last


async def test_nodes_leases_claims_and_tokens(secure: SecureServer) -> None:
    admin, n1, uids = await cluster(secure)

    # its own Node: labels it owns yes; restricted ones and taints no; other Nodes no
    doc = await ok(secure, n1, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {
        "kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "z1", "team": "x"}}}, content_type=MERGE)
    assert doc["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert await refused(secure, n1, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {
        "node-restriction.kubernetes.io/pool": "gold"}}}, content_type=MERGE) == \
        'nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool'
    assert await refused(secure, n1, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {
        "node-role.kubernetes.io/control-plane": ""}}}, content_type=MERGE) == \
        'nodes "n1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane'
    assert await refused(secure, n1, "PATCH", "/api/v1/nodes/n1", {"spec": {"taints": [
        {"key": "mine", "effect": "NoSchedule"}]}}, content_type=MERGE) == \
        'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'
    # an admin may do both; the node then may not remove them
    await ok(secure, admin, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"node-restriction.kubernetes.io/pool": "gold"}},
                                                          "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
             content_type=MERGE)
    assert "node-restriction.kubernetes.io/pool" in await refused(
        secure, n1, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"node-restriction.kubernetes.io/pool": None}}},
        content_type=MERGE)
    assert "modify taints" in await refused(secure, n1, "PATCH", "/api/v1/nodes/n1", {"spec": {"taints": None}},
                                            content_type=MERGE)
    doc = await ok(secure, n1, "PATCH", "/api/v1/nodes/n1/status", {"status": {"capacity": {"pods": "10"}}},
                   content_type=MERGE)
    assert doc["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]   # status writes keep them
    assert "cannot patch resource" in await refused(secure, n1, "PATCH", "/api/v1/nodes/n2",
                                                    {"metadata": {"labels": {"x": "y"}}}, content_type=MERGE)
    assert await refused(secure, n1, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n9"}}) == \
        'nodes "n9" is forbidden: node "n1" is not allowed to modify node "n9"'

    # a new node registers itself, within the labels kubelets own
    n3 = await secure.identity("system:node:n3", ("system:nodes",))
    bad = {"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": "n3", "labels": {"node-role.kubernetes.io/worker": "", "kubernetes.io/os": "linux"}}}
    assert await refused(secure, n3, "POST", "/api/v1/nodes", bad) == \
        'nodes "n3" is forbidden: node "n3" is not allowed to set the following labels: node-role.kubernetes.io/worker'
    good = {**bad, "metadata": {"name": "n3", "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": "n3"}},
            "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}
    await ok(secure, n3, "POST", "/api/v1/nodes", good)

    # kubectl, as a kubelet's kubeconfig: the same answers
    rc, _out, err = await secure.kubectl(n1, "label", "node", "n1", "node-restriction.kubernetes.io/zone=secure")
    assert rc != 0 and 'nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/zone' in err
    rc, out, err = await secure.kubectl(n1, "label", "node", "n1", "kubernetes.io/hostname=n1-host", "--overwrite")
    assert rc == 0, err

    # leases: its own, in kube-node-lease
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "n1"}}
    assert await refused(secure, n1, "POST", leases, {**lease, "metadata": {"name": "n2"}}) == \
        'leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node'
    await ok(secure, n1, "POST", leases, {**lease, "metadata": {"name": "n1"}})

    # claims: status only, and only capacity / conditions / allocations
    claim = "/api/v1/namespaces/a/persistentvolumeclaims/c1/status"
    doc = await ok(secure, n1, "PATCH", claim, {"status": {"capacity": {"storage": "2Gi"}}}, content_type=MERGE)
    assert doc["status"]["capacity"] == {"storage": "2Gi"}
    assert await refused(secure, n1, "PATCH", claim, {"status": {"phase": "Lost"}}, content_type=MERGE) == (
        'persistentvolumeclaims "c1" is forbidden: node "n1" is not allowed to update fields other than '
        "status.quantity and status.conditions: status.phase")

    # tokens: bound to one of its pods, with the pod's UID
    p1 = await ok(secure, admin, "GET", f"{PODS}/p1")
    p2 = await ok(secure, admin, "GET", f"{PODS}/p2")
    await wait_for(lambda: secure.server.authz.graph.references("n1", "serviceaccount", "a", "default"), timeout=5,
                   what="graph: service account")
    token = "/api/v1/namespaces/a/serviceaccounts/default/token"

    def request(ref: Obj | None) -> Obj:
        spec: Obj = {"audiences": []}
        if ref is not None:
            spec["boundObjectRef"] = ref
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}

    ref1 = {"apiVersion": "v1", "kind": "Pod", "name": "p1", "uid": p1["metadata"]["uid"]}
    doc = await ok(secure, n1, "POST", token, request(ref1))
    assert doc["status"]["token"]
    assert await refused(secure, n1, "POST", token, request(None)) == \
        'serviceaccounts "default" is forbidden: node requested token not bound to a pod'
    assert await refused(secure, n1, "POST", token, request({**ref1, "uid": ""})) == \
        'serviceaccounts "default" is forbidden: node requested token with a pod binding without a uid'
    assert await refused(secure, n1, "POST", token, request({**ref1, "name": "p2", "uid": p2["metadata"]["uid"]})) == \
        'serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node'

    # with more RBAC: still only its own Node, Lease and claim contents
    await grant_everything_on_pods_and_nodes(secure, admin)
    expect = 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    await until_admission(secure, n1, "PATCH", "/api/v1/nodes/n2", expect=expect,
                          body={"metadata": {"labels": {"x": "y"}}}, content_type=MERGE)
    assert await refused(secure, n1, "DELETE", "/api/v1/nodes/n2") == expect
    other_ns = "/apis/coordination.k8s.io/v1/namespaces/a/leases"
    assert await refused(secure, n1, "POST", other_ns, {**lease, "metadata": {"name": "n1"}}) == \
        'leases.coordination.k8s.io "n1" is forbidden: can only access leases in the "kube-node-lease" system namespace'
    assert await refused(secure, n1, "PATCH", "/api/v1/namespaces/a/persistentvolumeclaims/c1",
                         {"metadata": {"labels": {"x": "y"}}}, content_type=MERGE) == \
        'persistentvolumeclaims "c1" is forbidden: may only update PVC status'


@contextlib.contextmanager
def as_user(name: str, groups: list[str]) -> Iterator[None]:
    token = ch.request_user.set({"name": name, "groups": groups})
    try:
        yield
    finally:
        ch.request_user.reset(token)


async def test_plugin_directly(secure: SecureServer) -> None:
    """Paths the HTTP handlers do not take today (pods/eviction through the chain, other pod
    subresources) and the identities it ignores or refuses."""
    await cluster(secure)
    api = secure.server.api
    plugin = NodeRestriction(api)
    pods = secure.server.registry.lookup("", "v1", "pods")
    assert pods is not None
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p2"}}

    async def admit(user: str, groups: list[str], **kw: Any) -> None:
        with as_user(user, groups):
            attrs = api.admission.attributes(pods, kw.pop("op", ch.CREATE), "a", kw.pop("name", "p2"), **kw)
        assert plugin.handles(attrs)
        await plugin.admit(attrs)

    node = ["system:nodes", "system:authenticated"]
    with pytest.raises(errors.StatusError) as e:
        await admit("system:node:n1", node, obj=eviction, subresource="eviction")
    assert (e.value.code, e.value.message) == (403, 'pods "p2" is forbidden: node n1 can only evict pods with spec.nodeName set to itself')
    await admit("system:node:n2", node, obj=eviction, subresource="eviction")
    await admit("system:node:n2", node, obj=eviction, subresource="eviction", name="")   # name from the body
    with pytest.raises(errors.StatusError) as e:
        await admit("system:node:n2", node, obj={**eviction, "metadata": {"name": "gone"}}, subresource="eviction", name="")
    assert e.value.code == 404
    with pytest.raises(errors.StatusError) as e:
        await admit("system:node:n2", node, op=ch.UPDATE, obj={}, old={}, subresource="binding")
    assert e.value.message == "pods \"p2\" is forbidden: unexpected pod subresource \"binding\", only 'status' and 'eviction' are allowed"
    with pytest.raises(errors.StatusError) as e:
        await admit("system:node:", node, op=ch.DELETE, old={"spec": {"nodeName": ""}})
    assert e.value.message == 'pods "p2" is forbidden: could not determine node from user "system:node:"'
    # not nodes: untouched
    await admit("system:node:n1", ["system:authenticated"], op=ch.DELETE, old={"spec": {"nodeName": "n2"}})
    await admit("alice", ["system:nodes"], op=ch.DELETE, old={"spec": {"nodeName": "n2"}})
    # a mirror pod for a node that is not registered: 404 for the Node, as upstream
    with pytest.raises(errors.StatusError) as e:
        await admit("system:node:n7", node, obj=mirror("m", "n7", "u"), name="m")
    assert (e.value.code, e.value.message) == (404, 'nodes "n7" not found')
