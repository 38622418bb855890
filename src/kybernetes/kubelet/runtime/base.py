"""The kubelet's runtime protocol: a small CRI-like interface the pod workers drive.

Three implementations live beside this file: ``runc`` (real isolation), ``process`` (supervised host
processes, no isolation) and the in-memory ``FakeRuntime`` in ``testing.py`` (a unit-test seam).

Shape, after CRI's RuntimeService:

* a **sandbox** is a pod's shared environment: its network, IPC and UTS namespaces (runc), its
  directories, its IP. ``run_sandbox`` makes it, ``stop_sandbox`` stops every container in it and tears
  its network down, ``remove_sandbox`` deletes what is left on disk.
* a **container** belongs to a sandbox. ``create_container`` prepares it (root filesystem, mounts,
  cgroup, log file) and returns its id; ``start_container`` starts its process; ``stop_container``
  sends SIGTERM, waits up to the grace period, then SIGKILL; ``remove_container`` deletes it.
* every sandbox and container carries ``labels`` (the pod UID, namespace, name, container name,
  restart attempt) that the runtime persists on disk, so that a restarted kubelet can list what is
  running (``list_sandboxes`` / ``list_containers``) and adopt it instead of starting it again.
  Containers keep running when the kubelet process dies: each runs under a small shim process that
  owns its stdio, writes its log file and records its exit status.
* logs are files in the CRI format, one line per chunk: ``<RFC3339Nano> <stdout|stderr> <F|P> <text>``
  (``P`` = partial line). ``ContainerStatus.log_path`` names the current file.

All methods are coroutines and must not block the event loop (run blocking work in a thread).
Errors are ``RuntimeError_`` subclasses with a Kubernetes-style ``reason``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

# label keys the kubelet puts on every sandbox / container
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_CONTAINER_ATTEMPT = "io.kubernetes.container.restartCount"  # the restart number, "0", "1", ...
LABEL_CONTAINER_KIND = "io.kubernetes.container.kind"               # "init" | "regular" | "sidecar"


class RuntimeError_(Exception):
    """A runtime failure; ``reason`` is what the kubelet reports (e.g. ``CreateContainerError``)."""

    reason = "RunContainerError"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class NotFoundError(RuntimeError_):
    reason = "NotFound"


@dataclass
class Mount:
    """A bind mount of ``host_path`` (file or directory) at ``container_path``."""

    host_path: str
    container_path: str
    read_only: bool = False
    propagation: str = "private"  # private | rslave | rshared (mountPropagation)


@dataclass
class Resources:
    """cgroup settings of one container, from the pod spec's requests and limits."""

    cpu_shares: int = 2                  # requests.cpu in millicores * 1024 / 1000, at least 2
    cpu_quota_us: int | None = None      # limits.cpu * period (None = unlimited)
    cpu_period_us: int = 100_000
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


@dataclass
class SandboxConfig:
    pod_uid: str
    namespace: str
    name: str
    hostname: str                        # already computed by the kubelet (pod.spec.hostname or name, <= 63)
    labels: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    resolv_conf: str = ""                # full text of /etc/resolv.conf for the pod
    hosts: str = ""                      # full text of /etc/hosts for the pod ("" = the runtime writes a default)
    pod_cidr: str | None = None          # the node's pod CIDR, for the network plugin
    port_mappings: list[dict] = field(default_factory=list)  # hostPort mappings {containerPort, hostPort, protocol}
    cgroup_parent: str = ""              # e.g. "kubepods/burstable/pod<uid>"; "" = the runtime decides
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxStatus:
    id: str
    state: str                           # "ready" | "notready"
    created_at: float                    # unix seconds
    labels: dict[str, str]
    ip: str | None = None                # the pod IP (None when the network is loopback-only)
    netns_path: str | None = None        # where its network namespace is bind-mounted (None for hostNetwork)


@dataclass
class ContainerConfig:
    name: str
    image: str                           # the image reference as written in the pod (for status)
    image_id: str                        # the image's digest ("sha256:..."), reported as imageID
    rootfs_layers: list[str]             # unpacked layer directories, lowest first (overlayfs lowerdirs)
    argv: list[str]                      # the fully resolved command line (entrypoint/cmd/command/args done)
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str = "/"
    uid: int = 0
    gid: int = 0
    supplemental_gids: list[int] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    stdin: bool = False                  # keep a stdin pipe open (for attach)
    stdin_once: bool = False
    tty: bool = False
    privileged: bool = False
    read_only_rootfs: bool = False
    capabilities_add: list[str] = field(default_factory=list)
    capabilities_drop: list[str] = field(default_factory=list)
    termination_message_path: str = "/dev/termination-log"


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    state: ContainerState
    labels: dict[str, str]
    image: str = ""
    image_id: str = ""
    created_at: float = 0.0              # unix seconds
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""                     # "OOMKilled", "Error", "Completed", "ContainerCannotRun"...
    message: str = ""                    # the termination message (file contents), when any
    pid: int | None = None
    log_path: str = ""
    termination_message_path: str = ""   # host path of the container's /dev/termination-log


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False


@dataclass
class ContainerStats:
    container_id: str
    timestamp: float                     # unix seconds when read
    cpu_usage_ns: int                    # cumulative CPU time (cpuacct.usage)
    memory_working_set_bytes: int        # usage minus inactive file
    memory_usage_bytes: int = 0


class ExecProcess(Protocol):
    """A running ``exec`` / ``attach`` session: byte streams and an exit code."""

    async def write_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    def stdout(self) -> AsyncIterator[bytes]: ...
    def stderr(self) -> AsyncIterator[bytes]: ...      # empty when tty
    async def resize(self, width: int, height: int) -> None: ...
    async def wait(self) -> int: ...                    # the exit code
    async def kill(self) -> None: ...


class Runtime(Protocol):
    """What the kubelet needs from a container runtime (see the module docstring)."""

    name: str

    # sandboxes
    async def run_sandbox(self, config: SandboxConfig) -> SandboxStatus: ...
    async def stop_sandbox(self, sandbox_id: str) -> None: ...
    async def remove_sandbox(self, sandbox_id: str) -> None: ...
    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...
    async def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[SandboxStatus]:
        """Every sandbox, oldest first; with ``labels``, only those carrying all of them (CRI's filter)."""
        ...

    # containers
    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str: ...
    async def start_container(self, container_id: str) -> None: ...
    async def stop_container(self, container_id: str, grace_seconds: float) -> None: ...
    async def remove_container(self, container_id: str) -> None: ...
    async def container_status(self, container_id: str) -> ContainerStatus: ...
    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    # streams
    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult: ...
    async def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool) -> ExecProcess: ...
    async def attach(self, container_id: str, *, stdin: bool, tty: bool) -> ExecProcess: ...
    async def port_forward(self, sandbox_id: str, port: int) -> tuple[object, object]: ...
    """Open a TCP connection to ``port`` inside the sandbox's network: (StreamReader, StreamWriter)."""

    # stats
    async def container_stats(self, container_id: str) -> ContainerStats: ...

    # lifecycle of the runtime itself
    async def close(self) -> None: ...


def labels_for(pod_uid: str, namespace: str, name: str, container: str | None = None,
               attempt: int | None = None, kind: str | None = None) -> Mapping[str, str]:
    out = {LABEL_POD_UID: pod_uid, LABEL_POD_NAMESPACE: namespace, LABEL_POD_NAME: name}
    if container is not None:
        out[LABEL_CONTAINER_NAME] = container
    if attempt is not None:
        out[LABEL_CONTAINER_ATTEMPT] = str(attempt)
    if kind is not None:
        out[LABEL_CONTAINER_KIND] = kind
    return out


def labels_match(labels: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """True when ``labels`` has every key and value of ``wanted`` (``None``: no filter)."""
    return not wanted or all(labels.get(k) == v for k, v in wanted.items())
