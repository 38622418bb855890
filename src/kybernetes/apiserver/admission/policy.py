"""ValidatingAdmissionPolicy: CEL validations, bound to requests by ValidatingAdmissionPolicyBindings.

For every binding (by name) whose policy exists, a request is checked when it matches the
policy's ``spec.matchConstraints`` and the binding's ``spec.matchResources`` (resource rules with
``resourceNames`` and ``excludeResourceRules``, namespace and object selectors, as webhooks
match; the admissionregistration objects themselves are never checked). Then, once per param:

* ``paramKind`` set: the binding's ``paramRef`` names one object (``name``, in ``namespace`` or
  the request's namespace for namespaced kinds) or selects several (``selector``: each is
  evaluated); none found → ``parameterNotFoundAction`` (``Allow`` skips the binding, ``Deny``
  refuses: ``failed to configure binding: no params found for policy binding with `Deny`
  parameterNotFoundAction``);
* ``matchConditions``, ``variables`` and ``validations`` run as :mod:`kybernetes.api.vap` says.

A failed validation is acted on per the binding's ``validationActions``: ``Deny`` refuses the
request with upstream's Status (``<resource> "<name>" is forbidden: ValidatingAdmissionPolicy
'<policy>' with binding '<binding>' denied request: <message>``, reason ``Invalid`` → 422 unless
the validation names another reason); ``Warn`` adds the warning ``Validation failed for
ValidatingAdmissionPolicy '<policy>' with binding '<binding>': <message>``; ``Audit`` adds the
audit annotation ``validation.policy.admission.k8s.io/validation_failure`` (a JSON list of
message, policy, binding, expressionIndex, validationActions). Configuration errors (missing params, an unknown paramKind)
follow ``failurePolicy``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...api import errors
from ...api import vap
from ...api.labels import label_selector_matches
from .cache import PrefixCache
from .chain import Attributes, Plugin, forbidden
from .namespace_lifecycle import get_namespace
from .webhook_rules import EXEMPT, admission_request, namespace_selector_applies, options_for, rule_matches

if TYPE_CHECKING:
    from ..rest import ApiStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]
AUDIT_KEY = "validation.policy.admission.k8s.io/validation_failure"


class ConfigError(Exception):
    pass


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _rule_matches(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    names = rule.get("resourceNames") or []
    return rule_matches(rule, attrs) and (not names or attrs.name in names)


def resources_match(mr: Mapping[str, Any] | None, attrs: Attributes, ns_labels: Mapping[str, str] | None,
                    *, rules_required: bool) -> bool:
    """Does a MatchResources select the request? (``rules_required``: the policy's constraints
    must name rules; a binding's may leave them out to take the policy's.)"""
    mr = mr or {}
    rules = mr.get("resourceRules") or []
    if (rules or rules_required) and not any(_rule_matches(r, attrs) for r in rules):
        return False
    if any(_rule_matches(r, attrs) for r in mr.get("excludeResourceRules") or []):
        return False
    ns_sel = mr.get("namespaceSelector")
    if ns_sel and namespace_selector_applies(attrs) and not label_selector_matches(ns_sel, ns_labels or {}):
        return False
    obj_sel = mr.get("objectSelector")
    if obj_sel:
        objs = [o for o in (attrs.obj, attrs.old) if o is not None]
        if not any(label_selector_matches(obj_sel, _labels(o)) for o in objs):
            return False
    return True


def request_of(attrs: Attributes) -> Obj:
    """The AdmissionRequest as ``request`` in CEL."""
    req = admission_request(attrs)
    req["dryRun"] = attrs.dry_run
    req["options"] = options_for(attrs)
    return req


class ValidatingAdmissionPolicy(Plugin):
    NAME = "ValidatingAdmissionPolicy"
    validating = True
    subresources = None

    def __init__(self, api: "ApiStore", policies: PrefixCache, bindings: PrefixCache) -> None:
        self.api = api
        self.policies = policies
        self.bindings = bindings
        self.evaluations = 0   # statistics

    def handles(self, attrs: Attributes) -> bool:
        return super().handles(attrs) and (attrs.group, attrs.resource) not in EXEMPT

    async def validate(self, attrs: Attributes) -> None:
        bindings = await self.bindings.list()
        if not bindings:
            return
        policies = {str(p["metadata"]["name"]): p for p in await self.policies.list()}
        ns_labels: Mapping[str, str] | None = None
        namespace: Obj | None = None
        if attrs.is_("", "namespaces"):
            ns_labels = _labels(attrs.obj if attrs.obj is not None else attrs.old)
        elif attrs.namespace:
            namespace = await get_namespace(self.api, attrs)
            ns_labels = _labels(namespace)
        denied: list[tuple[str, str, vap.Decision]] = []
        for binding in bindings:
            spec = binding.get("spec") or {}
            policy = policies.get(str(spec.get("policyName") or ""))
            if policy is None:
                continue
            pspec = policy.get("spec") or {}
            if not resources_match(pspec.get("matchConstraints"), attrs, ns_labels, rules_required=True):
                continue
            if spec.get("matchResources") and not resources_match(spec["matchResources"], attrs, ns_labels,
                                                                  rules_required=False):
                continue
            pname, bname = str(policy["metadata"]["name"]), str(binding["metadata"]["name"])
            try:
                params = await self._params(pspec.get("paramKind"), spec.get("paramRef"), attrs)
            except ConfigError as e:
                if (pspec.get("failurePolicy") or "Fail") == "Fail":
                    denied.append((pname, bname, vap.Decision(f"failed to configure binding: {e}")))
                continue
            for param in params:
                self.evaluations += 1
                act = vap.activation(obj=attrs.obj, old=attrs.old, request=request_of(attrs), params=param,
                                     namespace=namespace, variables=list(pspec.get("variables") or []))
                for decision in vap.evaluate(policy, act):
                    self._act(spec.get("validationActions") or [], pname, bname, decision, attrs, denied)
        if denied:
            pname, bname, decision = denied[0]
            message = f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: {decision.message}"
            err = forbidden(attrs, message)
            reason = decision.reason if decision.reason in vap.REASON_CODES else "Invalid"
            details = dict(err.details or {})
            details["causes"] = [*details.get("causes", []), {"message": message}]
            raise errors.StatusError(vap.REASON_CODES[reason], reason, err.message, details)

    @staticmethod
    def _act(actions: list[str], pname: str, bname: str, decision: vap.Decision, attrs: Attributes,
             denied: list[tuple[str, str, vap.Decision]]) -> None:
        for action in actions:
            if action == "Deny":
                denied.append((pname, bname, decision))
            elif action == "Warn":
                attrs.warn(f"Validation failed for ValidatingAdmissionPolicy '{pname}' with binding '{bname}': "
                           f"{decision.message}")
            elif action == "Audit":
                attrs.annotate(AUDIT_KEY, json.dumps([{
                    "message": decision.message, "policy": pname, "binding": bname,
                    "expressionIndex": decision.index, "validationActions": list(actions)}],
                    separators=(",", ":")))

    async def _params(self, kind: Mapping[str, Any] | None, ref: Mapping[str, Any] | None,
                      attrs: Attributes) -> list[Any]:
        """The params to evaluate with: [None] without a paramKind; ConfigError when the
        binding's paramRef cannot be honoured; [] when none is found and that is allowed."""
        if not kind:
            return [None]
        group, _, version = str(kind.get("apiVersion") or "").rpartition("/")
        info = self.api.registry.by_kind(group, version, str(kind.get("kind") or ""))
        if info is None:
            raise ConfigError(f"failed to find resource referenced by paramKind: "
                              f"'{kind.get('apiVersion')}, Kind={kind.get('kind')}'")
        if not ref:
            raise ConfigError("paramKind kind `" + str(kind.get("kind")) + "` is set but paramRef is nil")
        namespace = ""
        if info.namespaced:
            namespace = str(ref.get("namespace") or attrs.namespace or "")
            if not namespace:
                raise ConfigError("cannot use namespaced paramRef in policy binding that matches cluster-scoped "
                                  "resources")
        from ..rest import decode

        found: list[Obj]
        if ref.get("name"):
            kv = await self.api.store.get(info.key(namespace or None, str(ref["name"])))
            found = [decode(kv)] if kv is not None else []
        else:
            page = await self.api.store.list(info.key_prefix(namespace or None))
            found = [o for o in (decode(kv) for kv in page.items)
                     if label_selector_matches(ref.get("selector") or {}, _labels(o))]
        if not found and ref.get("parameterNotFoundAction") == "Deny":
            raise ConfigError("no params found for policy binding with `Deny` parameterNotFoundAction")
        return found
