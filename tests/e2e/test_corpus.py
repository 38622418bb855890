"""Every manifest of the Kubernetes documentation corpus applies with the real kubectl, and its
workloads reconcile on the cluster's three simulated nodes: Deployments, ReplicaSets,
StatefulSets and ReplicationControllers have all replicas ready, DaemonSets are ready on every
node they want, Pods run (or succeeded), Jobs succeed, PersistentVolumeClaims bind. The few
manifests that cannot run here stay Pending with the scheduler's exact reason (``PENDING``)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Cluster

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "k8s-website-examples"
FILES = sorted(CORPUS.rglob("*.yaml")) if CORPUS.is_dir() else []
RECONCILE_TIMEOUT = 90.0

# what the documentation has the reader do first (the page's earlier steps), by file
PREREQS: dict[str, list[tuple[str, ...]]] = {
    "pods/storage/pv-claim.yaml": [("apply", "-f", "pods/storage/pv-volume.yaml")],
    "pods/storage/pv-pod.yaml": [("apply", "-f", "pods/storage/pv-volume.yaml"),
                                 ("apply", "-f", "pods/storage/pv-claim.yaml")],
    "secret/serviceaccount-token-secret.yaml": [("create", "serviceaccount", "sa-name")],
    # "provide a StorageClass": ours, provisioned by the local-path provisioner
    "controllers/statefulset.yaml": [("apply-storageclass", "my-storage-class")],
}

# manifests whose pods must stay Pending on unlabelled simulated nodes, and the scheduler's reason
PENDING = {
    "pods/pod-nginx.yaml": "node(s) didn't match Pod's node affinity/selector",         # disktype: ssd
    "pods/pod-nginx-required-affinity.yaml": "node(s) didn't match Pod's node affinity/selector",
    "pods/pod-with-pod-affinity.yaml": "node(s) didn't match pod affinity rules",     # no such pods
    "pods/pod-with-scheduling-gates.yaml": "",                                          # gated: not tried
    # its StorageClass "fast" names minikube's provisioner, which no cluster but minikube has
    "application/cassandra/cassandra-statefulset.yaml": "pod has unbound immediate PersistentVolumeClaims",
}


def unreconciled(obj: dict[str, Any]) -> str:
    """Why ``obj`` has not reached its desired state yet ("" when it has or has none)."""
    kind, st, sp = obj.get("kind"), obj.get("status") or {}, obj.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"):
        want = sp.get("replicas", 1)
        return "" if (st.get("readyReplicas") or 0) == want else f"{st.get('readyReplicas') or 0}/{want} ready"
    if kind == "DaemonSet":
        want = st.get("desiredNumberScheduled")  # 0 is right for a selector no node matches
        seen = (st.get("observedGeneration") or 0) >= ((obj.get("metadata") or {}).get("generation") or 1)
        return "" if seen and want is not None and (st.get("numberReady") or 0) == want else \
            f"{st.get('numberReady')}/{want} ready"
    if kind == "Pod":
        return "" if st.get("phase") in ("Running", "Succeeded") else f"phase {st.get('phase')}"
    if kind == "Job":
        return "" if st.get("succeeded") else f"succeeded {st.get('succeeded')}"
    if kind == "PersistentVolumeClaim":
        return "" if st.get("phase") == "Bound" else f"phase {st.get('phase')}"
    if obj.get("type") == "kubernetes.io/service-account-token":
        return "" if (obj.get("data") or {}).get("token") else "no token yet"
    return ""


def pending_reason(pod: dict[str, Any]) -> str:
    cond = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"), {})
    return str(cond.get("message") or "")


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_manifest_applies(cluster: Cluster, path: Path, tmp_path: Path) -> None:
    # Each file gets its own namespace (explicit namespaces are rewritten to it), so files that
    # reuse a name (two DaemonSets "fluentd-elasticsearch" in kube-system) do not collide.
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    ns = "corpus-" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
    cluster.kubectl("create", "namespace", ns, check=False)
    for d in docs:
        if (d.get("metadata") or {}).get("namespace"):
            d["metadata"]["namespace"] = ns
    f = tmp_path / path.name
    f.write_text(yaml.safe_dump_all(docs))
    for step in PREREQS.get(str(path.relative_to(CORPUS)), []):
        if step[0] == "apply":  # cluster-scoped objects (PersistentVolumes) get a name of their own
            pre = [d for d in yaml.safe_load_all((CORPUS / step[2]).read_text()) if d]
            for d in pre:
                if d.get("kind") == "PersistentVolume":
                    d["metadata"]["name"] += "-" + ns
            cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(pre))
        elif step[0] == "apply-storageclass":
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": step[1]},
                "provisioner": "kybernetes.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}))
        else:
            cluster.kubectl(*step, "-n", ns)
    out = cluster.kubectl("apply", "-n", ns, "-f", str(f)).stdout
    assert len(out.strip().splitlines()) == len(docs), out
    got = cluster.kubectl("get", "-n", ns, "-f", str(f), "-o", "name").stdout.split()
    assert len(got) == len(docs)

    # reconcile: every workload reaches its desired state (or stays Pending for the known reason)
    rel = str(path.relative_to(CORPUS))
    deadline = time.monotonic() + RECONCILE_TIMEOUT
    while True:
        items = cluster.kjson("get", "-n", ns, "-f", str(f))
        items = items.get("items", [items])
        if rel in PENDING:  # the namespace's pods (the file's own, or its workloads')
            pods = cluster.kjson("get", "pods", "-n", ns)["items"]
            assert pods and all((o.get("status") or {}).get("phase") == "Pending" for o in pods), pods
            if all(PENDING[rel] in pending_reason(o) for o in pods):
                return
        else:
            waiting = {f"{o['kind']}/{o['metadata']['name']}": why for o in items if (why := unreconciled(o))}
            if not waiting:
                return
        if time.monotonic() > deadline:
            detail = cluster.kubectl("get", "all,events", "-n", ns, check=False).stdout[-3000:]
            raise AssertionError(f"{rel} did not reconcile in {RECONCILE_TIMEOUT:g}s: "
                                 f"{waiting if rel not in PENDING else [pending_reason(o) for o in items]}\n{detail}")
        time.sleep(0.5)
