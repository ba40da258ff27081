"""``X-OpenStack-Request-Id`` on every response, as Neutron's ``request_id`` middleware does.

Each request gets a fresh ``req-<uuid4>``; clients (openstack CLI, openstacksdk) print it
with an error so an operator can find the request in the server's log. The id is kept in
``scope["state"]["request_id"]`` for handlers, and the request's log line carries it: at
DEBUG for answers below 400 (``[DEFAULT] debug = true`` shows them; an access line per
request at INFO would cost every request), at INFO for 4xx and WARNING for 5xx.

A pure ASGI middleware (no Starlette ``BaseHTTPMiddleware``): it only adds a header.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "RequestIdMiddleware", "new_request_id"]

LOG = logging.getLogger("netplex.api.requests")

HEADER = "X-OpenStack-Request-Id"
_HEADER_RAW = HEADER.lower().encode()


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500
        header = (_HEADER_RAW, rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.WARNING
            if LOG.isEnabledFor(level):
                _log(level, rid, scope, status, started)


def _log(level: int, rid: str, scope: Scope, status: int, started: float) -> None:
    qs = scope.get("query_string", b"")
    path = scope.get("path", "") + (f"?{qs.decode('latin-1')}" if qs else "")
    client = scope.get("client") or ("-", 0)
    LOG.log(level, "[%s] %s \"%s %s\" status: %d time: %.4f", rid, client[0], scope.get("method", ""),
            path, status, time.perf_counter() - started)
