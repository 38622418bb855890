"""The OCI runtime-spec (1.0.2) ``config.json`` of a container: pure functions, no I/O.

``build_spec`` turns a ``ContainerConfig`` plus what the runtime prepared (the mounted root, the
sandbox's namespace files and /etc files, the cgroup path) into the dict runc reads. Defaults follow
containerd's CRI plugin: its default capability set, masked and read-only /proc paths, a private
/dev tmpfs with devpts, mqueue, read-only sysfs and cgroupfs; ``privileged`` gives every
capability, every device, and writable /sys without masks. No seccomp profile is applied
(Kubernetes' default is ``Unconfined`` unless the pod asks for ``RuntimeDefault``).
"""

from __future__ import annotations

from typing import Any

from . import base

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# containerd's default set (pkg/oci defaultUnixCaps)
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# every capability Linux defines, in number order (0 .. 40)
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_PROPAGATION = {"private": "rprivate", "rslave": "rslave", "rshared": "rshared",
                "hosttocontainer": "rslave", "bidirectional": "rshared", "none": "rprivate"}


def normalize_cap(name: str) -> str:
    n = name.strip().upper()
    return n if n.startswith("CAP_") or n == "ALL" else "CAP_" + n


def caps_from_mask(mask: int) -> list[str]:
    """Capability names of a bit mask (as in /proc/self/status CapBnd)."""
    return [name for bit, name in enumerate(ALL_CAPS) if mask >> bit & 1]


def compute_capabilities(add: list[str], drop: list[str], privileged: bool,
                         available: list[str] | None = None) -> list[str]:
    """The capability set: privileged = every capability we have (``available``, default all,
    as containerd does with the runtime's own bounding set); else the default set, minus
    drops, plus adds."""
    if privileged:
        return list(available if available is not None else ALL_CAPS)
    adds = [normalize_cap(c) for c in add]
    drops = {normalize_cap(c) for c in drop}
    caps = [] if "ALL" in drops else [c for c in DEFAULT_CAPS if c not in drops]
    for c in (ALL_CAPS if "ALL" in adds else adds):
        if c != "ALL" and c not in caps:
            caps.append(c)
    return caps


def container_env(env: list[tuple[str, str]], *, hostname: str, tty: bool) -> list[str]:
    """``K=V`` strings with PATH, HOSTNAME (and TERM for a tty) added when the pod did not set them."""
    out = [f"{k}={v}" for k, v in env]
    names = {k for k, _ in env}
    if "PATH" not in names:
        out.insert(0, f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in names and hostname:
        out.append(f"HOSTNAME={hostname}")
    if tty and "TERM" not in names:
        out.append("TERM=xterm")
    return out


def bind_mount(m: base.Mount) -> dict[str, Any]:
    opts = ["rbind", _PROPAGATION.get(m.propagation.lower(), "rprivate")]
    if m.read_only:
        opts.append("ro")
    return {"destination": m.container_path, "type": "bind", "source": m.host_path, "options": opts}


def system_mounts(*, privileged: bool, shm_source: str | None) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    shm = ({"destination": "/dev/shm", "type": "bind", "source": shm_source,
            "options": ["rbind", "rprivate"]} if shm_source else
           {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        shm,
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": sys_opts + ["relatime"]},
    ]


def ordered_mounts(system: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """System mounts first, then the rest by path depth; a later mount replaces an earlier one
    with the same destination (the pod's volumes win over the runtime's /etc files)."""
    by_dest: dict[str, dict[str, Any]] = {}
    for m in extra:
        by_dest[m["destination"].rstrip("/") or "/"] = m
    sys_kept = [m for m in system if m["destination"] not in by_dest]
    rest = sorted(by_dest.values(), key=lambda m: len([p for p in m["destination"].split("/") if p]))
    return sys_kept + rest


def build_spec(config: base.ContainerConfig, *, rootfs: str, hostname: str, cgroups_path: str,
               namespaces: dict[str, str | None], etc_files: dict[str, str],
               termination_log: str, shm_source: str | None = None,
               host_devices: list[dict[str, Any]] | None = None,
               available_caps: list[str] | None = None) -> dict[str, Any]:
    """The runtime-spec config.json for ``config``.

    ``namespaces`` maps a namespace type (pid, mount, network, ipc, uts) to the path of an existing
    namespace to join, or None for a new one; types left out are shared with the host.
    ``etc_files`` maps /etc/hosts, /etc/hostname, /etc/resolv.conf to the sandbox's files.
    """
    if not config.argv:
        raise base.RuntimeError_("no command specified", reason="CreateContainerError")
    caps = compute_capabilities(config.capabilities_add, config.capabilities_drop, config.privileged,
                                available_caps)
    ro_etc = config.read_only_rootfs
    extra = [bind_mount(base.Mount(host_path=src, container_path=dst, read_only=ro_etc))
             for dst, src in etc_files.items()]
    extra.append(bind_mount(base.Mount(host_path=termination_log,
                                       container_path=config.termination_message_path or
                                       "/dev/termination-log")))
    extra += [bind_mount(m) for m in config.mounts]
    mounts = ordered_mounts(system_mounts(privileged=config.privileged, shm_source=shm_source), extra)

    r = config.resources
    cpu: dict[str, Any] = {"shares": max(2, int(r.cpu_shares)), "period": int(r.cpu_period_us)}
    if r.cpu_quota_us:
        cpu["quota"] = int(r.cpu_quota_us)
    resources: dict[str, Any] = {
        "devices": [{"allow": bool(config.privileged), "access": "rwm"}],
        "cpu": cpu,
    }
    if r.memory_limit_bytes:
        resources["memory"] = {"limit": int(r.memory_limit_bytes)}
    if r.pids_limit:
        resources["pids"] = {"limit": int(r.pids_limit)}

    linux: dict[str, Any] = {
        "cgroupsPath": cgroups_path,
        "resources": resources,
        "namespaces": [{"type": t, **({"path": p} if p else {})} for t, p in namespaces.items()],
    }
    if config.privileged:
        linux["devices"] = list(host_devices or [])
    else:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    if any("rshared" in m.get("options", ()) for m in mounts):
        linux["rootfsPropagation"] = "rshared"

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": bool(config.tty),
            "user": {"uid": int(config.uid), "gid": int(config.gid),
                     **({"additionalGids": [int(g) for g in config.supplemental_gids]}
                        if config.supplemental_gids else {})},
            "args": list(config.argv),
            "env": container_env(config.env, hostname=hostname, tty=config.tty),
            "cwd": config.working_dir or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": bool(config.read_only_rootfs)},
        "mounts": mounts,
        "linux": linux,
    }
    if config.annotations:
        spec["annotations"] = {str(k): str(v) for k, v in config.annotations.items()}
    return spec
