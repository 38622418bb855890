"""Issue 4 acceptance on a real node: an HPA scales a Deployment up and down from the CPU the
kubelet measures (process runtime: the Summary API sums each container's processes from /proc;
metrics.k8s.io serves it; the HPA controller reads it).

One replica busy-loops while the file ``burn`` exists in its working directory (the process
runtime's stand-in root), which the test creates and removes with ``kubectl exec``; new replicas
idle. Utilization against a 100m request is far above the 50 % target while one pod burns, and
near zero after. ``behavior`` sets both stabilization windows to 0 so the test does not wait for
upstream's 5-minute scale-down window; the default 15 s sync and 10 s stats sampling stay, so
every wait allows for several syncs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.node_e2e.conftest import NodeCluster, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("node-process")]

BURNER = "while true; do if [ -e burn ]; then :; else sleep 1; fi; done"


def _deployment(ns: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burner", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "burner"}},
                 "template": {"metadata": {"labels": {"app": "burner"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": image, "command": ["sh", "-c", BURNER],
                                     "resources": {"requests": {"cpu": "100m"}}}]}}}}


def _utilization(hpa: dict[str, Any]) -> int | None:
    """The CPU averageUtilization in the HPA's status.currentMetrics (None when not reported)."""
    for m in (hpa.get("status") or {}).get("currentMetrics") or []:
        res = m.get("resource") or {}
        current = res.get("current") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu" and "averageUtilization" in current:
            return int(current["averageUtilization"])
    return None


def test_hpa_scales_from_real_cpu_metrics(process_cluster: NodeCluster) -> None:
    c = process_cluster
    ns = "hpa-" + uuid.uuid4().hex[:8]
    c.kubectl("create", "namespace", ns)

    def replicas() -> int:
        return int(c.kjson("get", "deployment", "burner", "-n", ns)["spec"]["replicas"])

    def utilization() -> int | None:
        return _utilization(c.kjson("get", "hpa", "burner", "-n", ns))

    def rescale_events() -> list[str]:
        items = c.kjson("get", "events", "-n", ns, "--field-selector",
                        "involvedObject.kind=HorizontalPodAutoscaler,reason=SuccessfulRescale")["items"]
        return [e.get("message", "") for e in items]

    def top_millicores(pod: str) -> int:
        out = c.kubectl("top", "pod", pod, "-n", ns, "--no-headers", check=False).stdout.split()
        return int(out[1].rstrip("m")) if len(out) > 1 and out[1].endswith("m") else 0

    def diagnose() -> str:
        """The HPA, its target's pods, events, the metrics API's answer and the relevant log lines
        (the API server logs each node whose kubelet it cannot reach for metrics)."""
        out = [c.kubectl(*args, check=False).stdout for args in (
            ("describe", "hpa", "burner", "-n", ns),
            ("get", "hpa,deployment,pods", "-n", ns, "-o", "wide"),
            ("get", "nodes", "-o", "wide"),
            ("get", "events", "-n", ns, "--sort-by=.lastTimestamp"),
            ("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"))]
        log = c.log.read_text(errors="replace").splitlines()
        out.append("\n".join([x for x in log if "metrics" in x or "stats" in x or "HPA" in x][-30:]))
        return "\n".join(out)

    try:
        c.kubectl("apply", "-f", "-", input=json.dumps(_deployment(ns, c.image)))
        c.kubectl("rollout", "status", "deployment/burner", "-n", ns, "--timeout=90s", timeout=100)
        c.kubectl("autoscale", "deployment", "burner", "-n", ns, "--cpu-percent=50", "--min=1", "--max=3")
        c.kubectl("patch", "hpa", "burner", "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 0},
            "scaleDown": {"stabilizationWindowSeconds": 0}}}}))
        first = c.kjson("get", "pods", "-n", ns, "-l", "app=burner")["items"][0]["metadata"]["name"]
        c.kubectl("exec", first, "-n", ns, "--", "touch", "burn")

        # The kubelet's Summary API → metrics.k8s.io → kubectl top: a busy loop is far above 200m.
        wait_until("kubectl top shows the burn", lambda: top_millicores(first) >= 200, timeout=90)
        # The HPA controller reads the same metric: one pod at ~10x its request is far above 50 %.
        wait_until("the HPA reports > 50 % CPU", lambda: (utilization() or 0) > 50, timeout=90)
        wait_until("scale-up", lambda: replicas() > 1, timeout=90)
        # The Scale is written before the event is recorded, so wait for the event too.
        wait_until("a SuccessfulRescale event for the scale-up", lambda: any(
            m.startswith("New size:") and "above target" in m for m in rescale_events()), timeout=30)

        c.kubectl("exec", first, "-n", ns, "--", "rm", "-f", "burn")
        wait_until("scale-down to 1", lambda: replicas() == 1, timeout=150)
        wait_until("a SuccessfulRescale event for the scale-down", lambda: any(
            m.startswith("New size: 1;") and "below target" in m for m in rescale_events()), timeout=30)
        wait_until("the HPA reports < 50 % CPU", lambda: (u := utilization()) is not None and u < 50,
                   timeout=60)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{diagnose()}") from None
    finally:
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
