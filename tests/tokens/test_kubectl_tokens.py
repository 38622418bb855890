"""Tokens with the real kubectl and the official Python client.

* against an in-process test server (plain HTTP, admin without credentials): `kubectl create
  token` with its flags, and the token used by the Python client (kubectl, like client-go,
  sends bearer tokens only over TLS);
* against a real `kyb apiserver` process (TLS, the cluster's `pki/sa.key`, anonymous off,
  strict ServiceAccount admission): the whole user path, including a pod-bound token that
  stops working when the pod is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ApiClient, free_port
from tests.harness import wait_for

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
if not os.path.exists(KUBECTL):
    pytest.skip("kubectl is not installed", allow_module_level=True)


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def write_kubeconfig(path: Path, server: str, *, ca: Path | None = None, token: str | None = None) -> Path:
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    user: dict[str, Any] = {"token": token} if token else {}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
    }))
    return path


async def kubectl(kubeconfig: Path, home: Path, *args: str, check: bool = True) -> tuple[int, str, str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home), "KUBECACHEDIR": str(home / "cache")}
    proc = await asyncio.create_subprocess_exec(KUBECTL, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    rc = proc.returncode or 0
    if check and rc != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({rc}):\n{out.decode()}\n{err.decode()}")
    return rc, out.decode(), err.decode()


def python_client(host: str, token: str, ca: Path | None = None) -> Any:
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = host
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    if ca is not None:
        cfg.ssl_ca_cert = str(ca)
    return client.ApiClient(cfg)


# --------------------------------------------------------------------------- in-process server


async def test_kubectl_create_token_against_a_test_server(api: ApiClient, tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "admin.kubeconfig", api.base)
    home = tmp_path / "home"
    home.mkdir()
    await kubectl(kc, home, "create", "serviceaccount", "bot")
    _, token, _ = await kubectl(kc, home, "create", "token", "bot")
    c = claims_of(token.strip())
    assert c["sub"] == "system:serviceaccount:default:bot" and c["exp"] - c["iat"] == 3600
    _, token, _ = await kubectl(kc, home, "create", "token", "bot", "--duration", "10m",
                                "--audience", "https://vault.example", "--audience", "https://kubernetes.default.svc.cluster.local")
    c = claims_of(token.strip())
    assert c["exp"] - c["iat"] == 600
    assert c["aud"] == ["https://vault.example", "https://kubernetes.default.svc.cluster.local"]
    rc, _, err = await kubectl(kc, home, "create", "token", "bot", "--duration", "1m", check=False)
    assert rc != 0 and "may not specify a duration less than 10 minutes" in err
    rc, _, err = await kubectl(kc, home, "create", "token", "ghost", check=False)
    assert rc != 0 and 'serviceaccounts "ghost" not found' in err
    await kubectl(kc, home, "run", "web", "--image=busybox", "--overrides", json.dumps({"spec": {"serviceAccountName": "bot"}}))
    _, token, _ = await kubectl(kc, home, "create", "token", "bot", "--bound-object-kind", "Pod", "--bound-object-name", "web")
    token = token.strip()
    assert claims_of(token)["kubernetes.io"]["pod"]["name"] == "web"
    # the token used by the Python client (kubectl sends tokens only over TLS: see the next test)
    from kubernetes import client

    with python_client(api.base, token) as pc:
        review = await asyncio.to_thread(lambda: client.AuthenticationV1Api(pc).create_self_subject_review(
            client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")))
        assert review.status.user_info.username == "system:serviceaccount:default:bot"
        assert review.status.user_info.extra["authentication.kubernetes.io/pod-name"] == ["web"]
        names = await asyncio.to_thread(lambda: [n.metadata.name for n in client.CoreV1Api(pc).list_namespace().items])
        assert "kube-system" in names
    await kubectl(kc, home, "delete", "pod", "web", "--wait=false")
    await wait_for(lambda: _refused(api.base, token), timeout=10, what="pod-bound token refused after the pod is gone")


async def _refused(host: str, token: str, ca: Path | None = None) -> bool:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    def call() -> bool:
        with python_client(host, token, ca) as pc:
            try:
                client.CoreV1Api(pc).list_namespace()
            except ApiException as e:
                assert e.status == 401, e
                return True
        return False

    return await asyncio.to_thread(call)


# --------------------------------------------------------------------------- a real `kyb apiserver`


@pytest.fixture
async def apiserver(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tests.integration.test_crash_api import ApiProcess

    data = tmp_path / "data"
    data.mkdir()
    # authentication is what these tests check; RBAC with tokens is tests/authz's subject
    p = ApiProcess(data, free_port(), "--authorization-mode", "AlwaysAllow")
    p.start()
    try:
        await p.wait_ready()
        yield p
    finally:
        p.stop()


async def test_kyb_apiserver_tokens_over_tls(apiserver: Any, tmp_path: Path) -> None:
    from kubernetes import client

    home = tmp_path / "home"
    home.mkdir()
    admin = apiserver.data_dir / "admin.kubeconfig"
    ca = apiserver.data_dir / "pki" / "ca.crt"
    await kubectl(admin, home, "create", "serviceaccount", "bot")
    _, token, _ = await kubectl(admin, home, "create", "token", "bot", "--duration", "10m")
    token = token.strip()
    # signed with the cluster's pki/sa.key
    from kybernetes.pki import satoken

    key = satoken.Signer.of(satoken.load_private_key((apiserver.data_dir / "pki" / "sa.key").read_bytes()))
    assert satoken.decode(token, [key.verification_key]) is not None

    # a token-only kubeconfig (no client certificate) works with kubectl ...
    tk = write_kubeconfig(tmp_path / "token.kubeconfig", apiserver.url, ca=ca, token=token)
    _, out, _ = await kubectl(tk, home, "auth", "whoami", "-o", "json")
    assert json.loads(out)["status"]["userInfo"]["username"] == "system:serviceaccount:default:bot"
    # ... and with the Python client
    with python_client(apiserver.url, token, ca) as pc:
        review = await asyncio.to_thread(lambda: client.AuthenticationV1Api(pc).create_self_subject_review(
            client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")))
        assert review.status.user_info.groups == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    # a tampered token is refused; anonymous access is off on a real server
    h, p, s = token.split(".")
    evil = base64.urlsafe_b64encode(json.dumps({**claims_of(token), "sub": "system:serviceaccount:kube-system:x"}).encode()).rstrip(b"=").decode()
    assert await _refused(apiserver.url, f"{h}.{evil}.{s}", ca)

    # strict ServiceAccount admission: no controller manager here, so no `default` account
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(pod))
    rc, _, err = await kubectl(admin, home, "create", "-f", str(manifest), check=False)
    assert rc != 0
    assert ('pods "web" is forbidden: error looking up service account default/default: '
            'serviceaccount "default" not found') in err
    pod["spec"]["serviceAccountName"] = "bot"
    manifest.write_text(json.dumps(pod))
    await kubectl(admin, home, "create", "-f", str(manifest))
    _, out, _ = await kubectl(admin, home, "get", "pod", "web", "-o", "json")
    vols = json.loads(out)["spec"]["volumes"]
    assert vols[0]["name"].startswith("kube-api-access-") and vols[0]["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}

    # a pod-bound token stops working once the pod is deleted
    _, bound, _ = await kubectl(admin, home, "create", "token", "bot", "--bound-object-kind", "Pod", "--bound-object-name", "web")
    bound = bound.strip()
    with python_client(apiserver.url, bound, ca) as pc:
        await asyncio.to_thread(lambda: client.CoreV1Api(pc).list_namespaced_pod("default"))
    await kubectl(admin, home, "delete", "pod", "web")
    await wait_for(lambda: _refused(apiserver.url, bound, ca), timeout=10, what="bound token refused")
    # the unbound token still works; deleting the service account ends it too
    assert not await _refused(apiserver.url, token, ca)
    await kubectl(admin, home, "delete", "serviceaccount", "bot")
    await wait_for(lambda: _refused(apiserver.url, token, ca), timeout=10, what="token of a deleted SA refused")

    # OIDC discovery: for authenticated users only
    import ssl

    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(apiserver.url + "/.well-known/openid-configuration",
                                                   ssl=ssl.create_default_context(cafile=str(ca))) as r:
        assert r.status == 401
    _, out, _ = await kubectl(admin, home, "get", "--raw", "/.well-known/openid-configuration")
    doc = json.loads(out)
    assert doc["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert doc["jwks_uri"] == f"https://127.0.0.1:{apiserver.port}/openid/v1/jwks"
    _, out, _ = await kubectl(admin, home, "get", "--raw", "/openid/v1/jwks")
    assert json.loads(out)["keys"][0]["kid"] == key.kid
