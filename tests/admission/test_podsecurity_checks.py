"""Pod Security Standards checks and policy parsing (pure), with upstream's exact texts."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.apiserver.admission import podsecurity as ps
from kybernetes.apiserver.admission import podsecurity_checks as checks

Obj = dict[str, Any]

RESTRICTED_OK_CONTAINER: Obj = {
    "name": "c", "image": "busybox",
    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
}


def spec(*containers: Obj, **fields: Any) -> Obj:
    return {"containers": list(containers) or [{"name": "c", "image": "busybox"}], **fields}


def sc(**kw: Any) -> Obj:
    return {"name": "c", "image": "busybox", "securityContext": kw}


def detail(level: str, s: Obj, md: Obj | None = None, version: checks.Version = checks.LATEST) -> str:
    return checks.forbidden_detail(checks.evaluate(level, version, md or {}, s))


def test_privileged_pod_in_restricted_reads_like_upstream() -> None:
    # the message of the Kubernetes docs' example, check for check
    assert detail("restricted", spec(sc(privileged=True))) == (
        'privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


@pytest.mark.parametrize("s,md,want", [
    pytest.param(spec(hostNetwork=True, hostPID=True), {}, "host namespaces (hostNetwork, hostPID)", id="host-namespaces"),
    pytest.param(spec({"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                      {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 9090}]}), {},
                 'hostPort (containers "a", "b" use hostPorts 8080, 9090)', id="host-ports"),
    pytest.param(spec(sc(capabilities={"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]})), {},
                 'non-default capabilities (container "c" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)',
                 id="capabilities"),
    pytest.param(spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]), {}, 'hostPath volumes (volume "h")', id="hostpath"),
    pytest.param(spec(sc(procMount="Unmasked")), {}, 'procMount (container "c" must not set securityContext.procMount to "Unmasked")',
                 id="procmount"),
    pytest.param(spec(sc(seLinuxOptions={"type": "spc_t", "user": "root"})), {},
                 'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)',
                 id="selinux"),
    pytest.param(spec(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]}),
                 {}, "forbidden sysctls (kernel.msgmax)", id="sysctls"),
    pytest.param(spec(sc(seccompProfile={"type": "Unconfined"})), {},
                 'seccompProfile (container "c" must not set securityContext.seccompProfile.type to "Unconfined")', id="seccomp"),
    pytest.param(spec(sc(appArmorProfile={"type": "Unconfined"})), {},
                 'forbidden AppArmor profile (container "c" must not set AppArmor profile type to "Unconfined")', id="apparmor-field"),
    pytest.param(spec(), {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
                 'forbidden AppArmor profile (annotation must not set AppArmor profile type to '
                 '"container.apparmor.security.beta.kubernetes.io/c="unconfined"")', id="apparmor-annotation"),
    pytest.param(spec(sc(windowsOptions={"hostProcess": True}), securityContext={"windowsOptions": {"hostProcess": True}}), {},
                 'hostProcess (pod and container "c" must not set securityContext.windowsOptions.hostProcess=true)', id="hostprocess"),
    pytest.param(spec(sc(privileged=False, capabilities={"add": ["NET_BIND_SERVICE"]})), {}, "", id="allowed"),
])
def test_baseline_checks(s: Obj, md: Obj, want: str) -> None:
    assert detail("baseline", s, md) == want
    assert detail("privileged", s, md) == ""


@pytest.mark.parametrize("s,want", [
    pytest.param(spec(RESTRICTED_OK_CONTAINER), "", id="compliant"),
    pytest.param(spec({**RESTRICTED_OK_CONTAINER, "securityContext": {**RESTRICTED_OK_CONTAINER["securityContext"], "runAsUser": 0}}),
                 'runAsUser=0 (container "c" must not set runAsUser=0)', id="run-as-root"),
    pytest.param(spec(RESTRICTED_OK_CONTAINER, securityContext={"runAsNonRoot": False}),
                 "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)", id="pod-runasnonroot-false"),
    pytest.param(spec({**RESTRICTED_OK_CONTAINER, "securityContext": {**RESTRICTED_OK_CONTAINER["securityContext"],
                                                                      "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_ADMIN"]}}}),
                 'unrestricted capabilities (container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)', id="caps-add"),
    pytest.param(spec(RESTRICTED_OK_CONTAINER, volumes=[{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "s", "path": "/"}},
                                                       {"name": "e", "emptyDir": {}}]),
                 'restricted volume types (volumes "h", "n" use restricted volume types "hostPath", "nfs")', id="volumes"),
    pytest.param({"initContainers": [{"name": "init", "image": "x"}], "containers": [RESTRICTED_OK_CONTAINER],
                  "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
                 'allowPrivilegeEscalation != false (container "init" must set securityContext.allowPrivilegeEscalation=false), '
                 'unrestricted capabilities (container "init" must set securityContext.capabilities.drop=["ALL"])', id="init-container"),
])
def test_restricted_checks(s: Obj, want: str) -> None:
    assert detail("restricted", s) == want


def test_versions_gate_checks() -> None:
    keepalive = spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]})
    assert detail("baseline", keepalive) == ""
    assert detail("baseline", keepalive, version=(1, 28)) == "forbidden sysctls (net.ipv4.tcp_keepalive_time)"
    no_caps = spec({**RESTRICTED_OK_CONTAINER, "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                                                   "seccompProfile": {"type": "RuntimeDefault"}}})
    assert "unrestricted capabilities" in detail("restricted", no_caps)
    assert detail("restricted", no_caps, version=(1, 21)) == ""  # capabilities_restricted starts at 1.22
    # before 1.19 seccomp lived in annotations
    md = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}
    assert detail("baseline", spec(), md, version=(1, 18)) == \
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")'


@pytest.mark.parametrize("labels,enforce,warn,errors", [
    pytest.param({}, "privileged:latest", "privileged:latest", [], id="defaults"),
    pytest.param({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.25",
                  "pod-security.kubernetes.io/warn": "restricted"}, "baseline:v1.25", "restricted:latest", [], id="set"),
    pytest.param({"pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/warn": "loose",
                  "pod-security.kubernetes.io/warn-version": "1.25"}, "restricted:latest", "privileged:latest",
                 ['metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted',
                  'metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "loose": must be one of privileged, baseline, restricted',
                  'metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.25": must be "latest" or "v1.x"'],
                 id="invalid-fails-closed-for-enforce"),
])
def test_policy_from_labels(labels: dict[str, str], enforce: str, warn: str, errors: list[str]) -> None:
    policy, causes = ps.policy_from_labels(labels)
    assert (str(policy.enforce), str(policy.warn)) == (enforce, warn)
    assert [f"{c.field}: {c.message}" for c in causes] == errors


def test_namespace_warnings_group_pods_as_upstream() -> None:
    def pod(name: str, **c: Any) -> Obj:
        return {"metadata": {"name": name}, "spec": spec(sc(**c))}

    pods = [pod("b", privileged=True), pod("a", privileged=True), pod("c", privileged=True), pod("ok"),
            pod("d", procMount="Unmasked")]
    assert ps.namespace_warnings("ns", ps.LevelVersion("baseline"), pods) == [
        'existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"',
        "a (and 2 other pods): privileged",
        "d: procMount",
    ]


def test_significant_pod_updates() -> None:
    old = {"metadata": {}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    assert not ps.significant_pod_update({"metadata": {"labels": {"x": "y"}}, "spec": old["spec"]}, old)
    assert ps.significant_pod_update({"metadata": {}, "spec": {"containers": [{"name": "c", "image": "b"}]}}, old)
    assert ps.significant_pod_update({"metadata": {}, "spec": {**old["spec"], "ephemeralContainers": [{"name": "e", "image": "x"}]}}, old)
