"""The RBAC authorizer: Roles, ClusterRoles and their bindings, with decisions cached per user.

:class:`RbacIndex` holds every Role, ClusterRole, RoleBinding and ClusterRoleBinding, fed by
watch-cache mirrors (``mirror.py``); its ``generation`` moves on every change. Bindings are
indexed by subject (users, groups, and service accounts as their user names), so finding the
bindings of a request's user costs a few dict lookups however many bindings exist.

:class:`RbacAuthorizer` resolves, per (user, groups, namespace), the rules that apply — those
of ClusterRoleBindings, then of RoleBindings in the namespace, each with the binding that
granted it — and memoises both that rule set and its decisions. Everything is dropped when
the index's generation moves, so a grant or a revocation takes effect as soon as the watch
cache delivers it.

Upstream semantics kept: a binding applies when any subject matches (User by name, Group by
membership, ServiceAccount by ``system:serviceaccount:<ns>:<name>``, its namespace defaulting to
the RoleBinding's); RBAC never denies, it only allows or has no opinion; a binding to a missing
role contributes the error ``clusterrole.rbac.authorization.k8s.io "x" not found`` to the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..authn import UserInfo
from .attributes import Attributes
from .policy import Rule, compile_rules
from .union import ALLOW, NO_OPINION, NO_OPINION_RESULT, Result, RulesResult, aggregate

Obj = dict[str, Any]
SA_PREFIX = "system:serviceaccount:"
CACHE_LIMIT = 10_000     # memoised rule sets / decisions per rule set before a reset


@dataclass(frozen=True, slots=True)
class Binding:
    namespace: str                       # "" for ClusterRoleBindings
    name: str
    role_kind: str                       # Role | ClusterRole
    role_name: str
    subjects: tuple[tuple[str, str], ...]  # (kind, name) after SA -> ("User", sa user name)
    described: tuple[str, ...]           # per subject: 'User "alice"', 'ServiceAccount "sa/ns"'

    @classmethod
    def from_object(cls, obj: Obj) -> "Binding":
        md = obj.get("metadata") or {}
        ns = str(md.get("namespace") or "")
        ref = obj.get("roleRef") or {}
        subjects: list[tuple[str, str]] = []
        described: list[str] = []
        for s in obj.get("subjects") or []:
            if not isinstance(s, dict):
                continue
            kind, name = str(s.get("kind") or ""), str(s.get("name") or "")
            if kind == "ServiceAccount":
                sa_ns = str(s.get("namespace") or "") or ns
                if not sa_ns:
                    continue
                subjects.append(("User", f"{SA_PREFIX}{sa_ns}:{name}"))
                described.append(f'ServiceAccount "{name}/{sa_ns}"')
            elif kind in ("User", "Group"):
                subjects.append((kind, name))
                described.append(f'{kind} "{name}"')
        return cls(ns, str(md.get("name") or ""), str(ref.get("kind") or ""), str(ref.get("name") or ""),
                   tuple(subjects), tuple(described))

    def describe(self, subject_index: int) -> str:
        subj = self.described[subject_index]
        if self.namespace:
            return f'RoleBinding "{self.name}/{self.namespace}" of {self.role_kind} "{self.role_name}" to {subj}'
        return f'ClusterRoleBinding "{self.name}" of {self.role_kind} "{self.role_name}" to {subj}'

    def applies_to(self, user: UserInfo) -> int:
        """Index of the first subject that matches ``user``, or -1."""
        for i, (kind, name) in enumerate(self.subjects):
            if (kind == "User" and name == user.name) or (kind == "Group" and name in user.groups):
                return i
        return -1


def split_key(key: str, namespaced: bool) -> tuple[str, str]:
    parts = key.rstrip("/").split("/")
    return (parts[-2], parts[-1]) if namespaced else ("", parts[-1])


class RbacIndex:
    """Every RBAC object, indexed for authorization (fed by mirrors; see the module doc)."""

    def __init__(self) -> None:
        self.cluster_roles: dict[str, Obj] = {}
        self.roles: dict[tuple[str, str], Obj] = {}
        self._rules: dict[tuple[str, str, str], tuple[Rule, ...]] = {}   # (kind, ns, name) -> rules
        self.bindings: dict[tuple[str, str], Binding] = {}              # (ns, name); ns "" = cluster
        self._by_subject: dict[tuple[str, str], dict[tuple[str, str], Binding]] = {}
        self.generation = 0
        self.listeners: list[Callable[[str], None]] = []  # called with the kind that changed

    # -- feeding: (storage key, object or None when deleted), from the mirrors ----------------
    def _changed(self, kind: str) -> None:
        self.generation += 1
        for fn in self.listeners:
            fn(kind)

    def on_cluster_role(self, key: str, new: Obj | None) -> None:
        _, name = split_key(key, False)
        if new is None:
            self.cluster_roles.pop(name, None)
            self._rules.pop(("ClusterRole", "", name), None)
        else:
            self.cluster_roles[name] = new
            self._rules[("ClusterRole", "", name)] = compile_rules(new.get("rules"))
        self._changed("ClusterRole")

    def on_role(self, key: str, new: Obj | None) -> None:
        ns, name = split_key(key, True)
        if new is None:
            self.roles.pop((ns, name), None)
            self._rules.pop(("Role", ns, name), None)
        else:
            self.roles[(ns, name)] = new
            self._rules[("Role", ns, name)] = compile_rules(new.get("rules"))
        self._changed("Role")

    def on_binding(self, namespaced: bool) -> Callable[[str, Obj | None], None]:
        def apply(key: str, new: Obj | None) -> None:
            ns, name = split_key(key, namespaced)
            bid = (ns, name)
            prev = self.bindings.pop(bid, None)
            if prev is not None:
                for subj in prev.subjects:
                    holders = self._by_subject.get(subj)
                    if holders is not None:
                        holders.pop(bid, None)
                        if not holders:
                            del self._by_subject[subj]
            if new is not None:
                b = Binding.from_object(new)
                b = Binding(ns, name, b.role_kind, b.role_name, b.subjects, b.described)
                self.bindings[bid] = b
                for subj in b.subjects:
                    self._by_subject.setdefault(subj, {})[bid] = b
            self._changed("RoleBinding" if namespaced else "ClusterRoleBinding")
        return apply

    # -- reading ----------------------------------------------------------------------------
    def role_rules(self, kind: str, name: str, namespace: str) -> tuple[tuple[Rule, ...], str]:
        """The rules of a roleRef, or an error text when the role does not exist."""
        if kind == "ClusterRole":
            rules = self._rules.get(("ClusterRole", "", name))
            return (rules, "") if rules is not None else ((), f'clusterrole.rbac.authorization.k8s.io "{name}" not found')
        if kind == "Role":
            rules = self._rules.get(("Role", namespace, name))
            return (rules, "") if rules is not None else ((), f'role.rbac.authorization.k8s.io "{name}" not found')
        return (), f'unsupported role reference kind: "{kind}"'

    def bindings_for(self, user: UserInfo, namespace: str) -> list[Binding]:
        """ClusterRoleBindings, then RoleBindings of ``namespace``, that may apply to ``user``
        (each sorted by name, as upstream lists them)."""
        found: dict[tuple[str, str], Binding] = {}
        for key in (("User", user.name), *(("Group", g) for g in user.groups)):
            holders = self._by_subject.get(key)
            if holders:
                found.update(holders)
        cluster = sorted((b for b in found.values() if not b.namespace), key=lambda b: b.name)
        local = sorted((b for b in found.values() if namespace and b.namespace == namespace), key=lambda b: b.name)
        return cluster + local


@dataclass
class RuleSet:
    """The rules one (user, groups, namespace) holds, with where each came from."""

    rules: tuple[Rule, ...] = ()
    sources: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    memo: dict[tuple[Any, ...], Result] = field(default_factory=dict)

    @property
    def uses_names(self) -> bool:
        return any(r.resource_names for r in self.rules)

    def decide(self, attrs: Attributes) -> Result:
        key = (attrs.verb, attrs.resource_request, attrs.api_group, attrs.resource, attrs.subresource,
               attrs.name if self._names else "", "" if attrs.resource_request else attrs.path)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        out = NO_OPINION_RESULT
        for rule, src in zip(self.rules, self.sources):
            if rule.allows(attrs):
                out = Result(ALLOW, f"RBAC: allowed by {src}")
                break
        else:
            if self.errors:
                out = Result(NO_OPINION, "RBAC: " + aggregate(self.errors))
        if len(self.memo) >= CACHE_LIMIT:
            self.memo.clear()
        self.memo[key] = out
        return out

    def __post_init__(self) -> None:
        self._names = self.uses_names


class RbacAuthorizer:
    def __init__(self, index: RbacIndex) -> None:
        self.index = index
        self._sets: dict[tuple[str, tuple[str, ...], str], RuleSet] = {}
        self._gen = -1
        self.computed = 0          # statistics: rule sets resolved (cache misses)

    def statistics(self) -> dict[str, int]:
        return {"rule_sets_cached": len(self._sets), "rule_sets_computed": self.computed,
                "generation": self.index.generation}

    def rule_set(self, user: UserInfo, namespace: str) -> RuleSet:
        if self._gen != self.index.generation:
            self._sets.clear()
            self._gen = self.index.generation
        key = (user.name, user.groups, namespace)
        rs = self._sets.get(key)
        if rs is None:
            rs = self._resolve(user, namespace)
            if len(self._sets) >= CACHE_LIMIT:
                self._sets.clear()
            self._sets[key] = rs
        return rs

    def _resolve(self, user: UserInfo, namespace: str) -> RuleSet:
        self.computed += 1
        rules: list[Rule] = []
        sources: list[str] = []
        errs: list[str] = []
        for b in self.index.bindings_for(user, namespace):
            i = b.applies_to(user)
            if i < 0:
                continue
            got, err = self.index.role_rules(b.role_kind, b.role_name, b.namespace)
            if err:
                errs.append(err)
                continue
            desc = b.describe(i)
            rules += got
            sources += [desc] * len(got)
        return RuleSet(tuple(rules), tuple(sources), tuple(errs))

    def authorize(self, attrs: Attributes) -> Result:
        return self.rule_set(attrs.user, attrs.namespace).decide(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> RulesResult:
        rs = self.rule_set(user, namespace)
        out = RulesResult(errors=list(rs.errors), incomplete=bool(rs.errors))
        for r in rs.rules:
            if r.resources or r.api_groups:
                out.resource_rules.append(_resource_rule(r))
            if r.non_resource_urls:
                out.non_resource_rules.append({"verbs": list(r.source.get("verbs") or []),
                                               "nonResourceURLs": list(r.non_resource_urls)})
        return out

    def held_rules(self, user: UserInfo, namespace: str) -> tuple[tuple[Rule, ...], tuple[str, ...]]:
        """The rules ``user`` holds in ``namespace`` and resolution errors (for escalation checks)."""
        rs = self.rule_set(user, namespace)
        return rs.rules, rs.errors


def _resource_rule(r: Rule) -> Obj:
    out: Obj = {"verbs": list(r.source.get("verbs") or []), "apiGroups": list(r.source.get("apiGroups") or []),
                "resources": list(r.source.get("resources") or [])}
    if r.resource_names:
        out["resourceNames"] = list(r.source.get("resourceNames") or [])
    return out

