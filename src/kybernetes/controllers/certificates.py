"""CertificateSigningRequests: the approver, the signer and the cleaner of the controller manager
(upstream's ``csrapproving``, ``csrsigning`` and ``csrcleaner``).

**Approver.** A pending request that is a kubelet client certificate request
(``kubernetes.io/kube-apiserver-client-kubelet``, subject ``O=system:nodes``,
``CN=system:node:<name>``, no SANs, usages {digital signature, client auth} with or without key
encipherment: ``api.csr.kubelet_client_error``) is approved (condition ``Approved``, reason
``AutoApproved``) when its requester is that very node and may create
``certificatesigningrequests/selfnodeclient`` (renewal), or may create
``certificatesigningrequests/nodeclient`` (a new node with a bootstrap token). The question goes
to the API server as a SubjectAccessReview, so RBAC decides as for any request. A recognised
request that no review allows is looked at again later (RBAC may change); everything else waits
for ``kubectl certificate approve|deny``.

**Signer.** An approved request for ``kubernetes.io/kube-apiserver-client``,
``kubernetes.io/kube-apiserver-client-kubelet`` or ``kubernetes.io/kubelet-serving`` that the
signer's rules accept gets a certificate from the cluster CA (``--cluster-signing-cert-file`` /
``--cluster-signing-key-file``; ``kyb up`` passes the cluster's); one they refuse gets a
``Failed`` condition (reason ``SignerValidationFailure``). The certificate carries the request's
subject, SANs and key; its usages become key usage and extended key usage; it is valid from 5
minutes ago for ``expirationSeconds`` (default and at most ``--cluster-signing-duration``, one
year; requests of 8 hours or more also end 5 minutes early, as upstream), never past the CA.
Without a signing key the signer is not started (the approver and cleaner still are).

**Cleaner.** Deletes requests nobody needs any more: approved-and-issued, denied or failed ones
an hour after that condition was last updated, approved-but-unissued ones after 24 hours,
pending ones 24 hours after creation, and any whose issued certificate has expired. Each request
is looked at again when its deadline comes (no hourly relist).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api import csr as csrlib
from ..api import meta as m
from ..client import Conflict, Controller, NotFound, ObjectKey, Requeue
from ..client.resources import Resource

if TYPE_CHECKING:
    from .manager import ControllerContext

log = logging.getLogger(__name__)

NAME = "certificatesigningrequest-controllers"
ALIASES = ("csrapproving", "csrsigning", "csrcleaner", "certificates")
APPROVING = "certificatesigningrequest-approving-controller"
SIGNING = "certificatesigningrequest-signing-controller"
CLEANER = "certificatesigningrequest-cleaner-controller"
CSRS = Resource("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", namespaced=False)
SARS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False)
SIGNERS = frozenset({csrlib.KUBE_APISERVER_CLIENT, csrlib.KUBELET_CLIENT, csrlib.KUBELET_SERVING})
DEFAULT_DURATION = 365 * 24 * 3600
BACKDATE = 300
SHORT = 8 * 3600
UNAPPROVED_RETRY = 30.0

APPROVED_EXPIRATION = 3600.0       # issued, denied, failed: an hour after the condition
PENDING_EXPIRATION = 24 * 3600.0   # pending since creation; approved but never issued

Obj = dict[str, Any]

_KEY_USAGES = {  # request usage -> x509.KeyUsage argument
    "signing": "digital_signature", "digital signature": "digital_signature",
    "content commitment": "content_commitment", "key encipherment": "key_encipherment",
    "key agreement": "key_agreement", "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign", "crl sign": "crl_sign", "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}


# --------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class Recognizer:
    """A kind of request the approver knows, and the permission that approves it."""

    subresource: str
    message: str
    self_only: bool


RECOGNIZERS = (
    Recognizer("selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview.", True),
    Recognizer("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview.", False),
)


def recognize(csr: Obj, request: Any) -> list[Recognizer]:
    """The recognisers that match a pending request, in the order they are tried (pure)."""
    node = csrlib.node_client_name(csr, request)
    if node is None:
        return []
    is_self = (csr.get("spec") or {}).get("username") == csrlib.NODE_USER_PREFIX + node
    return [r for r in RECOGNIZERS if is_self or not r.self_only]


def subject_access_review(spec: Obj, subresource: str) -> Obj:
    """The SubjectAccessReview asking whether the requester may create ``subresource``."""
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": spec.get("username") or "", "groups": list(spec.get("groups") or []),
        "uid": spec.get("uid") or "", "extra": dict(spec.get("extra") or {}),
        "resourceAttributes": {"group": "certificates.k8s.io", "version": "*",
                               "resource": "certificatesigningrequests", "subresource": subresource,
                               "verb": "create"}}}


def with_condition(csr: Obj, ctype: str, reason: str, message: str, now: str) -> Obj:
    """A copy of ``csr`` with one more (True) condition."""
    out = copy.deepcopy(csr)
    cond = {"type": ctype, "status": "True", "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now}
    out.setdefault("status", {}).setdefault("conditions", []).append(cond)
    return out


def certificate_seconds(expiration_seconds: Any, max_seconds: int) -> int:
    """The lifetime to sign for: the request's ``expirationSeconds`` capped at the configured
    duration, never under 10 minutes (upstream's ``duration``)."""
    if not isinstance(expiration_seconds, int) or isinstance(expiration_seconds, bool):
        return max_seconds
    return max(csrlib.MIN_EXPIRATION_SECONDS, min(expiration_seconds, max_seconds))


def sign(request: Any, spec: Obj, ca_cert: Any, ca_key: Any, *, max_seconds: int, now: dt.datetime) -> bytes:
    """PEM of the certificate for ``request`` (pure apart from the random serial number).
    Raises ValueError when the CA has expired."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID as E
    from cryptography.x509.oid import ObjectIdentifier

    ca_end = ca_cert.not_valid_after_utc
    if now >= ca_end:
        raise ValueError(f"refusing to sign a certificate that expired in the past: NotAfter={ca_end}")
    ttl = certificate_seconds(spec.get("expirationSeconds"), max_seconds)
    not_after = now + dt.timedelta(seconds=ttl if ttl < SHORT else ttl - BACKDATE)
    usages = list(spec.get("usages") or [])
    key_usage = {v: False for v in set(_KEY_USAGES.values())}
    for u in usages:
        if u in _KEY_USAGES:
            key_usage[_KEY_USAGES[u]] = True
    ext = {"any": ObjectIdentifier("2.5.29.37.0"), "server auth": E.SERVER_AUTH, "client auth": E.CLIENT_AUTH,
           "code signing": E.CODE_SIGNING, "email protection": E.EMAIL_PROTECTION, "s/mime": E.EMAIL_PROTECTION,
           "ipsec end system": ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
           "ipsec tunnel": ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
           "ipsec user": ObjectIdentifier("1.3.6.1.5.5.7.3.7"), "timestamping": E.TIME_STAMPING,
           "ocsp signing": E.OCSP_SIGNING, "microsoft sgc": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
           "netscape sgc": ObjectIdentifier("2.16.840.1.113730.4.1")}
    eku: list[Any] = []
    for u in usages:
        if u in ext and ext[u] not in eku:
            eku.append(ext[u])
    builder = (x509.CertificateBuilder().subject_name(request.subject).issuer_name(ca_cert.subject)
               .public_key(request.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(seconds=BACKDATE))
               .not_valid_after(min(not_after, ca_end))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if any(key_usage.values()):  # none asked: no KeyUsage extension at all, as Go writes it
        if not key_usage["key_agreement"]:
            key_usage["encipher_only"] = key_usage["decipher_only"] = False
        builder = builder.add_extension(x509.KeyUsage(**key_usage), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        builder = builder.add_extension(sans.value, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _time(value: Any) -> dt.datetime | None:
    t = m.parse_time(value) if value else None
    return t if t is None or t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def cleanup_deadline(csr: Obj) -> dt.datetime | None:
    """When the cleaner may delete ``csr`` (the earliest rule that applies), or None (pure)."""
    status = csr.get("status") or {}
    issued = bool(status.get("certificate"))
    hour, day = dt.timedelta(seconds=APPROVED_EXPIRATION), dt.timedelta(seconds=PENDING_EXPIRATION)
    deadlines: list[dt.datetime] = []
    for c in csrlib.conditions(csr):
        updated = _time(c.get("lastUpdateTime"))
        if updated is None:
            continue
        if c.get("type") == csrlib.APPROVED:
            deadlines.append(updated + (hour if issued else day))
        elif c.get("type") in (csrlib.DENIED, csrlib.FAILED):
            deadlines.append(updated + hour)
    if not csrlib.conditions(csr):
        created = _time((csr.get("metadata") or {}).get("creationTimestamp"))
        if created is not None:
            deadlines.append(created + day)
    if issued and csrlib.approval(csr) == csrlib.APPROVED:
        end = certificate_not_after(status["certificate"])
        if end is not None:
            deadlines.append(end)
    return min(deadlines) if deadlines else None


def certificate_not_after(value: str) -> dt.datetime | None:
    """NotAfter of the first certificate in ``status.certificate`` (base64 of PEM), or None."""
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(base64.b64decode(value)).not_valid_after_utc
    except ValueError:
        return None


# --------------------------------------------------------------------------- controllers


def _now(ctl: Controller) -> dt.datetime:
    return ctl.clock.wall().astimezone(dt.UTC)


class CSRApprovingController(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(APPROVING, ctx.client, workers=2, factory=ctx.factory, clock=ctx.clock)
        self.csrs = self.informer(CSRS)

    async def allowed(self, spec: Obj, subresource: str) -> bool:
        out = await self.client.create(SARS, subject_access_review(spec, subresource))
        return bool((out.get("status") or {}).get("allowed"))

    async def sync(self, key: ObjectKey) -> None:
        csr = self.csrs.lister().get(str(key))
        if csr is None or (csr.get("status") or {}).get("certificate") or csrlib.approval(csr):
            return
        try:
            request = csrlib.decode_request((csr.get("spec") or {}).get("request"))
        except ValueError:
            return
        tried = []
        for r in recognize(csr, request):
            tried.append(r.subresource)
            if await self.allowed(csr.get("spec") or {}, r.subresource):
                new = with_condition(csr, csrlib.APPROVED, "AutoApproved", r.message, m.now_rfc3339(_now(self)))
                try:
                    await self.client.update(CSRS, new, subresource="approval")
                except NotFound:
                    return
                self.log.info("approved %s (%s)", key, r.subresource)
                return
        if tried:  # recognised, but nobody may approve it yet: RBAC may change
            raise Requeue(after=UNAPPROVED_RETRY, reason=f"recognized csr {key} as {tried} but subject access "
                                                         "review was not approved")


class CSRSigningController(Controller):
    def __init__(self, ctx: ControllerContext, ca_pem: bytes, key_pem: bytes, max_seconds: int) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        super().__init__(SIGNING, ctx.client, workers=2, factory=ctx.factory, clock=ctx.clock)
        self.ca_cert = x509.load_pem_x509_certificate(ca_pem)
        self.ca_key = serialization.load_pem_private_key(key_pem, password=None)
        self.max_seconds = max_seconds
        self.csrs = self.informer(CSRS)

    async def sync(self, key: ObjectKey) -> None:
        csr = self.csrs.lister().get(str(key))
        if csr is None:
            return
        spec = csr.get("spec") or {}
        if (csrlib.approval(csr) != csrlib.APPROVED or csrlib.find_condition(csr, csrlib.FAILED)
                or (csr.get("status") or {}).get("certificate") or spec.get("signerName") not in SIGNERS):
            return
        try:
            request = csrlib.decode_request(spec.get("request"))
        except ValueError:
            return
        now = _now(self)
        problem = csrlib.signer_error(str(spec["signerName"]), request, list(spec.get("usages") or []))
        if problem is None:
            try:
                pem = await asyncio.to_thread(sign, request, spec, self.ca_cert, self.ca_key,
                                              max_seconds=self.max_seconds, now=now)
            except ValueError as e:
                problem = str(e)
        if problem is not None:
            new = with_condition(csr, csrlib.FAILED, "SignerValidationFailure", problem, m.now_rfc3339(now))
        else:
            new = copy.deepcopy(csr)
            new.setdefault("status", {})["certificate"] = base64.b64encode(pem).decode()
        try:
            await self.client.update_status(CSRS, new)
        except NotFound:
            return
        self.log.info("%s %s (%s)", "failed" if problem else "signed", key, problem or spec["signerName"])


class CSRCleanerController(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(CLEANER, ctx.client, workers=1, factory=ctx.factory, clock=ctx.clock)
        self.csrs = self.informer(CSRS)

    async def sync(self, key: ObjectKey) -> None:
        csr = self.csrs.lister().get(str(key))
        if csr is None:
            return
        deadline = cleanup_deadline(csr)
        if deadline is None:
            return
        left = (deadline - _now(self)).total_seconds()
        if left > 0:
            raise Requeue(after=left + 0.5)
        uid = str((csr.get("metadata") or {}).get("uid") or "")
        try:
            await self.client.delete(CSRS, str(key), preconditions={"uid": uid} if uid else None)
            self.log.info("deleted %s", key)
        except (NotFound, Conflict):
            pass


class CertificateControllers:
    """The three controllers, started and stopped together as one controller-manager entry."""

    def __init__(self, controllers: list[Controller]) -> None:
        self.name = NAME
        self.controllers = controllers

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for c in self.controllers:
                tg.create_task(c.run(), name=c.name)

    def statistics(self) -> list[dict[str, Any]]:
        return [c.statistics() for c in self.controllers]


def new(ctx: ControllerContext) -> CertificateControllers:
    controllers: list[Controller] = [CSRApprovingController(ctx), CSRCleanerController(ctx)]
    ca, key = ctx.options.get("cluster_signing_cert"), ctx.options.get("cluster_signing_key")
    if ca and key:
        max_seconds = int(ctx.options.get("cluster_signing_duration", DEFAULT_DURATION))
        controllers.insert(1, CSRSigningController(ctx, ca, key, max_seconds))
    else:
        log.info("%s: no --cluster-signing-cert-file/--cluster-signing-key-file; not started", SIGNING)
    return CertificateControllers(controllers)
