"""``--audit-policy-file``: the audit.k8s.io/v1 Policy and which rule a request falls under (pure).

    apiVersion: audit.k8s.io/v1
    kind: Policy
    omitStages: [RequestReceived]          # for every rule (added to each rule's own list)
    omitManagedFields: false               # a rule's own value wins over this one
    rules:                                 # the first rule that matches decides; none: level None
      - level: Metadata                    # None | Metadata | Request | RequestResponse
        users: [alice]                     # user name must be listed (when set)
        userGroups: [system:nodes]         # one of the user's groups must be listed (when set)
        verbs: [get, list, watch]          # the request's verb must be listed (when set)
        resources:                         # resource requests only
          - group: ""                      # "" = core
            resources: [secrets, pods/log, "*/status", "deployments/*", "*"]
            resourceNames: [one]           # when set, the object name must be listed
        namespaces: [kube-system]          # resource requests only; "" = cluster-scoped
        nonResourceURLs: [/healthz*, /version]   # non-resource requests only; "*" suffix = prefix
        omitStages: [ResponseStarted]
        omitManagedFields: true

Matching is upstream's ``policy/checker.go`` rule for rule; so is validation (levels, stages,
a rule may not name both resources/namespaces and nonResourceURLs, ``*`` only at the end of a
URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..authz.attributes import Attributes

API_VERSION = "audit.k8s.io/v1"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
NONE, METADATA, REQUEST, REQUEST_RESPONSE = LEVELS


def level_at_least(level: str, wanted: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(wanted)


class AuditPolicyError(ValueError):
    """The policy file is unusable; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str], path: str = "") -> None:
        self.errors = errors
        where = f"audit policy file {path!r}: " if path else ""
        super().__init__(where + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"))


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool | None = None


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...] = ()
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


@dataclass(frozen=True)
class RequestAuditConfig:
    """What the policy says for one request."""

    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


# ----------------------------------------------------------------------------------------------
# evaluation
def evaluate(policy: Policy, attrs: Attributes, *, authenticated: bool = True) -> RequestAuditConfig:
    """The first matching rule's level and stages (level None when no rule matches).

    ``authenticated`` False: the request has no user (it failed authentication), so rules
    naming users or groups cannot match it."""
    for rule in policy.rules:
        if rule_matches(rule, attrs, authenticated=authenticated):
            omf = rule.omit_managed_fields if rule.omit_managed_fields is not None else policy.omit_managed_fields
            return RequestAuditConfig(rule.level, rule.omit_stages | policy.omit_stages, omf)
    return RequestAuditConfig(NONE, policy.omit_stages, policy.omit_managed_fields)


def rule_matches(r: PolicyRule, attrs: Attributes, *, authenticated: bool = True) -> bool:
    user = attrs.user
    if r.users and (not authenticated or user.name not in r.users):
        return False
    if r.user_groups and (not authenticated or not any(g in r.user_groups for g in user.groups)):
        return False
    if r.verbs and attrs.verb not in r.verbs:
        return False
    if r.namespaces or r.resources:
        return _matches_resource(r, attrs)
    if r.non_resource_urls:
        return not attrs.resource_request and any(path_matches(attrs.path, s) for s in r.non_resource_urls)
    return True


def path_matches(path: str, spec: str) -> bool:
    return spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


def _matches_resource(r: PolicyRule, attrs: Attributes) -> bool:
    if not attrs.resource_request:
        return False
    if r.namespaces and attrs.namespace not in r.namespaces:
        return False
    if not r.resources:
        return True
    resource, sub = attrs.resource, attrs.subresource
    combined = f"{resource}/{sub}" if sub else resource
    for gr in r.resources:
        if gr.group != attrs.api_group:
            continue
        if not gr.resources:
            return True
        if gr.resource_names and attrs.name not in gr.resource_names:
            continue
        for res in gr.resources:
            if res == combined or res == "*":
                return True
            if sub and res.startswith("*/") and res[2:] == sub:
                return True
            if res.endswith("/*") and res[:-2] == resource:
                return True
    return False


# ----------------------------------------------------------------------------------------------
# parsing and validation
def parse_policy(doc: Any) -> Policy:
    """Validate a decoded Policy document; AuditPolicyError lists every problem."""
    if not isinstance(doc, dict):
        raise AuditPolicyError(["the file must hold an audit.k8s.io/v1 Policy object"])
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "Policy":
        raise AuditPolicyError([f'no kind "{doc.get("kind")}" is registered for version "{doc.get("apiVersion")}" '
                                f"(want apiVersion {API_VERSION}, kind Policy)"])
    errs: list[str] = []
    _unknown(doc, ("apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"), "", errs)
    omit = _stages(doc.get("omitStages"), "omitStages", errs)
    rules = []
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        errs.append("loaded illegal policy with 0 rules")
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"rules[{i}]", errs)
        if rule is not None:
            rules.append(rule)
    if errs:
        raise AuditPolicyError(errs)
    return Policy(tuple(rules), omit, bool(doc.get("omitManagedFields") or False))


def _unknown(obj: dict[str, Any], known: tuple[str, ...], path: str, errs: list[str]) -> None:
    for k in obj:
        if k not in known:
            errs.append(f'strict decoding error: unknown field "{path + "." if path else ""}{k}"')


def _strings(value: Any, path: str, errs: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errs.append(f"{path}: Invalid value: must be a list of strings")
        return ()
    return tuple(value)


def _stages(value: Any, path: str, errs: list[str]) -> frozenset[str]:
    stages = _strings(value, path, errs)
    for j, s in enumerate(stages):
        if s not in STAGES:
            errs.append(f'{path}[{j}]: Unsupported value: "{s}": supported values: '
                        + ", ".join(f'"{x}"' for x in STAGES))
    return frozenset(s for s in stages if s in STAGES)


def _parse_rule(raw: Any, path: str, errs: list[str]) -> PolicyRule | None:
    if not isinstance(raw, dict):
        errs.append(f"{path}: Invalid value: must be an object")
        return None
    _unknown(raw, ("level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
                   "omitStages", "omitManagedFields"), path, errs)
    level = raw.get("level")
    if level not in LEVELS:
        if not level:
            errs.append(f"{path}.level: Required value")
        else:
            errs.append(f'{path}.level: Unsupported value: "{level}": supported values: '
                        + ", ".join(f'"{x}"' for x in LEVELS))
    urls = _strings(raw.get("nonResourceURLs"), f"{path}.nonResourceURLs", errs)
    namespaces = _strings(raw.get("namespaces"), f"{path}.namespaces", errs)
    groups: list[GroupResources] = []
    for j, g in enumerate(raw.get("resources") or []):
        gp = f"{path}.resources[{j}]"
        if not isinstance(g, dict):
            errs.append(f"{gp}: Invalid value: must be an object")
            continue
        _unknown(g, ("group", "resources", "resourceNames"), gp, errs)
        resources = _strings(g.get("resources"), f"{gp}.resources", errs)
        names = _strings(g.get("resourceNames"), f"{gp}.resourceNames", errs)
        group = str(g.get("group") or "")
        if "/" in group:
            errs.append(f'{gp}.group: Invalid value: "{group}": group name must not contain "/"')
        for k, res in enumerate(resources):
            if res != "*" and res.startswith("*") and not res.startswith("*/"):
                errs.append(f'{gp}.resources[{k}]: Invalid value: "{res}": "*" is only allowed as '
                            'the whole resource, "*/<subresource>" or "<resource>/*"')
        if names and any(r == "*" or r.startswith("*/") for r in resources):
            errs.append(f"{gp}.resourceNames: Invalid value: {list(names)}: using resourceNames with "
                        "wildcard resources is not allowed")
        groups.append(GroupResources(group, resources, names))
    if urls and (groups or namespaces):
        errs.append(f"{path}.nonResourceURLs: Invalid value: {list(urls)}: rules cannot apply to both "
                    "regular resources and non-resource URLs")
    for j, u in enumerate(urls):
        if u != "*" and not u.startswith("/"):
            errs.append(f'{path}.nonResourceURLs[{j}]: Invalid value: "{u}": non-resource URL rules must '
                        'begin with a "/" character')
        if "*" in u[:-1]:
            errs.append(f'{path}.nonResourceURLs[{j}]: Invalid value: "{u}": non-resource URL wildcards '
                        '("*") must be the final character of the rule')
    omf = raw.get("omitManagedFields")
    if omf is not None and not isinstance(omf, bool):
        errs.append(f"{path}.omitManagedFields: Invalid value: must be true or false")
        omf = None
    if level not in LEVELS:
        return None
    return PolicyRule(
        level=str(level),
        users=_strings(raw.get("users"), f"{path}.users", errs),
        user_groups=_strings(raw.get("userGroups"), f"{path}.userGroups", errs),
        verbs=_strings(raw.get("verbs"), f"{path}.verbs", errs),
        resources=tuple(groups), namespaces=namespaces, non_resource_urls=urls,
        omit_stages=_stages(raw.get("omitStages"), f"{path}.omitStages", errs),
        omit_managed_fields=omf,
    )


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file (blocking: at start-up, or via ``asyncio.to_thread``)."""
    p = str(path)
    try:
        data = Path(p).read_bytes()
    except OSError as e:
        raise AuditPolicyError([f"failed to read file: {e.strerror}"], p) from None
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise AuditPolicyError([f"failed decoding: {str(e).splitlines()[0]}"], p) from None
    try:
        return parse_policy(doc)
    except AuditPolicyError as e:
        raise AuditPolicyError(e.errors, p) from None
