"""Micro-benchmark of the pure scheduler core: pods/s through runtime + cache for N nodes.

    .venv/bin/python bench/scheduler_pure.py [--nodes 1000] [--pods 1000]

Prints JSON: for plain pods and for pods with required anti-affinity by hostname, the pods
scheduled per second (each pod: snapshot update, PreFilter/Filter/Score/select, assume).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.builders

from tests.builders import anti_affinity, make_node, make_pod

from kybernetes.scheduler.cache import Cache
from kybernetes.scheduler.framework.runtime import ScheduleResult
from kybernetes.scheduler.framework.types import PodInfo
from kybernetes.scheduler.registry import new_framework

ZONE = "topology.kubernetes.io/zone"


def run(nodes: int, pods: int, with_anti_affinity: bool) -> dict[str, Any]:
    cache = Cache()
    for i in range(nodes):
        cache.add_node(make_node(f"node-{i:05}", cpu="32", memory="128Gi", pods=110,
                                 labels={ZONE: f"zone-{i % 3}"}))
    fw = new_framework(rng=random.Random(1))
    specs = []
    for i in range(pods):
        kw: dict[str, Any] = {"labels": {"app": "bench"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
        if with_anti_affinity:
            kw["affinity"] = anti_affinity({"app": "bench"})
        specs.append(make_pod(f"p-{i}", **kw))
    snap = cache.update_snapshot()
    scheduled = failed = 0
    start = time.perf_counter()
    for pod in specs:
        snap = cache.update_snapshot(snap)
        out = fw.run_scheduling_cycle(PodInfo(pod), snap)
        if isinstance(out, ScheduleResult):
            pod["spec"]["nodeName"] = out.suggested_host
            cache.assume_pod(pod)
            scheduled += 1
        else:
            failed += 1
    elapsed = time.perf_counter() - start
    return {"nodes": nodes, "pods": pods, "anti_affinity": with_anti_affinity,
            "scheduled": scheduled, "failed": failed, "seconds": round(elapsed, 3),
            "pods_per_second": round(scheduled / elapsed, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=1000)
    args = ap.parse_args()
    results = [run(args.nodes, args.pods, False), run(args.nodes, args.pods, True)]
    print(json.dumps({"benchmark": "scheduler_pure", "results": results,
                      "targets": {"plain": 500, "anti_affinity": 100}}, indent=2))


if __name__ == "__main__":
    main()
