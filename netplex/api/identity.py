"""Who is calling, under ``auth_strategy = noauth`` (Keystone is not supported yet).

As in a Neutron served without Keystone, the request headers say who calls:

* ``X-Agent-Token`` — a host agent; it must match ``[DEFAULT] agent_auth_token`` when one
  is configured.
* no identity header at all (no ``X-Project-Id``/``X-Tenant-Id``, ``X-Roles``,
  ``X-User-Id``) — the operator's own tools: an admin of project :data:`NOAUTH_PROJECT`
  (``fake_project_id``), so what it creates belongs to that project, never to an empty one.
* ``X-Project-Id`` — that project, with the roles ``X-Roles`` lists (admin when it lists
  ``admin``).
* ``X-Roles`` (or ``X-User-Id``) without a project — that caller with no project: an admin
  may act on every project but must name ``project_id`` in what it creates (Neutron's 400
  "Running without keystone AuthN requires that tenant_id is specified").
"""

from __future__ import annotations

from collections.abc import Mapping

from netplex.core.context import Context
from netplex.errors import NotAuthorized

__all__ = ["NOAUTH_PROJECT", "context_from_headers"]

#: The project of a caller that sent no identity headers.
NOAUTH_PROJECT = "fake_project_id"

_IDENTITY_HEADERS = ("x-project-id", "x-tenant-id", "x-roles", "x-user-id", "x-user")


def context_from_headers(headers: Mapping[str, str], *, agent_token: str = "") -> Context:
    """The caller's :class:`Context` from (lower-case keyed) request headers."""
    token = headers.get("x-agent-token")
    if token is not None:
        if agent_token and token != agent_token:
            raise NotAuthorized("Invalid agent token.")
        return Context(is_admin=True, is_agent=True, roles=frozenset({"admin", "agent"}))
    if not any(headers.get(h) for h in _IDENTITY_HEADERS):
        return Context(project_id=NOAUTH_PROJECT, roles=frozenset({"admin"}), is_admin=True)
    project = headers.get("x-project-id") or headers.get("x-tenant-id") or None
    roles = frozenset(r.strip().lower() for r in headers.get("x-roles", "").split(",") if r.strip())
    user = headers.get("x-user-id") or None
    if project is None:
        # No project: only an admin can do anything useful (and must name the project).
        return Context(user_id=user, roles=roles, is_admin="admin" in roles)
    return Context(project_id=project, user_id=user, roles=roles, is_admin="admin" in roles)
