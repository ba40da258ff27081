"""HTTP plumbing shared by every route: JSON bodies, errors, caller context."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from netplex.api.attributes import HTTPBadRequest
from netplex.core.context import Context
from netplex.errors import NetplexError, NotAuthorized

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
    """``auth_strategy = noauth``: the headers say who is calling.

    No ``X-Project-Id`` means an admin (the operator's own tools). A
    request carrying ``X-Agent-Token`` must present the configured token and
    is then treated as a host agent.
    """
    cfg = request.app.state.cfg
    h = request.headers
    token = h.get("x-agent-token")
    if token is not None:
        expected = cfg.get("DEFAULT", "agent_auth_token")
        if expected and token != expected:
            raise NotAuthorized("Invalid agent token.")
        return Context(is_admin=True, is_agent=True, roles=frozenset({"admin", "agent"}))
    project = h.get("x-project-id") or h.get("x-tenant-id")
    roles = frozenset(r.strip().lower() for r in h.get("x-roles", "").split(",") if r.strip())
    if not project:
        return Context(is_admin=True, roles=roles | {"admin"}, user_id=h.get("x-user-id"))
    return Context(project_id=project, user_id=h.get("x-user-id"), roles=roles, is_admin="admin" in roles)


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
