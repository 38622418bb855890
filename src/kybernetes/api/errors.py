"""API errors as Kubernetes ``Status`` objects.

    StatusError(code, reason, message, details)     -> rendered as a v1 Status by the server
      built by: bad_request (400), unauthorized (401), forbidden (403), not_found (404),
      method_not_allowed (405), not_acceptable (406), already_exists (409), conflict (409),
      gone / expired (410), too_large (413), unsupported_media_type (415), invalid (422),
      too_many_requests (429), internal (500), unavailable (503), timeout (504)

Pure layers (validation, patching, decoding) raise these; the HTTP layer only renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Cause reasons used by validation (upstream field.ErrorType values).
FIELD_VALUE_INVALID = "FieldValueInvalid"
FIELD_VALUE_REQUIRED = "FieldValueRequired"
FIELD_VALUE_NOT_SUPPORTED = "FieldValueNotSupported"
FIELD_VALUE_DUPLICATE = "FieldValueDuplicate"
FIELD_VALUE_FORBIDDEN = "FieldValueForbidden"
FIELD_VALUE_TOO_LONG = "FieldValueTooLong"
FIELD_VALUE_TYPE_INVALID = "FieldValueTypeInvalid"


@dataclass(frozen=True)
class Cause:
    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"reason": self.reason, "message": self.message}
        if self.field:
            d["field"] = self.field
        return d


def required(path: str, detail: str = "") -> Cause:
    return Cause(FIELD_VALUE_REQUIRED, "Required value" + (f": {detail}" if detail else ""), path)


def invalid_value(path: str, value: Any, detail: str) -> Cause:
    return Cause(FIELD_VALUE_INVALID, f"Invalid value: {_fmt(value)}: {detail}", path)


def not_supported(path: str, value: Any, allowed: list[str] | tuple[str, ...]) -> Cause:
    quoted = ", ".join(f'"{a}"' for a in allowed)
    return Cause(FIELD_VALUE_NOT_SUPPORTED, f"Unsupported value: {_fmt(value)}: supported values: {quoted}", path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(FIELD_VALUE_DUPLICATE, f"Duplicate value: {_fmt(value)}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(FIELD_VALUE_FORBIDDEN, f"Forbidden: {detail}", path)


def too_long(path: str, value: Any, limit: int) -> Cause:
    return Cause(FIELD_VALUE_TOO_LONG, f"Too long: may not be more than {limit} bytes", path)


def type_invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(FIELD_VALUE_TYPE_INVALID, f"Invalid value: {_fmt(value)}: {detail}", path)


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{...}" if isinstance(value, dict) else "[...]"
    return str(value)


@dataclass
class StatusError(Exception):
    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def to_status(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            st["details"] = self.details
        return st


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def bad_request(message: str, causes: list[Cause] | None = None) -> StatusError:
    det = {"causes": [c.to_dict() for c in causes]} if causes else {}
    return StatusError(400, "BadRequest", message, det)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden_error(message: str, name: str = "", group: str = "", resource: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, _details(name, group, resource))


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', _details(name, group, resource))


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists', _details(name, group, resource))


def conflict(resource: str, group: str, name: str, detail: str) -> StatusError:
    msg = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}'
    return StatusError(409, "Conflict", msg, _details(name, group, resource))


MODIFIED_DETAIL = "the object has been modified; please apply your changes to the latest version and try again"


def expired(message: str, **details: Any) -> StatusError:
    return StatusError(410, "Expired", message, dict(details))


def gone(message: str) -> StatusError:
    return StatusError(410, "Gone", message)


def too_large(message: str = "Request entity too large: limit is 3145728") -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")')


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> StatusError:
    """422 Invalid. ``kind`` is the Kind (``Deployment``); the message lists every cause."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    qual = f"{kind}.{group}" if group else kind
    msg = f'{qual} "{name}" is invalid: {summary}'
    return StatusError(422, "Invalid", msg, _details(name, group, kind, causes=[c.to_dict() for c in causes]))


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after}, {"Retry-After": str(retry_after)})


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
