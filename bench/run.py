"""API server benchmarks. Prints one JSON document; record results in bench/RESULTS.md.

    .venv/bin/python bench/run.py [--store sqlite|etcd|both] [--quick]

For each store it starts a real `kyb apiserver` process (TLS, admin client certificate) and
measures, with 32 concurrent clients: ConfigMap creates (1 KiB), gets, a paginated list of
10,000 pods (pages of 500), watch delivery latency with 1,000 watches on pods under 100
writes/s, and the idle server's RSS. It also measures the raw write rate of the store
underneath (SQLite commits/s, etcd puts/s) and prints the API-to-raw ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONCURRENCY = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, store: str, etcd_endpoints: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kyb-bench-"))
        self.port = free_port()
        self.store = store
        args = [sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(self.dir),
                "--port", str(self.port), "--store", store, "--compaction-interval", "0"]
        if etcd_endpoints:
            args += ["--etcd-servers", etcd_endpoints]
        self.log = open(self.dir / "apiserver.log", "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.url = f"https://127.0.0.1:{self.port}"

    def ssl(self) -> Any:
        from kybernetes.pki.kubeconfig import client_ssl_context_from_kubeconfig

        _, ctx, _ = client_ssl_context_from_kubeconfig(str(self.kubeconfig))
        return ctx

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "apiserver.log").read_text()[-2000:])
            if self.kubeconfig.exists():
                try:
                    async with aiohttp.ClientSession() as s:
                        async with s.get(self.url + "/readyz", ssl=self.ssl(), timeout=aiohttp.ClientTimeout(total=2)) as r:
                            if r.status == 200:
                                return
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    pass
            await asyncio.sleep(0.2)
        raise RuntimeError("apiserver did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


async def run_workers(n_total: int, fn: Any) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(n_total))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            ok = await fn(i)
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
    elapsed = time.perf_counter() - t0
    return {"ops": n_total, "seconds": round(elapsed, 3), "per_second": round(n_total / elapsed, 1),
            "p50_ms": round(pct(latencies, 50) * 1000, 2), "p99_ms": round(pct(latencies, 99) * 1000, 2), "errors": errors}


async def bench_api(server: Server, quick: bool) -> dict[str, Any]:
    await server.wait_ready()
    await asyncio.sleep(1.0)
    out: dict[str, Any] = {"idle_rss_mb": round(rss_mb(server.proc.pid), 1)}
    conn = aiohttp.TCPConnector(ssl=server.ssl(), limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as s:
        base = server.url
        payload = "x" * 900
        n_create = 2000 if quick else 6000

        async def create(i: int) -> bool:
            body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"payload": payload}})
            async with s.post(f"{base}/api/v1/namespaces/default/configmaps", data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                return r.status == 201

        out["create_configmap_1KiB"] = await run_workers(n_create, create)

        async def get(i: int) -> bool:
            async with s.get(f"{base}/api/v1/namespaces/default/configmaps/cm-{random.randrange(n_create)}") as r:
                await r.read()
                return r.status == 200

        out["get_configmap"] = await run_workers(n_create * 2, get)

        n_pods = 2000 if quick else 10000
        pod_tmpl = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "", "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}

        async def create_pod(i: int) -> bool:
            pod_tmpl["metadata"]["name"] = f"pod-{i}"
            async with s.post(f"{base}/api/v1/namespaces/default/pods", data=orjson.dumps(pod_tmpl), headers={"Content-Type": "application/json"}) as r:
                await r.read()
                return r.status == 201

        out["create_pod"] = await run_workers(n_pods, create_pod)
        t0 = time.perf_counter()
        token = ""
        count = 0
        while True:
            params = {"limit": "500"}
            if token:
                params["continue"] = token
            async with s.get(f"{base}/api/v1/namespaces/default/pods", params=params) as r:
                doc = orjson.loads(await r.read())
            count += len(doc["items"])
            token = doc["metadata"].get("continue", "")
            if not token:
                break
        out["list_pods_pages_of_500"] = {"pods": count, "seconds": round(time.perf_counter() - t0, 3)}
        out["watch_1000_at_100_writes_per_s"] = await bench_watch(server, s, quick)
    out["rss_after_load_mb"] = round(rss_mb(server.proc.pid), 1)
    return out


async def bench_watch(server: Server, s: aiohttp.ClientSession, quick: bool) -> dict[str, Any]:
    n_watch = 1000
    duration = 5.0 if quick else 10.0
    rate = 100
    base = server.url
    async with s.get(f"{base}/api/v1/namespaces/default/pods", params={"limit": "1"}) as r:
        rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
    latencies: list[float] = []
    received = 0
    sent_at: dict[str, float] = {}
    stop = asyncio.Event()

    async def watcher() -> None:
        nonlocal received
        params = {"watch": "true", "resourceVersion": rv, "labelSelector": "bench=watch", "timeoutSeconds": str(int(duration) + 30)}
        async with s.get(f"{base}/api/v1/namespaces/default/pods", params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
            async for line in r.content:
                now = time.perf_counter()
                i = line.find(b'"bench-seq":"')
                if i >= 0:
                    seq = line[i + 13: line.index(b'"', i + 13)].decode()
                    t = sent_at.get(seq)
                    if t is not None:
                        latencies.append(now - t)
                        received += 1
                if stop.is_set():
                    return

    tasks = [asyncio.ensure_future(watcher()) for _ in range(n_watch)]
    await asyncio.sleep(3.0)  # let every watch connect
    n_writes = int(duration * rate)
    t_start = time.perf_counter()
    write_lat: list[float] = []

    async def write(i: int) -> None:
        seq = str(i)
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"w-{i}", "labels": {"bench": "watch"}, "annotations": {"bench-seq": seq}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        sent_at[seq] = time.perf_counter()
        async with s.post(f"{base}/api/v1/namespaces/default/pods", data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
            await r.read()
        write_lat.append(time.perf_counter() - sent_at[seq])

    writers = []
    for i in range(n_writes):
        target = t_start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writers.append(asyncio.ensure_future(write(i)))
    await asyncio.gather(*writers)
    deadline = time.perf_counter() + 10
    while received < n_writes * n_watch and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"watches": n_watch, "writes": n_writes, "writes_per_s": rate, "delivered": received,
            "expected": n_writes * n_watch, "p50_ms": round(pct(latencies, 50) * 1000, 1),
            "p99_ms": round(pct(latencies, 99) * 1000, 1), "write_p99_ms": round(pct(write_lat, 99) * 1000, 1)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=("sqlite", "etcd", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    from bench import store_raw

    stores = ["sqlite", "etcd"] if args.store == "both" else [args.store]
    for store in stores:
        etcd = None
        endpoints = ""
        if store == "etcd":
            from tests.etcd_server import EtcdServer

            etcd = EtcdServer(Path(tempfile.mkdtemp(prefix="kyb-bench-etcd-")))
            etcd.start()
            endpoints = ",".join(etcd.endpoints)
        try:
            raw = await store_raw.measure(store, endpoints=endpoints.split(",") if endpoints else None, quick=args.quick)
            server = Server(store, endpoints)
            try:
                api = await bench_api(server, args.quick)
            finally:
                server.stop()
            raw_rate = raw.get("raw_commits_per_s") or raw.get("raw_puts_per_s") or 0
            api["api_to_raw_create_ratio"] = round(api["create_configmap_1KiB"]["per_second"] / raw_rate, 3) if raw_rate else None
            result[store] = {"raw": raw, "api": api}
        finally:
            if etcd is not None:
                etcd.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
