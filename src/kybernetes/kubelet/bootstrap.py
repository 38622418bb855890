"""Kubelet TLS bootstrap (``kyb kubelet --bootstrap-kubeconfig B --kubeconfig K``).

When ``K`` is missing, unreadable, or holds a client certificate that has expired or expires
within a day, the kubelet uses ``B`` (server, CA and a bootstrap token, see ``kyb token create``)
to get its own identity, as upstream's kubelet does:

1. an EC P-256 key, kept in ``K.key.tmp`` (0600) until the certificate arrives, so a kubelet
   restarted while it waits asks again with the same key;
2. a CertificateSigningRequest for ``O=system:nodes``, ``CN=system:node:<node name>``, signer
   ``kubernetes.io/kube-apiserver-client-kubelet``, usages digital signature and client auth,
   named ``node-csr-<digest of key, subject and usages>`` (upstream's naming): the same key asks
   under the same name, and an existing request of that name is reused when it asks for the
   same thing. The controller manager auto-approves it for bootstrap tokens allowed to create
   ``certificatesigningrequests/nodeclient`` and signs it;
3. it waits (polling, up to ``timeout``) for ``status.certificate``; a Denied or Failed
   condition ends it with an error, as does a certificate for another key;
4. it writes ``K`` (mode 0600, written atomically) with the server and CA of ``B`` and the new
   certificate and key, and removes the pending key.

Then the kubelet starts with ``K`` as usual. Pure parts (``needs_bootstrap`` over a loaded
document, ``make_request``, ``request_name``, ``outcome``) are separate from the one async
function that does the I/O, ``bootstrap``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
USAGES = ("digital signature", "client auth")  # no key encipherment: the key is not RSA
RENEW_BEFORE = dt.timedelta(days=1)
DEFAULT_TIMEOUT = 3600.0  # upstream's kubelet waits an hour for its certificate

Obj = dict[str, Any]


class BootstrapError(Exception):
    """The bootstrap cannot finish (bad bootstrap kubeconfig, denied, timed out...)."""


# --------------------------------------------------------------------------- pure parts


def _client_cert_pem(kubeconfig: Path) -> bytes | None:
    from ..pki.kubeconfig import load_kubeconfig, resolve_context

    _ctx, _cluster, user = resolve_context(load_kubeconfig(kubeconfig), None)
    if user.get("client-certificate-data"):
        return base64.b64decode(user["client-certificate-data"])
    if user.get("client-certificate"):
        return (kubeconfig.parent / user["client-certificate"]).read_bytes()
    return None


def needs_bootstrap(kubeconfig: Path, now: dt.datetime) -> bool:
    """Whether ``kubeconfig`` lacks a client certificate valid for at least ``RENEW_BEFORE``
    (reads the file: call it from a thread)."""
    from cryptography import x509

    try:
        pem = _client_cert_pem(kubeconfig)
        if pem is None:
            return True
        cert = x509.load_pem_x509_certificate(pem)
    except Exception:  # noqa: BLE001 - missing or unusable: make a new one
        return True
    return cert.not_valid_before_utc > now or cert.not_valid_after_utc - now < RENEW_BEFORE


def new_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_request(node_name: str, key_pem: bytes | None = None) -> tuple[bytes, bytes]:
    """(CSR PEM, private key PEM) for the node's client certificate (a new key unless given)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key_pem = key_pem or new_key_pem()
    key = serialization.load_pem_private_key(key_pem, password=None)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def request_name(request_pem: bytes, usages: tuple[str, ...] = USAGES) -> str:
    """``node-csr-<digest>`` of the request's public key, subject CN and O, and usages: the same
    key asking for the same thing gets the same name (upstream's ``digestedName``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    req = x509.load_pem_x509_csr(request_pem)
    h = hashlib.new("sha512_256")

    def part(data: bytes) -> None:  # '|' is not in the url-safe alphabet: parts cannot run together
        h.update(base64.urlsafe_b64encode(data).rstrip(b"="))
        h.update(b"|")

    part(req.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        for attr in req.subject.get_attributes_for_oid(oid):
            part(str(attr.value).encode())
    for u in usages:
        part(u.encode())
    return "node-csr-" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def csr_object(name: str, request_pem: bytes) -> Obj:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(request_pem).decode(), "signerName": SIGNER,
                     "usages": list(USAGES)}}


def compatible(existing: Obj, wanted: Obj) -> bool:
    """Whether an existing request of our name asks for what we would ask: the same key and
    subject (signatures differ from one signing to the next), signer and usages."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    a, b = existing.get("spec") or {}, wanted["spec"]
    if a.get("signerName") != b["signerName"] or sorted(a.get("usages") or []) != sorted(b["usages"]):
        return False
    try:
        old, new = (x509.load_pem_x509_csr(base64.b64decode(str(x))) for x in (a.get("request"), b["request"]))
    except ValueError:
        return False
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return old.subject == new.subject and old.public_key().public_bytes(*fmt) == new.public_key().public_bytes(*fmt)


def outcome(csr: Obj, key_pem: bytes) -> bytes | None:
    """The issued certificate (PEM) of ``csr``, None while it waits; BootstrapError when it was
    denied or failed, or when the certificate is not for our key (pure)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    name = (csr.get("metadata") or {}).get("name", "")
    status = csr.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("type") in ("Denied", "Failed") and c.get("status", "True") == "True":
            verb = "denied" if c["type"] == "Denied" else "failed"
            raise BootstrapError(f"certificate signing request {name} {verb}, reason: {c.get('reason', '')}, "
                                 f"message: {c.get('message', '')}")
    if not status.get("certificate"):
        return None
    pem = base64.b64decode(status["certificate"])
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise BootstrapError(f"certificate signing request {name}: unreadable certificate: {e}") from None
    key = serialization.load_pem_private_key(key_pem, password=None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
        raise BootstrapError(f"certificate signing request {name}: the certificate is not for our key")
    return pem


# --------------------------------------------------------------------------- I/O


def _pending_key(kubeconfig: Path) -> bytes:
    """The key waiting for its certificate (made and saved 0600 on first use)."""
    from cryptography.hazmat.primitives import serialization

    path = kubeconfig.with_name(kubeconfig.name + ".key.tmp")
    try:
        data = path.read_bytes()
        serialization.load_pem_private_key(data, password=None)  # still a usable key?
        return data
    except (OSError, ValueError, TypeError):
        pass
    data = new_key_pem()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return data


def _bootstrap_cluster(bootstrap_kubeconfig: str) -> tuple[str, bytes]:
    """(server, CA PEM) of the bootstrap kubeconfig's current context."""
    from ..pki.kubeconfig import load_kubeconfig, resolve_context

    try:
        _ctx, cluster, _user = resolve_context(load_kubeconfig(bootstrap_kubeconfig), None)
    except (OSError, ValueError) as e:
        raise BootstrapError(f"unable to load bootstrap kubeconfig {bootstrap_kubeconfig}: {e}") from None
    server = str(cluster.get("server") or "")
    if cluster.get("certificate-authority-data"):
        ca = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        ca = (Path(bootstrap_kubeconfig).parent / cluster["certificate-authority"]).read_bytes()
    else:
        ca = b""
    if not server or not ca:
        raise BootstrapError(f"{bootstrap_kubeconfig}: needs a server and a certificate authority")
    return server, ca


CSRS_RESOURCE = ("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest")


async def request_certificate(client: Any, node_name: str, key_pem: bytes, *, timeout: float = DEFAULT_TIMEOUT,
                              poll: float = 1.0) -> bytes:
    """Ask for a client certificate for ``key_pem`` with ``client`` (the bootstrap token, or the
    node's own certificate when renewing) and wait for it; the certificate PEM."""
    from ..client.errors import AlreadyExists, NotFound, TransportError
    from ..client.resources import Resource

    request_pem, _ = await asyncio.to_thread(make_request, node_name, key_pem)
    name = request_name(request_pem)
    wanted = csr_object(name, request_pem)
    csrs = Resource(*CSRS_RESOURCE, namespaced=False)
    log.info("kubelet %s: requesting a client certificate (%s)", node_name, name)
    try:
        obj = await client.create(csrs, wanted)
    except AlreadyExists:
        obj = await client.get(csrs, name)
        if not compatible(obj, wanted):
            raise BootstrapError(f"certificate signing request {name} exists and asks for something else") from None
    uid = (obj.get("metadata") or {}).get("uid")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (cert_pem := outcome(obj, key_pem)) is None:
        if loop.time() > deadline:
            raise BootstrapError(f"certificate signing request {name} was not signed within {timeout:g}s "
                                 "(is it approved? kubectl certificate approve)")
        await asyncio.sleep(poll)
        try:
            obj = await client.get(csrs, name)
        except TransportError as e:  # the API server restarting: keep waiting
            log.warning("kubelet %s: waiting for %s: %s", node_name, name, e)
            continue
        except NotFound:
            raise BootstrapError(f"certificate signing request {name} was deleted") from None
        if uid and (obj.get("metadata") or {}).get("uid") != uid:
            raise BootstrapError(f"certificate signing request {name} was deleted and recreated")
    return cert_pem


async def _write_identity(target: Path, server: str, ca: bytes, cert_pem: bytes, key_pem: bytes, node_name: str) -> None:
    from ..pki.kubeconfig import write_kubeconfig

    await asyncio.to_thread(write_kubeconfig, target, server=server, ca_pem=ca, cert_pem=cert_pem, key_pem=key_pem,
                            user=f"system:node:{node_name}")
    await asyncio.to_thread(target.with_name(target.name + ".key.tmp").unlink, missing_ok=True)


async def bootstrap(bootstrap_kubeconfig: str, kubeconfig: str, node_name: str, *,
                    timeout: float = DEFAULT_TIMEOUT, poll: float = 1.0) -> bool:
    """Get a client certificate through a CSR if ``kubeconfig`` needs one; True if it did.

    Raises BootstrapError (and the client's ApiError, e.g. Unauthorized for a bad token)."""
    from ..client.rest import ApiClient

    target = Path(kubeconfig)
    if not await asyncio.to_thread(needs_bootstrap, target, dt.datetime.now(dt.UTC)):
        return False
    server, ca = await asyncio.to_thread(_bootstrap_cluster, bootstrap_kubeconfig)
    key_pem = await asyncio.to_thread(_pending_key, target)
    client = await asyncio.to_thread(ApiClient.from_kubeconfig, bootstrap_kubeconfig, timeout=30.0)
    async with client:
        cert_pem = await request_certificate(client, node_name, key_pem, timeout=timeout, poll=poll)
    await _write_identity(target, server, ca, cert_pem, key_pem, node_name)
    log.info("kubelet %s: client certificate issued; wrote %s", node_name, target)
    return True


# --------------------------------------------------------------------------- rotation


def rotation_deadline(not_before: dt.datetime, not_after: dt.datetime, jitter: float) -> dt.datetime:
    """When to renew: at 70-90 % of the certificate's life (``jitter`` in [0, 1)), as upstream's
    certificate manager, so that nodes do not all renew at once (pure)."""
    return not_before + (not_after - not_before) * (0.7 + 0.2 * jitter)


def _identity(kubeconfig: Path) -> tuple[str, bytes, Any]:
    """(server, CA PEM, client certificate) of a kubeconfig (reads the file)."""
    from cryptography import x509

    server, ca = _bootstrap_cluster(str(kubeconfig))
    pem = _client_cert_pem(kubeconfig)
    if pem is None:
        raise BootstrapError(f"{kubeconfig} holds no client certificate to renew")
    return server, ca, x509.load_pem_x509_certificate(pem)


async def rotate_client_certificate(client: Any, kubeconfig: str, node_name: str, *,
                                    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                                    jitter: Callable[[], float] = random.random, max_sleep: float = 3600.0,
                                    retry: float = 30.0, timeout: float = DEFAULT_TIMEOUT,
                                    poll: float = 1.0) -> None:
    """Renew the node's client certificate before it expires, forever (``--rotate-certificates``).

    At its rotation deadline the kubelet makes a new key, asks for a certificate with its current
    identity (the controller manager approves a node renewing its own certificate), writes the
    kubeconfig atomically and gives ``client`` the new certificate (new connections use it).
    Failures are logged and retried every ``retry`` seconds; the old certificate stays in use."""
    target = Path(kubeconfig)
    while True:
        try:
            server, ca, cert = await asyncio.to_thread(_identity, target)
        except (OSError, ValueError, BootstrapError) as e:
            log.error("kubelet %s: certificate rotation stopped: %s", node_name, e)
            return
        deadline = rotation_deadline(cert.not_valid_before_utc, cert.not_valid_after_utc, jitter())
        log.info("kubelet %s: client certificate expires %s; renewing after %s", node_name,
                 cert.not_valid_after_utc.isoformat(), deadline.isoformat())
        while (wait := (deadline - now()).total_seconds()) > 0:
            await asyncio.sleep(min(wait, max_sleep))
        try:
            key_pem = await asyncio.to_thread(_pending_key, target)
            cert_pem = await request_certificate(client, node_name, key_pem, timeout=timeout, poll=poll)
            await _write_identity(target, server, ca, cert_pem, key_pem, node_name)
            await client.set_client_certificate(cert_pem, key_pem)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - keep the old certificate and try again
            log.warning("kubelet %s: client certificate rotation failed (retrying in %gs): %s", node_name, retry, e)
            await asyncio.sleep(retry)
            continue
        log.info("kubelet %s: client certificate renewed; wrote %s", node_name, target)
