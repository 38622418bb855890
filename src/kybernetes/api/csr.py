"""CertificateSigningRequest (``certificates.k8s.io/v1``): the rules of the object (pure).

* On create the server records who asked (``spec.username``, ``uid``, ``groups``, ``extra``:
  ``set_requester``), whatever the client sent there, and starts with an empty status.
* Updates go through one of upstream's three strategies (``prepare_for_update``): the object
  itself (only metadata may change), ``/status`` (the certificate and conditions other than
  Approved/Denied) and ``/approval`` (only the conditions: ``kubectl certificate
  approve|deny``). What a path may not change is silently taken from the stored object.
* Validation (``validate_csr``, upstream's messages): ``spec.request`` is a PEM ``CERTIFICATE
  REQUEST`` with a valid signature; ``signerName`` is a qualified name
  (``example.com/name``), not ``kubernetes.io/legacy-unknown``; ``usages`` non-empty, known,
  unique; ``expirationSeconds`` at least 600; conditions have a type and status, Approved /
  Denied / Failed only ``True``, no type twice, Approved and Denied exclude each other, none of
  them removed once set; ``status.certificate`` is PEM ``CERTIFICATE`` blocks, set only once
  the request is approved and never changed after. Problems already present in the stored
  object are tolerated on update, as upstream does for compatibility.
* What the built-in signers accept (``signer_error``): upstream's rules for kubelet client and
  serving certificates and for API-server client certificates; the approver and the signer of
  the controller manager (controllers/certificates.py) use them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from . import errors

Obj = dict[str, Any]

KNOWN_USAGES = frozenset({
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
})
APPROVED, DENIED, FAILED = "Approved", "Denied", "Failed"
APPROVAL_TYPES = (APPROVED, DENIED)
TRUE_ONLY_TYPES = (APPROVED, DENIED, FAILED)
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"
KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
MIN_EXPIRATION_SECONDS = 600

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KUBELET_CLIENT_USAGES = (frozenset({"digital signature", "key encipherment", "client auth"}),
                          frozenset({"digital signature", "client auth"}))
_KUBELET_SERVING_USAGES = (frozenset({"digital signature", "key encipherment", "server auth"}),
                           frozenset({"digital signature", "server auth"}))


# --------------------------------------------------------------------------- create / update


def set_requester(csr: Obj, user: Obj) -> None:
    """Record the authenticated requester in ``spec`` (in place), dropping what the client sent."""
    spec = csr.setdefault("spec", {})
    for k in ("username", "uid", "groups", "extra"):
        spec.pop(k, None)
    spec["username"] = str(user.get("username") or user.get("name") or "")
    if user.get("uid"):
        spec["uid"] = str(user["uid"])
    if user.get("groups"):
        spec["groups"] = list(user["groups"])
    if user.get("extra"):
        spec["extra"] = {k: list(v) for k, v in dict(user["extra"]).items()}


def prepare_for_update(new: Obj, old: Obj, subresource: str, now: str) -> None:
    """Make ``new`` what an update through ``subresource`` ("", "status", "approval") may store
    (in place; upstream's csrStrategy, csrStatusStrategy and csrApprovalStrategy)."""
    new["spec"] = old.get("spec") or {}
    old_status = old.get("status") or {}
    new_status = new.get("status") or {}
    if subresource == "":
        new["status"] = old_status
        return
    if subresource == "status":
        kept = [c for c in conditions(old) if c.get("type") in APPROVAL_TYPES]
        rest = [c for c in new_status.get("conditions") or [] if c.get("type") not in APPROVAL_TYPES]
        status = dict(new_status)
        status["conditions"] = kept + [_stamped(c, now) for c in rest]
    else:  # approval
        status = dict(old_status)
        status["conditions"] = [_stamped(c, now) for c in new_status.get("conditions") or []]
    if not status["conditions"]:
        status.pop("conditions")
    new["status"] = status
    # metadata does not change through a subresource (the resourceVersion precondition stays)
    rv = (new.get("metadata") or {}).get("resourceVersion")
    new["metadata"] = {**(old.get("metadata") or {})}
    if rv:
        new["metadata"]["resourceVersion"] = rv


def _stamped(cond: Obj, now: str) -> Obj:
    return cond if cond.get("lastUpdateTime") else {**cond, "lastUpdateTime": now}


# --------------------------------------------------------------------------- reading


def decode_request(value: Any) -> Any:
    """The ``x509.CertificateSigningRequest`` in ``spec.request`` (base64 of PEM); ValueError."""
    from cryptography import x509

    try:
        pem = base64.b64decode(str(value or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("PEM block type must be CERTIFICATE REQUEST") from None
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        req = x509.load_pem_x509_csr(pem)
    except ValueError as e:
        raise ValueError(f"{e}") from None
    if not req.is_signature_valid:
        raise ValueError("x509: signature verification failure")
    return req


def conditions(csr: Obj) -> list[Obj]:
    return list((csr.get("status") or {}).get("conditions") or [])


def find_condition(csr: Obj, ctype: str) -> Obj | None:
    return next((c for c in conditions(csr) if c.get("type") == ctype), None)


def approval(csr: Obj) -> str:
    """``Denied``, ``Approved`` or "" (pending); Denied wins, as upstream's printer says."""
    kinds = {c.get("type") for c in conditions(csr)}
    return DENIED if DENIED in kinds else APPROVED if APPROVED in kinds else ""


def condition_summary(csr: Obj) -> str:
    """The CONDITION column of ``kubectl get csr`` (``Approved,Issued``, ``Pending``...)."""
    kinds = {c.get("type") for c in conditions(csr)}
    out = approval(csr) or "Pending"
    if FAILED in kinds:
        out += ",Failed"
    if (csr.get("status") or {}).get("certificate"):
        out += ",Issued"
    return out


# --------------------------------------------------------------------------- validation


def validate_signer_name(path: str, signer: Any) -> list[errors.Cause]:
    """Upstream's ``ValidateSignerName``: ``<dns subdomain with a dot>/<dns subdomain>``."""
    if not signer:
        return [errors.required(path)]
    parts = str(signer).split("/")
    if len(parts) != 2:
        return [errors.invalid_value(path, signer, "must be a fully qualified domain and path of the form "
                                                   "'example.com/signer-name'")]
    domain, rest = parts
    errs: list[errors.Cause] = []
    if len(domain) > 253:
        errs.append(errors.too_long(path, domain, 253))
    labels = domain.split(".")
    bad = next((lbl for lbl in labels if not _LABEL.match(lbl) or len(lbl) > 63), None)
    if bad is not None:
        errs.append(errors.invalid_value(path, domain, f"validating label {bad!r}: a lowercase RFC 1123 label "
                                                       "must consist of lower case alphanumeric characters or "
                                                       "'-', and must start and end with an alphanumeric character"))
    if len(labels) < 2:
        errs.append(errors.invalid_value(path, domain, "should be a domain with at least two segments separated by dots"))
    if len(rest) > 253 + 63 + 1:
        errs.append(errors.too_long(path, rest, 253 + 63 + 1))
    if not _SUBDOMAIN.match(rest) or len(rest) > 253:
        errs.append(errors.invalid_value(path, rest, "a lowercase RFC 1123 subdomain must consist of lower case "
                                                     "alphanumeric characters, '-' or '.', and must start and end "
                                                     "with an alphanumeric character"))
    return errs


def certificate_error(value: Any) -> str | None:
    """Why ``status.certificate`` (base64 of PEM) is not a list of CERTIFICATE blocks, or None."""
    if not value:
        return None
    from cryptography import x509

    try:
        pem = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return "must contain at least one CERTIFICATE PEM block"
    blocks = re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", pem)
    if not blocks:
        return "must contain at least one CERTIFICATE PEM block"
    for kind in blocks:
        if kind != b"CERTIFICATE":
            return f"only CERTIFICATE PEM blocks are allowed, found {kind.decode()!r}"
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        return f"{e}"
    return None if certs else "must contain at least one CERTIFICATE PEM block"


def validate_csr(csr: Obj, old: Obj | None) -> list[errors.Cause]:
    """Field errors of ``csr`` (``old``: the stored object on update), upstream's rules."""
    spec = csr.get("spec") or {}
    old_spec = (old or {}).get("spec") or {}
    errs: list[errors.Cause] = []
    try:
        decode_request(spec.get("request"))
    except ValueError as e:
        errs.append(errors.invalid_value("spec.request", "<request>", f"{e}"))
    usages = spec.get("usages") or []
    if not usages:
        errs.append(errors.required("spec.usages"))
    tolerate_unknown = old is not None and any(u not in KNOWN_USAGES for u in old_spec.get("usages") or [])
    tolerate_dups = old is not None and len(set(old_spec.get("usages") or [])) != len(old_spec.get("usages") or [])
    seen: set[str] = set()
    for i, u in enumerate(usages):
        if u not in KNOWN_USAGES and not tolerate_unknown:
            errs.append(errors.not_supported(f"spec.usages[{i}]", u, sorted(KNOWN_USAGES)))
        if u in seen and not tolerate_dups:
            errs.append(errors.duplicate(f"spec.usages[{i}]", u))
        seen.add(u)
    signer = spec.get("signerName")
    if signer == LEGACY_UNKNOWN and old_spec.get("signerName") != LEGACY_UNKNOWN:
        errs.append(errors.invalid_value("spec.signerName", signer,
                                         "the legacy signerName is not allowed via this API version"))
    elif signer != LEGACY_UNKNOWN:
        errs.extend(validate_signer_name("spec.signerName", signer))
    exp = spec.get("expirationSeconds")
    if exp is not None and (not isinstance(exp, int) or isinstance(exp, bool) or exp < MIN_EXPIRATION_SECONDS):
        errs.append(errors.invalid_value("spec.expirationSeconds", exp,
                                         "may not specify a duration less than 600 seconds (10 minutes)"))
    errs.extend(_validate_conditions(csr, old))
    status = csr.get("status") or {}
    old_status = (old or {}).get("status") or {}
    cert, old_cert = status.get("certificate"), old_status.get("certificate")
    if cert != old_cert:
        problem = certificate_error(cert)
        if problem and certificate_error(old_cert) is None:
            errs.append(errors.invalid_value("status.certificate", "<certificate data>", problem))
        if old_cert:
            errs.append(errors.forbidden("status.certificate", "updates may not modify existing certificate content"))
        elif cert and approval(csr) != APPROVED:
            errs.append(errors.forbidden("status.certificate",
                                         "the certificate can only be set once the request is approved"))
    if old is not None:
        for kind in TRUE_ONLY_TYPES:
            if len([c for c in conditions(csr) if c.get("type") == kind]) < \
                    len([c for c in conditions(old) if c.get("type") == kind]):
                errs.append(errors.forbidden("status.conditions", f'updates may not remove a condition of type "{kind}"'))
    return errs


def _validate_conditions(csr: Obj, old: Obj | None) -> list[errors.Cause]:
    old_kinds = [c.get("type") for c in conditions(old or {})]
    tolerate_both = APPROVED in old_kinds and DENIED in old_kinds
    tolerate_dups = len(set(old_kinds)) != len(old_kinds)
    tolerate_empty = "" in old_kinds or None in old_kinds
    errs: list[errors.Cause] = []
    seen: set[Any] = set()
    approved = denied = False
    for i, c in enumerate(conditions(csr)):
        path = f"status.conditions[{i}]"
        ctype, status = c.get("type"), c.get("status")
        if not ctype and not tolerate_empty:
            errs.append(errors.required(f"{path}.type"))
        allowed = ["True"] if ctype in TRUE_ONLY_TYPES else ["False", "True", "Unknown"]
        if not status:
            errs.append(errors.required(f"{path}.status"))
        elif status not in allowed:
            errs.append(errors.not_supported(f"{path}.status", status, allowed))
        if not tolerate_both and ctype in APPROVAL_TYPES:
            approved, denied = approved or ctype == APPROVED, denied or ctype == DENIED
            if approved and denied:
                errs.append(errors.invalid_value(f"{path}.type", ctype,
                                                 "Approved and Denied conditions are mutually exclusive"))
        if ctype in seen and not tolerate_dups:
            errs.append(errors.duplicate(f"{path}.type", ctype))
        seen.add(ctype)
    return errs


# --------------------------------------------------------------------------- built-in signers


def organizations(request: Any) -> list[str]:
    """The subject's organizations (O=, the groups of a client certificate) of an x509 request."""
    from cryptography.x509.oid import NameOID

    return [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _names(request: Any) -> tuple[list[str], list[str], list[Any], list[Any], list[str], list[str]]:
    """(organizations, common names, DNS, IP, email, URI SANs) of an x509 request."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    orgs = organizations(request)
    cns = [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return orgs, cns, [], [], [], []
    return (orgs, cns, san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress),
            san.get_values_for_type(x509.RFC822Name), san.get_values_for_type(x509.UniformResourceIdentifier))


def kubelet_client_error(request: Any, usages: list[str]) -> str | None:
    """Why ``request`` is not a kubelet client certificate request (upstream's
    ``ValidateKubeletClientCSR``), or None when it is one."""
    orgs, cns, dns, ips, emails, uris = _names(request)
    if orgs != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    for values, kind in ((dns, "DNS"), (emails, "Email"), (ips, "IP"), (uris, "URI")):
        if values:
            return f"{kind} subjectAltNames are not allowed"
    if not (cns and cns[0].startswith(NODE_USER_PREFIX)):
        return "subject common name does not begin with system:node:"
    if frozenset(usages) not in _KUBELET_CLIENT_USAGES or len(set(usages)) != len(usages):
        return f"usages did not match {sorted(_KUBELET_CLIENT_USAGES[0])}"
    return None


def kubelet_serving_error(request: Any, usages: list[str]) -> str | None:
    """Why ``request`` is not a kubelet serving certificate request (upstream's
    ``ValidateKubeletServingCSR``), or None when it is one."""
    orgs, cns, dns, ips, emails, uris = _names(request)
    if orgs != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    if not dns and not ips:
        return "DNS or IP subjectAltName is required"
    if emails:
        return "Email subjectAltNames are not allowed"
    if uris:
        return "URI subjectAltNames are not allowed"
    if frozenset(usages) not in _KUBELET_SERVING_USAGES or len(set(usages)) != len(usages):
        return f"usages did not match {sorted(_KUBELET_SERVING_USAGES[0])}"
    if not (cns and cns[0].startswith(NODE_USER_PREFIX)):
        return "subject common name does not begin with system:node:"
    return None


def api_client_error(usages: list[str]) -> str | None:
    """Why ``usages`` do not fit an API-server client certificate, or None."""
    for u in usages:
        if u not in ("digital signature", "key encipherment", "client auth"):
            return f"invalid usage for client certificate: {u}"
    return None if "client auth" in usages else "missing required usage for client certificate: client auth"


def signer_error(signer: str, request: Any, usages: list[str]) -> str | None:
    """Why the built-in ``signer`` refuses ``request`` (the signer then marks it Failed), or None."""
    if signer == KUBELET_CLIENT:
        return kubelet_client_error(request, usages)
    if signer == KUBELET_SERVING:
        return kubelet_serving_error(request, usages)
    if signer == KUBE_APISERVER_CLIENT:
        return api_client_error(usages)
    return f"{signer} is not a signer of this cluster"


def node_client_name(csr: Obj, request: Any) -> str | None:
    """The node a kubelet client-certificate request is for (``spec.signerName`` is the
    kubelet client signer and the request passes ``kubelet_client_error``), else None."""
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_CLIENT or kubelet_client_error(request, list(spec.get("usages") or [])):
        return None
    _, cns, *_ = _names(request)
    return cns[0][len(NODE_USER_PREFIX):] or None
