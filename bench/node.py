"""Node benchmark (issue 3 §7): pod start-up latency, kubelet memory and idle CPU, fake runtime.

Prints one JSON document; results are recorded in bench/RESULTS.md.

    .venv/bin/python bench/node.py [--runtime runc|process|both] [--pods 100] [--batch 10]
                                   [--mode batch|window] [--rss-pods 50] [--idle-window 30]
                                   [--skip-fake] [--fake-nodes 1000] [--fake-window 60]

Per runtime (``runc`` needs root):

1. A fresh data dir; a busybox root file system (``tests/registry_server.build_busybox_rootfs``)
   is stored with ``kyb image build`` in the node's store (``DATA/kubelet/images``), so the pods
   (``imagePullPolicy: Never``, ``sleep 3600``) never pull. ``kyb up --runtime R`` on free ports
   (API server and ``--kubelet-port``) in its own session; the kubelet is found as the supervisor's
   child by parent PID in /proc (``bench.controlplane.children_of``).
2. Warm-up: one pod is started and deleted (the first pod creates the CNI bridge and compiles
   the shim; not counted), and the client opens ``--batch`` connections.
3. **Start-up latency.** ``--pods`` pods are created through the API (``ApiClient``, the admin
   kubeconfig), ``--batch`` at a time: ``batch`` mode creates ``--batch`` pods concurrently and
   waits until all of them are Running before the next ``--batch``; ``window`` mode keeps
   ``--batch`` pods in flight (a new create as soon as one is Running). One watch on the
   namespace observes the pods; per pod, latency = monotonic time the watch delivers
   ``status.phase == Running`` − monotonic time the create request was sent. The same watch
   gives a breakdown: create answered, bound (``spec.nodeName``, the scheduler), first kubelet
   status (``status.startTime`` present). The in-status view (``creationTimestamp``,
   ``status.startTime``, ``containerStatuses[].state.running.startedAt``) is reported too; those
   timestamps have one-second resolution. During the ramp: CPU cores used by each component, by
   the helper programs the kubelet waits for (CNI plugins, unshare, ...: its cutime+cstime), and
   the whole machine's busy fraction (/proc/stat; includes other sessions' load).
4. **Memory and idle CPU.** When ``--rss-pods`` pods are Running (creation pauses there), after
   ``--settle`` seconds: the kubelet process's RSS (and PSS), the shims' total RSS / PSS (shims
   found from their ``started.json`` records under ``DATA/kubelet/runtime/containers``, checked
   against /proc start times), then CPU over ``--idle-window`` seconds from /proc/<pid>/stat
   utime+stime deltas (kubelet, its event-loop thread, shims, API server). RSS is sampled again
   with all ``--pods`` running.
5. Clean-up, also on failure: pods deleted (graceful, 1 s) and waited for until the kubelet has
   released them (no sandbox records, no volume mounts), ``kyb up`` stopped by its PID (SIGTERM;
   SIGKILL of its process group after 60 s), then the forced clean-up of
   ``tests/node_e2e/conftest.py`` (sandboxes and containers through the runtime, with CNI
   teardown here; our pods' cgroup directories), plus: volume mounts left under the kubelet dir
   unmounted, any still-live shim or container of ours killed by the PID recorded in its
   ``started.json``, and the ``kyb0`` bridge removed if this run created it and nothing is
   attached to it (other sessions on this machine may be running runc clusters). ``cleanup``
   in the JSON reports what was done and any leftovers (mounts, processes naming the work dir,
   nat rules naming our sandboxes).

Fake runtime (unless ``--skip-fake``): ``bench/fake_kubelet.py``'s ``run`` (``--nodes 1000``,
no pods, ``--window`` = ``--fake-window``) gives registration times, the fake kubelet's CPU % in
the steady window after registration and its RSS; a sampler here adds the fake kubelet's peak and
final RSS (the process is found as this process's child by parent PID).

The machine is shared: the JSON records the load average at start and around each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT / "src"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench.controlplane import CLK_TCK, children_of, cpu_seconds, free_port, rss_mb, thread_cpu_seconds  # noqa: E402
from kybernetes.client.errors import ClientError, Expired, NotFound  # noqa: E402
from kybernetes.client.resources import NAMESPACES, NODES, PODS, SERVICEACCOUNTS  # noqa: E402
from kybernetes.client.rest import ApiClient, RetryPolicy  # noqa: E402

NS = "bench-node"
IMAGE = "bench.local/busybox-sleep:1"
BRIDGE = "kyb0"
KYB = [sys.executable, "-m", "kybernetes.cli.main"]


# ------------------------------------------------------------------------------------------------
# small pure helpers
# ------------------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max / mean in milliseconds of a list of seconds."""
    if not values_s:
        return {}
    ms = [1000 * v for v in values_s]
    return {"n": len(ms), "p50": round(pct(ms, 50), 1), "p90": round(pct(ms, 90), 1),
            "p99": round(pct(ms, 99), 1), "max": round(max(ms), 1),
            "mean": round(sum(ms) / len(ms), 1), "min": round(min(ms), 1)}


def parse_time(s: str | None) -> float | None:
    """An RFC 3339 timestamp as epoch seconds (None if absent or malformed)."""
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pod_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": "node"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "sleep", "image": IMAGE, "imagePullPolicy": "Never",
                                     "command": ["sleep", "3600"]}]}}


def is_ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


# ------------------------------------------------------------------------------------------------
# /proc
# ------------------------------------------------------------------------------------------------
def proc_start(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: tells a live process from a reused PID."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def recorded_processes(runtime_dir: Path) -> list[dict[str, int]]:
    """Live shims and container processes of this node, from the shims' ``started.json`` files
    (``shim_pid``/``shim_start``, ``pid``/``pid_start``), each checked against /proc."""
    out = []
    for f in sorted((runtime_dir / "containers").glob("*/started.json")):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        rec: dict[str, int] = {}
        for key in ("shim", "pid"):
            pid = d.get("shim_pid" if key == "shim" else "pid")
            start = d.get("shim_start" if key == "shim" else "pid_start")
            if isinstance(pid, int) and pid > 0 and (start is None or proc_start(pid) == start):
                rec["shim" if key == "shim" else "container"] = pid
        if rec:
            out.append(rec)
    return out


def shim_totals(runtime_dir: Path) -> dict[str, Any]:
    """Count, RSS / PSS totals of the live shims, and their mean CPU so far including waited-for
    children (for runc: ``runc run``, so this is the container start's cost outside the kubelet)."""
    procs = recorded_processes(runtime_dir)
    shims = [p["shim"] for p in procs if "shim" in p]
    cpu = [cpu_seconds(p) + children_cpu_seconds(p) for p in shims]
    return {"count": len(shims), "rss_mb_total": round(sum(rss_mb(p) for p in shims), 1),
            "pss_mb_total": round(sum(pss_mb(p) for p in shims), 1),
            "rss_mb_each_max": max((rss_mb(p) for p in shims), default=0.0),
            "cpu_ms_each_incl_children_mean": round(1000 * sum(cpu) / len(cpu), 1) if cpu else 0.0}


def shim_cpu(runtime_dir: Path) -> float:
    return sum(cpu_seconds(p["shim"]) for p in recorded_processes(runtime_dir) if "shim" in p)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    total = sum(vals)
    idle = vals[3] + vals[4]          # idle + iowait
    return (total - idle) / CLK_TCK, total / CLK_TCK


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s waited-for children (cutime + cstime): for the kubelet, the helper
    programs it runs (CNI plugins, unshare, runc kill/delete, the shim launcher) but not the
    shims and containers, which are re-parented away from it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def bridge_exists(name: str = BRIDGE) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def bridge_ports(name: str = BRIDGE) -> list[str]:
    d = Path(f"/sys/class/net/{name}/brif")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------------------------------------
# the cluster
# ------------------------------------------------------------------------------------------------
class NodeCluster:
    """``kyb up --runtime runc|process`` in a fresh data dir, as a child in its own session."""

    def __init__(self, work: Path, runtime: str, verbose: bool = False) -> None:
        self.work = work
        self.runtime = runtime
        self.data = work / "data"
        self.port = free_port()
        self.kubelet_port = free_port()
        self.log = work / "kyb-up.log"
        self.verbose = verbose
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: dict[str, int] = {}

    @property
    def kubelet_dir(self) -> Path:
        return self.data / "kubelet"

    def build_image(self) -> float:
        """``kyb image build`` of a busybox rootfs into the node's store; returns seconds taken."""
        from tests.registry_server import build_busybox_rootfs

        t0 = time.monotonic()
        rootfs = build_busybox_rootfs(self.work / "rootfs")
        try:
            r = subprocess.run([*KYB, "image", "build", str(rootfs), "-t", IMAGE, "--cmd", "sleep 3600",
                                "--data-dir", str(self.data)], capture_output=True, text=True, timeout=120,
                               env=self._env())
            if r.returncode:
                raise RuntimeError(f"kyb image build failed: {r.stdout}\n{r.stderr}")
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        return round(time.monotonic() - t0, 2)

    def _env(self) -> dict[str, str]:
        extra = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": str(ROOT / "src") + (os.pathsep + extra if extra else "")}

    def start(self) -> None:
        argv = [*KYB, "up", "--data-dir", str(self.data), "--port", str(self.port),
                "--runtime", self.runtime, "--kubelet-port", str(self.kubelet_port)]
        if self.verbose:
            argv.append("-v")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self._env(),
                                         start_new_session=True)
        deadline = time.monotonic() + 120
        while b"cluster is up" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kyb up failed: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        # the kubelet starts after the API server is ready; give the supervisor a moment
        deadline = time.monotonic() + 30
        while True:
            self.pids = children_of(self.proc.pid)
            if "kubelet" in self.pids or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if "kubelet" not in self.pids:
            raise RuntimeError(f"no kubelet under PID {self.proc.pid}: {self.pids}")

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"kyb up exited: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def force_cleanup(kubelet_dir: Path, runtime: str, *, pod_cidr: str | None, pod_uids: set[str],
                  remove_bridge: bool) -> dict[str, Any]:
    """``tests/node_e2e/conftest.py _force_cleanup``, narrowed for a shared machine: sandboxes and
    containers removed through the runtime (with CNI teardown when the pod CIDR is known), mounts
    left under ``kubelet_dir`` (pod volumes) unmounted, live shims / containers recorded in our
    ``started.json`` files killed by PID, the cgroup directories of *our* pods only, the bridge
    only when ``remove_bridge`` and nothing is attached to it. Returns what it did."""
    done: dict[str, Any] = {"sandboxes_removed": 0, "killed_pids": [], "cgroup_dirs_removed": 0,
                            "bridge_removed": False, "errors": []}

    async def clean() -> None:
        network = None
        if runtime == "runc":
            from kybernetes.kubelet.runtime.runc import RuncRuntime

            if pod_cidr:
                from kybernetes.kubelet.network.cni import CniNetwork

                network = CniNetwork(pod_cidr=pod_cidr, bridge=BRIDGE, state_dir=kubelet_dir / "network")
            rt: Any = RuncRuntime(kubelet_dir / "runtime", log_root=kubelet_dir / "logs", network=network)
        else:
            from kybernetes.kubelet.runtime.process import ProcessRuntime

            rt = ProcessRuntime(kubelet_dir / "runtime", log_root=kubelet_dir / "logs")
        try:
            for sb in await rt.list_sandboxes():
                try:
                    await rt.stop_sandbox(sb.id)
                    await rt.remove_sandbox(sb.id)
                    done["sandboxes_removed"] += 1
                except Exception as e:  # noqa: BLE001 - keep cleaning the rest
                    done["errors"].append(f"sandbox {sb.id}: {e!r}")
        finally:
            await rt.close()
        if runtime == "runc":
            from kybernetes.kubelet.network.cni import remove_bridge as rm_bridge
            from kybernetes.kubelet.network.cni import remove_portmap_chains

            with contextlib.suppress(Exception):
                await remove_portmap_chains()
            if remove_bridge and bridge_exists() and not bridge_ports():
                done["bridge_removed"] = await rm_bridge(BRIDGE)

    if (kubelet_dir / "runtime").exists():
        asyncio.run(clean())
    if kubelet_dir.exists():
        from kybernetes.kubelet.runtime import linux

        # volumes (e.g. the projected token's tmpfs) of pods the kubelet did not tear down
        left = linux.mountpoints_under(str(kubelet_dir))
        if left:
            try:
                linux.unmount_all_under(str(kubelet_dir))
                done["unmounted"] = len(left)
            except OSError as e:
                done["errors"].append(f"unmount under {kubelet_dir}: {e!r}")
    if (kubelet_dir / "runtime").exists():
        for rec in recorded_processes(kubelet_dir / "runtime"):
            for pid in (rec.get("container"), rec.get("shim")):
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        done["killed_pids"].append(pid)
    elif runtime == "runc" and remove_bridge and bridge_exists() and not bridge_ports():
        done["bridge_removed"] = asyncio.run(_remove_bridge())
    if runtime == "runc" and pod_uids:
        names = {f"pod{u}" for u in pod_uids}
        for ctrl in Path("/sys/fs/cgroup").iterdir():
            root = ctrl / "kybernetes"
            if not root.is_dir():
                continue
            for pod_dir in [p for p in root.iterdir() if p.is_dir() and p.name in names]:
                for sub in [*sorted((p for p in pod_dir.rglob("*") if p.is_dir()),
                                    key=lambda p: len(p.parts), reverse=True), pod_dir]:
                    try:
                        sub.rmdir()
                        done["cgroup_dirs_removed"] += 1
                    except OSError as e:
                        done["errors"].append(f"rmdir {sub}: {e.strerror}")
    return done


async def _remove_bridge() -> bool:
    from kybernetes.kubelet.network.cni import remove_bridge

    return await remove_bridge(BRIDGE)


def leftovers(work: Path, sandbox_ids: set[str]) -> dict[str, list[str]]:
    """Mounts under the work dir, processes whose command line names it, nat rules naming one of
    our sandboxes (reported, not touched)."""
    token = str(work)
    out: dict[str, list[str]] = {"mounts": [], "procs": [], "nat_rules": []}
    out["mounts"] = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines() if token in ln]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if token in cmd:
                out["procs"].append(f"{d.name}: {cmd[:200]}")
    if sandbox_ids and shutil.which("iptables-save"):
        r = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, timeout=30)
        out["nat_rules"] = [ln for ln in r.stdout.splitlines() if any(s in ln for s in sandbox_ids)]
    return out


# ------------------------------------------------------------------------------------------------
# observing pods
# ------------------------------------------------------------------------------------------------
class PodTracker:
    """Milestones per pod name, from one watch on the namespace (monotonic times)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.sent: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.kubelet_seen: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.running_obj: dict[str, dict[str, Any]] = {}
        self.running_wall: dict[str, float] = {}
        self.gone: set[str] = set()
        self.live: set[str] = set()
        self.uids: set[str] = set()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self.watch_restarts = 0

    def _see(self, typ: str, pod: dict[str, Any]) -> None:
        now = time.monotonic()
        name = (pod.get("metadata") or {}).get("name") or ""
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self.uids.add(uid)
        if typ == "DELETED":
            self.live.discard(name)
            self.gone.add(name)
            return
        self.live.add(name)
        status = pod.get("status") or {}
        if (pod.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(name, now)
        if status.get("startTime"):
            self.kubelet_seen.setdefault(name, now)
        if status.get("phase") == "Running" and name not in self.running:
            self.running[name] = now
            self.running_wall[name] = time.time()
            self.running_obj[name] = pod
            fut = self._waiters.get(name)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def run(self, rv: str) -> None:
        while True:
            try:
                async with contextlib.aclosing(self.client.watch(PODS, NS, resource_version=rv,
                                                                  timeout_seconds=3600)) as events:
                    async for typ, obj in events:
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if typ != "BOOKMARK":
                            self._see(typ, obj)
            except Expired:
                raise
            except ClientError:
                self.watch_restarts += 1
                await asyncio.sleep(0.2)

    def waiter(self, name: str) -> asyncio.Future[None]:
        fut = self._waiters.get(name)
        if fut is None:
            fut = self._waiters[name] = asyncio.get_running_loop().create_future()
            if name in self.running:
                fut.set_result(None)
        return fut

    def latencies(self, names: list[str]) -> dict[str, Any]:
        """Watch-side latency and its breakdown, plus the in-status view, for ``names``."""
        run = [self.running[n] - self.sent[n] for n in names if n in self.running]
        out: dict[str, Any] = {"create_to_running_ms": summary_ms(run)}
        out["breakdown_ms"] = {
            "sent_to_create_answered": summary_ms([self.answered[n] - self.sent[n] for n in names
                                                   if n in self.answered]),
            "sent_to_bound": summary_ms([self.bound[n] - self.sent[n] for n in names if n in self.bound]),
            "bound_to_first_kubelet_status": summary_ms(
                [self.kubelet_seen[n] - self.bound[n] for n in names if n in self.kubelet_seen and n in self.bound]),
            "first_kubelet_status_to_running": summary_ms(
                [self.running[n] - self.kubelet_seen[n] for n in names if n in self.running and n in self.kubelet_seen]),
        }
        # the in-status view (RFC 3339 timestamps: whole seconds)
        start_minus_created, started_minus_created, started_minus_start, seen_minus_created = [], [], [], []
        fractional = False
        for n in names:
            pod = self.running_obj.get(n)
            if not pod:
                continue
            created = (pod.get("metadata") or {}).get("creationTimestamp")
            st = pod.get("status") or {}
            fractional = fractional or any("." in (s or "") for s in (created, st.get("startTime")))
            c, s = parse_time(created), parse_time(st.get("startTime"))
            started = [parse_time(((cs.get("state") or {}).get("running") or {}).get("startedAt"))
                       for cs in st.get("containerStatuses") or ()]
            last = max((x for x in started if x is not None), default=None)
            if c is not None and s is not None:
                start_minus_created.append(s - c)
            if c is not None and last is not None:
                started_minus_created.append(last - c)
            if s is not None and last is not None:
                started_minus_start.append(last - s)
            if c is not None:
                seen_minus_created.append(self.running_wall[n] - c)
        out["in_status_ms"] = {
            "timestamp_resolution": "sub-second" if fractional else "1 s",
            "startTime_minus_creationTimestamp": summary_ms(start_minus_created),
            "startedAt_minus_creationTimestamp": summary_ms(started_minus_created),
            "startedAt_minus_startTime": summary_ms(started_minus_start),
            "watch_running_minus_creationTimestamp": summary_ms(seen_minus_created),
        }
        return out


# ------------------------------------------------------------------------------------------------
# phases
# ------------------------------------------------------------------------------------------------
async def wait_for(cond: Any, timeout: float, cluster: NodeCluster, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = cond()
            if asyncio.iscoroutine(last):
                last = await last
        except ClientError as e:
            last = None
            err: Any = e
        else:
            err = None
        if last:
            return last
        cluster.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what} (last error: {err!r})")
        await asyncio.sleep(interval)


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def wait_node(client: ApiClient, cluster: NodeCluster) -> dict[str, Any]:
    async def ready_node() -> dict[str, Any] | None:
        items, _ = await client.list_all(NODES)
        for n in items:
            if is_ready(n) and (cluster.runtime != "runc" or (n.get("spec") or {}).get("podCIDR")):
                return n
        return None

    node: dict[str, Any] = await wait_for(ready_node, 120, cluster, "a Ready node with a pod CIDR", 0.5)
    return node


async def prepare_namespace(client: ApiClient, cluster: NodeCluster) -> None:
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})

    async def sa() -> bool:
        try:
            await client.get(SERVICEACCOUNTS, "default", NS)
            return True
        except NotFound:
            return False

    await wait_for(sa, 60, cluster, "the default ServiceAccount", 0.2)


async def create_pod(client: ApiClient, tracker: PodTracker, name: str) -> None:
    tracker.sent[name] = time.monotonic()
    await client.create(PODS, pod_manifest(name), NS)
    tracker.answered[name] = time.monotonic()


async def wait_running(tracker: PodTracker, cluster: NodeCluster, client: ApiClient, names: list[str],
                       timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                pending = [tracker.waiter(n) for n in names if n not in tracker.running]
                if not pending:
                    return
                done, _ = await asyncio.wait(pending, timeout=2.0)
                cluster.check()
    except TimeoutError:
        missing = [n for n in names if n not in tracker.running]
        states = {}
        for n in missing[:5]:
            with contextlib.suppress(ClientError):
                p = await client.get(PODS, n, NS)
                states[n] = {"phase": (p.get("status") or {}).get("phase"),
                             "containerStatuses": (p.get("status") or {}).get("containerStatuses")}
        raise TimeoutError(f"{len(missing)} pods not Running after {timeout}s: {states}") from None


async def create_pods(client: ApiClient, tracker: PodTracker, cluster: NodeCluster, names: list[str],
                      batch: int, mode: str, timeout: float) -> list[list[str]]:
    """Create ``names``: ``batch`` mode = groups of ``batch`` created concurrently, each group
    waited for (all Running) before the next; ``window`` mode = at most ``batch`` not yet Running
    at any time. Returns the groups (one per batch; one group in window mode)."""
    if mode == "batch":
        groups = [names[i:i + batch] for i in range(0, len(names), batch)]
        for g in groups:
            await asyncio.gather(*(create_pod(client, tracker, n) for n in g))
            await wait_running(tracker, cluster, client, g, timeout)
        return groups
    sem = asyncio.Semaphore(batch)

    async def one(n: str) -> None:
        async with sem:
            await create_pod(client, tracker, n)
            await wait_running(tracker, cluster, client, [n], timeout)

    await asyncio.gather(*(one(n) for n in names))
    return [names]


async def delete_all_pods(client: ApiClient, cluster: NodeCluster, timeout: float) -> dict[str, float]:
    """Delete the pods (graceful) and wait until the API has none and the kubelet has released
    them on the node: no sandbox records, no mounts under ``DATA/kubelet/pods``."""
    from kybernetes.kubelet.runtime import linux

    t0 = time.monotonic()
    await client.delete_collection(PODS, NS)

    async def gone() -> bool:
        return not (await client.list(PODS, NS, limit=1)).get("items")

    await wait_for(gone, timeout, cluster, "pods deleted", 0.5)
    t_api = time.monotonic() - t0
    sandboxes = cluster.kubelet_dir / "runtime" / "sandboxes"

    def released() -> bool:
        return not (sandboxes.is_dir() and any(sandboxes.iterdir())) and not linux.mountpoints_under(
            str(cluster.kubelet_dir / "pods"))

    out = {"api_seconds": round(t_api, 2)}
    try:
        await wait_for(lambda: asyncio.to_thread(released), 90, cluster, "the kubelet to release the pods", 0.5)
        out["node_released_seconds"] = round(time.monotonic() - t0, 2)
    except TimeoutError:
        out["node_released_seconds"] = -1.0   # the forced clean-up does the rest
    return out


def memory(cluster: NodeCluster) -> dict[str, Any]:
    kpid = cluster.pids["kubelet"]
    return {"kubelet_rss_mb": rss_mb(kpid), "kubelet_pss_mb": pss_mb(kpid),
            "kubelet_threads": len(list(Path(f"/proc/{kpid}/task").iterdir())),
            "shims": shim_totals(cluster.kubelet_dir / "runtime"),
            "other_components_rss_mb": {n: rss_mb(p) for n, p in cluster.pids.items() if n != "kubelet"}}


async def idle_cpu(cluster: NodeCluster, window: float) -> dict[str, Any]:
    kpid = cluster.pids["kubelet"]
    rt = cluster.kubelet_dir / "runtime"
    la0 = loadavg()
    k0, kl0, s0 = cpu_seconds(kpid), thread_cpu_seconds(kpid, kpid), shim_cpu(rt)
    others0 = {n: cpu_seconds(p) for n, p in cluster.pids.items() if n != "kubelet"}
    t0 = time.monotonic()
    await asyncio.sleep(window)
    span = time.monotonic() - t0
    cluster.check()
    return {"window_s": round(span, 1),
            "kubelet_cpu_percent": round(100 * (cpu_seconds(kpid) - k0) / span, 2),
            "kubelet_loop_thread_cpu_percent": round(100 * (thread_cpu_seconds(kpid, kpid) - kl0) / span, 2),
            "shims_total_cpu_percent": round(100 * (shim_cpu(rt) - s0) / span, 2),
            "other_components_cpu_percent": {n: round(100 * (cpu_seconds(p) - others0[n]) / span, 2)
                                             for n, p in cluster.pids.items() if n != "kubelet"},
            "loadavg_before_after": [la0, loadavg()]}


async def bench_runtime(runtime: str, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"kyb-bench-node-{runtime}-"))
    cluster = NodeCluster(work, runtime, verbose=args.verbose)
    out: dict[str, Any] = {"runtime": runtime, "loadavg_at_start": loadavg(), "mode": args.mode,
                           "pods": args.pods, "batch": args.batch}
    bridge_before = bridge_exists()
    out["bridge_existed_before"] = bridge_before
    pod_cidr: str | None = None
    tracker: PodTracker | None = None
    client: ApiClient | None = None
    sandbox_ids: set[str] = set()
    try:
        out["image_build_seconds"] = await asyncio.to_thread(cluster.build_image)
        t0 = time.monotonic()
        await asyncio.to_thread(cluster.start)
        client = ApiClient.from_kubeconfig(cluster.data / "admin.kubeconfig", timeout=60.0,
                                           retry=RetryPolicy(attempts=8, initial=0.2))
        node = await wait_node(client, cluster)
        pod_cidr = (node.get("spec") or {}).get("podCIDR")
        out["seconds_to_node_ready"] = round(time.monotonic() - t0, 2)
        out["node"] = node["metadata"]["name"]
        await prepare_namespace(client, cluster)
        out["kubelet_rss_mb_no_pods"] = rss_mb(cluster.pids["kubelet"])

        rv = (await client.list(PODS, NS, limit=1))["metadata"]["resourceVersion"]
        tracker = PodTracker(client)
        watch = asyncio.create_task(tracker.run(rv))
        try:
            # warm-up: first pod (bridge, compiled shim) and `batch` open connections
            await asyncio.gather(*(client.list(PODS, NS, limit=1) for _ in range(args.batch)))
            await create_pods(client, tracker, cluster, ["warmup"], 1, "batch", args.timeout)
            out["warmup_pod_ms"] = round(1000 * (tracker.running["warmup"] - tracker.sent["warmup"]), 1)
            await client.delete(PODS, "warmup", NS)
            await wait_for(lambda: "warmup" in tracker.gone, 60, cluster, "warm-up pod deleted", 0.1)

            names = [f"p-{i:03d}" for i in range(args.pods)]
            first = names[:min(args.rss_pods, args.pods)] if args.rss_pods else names
            rest = names[len(first):]
            kpid = cluster.pids["kubelet"]
            cpu0 = {n: cpu_seconds(p) for n, p in cluster.pids.items()}
            m0, kc0, d0 = machine_cpu(), children_cpu_seconds(kpid), _self_cpu()
            t_ramp = time.monotonic()
            groups = await create_pods(client, tracker, cluster, first, args.batch, args.mode, args.timeout)
            ramp1 = time.monotonic() - t_ramp
            m1, kc1, d1 = machine_cpu(), children_cpu_seconds(kpid), _self_cpu()
            if args.rss_pods:
                await asyncio.sleep(args.settle)
                out[f"at_{len(first)}_pods"] = {"memory": memory(cluster),
                                                "idle": await idle_cpu(cluster, args.idle_window)}
            t_ramp2 = time.monotonic()
            cpu1 = {n: cpu_seconds(p) for n, p in cluster.pids.items()}
            m2, kc2, d2 = machine_cpu(), children_cpu_seconds(kpid), _self_cpu()
            if rest:
                groups += await create_pods(client, tracker, cluster, rest, args.batch, args.mode, args.timeout)
            ramp2 = time.monotonic() - t_ramp2
            cpu2 = {n: cpu_seconds(p) for n, p in cluster.pids.items()}
            m3, kc3, d3 = machine_cpu(), children_cpu_seconds(kpid), _self_cpu()
            out["latency"] = tracker.latencies(names)
            out["per_batch_ms"] = [[round(pct([1000 * (tracker.running[n] - tracker.sent[n]) for n in g], 50)),
                                    round(max(1000 * (tracker.running[n] - tracker.sent[n]) for n in g))]
                                   for g in groups] if args.mode == "batch" else []
            ramp = ramp1 + ramp2
            out["ramp_seconds"] = round(ramp, 2)
            out["ramp_pods_per_second"] = round(len(names) / ramp, 2) if ramp else 0.0
            out["ramp_cpu_cores"] = {n: round(((cpu1[n] - cpu0[n]) + (cpu2[n] - cpu1[n])) / ramp, 2)
                                     for n in cpu0} if ramp else {}
            if ramp:
                busy = (m1[0] - m0[0]) + (m3[0] - m2[0])
                total = (m1[1] - m0[1]) + (m3[1] - m2[1])
                out["ramp_cpu_cores"]["kubelet_helper_programs"] = round(((kc1 - kc0) + (kc3 - kc2)) / ramp, 2)
                out["ramp_machine_cpu_busy_fraction"] = round(busy / total, 2) if total else 0.0
                out["ramp_machine_cpu_seconds_per_pod"] = round(busy / len(names), 3)
                out["ramp_cpu_ms_per_pod"] = {
                    "kubelet": round(1000 * ((cpu1["kubelet"] - cpu0["kubelet"]) + (cpu2["kubelet"] - cpu1["kubelet"]))
                                     / len(names), 1),
                    "kubelet_helper_programs": round(1000 * ((kc1 - kc0) + (kc3 - kc2)) / len(names), 1),
                    "apiserver": round(1000 * ((cpu1["apiserver"] - cpu0["apiserver"])
                                               + (cpu2["apiserver"] - cpu1["apiserver"])) / len(names), 1),
                    # this benchmark's own process: the creates and the watch it measures with
                    "bench_driver": round(1000 * ((d1 - d0) + (d3 - d2)) / len(names), 1)}
            out["loadavg_after_ramp"] = loadavg()
            await asyncio.sleep(args.settle)
            out[f"at_{len(names)}_pods"] = {"memory": memory(cluster)}
            out["watch_restarts"] = tracker.watch_restarts
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch
    except BaseException as e:
        out["error"] = repr(e)
        out["log_tail"] = cluster.log.read_text()[-3000:] if cluster.log.exists() else ""
        raise
    finally:
        cleanup: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            for d in (cluster.kubelet_dir / "runtime" / "sandboxes").iterdir():
                sandbox_ids.add(d.name)
        if client is not None:
            try:
                if cluster.proc is not None and cluster.proc.poll() is None:
                    cleanup["pods_deleted"] = await delete_all_pods(client, cluster, 180)
            except Exception as e:  # noqa: BLE001 - the forced clean-up below still runs
                cleanup["delete_error"] = repr(e)
            finally:
                await client.close()
        await asyncio.to_thread(cluster.stop)
        uids = set(tracker.uids) if tracker else set()
        cleanup["forced"] = await asyncio.to_thread(
            force_cleanup, cluster.kubelet_dir, runtime, pod_cidr=pod_cidr, pod_uids=uids,
            remove_bridge=not bridge_before)
        left = await asyncio.to_thread(leftovers, work, sandbox_ids)
        cleanup["leftovers"] = {k: v for k, v in left.items() if v}
        if args.keep or left["mounts"]:
            cleanup["work_dir_kept"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        cleanup["bridge_exists_after"] = bridge_exists()
        out["cleanup"] = cleanup
        if "error" in out:
            print(json.dumps(out, indent=2), file=sys.stderr)
    return out


# ------------------------------------------------------------------------------------------------
# fake runtime (bench/fake_kubelet.py) plus RSS sampling of its kubelet
# ------------------------------------------------------------------------------------------------
def fake_kubelet_child() -> int | None:
    """The fake kubelet ``bench/fake_kubelet.py`` started: our child (by parent PID) running
    ``-m kybernetes.kubelet.fake``."""
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            parent = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent != me:
                continue
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if b"kybernetes.kubelet.fake" in argv[1:4]:
            return int(d.name)
    return None


async def bench_fake(args: argparse.Namespace) -> dict[str, Any]:
    from bench import fake_kubelet

    samples: list[float] = []
    last: dict[str, Any] = {}

    async def sampler() -> None:
        while True:
            pid = fake_kubelet_child()
            if pid:
                samples.append(rss_mb(pid))
                last["cpu_s"] = cpu_seconds(pid)
            await asyncio.sleep(2.0)

    task = asyncio.create_task(sampler())
    la0 = loadavg()
    try:
        res = await fake_kubelet.run(argparse.Namespace(nodes=args.fake_nodes, pods=0, window=args.fake_window))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    res["loadavg_at_start"] = la0
    res["loadavg_at_end"] = loadavg()
    res["kubelet_rss_mb_peak_sampled"] = max(samples, default=0.0)
    res["kubelet_rss_mb_last_sample"] = samples[-1] if samples else 0.0
    res["kubelet_cpu_seconds_total"] = round(last.get("cpu_s", 0.0), 1)
    return res


# ------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
                    "cpu_model": _cpu_model()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_at_start": loadavg(),
        "targets": {"startup_p50_ms": 300, "startup_p99_ms": 1000, "kubelet_rss_mb": 100,
                    "kubelet_idle_cpu_percent": 2, "fake_cpu_percent": 25, "fake_rss_mb": 500},
    }
    runtimes = ["runc", "process"] if args.runtime == "both" else [args.runtime]
    for rt in runtimes:
        if rt == "runc" and os.geteuid() != 0:
            result[rt] = {"skipped": "the runc runtime needs root"}
            continue
        try:
            result[rt] = await bench_runtime(rt, args)
        except Exception as e:  # noqa: BLE001 - report it and go on with the next runtime
            result[rt] = {"error": repr(e)}
    if not args.skip_fake:
        try:
            result["fake"] = await bench_fake(args)
        except Exception as e:  # noqa: BLE001
            result["fake"] = {"error": repr(e)}
    return result


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runtime", choices=("runc", "process", "both"), default="both")
    p.add_argument("--pods", type=int, default=100, help="pods for the start-up latency (default 100)")
    p.add_argument("--batch", type=int, default=10, help="pods created at a time (default 10)")
    p.add_argument("--mode", choices=("batch", "window"), default="batch",
                   help="batch: groups of --batch, each waited for; window: --batch in flight")
    p.add_argument("--rss-pods", type=int, default=50,
                   help="measure memory and idle CPU when this many pods run (0: skip)")
    p.add_argument("--idle-window", type=float, default=30.0, help="seconds of idle CPU measurement")
    p.add_argument("--settle", type=float, default=5.0, help="seconds to wait before measuring memory")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds a batch may take to be Running")
    p.add_argument("--skip-fake", action="store_true", help="skip the fake-runtime measurement")
    p.add_argument("--fake-nodes", type=int, default=1000)
    p.add_argument("--fake-window", type=float, default=60.0, help="steady-state window (seconds)")
    p.add_argument("--verbose", action="store_true", help="run the cluster with debug logging (-v)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
