"""cgroup v1 for the runc runtime: where a container's cgroup is, its usage, and clean-up.

Containers live at ``/sys/fs/cgroup/<controller>/<cgroup_root>/pod<uid>/<container-id>`` (or
``<cgroup_root>/<cgroup_parent>/<id>`` when the kubelet names a parent); runc creates the
directories from ``linux.cgroupsPath`` and removes the container's own on ``runc delete``. The
pod-level directories are removed here when the sandbox goes.

Blocking functions (file I/O) are marked; the rest are pure.
"""

from __future__ import annotations

import errno
import os

from . import base

CGROUP_MOUNT = "/sys/fs/cgroup"


def pod_cgroup_path(cgroup_root: str, sandbox: base.SandboxConfig) -> str:
    parent = sandbox.cgroup_parent.strip("/") or f"pod{sandbox.pod_uid}"
    return "/" + "/".join(p for p in (cgroup_root.strip("/"), parent) if p)


def container_cgroup_path(cgroup_root: str, sandbox: base.SandboxConfig, container_id: str) -> str:
    return f"{pod_cgroup_path(cgroup_root, sandbox)}/{container_id}"


def parse_memory_stat(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def working_set(usage: int, stat: dict[str, int]) -> int:
    """Memory usage minus inactive file cache (what the kubelet and the OOM killer care about)."""
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    return max(0, usage - inactive)


# ---------------------------------------------------------------------------------------------
# blocking

def hierarchies(mount: str = CGROUP_MOUNT) -> list[str]:
    """Every mounted cgroup hierarchy directory (v1 controllers, name=systemd, the unified one)."""
    try:
        names = sorted(os.listdir(mount))
    except OSError:
        return []
    out = []
    for n in names:
        d = os.path.join(mount, n)
        if not os.path.islink(d) and os.path.exists(os.path.join(d, "cgroup.procs")):
            out.append(d)
    return out


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip() or 0)


def read_usage(path: str, mount: str = CGROUP_MOUNT) -> tuple[int, int, int]:
    """(cpu ns, memory usage bytes, working set bytes) of the cgroup ``path``; raises OSError."""
    cpu = _read_int(f"{mount}/cpuacct{path}/cpuacct.usage")
    usage = _read_int(f"{mount}/memory{path}/memory.usage_in_bytes")
    with open(f"{mount}/memory{path}/memory.stat") as f:
        stat = parse_memory_stat(f.read())
    return cpu, usage, working_set(usage, stat)


def remove(path: str, *, up_to: str | None = None, mount: str = CGROUP_MOUNT) -> list[str]:
    """rmdir ``path`` in every hierarchy, then its empty parents below ``up_to`` (exclusive).

    Returns the directories that could not be removed (still busy or not empty).
    """
    left = []
    stop = "/" + up_to.strip("/") if up_to else "/"
    for h in hierarchies(mount):
        p = path.rstrip("/")
        while p and p != stop and p != "/":
            d = h + p
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    if p == path.rstrip("/"):
                        left.append(d)
                    break
                raise
            p = os.path.dirname(p)
    return left
