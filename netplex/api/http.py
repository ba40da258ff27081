"""HTTP plumbing shared by every route: JSON bodies, errors, caller context."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from netplex.api.attributes import HTTPBadRequest
from netplex.api.identity import context_from_headers
from netplex.core.context import Context
from netplex.errors import NetplexError

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


async def json_body(request: Request) -> Any:
    raw = await request.body()
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
