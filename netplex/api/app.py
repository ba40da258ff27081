"""The ASGI application, composed explicitly from a Core (no globals)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from netplex.api import attributes as A
from netplex.api.agent_routes import agent_routes, binding_routes
from netplex.api.collections import Collection, routes
from netplex.api.http import JSON, error_response, plain_error
from netplex.api.plugins import extended_collections, plugin_extensions, plugin_policy_defaults
from netplex.api.policy import Policy, load_policy
from netplex.api.request_id import HEADER as REQUEST_ID_HEADER
from netplex.api.request_id import RequestIdMiddleware
from netplex.api.versions import version_routes
from netplex.config import Config
from netplex.core.plugin import Core
from netplex.core.service_api import ServicePlugin
from netplex.errors import NetplexError

LOG = logging.getLogger(__name__)

TAG_FILTERS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})

COLLECTIONS: tuple[Collection, ...] = (
    Collection("network", "networks", A.NETWORK, "networks", TAG_FILTERS, has_tags=True),
    Collection("subnet", "subnets", A.SUBNET, "subnets", TAG_FILTERS, has_tags=True),
    Collection("port", "ports", A.PORT, "ports", TAG_FILTERS, has_tags=True),
    Collection("segment", "segments", A.SEGMENT, "segments_api"),
    Collection("agent", "agents", A.AGENT, "agents_api", allow_create=False),
)


async def _netplex_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NetplexError)
    if exc.status >= 500:
        LOG.error("%s %s failed: %s", request.method, request.url.path, exc.msg)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return plain_error(404, "HTTPNotFound", "The resource could not be found.")
    if exc.status_code == 405:
        return plain_error(405, "HTTPMethodNotAllowed", "The method is not allowed for this resource.")
    return plain_error(exc.status_code, "HTTPError", str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    rid = getattr(request.state, "request_id", "")
    LOG.exception("[%s] %s %s raised", rid, request.method, request.url.path)
    response = plain_error(
        500,
        "HTTPInternalServerError",
        "Request Failed: internal server error while processing your request.",
    )
    if rid:  # answered outside the request-id middleware (Starlette's outermost error handler)
        response.headers[REQUEST_ID_HEADER] = rid
    return response


def _lifespan(
    on_startup: Sequence[Callable[[], Awaitable[None]]],
    on_shutdown: Sequence[Callable[[], Awaitable[None]]],
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for fn in on_startup:
            await fn()
        try:
            yield
        finally:
            for fn in on_shutdown:
                await fn()

    return lifespan


def build_app(
    core: Core,
    cfg: Config,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    collections: Sequence[Collection] = COLLECTIONS,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    policy: Policy | None = None,
    plugins: Sequence[ServicePlugin] = (),
) -> Starlette:
    """The app; ``policy`` defaults to the one ``cfg`` names (raises PolicyError if it is unusable).

    ``plugins`` are the built service plugins: their collections are served beside the core's,
    their attributes extend the core's resources, their extensions and rule defaults are added.
    """
    collections = extended_collections(collections, plugins)
    all_routes: list[BaseRoute] = [*version_routes(collections, plugin_extensions(plugins))]
    for coll in collections:
        all_routes.extend(routes(coll))
    all_routes.extend(agent_routes())
    all_routes.extend(binding_routes())
    all_routes.extend(extra_routes)
    app = Starlette(
        routes=all_routes,
        exception_handlers={
            NetplexError: _netplex_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=_lifespan(on_startup, on_shutdown),
        middleware=[Middleware(RequestIdMiddleware)],
    )
    app.state.core = core
    app.state.core_agents = core.agents_api
    app.state.cfg = cfg
    app.state.policy = policy if policy is not None else load_policy(cfg, plugin_policy_defaults(plugins))
    return app


__all__ = ["COLLECTIONS", "JSON", "Route", "build_app"]
