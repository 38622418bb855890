"""kubelet/stats.py: the rate arithmetic, /proc parsing, and the Summary document from samples."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kybernetes.kubelet import stats as st
from kybernetes.kubelet.runtime.base import (
    ContainerState,
    ContainerStats,
    ContainerStatus,
    labels_for,
)

GiB = 1024**3


# --------------------------------------------------------------------------- pure arithmetic
@pytest.mark.parametrize("prev,cur,want", [
    pytest.param(None, st.CpuSample(10.0, 5_000_000_000), None, id="no-previous-sample"),
    pytest.param(st.CpuSample(0.0, 0), st.CpuSample(10.0, 5_000_000_000), 500_000_000, id="half-core"),
    pytest.param(st.CpuSample(0.0, 0), st.CpuSample(2.0, 4_000_000_000), 2_000_000_000, id="two-cores"),
    pytest.param(st.CpuSample(5.0, 10), st.CpuSample(5.0, 20), None, id="time-did-not-move"),
    pytest.param(st.CpuSample(5.0, 10), st.CpuSample(4.0, 20), None, id="time-went-back"),
    pytest.param(st.CpuSample(0.0, 9_000), st.CpuSample(1.0, 1_000), None, id="counter-reset"),
    pytest.param(st.CpuSample(0.0, 100), st.CpuSample(3.0, 100), 0, id="idle"),
    pytest.param(st.CpuSample(0.0, 0), st.CpuSample(3.0, 1_000_000_000), 333_333_333, id="rounded"),
])
def test_cpu_rate(prev: st.CpuSample | None, cur: st.CpuSample, want: int | None) -> None:
    assert st.cpu_rate(prev, cur) == want


@pytest.mark.parametrize("started,want", [
    pytest.param(None, None, id="unknown-start"),
    pytest.param(99.9, None, id="too-recent"),
    pytest.param(90.0, 100_000_000, id="average-since-start"),
])
def test_cpu_rate_since_start(started: float | None, want: int | None) -> None:
    assert st.cpu_rate_since_start(st.CpuSample(100.0, 1_000_000_000), started) == want


PROC_STAT = """cpu  1000 50 300 90000 400 10 20 5 7 0
cpu0 500 25 150 45000 200 5 10 3 0 0
intr 123 0 0
ctxt 4567
btime 1700000000
processes 42
"""


def test_parse_proc_stat() -> None:
    busy, btime = st.parse_proc_stat(PROC_STAT, clock_ticks=100)
    # user+nice+system+irq+softirq+steal = 1000+50+300+10+20+5 jiffies of 10 ms
    assert busy == 1385 * 10_000_000
    assert btime == 1700000000


def test_parse_meminfo_and_memory_stat() -> None:
    mi = st.parse_meminfo("MemTotal:  4000 kB\nMemFree: 1000 kB\nMemAvailable: 3000 kB\nHugePages_Total: 0\n")
    assert mi == {"MemTotal": 4000 * 1024, "MemFree": 1000 * 1024, "MemAvailable": 3000 * 1024,
                  "HugePages_Total": 0}
    assert st.parse_flat_keyed("cache 5\ntotal_inactive_file 7\nbad\n") == {"cache": 5, "total_inactive_file": 7}


def test_node_memory_from_root_cgroup() -> None:
    mi = {"MemTotal": 8 * GiB, "MemFree": 4 * GiB, "MemAvailable": 6 * GiB}
    m = st.node_memory(mi, cgroup_usage=3 * GiB,
                       cgroup_stat={"total_inactive_file": 1 * GiB, "total_rss": 512, "total_pgfault": 9, "total_pgmajfault": 1})
    assert m == st.MemoryUsage(working_set_bytes=2 * GiB, usage_bytes=3 * GiB, available_bytes=6 * GiB,
                               rss_bytes=512, page_faults=9, major_page_faults=1)


def test_node_memory_working_set_never_negative() -> None:
    m = st.node_memory({"MemTotal": GiB}, cgroup_usage=10, cgroup_stat={"total_inactive_file": 99})
    assert m.working_set_bytes == 0 and m.available_bytes == GiB


def test_node_memory_from_meminfo() -> None:
    m = st.node_memory({"MemTotal": 8 * GiB, "MemFree": 4 * GiB, "MemAvailable": 6 * GiB})
    assert (m.working_set_bytes, m.usage_bytes, m.available_bytes) == (2 * GiB, 4 * GiB, 6 * GiB)


def test_sum_pod_needs_every_rate() -> None:
    a = {"cpu": {"time": "2024-01-01T00:00:10Z", "usageNanoCores": 5, "usageCoreNanoSeconds": 50},
         "memory": {"time": "2024-01-01T00:00:10Z", "usageBytes": 3, "workingSetBytes": 2}}
    b = {"cpu": {"time": "2024-01-01T00:00:11Z", "usageNanoCores": 7, "usageCoreNanoSeconds": 70},
         "memory": {"time": "2024-01-01T00:00:11Z", "usageBytes": 30, "workingSetBytes": 20}}
    cpu, mem = st.sum_pod([a, b])
    assert cpu == {"time": "2024-01-01T00:00:11Z", "usageNanoCores": 12, "usageCoreNanoSeconds": 120}
    assert mem == {"time": "2024-01-01T00:00:11Z", "usageBytes": 33, "workingSetBytes": 22}
    c = {"cpu": {"time": "2024-01-01T00:00:09Z", "usageCoreNanoSeconds": 1}}
    cpu, _ = st.sum_pod([a, c])
    assert "usageNanoCores" not in cpu


def test_read_node_from_this_machine() -> None:
    r = st.read_node()
    assert r.cpu_ns > 0 and r.memory.working_set_bytes > 0 and r.boot_time
    assert r.memory.available_bytes is not None and r.memory.available_bytes > 0


# --------------------------------------------------------------------------- the provider
class StatsRuntime:
    """Just enough of a runtime: containers with scripted cumulative CPU / memory readings."""

    def __init__(self) -> None:
        self.containers: dict[str, ContainerStatus] = {}
        self.readings: dict[str, list[ContainerStats]] = {}
        self.reads: list[str] = []

    def add(self, cid: str, pod_uid: str, ns: str, pod: str, name: str, started: float,
            readings: list[tuple[float, int, int]], *, state: ContainerState = ContainerState.RUNNING) -> None:
        self.containers[cid] = ContainerStatus(
            id=cid, sandbox_id="sb-" + pod_uid, name=name, state=state,
            labels=dict(labels_for(pod_uid, ns, pod, name, 0)), created_at=started, started_at=started)
        self.readings[cid] = [ContainerStats(cid, t, cpu, ws, ws + 100) for t, cpu, ws in readings]

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return list(self.containers.values())

    async def container_stats(self, container_id: str) -> ContainerStats:
        self.reads.append(container_id)
        r = self.readings[container_id]
        return r.pop(0) if len(r) > 1 else r[0]


def node_reader(readings: list[tuple[float, int]]) -> Any:
    def read() -> st.NodeReading:
        t, cpu = readings.pop(0) if len(readings) > 1 else readings[0]
        return st.NodeReading(t, cpu, st.MemoryUsage(2 * GiB, 3 * GiB, 6 * GiB), 1_700_000_000)
    return read


def pod(uid: str, ns: str, name: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "namespace": ns, "name": name},
            "status": {"startTime": "2024-01-01T00:00:00Z"}}


async def test_summary_rates_from_the_last_two_samples() -> None:
    rt = StatsRuntime()
    rt.add("c1", "u1", "default", "web", "app", 1000.0, [(1010.0, 1_000_000_000, 10 * 1024), (1020.0, 3_000_000_000, 20 * 1024)])
    rt.add("c2", "u1", "default", "web", "sidecar", 1000.0, [(1010.0, 0, 1024), (1020.0, 500_000_000, 2048)])
    rt.add("c3", "u2", "other", "db", "db", 1000.0, [(1010.0, 0, 1)])
    rt.add("c4", "u3", "other", "gone", "x", 1000.0, [(1010.0, 0, 1)], state=ContainerState.EXITED)
    p = st.StatsProvider(rt, lambda: [pod("u1", "default", "web"), pod("u3", "other", "gone")], "node-a",
                         node_reader=node_reader([(1010.0, 10_000_000_000), (1020.0, 25_000_000_000)]))
    await p.sample_all()
    await p.sample_all()
    doc = p.render(await p._running_containers())
    node = doc["node"]
    assert node["nodeName"] == "node-a"
    assert node["cpu"] == {"time": st.rfc3339(1020.0), "usageNanoCores": 1_500_000_000,
                           "usageCoreNanoSeconds": 25_000_000_000}
    assert node["memory"]["workingSetBytes"] == 2 * GiB and node["memory"]["availableBytes"] == 6 * GiB
    assert node["startTime"] == "2023-11-14T22:13:20Z"
    # u2 has no pod object (not the kubelet's any more), u3 has no running container
    assert [p_["podRef"] for p_ in doc["pods"]] == [{"name": "web", "namespace": "default", "uid": "u1"}]
    web = doc["pods"][0]
    assert [c["name"] for c in web["containers"]] == ["app", "sidecar"]
    app = web["containers"][0]
    assert app["cpu"]["usageNanoCores"] == 200_000_000          # 2 s of CPU over 10 s
    assert app["memory"]["workingSetBytes"] == 20 * 1024 and app["memory"]["usageBytes"] == 20 * 1024 + 100
    assert web["cpu"]["usageNanoCores"] == 250_000_000
    assert web["memory"]["workingSetBytes"] == 22 * 1024
    assert web["startTime"] == "2024-01-01T00:00:00Z"


async def test_summary_samples_on_demand_only_what_was_never_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1011.0]
    monkeypatch.setattr(st.time, "time", lambda: now[0])
    rt = StatsRuntime()
    rt.add("c1", "u1", "default", "web", "app", 1000.0, [(1010.0, 1_000_000_000, 4096), (1020.0, 3_000_000_000, 8192)])
    p = st.StatsProvider(rt, lambda: [pod("u1", "default", "web")], "n",
                         node_reader=node_reader([(1010.0, 1), (1020.0, 2)]))
    doc = await p.summary()
    assert rt.reads == ["c1"]
    # one sample: the average since the container started (1 s of CPU in 10 s)
    assert doc["pods"][0]["containers"][0]["cpu"]["usageNanoCores"] == 100_000_000
    assert "usageNanoCores" not in doc["node"]["cpu"]
    doc = await p.summary()
    assert rt.reads == ["c1"], "a fresh sample is not read again per request"
    now[0] = 1050.0  # the sampler is not running: samples are stale, so read again
    doc = await p.summary()
    assert rt.reads == ["c1", "c1"]
    assert doc["pods"][0]["containers"][0]["cpu"]["usageNanoCores"] == 200_000_000
    assert doc["node"]["cpu"]["usageNanoCores"] == 0


async def test_sampler_forgets_removed_containers() -> None:
    rt = StatsRuntime()
    rt.add("c1", "u1", "default", "web", "app", 1000.0, [(1010.0, 1, 1)])
    p = st.StatsProvider(rt, lambda: [], "n", node_reader=node_reader([(1010.0, 1)]))
    await p.sample_all()
    assert p.statistics()["containers_tracked"] == 1
    del rt.containers["c1"]
    await p.sample_all()
    assert p.statistics()["containers_tracked"] == 0


async def test_run_samples_in_the_background() -> None:
    rt = StatsRuntime()
    rt.add("c1", "u1", "default", "web", "app", 1000.0, [(1010.0, 0, 1), (1011.0, 1_000_000_000, 1), (1012.0, 2_000_000_000, 1)])
    p = st.StatsProvider(rt, lambda: [pod("u1", "default", "web")], "n", interval=0.01,
                         node_reader=node_reader([(1010.0, 1), (1011.0, 2)]))
    task = asyncio.create_task(p.run())
    try:
        for _ in range(200):
            if len(rt.reads) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    doc = p.render(await p._running_containers())
    assert doc["pods"][0]["containers"][0]["cpu"]["usageNanoCores"] == 1_000_000_000


async def test_summary_with_the_real_node_reader() -> None:
    rt = StatsRuntime()
    p = st.StatsProvider(rt, lambda: [], "real", interval=0.05)
    await p.sample_all()
    await asyncio.sleep(0.1)
    await p.sample_all()
    doc = await p.summary()
    cpu = doc["node"]["cpu"]
    assert cpu["usageCoreNanoSeconds"] > 0 and cpu["usageNanoCores"] >= 0
    assert doc["node"]["memory"]["workingSetBytes"] > 0
    assert doc["pods"] == []
