"""On-disk records of sandboxes and containers, so a restarted kubelet sees what is running.

Layout under the runtime's root (``D/runtime``):

    sandboxes/<id>/sandbox.json      SandboxRecord: the SandboxConfig, created time, state, IP, netns,
                                     namespace files, the /etc files written for the pod
    sandboxes/<id>/{hosts,hostname,resolv.conf}   the pod's /etc files (bind-mounted into containers)
    containers/<id>/container.json   ContainerRecord: the ContainerConfig, sandbox id, created time,
                                     log path, cgroup, rootfs, termination-log file
    containers/<id>/...              the shim's files (see ``shim.py``): shim.spec, started.json,
                                     exit.json, shim.sock, shim.log, termination-log; runc's bundle/
                                     (config.json, rootfs/ = the overlay mount), upper/, work/,
                                     container.pid, runc.log; the process runtime's root/
    runc/                            runc's own state (``runc --root``)
    bin/shim-<tag>-<hash>.pyc        the shim, byte-compiled once per version (fast start)

Records are written once (atomically) when something is created and again when a sandbox changes
state; a container's run state is never stored in the record itself but *observed* from the shim's
files (``observe_container``, blocking) and turned into a ``ContainerStatus`` by the pure
``compute_container_status``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import base
from .shim import EXIT_FILE, STARTED_FILE, proc_starttime

SANDBOX_FILE = "sandbox.json"
CONTAINER_FILE = "container.json"
TERMINATION_FILE = "termination-log"
MAX_TERMINATION_MESSAGE = 4096   # bytes, as the kubelet reads


@dataclass
class SandboxRecord:
    id: str
    config: base.SandboxConfig
    created_at: float
    dir: str
    state: str = "ready"                          # "ready" | "notready"
    ip: str | None = None
    netns_path: str | None = None
    ns: dict[str, str] = field(default_factory=dict)    # "net" | "ipc" | "uts" -> bind-mounted file
    etc: dict[str, str] = field(default_factory=dict)   # "hosts" | "hostname" | "resolv.conf" -> file
    shm: str | None = None                        # the pod's /dev/shm (a tmpfs) when it has its own IPC

    def status(self) -> base.SandboxStatus:
        return base.SandboxStatus(id=self.id, state=self.state, created_at=self.created_at,
                                  labels=dict(self.config.labels), ip=self.ip,
                                  netns_path=self.netns_path)


@dataclass
class ContainerRecord:
    id: str
    sandbox_id: str
    config: base.ContainerConfig
    created_at: float
    dir: str
    log_path: str
    termination_log: str
    cgroup_path: str | None = None                # e.g. "/kybernetes/pod<uid>/<id>" (cgroup v1)
    rootfs: str | None = None                     # the mounted root (runc) or the stand-in root (process)
    extra: dict[str, Any] = field(default_factory=dict)
    final: base.ContainerStatus | None = field(default=None, repr=False, compare=False)  # in memory


@dataclass(frozen=True)
class Observed:
    """What the shim's files and /proc say about one container at one moment."""

    started: dict[str, Any] | None = None
    exited: dict[str, Any] | None = None
    pid_alive: bool = False
    shim_alive: bool = False
    termination_message: str = ""


# ---------------------------------------------------------------------------------------------
# pure

def exit_reason(code: int, oom_killed: bool) -> str:
    if oom_killed:
        return "OOMKilled"
    return "Completed" if code == 0 else "Error"


def compute_container_status(rec: ContainerRecord, obs: Observed) -> base.ContainerStatus:
    """The container's status from its record and what was observed on disk (pure)."""
    st = base.ContainerStatus(
        id=rec.id, sandbox_id=rec.sandbox_id, name=rec.config.name, state=base.ContainerState.CREATED,
        labels=dict(rec.config.labels), image=rec.config.image, image_id=rec.config.image_id,
        created_at=rec.created_at, log_path=rec.log_path, termination_message_path=rec.termination_log)
    started, exited = obs.started, obs.exited
    if started:
        st.started_at = float(started["started_at"])
        st.pid = int(started["pid"])
    if exited:
        code = int(exited.get("exit_code", 255))
        st.state = base.ContainerState.EXITED
        st.exit_code = code
        st.finished_at = float(exited.get("finished_at") or 0.0)
        st.reason = exited.get("reason") or exit_reason(code, bool(exited.get("oom_killed")))
        st.message = exited.get("message") or obs.termination_message
        st.pid = None
    elif started:
        if obs.pid_alive or obs.shim_alive:
            st.state = base.ContainerState.RUNNING
        else:   # the shim was killed and the container is gone too: nobody recorded the exit
            st.state = base.ContainerState.EXITED
            st.exit_code = 255
            st.reason = "Unknown"
            st.message = "the container's supervisor died without recording an exit status"
            st.pid = None
    return st


def log_path_for(log_root: str | Path, sandbox: base.SandboxConfig, config: base.ContainerConfig) -> str:
    """``<log_root>/<namespace>_<pod>_<uid>/<container>/<attempt>.log`` (the kubelet's layout)."""
    attempt = config.labels.get(base.LABEL_CONTAINER_ATTEMPT, "0")
    return os.path.join(str(log_root), f"{sandbox.namespace}_{sandbox.name}_{sandbox.pod_uid}",
                        config.name, f"{attempt}.log")


# ---------------------------------------------------------------------------------------------
# (de)serialisation

def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def sandbox_config_from_dict(d: dict[str, Any]) -> base.SandboxConfig:
    return base.SandboxConfig(**_known(base.SandboxConfig, d))


def container_config_from_dict(d: dict[str, Any]) -> base.ContainerConfig:
    d = _known(base.ContainerConfig, d)
    d["mounts"] = [base.Mount(**_known(base.Mount, m)) for m in d.get("mounts", [])]
    d["resources"] = base.Resources(**_known(base.Resources, d.get("resources") or {}))
    d["env"] = [(str(k), str(v)) for k, v in d.get("env", [])]
    return base.ContainerConfig(**d)


def sandbox_to_dict(rec: SandboxRecord) -> dict[str, Any]:
    return dataclasses.asdict(rec)


def sandbox_from_dict(d: dict[str, Any]) -> SandboxRecord:
    d = _known(SandboxRecord, d)
    d["config"] = sandbox_config_from_dict(d["config"])
    return SandboxRecord(**d)


def container_to_dict(rec: ContainerRecord) -> dict[str, Any]:
    d = dataclasses.asdict(dataclasses.replace(rec, final=None))
    d.pop("final", None)
    return d


def container_from_dict(d: dict[str, Any]) -> ContainerRecord:
    d = _known(ContainerRecord, d)
    d.pop("final", None)
    d["config"] = container_config_from_dict(d["config"])
    return ContainerRecord(**d)


# ---------------------------------------------------------------------------------------------
# blocking file I/O (callers run these in a thread)

def write_json_atomic(path: str | Path, doc: Any) -> None:
    path = str(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None


class StateStore:
    """The records under ``root``; every method blocks (disk I/O)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.sandboxes_dir = self.root / "sandboxes"
        self.containers_dir = self.root / "containers"

    def ensure(self) -> None:
        self.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        self.containers_dir.mkdir(parents=True, exist_ok=True)

    def sandbox_dir(self, sid: str) -> Path:
        return self.sandboxes_dir / sid

    def container_dir(self, cid: str) -> Path:
        return self.containers_dir / cid

    def load(self) -> tuple[dict[str, SandboxRecord], dict[str, ContainerRecord]]:
        sandboxes: dict[str, SandboxRecord] = {}
        containers: dict[str, ContainerRecord] = {}
        for d in sorted(self.sandboxes_dir.glob("*/" + SANDBOX_FILE)):
            doc = read_json(d)
            if doc:
                rec = sandbox_from_dict(doc)
                sandboxes[rec.id] = rec
        for d in sorted(self.containers_dir.glob("*/" + CONTAINER_FILE)):
            doc = read_json(d)
            if doc:
                crec = container_from_dict(doc)
                containers[crec.id] = crec
        return sandboxes, containers

    def save_sandbox(self, rec: SandboxRecord) -> None:
        write_json_atomic(Path(rec.dir) / SANDBOX_FILE, sandbox_to_dict(rec))

    def save_container(self, rec: ContainerRecord) -> None:
        write_json_atomic(Path(rec.dir) / CONTAINER_FILE, container_to_dict(rec))

    @staticmethod
    def remove_tree(path: str | Path) -> None:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: Any, start: Any) -> bool:
    if not pid:
        return False
    now = proc_starttime(int(pid))
    return now is not None and (start is None or now == int(start))


_started_cache: dict[str, dict] = {}   # container dir -> its start record (the relist runs every second)


def observe_container(rec: ContainerRecord) -> Observed:
    """Read the shim's files and /proc for one container (blocking)."""
    started = _started_cache.get(rec.dir)
    if started is None:  # written once by the shim when the process starts: read it once
        started = read_json(os.path.join(rec.dir, STARTED_FILE))
        if started is not None:
            if len(_started_cache) > 4096:
                _started_cache.clear()
            _started_cache[rec.dir] = started
    exited = read_json(os.path.join(rec.dir, EXIT_FILE))
    if exited is not None:
        _started_cache.pop(rec.dir, None)
        msg = ""
        try:
            with open(rec.termination_log, "rb") as f:
                msg = f.read(MAX_TERMINATION_MESSAGE).decode(errors="replace")
        except OSError:
            pass
        return Observed(started=started, exited=exited, termination_message=msg)
    if started is None:
        return Observed()
    return Observed(started=started,
                    pid_alive=_alive(started.get("pid"), started.get("pid_start")),
                    shim_alive=_alive(started.get("shim_pid"), started.get("shim_start")))
