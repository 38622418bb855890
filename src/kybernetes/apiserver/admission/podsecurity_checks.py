"""The Pod Security Standards checks (upstream ``pod-security-admission/policy``), pure.

    evaluate(level, version, metadata, spec) -> [(reason, detail), ...]     the failed checks
    forbidden_detail(results)                -> 'privileged (container "c" must not ...), ...'

Levels: ``privileged`` (nothing checked), ``baseline``, ``restricted`` (baseline plus the
restricted checks; three baseline checks are superseded by their restricted versions there).
Each check applies from a policy version on (``v1.x``; ``latest`` = every check). Results come in
upstream's order: baseline checks, then restricted ones, each group in upstream's check order, so
the combined message reads exactly as the real API server's.

Containers are visited as upstream does: init containers, containers, ephemeral containers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]
Result = tuple[str, str]          # (forbidden reason, forbidden detail)
Version = tuple[int, int]         # (1, minor); LATEST compares newest

LATEST: Version = (1, 10**6)
LEVELS = ("privileged", "baseline", "restricted")


# ------------------------------------------------------------------------------------------
# helpers
def join_quote(items: Iterable[str]) -> str:
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def pluralize(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def containers(spec: Obj) -> list[Obj]:
    out: list[Obj] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out += [c for c in spec.get(key) or () if isinstance(c, Mapping)]
    return out


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, Mapping) else {}


def _names(cs: Iterable[Obj]) -> list[str]:
    return [str(c.get("name", "")) for c in cs]


def _who(n: int) -> str:
    return pluralize("container", "containers", n)


# ------------------------------------------------------------------------------------------
# baseline
def check_apparmor(md: Obj, spec: Obj) -> Result | None:
    bad_setters: list[str] = []
    bad_values: set[str] = set()
    prof = _sc(spec).get("appArmorProfile")
    if isinstance(prof, Mapping) and prof.get("type") not in ("RuntimeDefault", "Localhost"):
        bad_setters.append("pod")
        bad_values.add(str(prof.get("type") or ""))
    bad = []
    for c in containers(spec):
        prof = _sc(c).get("appArmorProfile")
        if prof is not None and (prof or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            bad.append(str(c.get("name", "")))
            bad_values.add(str((prof or {}).get("type") or ""))
    if bad:
        bad_setters.append(f"{_who(len(bad))} {join_quote(bad)}")
    values = sorted(bad_values)
    anns = []
    for k, v in ((md.get("annotations") or {}).items()):
        if str(k).startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                not v or v == "runtime/default" or str(v).startswith("localhost/")):
            anns.append(f'{k}="{v}"')
    if anns:
        anns.sort()
        values += anns
        bad_setters.append(pluralize("annotation", "annotations", len(anns)))
    if not bad_setters:
        return None
    return (pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
            f"{' and '.join(bad_setters)} must not set AppArmor profile type to {join_quote(values)}")


def check_host_namespaces(md: Obj, spec: Obj) -> Result | None:
    found = sorted(k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True)
    return ("host namespaces", ", ".join(found)) if found else None


def check_host_ports(md: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    ports: set[str] = set()
    for c in containers(spec):
        ok = True
        for p in c.get("ports") or ():
            hp = p.get("hostPort") if isinstance(p, Mapping) else None
            if hp:
                ok = False
                ports.add(str(hp))
        if not ok:
            bad.append(str(c.get("name", "")))
    if not bad:
        return None
    return ("hostPort", f"{_who(len(bad))} {join_quote(bad)} {pluralize('uses', 'use', len(bad))} "
                        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}")


def check_privileged(md: Obj, spec: Obj) -> Result | None:
    bad = _names(c for c in containers(spec) if _sc(c).get("privileged") is True)
    if not bad:
        return None
    return ("privileged", f"{_who(len(bad))} {join_quote(bad)} must not set securityContext.privileged=true")


def check_proc_mount(md: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    kinds: set[str] = set()
    for c in containers(spec):
        pm = _sc(c).get("procMount")
        if pm is not None and pm != "Default":
            bad.append(str(c.get("name", "")))
            kinds.add(str(pm))
    if not bad:
        return None
    return ("procMount", f"{_who(len(bad))} {join_quote(bad)} must not set securityContext.procMount to {join_quote(sorted(kinds))}")


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed: frozenset[str]) -> Callable[[Obj, Obj], Result | None]:
    def check(md: Obj, spec: Obj) -> Result | None:
        setters: list[str] = []
        bad_types: set[str] = set()
        flags = {"user": False, "role": False}

        def valid(opts: Obj) -> bool:
            ok = True
            if str(opts.get("type") or "") not in allowed:
                ok = False
                bad_types.add(str(opts.get("type") or ""))
            for k in ("user", "role"):
                if opts.get(k):
                    ok = False
                    flags[k] = True
            return ok

        pod_opts = _sc(spec).get("seLinuxOptions")
        if isinstance(pod_opts, Mapping) and not valid(pod_opts):
            setters.append("pod")
        bad = [str(c.get("name", "")) for c in containers(spec)
               if isinstance(_sc(c).get("seLinuxOptions"), Mapping) and not valid(_sc(c)["seLinuxOptions"])]
        if bad:
            setters.append(f"{_who(len(bad))} {join_quote(bad)}")
        if not setters:
            return None
        data = []
        if bad_types:
            data.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
        if flags["user"]:
            data.append("user may not be set")
        if flags["role"]:
            data.append("role may not be set")
        return ("seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}")
    return check


SYSCTLS_1_0 = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                         "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                               "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: frozenset[str]) -> Callable[[Obj, Obj], Result | None]:
    def check(md: Obj, spec: Obj) -> Result | None:
        bad = [str(s.get("name", "")) for s in _sc(spec).get("sysctls") or ()
               if isinstance(s, Mapping) and s.get("name") not in allowed]
        return ("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


def check_host_process(md: Obj, spec: Obj) -> Result | None:
    setters = []
    if (_sc(spec).get("windowsOptions") or {}).get("hostProcess") is True:
        setters.append("pod")
    bad = _names(c for c in containers(spec) if (_sc(c).get("windowsOptions") or {}).get("hostProcess") is True)
    if bad:
        setters.append(f"{_who(len(bad))} {join_quote(bad)}")
    if not setters:
        return None
    return ("hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")


CAPABILITIES_BASELINE = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def check_capabilities_baseline(md: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    caps: set[str] = set()
    for c in containers(spec):
        added = [str(x) for x in ((_sc(c).get("capabilities") or {}).get("add") or ())]
        extra = [x for x in added if x not in CAPABILITIES_BASELINE]
        if extra:
            bad.append(str(c.get("name", "")))
            caps.update(extra)
    if not bad:
        return None
    return ("non-default capabilities",
            f"{_who(len(bad))} {join_quote(bad)} must not include {join_quote(sorted(caps))} in securityContext.capabilities.add")


def check_host_path_volumes(md: Obj, spec: Obj) -> Result | None:
    bad = [str(v.get("name", "")) for v in spec.get("volumes") or () if isinstance(v, Mapping) and v.get("hostPath") is not None]
    return ("hostPath volumes", f"{pluralize('volume', 'volumes', len(bad))} {join_quote(bad)}") if bad else None


def _valid_seccomp(t: Any) -> bool:
    return t in ("Localhost", "RuntimeDefault")


def _valid_seccomp_annotation(v: Any) -> bool:
    return v in ("runtime/default", "docker/default") or str(v).startswith("localhost/")


def check_seccomp_annotations(md: Obj, spec: Obj) -> Result | None:
    """Policy versions before 1.19: the alpha seccomp annotations."""
    anns = md.get("annotations") or {}
    bad: set[str] = set()
    key = "seccomp.security.alpha.kubernetes.io/pod"
    if key in anns and not _valid_seccomp_annotation(anns[key]):
        bad.add(f'{key}="{anns[key]}"')
    for c in containers(spec):
        key = "container.seccomp.security.alpha.kubernetes.io/" + str(c.get("name", ""))
        if key in anns and not _valid_seccomp_annotation(anns[key]):
            bad.add(f'{key}="{anns[key]}"')
    if not bad:
        return None
    return ("seccompProfile", f"forbidden {pluralize('annotation', 'annotations', len(bad))} {', '.join(sorted(bad))}")


def check_seccomp_baseline(md: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    values: set[str] = set()
    prof = _sc(spec).get("seccompProfile")
    if isinstance(prof, Mapping) and not _valid_seccomp(prof.get("type")):
        setters.append("pod")
        values.add(str(prof.get("type") or ""))
    bad = []
    for c in containers(spec):
        p = _sc(c).get("seccompProfile")
        if isinstance(p, Mapping) and not _valid_seccomp(p.get("type")):
            bad.append(str(c.get("name", "")))
            values.add(str(p.get("type") or ""))
    if bad:
        setters.append(f"{_who(len(bad))} {join_quote(bad)}")
    if not setters:
        return None
    return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}")


# ------------------------------------------------------------------------------------------
# restricted
def check_allow_privilege_escalation(md: Obj, spec: Obj) -> Result | None:
    bad = _names(c for c in containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False)
    if not bad:
        return None
    return ("allowPrivilegeEscalation != false",
            f"{_who(len(bad))} {join_quote(bad)} must set securityContext.allowPrivilegeEscalation=false")


def check_capabilities_restricted(md: Obj, spec: Obj) -> Result | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in containers(spec):
        capabilities = _sc(c).get("capabilities")
        if not isinstance(capabilities, Mapping):
            missing_drop.append(str(c.get("name", "")))
            continue
        if "ALL" not in [str(x) for x in capabilities.get("drop") or ()]:
            missing_drop.append(str(c.get("name", "")))
        extra = [str(x) for x in capabilities.get("add") or () if x != "NET_BIND_SERVICE"]
        if extra:
            adding.append(str(c.get("name", "")))
            caps.update(extra)
    details = []
    if missing_drop:
        details.append(f'{_who(len(missing_drop))} {join_quote(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_who(len(adding))} {join_quote(adding)} must not include {join_quote(sorted(caps))} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


ALLOWED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret")
RESTRICTED_VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
                             "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume",
                             "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos")


def check_restricted_volumes(md: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    types: set[str] = set()
    for v in spec.get("volumes") or ():
        if not isinstance(v, Mapping) or any(v.get(k) is not None for k in ALLOWED_VOLUME_SOURCES):
            continue
        bad.append(str(v.get("name", "")))
        types.add(next((k for k in RESTRICTED_VOLUME_SOURCES if v.get(k) is not None), "unknown"))
    if not bad:
        return None
    n = len(bad)
    return ("restricted volume types",
            f"{pluralize('volume', 'volumes', n)} {join_quote(bad)} {pluralize('uses', 'use', n)} "
            f"{pluralize('restricted volume type', 'restricted volume types', len(types))} {join_quote(sorted(types))}")


def check_run_as_non_root(md: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    pod_ok = False
    pod_val = _sc(spec).get("runAsNonRoot")
    if isinstance(pod_val, bool):
        if not pod_val:
            setters.append("pod")
        else:
            pod_ok = True
    explicit: list[str] = []
    implicit: list[str] = []
    for c in containers(spec):
        val = _sc(c).get("runAsNonRoot")
        if isinstance(val, bool):
            if not val:
                explicit.append(str(c.get("name", "")))
        elif not pod_ok:
            implicit.append(str(c.get("name", "")))
    if explicit:
        setters.append(f"{_who(len(explicit))} {join_quote(explicit)}")
    if setters:
        return ("runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return ("runAsNonRoot != true",
                f"pod or {_who(len(implicit))} {join_quote(implicit)} must set securityContext.runAsNonRoot=true")
    return None


def _is_zero(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v == 0


def check_run_as_user(md: Obj, spec: Obj) -> Result | None:
    setters = ["pod"] if _is_zero(_sc(spec).get("runAsUser")) else []
    bad = _names(c for c in containers(spec) if _is_zero(_sc(c).get("runAsUser")))
    if bad:
        setters.append(f"{_who(len(bad))} {join_quote(bad)}")
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def check_seccomp_restricted(md: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    values: set[str] = set()
    pod_ok = False
    prof = _sc(spec).get("seccompProfile")
    if isinstance(prof, Mapping):
        if not _valid_seccomp(prof.get("type")):
            setters.append("pod")
            values.add(str(prof.get("type") or ""))
        else:
            pod_ok = True
    explicit: list[str] = []
    implicit: list[str] = []
    for c in containers(spec):
        p = _sc(c).get("seccompProfile")
        if isinstance(p, Mapping):
            if not _valid_seccomp(p.get("type")):
                explicit.append(str(c.get("name", "")))
                values.add(str(p.get("type") or ""))
        elif not pod_ok:
            implicit.append(str(c.get("name", "")))
    if explicit:
        setters.append(f"{_who(len(explicit))} {join_quote(explicit)}")
    if setters:
        return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}")
    if implicit:
        return ("seccompProfile", f'pod or {_who(len(implicit))} {join_quote(implicit)} must set '
                                  'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


# ------------------------------------------------------------------------------------------
# registry
CheckFn = Callable[[Obj, Obj], "Result | None"]


@dataclass(frozen=True)
class Check:
    id: str
    level: str                                    # baseline | restricted
    versions: tuple[tuple[Version, CheckFn], ...]   # (minimum version, function), increasing
    overlap: bool = False                         # baseline check superseded under restricted

    def at(self, version: Version) -> CheckFn | None:
        fn = None
        for minimum, f in self.versions:
            if minimum <= version:
                fn = f
        return fn


CHECKS: tuple[Check, ...] = (
    # baseline, in upstream's order
    Check("appArmorProfile", "baseline", (((1, 0), check_apparmor),)),
    Check("hostNamespaces", "baseline", (((1, 0), check_host_namespaces),)),
    Check("hostPorts", "baseline", (((1, 0), check_host_ports),)),
    Check("privileged", "baseline", (((1, 0), check_privileged),)),
    Check("procMount", "baseline", (((1, 0), check_proc_mount),)),
    Check("seLinuxOptions", "baseline", (((1, 0), _selinux(SELINUX_TYPES_1_0)), ((1, 31), _selinux(SELINUX_TYPES_1_31)))),
    Check("sysctls", "baseline", (((1, 0), _sysctls(SYSCTLS_1_0)), ((1, 27), _sysctls(SYSCTLS_1_27)),
                                  ((1, 29), _sysctls(SYSCTLS_1_29)), ((1, 32), _sysctls(SYSCTLS_1_32)))),
    Check("windowsHostProcess", "baseline", (((1, 0), check_host_process),)),
    # baseline checks that restricted replaces
    Check("capabilities_baseline", "baseline", (((1, 0), check_capabilities_baseline),), overlap=True),
    Check("hostPathVolumes", "baseline", (((1, 0), check_host_path_volumes),), overlap=True),
    Check("seccompProfile_baseline", "baseline", (((1, 0), check_seccomp_annotations), ((1, 19), check_seccomp_baseline)),
          overlap=True),
    # restricted
    Check("allowPrivilegeEscalation", "restricted", (((1, 8), check_allow_privilege_escalation),)),
    Check("capabilities_restricted", "restricted", (((1, 22), check_capabilities_restricted),)),
    Check("restrictedVolumes", "restricted", (((1, 0), check_restricted_volumes),)),
    Check("runAsNonRoot", "restricted", (((1, 0), check_run_as_non_root),)),
    Check("runAsUser", "restricted", (((1, 23), check_run_as_user),)),
    Check("seccompProfile_restricted", "restricted", (((1, 19), check_seccomp_restricted),)),
)


def evaluate(level: str, version: Version, metadata: Obj, spec: Obj) -> list[Result]:
    """The failed checks of ``level`` at policy ``version`` for a pod (or pod template)."""
    if level == "privileged":
        return []
    out: list[Result] = []
    for check in CHECKS:
        if check.level == "restricted" and level != "restricted":
            continue
        if check.overlap and level == "restricted":
            continue
        fn = check.at(version)
        if fn is None:
            continue
        r = fn(metadata, spec)
        if r is not None:
            out.append(r)
    return out


def forbidden_reason(results: list[Result]) -> str:
    return ", ".join(reason for reason, _ in results)


def forbidden_detail(results: list[Result]) -> str:
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in results)
