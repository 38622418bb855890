"""`kubectl drain` on a simulated node: evictions honour a PodDisruptionBudget.

Needs the disruption controller in the controller manager (``disruption`` in
``controllers/manager.py``'s table): without it a new budget never gets a status and every
eviction is refused with 429.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter

import pytest

from .conftest import KUBECTL, Cluster
from .test_controllers import eventually

pytestmark = pytest.mark.e2e


def live_pods(cluster: Cluster, ns: str, selector: str) -> list[dict]:  # type: ignore[type-arg]
    pods = cluster.kjson("get", "pods", "-n", ns, "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict) -> bool:  # type: ignore[type-arg]
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or ())


def pdb_status(cluster: Cluster, ns: str, name: str) -> dict:  # type: ignore[type-arg]
    return cluster.kjson("get", "pdb", name, "-n", ns).get("status") or {}


def test_drain_honours_the_disruption_budget(cluster: Cluster, ns: str) -> None:
    k = cluster.kubectl
    nodes = eventually(lambda: (lambda ns_: ns_ if len(ns_) >= 3 else None)(
        sorted(n["metadata"]["name"] for n in cluster.kjson("get", "nodes")["items"]
               if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or ()))))
    app = f"drain-{ns[-8:]}"            # a label only this test's pods carry
    sel = f"app={app}"
    cordoned: list[str] = []
    try:
        # with one node cordoned the 3 replicas land 2 + 1 on the others, so the drained node
        # holds two pods of the budget and its second eviction has to wait for a replacement
        k("cordon", nodes[-1])
        cordoned.append(nodes[-1])
        k("create", "deployment", app, "--image=web:1", "--replicas=3", "-n", ns)
        k("rollout", "status", f"deployment/{app}", "-n", ns, "--timeout=60s")
        k("uncordon", nodes[-1])
        cordoned.remove(nodes[-1])

        k("create", "pdb", app, f"--selector={sel}", "--min-available=2", "-n", ns)
        try:
            eventually(lambda: (lambda s: s.get("observedGeneration") == 1 and s.get("disruptionsAllowed") == 1)(
                pdb_status(cluster, ns, app)), 30)
        except AssertionError as e:
            raise AssertionError("the PodDisruptionBudget got no status: is the disruption controller "
                                 "registered in the controller manager?") from e
        st = pdb_status(cluster, ns, app)
        assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"]) == (3, 2, 3)

        per_node = Counter(p["spec"]["nodeName"] for p in live_pods(cluster, ns, sel))
        target, hosted = per_node.most_common(1)[0]
        assert hosted >= 2, per_node  # other tests' pods may skew placement onto one node

        low = [99]
        stop = threading.Event()

        def watch() -> None:   # availability never drops below the budget
            while not stop.is_set():
                out = subprocess.run([KUBECTL, "get", "pods", "-n", ns, "-l", sel, "-o", "json"],
                                     capture_output=True, text=True, env=cluster.env).stdout
                if out:
                    items = json.loads(out)["items"]
                    low[0] = min(low[0], sum(1 for p in items if ready(p) and not p["metadata"].get("deletionTimestamp")))
                time.sleep(0.1)

        t = threading.Thread(target=watch)
        t.start()
        cordoned.append(target)
        try:
            # --pod-selector keeps pods of other tests on this node out of it
            r = k("drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s",
                  f"--pod-selector={sel}", timeout=150)
        finally:
            stop.set()
            t.join()
        assert f"node/{target} drained" in r.stdout, r.stdout + r.stderr
        # the second eviction was refused (429) until the replacement of the first was ready
        assert "Cannot evict pod as it would violate the pod's disruption budget" in r.stderr, r.stderr
        assert low[0] >= 2, f"ready pods dropped to {low[0]} during the drain"

        line = next(ln for ln in k("get", "nodes").stdout.splitlines() if ln.split()[0] == target)
        assert "SchedulingDisabled" in line.split()[1], line
        eventually(lambda: (lambda ps: len(ps) == 3 and all(ready(p) for p in ps)
                            and all(p["spec"].get("nodeName") != target for p in ps))(live_pods(cluster, ns, sel)), 60)
        eventually(lambda: pdb_status(cluster, ns, app).get("disruptionsAllowed") == 1, 30)
        k("uncordon", target)
        cordoned.remove(target)
        assert "SchedulingDisabled" not in next(ln for ln in k("get", "nodes").stdout.splitlines()
                                                if ln.split()[0] == target)
    finally:
        for n in cordoned:   # leave every node schedulable for the other tests
            k("uncordon", n, check=False)
