"""CertificateSigningRequests: the approver and the signer of the controller manager
(upstream's ``csrapproving`` and ``csrsigning``).

**Approver.** A pending request for ``kubernetes.io/kube-apiserver-client-kubelet`` that is a
kubelet client certificate — subject ``O=system:nodes``, ``CN=system:node:<name>``, no SANs,
usages within {client auth, digital signature, key encipherment} — is approved (condition
``Approved``, reason ``AutoApproved``) when its requester may create
``certificatesigningrequests/nodeclient`` (a new node: bootstrap tokens) or, when the requester is
that very node, ``certificatesigningrequests/selfnodeclient`` (renewal). The question goes to the
API server as a SubjectAccessReview, so RBAC decides as for any user. Everything else waits for
``kubectl certificate approve|deny``.

**Signer.** An approved request for ``kubernetes.io/kube-apiserver-client``,
``kubernetes.io/kube-apiserver-client-kubelet`` or ``kubernetes.io/kubelet-serving`` gets a
certificate from the cluster CA (``--cluster-signing-cert-file`` / ``--cluster-signing-key-file``;
``kyb up`` passes the cluster's): the request's subject and SANs, its usages as key usage and
extended key usage, valid from 5 minutes ago for ``expirationSeconds`` (default and at most
``--cluster-signing-duration``, 1 year), never past the CA. Denied or failed requests are left
alone. Without a signing key the controller is not started.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from ..api import csr as csrlib
from ..client import Conflict, Controller, NotFound, ObjectKey
from ..client.resources import Resource

if TYPE_CHECKING:
    from .manager import ControllerContext

log = logging.getLogger(__name__)

NAME = "csrsigning-controller"
ALIASES = ("csrsigning", "csrapproving")
CSRS = Resource("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", namespaced=False)
SARS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False)
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
SIGNERS = frozenset({"kubernetes.io/kube-apiserver-client", KUBELET_CLIENT, "kubernetes.io/kubelet-serving"})
KUBELET_CLIENT_USAGES = frozenset({"client auth", "digital signature", "key encipherment"})
DEFAULT_DURATION = 365 * 24 * 3600
BACKDATE = 300

Obj = dict[str, Any]


def node_client_name(csr: Obj, request: Any) -> str | None:
    """The node a kubelet client-certificate request is for, or None if it is not one (pure)."""
    from cryptography.x509.oid import NameOID

    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_CLIENT:
        return None
    if not set(spec.get("usages") or []) <= KUBELET_CLIENT_USAGES or "client auth" not in (spec.get("usages") or []):
        return None
    orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    cns = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if orgs != ["system:nodes"] or len(cns) != 1 or not cns[0].startswith("system:node:"):
        return None
    from cryptography import x509

    try:
        request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return None  # client certificates carry no names
    except x509.ExtensionNotFound:
        pass
    return str(cns[0])[len("system:node:"):] or None


def sign(request: Any, spec: Obj, ca_cert: Any, ca_key: Any, *, max_seconds: int, now: dt.datetime) -> bytes:
    """PEM of the certificate for ``request`` (pure apart from the serial number)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    seconds = min(int(spec.get("expirationSeconds") or max_seconds), max_seconds)
    usages = set(spec.get("usages") or [])
    eku = [oid for name, oid in (("client auth", ExtendedKeyUsageOID.CLIENT_AUTH),
                                 ("server auth", ExtendedKeyUsageOID.SERVER_AUTH)) if name in usages]
    builder = (x509.CertificateBuilder().subject_name(request.subject).issuer_name(ca_cert.subject)
               .public_key(request.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(seconds=BACKDATE))
               .not_valid_after(min(now + dt.timedelta(seconds=seconds), ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if usages & {"digital signature", "key encipherment"}:  # none asked: no KeyUsage (unrestricted), as upstream
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature="digital signature" in usages, content_commitment=False,
            key_encipherment="key encipherment" in usages, data_encipherment=False, key_agreement=False,
            key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        builder = builder.add_extension(sans.value, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class CertificateController(Controller):
    def __init__(self, ctx: ControllerContext, ca_pem: bytes, key_pem: bytes, max_seconds: int) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        super().__init__(NAME, ctx.client, workers=2, factory=ctx.factory, clock=ctx.clock)
        self.ca_cert = x509.load_pem_x509_certificate(ca_pem)
        self.ca_key = serialization.load_pem_private_key(key_pem, password=None)
        self.max_seconds = max_seconds
        self.csrs = self.informer(CSRS)

    async def _allowed(self, spec: Obj, subresource: str) -> bool:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": spec.get("username"), "groups": spec.get("groups") or [], "uid": spec.get("uid") or "",
            "extra": spec.get("extra") or {}, "resourceAttributes": {
                "group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                "subresource": subresource, "verb": "create"}}}
        out = await self.client.create(SARS, review)
        return bool((out.get("status") or {}).get("allowed"))

    async def sync(self, key: ObjectKey) -> None:
        csr = self.csrs.lister().get(str(key))
        if csr is None:
            return
        spec = csr.get("spec") or {}
        state = csrlib.approval(csr)
        try:
            request = csrlib.decode_request(spec.get("request"))
        except ValueError:
            return
        if not state:
            await self._maybe_approve(csr, spec, request)
        elif state == "Approved" and not (csr.get("status") or {}).get("certificate") \
                and spec.get("signerName") in SIGNERS:
            await self._sign(csr, spec, request)

    async def _maybe_approve(self, csr: Obj, spec: Obj, request: Any) -> None:
        node = node_client_name(csr, request)
        if node is None:
            return
        self_renewal = spec.get("username") == f"system:node:{node}"
        if not (self_renewal and await self._allowed(spec, "selfnodeclient")) and not await self._allowed(spec, "nodeclient"):
            return
        now = self.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")
        cond = {"type": "Approved", "status": "True", "reason": "AutoApproved",
                "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
                "lastUpdateTime": now, "lastTransitionTime": now}
        new = {**csr, "status": {**(csr.get("status") or {}), "conditions": [*csrlib.conditions(csr), cond]}}
        try:
            await self.client.update(CSRS, new, subresource="approval")
            log.info("approved %s for node %s", csr["metadata"]["name"], node)
        except (NotFound, Conflict):
            self.enqueue(csr["metadata"]["name"])

    async def _sign(self, csr: Obj, spec: Obj, request: Any) -> None:
        import base64

        pem = sign(request, spec, self.ca_cert, self.ca_key, max_seconds=self.max_seconds,
                   now=dt.datetime.fromtimestamp(self.clock.wall().timestamp(), dt.UTC))
        new = {**csr, "status": {**(csr.get("status") or {}), "certificate": base64.b64encode(pem).decode()}}
        try:
            await self.client.update_status(CSRS, new)
            log.info("signed %s (%s)", csr["metadata"]["name"], spec.get("signerName"))
        except (NotFound, Conflict):
            self.enqueue(csr["metadata"]["name"])


def new(ctx: ControllerContext) -> CertificateController | None:
    ca, key = ctx.options.get("cluster_signing_cert"), ctx.options.get("cluster_signing_key")
    if not ca or not key:
        log.info("%s: no --cluster-signing-cert-file/--cluster-signing-key-file; not started", NAME)
        return None
    return CertificateController(ctx, ca, key, int(ctx.options.get("cluster_signing_duration", DEFAULT_DURATION)))
