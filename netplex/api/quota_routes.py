"""``/v2.0/quotas``: Neutron's quotas and quota_details API over :class:`QuotaService`.

Admins read and change every project's limits; a project reads its own (limits, details,
defaults). ``PUT`` and ``DELETE`` are admin only, as in Neutron's policy defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from netplex.api.attributes import HTTPBadRequest
from netplex.api.http import JSON, context_from, json_body
from netplex.core.context import Context
from netplex.core.service_api import ServicePlugin
from netplex.errors import AdminRequired, NotAuthorized
from netplex.services.quotas.plugin import QuotaPlugin
from netplex.services.quotas.service import QuotaService

__all__ = ["quota_routes"]


def _with_project(project_id: str, limits: dict[str, Any]) -> dict[str, Any]:
    return {**limits, "project_id": project_id, "tenant_id": project_id}


def _may_read(ctx: Context, project_id: str) -> None:
    if not (ctx.is_admin or ctx.project_id == project_id):
        raise NotAuthorized("rule:get_quota is disallowed by policy")


def _admin(ctx: Context) -> None:
    if not ctx.is_admin:
        raise AdminRequired(reason="Only admins can change quotas")


def quota_routes(plugins: Sequence[ServicePlugin]) -> list[BaseRoute]:
    """The routes, when the quotas plugin is loaded (none otherwise)."""
    found = [p for p in plugins if isinstance(p, QuotaPlugin)]
    if not found:
        return []
    svc: QuotaService = found[0].service

    async def list_quotas(request: Request) -> Response:
        ctx = context_from(request)
        rows = await run_in_threadpool(svc.projects)
        if not ctx.is_admin:
            rows = [r for r in rows if r["project_id"] == ctx.project_id]
        return JSON({"quotas": [_with_project(r.pop("project_id"), r) for r in rows]})

    async def caller_project(request: Request) -> Response:
        ctx = context_from(request)
        return JSON({"tenant": {"tenant_id": ctx.project_id or ""}, "project": {"project_id": ctx.project_id or ""}})

    async def show(request: Request) -> Response:
        pid = request.path_params["project_id"]
        _may_read(context_from(request), pid)
        return JSON({"quota": await run_in_threadpool(svc.limits, pid)})

    async def update(request: Request) -> Response:
        pid = request.path_params["project_id"]
        _admin(context_from(request))
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
            raise HTTPBadRequest("Unable to find 'quota' in request body")
        return JSON({"quota": await run_in_threadpool(svc.update, pid, body["quota"])})

    async def reset(request: Request) -> Response:
        pid = request.path_params["project_id"]
        _admin(context_from(request))
        await run_in_threadpool(svc.reset, pid)
        return Response(status_code=204)

    async def details(request: Request) -> Response:
        pid = request.path_params["project_id"]
        _may_read(context_from(request), pid)
        return JSON({"quota": await run_in_threadpool(svc.details, pid)})

    async def default(request: Request) -> Response:
        pid = request.path_params["project_id"]
        _may_read(context_from(request), pid)
        return JSON({"quota": _with_project(pid, svc.defaults())})

    return [
        Route("/v2.0/quotas", list_quotas, methods=["GET"]),
        Route("/v2.0/quotas/tenant", caller_project, methods=["GET"]),
        Route("/v2.0/quotas/project", caller_project, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}/details", details, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}/default", default, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}", show, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}", update, methods=["PUT"]),
        Route("/v2.0/quotas/{project_id}", reset, methods=["DELETE"]),
    ]
