"""Kubelet TLS bootstrap (``kyb kubelet --bootstrap-kubeconfig B --kubeconfig K``).

When ``K`` is missing, unreadable, or holds a client certificate that expires within a day, the
kubelet uses ``B`` (server, CA and a bootstrap token, see ``kyb token create``) to get its own
identity, as upstream's kubelet does:

1. a new EC P-256 key;
2. a CertificateSigningRequest ``node-csr-<random>`` for ``O=system:nodes``,
   ``CN=system:node:<node name>``, signer ``kubernetes.io/kube-apiserver-client-kubelet``, usages
   digital signature and client auth — which the controller manager auto-approves for bootstrap
   tokens of the default group and signs;
3. it waits for ``status.certificate`` (a Denied or Failed condition ends it with an error);
4. it writes ``K`` (mode 0600) with the server and CA of ``B`` and the new certificate and key.

Then the kubelet starts with ``K`` as usual.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
RENEW_BEFORE = dt.timedelta(days=1)


class BootstrapError(Exception):
    pass


def needs_bootstrap(kubeconfig: Path, now: dt.datetime) -> bool:
    """Whether ``kubeconfig`` lacks a client certificate valid for at least ``RENEW_BEFORE``."""
    from cryptography import x509

    from ..pki.kubeconfig import load_kubeconfig, resolve_context

    try:
        _ctx, _cluster, user = resolve_context(load_kubeconfig(kubeconfig), None)
        data = user.get("client-certificate-data")
        if not data:
            return True
        cert = x509.load_pem_x509_certificate(base64.b64decode(data))
    except Exception:  # noqa: BLE001 - missing or unusable: make a new one
        return True
    return cert.not_valid_after_utc - now < RENEW_BEFORE


def make_request(node_name: str) -> tuple[bytes, bytes]:
    """(CSR PEM, private key PEM) for the node's client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return (csr.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


async def bootstrap(bootstrap_kubeconfig: str, kubeconfig: str, node_name: str, *,
                    timeout: float = 300.0, poll: float = 1.0) -> bool:
    """Get a client certificate through a CSR if ``kubeconfig`` needs one; True if it did."""
    from ..client.resources import Resource
    from ..client.rest import ApiClient
    from ..pki.kubeconfig import load_kubeconfig, resolve_context, write_kubeconfig

    target = Path(kubeconfig)
    if not await asyncio.to_thread(needs_bootstrap, target, dt.datetime.now(dt.UTC)):
        return False
    doc = await asyncio.to_thread(load_kubeconfig, bootstrap_kubeconfig)
    _ctx, cluster, _user = resolve_context(doc, None)
    server = str(cluster.get("server") or "")
    ca_b64 = cluster.get("certificate-authority-data")
    if not server or not ca_b64:
        raise BootstrapError(f"{bootstrap_kubeconfig}: needs a server and certificate-authority-data")
    csrs = Resource("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest",
                    namespaced=False)
    request_pem, key_pem = await asyncio.to_thread(make_request, node_name)
    name = f"node-csr-{secrets.token_hex(8)}"
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(request_pem).decode(), "signerName": SIGNER,
                     "usages": ["digital signature", "client auth"]}}
    log.info("kubelet %s: requesting a client certificate (%s)", node_name, name)
    async with ApiClient.from_kubeconfig(bootstrap_kubeconfig, timeout=30.0) as client:
        await client.create(csrs, body)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            obj = await client.get(csrs, name)
            status = obj.get("status") or {}
            for c in status.get("conditions") or []:
                if c.get("type") in ("Denied", "Failed") and c.get("status", "True") == "True":
                    raise BootstrapError(f"certificate request {name} was {c['type'].lower()}: {c.get('message', '')}")
            if status.get("certificate"):
                cert_pem = base64.b64decode(status["certificate"])
                break
            if asyncio.get_running_loop().time() > deadline:
                raise BootstrapError(f"certificate request {name} was not signed within {timeout:g}s "
                                     "(is it approved? kubectl certificate approve)")
            await asyncio.sleep(poll)
    await asyncio.to_thread(write_kubeconfig, target, server=server, ca_pem=base64.b64decode(ca_b64),
                            cert_pem=cert_pem, key_pem=key_pem, user=f"system:node:{node_name}")
    log.info("kubelet %s: client certificate issued; wrote %s", node_name, target)
    return True
