"""Decisions, the authorizer protocol, and the authorizers that combine or short-cut others.

An authorizer answers ALLOW, DENY or NO_OPINION with a human reason (upstream
``authorizer.Decision``). :class:`Union` asks its members in order: the first ALLOW or DENY
wins; otherwise the answer is NO_OPINION with every member's reason (joined by newlines) and
their evaluation errors. The API server always puts :class:`PrivilegedGroup` (``system:masters``)
first, as kube-apiserver does, so the cluster's own administrators and loopback writes can
never be locked out by a broken policy.

Rule listing (``rules_for``, behind SelfSubjectRulesReview / ``kubectl auth can-i --list``)
is a union too: every member's rules, ``incomplete`` if any member says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..authn import UserInfo
from .attributes import Attributes

ALLOW = "Allow"
DENY = "Deny"
NO_OPINION = "NoOpinion"
SYSTEM_PRIVILEGED_GROUP = "system:masters"
Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    decision: str
    reason: str = ""
    error: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW


NO_OPINION_RESULT = Result(NO_OPINION)
ALLOW_RESULT = Result(ALLOW)


@dataclass
class RulesResult:
    """What a user may do in a namespace: ``authorization.k8s.io/v1`` ResourceRule and
    NonResourceRule dicts, whether the list is known to be incomplete, and why."""

    resource_rules: list[Obj] = field(default_factory=list)
    non_resource_rules: list[Obj] = field(default_factory=list)
    incomplete: bool = False
    errors: list[str] = field(default_factory=list)


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Result: ...

    def rules_for(self, user: UserInfo, namespace: str) -> RulesResult: ...


class AlwaysAllow:
    """``--authorization-mode AlwaysAllow``: every request is allowed."""

    def authorize(self, attrs: Attributes) -> Result:
        return ALLOW_RESULT

    def rules_for(self, user: UserInfo, namespace: str) -> RulesResult:
        return everything()


class PrivilegedGroup:
    """Members of ``system:masters`` may do anything (upstream's privileged-group authorizer)."""

    def __init__(self, group: str = SYSTEM_PRIVILEGED_GROUP) -> None:
        self.group = group

    def authorize(self, attrs: Attributes) -> Result:
        return ALLOW_RESULT if self.group in attrs.user.groups else NO_OPINION_RESULT

    def rules_for(self, user: UserInfo, namespace: str) -> RulesResult:
        return everything() if self.group in user.groups else RulesResult()


def everything() -> RulesResult:
    return RulesResult([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                       [{"verbs": ["*"], "nonResourceURLs": ["*"]}])


class Union:
    def __init__(self, members: Sequence[Authorizer]) -> None:
        self.members = list(members)

    def authorize(self, attrs: Attributes) -> Result:
        reasons: list[str] = []
        errs: list[str] = []
        for a in self.members:
            r = a.authorize(attrs)
            if r.decision != NO_OPINION:
                return r
            if r.reason:
                reasons.append(r.reason)
            if r.error:
                errs.append(r.error)
        if not reasons and not errs:
            return NO_OPINION_RESULT
        return Result(NO_OPINION, "\n".join(reasons), aggregate(errs))

    def rules_for(self, user: UserInfo, namespace: str) -> RulesResult:
        out = RulesResult()
        for a in self.members:
            r = a.rules_for(user, namespace)
            out.resource_rules += r.resource_rules
            out.non_resource_rules += r.non_resource_rules
            out.incomplete = out.incomplete or r.incomplete
            out.errors += r.errors
        return out


def aggregate(messages: Sequence[str]) -> str:
    """Upstream's error aggregate: one message as is, several as ``[a, b]``."""
    seen = list(dict.fromkeys(m for m in messages if m))
    if not seen:
        return ""
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
