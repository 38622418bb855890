"""Kubelet TLS bootstrap end to end: ``kyb kubelet --runtime fake --bootstrap-kubeconfig`` with
only a bootstrap token gets its certificate through a CSR and registers a Ready Node; a bad
token fails with one clear line; a kubelet interrupted while it waits asks again under the same
CSR name with the same key."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kybernetes.client import ApiClient, NotFound
from kybernetes.client.resources import CLUSTERROLEBINDINGS, NODES
from kybernetes.kubelet import bootstrap as kb
from kybernetes.pki.kubeconfig import write_kubeconfig

from .conftest import CSRS, Env, eventually

pytestmark = pytest.mark.integration
SRC = str(Path(__file__).resolve().parents[2] / "src")


def bootstrap_kubeconfig(env: Env, path: Path, token: str) -> Path:
    return write_kubeconfig(path, server=env.server.base, ca_pem=env.server.pki.ca_cert.read_bytes(), token=token,
                            user="kubelet-bootstrap")


@contextlib.asynccontextmanager
async def kyb_kubelet(*args: str, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``kyb kubelet ARGS`` as a child process, stopped (and reaped) on exit."""
    env = {**os.environ, "PYTHONPATH": SRC}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "kybernetes.cli.main", "kubelet", *args,
                                                    stdout=out, stderr=out, env=env)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def node_ready(env: Env, name: str) -> bool:
    try:
        node = await env.admin.get(NODES, name)
    except NotFound:
        return False
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


async def test_a_fake_kubelet_joins_with_only_a_bootstrap_token(env: Env, tmp_path: Path) -> None:
    await env.create_token()
    boot = bootstrap_kubeconfig(env, tmp_path / "bootstrap.kubeconfig", "abcdef.0123456789abcdef")
    bad = bootstrap_kubeconfig(env, tmp_path / "bad.kubeconfig", "abcdef.0000000000000000")
    kc = tmp_path / "kubelet.kubeconfig"

    async with kyb_kubelet("--runtime", "fake", "--bootstrap-kubeconfig", str(bad), "--kubeconfig",
                           str(tmp_path / "never.kubeconfig"), "--node-name", "n1", log=tmp_path / "bad.log") as p:
        async with asyncio.timeout(60):
            assert await p.wait() == 1
    lines = (tmp_path / "bad.log").read_text().strip().splitlines()
    assert lines[-1] == "kyb: error: TLS bootstrap: Unauthorized", lines
    assert not (tmp_path / "never.kubeconfig").exists()

    async with kyb_kubelet("--runtime", "fake", "--bootstrap-kubeconfig", str(boot), "--kubeconfig", str(kc),
                           "--node-name", "n1", log=tmp_path / "kubelet.log") as p:
        try:
            await eventually(lambda: node_ready(env, "n1"), "node n1 Ready", timeout=45)
        except AssertionError:
            raise AssertionError((tmp_path / "kubelet.log").read_text()[-3000:]) from None
        assert p.returncode is None
    assert stat.S_IMODE(kc.stat().st_mode) == 0o600
    assert not kc.with_name(kc.name + ".key.tmp").exists(), "the pending key is removed once the certificate is in"
    csrs = (await env.admin.list(CSRS))["items"]
    assert [(c["spec"]["username"], c["metadata"]["name"].startswith("node-csr-")) for c in csrs] == [
        ("system:bootstrap:abcdef", True)]
    assert await kb.bootstrap(str(boot), str(kc), "n1") is False, "a valid kubeconfig is kept"
    node = await asyncio.to_thread(ApiClient.from_kubeconfig, str(kc))
    try:
        me = await node.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert me["status"]["userInfo"]["username"] == "system:node:n1"
    finally:
        await node.close()


async def test_an_interrupted_bootstrap_resumes_with_the_same_request(env: Env, tmp_path: Path) -> None:
    # a token group that may create CSRs but is not auto-approved: an administrator approves
    await env.create_token(groups=("system:bootstrappers:manual",))
    await env.admin.create(CLUSTERROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "manual"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-bootstrapper"},
        "subjects": [{"kind": "Group", "name": "system:bootstrappers:manual", "apiGroup": "rbac.authorization.k8s.io"}]})
    boot = bootstrap_kubeconfig(env, tmp_path / "bootstrap.kubeconfig", "abcdef.0123456789abcdef")
    kc = tmp_path / "k"
    with pytest.raises(kb.BootstrapError, match="was not signed within"):
        await kb.bootstrap(str(boot), str(kc), "n5", timeout=0.5, poll=0.1)
    pending = kc.with_name("k.key.tmp")
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600 and not kc.exists()
    (first,) = (await env.admin.list(CSRS))["items"]
    assert not (first.get("status") or {}).get("conditions"), "not auto-approved for this group"
    task = asyncio.ensure_future(kb.bootstrap(str(boot), str(kc), "n5", timeout=30, poll=0.1))
    try:
        await asyncio.sleep(0.3)
        assert [c["metadata"]["name"] for c in (await env.admin.list(CSRS))["items"]] == [first["metadata"]["name"]]
        admin = await env.server.admin()
        rc, _, err = await env.server.kubectl(admin, "certificate", "approve", first["metadata"]["name"])
        assert rc == 0, err
        async with asyncio.timeout(20):
            assert await task is True
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, kb.BootstrapError):
            await task
    assert kc.exists() and not pending.exists()
    assert not kb.needs_bootstrap(kc, dt.datetime.now(dt.UTC))


def test_the_rotation_deadline_is_at_70_to_90_percent_of_the_life() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=100)
    assert kb.rotation_deadline(start, end, 0.0) == start + dt.timedelta(days=70)
    assert kb.rotation_deadline(start, end, 0.5) == start + dt.timedelta(days=80)
    assert kb.rotation_deadline(start, end, 0.999) < start + dt.timedelta(days=90)


async def test_a_kubelet_rotates_its_client_certificate(env: Env, tmp_path: Path) -> None:
    """--rotate-certificates: at the deadline a new key is certified through a CSR the controller
    manager approves as a self renewal; the kubeconfig is rewritten and the client goes on."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ident = await env.server.identity("system:node:rot1", ("system:nodes",))
    kc = tmp_path / "kubelet.kubeconfig"
    kc.write_bytes(ident.kubeconfig.read_bytes())
    old_pem = kb._client_cert_pem(kc)
    client = ApiClient.from_kubeconfig(kc)
    first = [dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)]   # the first look finds it due, later ones do not

    def now() -> dt.datetime:
        return first.pop() if first else dt.datetime.now(dt.UTC)

    assert (await whoami(client)) == "system:node:rot1"   # a session with the old certificate
    session_before = client._session
    task = asyncio.ensure_future(kb.rotate_client_certificate(client, str(kc), "rot1", now=now, poll=0.1))
    try:
        new_pem = await eventually(lambda: _changed(kc, old_pem), "the rotated certificate")
        cert = x509.load_pem_x509_certificate(new_pem)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:rot1"
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
        assert cert.public_key() != x509.load_pem_x509_certificate(old_pem).public_key()
        assert not (tmp_path / "kubelet.kubeconfig.key.tmp").exists()
        assert stat.S_IMODE(kc.stat().st_mode) == 0o600
        [renewal] = [c for c in (await env.admin.list(CSRS))["items"] if c["spec"]["username"] == "system:node:rot1"]
        assert renewal["status"]["conditions"][0]["message"] == (
            "Auto approving self kubelet client certificate after SubjectAccessReview.")
        await eventually(lambda: _swapped(client, session_before), "the client to take the new certificate")
        # the running client and one made from the rewritten kubeconfig both act as the node
        fresh = ApiClient.from_kubeconfig(kc)
        try:
            for c in (client, fresh):
                assert (await whoami(c)) == "system:node:rot1"
        finally:
            await fresh.close()
        assert not task.done()   # waiting for the next deadline
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def whoami(client: ApiClient) -> str:
    review = await client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                  body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return str(review["status"]["userInfo"]["username"])


async def _changed(kc: Path, old: bytes | None) -> bytes | None:
    pem = await asyncio.to_thread(kb._client_cert_pem, kc)
    return pem if pem != old else None


async def _swapped(client: ApiClient, before: object) -> bool:
    return client._session is not before
