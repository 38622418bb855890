"""Issue 5 acceptance: a pod's mounted service-account token works from inside the pod for what
its ServiceAccount is bound to and nothing else, stops working once the pod is deleted, and an
expired token is rejected.

The pod runs (process runtime, so it reaches the API server on 127.0.0.1) a script with the
official ``kubernetes`` client's ``config.load_incluster_config()``: the token and CA files of the
projected volume that admission added, and ``KUBERNETES_SERVICE_HOST``/``_PORT`` (set in the pod
spec because the cluster has no Service proxy; explicit variables win over the service links).
The process runtime puts volumes under the container's stand-in root, its working directory, so
the script points the loader's two well-known paths there (relative) before calling it.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from kybernetes.pki import satoken
from tests.node_e2e.conftest import NodeCluster, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("node-process")]

SA_DIR = "var/run/secrets/kubernetes.io/serviceaccount/"   # relative: the process runtime's stand-in root
SCRIPT = f"""
import sys, time
from kubernetes import client, config
from kubernetes.config import incluster_config
d = {SA_DIR!r}
incluster_config.SERVICE_TOKEN_FILENAME, incluster_config.SERVICE_CERT_FILENAME = d + "token", d + "ca.crt"
config.load_incluster_config()
api = client.CoreV1Api()
ns = open(d + "namespace").read()
for what, call in (("PODS", lambda: api.list_namespaced_pod(ns)), ("SECRETS", lambda: api.list_namespaced_secret(ns)),
                   ("OTHERNS", lambda: api.list_namespaced_pod("default"))):
    try:
        call()
        print(what, 200)
    except client.ApiException as e:
        print(what, e.status)
print("TOKEN", open(d + "token").read().strip())
sys.stdout.flush()
time.sleep(3600)
"""


def _status(c: NodeCluster, token: str, ns: str = "default") -> int:
    """The HTTP status of listing pods in ``ns`` with ``token``."""
    ctx = ssl.create_default_context(cafile=str(c.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(f"https://127.0.0.1:{c.port}/api/v1/namespaces/{ns}/pods",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_pod_token_in_cluster_client(process_cluster: NodeCluster) -> None:
    c = process_cluster
    ns = "tok-" + uuid.uuid4().hex[:8]
    c.kubectl("create", "namespace", ns)
    try:
        c.kubectl("create", "serviceaccount", "reader", "-n", ns)
        c.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
        c.kubectl("create", "rolebinding", "reader", "--role=pod-reader", f"--serviceaccount={ns}:reader", "-n", ns)
        manifest = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": ns},
            "spec": {"serviceAccountName": "reader", "restartPolicy": "Never", "containers": [{
                "name": "main", "image": c.image, "command": [sys.executable, "-c", SCRIPT],
                "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                        {"name": "KUBERNETES_SERVICE_PORT", "value": str(c.port)}]}]}}
        c.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        logs = c.wait_pod(ns, "client", "the client's report",
                          lambda _p: "TOKEN" in (out := c.kubectl("logs", "client", "-n", ns, check=False).stdout) and out,
                          timeout=90)
        report = dict(line.split(" ", 1) for line in logs.splitlines() if " " in line)
        assert report["PODS"] == "200", logs            # what its Role grants
        assert report["SECRETS"] == "403", logs         # not granted
        assert report["OTHERNS"] == "403", logs         # nothing outside its namespace
        token = report["TOKEN"]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["kubernetes.io"]["pod"]["name"] == "client"
        assert _status(c, token, ns) == 200, "the copied token works from outside as well"
        assert _status(c, token) == 403, "valid token, no rights in default"

        # an expired token (same claims, signed with the cluster's key) is rejected
        signer = satoken.Signer.of(satoken.load_private_key((c.data_dir / "pki" / "sa.key").read_bytes()))
        expired = signer.sign({**claims, "exp": int(time.time()) - 60, "nbf": int(time.time()) - 7200,
                               "iat": int(time.time()) - 7200})
        assert _status(c, expired, ns) == 401
        assert _status(c, signer.sign(claims), ns) == 200, "control: the same claims, unexpired, pass"

        # the pod's token dies with the pod
        c.kubectl("delete", "pod", "client", "-n", ns, "--grace-period=1", "--wait=true", timeout=120)
        wait_until("the token rejected", lambda: _status(c, token, ns) == 401, timeout=30)
    finally:
        c.kubectl("delete", "namespace", ns, "--wait=false", check=False)
