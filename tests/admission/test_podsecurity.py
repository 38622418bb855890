"""PodSecurity through the real API server, with the real kubectl where it prints what users see."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ApiClient

pytestmark = pytest.mark.integration
Obj = dict[str, Any]

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")

PRIVILEGED_DETAIL = 'privileged (container "c" must not set securityContext.privileged=true)'
RESTRICTED_MESSAGE = (
    'pods "p" is forbidden: violates PodSecurity "restricted:latest": ' + PRIVILEGED_DETAIL + ", "
    'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


def privileged_pod(name: str = "p") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}


async def namespace(api: ApiClient, name: str, **levels: str) -> None:
    labels = {f"pod-security.kubernetes.io/{mode.replace('_', '-')}": level for mode, level in levels.items()}
    st, doc, _ = await api.post("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    assert st == 201, doc


def warnings_of(headers: Any) -> list[str]:
    return [w[len('299 - "'):-1].replace('\\"', '"') for w in headers.getall("Warning", [])]


async def kubectl(tmp: Path, server: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    kc = tmp / "kubeconfig"
    if not kc.exists():
        kc.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": server}}], "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}]}))
    env = {**os.environ, "KUBECONFIG": str(kc), "HOME": str(tmp), "KUBECACHEDIR": str(tmp / "cache")}
    proc = await asyncio.create_subprocess_exec(KUBECTL, *args, stdin=subprocess.PIPE if stdin else None,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate(stdin.encode() if stdin else None)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_privileged_pod_is_rejected_in_a_restricted_namespace(api: ApiClient) -> None:
    await namespace(api, "locked", enforce="restricted")
    st, doc, _ = await api.post("/api/v1/namespaces/locked/pods", privileged_pod())
    assert (st, doc["reason"], doc["message"]) == (403, "Forbidden", RESTRICTED_MESSAGE)
    assert doc["details"] == {"name": "p", "kind": "pods"}
    compliant = {"metadata": {"name": "ok"}, "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    st, doc, headers = await api.post("/api/v1/namespaces/locked/pods", compliant)
    assert st == 201 and warnings_of(headers) == []
    # a pinned older version skips checks added later
    await namespace(api, "old", enforce="baseline", enforce_version="v1.0")
    st, _, _ = await api.post("/api/v1/namespaces/old/pods", {"metadata": {"name": "s"}, "spec": {
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}})
    assert st == 201


async def test_warn_mode_and_workloads(api: ApiClient) -> None:
    await namespace(api, "warned", warn="baseline")
    st, doc, headers = await api.post("/api/v1/namespaces/warned/pods", privileged_pod())
    assert st == 201
    assert warnings_of(headers) == [f'would violate PodSecurity "baseline:latest": {PRIVILEGED_DETAIL}']
    # workloads: their pod template only warns, even where pods are enforced
    await namespace(api, "strict", enforce="restricted", warn="restricted")
    deploy = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}}, "spec": privileged_pod()["spec"]}}}
    st, doc, headers = await api.post("/apis/apps/v1/namespaces/strict/deployments", deploy)
    assert st == 201, doc
    [warning] = warnings_of(headers)
    assert warning.startswith(f'would violate PodSecurity "restricted:latest": {PRIVILEGED_DETAIL}, allowPrivilegeEscalation != false')
    st, doc, _ = await api.post("/api/v1/namespaces/strict/pods", privileged_pod())
    assert st == 403


async def test_namespace_labels_are_validated_and_tightening_warns(api: ApiClient) -> None:
    st, doc, _ = await api.post("/api/v1/namespaces", {"metadata": {"name": "typo", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}})
    assert (st, doc["reason"]) == (422, "Invalid")
    assert doc["message"] == ('Namespace "typo" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
                              'Invalid value: "strict": must be one of privileged, baseline, restricted')
    await namespace(api, "open")
    for name in ("b", "a", "c"):
        assert (await api.post("/api/v1/namespaces/open/pods", privileged_pod(name)))[0] == 201
    st, doc, headers = await api.patch("/api/v1/namespaces/open", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    assert st == 200
    assert warnings_of(headers) == ['existing pods in namespace "open" violate the new PodSecurity enforce level "baseline:latest"',
                                    "a (and 2 other pods): privileged"]
    # existing pods keep working: insignificant updates pass, new violations do not
    assert (await api.patch("/api/v1/namespaces/open/pods/a", {"metadata": {"labels": {"x": "y"}}}))[0] == 200
    assert (await api.post("/api/v1/namespaces/open/pods", privileged_pod("d")))[0] == 403


@needs_kubectl
async def test_kubectl_shows_the_refusal_and_the_warning(api: ApiClient, tmp_path: Path) -> None:
    await namespace(api, "locked", enforce="restricted")
    await namespace(api, "warned", warn="baseline")
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(privileged_pod()))
    rc, out, err = await kubectl(tmp_path, api.base, "apply", "-n", "locked", "-f", str(manifest))
    assert rc != 0
    assert f'Error from server (Forbidden): error when creating "{manifest}": {RESTRICTED_MESSAGE}' in err
    rc, out, err = await kubectl(tmp_path, api.base, "run", "w", "-n", "warned", "--image=busybox", "--restart=Never",
                                 "--overrides", json.dumps({"spec": {"containers": [{"name": "w", "image": "busybox",
                                                                                     "securityContext": {"privileged": True}}]}}))
    assert rc == 0, err
    assert 'Warning: would violate PodSecurity "baseline:latest": privileged (container "w" must not set securityContext.privileged=true)' in err
    assert "pod/w created" in out
    rc, out, err = await kubectl(tmp_path, api.base, "label", "namespace", "warned", "pod-security.kubernetes.io/enforce=baseline")
    assert rc == 0, err
    assert 'Warning: existing pods in namespace "warned" violate the new PodSecurity enforce level "baseline:latest"' in err
    assert "Warning: w: privileged" in err
