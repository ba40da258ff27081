"""HTTP plumbing shared by every route: JSON bodies, errors, caller context."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from netplex.api.attributes import HTTPBadRequest
from netplex.api.identity import context_from_headers
from netplex.core.context import Context
from netplex.errors import NetplexError, RequestEntityTooLarge

LOG = logging.getLogger(__name__)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: NetplexError) -> JSON:
    return JSON(
        {"NeutronError": {"type": exc.type, "message": exc.msg, "detail": ""}},
        status_code=exc.status,
    )


def plain_error(status: int, type_: str, message: str) -> JSON:
    return JSON({"NeutronError": {"type": type_, "message": message, "detail": ""}}, status_code=status)


#: Largest request body read (oslo.middleware's ``max_request_body_size``
#: option name; Netplex's default is 1 MiB, above oslo's 112 KiB, so a
#: 1,000-port bulk fits). Replaced at start-up from the configuration.
MAX_BODY_BYTES = 1 << 20


async def read_capped(request: Request, cap: int) -> bytes:
    """The body, or :class:`RequestEntityTooLarge` as soon as it passes ``cap`` bytes.

    A declared ``Content-Length`` over the cap is refused before one byte is
    read; a chunked or lying body is cut off at the cap, never buffered whole.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise RequestEntityTooLarge(limit=cap)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise RequestEntityTooLarge(limit=cap)
            chunks.append(chunk)
    except ClientDisconnect:
        # One line instead of tracebacks: nobody is left to answer.
        LOG.warning("client disconnected mid-upload of %s %s after %d bytes", request.method, request.url.path, size)
        raise HTTPBadRequest("Client disconnected before the request body was complete") from None
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    raw = await read_capped(request, MAX_BODY_BYTES)
    if not raw.strip():
        raise HTTPBadRequest("Resource body required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HTTPBadRequest("Malformed request body") from None


def context_from(request: Request) -> Context:
    """``auth_strategy = noauth``: the headers say who is calling (:mod:`netplex.api.identity`)."""
    return context_from_headers(request.headers, agent_token=request.app.state.cfg.get("DEFAULT", "agent_auth_token"))


def if_match_revision(request: Request) -> int | None:
    """``If-Match: revision_number=N`` -> N (other If-Match forms are ignored)."""
    raw = request.headers.get("if-match")
    if not raw:
        return None
    for part in raw.split(","):
        key, sep, val = part.strip().partition("=")
        if key == "revision_number" and sep:
            try:
                return int(val)
            except ValueError:
                raise HTTPBadRequest(f"Invalid If-Match value '{raw}'") from None
    return None
