"""NamespaceLifecycle: nothing new in a namespace that is missing or going away.

* ``default``, ``kube-system`` and ``kube-public`` (upstream's immortal namespaces) cannot be
  deleted: 403 ``namespaces "default" is forbidden: this namespace may not be deleted``;
* creating or updating a namespaced object in a namespace that does not exist: 404
  ``namespaces "x" not found``;
* creating one in a terminating namespace (``status.phase: Terminating``): 403
  ``<resource> "<name>" is forbidden: unable to create new content in namespace x because it is
  being terminated`` with a ``NamespaceTerminating`` cause;
* deletes of namespaced objects, anything on Namespaces themselves, cluster-scoped objects and
  the access-review kinds always pass.

``check`` is the pure decision; the plugin only reads the namespace (a point read, shared with
the other plugins of the request through ``attrs.memo``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...api import errors
from .chain import CREATE, DELETE, Attributes, Plugin, forbidden

if TYPE_CHECKING:
    from ..rest import ApiStore

Obj = dict[str, Any]

NAME = "NamespaceLifecycle"
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
ACCESS_REVIEWS = frozenset({("authorization.k8s.io", "localsubjectaccessreviews"),
                            ("authorization.k8s.io", "subjectaccessreviews"),
                            ("authorization.k8s.io", "selfsubjectaccessreviews"),
                            ("authorization.k8s.io", "selfsubjectrulesreviews")})
_MISSING = object()


def is_terminating(ns: Obj) -> bool:
    return (ns.get("status") or {}).get("phase") == "Terminating"


def needs_namespace(attrs: Attributes) -> bool:
    """Does the decision depend on the namespace object? (Only creates/updates of content.)"""
    if attrs.is_("", "namespaces") or not attrs.info.namespaced or not attrs.namespace:
        return False
    if attrs.operation == DELETE or (attrs.group, attrs.resource) in ACCESS_REVIEWS:
        return False
    return True


def check(attrs: Attributes, namespace: Obj | None) -> errors.StatusError | None:
    """The refusal for this request, given its namespace object (None = not found)."""
    if attrs.operation == DELETE and attrs.is_("", "namespaces") and attrs.name in IMMORTAL_NAMESPACES:
        return forbidden(attrs, "this namespace may not be deleted")
    if not needs_namespace(attrs):
        return None
    if namespace is None:
        return errors.not_found("namespaces", "", attrs.namespace)
    if attrs.operation == CREATE and is_terminating(namespace):
        return forbidden(
            attrs, f"unable to create new content in namespace {attrs.namespace} because it is being terminated",
            causes=[{"reason": "NamespaceTerminating", "message": f"namespace {attrs.namespace} is being terminated",
                     "field": "metadata.namespace"}])
    return None


async def get_namespace(api: "ApiStore", attrs: Attributes) -> Obj | None:
    """The request's namespace object (read once per request; None when it does not exist)."""
    cached = attrs.memo.get("namespace", _MISSING)
    if cached is not _MISSING:
        return cached  # type: ignore[no-any-return]
    from ..rest import decode

    kv = await api.store.get(f"/registry/namespaces/{attrs.namespace}")
    ns = decode(kv) if kv is not None else None
    attrs.memo["namespace"] = ns
    return ns


class NamespaceLifecycle(Plugin):
    NAME = NAME
    subresources = None
    mutating = True
    validating = True

    def __init__(self, api: "ApiStore") -> None:
        self.api = api

    async def _check(self, attrs: Attributes) -> None:
        ns = await get_namespace(self.api, attrs) if needs_namespace(attrs) else None
        err = check(attrs, ns)
        if err is not None:
            raise err

    async def admit(self, attrs: Attributes) -> None:
        await self._check(attrs)

    async def validate(self, attrs: Attributes) -> None:
        if attrs.operation == DELETE:  # the mutating pass already checked creates and updates
            await self._check(attrs)
