"""Scheduler benchmark through the real API: pods/s from pending to bound with 1,000 nodes.

    .venv/bin/python bench/scheduler_api.py [--nodes 1000] [--plain 2000] [--anti 1000] [--quick]

Starts a real ``kyb apiserver`` process (TLS, SQLite) and creates N Node objects directly (no
kubelet). Then runs ``python -m kybernetes.scheduler.main`` as its own process (no leader
election) and measures, per workload:

* ``end_to_end``: pods created by this process (32 concurrent creates) while the scheduler runs;
  pods/s from the first create to the last pod seen bound (watch).
* ``backlog``: the scheduler is paused (SIGSTOP) while the pods are created, then resumed;
  pods/s from SIGCONT to the last pod bound: the scheduler's own throughput on a backlog.

Workloads: plain pods (100m CPU, 128Mi) and pods with a required anti-affinity by hostname
against their own label (one per node, so at most ``--nodes`` of them). Prints one JSON
document with pods/s, the CPU seconds used by the scheduler and the API server in each phase,
and the scheduler's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT / "src"), str(ROOT), str(ROOT / "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import run as apibench

from kybernetes.client.resources import NAMESPACES, NODES, PODS
from kybernetes.client.rest import ApiClient

NS = "bench"
ZONE = "topology.kubernetes.io/zone"
CONCURRENCY = 32


def node_body(i: int) -> dict[str, Any]:
    name = f"node-{i:05}"
    alloc = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, ZONE: f"zone-{i % 3}"}},
            "status": {"capacity": alloc, "allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod_body(name: str, group: str, anti: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox", "resources": {
        "requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    if anti:
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"group": group}}, "topologyKey": "kubernetes.io/hostname"}]}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"group": group}}, "spec": spec}


async def bounded(n: int, make: Any) -> None:
    """Run ``make(i)`` for i in range(n) with CONCURRENCY at a time."""
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await make(i)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


class BoundWatcher:
    """Counts pods of one label group that have been seen with ``spec.nodeName`` (watch)."""

    def __init__(self, client: ApiClient, group: str, want: int) -> None:
        self.client, self.group, self.want = client, group, want
        self.bound: set[str] = set()
        self.done = asyncio.Event()
        self.last_bound_at = 0.0

    async def run(self, rv: str) -> None:
        while not self.done.is_set():
            async with contextlib.aclosing(self.client.watch(
                    PODS, NS, resource_version=rv, label_selector=f"group={self.group}",
                    timeout_seconds=600, allow_bookmarks=True)) as events:
                async for typ, obj in events:
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if typ in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                        self.bound.add(obj["metadata"]["name"])
                        if len(self.bound) >= self.want:
                            self.last_bound_at = time.monotonic()
                            self.done.set()
                            return


class Bench:
    def __init__(self, server: apibench.Server, client: ApiClient, profile: str = "",
                 bind_concurrency: int = 16) -> None:
        self.server, self.client, self.profile = server, client, profile
        self.bind_concurrency = bind_concurrency
        self.sched: subprocess.Popen[bytes] | None = None
        self.sched_log = open(server.dir / "scheduler.log", "wb")  # noqa: SIM115 - closed in stop_scheduler

    def start_scheduler(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        prof = ["-m", "cProfile", "-o", self.profile] if self.profile else []
        self.sched = subprocess.Popen(
            [sys.executable, *prof, "-m", "kybernetes.scheduler.main", "--kubeconfig", self.server.kubeconfig,
             "--leader-elect", "false", "--bind-concurrency", str(self.bind_concurrency)], stdout=self.sched_log, stderr=subprocess.STDOUT, env=env)

    def stop_scheduler(self) -> None:
        if self.sched is not None and self.sched.poll() is None:
            self.sched.send_signal(signal.SIGCONT)
            self.sched.send_signal(signal.SIGINT)
            try:
                self.sched.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.sched.kill()
                self.sched.wait()
        self.sched_log.close()

    def cpu(self) -> tuple[float, float]:
        assert self.sched is not None
        return apibench.cpu_seconds(self.sched.pid), apibench.cpu_seconds(self.server.proc.pid)

    async def create_pods(self, group: str, n: int, anti: bool) -> None:
        async def make(i: int) -> None:
            await self.client.create(PODS, pod_body(f"{group}-{i:05}", group, anti), NS)

        await bounded(n, make)

    async def phase(self, group: str, n: int, anti: bool, backlog: bool) -> dict[str, Any]:
        assert self.sched is not None
        rv = str((await self.client.list(PODS, NS, limit=1)).get("metadata", {}).get("resourceVersion") or "")
        watcher = BoundWatcher(self.client, group, n)
        watch_task = asyncio.ensure_future(watcher.run(rv))
        try:
            if backlog:
                self.sched.send_signal(signal.SIGSTOP)
            cpu0 = self.cpu()
            t_create = time.monotonic()
            await self.create_pods(group, n, anti)
            created = time.monotonic() - t_create
            if backlog:
                cpu0 = self.cpu()
            t0 = time.monotonic() if backlog else t_create
            if backlog:
                self.sched.send_signal(signal.SIGCONT)
            await asyncio.wait_for(watcher.done.wait(), timeout=600)
            cpu1 = self.cpu()
            seconds = watcher.last_bound_at - t0
        finally:
            if self.sched.poll() is None:
                self.sched.send_signal(signal.SIGCONT)
            watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch_task
        return {"workload": "anti_affinity" if anti else "plain", "mode": "backlog" if backlog else "end_to_end",
                "pods": n, "create_seconds": round(created, 2), "seconds": round(seconds, 2),
                "pods_per_second": round(n / seconds, 1),
                "scheduler_cpu_seconds": round(cpu1[0] - cpu0[0], 2),
                "apiserver_cpu_seconds": round(cpu1[1] - cpu0[1], 2),
                "scheduler_rss_mb": round(apibench.rss_mb(self.sched.pid), 1)}

    async def wait_scheduler_ready(self) -> float:
        """Time until a probe pod is bound (process start, informer lists, first cycle)."""
        t0 = time.monotonic()
        watcher = BoundWatcher(self.client, "probe", 1)
        rv = str((await self.client.list(PODS, NS, limit=1)).get("metadata", {}).get("resourceVersion") or "")
        task = asyncio.ensure_future(watcher.run(rv))
        await self.client.create(PODS, pod_body("probe", "probe", False), NS)
        try:
            await asyncio.wait_for(watcher.done.wait(), timeout=120)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return time.monotonic() - t0


async def one_cluster(args: argparse.Namespace, mode: str, anti: bool) -> dict[str, Any]:
    """A fresh API server, nodes and scheduler for one workload (no pods left from others)."""
    server = apibench.Server("sqlite")
    try:
        await server.wait_ready()
        async with ApiClient.from_kubeconfig(server.kubeconfig, timeout=60.0) as client:
            await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            t0 = time.monotonic()
            await bounded(args.nodes, lambda i: client.create(NODES, node_body(i)))
            node_seconds = time.monotonic() - t0
            bench = Bench(server, client, args.profile, args.bind_concurrency)
            try:
                bench.start_scheduler()
                ready = await bench.wait_scheduler_ready()
                assert bench.sched is not None
                idle_rss = apibench.rss_mb(bench.sched.pid)
                n = args.anti if anti else args.plain
                result = await bench.phase(f"{'anti' if anti else 'plain'}-{mode[:3]}", n, anti, mode == "backlog")
            finally:
                bench.stop_scheduler()
    finally:
        server.stop()
    return {**result, "node_create_seconds": round(node_seconds, 2),
            "scheduler_ready_seconds": round(ready, 2), "scheduler_rss_mb_idle": round(idle_rss, 1)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--plain", type=int, default=2000)
    ap.add_argument("--anti", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="100 nodes, 200 plain, 100 anti-affinity pods")
    ap.add_argument("--bind-concurrency", type=int, default=64, help="scheduler --bind-concurrency")
    ap.add_argument("--profile", default="", help="write a cProfile of the scheduler process here")
    ap.add_argument("--only", default="", help="comma-separated modes to run: end_to_end,backlog")
    args = ap.parse_args()
    if args.quick:
        args.nodes, args.plain, args.anti = 100, 200, 100
    args.anti = min(args.anti, args.nodes)
    modes = [m for m in ("backlog", "end_to_end") if not args.only or m in args.only.split(",")]
    out: dict[str, Any] = {"benchmark": "scheduler_api", "nodes": args.nodes,
                           "bind_concurrency": args.bind_concurrency, "cpus": os.cpu_count(),
                           "load_average_before": round(os.getloadavg()[0], 2)}
    results: list[dict[str, Any]] = []
    for mode in modes:
        for anti in (False, True):
            results.append(await one_cluster(args, mode, anti))
    out["results"] = results
    out["targets_pods_per_second"] = {"plain": 500, "anti_affinity": 100}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
