"""The real kubectl (v1.32 via /usr/bin/kubectl) against `kyb up`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import KUBECTL, Cluster

pytestmark = pytest.mark.e2e

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
"""


def test_version_and_discovery(cluster: Cluster) -> None:
    out = cluster.kubectl("version", "-o", "json").stdout
    v = json.loads(out)
    assert v["serverVersion"]["major"] == "1" and v["serverVersion"]["minor"] == "32"
    assert v["clientVersion"]["minor"].startswith("32")
    res = cluster.kubectl("api-resources").stdout
    for line in ("deployments", "deploy", "apps/v1", "customresourcedefinitions", "crd,crds"):
        assert line in res
    header = res.splitlines()[0].split()
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    versions = cluster.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "rbac.authorization.k8s.io/v1"):
        assert gv in versions
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_whoami(cluster: Cluster) -> None:
    out = cluster.kubectl("auth", "whoami").stdout
    assert "kubernetes-admin" in out
    assert "system:masters" in out


def test_system_namespaces_and_kubernetes_service(cluster: Cluster) -> None:
    names = {i["metadata"]["name"] for i in cluster.kjson("get", "namespaces")["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    svc = cluster.kjson("get", "service", "kubernetes", "-n", "default")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    out = cluster.kubectl("cluster-info").stdout
    assert "Kubernetes control plane is running at" in out


def test_apply_client_side_twice_then_change(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    f = tmp_path / "d.yaml"
    f.write_text(DEPLOY.format(replicas=2, image="nginx:1.25"))
    assert cluster.kubectl("apply", "-n", ns, "-f", str(f)).stdout.strip() == "deployment.apps/web created"
    assert cluster.kubectl("apply", "-n", ns, "-f", str(f)).stdout.strip() == "deployment.apps/web unchanged"
    f.write_text(DEPLOY.format(replicas=3, image="nginx:1.26"))
    assert cluster.kubectl("apply", "-n", ns, "-f", str(f)).stdout.strip() == "deployment.apps/web configured"
    d = cluster.kjson("get", "deployment", "web", "-n", ns)
    assert d["spec"]["replicas"] == 3
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.26"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # kept by the strategic merge patch
    assert d["metadata"]["generation"] == 2
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["revisionHistoryLimit"] == 10
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]


def test_apply_server_side_and_conflict(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n")
    out = cluster.kubectl("apply", "--server-side", "-n", ns, "-f", str(f)).stdout.strip()
    assert out == "configmap/ssa serverside-applied"
    cm = cluster.kjson("get", "configmap", "ssa", "-n", ns, "--show-managed-fields")
    managers = {e["manager"]: e for e in cm["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '2'\n")
    r = cluster.kubectl("apply", "--server-side", "--field-manager", "other", "-n", ns, "-f", str(f), check=False)
    assert r.returncode != 0
    assert "conflict" in r.stderr.lower() and ".data.a" in r.stderr
    cluster.kubectl("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-n", ns, "-f", str(f))
    assert cluster.kjson("get", "configmap", "ssa", "-n", ns)["data"]["a"] == "2"


def test_get_output_formats(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "fmt", "--image=busybox:1.36", "--replicas=2", "-n", ns)
    wide = cluster.kubectl("get", "deploy", "-n", ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[0] == "fmt" and "busybox:1.36" in wide[1] and "app=fmt" in wide[1]
    y = cluster.kubectl("get", "deploy", "fmt", "-n", ns, "-o", "yaml").stdout
    assert "kind: Deployment" in y and "name: fmt" in y
    jp = cluster.kubectl("get", "deploy", "fmt", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout
    assert jp == "2"
    cc = cluster.kubectl("get", "deploy", "-n", ns, "-o", "custom-columns=N:.metadata.name,R:.spec.replicas").stdout.split()
    assert cc == ["N", "R", "fmt", "2"]
    cluster.kubectl("create", "configmap", "c1", "--from-literal=a=b", "-n", ns)
    cluster.kubectl("label", "configmap", "c1", "tier=fe", "-n", ns)
    cluster.kubectl("create", "configmap", "c2", "--from-literal=a=b", "-n", ns)
    names = cluster.kubectl("get", "cm", "-n", ns, "-l", "tier=fe", "-o", "name").stdout.split()
    assert names == ["configmap/c1"]
    names = cluster.kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=c2", "-o", "name").stdout.split()
    assert names == ["configmap/c2"]
    allns = cluster.kubectl("get", "cm", "-A").stdout.splitlines()
    assert allns[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [ns, "c1"] for line in allns[1:])
    cm = cluster.kubectl("get", "cm", "c1", "-n", ns).stdout.splitlines()
    assert cm[0].split() == ["NAME", "DATA", "AGE"] and cm[1].split()[:2] == ["c1", "1"]


def test_get_watch_sees_change(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "w1", "--from-literal=a=b", "-n", ns)
    p = subprocess.Popen([KUBECTL, "get", "cm", "-n", ns, "-w", "--request-timeout=0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=cluster.env)
    try:
        time.sleep(1.5)
        cluster.kubectl("create", "configmap", "w2", "--from-literal=a=b", "-n", ns)
        lines: list[str] = []
        deadline = time.monotonic() + 15
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        buf = ""
        while time.monotonic() < deadline and not any(line.startswith("w2") for line in lines):
            chunk = p.stdout.read()
            if chunk:
                buf += chunk
                lines = buf.splitlines()
            time.sleep(0.1)
        assert lines[0].split() == ["NAME", "DATA", "AGE"]
        assert any(line.startswith("w1") for line in lines)
        assert any(line.startswith("w2") for line in lines), buf
        assert sum(1 for line in lines if line.startswith("NAME")) == 1
    finally:
        p.kill()
        p.wait()


def test_describe(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "desc", "--image=busybox", "-n", ns)
    out = cluster.kubectl("describe", "deployment", "desc", "-n", ns).stdout
    assert "Name:" in out and "desc" in out and "Replicas:" in out and "StrategyType:" in out and "RollingUpdate" in out
    cluster.kubectl("create", "configmap", "dcm", "--from-literal=k=v", "-n", ns)
    out = cluster.kubectl("describe", "configmap", "dcm", "-n", ns).stdout
    assert "Data" in out and "k:" in out


def test_delete_variants(cluster: Cluster, ns: str) -> None:
    for n in ("d1", "d2", "d3", "d4"):
        cluster.kubectl("create", "configmap", n, "--from-literal=a=b", "-n", ns)
    cluster.kubectl("label", "cm", "d2", "gone=yes", "-n", ns)
    assert 'configmap "d1" deleted' in cluster.kubectl("delete", "cm", "d1", "-n", ns).stdout
    assert 'configmap "d2" deleted' in cluster.kubectl("delete", "cm", "-l", "gone=yes", "-n", ns).stdout
    cluster.kubectl("delete", "cm", "d3", "-n", ns, "--wait=true")
    cluster.kubectl("delete", "cm", "--all", "-n", ns)
    r = cluster.kubectl("get", "cm", "d4", "-n", ns, check=False)
    assert r.returncode == 1 and 'configmaps "d4" not found' in r.stderr


def test_finalizer_delete_then_release(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fin\n  finalizers: [example.com/hold]\n")
    cluster.kubectl("delete", "cm", "fin", "-n", ns, "--wait=false")
    cm = cluster.kjson("get", "cm", "fin", "-n", ns)
    assert cm["metadata"]["deletionTimestamp"]
    cluster.kubectl("patch", "cm", "fin", "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    r = cluster.kubectl("get", "cm", "fin", "-n", ns, check=False)
    assert r.returncode == 1 and "not found" in r.stderr


def test_edit_with_editor_script(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "configmap", "ed", "--from-literal=color=blue", "-n", ns)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = cluster.kubectl("edit", "cm", "ed", "-n", ns, env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)}).stdout
    assert "configmap/ed edited" in out
    assert cluster.kjson("get", "cm", "ed", "-n", ns)["data"]["color"] == "green"


def test_patch_types(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "pt", "--image=busybox", "-n", ns)
    cluster.kubectl("patch", "deploy", "pt", "-n", ns, "--type", "json", "-p", '[{"op":"replace","path":"/spec/replicas","value":4}]')
    cluster.kubectl("patch", "deploy", "pt", "-n", ns, "--type", "merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    cluster.kubectl("patch", "deploy", "pt", "-n", ns, "--type", "strategic", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:2"}]}}}}')
    d = cluster.kjson("get", "deploy", "pt", "-n", ns)
    assert d["spec"]["replicas"] == 4
    assert d["metadata"]["labels"]["m"] == "1"
    # upstream SMP puts a new list element before the ones only the server had
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["sidecar", "busybox"]
    r = cluster.kubectl("patch", "deploy", "pt", "-n", ns, "--type", "json", "-p", '[{"op":"test","path":"/spec/replicas","value":9}]', check=False)
    assert r.returncode != 0 and "test failed" in r.stderr


def test_label_annotate_replace_diff(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "configmap", "lr", "--from-literal=a=1", "-n", ns)
    assert "configmap/lr labeled" in cluster.kubectl("label", "cm", "lr", "x=y", "-n", ns).stdout
    assert "configmap/lr annotated" in cluster.kubectl("annotate", "cm", "lr", "note=hi", "-n", ns).stdout
    cm = cluster.kjson("get", "cm", "lr", "-n", ns)
    assert cm["metadata"]["labels"]["x"] == "y" and cm["metadata"]["annotations"]["note"] == "hi"
    cm["data"]["a"] = "2"
    f = tmp_path / "cm.json"
    f.write_text(json.dumps(cm))
    assert "configmap/lr replaced" in cluster.kubectl("replace", "-f", str(f)).stdout
    assert cluster.kjson("get", "cm", "lr", "-n", ns)["data"]["a"] == "2"
    # stale resourceVersion -> conflict
    r = cluster.kubectl("replace", "-f", str(f), check=False)
    assert r.returncode != 0 and "Conflict" in r.stderr
    cm2 = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lr", "namespace": ns}, "data": {"a": "3"}}
    f.write_text(json.dumps(cm2))
    d = cluster.kubectl("diff", "-f", str(f), check=False)
    assert d.returncode == 1 and '-  a: "2"' in d.stdout and '+  a: "3"' in d.stdout
    assert cluster.kjson("get", "cm", "lr", "-n", ns)["data"]["a"] == "2"  # diff changed nothing


def test_explain(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "pods.spec.containers").stdout
    assert "KIND:" in out and "Pod" in out and "FIELD: containers" in out and "image" in out
    out = cluster.kubectl("explain", "deployment.spec.replicas").stdout
    assert "replicas" in out and "integer" in out


def test_create_generators(cluster: Cluster, ns: str) -> None:
    assert "configmap/g1 created" in cluster.kubectl("create", "configmap", "g1", "--from-literal=k=v", "-n", ns).stdout
    assert "secret/s1 created" in cluster.kubectl("create", "secret", "generic", "s1", "--from-literal=pw=hunter2", "-n", ns).stdout
    s = cluster.kjson("get", "secret", "s1", "-n", ns)
    assert s["type"] == "Opaque" and s["data"]["pw"] == "aHVudGVyMg=="
    assert "deployment.apps/g2 created" in cluster.kubectl("create", "deployment", "g2", "--image=busybox", "--port=80", "-n", ns).stdout
    assert "service/g3 created" in cluster.kubectl("create", "service", "clusterip", "g3", "--tcp=80:8080", "-n", ns).stdout
    svc = cluster.kjson("get", "svc", "g3", "-n", ns)
    assert svc["spec"]["clusterIP"].startswith("10.") and svc["spec"]["ports"][0]["targetPort"] == 8080
    assert "job.batch/g4 created" in cluster.kubectl("create", "job", "g4", "--image=busybox", "-n", ns, "--", "true").stdout
    j = cluster.kjson("get", "job", "g4", "-n", ns)
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    n2 = ns + "-x"
    assert f"namespace/{n2} created" in cluster.kubectl("create", "namespace", n2).stdout
    cluster.kubectl("delete", "namespace", n2, "--wait=false")


def test_scale_and_wait(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "sc", "--image=busybox", "-n", ns)
    assert "deployment.apps/sc scaled" in cluster.kubectl("scale", "deployment", "sc", "--replicas=5", "-n", ns).stdout
    out = cluster.kubectl("wait", "deployment/sc", "-n", ns, "--for=jsonpath={.spec.replicas}=5", "--timeout=20s").stdout
    assert "condition met" in out


def test_bad_input_from_kubectl(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    r = cluster.kubectl("apply", "-n", ns, "-f", str(f), check=False)
    assert r.returncode != 0 and "Invalid" in r.stderr and "RFC 1123" in r.stderr
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\nbogus: 1\n")
    r = cluster.kubectl("apply", "-n", ns, "-f", str(f), check=False)
    assert r.returncode != 0 and 'unknown field "bogus"' in r.stderr
    r = cluster.kubectl("create", "configmap", "dup", "--from-literal=a=b", "-n", ns)
    r = cluster.kubectl("create", "configmap", "dup", "--from-literal=a=b", "-n", ns, check=False)
    assert r.returncode != 0 and 'configmaps "dup" already exists' in r.stderr

