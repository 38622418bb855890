"""Admission webhooks, the pure part: which webhooks a request goes to, the AdmissionReview sent,
and the checks on what comes back (upstream ``admission/plugin/webhook``).

    hooks_of(configs, mutating)           -> [Webhook]   (configurations by name, hooks in order)
    matches(hook, attrs, ns_labels)       -> bool        rules, scope, namespace/object selectors
    build_review(attrs, version)          -> AdmissionReview request body
    parse_response(doc, uid, version, mutating) -> Verdict   (or WebhookCallError)
    denied(hook_name, status)             -> StatusError (``admission webhook "x" denied ...``)

Rules: ``operations`` (``*`` or CREATE/UPDATE/DELETE/CONNECT), ``apiGroups``, ``apiVersions``
(``*`` wildcards), ``resources`` (``pods`` = the main resource only, ``pods/status``, ``pods/*``
= the resource and all its subresources, ``*`` = every main resource, ``*/*`` = everything,
``*/status``), ``scope`` (``*``, ``Cluster``: cluster-scoped objects and namespaces,
``Namespaced``: namespaced objects). ``namespaceSelector`` applies to namespaced objects (and to
Namespaces themselves, by their own labels); ``objectSelector`` matches when the new or the old
object's labels match. Requests for webhook configurations are never sent to webhooks.
``matchPolicy: Equivalent`` matches the listed versions only (no conversion between versions);
``matchConditions`` (CEL) are not evaluated: a webhook that has them is called as if they held.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...api import errors
from ...api.labels import label_selector_matches
from .chain import Attributes

Obj = dict[str, Any]

GROUP = "admissionregistration.k8s.io"
EXEMPT = frozenset({(GROUP, "mutatingwebhookconfigurations"), (GROUP, "validatingwebhookconfigurations"),
                    (GROUP, "validatingadmissionpolicies"), (GROUP, "validatingadmissionpolicybindings")})
SUPPORTED_REVIEW_VERSIONS = ("v1", "v1beta1")
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 30
NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")


class WebhookCallError(Exception):
    """Calling the webhook failed (network, timeout, bad response): ``failurePolicy`` decides."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f'failed calling webhook "{webhook}": {reason}')
        self.webhook = webhook
        self.reason = reason


@dataclass(frozen=True)
class Webhook:
    """One webhook of a configuration, with upstream's defaults filled in."""

    name: str
    configuration: str
    client_config: Obj
    rules: tuple[Obj, ...]
    failure_policy: str = "Fail"
    match_policy: str = "Equivalent"
    namespace_selector: Obj = field(default_factory=dict)
    object_selector: Obj = field(default_factory=dict)
    side_effects: str = "Unknown"
    timeout_seconds: int = DEFAULT_TIMEOUT
    review_versions: tuple[str, ...] = ("v1",)
    reinvocation_policy: str = "Never"
    match_conditions: tuple[Obj, ...] = ()

    @staticmethod
    def from_config(configuration: str, hook: Mapping[str, Any]) -> "Webhook":
        timeout = hook.get("timeoutSeconds")
        if not isinstance(timeout, int) or isinstance(timeout, bool):
            timeout = DEFAULT_TIMEOUT
        return Webhook(
            name=str(hook.get("name") or ""),
            configuration=configuration,
            client_config=dict(hook.get("clientConfig") or {}),
            rules=tuple(r for r in hook.get("rules") or () if isinstance(r, dict)),
            failure_policy=str(hook.get("failurePolicy") or "Fail"),
            match_policy=str(hook.get("matchPolicy") or "Equivalent"),
            namespace_selector=dict(hook.get("namespaceSelector") or {}),
            object_selector=dict(hook.get("objectSelector") or {}),
            side_effects=str(hook.get("sideEffects") or "Unknown"),
            timeout_seconds=max(1, min(MAX_TIMEOUT, timeout)),
            review_versions=tuple(str(v) for v in hook.get("admissionReviewVersions") or ("v1",)),
            reinvocation_policy=str(hook.get("reinvocationPolicy") or "Never"),
            match_conditions=tuple(hook.get("matchConditions") or ()),
        )

    @property
    def review_version(self) -> str | None:
        """The first AdmissionReview version of the webhook's list we speak."""
        return next((v for v in self.review_versions if v in SUPPORTED_REVIEW_VERSIONS), None)


def hooks_of(configs: Iterable[Obj]) -> list[Webhook]:
    """Every webhook, configurations ordered by name, webhooks in their configuration's order."""
    out: list[Webhook] = []
    for cfg in sorted(configs, key=lambda c: str((c.get("metadata") or {}).get("name") or "")):
        name = str((cfg.get("metadata") or {}).get("name") or "")
        out += [Webhook.from_config(name, h) for h in cfg.get("webhooks") or () if isinstance(h, dict)]
    return out


# ------------------------------------------------------------------------------------------
# matching
def _any(values: Iterable[Any], want: str) -> bool:
    return any(v == "*" or v == want for v in values)


def rule_matches(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    if not _any(rule.get("operations") or (), attrs.operation):
        return False
    if not _any(rule.get("apiGroups") or (), attrs.group):
        return False
    if not _any(rule.get("apiVersions") or (), attrs.info.version):
        return False
    ok = False
    for res in rule.get("resources") or ():
        r, _, sub = str(res).partition("/")
        if (r == "*" or r == attrs.resource) and (sub == "*" or sub == attrs.subresource):
            ok = True
            break
    if not ok:
        return False
    scope = rule.get("scope") or "*"
    is_namespace = attrs.is_("", "namespaces")
    if scope == "Namespaced":
        return not is_namespace and bool(attrs.namespace)
    if scope == "Cluster":
        return is_namespace or not attrs.namespace
    return True


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def namespace_selector_applies(attrs: Attributes) -> bool:
    """Is the namespace selector consulted? (Not for cluster-scoped objects other than Namespaces.)"""
    return bool(attrs.namespace) or attrs.is_("", "namespaces")


def namespace_labels_of_request(attrs: Attributes) -> Mapping[str, str] | None:
    """For Namespace objects their own labels; None means "look the namespace up"."""
    if attrs.is_("", "namespaces"):
        return _labels(attrs.obj if attrs.obj is not None else attrs.old)
    return None


def matches(hook: Webhook, attrs: Attributes, ns_labels: Mapping[str, str] | None) -> bool:
    """Does ``hook`` get this request? ``ns_labels``: the namespace's labels (when consulted)."""
    if (attrs.group, attrs.resource) in EXEMPT:
        return False
    if not any(rule_matches(r, attrs) for r in hook.rules):
        return False
    if hook.namespace_selector and namespace_selector_applies(attrs):
        if not label_selector_matches(hook.namespace_selector, ns_labels or {}):
            return False
    if hook.object_selector:
        objs = [o for o in (attrs.obj, attrs.old) if o is not None]
        if not any(label_selector_matches(hook.object_selector, _labels(o)) for o in objs):
            return False
    return True


# ------------------------------------------------------------------------------------------
# the review
def options_for(attrs: Attributes) -> Obj | None:
    kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}.get(attrs.operation)
    if kind is None:
        return None
    opts: Obj = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    opts.update({k: v for k, v in (attrs.options or {}).items() if k not in ("kind", "apiVersion")})
    if attrs.dry_run:
        opts["dryRun"] = ["All"]
    return opts


def build_review(attrs: Attributes, version: str = "v1") -> Obj:
    req = admission_request(attrs)
    req["object"] = attrs.obj
    req["oldObject"] = attrs.old
    req["dryRun"] = attrs.dry_run
    opts = options_for(attrs)
    if opts is not None:
        req["options"] = opts
    return {"apiVersion": f"admission.k8s.io/{version}", "kind": "AdmissionReview", "request": req}


def admission_request(attrs: Attributes) -> Obj:
    """The AdmissionRequest without the objects and options (also CEL's ``request``)."""
    gvk = {"group": attrs.group, "version": attrs.info.version, "kind": attrs.kind}
    gvr = {"group": attrs.group, "version": attrs.info.version, "resource": attrs.resource}
    req: Obj = {"uid": attrs.uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr}
    if attrs.subresource:
        req["subResource"] = req["requestSubResource"] = attrs.subresource
    if attrs.name:
        req["name"] = attrs.name
    if attrs.namespace:
        req["namespace"] = attrs.namespace
    req["operation"] = attrs.operation
    req["userInfo"] = attrs.user
    return req


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    status: Obj | None
    patch: list[Obj] | None
    warnings: tuple[str, ...]


def parse_response(hook: str, doc: Any, uid: str, version: str, mutating: bool) -> Verdict:
    """Check an AdmissionReview response as upstream does; WebhookCallError when it is invalid."""
    def bad(msg: str) -> WebhookCallError:
        return WebhookCallError(hook, f"received invalid webhook response: {msg}")

    if not isinstance(doc, dict):
        raise bad("the response is not a JSON object")
    want = f"admission.k8s.io/{version}"
    if doc.get("apiVersion") != want or doc.get("kind") != "AdmissionReview":
        raise bad(f"expected webhook response of {want}, Kind=AdmissionReview, got {doc.get('apiVersion')}, Kind={doc.get('kind')}")
    resp = doc.get("response")
    if not isinstance(resp, dict):
        raise bad("webhook response was absent")
    if resp.get("uid") != uid:
        raise bad(f'expected response.uid="{uid}", got "{resp.get("uid") or ""}"')
    patch_type = resp.get("patchType")
    raw_patch = resp.get("patch")
    patch: list[Obj] | None = None
    if not mutating and (raw_patch or patch_type):
        raise bad("validating webhooks may not return response.patch or response.patchType")
    if raw_patch:
        if version == "v1" and not patch_type:
            raise bad("webhook returned response.patch but not response.patchType")
        if patch_type and patch_type != "JSONPatch":
            raise bad(f'webhook returned invalid response.patchType of "{patch_type}"')
        try:
            decoded = orjson.loads(base64.b64decode(raw_patch))
        except (ValueError, TypeError) as e:
            raise bad(f"the patch is not base64-encoded JSON: {e}")
        if not isinstance(decoded, list):
            raise bad("the patch is not a JSON patch (an array of operations)")
        patch = decoded
    elif patch_type and version == "v1":
        raise bad("webhook returned response.patchType but not response.patch")
    status = resp.get("status") if isinstance(resp.get("status"), dict) else None
    warnings = tuple(str(w) for w in resp.get("warnings") or () if isinstance(w, str))
    return Verdict(bool(resp.get("allowed") is True), status, patch, warnings)


def denied(hook: str, status: Mapping[str, Any] | None) -> errors.StatusError:
    """The webhook's refusal as the API error upstream returns (``ToStatusErr``)."""
    st = dict(status or {})
    code = st.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or code < 400:
        code = 400
    prefix = f'admission webhook "{hook}" denied the request'
    if st.get("message"):
        message = f"{prefix}: {st['message']}"
    elif st.get("reason"):
        message = f"{prefix}: {st['reason']}"
    else:
        message = f"{prefix} without explanation"
    details = st.get("details") if isinstance(st.get("details"), dict) else {}
    return errors.StatusError(code, str(st.get("reason") or ""), message, dict(details))


def dry_run_unsupported(hook: str) -> errors.StatusError:
    return errors.bad_request(f'admission webhook "{hook}" does not support dry run')
