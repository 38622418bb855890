"""Resource usage of the node, its pods and their containers, in the kubelet Summary API shape.

The kubelet serves this at ``/stats/summary``; the API server's ``metrics.k8s.io`` endpoint reads it
from every node (as metrics-server does) so that ``kubectl top`` and the HPA work.

Where the numbers come from:

* node CPU: ``/proc/stat`` (busy jiffies of all cores, turned into cumulative core-nanoseconds);
* node memory: the root memory cgroup (``usage_in_bytes`` minus ``total_inactive_file`` is the
  working set, as cAdvisor reports for the root container) when it is readable, otherwise
  ``/proc/meminfo`` (``MemTotal - MemAvailable``);
* containers: ``runtime.container_stats(id)`` (cumulative CPU and memory from the cgroup).

CPU *rates* (``usageNanoCores``) need two samples. A background task (``run``) samples the node and
every running container every ``interval`` seconds and keeps the last two samples of each; a rate
is the difference of cumulative CPU time over those two. ``summary`` itself only lists containers
and formats what is kept: it samples on demand only what has never been sampled (or whose samples
are stale because the sampler is not running), so serving a request stays cheap. A container seen
once has no rate yet; it then reports its average since it started.

The arithmetic (``cpu_rate``, ``parse_*``, ``node_memory``) is pure and unit-tested.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runtime.base import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    Runtime,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DEFAULT_INTERVAL = 10.0  # seconds between background samples (cAdvisor housekeeping is 10-15 s)
_CPU_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (guest is inside user)


# --------------------------------------------------------------------------- pure arithmetic
@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU time (nanoseconds of CPU across all cores) read at ``timestamp`` (unix s)."""

    timestamp: float
    usage_ns: int


def cpu_rate(prev: CpuSample | None, cur: CpuSample) -> int | None:
    """Average usage between two samples, in nanocores (1e9 = one full core); None if unknown.

    Unknown when there is no earlier sample, when time did not move forward, or when the counter
    went backwards (a reset: a different cgroup behind the same name)."""
    if prev is None:
        return None
    dt_s = cur.timestamp - prev.timestamp
    du = cur.usage_ns - prev.usage_ns
    if dt_s <= 0 or du < 0:
        return None
    return round(du / dt_s)


def cpu_rate_since_start(cur: CpuSample, started_at: float | None, *, min_seconds: float = 0.5) -> int | None:
    """Average usage from ``started_at`` to the sample, for a container sampled only once."""
    if not started_at or cur.timestamp - started_at < min_seconds or cur.usage_ns < 0:
        return None
    return round(cur.usage_ns / (cur.timestamp - started_at))


def parse_proc_stat(text: str, clock_ticks: int = 100) -> tuple[int, int | None]:
    """``/proc/stat`` -> (cumulative busy CPU time of all cores in ns, boot time in unix s).

    Busy time is user + nice + system + irq + softirq + steal; idle and iowait are not usage."""
    busy_ns = 0
    btime: int | None = None
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(x) for x in line.split()[1:]]
            ticks = sum(fields[i] for i in _CPU_BUSY_FIELDS if i < len(fields))
            busy_ns = ticks * 1_000_000_000 // clock_ticks
        elif line.startswith("btime "):
            btime = int(line.split()[1])
    return busy_ns, btime


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` -> {field: bytes} (the kernel reports kB = KiB)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        out[key.strip()] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return out


def parse_flat_keyed(text: str) -> dict[str, int]:
    """A cgroup ``memory.stat``-style file (``key value`` per line) -> dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


@dataclass(frozen=True)
class MemoryUsage:
    working_set_bytes: int
    usage_bytes: int
    available_bytes: int | None = None
    rss_bytes: int | None = None
    page_faults: int | None = None
    major_page_faults: int | None = None


def node_memory(meminfo: Mapping[str, int], cgroup_usage: int | None = None,
                cgroup_stat: Mapping[str, int] | None = None) -> MemoryUsage:
    """The node's memory the way cAdvisor reports the root container.

    With the root memory cgroup: working set = usage - total_inactive_file (never below 0),
    available = MemTotal - working set. Without it: working set = MemTotal - MemAvailable,
    usage = MemTotal - MemFree, available = MemAvailable."""
    total = meminfo.get("MemTotal", 0)
    if cgroup_usage is not None and cgroup_stat is not None:
        inactive = cgroup_stat.get("total_inactive_file", cgroup_stat.get("inactive_file", 0))
        ws = max(0, cgroup_usage - inactive)
        return MemoryUsage(
            working_set_bytes=ws,
            usage_bytes=cgroup_usage,
            available_bytes=max(0, total - ws) if total else None,
            rss_bytes=cgroup_stat.get("total_rss", cgroup_stat.get("rss")),
            page_faults=cgroup_stat.get("total_pgfault", cgroup_stat.get("pgfault")),
            major_page_faults=cgroup_stat.get("total_pgmajfault", cgroup_stat.get("pgmajfault")),
        )
    available = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    return MemoryUsage(
        working_set_bytes=max(0, total - available),
        usage_bytes=max(0, total - meminfo.get("MemFree", 0)),
        available_bytes=available,
    )


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cpu_json(prev: CpuSample | None, cur: CpuSample, started_at: float | None = None) -> Obj:
    """The Summary API ``CPUStats`` of a series (``usageNanoCores`` left out when unknown)."""
    out: Obj = {"time": rfc3339(cur.timestamp)}
    rate = cpu_rate(prev, cur)
    if rate is None and prev is None:
        rate = cpu_rate_since_start(cur, started_at)
    if rate is not None:
        out["usageNanoCores"] = rate
    out["usageCoreNanoSeconds"] = cur.usage_ns
    return out


def memory_json(ts: float, mem: MemoryUsage) -> Obj:
    out: Obj = {"time": rfc3339(ts)}
    if mem.available_bytes is not None:
        out["availableBytes"] = mem.available_bytes
    out["usageBytes"] = mem.usage_bytes
    out["workingSetBytes"] = mem.working_set_bytes
    for key, v in (("rssBytes", mem.rss_bytes), ("pageFaults", mem.page_faults),
                   ("majorPageFaults", mem.major_page_faults)):
        if v is not None:
            out[key] = v
    return out


def sum_pod(containers: list[Obj]) -> tuple[Obj | None, Obj | None]:
    """Pod-level CPU and memory: the sums over its containers (rate only if every one has it)."""
    cpus = [c["cpu"] for c in containers if c.get("cpu")]
    mems = [c["memory"] for c in containers if c.get("memory")]
    cpu: Obj | None = None
    if cpus:
        cpu = {"time": max(c["time"] for c in cpus)}
        if all("usageNanoCores" in c for c in cpus):
            cpu["usageNanoCores"] = sum(c["usageNanoCores"] for c in cpus)
        cpu["usageCoreNanoSeconds"] = sum(c.get("usageCoreNanoSeconds", 0) for c in cpus)
    mem: Obj | None = None
    if mems:
        mem = {"time": max(m["time"] for m in mems),
               "usageBytes": sum(m.get("usageBytes", 0) for m in mems),
               "workingSetBytes": sum(m.get("workingSetBytes", 0) for m in mems)}
    return cpu, mem


# --------------------------------------------------------------------------- kept samples
class _Series:
    """The last two samples of one container (or of the node)."""

    __slots__ = ("prev", "cur", "prev_cpu", "cur_cpu")

    def __init__(self) -> None:
        self.prev: Any = None
        self.cur: Any = None
        self.prev_cpu: CpuSample | None = None
        self.cur_cpu: CpuSample | None = None

    def add(self, cpu: CpuSample, payload: Any) -> None:
        if self.cur_cpu is not None and cpu.timestamp <= self.cur_cpu.timestamp:
            return  # an older or duplicate reading (sampler and on-demand raced)
        self.prev, self.prev_cpu = self.cur, self.cur_cpu
        self.cur, self.cur_cpu = payload, cpu


@dataclass(frozen=True)
class NodeReading:
    timestamp: float
    cpu_ns: int
    memory: MemoryUsage
    boot_time: int | None


def read_node(proc_root: str | Path = "/proc", cgroup_root: str | Path = "/sys/fs/cgroup",
              clock_ticks: int | None = None) -> NodeReading:
    """Read the node's CPU and memory (blocking: run it in a thread)."""
    proc = Path(proc_root)
    ticks = clock_ticks or os.sysconf("SC_CLK_TCK")
    now = time.time()
    cpu_ns, btime = parse_proc_stat((proc / "stat").read_text(), ticks)
    meminfo = parse_meminfo((proc / "meminfo").read_text())
    usage: int | None = None
    stat: dict[str, int] | None = None
    memcg = Path(cgroup_root) / "memory"
    try:  # cgroup v1 root memory cgroup; cgroup v2 has no usage file at the root
        usage = int((memcg / "memory.usage_in_bytes").read_text().strip())
        stat = parse_flat_keyed((memcg / "memory.stat").read_text())
    except (OSError, ValueError):
        usage, stat = None, None
    return NodeReading(now, cpu_ns, node_memory(meminfo, usage, stat), btime)


# --------------------------------------------------------------------------- the provider
class StatsProvider:
    """Keeps recent samples and renders the Summary API document.

    ``pods()`` returns the pod objects the kubelet runs (dicts); only pods with running
    containers appear in the summary. Start ``run()`` under the kubelet's supervisor."""

    def __init__(self, runtime: Runtime, pods: Callable[[], list[Obj]], node_name: str, *,
                 interval: float = DEFAULT_INTERVAL, proc_root: str | Path = "/proc",
                 cgroup_root: str | Path = "/sys/fs/cgroup", concurrency: int = 8,
                 node_reader: Callable[[], NodeReading] | None = None) -> None:
        self.runtime = runtime
        self.pods = pods
        self.node_name = node_name
        self.interval = interval
        self._read_node = node_reader or (lambda: read_node(proc_root, cgroup_root))
        self._sem = asyncio.Semaphore(concurrency)
        self._node = _Series()
        self._containers: dict[str, _Series] = {}
        self.samples_taken = 0

    # -- sampling ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Sample everything every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.sample_all()
            except Exception:  # noqa: BLE001 - a bad round must not stop sampling
                log.exception("stats sampling failed")
            await asyncio.sleep(self.interval)

    async def sample_all(self) -> None:
        """One round: the node and every running container; forget containers that are gone."""
        running = await self._running_containers()
        await asyncio.gather(self._sample_node(), *(self._sample_container(c.id) for c in running))
        alive = {c.id for c in running}
        for cid in list(self._containers):
            if cid not in alive:
                del self._containers[cid]

    async def _sample_node(self) -> None:
        try:
            r = await asyncio.to_thread(self._read_node)
        except OSError as e:
            log.warning("cannot read node stats: %s", e)
            return
        self._node.add(CpuSample(r.timestamp, r.cpu_ns), r)

    async def _sample_container(self, cid: str) -> None:
        async with self._sem:
            try:
                s = await self.runtime.container_stats(cid)
            except Exception as e:  # noqa: BLE001 - a container may exit between list and read
                log.debug("no stats for container %s: %s", cid, e)
                return
        self.samples_taken += 1
        self._containers.setdefault(cid, _Series()).add(CpuSample(s.timestamp, s.cpu_usage_ns), s)

    async def _running_containers(self) -> list[ContainerStatus]:
        return [c for c in await self.runtime.list_containers() if c.state == ContainerState.RUNNING]

    def _stale(self, series: _Series | None, now: float) -> bool:
        return series is None or series.cur_cpu is None or now - series.cur_cpu.timestamp > 2 * self.interval

    # -- the document -----------------------------------------------------------------------
    async def summary(self) -> Obj:
        """The Summary API document (``/stats/summary``)."""
        now = time.time()
        running = await self._running_containers()
        todo = [self._sample_container(c.id) for c in running if self._stale(self._containers.get(c.id), now)]
        if self._stale(self._node, now):
            todo.append(self._sample_node())
        if todo:
            await asyncio.gather(*todo)
        return self.render(running)

    def render(self, running: Iterable[ContainerStatus]) -> Obj:
        """Format what is kept for ``running`` containers and the node (no I/O)."""
        node: Obj = {"nodeName": self.node_name}
        reading: NodeReading | None = self._node.cur
        if reading is not None and self._node.cur_cpu is not None:
            if reading.boot_time:
                node["startTime"] = rfc3339(reading.boot_time)
            node["cpu"] = cpu_json(self._node.prev_cpu, self._node.cur_cpu)
            node["memory"] = memory_json(reading.timestamp, reading.memory)
        by_pod: dict[str, list[ContainerStatus]] = {}
        for c in running:
            uid = c.labels.get(LABEL_POD_UID)
            if uid:
                by_pod.setdefault(uid, []).append(c)
        pods_out: list[Obj] = []
        for pod in self.pods():
            md = pod.get("metadata") or {}
            containers = by_pod.get(md.get("uid", ""))
            if not containers:
                continue
            entry = self._pod_entry(pod, containers)
            if entry is not None:
                pods_out.append(entry)
        return {"node": node, "pods": pods_out}

    def _pod_entry(self, pod: Obj, containers: list[ContainerStatus]) -> Obj | None:
        md = pod.get("metadata") or {}
        latest: dict[str, ContainerStatus] = {}
        for c in containers:  # one per name: the newest attempt
            name = c.labels.get(LABEL_CONTAINER_NAME) or c.name
            if name not in latest or c.created_at > latest[name].created_at:
                latest[name] = c
        out_containers: list[Obj] = []
        for name in sorted(latest):
            c = latest[name]
            series = self._containers.get(c.id)
            if series is None or series.cur is None or series.cur_cpu is None:
                continue
            s: ContainerStats = series.cur
            entry: Obj = {"name": name}
            if c.started_at:
                entry["startTime"] = rfc3339(c.started_at)
            entry["cpu"] = cpu_json(series.prev_cpu, series.cur_cpu, c.started_at)
            entry["memory"] = memory_json(s.timestamp, MemoryUsage(
                working_set_bytes=s.memory_working_set_bytes, usage_bytes=s.memory_usage_bytes))
            out_containers.append(entry)
        if not out_containers:
            return None
        out: Obj = {"podRef": {"name": md.get("name", ""), "namespace": md.get("namespace", ""),
                               "uid": md.get("uid", "")}}
        start = (pod.get("status") or {}).get("startTime")
        if start:
            out["startTime"] = start
        out["containers"] = out_containers
        cpu, mem = sum_pod(out_containers)
        if cpu:
            out["cpu"] = cpu
        if mem:
            out["memory"] = mem
        return out

    def statistics(self) -> dict[str, int]:
        return {"containers_tracked": len(self._containers), "samples_taken": self.samples_taken}
