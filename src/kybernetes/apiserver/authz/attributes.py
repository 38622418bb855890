"""Request attributes: what an authorizer decides on (upstream ``authorizer.Attributes``).

:func:`from_request` reads them off the URL and method exactly as upstream's
``RequestInfoFactory`` does, so a rule that works against Kubernetes works here:

* ``/api/<v>/...`` (core) and ``/apis/<group>/<v>/...`` with at least one more segment are
  *resource* requests; everything else (``/version``, ``/apis``, ``/api/v1``, ``/openapi/v3``,
  ``/healthz``) is a *non-resource* request whose verb is the lower-cased HTTP method.
* Verbs: POST create, GET/HEAD get, PUT update, PATCH patch, DELETE delete. A GET without a
  name is ``list`` (``watch`` when ``?watch`` is anything but ``false``/``0``); a DELETE
  without a name is ``deletecollection``. The special prefixes ``/watch/`` and ``/proxy/``
  after the version set the verb themselves (``proxy`` never has a subresource).
* ``namespaces/<ns>/<resource>/...`` gives the namespace; ``namespaces/<ns>`` alone (and its
  ``status``/``finalize`` subresources) is the Namespace object itself, whose namespace is
  its own name, as upstream.
* For list/watch/deletecollection a ``fieldSelector`` of ``metadata.name=<n>`` names the
  object (how kubelets watch one Secret), and the field selector's requirements are kept for
  authorizers that look at them (the Node authorizer lets a kubelet list only its own pods).

:func:`forbidden` builds the 403 Status with upstream's wording, e.g.
``pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the
namespace "a"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...api import errors
from ..authn import UserInfo

SPECIAL_VERBS = frozenset({"proxy", "watch"})
SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

FieldRequirement = tuple[str, str, str]   # (field, "=" or "!=", value)


@dataclass(frozen=True, slots=True)
class Attributes:
    """One request as authorizers see it. ``path`` is set for every request; the resource
    fields only for resource requests."""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    field_selector: tuple[FieldRequirement, ...] = field(default=())
    label_selector: str = ""

    @property
    def combined_resource(self) -> str:
        """``pods`` or ``pods/log``: how RBAC rules spell a resource."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def with_user(self, user: UserInfo) -> "Attributes":
        return Attributes(user, self.verb, self.resource_request, self.path, self.namespace, self.api_group,
                          self.api_version, self.resource, self.subresource, self.name, self.field_selector,
                          self.label_selector)


def _valid_path_segment_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "%" not in name


def _field_requirements(text: str | None) -> tuple[FieldRequirement, ...] | None:
    """Parsed ``fieldSelector`` terms; None when it does not parse (the handler answers 400)."""
    if not text:
        return ()
    from ...api.fields import NOT_EQUALS, parse_field_selector

    try:
        sel = parse_field_selector(text)
    except errors.StatusError:
        return None
    return tuple((r.field, "!=" if r.operator == NOT_EQUALS else "=", r.value) for r in sel.requirements)


def from_request(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of an HTTP request (see the module docstring for the rules)."""
    verb = method.lower()
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return Attributes(user, verb, False, path)
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return Attributes(user, verb, False, path)
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    special = False
    if rest[0] in SPECIAL_VERBS:
        if len(rest) < 2:  # upstream: "unable to determine kind and namespace": not a resource
            return Attributes(user, verb, False, path)
        verb, rest, special = rest[0], rest[1:], True
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and not (special and verb in SPECIAL_VERBS_NO_SUBRESOURCES) else ""
    reqs: tuple[FieldRequirement, ...] = ()
    labels = ""
    if not name and verb == "get":
        watch = query.get("watch")
        verb = "watch" if watch is not None and watch.lower() not in ("false", "0") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    if verb in ("list", "watch", "deletecollection"):
        reqs = _field_requirements(query.get("fieldSelector")) or ()
        labels = query.get("labelSelector") or ""
        if not name:
            for f, op, value in reqs:
                if f == "metadata.name" and op == "=" and _valid_path_segment_name(value):
                    name = value
                    break
    return Attributes(user, verb, True, path, namespace, group, version, resource, subresource, name, reqs, labels)


def from_review(user: UserInfo, spec: Mapping[str, Any]) -> Attributes:
    """The attributes a (Self/Local)SubjectAccessReview spec asks about."""
    ra = spec.get("resourceAttributes")
    if isinstance(ra, Mapping):
        fs = ra.get("fieldSelector") or {}
        reqs: tuple[FieldRequirement, ...] = ()
        if isinstance(fs, Mapping):
            reqs = _field_requirements(fs.get("rawSelector")) or ()
            if not reqs:
                reqs = tuple((str(r.get("key", "")), "=" if r.get("operator") in ("In", "=") else "!=",
                              str((r.get("values") or [""])[0])) for r in fs.get("requirements") or []
                             if isinstance(r, Mapping))
        ls = ra.get("labelSelector") or {}
        return Attributes(
            user, str(ra.get("verb") or ""), True, "", str(ra.get("namespace") or ""), str(ra.get("group") or ""),
            str(ra.get("version") or ""), str(ra.get("resource") or ""), str(ra.get("subresource") or ""),
            str(ra.get("name") or ""), reqs, str(ls.get("rawSelector") or "") if isinstance(ls, Mapping) else "")
    nra = spec.get("nonResourceAttributes")
    nra = nra if isinstance(nra, Mapping) else {}
    return Attributes(user, str(nra.get("verb") or ""), False, str(nra.get("path") or ""))


def forbidden_message(attrs: Attributes) -> str:
    """``User "alice" cannot get resource "pods" in API group "" in the namespace "a"`` and its
    cluster-scope and non-resource variants."""
    who = attrs.user.name
    if not attrs.resource_request:
        return f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    what = attrs.combined_resource
    if attrs.namespace:
        return f'User "{who}" cannot {attrs.verb} resource "{what}" in API group "{attrs.api_group}" in the namespace "{attrs.namespace}"'
    return f'User "{who}" cannot {attrs.verb} resource "{what}" in API group "{attrs.api_group}" at the cluster scope'


def forbidden(attrs: Attributes, reason: str = "") -> errors.StatusError:
    """The 403 answer to a denied request (upstream ``responsewriters.Forbidden``)."""
    msg = forbidden_message(attrs)
    if reason:
        msg = f"{msg}: {reason}"
    if not attrs.resource_request:
        return errors.forbidden_error(f"forbidden: {msg}")
    gr = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    text = f'{gr} "{attrs.name}" is forbidden: {msg}' if attrs.name else f"{gr} is forbidden: {msg}"
    return errors.forbidden_error(text, name=attrs.name, group=attrs.api_group, resource=attrs.resource)
