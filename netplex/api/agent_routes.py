"""Routes for agents and bindings beyond the generic collections.

* ``POST /v2.0/netplex/agent-report``: register + heartbeat (agent token).
* ``GET  /v2.0/netplex/host-state?host=H``: consistent snapshot for an agent.
* ``POST /v2.0/netplex/device-status``: devices up/down -> ports ACTIVE/DOWN.
* ``GET  /v2.0/netplex/ports/{id}/explain-binding``: why a port is (not) bound.
* ``/v2.0/ports/{id}/bindings[/{host}[/activate]]``: Neutron's binding-extended.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from netplex.api.attributes import VNIC_TYPES, HTTPBadRequest
from netplex.api.http import JSON, context_from, json_body
from netplex.core import agent_rpc
from netplex.core.context import Context


def _authorize(request: Request, action: str) -> Context:
    """The caller, once ``action`` (a rule of :mod:`netplex.api.policy_defaults`) allows it."""
    ctx = context_from(request)
    request.app.state.policy.for_caller(ctx).enforce(action)
    return ctx


def _member(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise HTTPBadRequest(f"Unable to find '{key}' in request body")
    return body[key]


def _str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HTTPBadRequest(f"'{key}' must be a list of port ids")
    return value


def agent_routes() -> list[Route]:
    async def report(request: Request) -> Response:
        _authorize(request, "report_agent_state")
        state = _member(await json_body(request), "agent")
        agent = await run_in_threadpool(request.app.state.core_agents.report, state)
        return JSON({"agent": agent})

    async def host_state(request: Request) -> Response:
        _authorize(request, "get_host_state")
        host = request.query_params.get("host")
        if not host:
            raise HTTPBadRequest("'host' query parameter is required")
        return JSON(await run_in_threadpool(agent_rpc.host_state, request.app.state.core, host))

    async def device_status(request: Request) -> Response:
        _authorize(request, "update_device_status")
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("host"), str) or not body["host"]:
            raise HTTPBadRequest("'host' is required")
        up, down = _str_list(body, "up"), _str_list(body, "down")
        updated = await run_in_threadpool(agent_rpc.device_status, request.app.state.core, body["host"], up, down)
        return JSON({"updated": updated})

    async def explain(request: Request) -> Response:
        _authorize(request, "explain_binding")
        core = request.app.state.core
        pid = request.path_params["id"]

        def run() -> dict[str, Any]:
            with core.db.read() as s:
                return core.bindings.explain(s, pid)

        return JSON({"explanation": await run_in_threadpool(run)})

    return [
        Route("/v2.0/netplex/agent-report", report, methods=["POST"]),
        Route("/v2.0/netplex/host-state", host_state, methods=["GET"]),
        Route("/v2.0/netplex/device-status", device_status, methods=["POST"]),
        Route("/v2.0/netplex/ports/{id}/explain-binding", explain, methods=["GET"]),
    ]


def binding_routes() -> list[Route]:
    async def collection(request: Request) -> Response:
        _authorize(request, "get_port_binding" if request.method == "GET" else "create_port_binding")
        core = request.app.state.core
        pid = request.path_params["id"]
        if request.method == "GET":

            def read() -> list[dict[str, Any]]:
                with core.db.read() as s:
                    return core.bindings.list_bindings(s, pid)

            return JSON({"bindings": await run_in_threadpool(read)})
        body = _member(await json_body(request), "binding")
        unknown = set(body) - {"host", "vnic_type", "profile"}
        if unknown:
            raise HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
        host = body.get("host")
        if not isinstance(host, str) or not host:
            raise HTTPBadRequest("'host' is required")
        vnic = body.get("vnic_type")
        if vnic is not None and vnic not in VNIC_TYPES:
            raise HTTPBadRequest(f"Invalid input for vnic_type. Reason: '{vnic}' is not in {list(VNIC_TYPES)}.")
        binding = await run_in_threadpool(core.bindings.create_binding, pid, host, vnic, body.get("profile"))
        return JSON({"binding": binding}, status_code=201)

    async def member(request: Request) -> Response:
        _authorize(request, "get_port_binding" if request.method == "GET" else "delete_port_binding")
        core = request.app.state.core
        pid, host = request.path_params["id"], request.path_params["host"]
        if request.method == "GET":

            def read() -> dict[str, Any]:
                with core.db.read() as s:
                    return core.bindings.get_binding(s, pid, host)

            return JSON({"binding": await run_in_threadpool(read)})
        await run_in_threadpool(core.bindings.delete_binding, pid, host)
        return Response(status_code=204)

    async def activate(request: Request) -> Response:
        _authorize(request, "activate")
        core = request.app.state.core
        pid, host = request.path_params["id"], request.path_params["host"]
        binding = await run_in_threadpool(core.bindings.activate_binding, pid, host)
        return JSON({"binding": binding})

    return [
        Route("/v2.0/ports/{id}/bindings", collection, methods=["GET", "POST"]),
        Route("/v2.0/ports/{id}/bindings/{host}", member, methods=["GET", "DELETE"]),
        Route("/v2.0/ports/{id}/bindings/{host}/activate", activate, methods=["PUT"]),
    ]
