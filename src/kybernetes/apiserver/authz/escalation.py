"""RBAC escalation prevention: you cannot grant what you do not hold.

Checked on every create and update of Roles, ClusterRoles, RoleBindings and
ClusterRoleBindings, by :class:`EscalationAdmission`, which :meth:`install` puts first among
the validating admission plugins (upstream does the same check in the RBAC registry, right
before admission), against the requesting user the admission attributes carry:

* members of ``system:masters`` and the server's own writes (no request user) pass;
* a (Cluster)Role passes when the user may ``escalate`` it, or already holds every rule it
  grants (rules of their ClusterRoleBindings, plus their RoleBindings in the role's
  namespace); an ``aggregationRule`` additionally needs full cluster-admin rights;
* a binding passes when the user may ``bind`` the referenced role, or holds every rule of the
  referenced role (a missing role is 404 NotFound);
* an update that leaves the policy-relevant fields alone (rules, aggregationRule, labels;
  roleRef, subjects) passes, as upstream lets GC-only updates through.

The refusal is upstream's: ``roles.rbac.authorization.k8s.io "r" is forbidden: user "alice"
(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently
held:`` followed by the missing rules, one per line, in upstream's compact notation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ...api import errors
from ...api.resources import ResourceInfo
from ..admission.chain import CREATE, UPDATE, AdmissionChain, Plugin
from ..admission.chain import Attributes as AdmissionAttributes
from ..admission.chain import admission_user
from ..authn import UserInfo
from .attributes import Attributes
from .policy import Rule, compact, compact_string, compile_rules, covers
from .union import SYSTEM_PRIVILEGED_GROUP, Authorizer

if TYPE_CHECKING:
    from ..registry import Registry
    from ..rest import ApiStore
    from .rbac import RbacAuthorizer, RbacIndex

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
FULL_AUTHORITY = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]


def _go_quoted(values: Sequence[str]) -> str:
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def escalation_message(user: UserInfo, missing: Sequence[Obj], resolution_errors: Sequence[str] = ()) -> str:
    """The text upstream's ConfirmNoEscalation returns (pure)."""
    lines = sorted({compact_string(r) for r in compact(list(missing))})
    msg = (f'user "{user.name}" (groups={_go_quoted(user.groups)}) is attempting to grant RBAC permissions '
           f"not currently held:\n" + "\n".join(lines))
    if resolution_errors:
        msg += "; resolution errors: [" + " ".join(resolution_errors) + "]"
    return msg


def _policy_view(kind: str, obj: Obj) -> tuple[Any, ...]:
    if kind in ROLE_KINDS:
        return (obj.get("rules") or [], obj.get("aggregationRule"), (obj.get("metadata") or {}).get("labels") or {})
    return (obj.get("roleRef"), obj.get("subjects") or [])


class EscalationCheck:
    def __init__(self, authorizer: Authorizer, rbac: "RbacAuthorizer", index: "RbacIndex",
                 api: "ApiStore", registry: "Registry") -> None:
        self.authorizer = authorizer
        self.rbac = rbac
        self.index = index
        self.api = api
        self.registry = registry

    async def check(self, info: ResourceInfo, namespace: str, obj: Obj, old: Obj | None, user: UserInfo | None) -> None:
        """Raise 403 Forbidden (404 for a binding to a missing role) when ``user``'s write
        escalates; ``user`` None (the server's own writes) always passes."""
        if user is None or SYSTEM_PRIVILEGED_GROUP in user.groups:
            return
        if old is not None and _policy_view(info.kind, obj) == _policy_view(info.kind, old):
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        ns = namespace if info.namespaced else ""
        if info.kind in ROLE_KINDS:
            if self._allowed(user, "escalate", info.plural, ns, name if old is not None else ""):
                return
            self._confirm(user, ns, obj.get("rules") or [], info, name)
            if info.kind == "ClusterRole" and (obj.get("aggregationRule") or (old or {}).get("aggregationRule")):
                held, _ = self.rbac.held_rules(user, "")
                if not covers(held, FULL_AUTHORITY)[0]:
                    raise _forbidden(info, name, "must have cluster-admin privileges to use an aggregationRule")
            return
        ref = obj.get("roleRef") or {}
        plural = ROLE_KINDS.get(str(ref.get("kind") or ""))
        if plural is not None and self._allowed(user, "bind", plural, ns, str(ref.get("name") or ""),
                                                group=str(ref.get("apiGroup") or "")):
            return
        rules = await self._role_ref_rules(ref, ns)
        self._confirm(user, ns, [r.source for r in rules], info, name)

    def _allowed(self, user: UserInfo, verb: str, plural: str, ns: str, name: str, group: str = GROUP) -> bool:
        attrs = Attributes(user, verb, True, "", ns, group, "*", plural, "", name)
        return self.authorizer.authorize(attrs).allowed

    def _confirm(self, user: UserInfo, ns: str, rules: Sequence[Obj], info: ResourceInfo, name: str) -> None:
        held, resolution_errors = self.rbac.held_rules(user, ns)
        ok, missing = covers(held, rules)
        if not ok:
            raise _forbidden(info, name, escalation_message(user, missing, resolution_errors))

    async def _role_ref_rules(self, ref: Obj, ns: str) -> tuple[Rule, ...]:
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        plural = ROLE_KINDS.get(kind)
        if plural is None:
            raise errors.bad_request(f'unsupported role reference kind: "{kind}"')
        rules, err = self.index.role_rules(kind, name, ns)
        if not err:
            return rules
        # not (yet) in the index: the role may have been created a moment ago; ask the store
        info = self.registry.lookup(GROUP, "v1", plural)
        assert info is not None
        role = await self.api.get(info, ns if kind == "Role" else "", name)   # 404 when it does not exist
        return compile_rules(role.get("rules"))


def _forbidden(info: ResourceInfo, name: str, message: str) -> errors.StatusError:
    gr = f"{info.plural}.{info.group}"
    text = f'{gr} "{name}" is forbidden: {message}' if name else f"{gr} is forbidden: {message}"
    return errors.forbidden_error(text, name=name, group=info.group, resource=info.plural)


class EscalationAdmission(Plugin):
    """Runs :meth:`EscalationCheck.check` as the first validating admission plugin."""

    NAME: ClassVar[str] = "RBACEscalation"
    operations: ClassVar[frozenset[str]] = frozenset({CREATE, UPDATE})
    resources: ClassVar[frozenset[tuple[str, str]] | None] = frozenset(
        (GROUP, p) for p in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"))
    validating: ClassVar[bool] = True

    def __init__(self, check: EscalationCheck) -> None:
        self.check = check

    async def validate(self, attrs: AdmissionAttributes) -> None:
        if attrs.obj is None:
            return
        await self.check.check(attrs.info, attrs.namespace, attrs.obj, attrs.old, _user(attrs.user))

    def install(self, chain: AdmissionChain) -> None:
        """Put this plugin first among ``chain``'s validating plugins (once)."""
        if not any(isinstance(p, EscalationAdmission) for p in chain.plugins):
            chain.plugins.insert(0, self)
            chain.validating.insert(0, self)


def _user(u: Mapping[str, Any] | None) -> UserInfo | None:
    """Admission's UserInfo dict as a UserInfo (None when there is none)."""
    return admission_user(u) if u else None