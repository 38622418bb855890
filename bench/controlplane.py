"""Control-plane scale benchmark (issue "Control loops" §5). Prints one JSON document.

    .venv/bin/python bench/controlplane.py [--nodes 1000] [--replicas 10000] [--update-replicas 1000]

Starts ``kyb up --runtime fake --nodes N`` (API server, controller manager, scheduler, fake kubelet,
each its own process under the ``kyb up`` supervisor) in a temporary data dir on a free port, waits
for N Ready nodes, then:

(a) **scale-out**: creates a Deployment of ``--replicas`` in namespace ``bench`` and times, from the
    create request: the ReplicaSet created, all pods created, all pods bound, all pods Running,
    and the Deployment reporting every replica available. One watch on pods of the namespace
    (plus one on its ReplicaSets) is the observer: a pod counts as bound at its first event with
    ``spec.nodeName`` and as running at its first event with ``status.phase == Running``;
    ``series`` samples the counts once a second.
(c) **memory at scale**: RSS (and CPU seconds used so far) of every component while the
    ``--replicas`` pods run. Components are found as children of the supervisor's PID in /proc.
(b) **rolling update**: scales the Deployment down to ``--update-replicas`` (timed until the
    Deployment and the pod count settle), then patches the container image (what ``kubectl set
    image`` sends: a strategic merge patch of the pod template) and times until the rollout is
    complete as ``kubectl rollout status`` judges it: observedGeneration current and
    ``updatedReplicas == replicas == availableReplicas == spec.replicas``. Default strategy
    (RollingUpdate, maxSurge 25 %, maxUnavailable 25 %). ``--fresh-update`` instead rolls a second,
    new Deployment of ``--update-replicas`` in another namespace (the big one keeps running).

Per phase the JSON lists each component's CPU seconds, so the bottleneck process is visible. The
machine's cores are shared by all components and this driver; ``loadavg_at_start`` records how
busy the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from kybernetes.client.errors import ClientError, Expired
from kybernetes.client.resources import DEPLOYMENTS, NAMESPACES, NODES, PODS, REPLICASETS
from kybernetes.client.rest import ApiClient, RetryPolicy

CLK_TCK = os.sysconf("SC_CLK_TCK")
COMPONENTS = ("apiserver", "controller-manager", "scheduler", "kubelet")
NS = "bench"


# ------------------------------------------------------------------------------------------------
# processes
# ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """CPU seconds of one thread (the main thread, tid == pid, runs a component's event loop)."""
    try:
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_of(ppid: int) -> dict[str, int]:
    """Component name -> PID for the direct children of ``ppid`` (found by parent PID in /proc;
    the component is the subcommand in the child's argv: ``python -m kybernetes.cli.main NAME``)."""
    out: dict[str, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent != ppid:
                continue
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        words = [a.decode(errors="replace") for a in argv]
        for name in COMPONENTS:
            if name in words[1:5]:
                out[name] = int(d.name)
    return out


class Cluster:
    """``kyb up`` as a child process in its own session (killed as a group if it hangs)."""

    def __init__(self, work: Path, nodes: int) -> None:
        self.data = work / "data"
        self.port = free_port()
        self.log = work / "kyb-up.log"
        self.nodes = nodes
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: dict[str, int] = {}

    def start(self) -> None:
        extra = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + (os.pathsep + extra if extra else "")}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kybernetes.cli.main", "up", "--data-dir", str(self.data),
                 "--port", str(self.port), "--runtime", "fake", "--nodes", str(self.nodes)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while b"cluster is up" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kyb up failed: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        self.pids = children_of(self.proc.pid)
        missing = set(COMPONENTS) - set(self.pids)
        if missing:
            raise RuntimeError(f"components not found under PID {self.proc.pid}: {sorted(missing)}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cpu(self) -> dict[str, float]:
        """CPU seconds per component (all threads), plus ``<name>/loop``: its main thread."""
        out = {n: cpu_seconds(p) for n, p in self.pids.items()}
        out.update({f"{n}/loop": thread_cpu_seconds(p, p) for n, p in self.pids.items()})
        return out

    def rss(self) -> dict[str, float]:
        return {n: rss_mb(p) for n, p in self.pids.items()}

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"kyb up exited: {self.log.read_text()[-3000:]}")


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {n: round(after[n] - before.get(n, 0.0), 1) for n in after}


# ------------------------------------------------------------------------------------------------
# objects
# ------------------------------------------------------------------------------------------------
def deployment(name: str, replicas: int, image: str = "nginx:1.27") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def rollout_complete(d: dict[str, Any]) -> bool:
    """``kubectl rollout status``'s test for a RollingUpdate Deployment (plus all available)."""
    md, spec, st = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (int(st.get("observedGeneration") or 0) >= int(md.get("generation") or 0)
            and int(st.get("updatedReplicas") or 0) == want
            and int(st.get("replicas") or 0) == want
            and int(st.get("availableReplicas") or 0) == want)


def is_node_ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


# ------------------------------------------------------------------------------------------------
# observers
# ------------------------------------------------------------------------------------------------
class PodObserver:
    """Counts pods of one namespace by milestone from a single watch (first time each is seen
    created / bound / Running, and currently existing), and notes when a count first reaches a
    goal."""

    def __init__(self, client: ApiClient, namespace: str, t0: float) -> None:
        self.client, self.ns, self.t0 = client, namespace, t0
        self.created: set[str] = set()
        self.bound: set[str] = set()
        self.running: set[str] = set()
        self.live: set[str] = set()
        self.events = 0
        self.restarts = 0
        self.series: list[tuple[float, int, int, int]] = []

    def reset(self, t0: float) -> None:
        self.t0 = t0
        self.created, self.bound, self.running = set(), set(), set()
        self.series = []

    def _see(self, typ: str, pod: dict[str, Any]) -> None:
        self.events += 1
        uid = (pod.get("metadata") or {}).get("uid")
        if not uid:
            return
        if typ == "DELETED":
            self.live.discard(uid)
            return
        self.live.add(uid)
        self.created.add(uid)
        if (pod.get("spec") or {}).get("nodeName"):
            self.bound.add(uid)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.add(uid)

    async def run(self, rv: str) -> None:
        while True:
            try:
                async with contextlib.aclosing(self.client.watch(PODS, self.ns, resource_version=rv,
                                                                  timeout_seconds=3600)) as events:
                    async for typ, obj in events:
                        if typ == "BOOKMARK":
                            rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                            continue
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        self._see(typ, obj)
            except Expired:
                raise
            except ClientError:
                self.restarts += 1
                await asyncio.sleep(0.2)

    async def sample(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.series.append((round(time.monotonic() - self.t0, 1), len(self.created),
                                len(self.bound), len(self.running)))


async def wait_for(cond: Any, timeout: float, cluster: Cluster, interval: float = 0.1) -> float:
    """Monotonic time at which the (sync or async) ``cond()`` first held."""
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return time.monotonic()
        cluster.check()
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


# ------------------------------------------------------------------------------------------------
# phases
# ------------------------------------------------------------------------------------------------
async def wait_nodes(client: ApiClient, cluster: Cluster, n: int) -> float:
    t0 = time.monotonic()

    async def ready() -> bool:
        items, _ = await client.list_all(NODES, page_size=500)
        return sum(1 for i in items if is_node_ready(i)) >= n

    return round(await wait_for(ready, 600, cluster, interval=1.0) - t0, 2)


async def scale_out(client: ApiClient, cluster: Cluster, replicas: int, timeout: float) -> dict[str, Any]:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    rv = (await client.list(PODS, NS, limit=1))["metadata"]["resourceVersion"]
    t0 = time.monotonic()
    obs = PodObserver(client, NS, t0)
    watch = asyncio.create_task(obs.run(rv))
    sampler = asyncio.create_task(obs.sample())
    cpu0 = cluster.cpu()
    try:
        await client.create(DEPLOYMENTS, deployment("big", replicas), NS)

        async def rs_exists() -> bool:
            return bool((await client.list(REPLICASETS, NS, limit=1)).get("items"))

        t_rs = await wait_for(rs_exists, 60, cluster, interval=0.05)
        marks: dict[str, float] = {}

        def progress() -> bool:
            for name, s in (("pods_created", obs.created), ("pods_bound", obs.bound),
                            ("pods_running", obs.running)):
                if name not in marks and len(s) >= replicas:
                    marks[name] = time.monotonic()
            return len(marks) == 3

        await wait_for(progress, timeout, cluster, interval=0.2)

        async def available() -> bool:
            d = await client.get(DEPLOYMENTS, "big", NS)
            return int((d.get("status") or {}).get("availableReplicas") or 0) >= replicas

        t_avail = await wait_for(available, 120, cluster, interval=0.5)
    finally:
        sampler.cancel()
        watch.cancel()
    out: dict[str, Any] = {"replicas": replicas, "seconds_to_replicaset": round(t_rs - t0, 2)}
    out.update({f"seconds_to_all_{k}": round(v - t0, 2) for k, v in marks.items()})
    out["seconds_to_deployment_available"] = round(t_avail - t0, 2)
    out["pods_per_second_running"] = round(replicas / (marks["pods_running"] - t0), 1)
    out["cpu_seconds"] = cpu_delta(cpu0, cluster.cpu())
    out["loop_utilization"] = {n: round(out["cpu_seconds"][f"{n}/loop"] / (marks["pods_running"] - t0), 2)
                               for n in COMPONENTS}
    out["observer_events"] = obs.events
    out["series_t_created_bound_running"] = obs.series[::max(1, len(obs.series) // 40)]
    return out


async def wait_rollout(client: ApiClient, cluster: Cluster, ns: str, name: str, timeout: float) -> float:
    async def done() -> bool:
        return rollout_complete(await client.get(DEPLOYMENTS, name, ns))

    return await wait_for(done, timeout, cluster, interval=0.1)


async def count_pods(client: ApiClient, ns: str) -> int:
    items, _ = await client.list_all(PODS, ns, page_size=1000)
    return len(items)


async def rolling_update(client: ApiClient, cluster: Cluster, replicas: int, fresh: bool,
                         timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"replicas": replicas, "mode": "fresh deployment" if fresh else "scaled down"}
    if fresh:
        ns, name = NS + "-roll", "roll"
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        t0 = time.monotonic()
        await client.create(DEPLOYMENTS, deployment(name, replicas), ns)
        out["seconds_to_create_and_roll_out"] = round(await wait_rollout(client, cluster, ns, name, timeout) - t0, 2)
    else:
        ns, name = NS, "big"
        t0 = time.monotonic()
        cpu0 = cluster.cpu()
        await client.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, ns, patch_type="merge")
        t_status = await wait_rollout(client, cluster, ns, name, timeout)
        t_pods = await wait_for(lambda: _pods_at_most(client, ns, replicas), timeout, cluster, interval=1.0)
        out["scale_down_seconds_status"] = round(t_status - t0, 2)
        out["scale_down_seconds_pods_gone"] = round(t_pods - t0, 2)
        out["scale_down_cpu_seconds"] = cpu_delta(cpu0, cluster.cpu())
    cpu0 = cluster.cpu()
    t0 = time.monotonic()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}
    await client.patch(DEPLOYMENTS, name, patch, ns, patch_type="strategic")
    t_done = await wait_rollout(client, cluster, ns, name, timeout)
    out["rollout_seconds"] = round(t_done - t0, 2)
    out["rollout_cpu_seconds"] = cpu_delta(cpu0, cluster.cpu())
    rs_items, _ = await client.list_all(REPLICASETS, ns)
    out["replicasets"] = {i["metadata"]["name"]: (i.get("spec") or {}).get("replicas") for i in rs_items}
    return out


async def _pods_at_most(client: ApiClient, ns: str, n: int) -> bool:
    return await count_pods(client, ns) <= n


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kyb-bench-cp-"))
    cluster = Cluster(work, args.nodes)
    out: dict[str, Any] = {"nodes": args.nodes, "cpus": os.cpu_count(),
                           "loadavg_at_start": os.getloadavg()[0],
                           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        t0 = time.monotonic()
        cluster.start()
        out["seconds_to_cluster_up"] = round(time.monotonic() - t0, 2)
        client = ApiClient.from_kubeconfig(cluster.data / "admin.kubeconfig", timeout=60.0,
                                           retry=RetryPolicy(attempts=8, initial=0.2))
        async with client:
            out["seconds_to_nodes_ready"] = round(await wait_nodes(client, cluster, args.nodes)
                                                  + out["seconds_to_cluster_up"], 2)
            out["rss_mb_idle"] = cluster.rss()
            if args.replicas:
                out["scale_out"] = await scale_out(client, cluster, args.replicas, args.timeout)
                await asyncio.sleep(args.settle)
                out["rss_mb_at_scale"] = cluster.rss()
                out["cpu_seconds_total_at_scale"] = {k: round(v, 1) for k, v in cluster.cpu().items()}
                out["loadavg_after_scale_out"] = os.getloadavg()[0]
            if args.update_replicas:
                fresh = args.fresh_update or not args.replicas
                out["rolling_update"] = await rolling_update(client, cluster, args.update_replicas, fresh,
                                                             args.timeout)
            out["rss_mb_end"] = cluster.rss()
    except BaseException as e:
        out["error"] = repr(e)
        out["log_tail"] = cluster.log.read_text()[-3000:] if cluster.log.exists() else ""
        raise
    finally:
        cluster.stop()
        if args.keep:
            out["work_dir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if "error" in out:
            print(json.dumps(out, indent=2), file=sys.stderr)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=10000, help="scale-out Deployment size (0: skip)")
    p.add_argument("--update-replicas", type=int, default=1000, help="rolling-update size (0: skip)")
    p.add_argument("--fresh-update", action="store_true",
                   help="roll a new Deployment instead of scaling the big one down")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per phase")
    p.add_argument("--settle", type=float, default=5.0, help="seconds to wait before measuring RSS")
    p.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
