"""Fake-kubelet scale benchmark. Prints one JSON document.

    .venv/bin/python bench/fake_kubelet.py [--nodes 1000] [--pods 2000] [--window 10]

Starts a real ``kyb apiserver`` (SQLite, TLS, admin client certificate) and a fake kubelet in its
own process (``python -m kybernetes.kubelet.fake --nodes N``), then measures:

* registration: time until all N Nodes exist, are Ready, and have a Lease in kube-node-lease;
* steady state over ``--window`` seconds: the share of Leases renewed, Lease writes/s, and the CPU
  use of the kubelet and of the API server;
* pods: ``--pods`` pods created already bound (spec.nodeName, spread over the nodes), time until
  all are Running and Ready;
* the kubelet's RSS after registration and after the pods.

The machine's cores are shared by the server, the kubelet and this driver, so CPU shares are
reported alongside the times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT / "src"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from kybernetes.client.errors import ClientError
from kybernetes.client.resources import LEASES, NODES, PODS
from kybernetes.client.rest import ApiClient, RetryPolicy

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_ready(client: ApiClient, proc: subprocess.Popen[bytes], kubeconfig: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("apiserver exited")
        if kubeconfig.exists():
            try:
                await client.request("GET", "/readyz", raw=True)
                return
            except (ClientError, OSError):
                pass
        await asyncio.sleep(0.2)
    raise RuntimeError("apiserver did not become ready")


def is_ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


def pod_ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or ())


async def poll_until(fn: Any, timeout: float, interval: float = 0.5) -> float:
    """Seconds until ``await fn()`` is true (raises after ``timeout``)."""
    t0 = time.monotonic()
    while not await fn():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)
    return time.monotonic() - t0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kyb-bench-fake-"))
    data, port = work / "data", free_port()
    kubeconfig = data / "admin.kubeconfig"
    server = spawn(["-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(data), "--port", str(port),
                    "--compaction-interval", "0"], work / "apiserver.log")
    kubelet: subprocess.Popen[bytes] | None = None
    out: dict[str, Any] = {"nodes": args.nodes, "pods": args.pods, "cpus": os.cpu_count()}
    try:
        probe = None
        deadline = time.monotonic() + 60
        while probe is None:
            if kubeconfig.exists():
                probe = ApiClient.from_kubeconfig(kubeconfig, timeout=60.0,
                                                  retry=RetryPolicy(attempts=5, initial=0.2))
            elif time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((work / "apiserver.log").read_text()[-2000:])
            else:
                await asyncio.sleep(0.2)
        async with probe as client:
            await wait_ready(client, server, kubeconfig)
            t0 = time.monotonic()
            kubelet = spawn(["-m", "kybernetes.kubelet.fake", "--kubeconfig", str(kubeconfig),
                             "--nodes", str(args.nodes), "--node-name-prefix", "sim-"], work / "kubelet.log")
            kcpu0, scpu0 = cpu_seconds(kubelet.pid), cpu_seconds(server.pid)

            async def all_ready() -> bool:
                if kubelet is not None and kubelet.poll() is not None:
                    raise RuntimeError((work / "kubelet.log").read_text()[-2000:])
                items, _ = await client.list_all(NODES, page_size=500)
                return sum(1 for n in items if is_ready(n)) >= args.nodes

            out["seconds_to_all_nodes_ready"] = round(await poll_until(all_ready, 600), 2)

            async def all_leases() -> bool:
                items, _ = await client.list_all(LEASES, "kube-node-lease", page_size=500)
                return len(items) >= args.nodes

            await poll_until(all_leases, 120)
            out["seconds_to_all_leases"] = round(time.monotonic() - t0, 2)
            out["registration_cpu_seconds"] = {"kubelet": round(cpu_seconds(kubelet.pid) - kcpu0, 1),
                                               "apiserver": round(cpu_seconds(server.pid) - scpu0, 1)}
            out["kubelet_rss_mb_after_registration"] = rss_mb(kubelet.pid)
            out["apiserver_rss_mb_after_registration"] = rss_mb(server.pid)

            # steady state: leases only
            before = {i["metadata"]["name"]: i["spec"].get("renewTime")
                      for i in (await client.list_all(LEASES, "kube-node-lease", page_size=500))[0]}
            rv0 = int((await client.list(LEASES, "kube-node-lease", limit=1))["metadata"]["resourceVersion"])
            k0, s0, w0 = cpu_seconds(kubelet.pid), cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(args.window)
            k1, s1, w1 = cpu_seconds(kubelet.pid), cpu_seconds(server.pid), time.monotonic()
            rv1 = int((await client.list(LEASES, "kube-node-lease", limit=1))["metadata"]["resourceVersion"])
            after = {i["metadata"]["name"]: i["spec"].get("renewTime")
                     for i in (await client.list_all(LEASES, "kube-node-lease", page_size=500))[0]}
            renewed = sum(1 for k, v in after.items() if before.get(k) != v)
            span = w1 - w0
            out["steady"] = {
                "window_seconds": round(span, 1),
                "leases_renewed_fraction": round(renewed / max(1, args.nodes), 3),
                "cluster_writes_per_second": round((rv1 - rv0) / span, 1),
                "kubelet_cpu_percent": round(100 * (k1 - k0) / span, 1),
                "apiserver_cpu_percent": round(100 * (s1 - s0) / span, 1),
            }

            # pods bound to the simulated nodes
            if args.pods:
                sem = asyncio.Semaphore(16)

                async def create(i: int) -> None:
                    pod = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": f"p-{i}", "namespace": "default", "labels": {"app": "bench"}},
                           "spec": {"nodeName": f"sim-{1 + i % args.nodes}",
                                    "containers": [{"name": "app", "image": "nginx:1.27"}]}}
                    async with sem:
                        await client.create(PODS, pod)

                p0 = time.monotonic()
                k0, s0 = cpu_seconds(kubelet.pid), cpu_seconds(server.pid)
                async with asyncio.TaskGroup() as tg:
                    for i in range(args.pods):
                        tg.create_task(create(i))
                created = time.monotonic() - p0

                async def pods_ready() -> bool:
                    items, _ = await client.list_all(PODS, "default", label_selector="app=bench", page_size=500)
                    return sum(1 for p in items if pod_ready(p)) >= args.pods

                await poll_until(pods_ready, 600, interval=1.0)
                total = time.monotonic() - p0
                out["pods_phase"] = {
                    "create_seconds": round(created, 2), "creates_per_second": round(args.pods / created, 1),
                    "seconds_to_all_running_ready": round(total, 2),
                    "cpu_seconds": {"kubelet": round(cpu_seconds(kubelet.pid) - k0, 1),
                                    "apiserver": round(cpu_seconds(server.pid) - s0, 1)},
                }
                out["kubelet_rss_mb_after_pods"] = rss_mb(kubelet.pid)
    finally:
        stop(kubelet)
        stop(server)
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--window", type=float, default=10.0)
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
