"""Issue 4 acceptance on a real node: an HPA scales a Deployment up and down from the CPU the
kubelet measures (process runtime: the Summary API sums each container's processes from /proc;
metrics.k8s.io serves it; the HPA controller reads it).

One replica busy-loops while the file ``burn`` exists in its working directory (the process
runtime's stand-in root), which the test creates and removes with ``kubectl exec``; new replicas
idle. Utilization against a 100m request is far above the 50 % target while one pod burns, and
near zero after. ``behavior`` sets both stabilization windows to 0 so the test does not wait for
upstream's 5-minute scale-down window; the default 15 s sync and 10 s stats sampling stay.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.node_e2e.conftest import NodeCluster, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("node-process")]

BURNER = "while true; do if [ -e burn ]; then :; else sleep 1; fi; done"


def test_hpa_scales_from_real_cpu_metrics(process_cluster: NodeCluster) -> None:
    c = process_cluster
    ns = "hpa-" + uuid.uuid4().hex[:8]
    c.kubectl("create", "namespace", ns)
    try:
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burner", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "burner"}},
                     "template": {"metadata": {"labels": {"app": "burner"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "main", "image": c.image, "command": ["sh", "-c", BURNER],
                                         "resources": {"requests": {"cpu": "100m"}}}]}}}}
        c.kubectl("apply", "-f", "-", input=json.dumps(deployment))
        c.kubectl("rollout", "status", "deployment/burner", "-n", ns, "--timeout=90s", timeout=100)
        c.kubectl("autoscale", "deployment", "burner", "-n", ns, "--cpu-percent=50", "--min=1", "--max=3")
        c.kubectl("patch", "hpa", "burner", "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 0},
            "scaleDown": {"stabilizationWindowSeconds": 0}}}}))
        first = c.kjson("get", "pods", "-n", ns, "-l", "app=burner")["items"][0]["metadata"]["name"]
        c.kubectl("exec", first, "-n", ns, "--", "touch", "burn")

        def diagnose() -> str:
            return c.kubectl("describe", "hpa", "burner", "-n", ns, check=False).stdout + \
                c.kubectl("get", "pods,events", "-n", ns, check=False).stdout

        def top_millicores() -> int:
            out = c.kubectl("top", "pod", first, "-n", ns, "--no-headers", check=False).stdout.split()
            return int(out[1].rstrip("m")) if len(out) > 1 and out[1].endswith("m") else 0

        try:
            assert wait_until("kubectl top shows the burn", lambda: top_millicores() >= 200, timeout=90)
            hpa = wait_until("the HPA sees > 50 %", lambda: (h := c.kjson("get", "hpa", "burner", "-n", ns))
                             and any(((m.get("resource") or {}).get("current") or {}).get("averageUtilization", 0) > 50
                                     for m in (h.get("status") or {}).get("currentMetrics") or []) and h, timeout=90)
            assert hpa["status"]["currentMetrics"][0]["resource"]["name"] == "cpu"
            wait_until("scale-up", lambda: c.kjson("get", "deployment", "burner", "-n", ns)["spec"]["replicas"] > 1,
                       timeout=90)
            events = c.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler").stdout
            assert "SuccessfulRescale" in events and "New size:" in events
            c.kubectl("exec", first, "-n", ns, "--", "rm", "-f", "burn")
            wait_until("scale-down to 1", lambda: c.kjson("get", "deployment", "burner", "-n", ns)["spec"]["replicas"] == 1,
                       timeout=150)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{diagnose()}") from None
    finally:
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
