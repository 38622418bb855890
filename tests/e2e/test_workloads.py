"""The seed workflow on simulated nodes: deployments roll out, scale, update, roll back."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from .conftest import KUBECTL, Cluster
from .test_controllers import eventually

pytestmark = pytest.mark.e2e


def running(cluster: Cluster, ns: str, selector: str) -> int:
    pods = cluster.kjson("get", "pods", "-n", ns, "-l", selector)["items"]
    return sum(1 for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


def test_nodes_are_simulated_with_zones(cluster: Cluster) -> None:
    nodes = eventually(lambda: (lambda items: items if len(items) == 3 else None)(cluster.kjson("get", "nodes")["items"]))
    zones = sorted(n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes)
    assert zones == ["zone-a", "zone-b", "zone-c"]
    assert all(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in nodes)
    out = cluster.kubectl("get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and "Ready" in out[1]


def test_seed_workflow(cluster: Cluster, ns: str) -> None:
    k = cluster.kubectl
    k("create", "deployment", "flask", "--image=flask:1", "--replicas=3", "-n", ns)
    assert "successfully rolled out" in k("rollout", "status", "deployment/flask", "-n", ns, "--timeout=60s").stdout
    assert running(cluster, ns, "app=flask") == 3
    k("scale", "deployment/flask", "--replicas=10", "-n", ns)
    k("rollout", "status", "deployment/flask", "-n", ns, "--timeout=60s")
    eventually(lambda: running(cluster, ns, "app=flask") == 10, 60)
    k("scale", "deployment/flask", "--replicas=3", "-n", ns)
    eventually(lambda: len(cluster.kjson("get", "pods", "-n", ns, "-l", "app=flask")["items"]) == 3, 60)

    # rolling update, watched: never fewer than replicas - maxUnavailable (3 - 0) ready... upstream
    # rounds 25% of 3 down to 0 unavailable and 25% up to 1 surge.
    low = [99]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            d = json.loads(subprocess.run([KUBECTL, "get", "deploy", "flask", "-n", ns, "-o", "json"], capture_output=True,
                                          text=True, env=cluster.env).stdout or "{}")
            low[0] = min(low[0], (d.get("status") or {}).get("availableReplicas", 99) or 0)
            time.sleep(0.1)

    t = threading.Thread(target=watch)
    t.start()
    try:
        k("set", "image", "deployment/flask", "flask=flask:2", "-n", ns)
        assert "successfully rolled out" in k("rollout", "status", "deployment/flask", "-n", ns, "--timeout=90s").stdout
    finally:
        stop.set()
        t.join()
    assert low[0] >= 3, f"availability dropped to {low[0]} during the rollout"
    images = {p["spec"]["containers"][0]["image"] for p in cluster.kjson("get", "pods", "-n", ns, "-l", "app=flask")["items"]
              if not p["metadata"].get("deletionTimestamp")}
    assert images == {"flask:2"}
    hist = k("rollout", "history", "deployment/flask", "-n", ns).stdout
    assert hist.split("\n")[0].split() == ["deployment.apps/flask"] and "REVISION" in hist
    k("rollout", "undo", "deployment/flask", "-n", ns)
    k("rollout", "status", "deployment/flask", "-n", ns, "--timeout=90s")
    d = cluster.kjson("get", "deploy", "flask", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "flask:1"
    assert len(cluster.kjson("get", "rs", "-n", ns)["items"]) == 2  # the old ReplicaSet was reused

    k("rollout", "pause", "deployment/flask", "-n", ns)
    k("set", "image", "deployment/flask", "flask=flask:3", "-n", ns)
    time.sleep(2)
    assert {p["spec"]["containers"][0]["image"] for p in cluster.kjson("get", "pods", "-n", ns, "-l", "app=flask")["items"]} == {"flask:1"}
    k("rollout", "resume", "deployment/flask", "-n", ns)
    k("rollout", "status", "deployment/flask", "-n", ns, "--timeout=90s")


def test_pods_run_and_delete_gracefully(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("run", "solo", "--image=busybox", "-n", ns)
    out = cluster.kubectl("wait", "pod/solo", "--for=condition=Ready", "-n", ns, "--timeout=30s").stdout
    assert "condition met" in out
    pod = cluster.kjson("get", "pod", "solo", "-n", ns)
    assert pod["spec"]["nodeName"].startswith("sim-") and pod["status"]["podIP"]
    cluster.kubectl("delete", "pod", "solo", "-n", ns, "--timeout=30s")
    r = cluster.kubectl("get", "pod", "solo", "-n", ns, check=False)
    assert r.returncode == 1


def test_unschedulable_pod_reports_why(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("run", "huge", "--image=busybox", "-n", ns, "--overrides",
                    '{"spec":{"containers":[{"name":"huge","image":"busybox","resources":{"requests":{"cpu":"1000"}}}]}}')

    def cond() -> str:
        p = cluster.kjson("get", "pod", "huge", "-n", ns)
        for c in p["status"].get("conditions") or []:
            if c["type"] == "PodScheduled" and c["status"] == "False":
                return c["message"]
        return ""

    msg = eventually(cond, 30)
    assert msg.startswith("0/3 nodes are available: 3 Insufficient cpu.")
    ev = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "reason=FailedScheduling").stdout
    assert "Insufficient cpu" in ev


def test_job_completions_and_parallelism(cluster: Cluster, ns: str) -> None:
    manifest = """
apiVersion: batch/v1
kind: Job
metadata: {name: five}
spec:
  completions: 5
  parallelism: 2
  template:
    metadata: {annotations: {kybernetes.io/fake-duration: "1s"}}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["true"]}]
"""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    most = [0]

    def done() -> bool:
        j = cluster.kjson("get", "job", "five", "-n", ns)
        most[0] = max(most[0], j.get("status", {}).get("active", 0))
        return any(c["type"] == "Complete" and c["status"] == "True" for c in j.get("status", {}).get("conditions") or [])

    eventually(done, 60)
    assert most[0] <= 2
    out = cluster.kubectl("get", "job", "five", "-n", ns).stdout.splitlines()
    assert out[0].split()[:3] == ["NAME", "STATUS", "COMPLETIONS"] and out[1].split()[1:3] == ["Complete", "5/5"]


def test_cronjob_manual_run(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "cronjob", "cj", "--image=busybox", "--schedule=*/1 * * * *", "-n", ns, "--", "true")
    out = cluster.kubectl("create", "job", "manual", "--from=cronjob/cj", "-n", ns).stdout
    assert "job.batch/manual created" in out
    j = cluster.kjson("get", "job", "manual", "-n", ns)
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    eventually(lambda: any(c["type"] == "Complete" for c in cluster.kjson("get", "job", "manual", "-n", ns).get("status", {}).get("conditions") or []), 60)


def test_service_endpoints(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "ep", "--image=nginx", "--replicas=2", "--port=80", "-n", ns)
    cluster.kubectl("expose", "deployment", "ep", "--port=8080", "--target-port=80", "-n", ns)

    def ready_ips() -> list[str]:
        r = cluster.kubectl("get", "endpoints", "ep", "-n", ns, "-o", "json", check=False)
        if r.returncode:
            return []
        subsets = json.loads(r.stdout).get("subsets") or []
        return [a["ip"] for s in subsets for a in s.get("addresses") or []]

    ips = eventually(lambda: (lambda v: v if len(v) == 2 else None)(ready_ips()), 30)
    pods = {p["status"]["podIP"] for p in cluster.kjson("get", "pods", "-n", ns, "-l", "app=ep")["items"]}
    assert set(ips) == pods
    slices = cluster.kjson("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=ep")["items"]
    assert len(slices) == 1 and slices[0]["ports"][0]["port"] == 80


def test_daemonset_and_statefulset(cluster: Cluster, ns: str) -> None:
    ds = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: busybox}]}
"""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds)
    assert "successfully rolled out" in cluster.kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s").stdout
    nodes = {p["spec"]["nodeName"] for p in cluster.kjson("get", "pods", "-n", ns, "-l", "app=agent")["items"]}
    assert nodes == {"sim-1", "sim-2", "sim-3"}
    sts = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: w, image: nginx, volumeMounts: [{name: www, mountPath: /data}]}]}
  volumeClaimTemplates:
  - metadata: {name: www}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=sts)
    assert "roll out" in cluster.kubectl("rollout", "status", "sts/web", "-n", ns, "--timeout=90s").stdout
    names = sorted(p["metadata"]["name"] for p in cluster.kjson("get", "pods", "-n", ns, "-l", "app=web")["items"])
    assert names == ["web-0", "web-1", "web-2"]
    pvcs = sorted(p["metadata"]["name"] for p in cluster.kjson("get", "pvc", "-n", ns)["items"])
    assert pvcs == ["www-web-0", "www-web-1", "www-web-2"]


def test_local_path_volume_for_a_pod(cluster: Cluster, ns: str) -> None:
    assert eventually(lambda: cluster.kubectl("get", "storageclass", "local-path", check=False).returncode == 0, 30)
    out = cluster.kubectl("get", "storageclass").stdout
    assert "local-path (default)" in out and "WaitForFirstConsumer" in out
    manifest = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  containers: [{name: c, image: busybox, volumeMounts: [{name: d, mountPath: /data}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
"""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    pvc = eventually(lambda: (lambda p: p if p.get("status", {}).get("phase") == "Bound" else None)(cluster.kjson("get", "pvc", "data", "-n", ns)), 30)
    pv = cluster.kjson("get", "pv", pvc["spec"]["volumeName"])
    node = cluster.kjson("get", "pod", "user", "-n", ns)["spec"]["nodeName"]
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [node]
    assert pv["spec"]["hostPath"]["path"].startswith("/var/lib/kybernetes/storage/pvc-")
