"""CertificateSigningRequests: validation, the auto-approver's rules, signing, and the whole
TLS bootstrap of a node with the real kubectl: bootstrap token → CSR → approved → signed →
the certificate authenticates as ``system:node:<name>``."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kybernetes.api.csr import approval, decode_request, validate_csr
from kybernetes.controllers.certificates import node_client_name, sign
from kybernetes.pki.certs import make_ca
from tests.node_e2e.conftest import wait_until

Obj = dict[str, Any]


def request_pem(cn: str, org: str = "", key: Any = None, sans: list[str] | None = None) -> tuple[str, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []) + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return base64.b64encode(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)).decode(), key


def csr(name: str, request: str, signer: str = "kubernetes.io/kube-apiserver-client-kubelet",
        usages: tuple[str, ...] = ("digital signature", "client auth"), **spec: Any) -> Obj:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": request, "signerName": signer, "usages": list(usages), **spec}}


def test_validation() -> None:
    req, _ = request_pem("alice")
    assert validate_csr(csr("a", req), None) == []
    fields = {c.field for c in validate_csr(csr("a", "aGVsbG8=", signer="kubernetes.io/legacy-unknown",
                                                 usages=("client auth", "bogus"), expirationSeconds=5), None)}
    assert fields == {"spec.request", "spec.signerName", "spec.usages[1]", "spec.expirationSeconds"}
    both = csr("a", req)
    both["status"] = {"conditions": [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]}
    assert any("mutually exclusive" in c.message for c in validate_csr(both, None))
    early = csr("a", req)
    early["status"] = {"certificate": "Y2VydA=="}
    assert any("once the request is approved" in c.message for c in validate_csr(early, None))
    assert approval(both) == "Approved"


def test_node_client_rule_and_signing() -> None:
    ok, key = request_pem("system:node:n1", "system:nodes")
    assert node_client_name(csr("a", ok), decode_request(ok)) == "n1"
    for req, c in ((ok, csr("a", ok, usages=("client auth", "server auth"))),
                   (ok, csr("a", ok, signer="kubernetes.io/kube-apiserver-client")),
                   (request_pem("system:node:n1", "admins")[0], None),
                   (request_pem("alice", "system:nodes")[0], None),
                   (request_pem("system:node:n1", "system:nodes", sans=["evil.example"])[0], None)):
        assert node_client_name(c or csr("a", req), decode_request(req)) is None
    ca, ca_key = make_ca()
    now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    pem = sign(decode_request(ok), {"usages": ["client auth", "digital signature"], "expirationSeconds": 3600},
               ca, ca_key, max_seconds=86400, now=now)
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    assert cert.not_valid_after_utc - now == dt.timedelta(hours=1)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    capped = sign(decode_request(ok), {"usages": ["client auth"], "expirationSeconds": 10 ** 9}, ca, ca_key,
                  max_seconds=86400, now=now)
    assert x509.load_pem_x509_certificate(capped).not_valid_after_utc - now == dt.timedelta(days=1)


@pytest.mark.e2e
def test_tls_bootstrap_and_kubectl_certificate_approve(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = cluster
    token = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "token", "create", "--kubeconfig",
                            str(c.kubeconfig)], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    server = ["--kubeconfig", "/dev/null", "--server", f"https://127.0.0.1:{c.port}",
              "--certificate-authority", str(c.data_dir / "pki" / "ca.crt")]

    def issued(name: str) -> str:
        return c.kubectl("get", "csr", name, "-o", "jsonpath={.status.certificate}").stdout

    def login_with(cert_b64: str, key: Any, name: str) -> list[str]:
        (tmp_path / f"{name}.crt").write_bytes(base64.b64decode(cert_b64))
        (tmp_path / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
        return [*server, "--client-certificate", str(tmp_path / f"{name}.crt"), "--client-key", str(tmp_path / f"{name}.key")]

    # a new node, with only the bootstrap token: auto-approved and signed
    req, key = request_pem("system:node:joiner", "system:nodes")
    c.kubectl(*server, "--token", token, "create", "-f", "-", input=json.dumps(csr("node-csr-joiner", req)))
    cert = wait_until("the node certificate", lambda: issued("node-csr-joiner"))
    row = c.kubectl("get", "csr", "node-csr-joiner").stdout
    assert "Approved,Issued" in row and f"system:bootstrap:{token.split('.')[0]}" in row
    who = c.kubectl(*login_with(cert, key, "joiner"), "auth", "whoami").stdout
    assert "system:node:joiner" in who and "system:nodes" in who

    # the same token asking for something else: not auto-approved
    other, _ = request_pem("system:node:joiner", "system:masters")
    c.kubectl(*server, "--token", token, "create", "-f", "-", input=json.dumps(csr("sneaky", other)))
    time.sleep(2)
    assert "Pending" in c.kubectl("get", "csr", "sneaky").stdout and issued("sneaky") == ""

    # a user certificate: pending until an administrator approves it with kubectl
    req, key = request_pem("alice", "devs")
    c.kubectl("create", "-f", "-", input=json.dumps(csr("alice", req, signer="kubernetes.io/kube-apiserver-client",
                                                         usages=("client auth",), expirationSeconds=3600)))
    time.sleep(1)
    assert issued("alice") == ""
    c.kubectl("certificate", "approve", "alice")
    cert = wait_until("alice's certificate", lambda: issued("alice"))
    who = c.kubectl(*login_with(cert, key, "alice"), "auth", "whoami").stdout
    assert "alice" in who and "devs" in who
    r = c.kubectl("certificate", "deny", "alice", check=False)
    assert r.returncode != 0 and "already Approved" in r.stderr
    c.kubectl("delete", "csr", "alice", "sneaky", "node-csr-joiner")


@pytest.mark.e2e
def test_kubelet_tls_bootstrap(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``kyb kubelet --bootstrap-kubeconfig``: a node with only a bootstrap token joins."""
    from kybernetes.pki.kubeconfig import write_kubeconfig
    from tests.conftest import free_port

    c = cluster
    token = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "token", "create", "--kubeconfig",
                            str(c.kubeconfig)], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    boot = write_kubeconfig(tmp_path / "bootstrap.kubeconfig", server=f"https://127.0.0.1:{c.port}",
                            ca_pem=(c.data_dir / "pki" / "ca.crt").read_bytes(), token=token, user="bootstrap")
    kc = tmp_path / "kubelet.kubeconfig"
    # a wrong token: one clear line, non-zero exit
    bad = write_kubeconfig(tmp_path / "bad.kubeconfig", server=f"https://127.0.0.1:{c.port}",
                           ca_pem=(c.data_dir / "pki" / "ca.crt").read_bytes(), token="abcdef.0000000000000000")
    r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "kubelet", "--runtime", "process",
                        "--bootstrap-kubeconfig", str(bad), "--kubeconfig", str(tmp_path / "never.kubeconfig"),
                        "--node-name", "joiner2", "--data-dir", str(tmp_path / "never")],
                       capture_output=True, text=True, timeout=60)
    errors = [x for x in r.stderr.splitlines() if "error" in x.lower()]
    assert r.returncode != 0 and errors == ["kyb: error: TLS bootstrap: Unauthorized"], r.stderr
    proc = subprocess.Popen([sys.executable, "-m", "kybernetes.cli.main", "kubelet", "--runtime", "process",
                             "--bootstrap-kubeconfig", str(boot), "--kubeconfig", str(kc), "--node-name", "joiner2",
                             "--data-dir", str(tmp_path / "kubelet"), "--port", str(free_port())],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "kubelet.log", "wb"), start_new_session=True)
    try:
        wait_until("node joiner2 Ready", lambda: any(
            x["type"] == "Ready" and x["status"] == "True"
            for x in (c.kjson("get", "nodes").get("items") and next(
                (n for n in c.kjson("get", "nodes")["items"] if n["metadata"]["name"] == "joiner2"), {}
            ).get("status", {}).get("conditions") or [])), timeout=60)
        who = c.kubectl("--kubeconfig", str(kc), "auth", "whoami").stdout
        assert "system:node:joiner2" in who
        csrs = c.kubectl("get", "csr").stdout
        assert "Approved,Issued" in csrs and f"system:bootstrap:{token.split('.')[0]}" in csrs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        c.kubectl("delete", "node", "joiner2", check=False)
