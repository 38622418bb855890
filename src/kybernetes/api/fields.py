"""Field selectors (``fieldSelector=``): parsing, the upstream support table, and matching.

    sel = parse_field_selector("spec.nodeName=node1,status.phase!=Failed")
    check_supported(sel, "", "Pod")          # 400 "field label not supported: ..." otherwise
    sel.matches("", "Pod", pod)              # values compared as strings
    single_name(sel)                         # "x" for exactly metadata.name=x (watch by name)

Grammar (upstream ``k8s.io/apimachinery/pkg/fields``): terms separated by unescaped ``,``;
each term is ``field=value``, ``field==value`` or ``field!=value``; ``\\`` escapes ``\\``, ``,``
and ``=`` inside values; empty values are allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kybernetes.api import errors

Obj = Mapping[str, Any]

EQUALS = "="
NOT_EQUALS = "!="


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" (also for "==") or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, group: str, kind: str, obj: Obj) -> bool:
        for r in self.requirements:
            actual = field_value(group, kind, obj, r.field)
            if (actual == r.value) != (r.operator == EQUALS):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = FieldSelector()


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for c in value:
        if in_slash:
            if c not in "\\,=":
                raise errors.bad_request(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            raise errors.bad_request(
                f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise errors.bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    start, in_slash = 0, False
    for i, c in enumerate(text):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse a ``fieldSelector`` string; raises ``bad_request`` on malformed input."""
    if not text:
        return EVERYTHING
    reqs: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        parts = _split_term(term)
        if parts is None:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        lhs, op, rhs = parts
        reqs.append(FieldRequirement(lhs, NOT_EQUALS if op == "!=" else EQUALS, _unescape(rhs)))
    return FieldSelector(tuple(reqs))


def single_name(sel: FieldSelector) -> str | None:
    """The name when ``sel`` is exactly ``metadata.name=<name>`` (used to watch one object)."""
    if len(sel.requirements) == 1:
        r = sel.requirements[0]
        if r.field == "metadata.name" and r.operator == EQUALS:
            return r.value
    return None


def required_value(sel: FieldSelector, field: str) -> str | None:
    """The value ``field`` must equal under ``sel``, if the selector pins it."""
    for r in sel.requirements:
        if r.field == field and r.operator == EQUALS:
            return r.value
    return None


# --------------------------------------------------------------------------------------------
# Field extraction: the upstream ``ToSelectableFields``/``GetAttrs`` per kind


def _get(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(p)
    return obj


def _s(value: Any) -> str:
    """String form used for comparisons (Go ``fmt`` style for bools and ints)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _b(value: Any) -> str:
    return "true" if value is True else "false"


def _i(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _pod_ip(pod: Obj) -> str:
    ips = _get(pod, "status", "podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], Mapping):
        return _s(ips[0].get("ip"))
    return _s(_get(pod, "status", "podIP"))


Extractor = Callable[[Obj], str]

_POD: dict[str, Extractor] = {
    "spec.nodeName": lambda o: _s(_get(o, "spec", "nodeName")),
    "spec.restartPolicy": lambda o: _s(_get(o, "spec", "restartPolicy")),
    "spec.schedulerName": lambda o: _s(_get(o, "spec", "schedulerName")),
    "spec.serviceAccountName": lambda o: _s(_get(o, "spec", "serviceAccountName")),
    "spec.hostNetwork": lambda o: _b(_get(o, "spec", "hostNetwork")),
    "status.phase": lambda o: _s(_get(o, "status", "phase")),
    "status.podIP": _pod_ip,
    "status.nominatedNodeName": lambda o: _s(_get(o, "status", "nominatedNodeName")),
}


def _event_fields(ref: str, source: Extractor, reporting: str) -> dict[str, Extractor]:
    def ref_field(name: str) -> Extractor:
        return lambda o: _s(_get(o, ref, name))

    names = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    out = {f"involvedObject.{n}": ref_field(n) for n in names}
    out["reason"] = lambda o: _s(o.get("reason"))
    out["reportingComponent"] = lambda o: _s(o.get(reporting))
    out["source"] = source
    out["type"] = lambda o: _s(o.get("type"))
    return out


_CORE_EVENT = _event_fields(
    "involvedObject", lambda o: _s(_get(o, "source", "component")), "reportingComponent")
# events.k8s.io Events are the same stored objects with renamed fields; selectors use core names.
_EVENTS_EVENT = _event_fields(
    "regarding", lambda o: _s(_get(o, "deprecatedSource", "component")), "reportingController")

_SPECIFIC: dict[tuple[str, str], dict[str, Extractor]] = {
    ("", "Pod"): _POD,
    ("", "Event"): _CORE_EVENT,
    ("events.k8s.io", "Event"): _EVENTS_EVENT,
    ("", "Node"): {"spec.unschedulable": lambda o: _b(_get(o, "spec", "unschedulable"))},
    ("", "Namespace"): {"status.phase": lambda o: _s(_get(o, "status", "phase"))},
    ("", "Secret"): {"type": lambda o: _s(o.get("type"))},
    ("", "Service"): {
        "spec.clusterIP": lambda o: _s(_get(o, "spec", "clusterIP")),
        "spec.type": lambda o: _s(_get(o, "spec", "type")),
    },
    ("", "ReplicationController"): {"status.replicas": lambda o: _i(_get(o, "status", "replicas"))},
    ("apps", "ReplicaSet"): {"status.replicas": lambda o: _i(_get(o, "status", "replicas"))},
    ("batch", "Job"): {"status.successful": lambda o: _i(_get(o, "status", "succeeded"))},
    ("certificates.k8s.io", "CertificateSigningRequest"): {
        "spec.signerName": lambda o: _s(_get(o, "spec", "signerName")),
    },
}

_COMMON: dict[str, Extractor] = {
    "metadata.name": lambda o: _s(_get(o, "metadata", "name")),
    "metadata.namespace": lambda o: _s(_get(o, "metadata", "namespace")),
}

# Legacy aliases accepted by upstream (old clients send ``spec.host`` for pods).
_ALIASES: dict[tuple[str, str], dict[str, str]] = {("", "Pod"): {"spec.host": "spec.nodeName"}}


def supported_fields(group: str, kind: str) -> frozenset[str]:
    """Field names a ``fieldSelector`` may use for objects of ``group``/``kind``."""
    return frozenset(_COMMON) | frozenset(_SPECIFIC.get((group, kind), {}))


def field_value(group: str, kind: str, obj: Obj, field: str) -> str:
    """The string value of selectable ``field`` of ``obj`` (``""`` if unsupported or unset)."""
    field = _ALIASES.get((group, kind), {}).get(field, field)
    fn = _COMMON.get(field) or _SPECIFIC.get((group, kind), {}).get(field)
    return fn(obj) if fn else ""


def check_supported(sel: FieldSelector, group: str, kind: str) -> None:
    """Raise 400 ``field label not supported: <field>`` for the first unsupported field."""
    allowed = supported_fields(group, kind) | frozenset(_ALIASES.get((group, kind), {}))
    for r in sel.requirements:
        if r.field not in allowed:
            raise errors.bad_request(f"field label not supported: {r.field}")
