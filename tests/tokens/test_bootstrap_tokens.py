"""Bootstrap tokens: the pure rules, authentication through an in-process API server, the token
cleaner, and ``kyb token`` with the real kubectl against ``kyb up``."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest

from kybernetes.apiserver import bootstraptoken as bt
from kybernetes.cli.token import list_rows
from kybernetes.client import ApiClient as KubeClient
from kybernetes.client.resources import SECRETS
from kybernetes.controllers import bootstraptoken as cleaner
from tests.conftest import ApiClient
from tests.controllers.conftest import running
from tests.harness import exists, wait_for

from .test_token_api import whoami

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
TOKEN = "abcdef.0123456789abcdef"


def secret(**kw: object) -> dict:
    return bt.token_secret(TOKEN, now=NOW, **kw)  # type: ignore[arg-type]


def test_parse_and_new() -> None:
    assert bt.parse_token(TOKEN) == ("abcdef", "0123456789abcdef")
    for bad in ("abcdef.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "", "a.b"):
        assert bt.parse_token(bad) is None
    assert bt.parse_token(bt.new_token()) is not None


def test_identity() -> None:
    s = secret(ttl_seconds=3600, groups=("system:bootstrappers:kybernetes:default-node-token",))
    user, groups = bt.identity(s, "abcdef", "0123456789abcdef", NOW) or ("", [])
    assert user == "system:bootstrap:abcdef"
    assert groups == ["system:bootstrappers", "system:bootstrappers:kybernetes:default-node-token", "system:authenticated"]
    assert bt.identity(s, "abcdef", "0123456789abcdee", NOW) is None, "wrong secret"
    assert bt.identity(s, "abcdef", "0123456789abcdef", NOW + dt.timedelta(hours=2)) is None, "expired"
    assert bt.identity({**s, "type": "Opaque"}, "abcdef", "0123456789abcdef", NOW) is None
    assert bt.identity({**s, "metadata": {**s["metadata"], "deletionTimestamp": "x"}}, "abcdef", "0123456789abcdef", NOW) is None
    no_usage = {**s, "data": {k: v for k, v in s["data"].items() if k != "usage-bootstrap-authentication"}}
    assert bt.identity(no_usage, "abcdef", "0123456789abcdef", NOW) is None
    assert bt.identity(secret(), "abcdef", "0123456789abcdef", NOW + dt.timedelta(days=999)) is not None, "no expiry"
    with pytest.raises(ValueError):
        bt.token_secret(TOKEN, ttl_seconds=None, groups=("admins",))
    rows = list_rows([s], NOW)
    assert rows[0][0] == "abcdef.<secret>" and rows[0][1] == "1h" and "authentication" in rows[0][3]


@pytest.mark.integration
async def test_a_bootstrap_token_authenticates_until_deleted_or_expired(api: ApiClient) -> None:
    st, doc, _ = await api.post("/api/v1/namespaces/kube-system/secrets", bt.token_secret(TOKEN, ttl_seconds=3600))
    assert st == 201, doc
    st, me = await whoami(api, TOKEN)
    assert st == 201 and me["status"]["userInfo"]["username"] == "system:bootstrap:abcdef"
    assert "system:bootstrappers" in me["status"]["userInfo"]["groups"]
    assert (await whoami(api, "abcdef.0000000000000000"))[0] == 401
    assert (await whoami(api, "zzzzzz.0123456789abcdef"))[0] == 401
    st, _, _ = await api.delete("/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef")
    assert st == 200
    assert (await whoami(api, TOKEN))[0] == 401
    expired = bt.token_secret(TOKEN, ttl_seconds=60, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    st, _, _ = await api.post("/api/v1/namespaces/kube-system/secrets", expired)
    assert st == 201
    assert (await whoami(api, TOKEN))[0] == 401


@pytest.mark.integration
async def test_the_token_cleaner_deletes_expired_tokens(api: ApiClient) -> None:
    client = KubeClient(api.base, timeout=10.0)
    try:
        async with running(client, cleaner):
            soon = bt.token_secret("aaaaaa.0123456789abcdef", ttl_seconds=1)
            forever = bt.token_secret("bbbbbb.0123456789abcdef", ttl_seconds=None)
            for s in (soon, forever):
                assert (await api.post("/api/v1/namespaces/kube-system/secrets", s))[0] == 201
            await wait_for(lambda: _absent(client, "bootstrap-token-aaaaaa"), timeout=10, what="expired token deleted")
            assert await exists(client, SECRETS, "bootstrap-token-bbbbbb", "kube-system")
    finally:
        await client.close()


async def _absent(client: KubeClient, name: str) -> bool:
    return not await exists(client, SECRETS, name, "kube-system")


@pytest.mark.e2e
def test_kyb_token_with_kubectl(cluster) -> None:  # type: ignore[no-untyped-def]
    c = cluster
    env = {**os.environ, "PYTHONPATH": str(os.path.abspath("src"))}

    def kyb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "token", *args,
                               "--kubeconfig", str(c.kubeconfig)], capture_output=True, text=True, env=env, timeout=60)

    r = kyb("create", "--ttl", "1h", "--description", "join node 2")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert bt.parse_token(token)
    listed = kyb("list").stdout
    assert f"{token.split('.')[0]}.<secret>" in listed and "join node 2" in listed
    as_token = ["--kubeconfig", "/dev/null", "--server", f"https://127.0.0.1:{c.port}",
                "--certificate-authority", str(c.data_dir / "pki" / "ca.crt"), "--token", token]
    who = c.kubectl(*as_token, "auth", "whoami").stdout
    assert f"system:bootstrap:{token.split('.')[0]}" in who and "system:bootstrappers" in who
    # RBAC binds the default group to system:node-bootstrapper (CSRs); asked directly, since
    # kubectl cannot map a resource type the server does not serve yet
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": {
        "group": "certificates.k8s.io", "resource": "certificatesigningrequests", "verb": "create"}}}
    ctx = ssl.create_default_context(cafile=str(c.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.port}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                 data=json.dumps(review).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        assert json.load(resp)["status"]["allowed"] is True
    assert c.kubectl(*as_token, "auth", "can-i", "list", "secrets", "-A", check=False).stdout.strip() == "no"
    bad = kyb("create", "--ttl", "soon")
    assert bad.returncode == 1 and bad.stderr.startswith("kyb: error:") and len(bad.stderr.strip().splitlines()) == 1
    assert kyb("delete", token).returncode == 0
    r = c.kubectl(*as_token, "auth", "whoami", check=False)
    assert r.returncode != 0 and "Unauthorized" in r.stderr
    assert kyb("delete", token).returncode == 1
