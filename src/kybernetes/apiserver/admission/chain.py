"""The admission chain: ordered plugins, mutating first, then validating (upstream's order).

    attrs = chain.attributes(info, "CREATE", ns, name, obj=obj, warnings=opts.warnings, ...)
    obj = await chain.mutate(attrs)      # before strategy/validation; returns the (patched) object
    await chain.validate(attrs)          # after validation, right before the store write

Every plugin declares what it handles (``operations`` and ``resources``, plus an optional
``handles(attrs)`` refinement) and implements ``admit`` (mutating phase), ``validate``
(validating phase) or both, as upstream's ``MutationInterface`` / ``ValidationInterface``. A
plugin refuses by raising a :class:`~kybernetes.api.errors.StatusError` (usually 403 via
:func:`forbidden`); it adds client warnings with ``attrs.warn`` (sent back as ``Warning: 299 -``
headers by the handlers).

Order (kube-apiserver's recommended order, built-ins that live elsewhere in parentheses):

    mutating:   NamespaceLifecycle, LimitRanger, (ServiceAccount, DefaultTolerationSeconds,
                DefaultStorageClass: applied by ``ApiStore.create`` just before), NodeRestriction,
                Priority, MutatingAdmissionWebhook
    validating: (RBACEscalation), LimitRanger, PodSecurity, Priority, (CertificateApproval,
                CertificateSigning, CertificateSubjectRestriction: installed with the authorizer),
                ValidatingAdmissionPolicy, ValidatingAdmissionWebhook, ResourceQuota

The requesting user reaches the chain through :data:`request_user`, a context variable the HTTP
middleware sets after authentication (requests without one, e.g. the server's own bootstrap
writes, act as ``system:apiserver`` in ``system:masters``, upstream's loopback identity).
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ...api import errors
from ...api.resources import ResourceInfo

if TYPE_CHECKING:
    from ..authn import UserInfo
    from ..rest import ApiStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"
ALL_OPERATIONS = frozenset({CREATE, UPDATE, DELETE, CONNECT})

LOOPBACK_USER: Obj = {"name": "system:apiserver", "groups": ["system:masters", "system:authenticated"]}

#: The authenticated user of the request being served (set by the API server's middleware).
request_user: contextvars.ContextVar[Obj | None] = contextvars.ContextVar("kybernetes_request_user", default=None)
#: Adds an annotation to the request's audit events (set by the middleware; None when not audited).
request_annotator: contextvars.ContextVar[Callable[[str, str], None] | None] = contextvars.ContextVar(
    "kybernetes_request_annotator", default=None)


def user_info(user: Obj | None) -> Obj:
    """The middleware's user dict as an ``authentication.k8s.io/v1`` UserInfo."""
    u = user or LOOPBACK_USER
    info: Obj = {"username": str(u.get("name") or u.get("username") or ""), "groups": list(u.get("groups") or [])}
    if u.get("uid"):
        info["uid"] = str(u["uid"])
    if u.get("extra"):
        info["extra"] = {k: list(v) for k, v in dict(u["extra"]).items()}
    return info


def admission_user(u: Mapping[str, Any] | None) -> UserInfo:
    """A UserInfo dict (``username``, ``groups``, ...) as the authorizers' UserInfo."""
    from ..authn import UserInfo

    u = u or {}
    extra = u.get("extra") or {}
    return UserInfo(name=str(u.get("username") or ""), uid=str(u.get("uid") or ""),
                    groups=tuple(str(g) for g in u.get("groups") or ()),
                    extra={str(k): tuple(v) for k, v in extra.items()})


@dataclass
class Attributes:
    """One request as admission sees it (upstream ``admission.Attributes``).

    ``obj`` is the object being written (None for DELETE), ``old`` the stored one (None for
    CREATE). Plugins of the mutating phase may change ``obj`` in place or replace it.
    """

    info: ResourceInfo
    operation: str
    namespace: str
    name: str
    obj: Obj | None = None
    old: Obj | None = None
    subresource: str = ""
    dry_run: bool = False
    user: Obj = field(default_factory=lambda: user_info(None))
    options: Obj | None = None            # Create/Update/DeleteOptions sent to webhooks
    warnings: list[str] = field(default_factory=list)
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    memo: dict[str, Any] = field(default_factory=dict)   # per-request lookups shared by plugins

    @property
    def group(self) -> str:
        return self.info.group

    @property
    def resource(self) -> str:
        return self.info.plural

    @property
    def kind(self) -> str:
        return self.info.kind

    def is_(self, group: str, plural: str) -> bool:
        return self.info.group == group and self.info.plural == plural

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def annotate(self, key: str, value: str) -> None:
        """An annotation on the request's audit events (upstream ``Attributes.AddAnnotation``)."""
        add = request_annotator.get()
        if add is not None:
            add(key, value)


# ------------------------------------------------------------------------------------------
# errors
def group_resource(attrs: Attributes) -> str:
    return f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource


def forbidden(attrs: Attributes, message: str, *, causes: Sequence[Obj] = ()) -> errors.StatusError:
    """403 ``<resource> "<name>" is forbidden: <message>`` (upstream ``admission.NewForbidden``)."""
    gr = group_resource(attrs)
    name = attrs.name
    text = f'{gr} "{name}" is forbidden: {message}' if name else f"{gr} is forbidden: {message}"
    details: Obj = {}
    if name:
        details["name"] = name
    if attrs.group:
        details["group"] = attrs.group
    details["kind"] = attrs.resource
    if causes:
        details["causes"] = list(causes)
    return errors.StatusError(403, "Forbidden", text, details)


def aggregate(messages: Iterable[str]) -> str:
    """Upstream's error aggregate text: one message as is, several as ``[a, b]`` (deduplicated)."""
    seen: list[str] = []
    for msg in messages:
        if msg not in seen:
            seen.append(msg)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


# ------------------------------------------------------------------------------------------
# plugins
class Plugin:
    """Base of admission plugins: declares what it handles; override ``admit``/``validate``.

    ``operations``: the operations it looks at; ``resources``: ``(group, plural)`` pairs or
    None for every resource; ``subresources``: None = any, else the accepted subresource names
    ("" = the main resource). ``handles`` may refine further.
    """

    NAME: ClassVar[str] = ""
    operations: ClassVar[frozenset[str]] = ALL_OPERATIONS
    resources: ClassVar[frozenset[tuple[str, str]] | None] = None
    subresources: ClassVar[frozenset[str] | None] = frozenset({""})
    mutating: ClassVar[bool] = False
    validating: ClassVar[bool] = False

    def handles(self, attrs: Attributes) -> bool:
        if attrs.operation not in self.operations:
            return False
        if self.resources is not None and (attrs.group, attrs.resource) not in self.resources:
            return False
        return self.subresources is None or attrs.subresource in self.subresources

    async def admit(self, attrs: Attributes) -> None:  # pragma: no cover - overridden
        """Mutating phase: change ``attrs.obj`` or raise StatusError."""

    async def validate(self, attrs: Attributes) -> None:  # pragma: no cover - overridden
        """Validating phase: raise StatusError to refuse; never change the object."""

    async def bootstrap(self) -> None:
        """Create whatever the plugin needs at API server start (e.g. system PriorityClasses)."""


class AdmissionChain:
    """Runs plugins in order; see the module docstring."""

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = list(plugins)
        self.mutating = [p for p in self.plugins if p.mutating]
        self.validating = [p for p in self.plugins if p.validating]
        self.caches: dict[tuple[str, str], Any] = {}   # (group, plural) -> PrefixCache

    @classmethod
    def default(cls, api: "ApiStore") -> "AdmissionChain":
        """The default plugin set over ``api`` (the generic store)."""
        from .cache import PrefixCache
        from .limitranger import LimitRanger
        from .namespace_lifecycle import NamespaceLifecycle
        from .noderestriction import NodeRestriction
        from .podsecurity import PodSecurity
        from .policy import ValidatingAdmissionPolicy
        from .priority import Priority
        from .resourcequota import ResourceQuota
        from .webhooks import MutatingAdmissionWebhook, ValidatingAdmissionWebhook, WebhookClient

        def cache(group: str, version: str, plural: str) -> PrefixCache:
            info = api.registry.lookup(group, version, plural)
            assert info is not None, f"{plural}.{group} is not registered"
            return PrefixCache(api.store, api.cache, info.key_prefix(None))

        arg = "admissionregistration.k8s.io"
        caches = {
            ("", "limitranges"): cache("", "v1", "limitranges"),
            ("", "resourcequotas"): cache("", "v1", "resourcequotas"),
            ("scheduling.k8s.io", "priorityclasses"): cache("scheduling.k8s.io", "v1", "priorityclasses"),
            (arg, "mutatingwebhookconfigurations"): cache(arg, "v1", "mutatingwebhookconfigurations"),
            (arg, "validatingwebhookconfigurations"): cache(arg, "v1", "validatingwebhookconfigurations"),
            (arg, "validatingadmissionpolicies"): cache(arg, "v1", "validatingadmissionpolicies"),
            (arg, "validatingadmissionpolicybindings"): cache(arg, "v1", "validatingadmissionpolicybindings"),
        }
        client = WebhookClient(api)
        chain = cls([
            NamespaceLifecycle(api),
            LimitRanger(caches[("", "limitranges")]),
            NodeRestriction(api),
            Priority(api, caches[("scheduling.k8s.io", "priorityclasses")]),
            MutatingAdmissionWebhook(api, caches[(arg, "mutatingwebhookconfigurations")], client),
            PodSecurity(api),
            ValidatingAdmissionPolicy(api, caches[(arg, "validatingadmissionpolicies")],
                                      caches[(arg, "validatingadmissionpolicybindings")]),
            ValidatingAdmissionWebhook(api, caches[(arg, "validatingwebhookconfigurations")], client),
            ResourceQuota(api, caches[("", "resourcequotas")]),
        ])
        chain.caches = caches
        return chain

    def insert(self, plugin: Plugin, *, before: str | None = None) -> None:
        """Add a plugin (e.g. NodeRestriction, RBAC escalation checks) before the plugin named
        ``before`` (default: before ResourceQuota, which must stay last), in both phases."""
        anchor = before if before is not None else "ResourceQuota"
        names = [p.NAME for p in self.plugins]
        self.plugins.insert(names.index(anchor) if anchor in names else len(self.plugins), plugin)
        self.mutating = [p for p in self.plugins if p.mutating]
        self.validating = [p for p in self.plugins if p.validating]

    # -- building attributes -----------------------------------------------------------------
    def attributes(
        self, info: ResourceInfo, operation: str, namespace: str, name: str, *,
        obj: Obj | None = None, old: Obj | None = None, subresource: str = "", dry_run: bool = False,
        options: Obj | None = None, warnings: list[str] | None = None,
    ) -> Attributes:
        return Attributes(
            info=info, operation=operation, namespace=namespace if info.namespaced else "",
            name=name, obj=obj, old=old, subresource=subresource, dry_run=dry_run,
            user=user_info(request_user.get()), options=options,
            warnings=warnings if warnings is not None else [],
        )

    def _touch(self, attrs: Attributes) -> None:
        """A write to a cached kind is about to happen: read it live for a while."""
        c = self.caches.get((attrs.group, attrs.resource))
        if c is not None:
            c.touch()

    # -- phases ----------------------------------------------------------------------------
    async def mutate(self, attrs: Attributes) -> Obj | None:
        """Run the mutating plugins; returns the object to continue with."""
        self._touch(attrs)
        for p in self.mutating:
            if p.handles(attrs):
                await p.admit(attrs)
        return attrs.obj

    async def validate(self, attrs: Attributes) -> None:
        """Run the validating plugins (ResourceQuota, last, charges the quota)."""
        self._touch(attrs)
        for p in self.validating:
            if p.handles(attrs):
                await p.validate(attrs)

    async def bootstrap(self) -> None:
        for p in self.plugins:
            await p.bootstrap()
