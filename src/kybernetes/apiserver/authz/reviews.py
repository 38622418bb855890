"""``authorization.k8s.io/v1`` reviews: ask the authorizer a question instead of acting.

* SelfSubjectAccessReview — "may I?" (``kubectl auth can-i``): the requester's own identity;
* SubjectAccessReview — "may they?" (admins, webhooks): identity from ``spec.user/groups/uid/extra``;
* LocalSubjectAccessReview — the same, confined to the URL's namespace;
* SelfSubjectRulesReview — "what may I do in this namespace?" (``kubectl auth can-i --list``).

Validation and answers follow upstream (``allowed``, ``denied`` only for an explicit Deny,
``reason``, ``evaluationError``). The reply is the posted review with ``status`` filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...api import errors
from ..authn import UserInfo
from .attributes import from_review
from .union import DENY

if TYPE_CHECKING:
    from . import Authorization

Obj = dict[str, Any]
GROUP = "authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"


def _invalid(kind: str, causes: list[errors.Cause]) -> errors.StatusError:
    return errors.invalid(kind, GROUP, "", causes)


def validate_access_spec(kind: str, spec: Mapping[str, Any]) -> list[errors.Cause]:
    """Upstream's checks of a (Self/Local)SubjectAccessReview spec."""
    causes: list[errors.Cause] = []
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra is not None and nra is not None:
        causes.append(errors.invalid_value("spec.nonResourceAttributes", nra,
                                           "cannot be specified in combination with resourceAttributes"))
    if ra is None and nra is None:
        causes.append(errors.invalid_value("spec.resourceAttributes", nra,
                                           "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    if kind == "LocalSubjectAccessReview" and nra is not None:
        causes.append(errors.invalid_value("spec.nonResourceAttributes", nra, "disallowed on this kind of request"))
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview") and not spec.get("user") and not spec.get("groups"):
        causes.append(errors.invalid_value("spec.user", spec.get("user") or "", "at least one of user or group must be specified"))
    return causes


def _subject(spec: Mapping[str, Any]) -> UserInfo:
    extra = spec.get("extra") or {}
    return UserInfo(name=str(spec.get("user") or ""), uid=str(spec.get("uid") or ""),
                    groups=tuple(str(g) for g in spec.get("groups") or ()),
                    extra={str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()} if isinstance(extra, Mapping) else {})


def review(authz: "Authorization", kind: str, requester: UserInfo, body: Obj, url_namespace: str) -> Obj:
    """The answered review (status filled in); raises StatusError for an invalid request."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    out: Obj = {"kind": kind, "apiVersion": API_VERSION, "metadata": {**md, "creationTimestamp": None}, "spec": spec}
    if kind == "SelfSubjectRulesReview":
        ns = str(spec.get("namespace") or "")
        if not ns:
            raise errors.bad_request("no namespace on request")
        rr = authz.authorizer.rules_for(requester, ns)
        status: Obj = {"resourceRules": rr.resource_rules, "nonResourceRules": rr.non_resource_rules,
                       "incomplete": rr.incomplete}
        if rr.errors:
            status["evaluationError"] = "; ".join(rr.errors)
        out["status"] = status
        return out
    if kind not in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        raise errors.method_not_allowed(f"{kind} is not supported")
    causes = validate_access_spec(kind, spec)
    if causes:
        raise _invalid(kind, causes)
    if kind == "LocalSubjectAccessReview":
        if not url_namespace:
            raise errors.bad_request(f"namespace is required on this type: {url_namespace}")
        if (spec.get("resourceAttributes") or {}).get("namespace") != url_namespace:
            raise errors.bad_request(f"spec.resourceAttributes.namespace must match namespace: {url_namespace}")
        out["metadata"]["namespace"] = url_namespace
    who = requester if kind == "SelfSubjectAccessReview" else _subject(spec)
    res = authz.authorizer.authorize(from_review(who, spec))
    status = {"allowed": res.allowed}
    if res.decision == DENY:
        status["denied"] = True
    if res.reason:
        status["reason"] = res.reason
    if res.error:
        status["evaluationError"] = res.error
    out["status"] = status
    return out
