"""Our kubelet works under NodeRestriction: the real ``Kubelet`` (over the in-memory fake
runtime) with a kubelet client certificate against a TLS API server with RBAC,Node
authorization registers its Node, keeps its Lease, mirrors a static pod (owned by its Node),
runs and reports a pod, finishes its deletion, and removes the mirror when the manifest goes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybernetes.client.errors import NotFound
from kybernetes.client.resources import LEASES, NODES, PODS
from kybernetes.client.rest import ApiClient, RetryPolicy
from tests.authz.conftest import SecureServer, secure_server
from tests.kubelet_core.conftest import NODE, Env, make_pod

pytestmark = pytest.mark.integration


@pytest.fixture
async def secure(tmp_path: Path) -> AsyncIterator[SecureServer]:
    async with secure_server(tmp_path / "server") as s:
        yield s


@pytest.fixture
async def env(secure: SecureServer, tmp_path: Path) -> AsyncIterator[tuple[Env, ApiClient]]:
    """An Env whose kubelet speaks as ``system:node:node-1``, and an admin client."""
    kubelet_id = await secure.identity(f"system:node:{NODE}", ("system:nodes",))
    admin_id = await secure.admin()
    retry = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
    node_client = ApiClient.from_kubeconfig(kubelet_id.kubeconfig, timeout=10.0, retry=retry)
    admin = ApiClient.from_kubeconfig(admin_id.kubeconfig, timeout=10.0, retry=retry)
    e = Env(node_client, tmp_path / "node")
    try:
        yield e, admin
    finally:
        for _kl, task in list(e.kubelets):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await e.runtime.close()
        await node_client.close()
        await admin.close()


async def test_kubelet_under_node_restriction(env: tuple[Env, ApiClient], caplog: pytest.LogCaptureFixture) -> None:
    e, admin = env
    manifests = e.tmp / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "etcd.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n"
        "spec:\n  containers:\n  - name: etcd\n    image: busybox:1.36\n")
    await e.start(pod_manifest_path=manifests, static_check_interval=1.0)

    async def get(name: str, ns: str) -> dict[str, Any] | None:
        try:
            return await admin.get(PODS, name, ns)  # type: ignore[no-any-return]
        except NotFound:
            return None

    async def running(name: str, ns: str) -> bool:
        p = await get(name, ns)
        return p is not None and (p.get("status") or {}).get("phase") == "Running"

    # registered, with the labels a kubelet may set; its Lease exists
    node = await admin.get(NODES, NODE)
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE

    async def leased() -> bool:
        try:
            await admin.get(LEASES, NODE, "kube-node-lease")
            return True
        except NotFound:
            return False
    await e.pump(leased, step=0.5, what="node lease")

    # the static pod's mirror: created by the node, owned by its Node
    await e.pump(lambda: running(f"etcd-{NODE}", "kube-system"), step=0.5, what="mirror pod running")
    mirror = await get(f"etcd-{NODE}", "kube-system")
    assert mirror is not None
    assert mirror["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": node["metadata"]["uid"], "controller": True}]

    # an ordinary pod: run, status reported by the node, deletion finished by the node
    await admin.create(PODS, make_pod("web"), "default")
    await e.pump(lambda: running("web", "default"), step=0.5, what="web running")
    await admin.delete(PODS, "web", "default", grace_period_seconds=1)

    async def gone(name: str, ns: str) -> bool:
        return await get(name, ns) is None
    await e.pump(lambda: gone("web", "default"), step=0.5, what="web deleted by its kubelet")

    # the manifest goes: the node deletes its mirror
    (manifests / "etcd.yaml").unlink()
    await e.pump(lambda: gone(f"etcd-{NODE}", "kube-system"), step=0.5, what="mirror deleted")
    refusals = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage().lower()]
    assert refusals == [], "the kubelet was refused something along the way"


def test_node_graph_keeps_a_pod_that_references_nothing() -> None:
    """Regression (found by the test above): when a node's last pod with references went away,
    the next change of a pod that references nothing (a mirror pod) lost it from the graph, so
    its kubelet could no longer delete it or write its status."""
    from kybernetes.apiserver.authz.node import NodeGraph

    g = NodeGraph()
    web = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "n1", "serviceAccountName": "default"}}
    mirror = {"metadata": {"name": "etcd-n1", "namespace": "kube-system"}, "spec": {"nodeName": "n1"}}
    g.on_pod("/registry/pods/kube-system/etcd-n1", mirror)
    g.on_pod("/registry/pods/default/web", web)
    g.on_pod("/registry/pods/default/web", None)
    g.on_pod("/registry/pods/kube-system/etcd-n1", {**mirror, "status": {"phase": "Failed"}})
    assert g.pod_bound("n1", "kube-system", "etcd-n1")
    assert not g.references("n1", "serviceaccount", "default", "default")
    g.on_pod("/registry/pods/kube-system/etcd-n1", None)
    assert not g.pod_bound("n1", "kube-system", "etcd-n1") and g.refs == {} and g.pod_node == {}
