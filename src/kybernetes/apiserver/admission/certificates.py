"""The CertificateSigningRequest admission plugins (upstream's ``plugin/pkg/admission/certificates``).

* **CertificateApproval** (validating, UPDATE of ``certificatesigningrequests/approval``): the
  requester must be allowed the verb ``approve`` on the synthetic resource ``signers`` of
  ``certificates.k8s.io``, named after the request's ``signerName`` (as it was stored) or after
  its domain with ``/*`` (``example.com/*``). Otherwise 403 ``user not permitted to approve
  requests with signerName "<signer>"``.
* **CertificateSigning** (validating, UPDATE of ``certificatesigningrequests/status``): when the
  update changes ``status.certificate`` or ``status.conditions``, the same check with the verb
  ``sign``; 403 ``user not permitted to sign requests with signerName "<signer>"``.
* **CertificateSubjectRestriction** (validating, CREATE): a request for the
  ``kubernetes.io/kube-apiserver-client`` signer whose subject names the ``system:masters``
  organization is refused (403 ``use of kubernetes.io/kube-apiserver-client signer with
  system:masters group is not allowed``): no approver can be tricked into minting cluster-admin.

The first two need the authorizer; :func:`install` adds all three to a chain, before the
validating webhooks, as kube-apiserver orders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ...api import csr as csr_api
from ..authn import UserInfo
from ..authz.attributes import Attributes as AuthzAttributes
from .chain import CREATE, UPDATE, AdmissionChain, Attributes, Plugin, admission_user, forbidden

if TYPE_CHECKING:
    from ..authz.union import Result

GROUP = "certificates.k8s.io"
CSRS = frozenset({(GROUP, "certificatesigningrequests")})
KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
MASTERS = "system:masters"


class Authorizer(Protocol):
    def authorize(self, attrs: AuthzAttributes) -> "Result": ...


def signer_attributes(user: UserInfo, verb: str, name: str) -> AuthzAttributes:
    return AuthzAttributes(user=user, verb=verb, resource_request=True, api_group=GROUP, api_version="*",
                           resource="signers", name=name)


def authorized_for_signer(authz: Authorizer, user: UserInfo, verb: str, signer: str) -> bool:
    """``verb`` on ``signers/<signer>``, or on ``signers/<domain>/*`` (upstream's two checks)."""
    if authz.authorize(signer_attributes(user, verb, signer)).allowed:
        return True
    domain = signer.split("/")[0]
    return authz.authorize(signer_attributes(user, verb, domain + "/*")).allowed


def _signer(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("spec") or {}).get("signerName") or "")


class _SignerCheck(Plugin):
    """UPDATE of a CSR subresource that needs ``verb`` on the request's signer."""

    verb: ClassVar[str] = ""
    operations: ClassVar[frozenset[str]] = frozenset({UPDATE})
    resources: ClassVar[frozenset[tuple[str, str]] | None] = CSRS
    validating: ClassVar[bool] = True

    def __init__(self, authz: Authorizer) -> None:
        self.authz = authz

    def check(self, attrs: Attributes) -> None:
        signer = _signer(attrs.old)   # the stored one: a subresource cannot change it anyway
        if not authorized_for_signer(self.authz, admission_user(attrs.user), self.verb, signer):
            raise forbidden(attrs, f'user not permitted to {self.verb} requests with signerName "{signer}"')


class CertificateApproval(_SignerCheck):
    NAME: ClassVar[str] = "CertificateApproval"
    verb: ClassVar[str] = "approve"
    subresources: ClassVar[frozenset[str] | None] = frozenset({"approval"})

    async def validate(self, attrs: Attributes) -> None:
        self.check(attrs)


class CertificateSigning(_SignerCheck):
    NAME: ClassVar[str] = "CertificateSigning"
    verb: ClassVar[str] = "sign"
    subresources: ClassVar[frozenset[str] | None] = frozenset({"status"})

    async def validate(self, attrs: Attributes) -> None:
        old = (attrs.old or {}).get("status") or {}
        new = (attrs.obj or {}).get("status") or {}
        if old.get("certificate") != new.get("certificate") or \
                (old.get("conditions") or []) != (new.get("conditions") or []):
            self.check(attrs)


class CertificateSubjectRestriction(Plugin):
    NAME: ClassVar[str] = "CertificateSubjectRestriction"
    operations: ClassVar[frozenset[str]] = frozenset({CREATE})
    resources: ClassVar[frozenset[tuple[str, str]] | None] = CSRS
    validating: ClassVar[bool] = True

    async def validate(self, attrs: Attributes) -> None:
        if _signer(attrs.obj) != KUBE_APISERVER_CLIENT:
            return
        try:
            request = csr_api.decode_request(((attrs.obj or {}).get("spec") or {}).get("request"))
        except ValueError as e:
            raise forbidden(attrs, f"failed to parse CSR: {e}") from None
        if MASTERS in csr_api.organizations(request):
            raise forbidden(attrs, f"use of {KUBE_APISERVER_CLIENT} signer with {MASTERS} group is not allowed")


def install(chain: AdmissionChain, authz: Authorizer) -> None:
    """Add the three plugins to ``chain`` (once), before the admission policies and webhooks."""
    if any(isinstance(p, CertificateApproval) for p in chain.plugins):
        return
    for plugin in (CertificateApproval(authz), CertificateSigning(authz), CertificateSubjectRestriction()):
        chain.insert(plugin, before="ValidatingAdmissionPolicy")
