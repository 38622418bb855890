"""The real machine a kubelet runs on, turned into its Node (capacity, nodeInfo, pressure).

    info = await asyncio.to_thread(read_machine_info, data_dir)    # /proc, /etc, statvfs
    cfg = node_config(info, name="node-1", internal_ip="10.0.0.5", runtime_version="runc://1.1.5")
    node = build_real_node(cfg, info, now, port=10250)              # what the kubelet registers
    status = real_node_status(cfg, info, node["status"], now, port=10250, pressure=Pressure())

The pure builders extend ``node.py`` (shared with the fake kubelet): capacity from the machine,
allocatable = capacity minus the default hard eviction thresholds (``memory.available < 100Mi``,
``nodefs.available < 10%``), the real architecture, boot / machine ids and OS image, the kubelet's
server port in ``daemonEndpoints``, and MemoryPressure / DiskPressure when the machine is short.
PIDPressure is reported False always.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .node import (
    KUBELET_VERSION,
    NodeConfig,
    build_node,
    compute_node_status,
)

Obj = dict[str, Any]

MAX_PODS = 110
EVICTION_MEMORY = 100 * 1024 * 1024          # memory.available < 100Mi
EVICTION_NODEFS_FRACTION = 0.10               # nodefs.available < 10%
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
        "s390x": "s390x", "riscv64": "riscv64"}

_PRESSURE = {
    "MemoryPressure": ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    "DiskPressure": ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    "PIDPressure": ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
}


@dataclass(frozen=True)
class MachineInfo:
    cpus: int
    memory_bytes: int
    storage_bytes: int
    os_image: str = "Linux"
    kernel_version: str = ""
    architecture: str = "amd64"
    machine_id: str = ""
    boot_id: str = ""
    system_uuid: str = ""


@dataclass(frozen=True)
class Pressure:
    memory: bool = False
    disk: bool = False
    pid: bool = False


# -- parsing (pure) -------------------------------------------------------------------------------------
def parse_cpuinfo(text: str) -> int:
    """Logical CPUs listed in /proc/cpuinfo (``processor`` lines)."""
    return sum(1 for line in text.splitlines() if line.split(":", 1)[0].strip() == "processor")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo values in bytes."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def parse_os_release(text: str) -> str:
    """PRETTY_NAME of /etc/os-release (e.g. ``Debian GNU/Linux 12 (bookworm)``)."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_NAME":
            return value.strip().strip('"').strip("'")
    return "Linux"


def format_bytes(n: int) -> str:
    """A byte quantity the way the kubelet writes it: ``<n>Ki`` when a whole number of KiB."""
    return f"{n // 1024}Ki" if n % 1024 == 0 else str(n)


def capacity_of(info: MachineInfo, max_pods: int = MAX_PODS) -> dict[str, str]:
    return {"cpu": str(info.cpus), "ephemeral-storage": format_bytes(info.storage_bytes),
            "hugepages-1Gi": "0", "hugepages-2Mi": "0",
            "memory": format_bytes(info.memory_bytes), "pods": str(max_pods)}


def allocatable_of(info: MachineInfo, max_pods: int = MAX_PODS) -> dict[str, str]:
    memory = max(0, info.memory_bytes - EVICTION_MEMORY)
    storage = max(0, int(info.storage_bytes * (1 - EVICTION_NODEFS_FRACTION)))
    return {**capacity_of(info, max_pods), "memory": format_bytes(memory),
            "ephemeral-storage": format_bytes(storage)}


def pressure_of(mem_available: int | None, fs_available: int | None, fs_total: int | None) -> Pressure:
    """Pressure from what is left: below the hard eviction thresholds."""
    memory = mem_available is not None and mem_available < EVICTION_MEMORY
    disk = bool(fs_total) and fs_available is not None and fs_available < fs_total * EVICTION_NODEFS_FRACTION
    return Pressure(memory=memory, disk=disk)


# -- reading the machine (blocking: run in a thread) ------------------------------------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def read_machine_info(data_dir: str | Path) -> MachineInfo:
    """What this machine has (blocking file reads: call through ``asyncio.to_thread``)."""
    cpus = parse_cpuinfo(_read("/proc/cpuinfo")) or os.cpu_count() or 1
    mem = parse_meminfo(_read("/proc/meminfo")).get("MemTotal", 0)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    st = os.statvfs(data_dir)
    machine_id = _read("/etc/machine-id").strip()
    return MachineInfo(
        cpus=cpus, memory_bytes=mem, storage_bytes=st.f_blocks * st.f_frsize,
        os_image=parse_os_release(_read("/etc/os-release")), kernel_version=platform.release(),
        architecture=ARCH.get(platform.machine(), platform.machine()),
        machine_id=machine_id, boot_id=_read("/proc/sys/kernel/random/boot_id").strip(),
        system_uuid=_read("/sys/class/dmi/id/product_uuid").strip() or machine_id)


def read_pressure(data_dir: str | Path) -> Pressure:
    """Current memory / disk pressure (blocking)."""
    mem = parse_meminfo(_read("/proc/meminfo")).get("MemAvailable")
    try:
        st = os.statvfs(data_dir)
        avail, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    except OSError:
        avail = total = None
    return pressure_of(mem, avail, total)


async def runc_version(binary: str = "/usr/sbin/runc") -> str | None:
    """The version ``runc --version`` prints first, without a distribution suffix (``1.1.5``);
    None when it cannot run. For ``containerRuntimeVersion``: ``f"runc://{version}"``."""
    try:
        proc = await asyncio.create_subprocess_exec(binary, "--version", stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    except (OSError, TimeoutError):
        return None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("runc version"):
            return line.split()[-1].split("+", 1)[0]  # Debian's "1.1.5+ds1" -> "1.1.5"
    return None


# -- the Node (pure) -----------------------------------------------------------------------------------------
def node_config(info: MachineInfo, *, name: str, internal_ip: str, runtime_version: str,
                pod_cidr: str | None = None, labels: Mapping[str, str] | None = None,
                max_pods: int = MAX_PODS) -> NodeConfig:
    return NodeConfig(name=name, internal_ip=internal_ip, capacity=capacity_of(info, max_pods),
                      allocatable=allocatable_of(info, max_pods), labels=dict(labels or {}),
                      runtime_version=runtime_version, kubelet_version=KUBELET_VERSION,
                      pod_cidr=pod_cidr, os_image=info.os_image, kernel_version=info.kernel_version)


def with_pod_cidr(cfg: NodeConfig, pod_cidr: str | None) -> NodeConfig:
    return replace(cfg, pod_cidr=pod_cidr)


def _node_info(cfg: NodeConfig, info: MachineInfo, base: Obj) -> Obj:
    out = dict(base)
    out.update(architecture=info.architecture, operatingSystem="linux",
               bootID=info.boot_id or base.get("bootID", ""),
               machineID=info.machine_id or base.get("machineID", ""),
               systemUUID=info.system_uuid or base.get("systemUUID", ""))
    return out


def _apply_pressure(conditions: list[Obj], previous: list[Obj] | None, pressure: Pressure,
                    now: dt.datetime) -> list[Obj]:
    flags = {"MemoryPressure": pressure.memory, "DiskPressure": pressure.disk,
             "PIDPressure": pressure.pid}
    prev = {c.get("type"): c for c in previous or () if isinstance(c, dict)}
    ts = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for c in conditions:
        if flags.get(c.get("type", "")):
            reason, message = _PRESSURE[c["type"]]
            old = prev.get(c["type"])
            since = old.get("lastTransitionTime") if old and old.get("status") == "True" else None
            c = {**c, "status": "True", "reason": reason, "message": message,
                 "lastTransitionTime": since or ts}
        out.append(c)
    return out


def real_node_status(cfg: NodeConfig, info: MachineInfo, previous: Obj | None, now: dt.datetime, *,
                     port: int, pressure: Pressure | None = None,
                     ready: bool = True, images: list[Obj] | None = None) -> Obj:
    """The status a real kubelet posts (``compute_node_status`` plus the machine's facts)."""
    status = compute_node_status(cfg, previous, now, ready=ready)
    status["nodeInfo"] = _node_info(cfg, info, status["nodeInfo"])
    status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    status["conditions"] = _apply_pressure(status["conditions"], (previous or {}).get("conditions"),
                                           pressure or Pressure(), now)
    if images is not None:
        status["images"] = images
    return status


def build_real_node(cfg: NodeConfig, info: MachineInfo, now: dt.datetime, *, port: int) -> Obj:
    """The Node a real kubelet registers."""
    node = build_node(cfg, now)
    labels = node["metadata"]["labels"]
    labels["kubernetes.io/arch"] = labels["beta.kubernetes.io/arch"] = info.architecture
    node["status"] = real_node_status(cfg, info, None, now, port=port)
    return node
