"""audit.k8s.io/v1 Event documents (pure builders, no I/O).

One request gives up to three events sharing one ``auditID``: ``RequestReceived`` (as soon as the
request is authenticated), ``ResponseStarted`` (long-running requests only: watch, exec, attach,
port-forward, logs, proxy — when the response headers go out) and ``ResponseComplete`` (or
``Panic`` when the handler failed unexpectedly). What an event carries depends on the level:

* ``Metadata``: who, what (verb, requestURI, objectRef), from where, the response status and
  annotations; never an object body;
* ``Request``: also ``requestObject`` (the decoded request body);
* ``RequestResponse``: also ``responseObject`` (the decoded response body; not for watches).

Timestamps are microsecond RFC 3339 in UTC (``MicroTime``), as upstream writes them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from typing import Any

from ..authz.attributes import Attributes
from .policy import METADATA, REQUEST, REQUEST_RESPONSE, level_at_least

Obj = dict[str, Any]
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})


def micro_time(ts: float) -> str:
    """``2024-05-01T10:00:00.123456Z`` for a POSIX timestamp."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_long_running(attrs: Attributes) -> bool:
    """Requests whose response streams (upstream's LongRunningFunc)."""
    if not attrs.resource_request:
        return False
    return attrs.verb in LONG_RUNNING_VERBS or attrs.subresource in LONG_RUNNING_SUBRESOURCES


def source_ips(headers: Mapping[str, str], remote: str | None) -> list[str]:
    """X-Forwarded-For entries, then X-Real-Ip, then the peer address (each once, valid IPs)."""
    out: list[str] = []

    def add(text: str) -> None:
        text = text.strip()
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            return
        if ip not in out:
            out.append(ip)

    for part in (headers.get("X-Forwarded-For") or "").split(","):
        add(part)
    add(headers.get("X-Real-Ip") or "")
    if remote:
        add(remote)
    return out


def user_info(user: Any) -> Obj:
    """The event's ``user`` from an authn.UserInfo (empty dict for an unauthenticated request)."""
    if user is None:
        return {}
    out: Obj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def object_ref(attrs: Attributes) -> Obj | None:
    if not attrs.resource_request:
        return None
    ref: Obj = {"resource": attrs.resource}
    if attrs.namespace:
        ref["namespace"] = attrs.namespace
    if attrs.name:
        ref["name"] = attrs.name
    if attrs.api_group:
        ref["apiGroup"] = attrs.api_group
    if attrs.api_version:
        ref["apiVersion"] = attrs.api_version
    if attrs.subresource:
        ref["subresource"] = attrs.subresource
    return ref


def fill_object_ref(ref: Obj | None, request_object: Any) -> None:
    """Name and namespace from the request body when the URL lacks them (a create)."""
    if ref is None or not isinstance(request_object, dict):
        return
    md = request_object.get("metadata")
    if not isinstance(md, dict):
        return
    for field in ("namespace", "name"):
        value = md.get(field)
        if not ref.get(field) and isinstance(value, str) and value:
            ref[field] = value


def response_status(code: int, body: Any) -> Obj:
    """``{"metadata": {}, "code": 200}``; for a Status body its status, message, reason,
    details and code (the bounded fields upstream copies)."""
    st: Obj = {"metadata": {}}
    if isinstance(body, dict) and body.get("kind") == "Status":
        for k in ("status", "message", "reason", "details"):
            if body.get(k):
                st[k] = body[k]
    st["code"] = code
    return st


def without_managed_fields(obj: Any) -> Any:
    """A shallow copy of an object (or of each item of a list) without metadata.managedFields."""
    if not isinstance(obj, dict):
        return obj
    out = obj
    md = obj.get("metadata")
    if isinstance(md, dict) and "managedFields" in md:
        out = {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}
    items = obj.get("items")
    if isinstance(items, list):
        out = {**out, "items": [without_managed_fields(i) for i in items]}
    return out


def build_event(
    *,
    level: str,
    stage: str,
    audit_id: str,
    request_uri: str,
    attrs: Attributes,
    user: Any,
    source: list[str],
    user_agent: str,
    received: float,
    now: float,
    status: Obj | None = None,
    request_object: Any = None,
    response_object: Any = None,
    annotations: Mapping[str, str] | None = None,
    omit_managed_fields: bool = False,
) -> Obj:
    """One audit.k8s.io/v1 Event. Bodies are included only when ``level`` allows them."""
    ev: Obj = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id,
        "stage": stage,
        "requestURI": request_uri,
        "verb": attrs.verb,
        "user": user_info(user),
        "sourceIPs": source,
    }
    if user_agent:
        ev["userAgent"] = user_agent
    ref = object_ref(attrs)
    if ref is not None:
        fill_object_ref(ref, request_object)
        ev["objectRef"] = ref
    if status is not None:
        ev["responseStatus"] = status
    if request_object is not None and level_at_least(level, REQUEST):
        ev["requestObject"] = without_managed_fields(request_object) if omit_managed_fields else request_object
    if response_object is not None and level_at_least(level, REQUEST_RESPONSE):
        ev["responseObject"] = without_managed_fields(response_object) if omit_managed_fields else response_object
    ev["requestReceivedTimestamp"] = micro_time(received)
    ev["stageTimestamp"] = micro_time(now)
    if annotations and level_at_least(level, METADATA):
        ev["annotations"] = dict(annotations)
    return ev
