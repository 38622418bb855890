"""`kyb up` runs the controller manager: kubectl sees controllers act."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from .conftest import Cluster

pytestmark = pytest.mark.e2e


def eventually(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")


def test_namespace_defaults_and_delete_with_wait(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "ctl-ns")
    eventually(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", "ctl-ns", check=False).returncode == 0)
    ca = eventually(lambda: cluster.kubectl("get", "configmap", "kube-root-ca.crt", "-n", "ctl-ns", "-o", "jsonpath={.data.ca\\.crt}", check=False).stdout)
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    assert ca.strip() == (cluster.data_dir / "pki" / "ca.crt").read_text().strip()
    cluster.kubectl("create", "configmap", "x", "--from-literal=a=b", "-n", "ctl-ns")
    cluster.kubectl("create", "deployment", "d", "--image=busybox", "-n", "ctl-ns")
    out = cluster.kubectl("delete", "namespace", "ctl-ns", "--timeout=60s").stdout
    assert 'namespace "ctl-ns" deleted' in out
    r = cluster.kubectl("get", "namespace", "ctl-ns", check=False)
    assert r.returncode == 1 and "not found" in r.stderr


def test_deployment_makes_replicaset_and_pods_and_cascades(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=busybox:1", "--replicas=3", "-n", ns)
    rs = eventually(lambda: cluster.kjson("get", "rs", "-n", ns, "-l", "app=web")["items"])
    assert len(rs) == 1 and rs[0]["metadata"]["name"].startswith("web-")
    assert rs[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = eventually(lambda: len(cluster.kjson("get", "pods", "-n", ns, "-l", "app=web")["items"]) == 3)
    assert pods
    # the status counts the ReplicaSet's status, which follows its pods: it reaches 3 after they exist
    d = eventually(lambda: (lambda d: d if d.get("status", {}).get("observedGeneration") == 1
                            and d["status"].get("replicas") == 3 else None)(cluster.kjson("get", "deploy", "web", "-n", ns)))
    assert d["status"]["replicas"] == 3
    cluster.kubectl("set", "image", "deployment/web", "busybox=busybox:2", "-n", ns)
    eventually(lambda: len(cluster.kjson("get", "rs", "-n", ns, "-l", "app=web")["items"]) == 2)
    hist = cluster.kubectl("rollout", "history", "deployment/web", "-n", ns).stdout
    assert "1" in hist and "2" in hist
    cluster.kubectl("delete", "deployment", "web", "-n", ns)
    eventually(lambda: not cluster.kjson("get", "rs", "-n", ns)["items"])
    eventually(lambda: not cluster.kjson("get", "pods", "-n", ns)["items"])


def test_orphan_cascade_keeps_replicaset(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "keep", "--image=busybox", "--replicas=1", "-n", ns)
    eventually(lambda: cluster.kjson("get", "rs", "-n", ns)["items"])
    cluster.kubectl("delete", "deployment", "keep", "--cascade=orphan", "-n", ns)
    time.sleep(1.0)
    rs = cluster.kjson("get", "rs", "-n", ns)["items"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
