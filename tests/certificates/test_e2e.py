"""End to end against ``kyb up`` with the real kubectl: the controller manager gets the cluster
CA as its signing key, so a bootstrap token turns into a node certificate, and a process-runtime
kubelet given only a bootstrap kubeconfig joins and goes Ready."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kybernetes.pki.kubeconfig import write_kubeconfig
from tests.conftest import free_port
from tests.node_e2e.conftest import wait_until

from .conftest import csr, request_pem

pytestmark = pytest.mark.e2e
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}


def kyb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kybernetes.cli.main", *args], capture_output=True, text=True,
                          env=ENV, timeout=60)


def new_token(c: Any) -> str:
    r = kyb("token", "create", "--kubeconfig", str(c.kubeconfig))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_a_bootstrap_token_becomes_a_node_certificate(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = cluster
    token = new_token(c)
    server = ["--kubeconfig", "/dev/null", "--server", f"https://127.0.0.1:{c.port}",
              "--certificate-authority", str(c.data_dir / "pki" / "ca.crt")]
    req, key = request_pem("system:node:joiner", ("system:nodes",))
    c.kubectl(*server, "--token", token, "create", "-f", "-", input=json.dumps(csr("node-csr-joiner", req)))
    cert = wait_until("the node certificate", lambda: c.kubectl(
        "get", "csr", "node-csr-joiner", "-o", "jsonpath={.status.certificate}").stdout)
    row = c.kubectl("get", "csr", "node-csr-joiner", "--no-headers").stdout.split()
    assert row[2:] == ["kubernetes.io/kube-apiserver-client-kubelet", f"system:bootstrap:{token.split('.')[0]}",
                       "<none>", "Approved,Issued"]
    (tmp_path / "n.crt").write_bytes(base64.b64decode(cert))
    (tmp_path / "n.key").write_bytes(key)
    who = c.kubectl(*server, "--client-certificate", str(tmp_path / "n.crt"), "--client-key", str(tmp_path / "n.key"),
                    "auth", "whoami").stdout
    assert "system:node:joiner" in who and "system:nodes" in who
    c.kubectl("delete", "csr", "node-csr-joiner")


def test_a_process_kubelet_joins_with_a_bootstrap_kubeconfig(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = cluster
    token = new_token(c)
    boot = write_kubeconfig(tmp_path / "bootstrap.kubeconfig", server=f"https://127.0.0.1:{c.port}",
                            ca_pem=(c.data_dir / "pki" / "ca.crt").read_bytes(), token=token, user="bootstrap")
    kc = tmp_path / "kubelet.kubeconfig"
    log = (tmp_path / "kubelet.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "kybernetes.cli.main", "kubelet", "--runtime", "process",
                             "--bootstrap-kubeconfig", str(boot), "--kubeconfig", str(kc), "--node-name", "joiner2",
                             "--data-dir", str(tmp_path / "kubelet"), "--port", str(free_port())],
                            stdout=log, stderr=log, env=ENV, start_new_session=True)

    def ready() -> bool:
        r = c.kubectl("get", "node", "joiner2", "-o", "json", check=False)
        conds = json.loads(r.stdout)["status"].get("conditions", []) if r.returncode == 0 else []
        return any(x["type"] == "Ready" and x["status"] == "True" for x in conds)

    try:
        wait_until("node joiner2 Ready", ready, timeout=60)
        assert "system:node:joiner2" in c.kubectl("--kubeconfig", str(kc), "auth", "whoami").stdout
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        c.kubectl("delete", "node", "joiner2", check=False)
