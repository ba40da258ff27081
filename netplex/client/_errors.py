"""Typed exceptions for Neutron v2.0 API failures.

::

    ClientError
    ├── ConnectionFailed            the server could not be reached (or timed out)
    ├── InvalidResponse             a 2xx answer that is not the expected JSON
    └── ApiError (.status, .type, .message, .detail)
        ├── BadRequest              400
        ├── Unauthorized            401
        ├── Forbidden               403
        ├── NotFound                404
        ├── Conflict                409
        ├── PreconditionFailed      412  (e.g. a stale If-Match revision)
        └── ServerError             5xx
            └── ServiceUnavailable  503

An :class:`ApiError` keeps the server's ``NeutronError`` ``type`` (for example
``"PortNotFound"``), so callers that need finer distinctions than the HTTP
status match on ``err.type``, the way Neutron clients do.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidResponse",
    "NotFound",
    "PreconditionFailed",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "error_from_response",
]


class ClientError(Exception):
    """Base of every error raised by :class:`~netplex.client.NeutronClient`."""


class ConnectionFailed(ClientError):
    """The request never got an HTTP answer (refused, DNS, timeout, ...)."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        self.method = method
        self.url = url
        self.reason = reason
        super().__init__(f"{method} {url}: cannot reach the server: {reason}")


class InvalidResponse(ClientError):
    """The server answered successfully but not with the JSON shape we expected."""


class ApiError(ClientError):
    """The server answered with an error status.

    :ivar status: HTTP status code.
    :ivar type: the ``NeutronError`` type (``"PortNotFound"``), or ``"HTTP<status>"``
        when the body was not a Neutron error (a proxy's HTML page, say).
    :ivar message: the human-readable message.
    :ivar detail: Neutron's ``detail`` field (often empty).
    :ivar method: / :ivar url: the request that failed.
    """

    status: int = 0

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        detail: str = "",
        *,
        method: str = "",
        url: str = "",
        body: Any = None,
    ) -> None:
        self.status = status
        self.type = type
        self.message = message
        self.detail = detail
        self.method = method
        self.url = url
        self.body = body
        super().__init__(f"{status} {type}: {message}" if message else f"{status} {type}")


class BadRequest(ApiError):
    """400: the request was malformed or failed validation."""


class Unauthorized(ApiError):
    """401: missing or invalid credentials (e.g. a wrong X-Agent-Token)."""


class Forbidden(ApiError):
    """403: the caller may not do this (policy)."""


class NotFound(ApiError):
    """404: the resource (or the URL) does not exist."""


class Conflict(ApiError):
    """409: the request conflicts with the current state (in use, duplicate, ...)."""


class PreconditionFailed(ApiError):
    """412: an If-Match revision did not match the resource's revision_number."""


class ServerError(ApiError):
    """5xx: the server failed."""


class ServiceUnavailable(ServerError):
    """503: e.g. no segment left to allocate, or the server is overloaded."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    503: ServiceUnavailable,
}


def _class_for(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return ApiError


def error_from_response(response: httpx.Response) -> ApiError:
    """Turn an error response into the matching :class:`ApiError` subclass.

    A ``{"NeutronError": {"type", "message", "detail"}}`` body gives the type and
    message; any other body (plain text, HTML, another JSON shape) is kept
    short in ``message`` and the type becomes ``"HTTP<status>"``.
    """
    status = response.status_code
    request = response.request
    body: Any = None
    type_ = f"HTTP{status}"
    message = ""
    detail = ""
    try:
        body = response.json()
    except ValueError:
        message = response.text.strip()[:500]
    else:
        err = body.get("NeutronError") if isinstance(body, dict) else None
        if isinstance(err, dict):
            type_ = str(err.get("type") or type_)
            message = str(err.get("message") or "")
            detail = str(err.get("detail") or "")
        elif isinstance(err, str):
            # Very old servers sent the message as a bare string.
            message = err
        else:
            message = response.text.strip()[:500]
    if not message:
        message = response.reason_phrase or ""
    return _class_for(status)(
        status, type_, message, detail, method=request.method, url=str(request.url), body=body
    )
