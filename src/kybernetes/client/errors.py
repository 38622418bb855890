"""Errors raised by the API client.

    ClientError
     ├── ApiError(code, reason, message, status)      the server answered with a failure Status
     │    ├── BadRequest            400
     │    ├── Unauthorized          401
     │    ├── Forbidden             403
     │    ├── NotFound              404
     │    ├── MethodNotAllowed      405
     │    ├── AlreadyExists         409  reason AlreadyExists (create of an existing name)
     │    ├── Conflict              409  reason Conflict (stale resourceVersion): re-read and retry
     │    ├── Gone                  410  reason Gone
     │    │    └── Expired          410  reason Expired (watch/list RV too old): relist
     │    ├── RequestEntityTooLarge 413
     │    ├── UnsupportedMediaType  415
     │    ├── Invalid               422  (``causes`` lists the failing fields)
     │    ├── TooManyRequests       429  (``retry_after`` seconds)
     │    ├── InternalError         500
     │    ├── ServiceUnavailable    503
     │    └── ServerTimeout         504
     └── TransportError                               no usable answer (connection, TLS, deadline)
          ├── RequestTimeout                           the request's deadline passed
          └── WatchInactive                            a watch stream went silent too long

``error_from_status(code, status, headers)`` picks the class by the Status ``reason`` first (as
client-go's ``errors.ReasonForError``) and by the HTTP code otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ClientError(Exception):
    """Base of every error this package raises."""


class TransportError(ClientError):
    """The request got no usable answer (connection refused/reset, TLS failure, bad body)."""


class RequestTimeout(TransportError):
    """The request did not complete within its timeout."""


class WatchInactive(TransportError):
    """A watch stream sent nothing (not even a bookmark) for longer than the inactivity timeout."""


class ApiError(ClientError):
    """The server answered with a failure ``Status``."""

    default_code = 0

    def __init__(self, code: int, reason: str, message: str, status: Mapping[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message or reason or f"HTTP {code}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status: dict[str, Any] = dict(status or {})
        self.retry_after = retry_after

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.status.get("details") or {})

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list(self.details.get("causes") or [])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.reason!r}, {self.message!r})"


class BadRequest(ApiError):
    default_code = 400


class Unauthorized(ApiError):
    default_code = 401


class Forbidden(ApiError):
    default_code = 403


class NotFound(ApiError):
    default_code = 404


class MethodNotAllowed(ApiError):
    default_code = 405


class AlreadyExists(ApiError):
    default_code = 409


class Conflict(ApiError):
    default_code = 409


class Gone(ApiError):
    default_code = 410


class Expired(Gone):
    default_code = 410


class RequestEntityTooLarge(ApiError):
    default_code = 413


class UnsupportedMediaType(ApiError):
    default_code = 415


class Invalid(ApiError):
    default_code = 422


class TooManyRequests(ApiError):
    default_code = 429


class InternalError(ApiError):
    default_code = 500


class ServiceUnavailable(ApiError):
    default_code = 503


class ServerTimeout(ApiError):
    default_code = 504


_BY_REASON: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest,
    "Unauthorized": Unauthorized,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
    "MethodNotAllowed": MethodNotAllowed,
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Gone": Gone,
    "Expired": Expired,
    "RequestEntityTooLarge": RequestEntityTooLarge,
    "UnsupportedMediaType": UnsupportedMediaType,
    "Invalid": Invalid,
    "TooManyRequests": TooManyRequests,
    "InternalError": InternalError,
    "ServiceUnavailable": ServiceUnavailable,
    "Timeout": ServerTimeout,
}

_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    409: Conflict, 410: Gone, 413: RequestEntityTooLarge, 415: UnsupportedMediaType, 422: Invalid,
    429: TooManyRequests, 500: InternalError, 503: ServiceUnavailable, 504: ServerTimeout,
}


def _retry_after(status: Mapping[str, Any], headers: Mapping[str, str] | None) -> float | None:
    raw = (headers or {}).get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    secs = (status.get("details") or {}).get("retryAfterSeconds")
    return float(secs) if isinstance(secs, (int, float)) else None


def error_from_status(code: int, status: Any, headers: Mapping[str, str] | None = None) -> ApiError:
    """The typed error for a failed response (``status`` is the decoded body, maybe not a Status)."""
    st: dict[str, Any] = status if isinstance(status, dict) else {}
    if st.get("kind") != "Status":
        text = status if isinstance(status, str) else ""
        st = {"kind": "Status", "status": "Failure", "code": code, "message": text}
    code = int(st.get("code") or code)
    reason = str(st.get("reason") or "")
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or (InternalError if code >= 500 else ApiError)
    return cls(code, reason, str(st.get("message") or ""), st, _retry_after(st, headers))


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, NotFound)


def is_conflict(e: BaseException) -> bool:
    return isinstance(e, Conflict)


def is_already_exists(e: BaseException) -> bool:
    return isinstance(e, AlreadyExists)
