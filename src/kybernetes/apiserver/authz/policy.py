"""RBAC policy rules: matching a request, and "does one rule set cover another" (pure).

A rule (``rbac.authorization.k8s.io/v1`` PolicyRule) allows a resource request when its
``verbs``, ``apiGroups``, ``resources`` and ``resourceNames`` all match, and a non-resource
request when its ``verbs`` and ``nonResourceURLs`` match:

* ``*`` in verbs / apiGroups / resources matches anything;
* resources are spelled ``pods`` or ``pods/log``; ``*/scale`` matches the ``scale``
  subresource of every resource (but ``pods`` does not match ``pods/log``);
* an empty ``resourceNames`` matches every name (including none, as for list and create);
* a nonResourceURL ending in ``*`` matches by prefix (``/apis/*``), ``*`` alone matches all.

:func:`covers` is upstream's escalation comparison: each requested rule is broken down into
atoms (one group, resource, verb, and name or URL) and each atom must be covered by one held
rule. :func:`compact_string` renders rules the way upstream's escalation error lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .attributes import Attributes

ALL = "*"
Obj = dict[str, Any]


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(str(v) for v in value)


@dataclass(frozen=True, slots=True)
class Rule:
    """A PolicyRule compiled for matching: sets for membership, flags for ``*``."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    non_resource_urls: tuple[str, ...]
    source: Obj            # the rule as written (for rules reviews and error messages)

    @classmethod
    def compile(cls, rule: Mapping[str, Any]) -> "Rule":
        src: Obj = {}
        for key in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
            vals = _strs(rule.get(key))
            if vals:
                src[key] = list(vals)
        return cls(frozenset(_strs(rule.get("verbs"))), frozenset(_strs(rule.get("apiGroups"))),
                   frozenset(_strs(rule.get("resources"))), frozenset(_strs(rule.get("resourceNames"))),
                   _strs(rule.get("nonResourceURLs")), src)

    @property
    def is_resource_rule(self) -> bool:
        return bool(self.resources)

    def verb_matches(self, verb: str) -> bool:
        return ALL in self.verbs or verb in self.verbs

    def allows(self, attrs: Attributes) -> bool:
        if not self.verb_matches(attrs.verb):
            return False
        if attrs.resource_request:
            return (self.group_matches(attrs.api_group)
                    and self.resource_matches(attrs.combined_resource, attrs.subresource)
                    and (not self.resource_names or attrs.name in self.resource_names))
        return url_matches(self.non_resource_urls, attrs.path)

    def group_matches(self, group: str) -> bool:
        return ALL in self.api_groups or group in self.api_groups

    def resource_matches(self, combined: str, subresource: str) -> bool:
        res = self.resources
        if ALL in res or combined in res:
            return True
        return bool(subresource) and f"*/{subresource}" in res


def url_matches(urls: Iterable[str], path: str) -> bool:
    for u in urls:
        if u == ALL or u == path:
            return True
        if u.endswith("*") and path.startswith(u.rstrip("*")):
            return True
    return False


def compile_rules(rules: Any) -> tuple[Rule, ...]:
    if not isinstance(rules, list):
        return ()
    return tuple(Rule.compile(r) for r in rules if isinstance(r, Mapping))


def rules_allow(attrs: Attributes, rules: Iterable[Rule]) -> bool:
    return any(r.allows(attrs) for r in rules)


# ------------------------------------------------------------------------------ coverage


def breakdown(rule: Mapping[str, Any]) -> list[Obj]:
    """One rule as atoms: (group, resource, verb[, name]) and (URL, verb)."""
    verbs = _strs(rule.get("verbs"))
    names = _strs(rule.get("resourceNames"))
    out: list[Obj] = []
    for g in _strs(rule.get("apiGroups")):
        for r in _strs(rule.get("resources")):
            for v in verbs:
                if names:
                    out += [{"apiGroups": [g], "resources": [r], "verbs": [v], "resourceNames": [n]} for n in names]
                else:
                    out.append({"apiGroups": [g], "resources": [r], "verbs": [v]})
    for u in _strs(rule.get("nonResourceURLs")):
        out += [{"nonResourceURLs": [u], "verbs": [v]} for v in verbs]
    return out


def _has_all(have: Sequence[str] | frozenset[str], want: Sequence[str]) -> bool:
    return all(w in have for w in want)


def _resources_cover(owner: frozenset[str], wanted: Sequence[str]) -> bool:
    if ALL in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path:
            return False
        if "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: Sequence[str], wanted: Sequence[str]) -> bool:
    return all(any(o == w or (o.endswith("*") and w.startswith(o.rstrip("*"))) for o in owner) for w in wanted)


def rule_covers(owner: Rule, sub: Mapping[str, Any]) -> bool:
    """Whether the held rule ``owner`` grants everything ``sub`` grants (upstream ``ruleCovers``)."""
    verbs, groups = _strs(sub.get("verbs")), _strs(sub.get("apiGroups"))
    resources, names = _strs(sub.get("resources")), _strs(sub.get("resourceNames"))
    if not (ALL in owner.verbs or _has_all(owner.verbs, verbs)):
        return False
    if not (ALL in owner.api_groups or _has_all(owner.api_groups, groups)):
        return False
    if not _resources_cover(owner.resources, resources):
        return False
    if not _urls_cover(owner.non_resource_urls, _strs(sub.get("nonResourceURLs"))):
        return False
    if names:
        return not owner.resource_names or _has_all(owner.resource_names, names)
    return not owner.resource_names


def covers(owner: Sequence[Rule], wanted: Iterable[Mapping[str, Any]]) -> tuple[bool, list[Obj]]:
    """(every wanted rule is held, the atoms that are not)."""
    missing = [atom for rule in wanted for atom in breakdown(rule)
               if not any(rule_covers(o, atom) for o in owner)]
    return not missing, missing


def compact(rules: Sequence[Obj]) -> list[Obj]:
    """Merge simple atoms (one group, one resource, no names) into one rule per resource."""
    out: list[Obj] = []
    merged: dict[tuple[str, str], Obj] = {}
    for r in rules:
        simple = (len(r.get("apiGroups") or ()) == 1 and len(r.get("resources") or ()) == 1
                  and not r.get("resourceNames") and not r.get("nonResourceURLs"))
        if not simple:
            out.append(r)
            continue
        key = (r["apiGroups"][0], r["resources"][0])
        have = merged.get(key)
        if have is None:
            merged[key] = {"apiGroups": [key[0]], "resources": [key[1]], "verbs": list(r.get("verbs") or [])}
        else:
            have["verbs"] += [v for v in r.get("verbs") or [] if v not in have["verbs"]]
    return list(merged.values()) + out


def _go_quoted_list(values: Sequence[str]) -> str:
    import json

    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def compact_string(rule: Mapping[str, Any]) -> str:
    """``{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`` (upstream ``CompactString``)."""
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
                       ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        vals = _strs(rule.get(key))
        if vals:
            parts.append(f"{label}:{_go_quoted_list(vals)}")
    return "{" + ", ".join(parts) + "}"
