"""CertificateSigningRequest (``certificates.k8s.io/v1``): the rules of the object (pure).

* On create the server records who asked (``spec.username``, ``uid``, ``groups``, ``extra``:
  ``set_requester``), whatever the client sent there.
* Validation (``validate_csr``): ``spec.request`` is a PEM ``CERTIFICATE REQUEST`` with a valid
  signature; ``signerName`` is required, a qualified name (``example.com/name``) and not
  ``kubernetes.io/legacy-unknown`` (v1); ``usages`` from the known set; ``expirationSeconds`` at
  least 600; ``Approved`` and ``Denied`` exclude each other; ``status.certificate`` only once
  approved, never changed once set.
* ``approval`` is written through ``/approval`` (``kubectl certificate approve|deny``) and the
  certificate through ``/status``; ``merge_approval`` keeps everything else.
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
SIGNER_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+/[A-Za-z0-9._~%!$&'()*+,;=:@-]+$")
APPROVAL_TYPES = ("Approved", "Denied")


def set_requester(csr: Obj, user: Obj) -> None:
    """Record the authenticated requester in ``spec`` (in place)."""
    spec = csr.setdefault("spec", {})
    spec["username"] = str(user.get("username") or user.get("name") or "")
    spec["groups"] = list(user.get("groups") or [])
    if user.get("uid"):
        spec["uid"] = str(user["uid"])
    else:
        spec.pop("uid", None)
    if user.get("extra"):
        spec["extra"] = {k: list(v) for k, v in dict(user["extra"]).items()}
    else:
        spec.pop("extra", None)


def decode_request(value: Any) -> Any:
    """The ``x509.CertificateSigningRequest`` in ``spec.request`` (base64 of PEM); ValueError."""
    from cryptography import x509

    try:
        pem = base64.b64decode(str(value or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        req = x509.load_pem_x509_csr(pem)
    except ValueError as e:
        raise ValueError(f"{e}") from None
    if not req.is_signature_valid:
        raise ValueError("invalid signature")
    return req


def conditions(csr: Obj) -> list[Obj]:
    return list((csr.get("status") or {}).get("conditions") or [])


def approval(csr: Obj) -> str:
    """``Approved``, ``Denied`` or "" (pending)."""
    for c in conditions(csr):
        if c.get("type") in APPROVAL_TYPES and c.get("status", "True") == "True":
            return str(c["type"])
    return ""


def validate_csr(csr: Obj, old: Obj | None) -> list[errors.Cause]:
    spec = csr.get("spec") or {}
    errs: list[errors.Cause] = []
    try:
        decode_request(spec.get("request"))
    except ValueError as e:
        errs.append(errors.invalid_value("spec.request", "<request>", f"{e}"))
    signer = spec.get("signerName")
    if not signer:
        errs.append(errors.required("spec.signerName", ""))
    elif signer == "kubernetes.io/legacy-unknown":
        errs.append(errors.invalid_value("spec.signerName", signer, "the legacy signerName is not allowed via this API version"))
    elif not SIGNER_RE.match(str(signer)):
        errs.append(errors.invalid_value("spec.signerName", signer,
                                         "must be a fully qualified domain and path of the form 'example.com/signer-name'"))
    usages = spec.get("usages")
    if not usages:
        errs.append(errors.required("spec.usages", ""))
    for i, u in enumerate(usages or []):
        if u not in KNOWN_USAGES:
            errs.append(errors.not_supported(f"spec.usages[{i}]", u, sorted(KNOWN_USAGES)))
    exp = spec.get("expirationSeconds")
    if exp is not None and (not isinstance(exp, int) or exp < 600):
        errs.append(errors.invalid_value("spec.expirationSeconds", exp, "may not specify a duration less than 600 seconds (10 minutes)"))
    kinds = [c.get("type") for c in conditions(csr)]
    if "Approved" in kinds and "Denied" in kinds:
        errs.append(errors.invalid_value("status.conditions", "Approved",
                                         "Approved and Denied conditions are mutually exclusive"))
    for i, c in enumerate(conditions(csr)):
        if c.get("type") in APPROVAL_TYPES and c.get("status", "True") != "True":
            errs.append(errors.not_supported(f"status.conditions[{i}].status", c.get("status"), ["True"]))
    cert = (csr.get("status") or {}).get("certificate")
    old_cert = ((old or {}).get("status") or {}).get("certificate")
    if cert and old_cert and cert != old_cert:
        errs.append(errors.forbidden("status.certificate", "updates may not modify existing certificate content"))
    if cert and not old_cert and approval(csr) != "Approved":
        errs.append(errors.invalid_value("status.certificate", "<certificate data>",
                                         "certificate can only be set once the request is approved"))
    if old is not None:
        for field in ("request", "signerName", "usages", "expirationSeconds", "username", "uid", "groups", "extra"):
            if spec.get(field) != (old.get("spec") or {}).get(field):
                errs.append(errors.invalid_value(f"spec.{field}", "<spec>", "field is immutable"))
                break
        for kind in APPROVAL_TYPES:
            if kind in [c.get("type") for c in conditions(old)] and kind not in kinds:
                errs.append(errors.forbidden("status.conditions", f"updates may not remove a condition of type {kind}"))
    return errs


def merge_approval(new: Obj, old: Obj) -> Obj:
    """What an ``/approval`` write stores: ``old`` with the new ``status.conditions``."""
    out = dict(old)
    status = dict(old.get("status") or {})
    status["conditions"] = conditions(new)
    out["status"] = status
    out["metadata"] = {**(old.get("metadata") or {}),
                       **({"resourceVersion": new["metadata"]["resourceVersion"]}
                          if (new.get("metadata") or {}).get("resourceVersion") else {})}
    return out
